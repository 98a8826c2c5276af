#include "openapi_check.hpp"

#include "edge_host.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

namespace satoru::testing {

namespace json = boost::json;

json::value openapi_document() {
  return json::parse(read_file(std::string(SATORU_SOURCE_DIR) + "/docs/openapi.json"));
}

json::value response_schema(const json::value& document, const std::string& path,
                            const std::string& method, int status) {
  const auto* found = document.at("paths").as_object().if_contains(path);
  if (found != nullptr) found = found->as_object().if_contains(method);
  if (found != nullptr)
    found = found->at("responses").as_object().if_contains(std::to_string(status));
  if (found == nullptr) {
    ADD_FAILURE() << "docs/openapi.json has no " << status << " answer to " << method
                  << " " << path;
    return nullptr;
  }
  return found->at("content").at("application/json").at("schema");
}

namespace {

bool has_type(const json::value& value, std::string_view type) {
  if (type == "null") return value.is_null();
  if (type == "boolean") return value.is_bool();
  if (type == "integer") return value.is_int64() || value.is_uint64();
  if (type == "number") return value.is_number();
  if (type == "string") return value.is_string();
  if (type == "array") return value.is_array();
  if (type == "object") return value.is_object();
  return false;
}

const json::value& resolve(const json::value& document, const json::string& ref) {
  // "#/components/schemas/Name" is a JSON pointer into the document.
  return document.at_pointer(std::string_view(ref).substr(1));
}

} // namespace

std::vector<std::string> schema_problems(const json::value& value,
                                         const json::value& schema,
                                         const json::value& document,
                                         const std::string& pointer) {
  static const std::set<std::string> descriptive = {"description", "default", "minimum",
                                                    "maximum"};
  std::vector<std::string> out;
  auto add = [&](const std::string& what) { out.push_back(pointer + ": " + what); };
  auto nest = [&](const json::value& v, const json::value& s, const std::string& at) {
    auto more = schema_problems(v, s, document, at);
    out.insert(out.end(), more.begin(), more.end());
  };
  const auto& s = schema.as_object();
  for (const auto& [keyword, rule] : s) {
    std::string k(keyword);
    if (k == "$ref") {
      nest(value, resolve(document, rule.as_string()), pointer);
    } else if (k == "type") {
      std::vector<std::string> types;
      if (rule.is_string())
        types.emplace_back(rule.as_string());
      else
        for (const auto& t : rule.as_array())
          types.emplace_back(t.as_string());
      if (std::none_of(types.begin(), types.end(),
                       [&](const std::string& t) { return has_type(value, t); }))
        add("is " + json::serialize(value) + ", not of type " + json::serialize(rule));
    } else if (k == "enum") {
      const auto& options = rule.as_array();
      if (std::find(options.begin(), options.end(), value) == options.end())
        add(json::serialize(value) + " is not one of " + json::serialize(rule));
    } else if (k == "properties") {
      if (!value.is_object()) continue;
      for (const auto& [name, sub] : rule.as_object())
        if (const auto* v = value.as_object().if_contains(name))
          nest(*v, sub, pointer + "/" + std::string(name));
    } else if (k == "required") {
      if (!value.is_object()) continue;
      for (const auto& name : rule.as_array())
        if (!value.as_object().contains(name.as_string()))
          add("misses \"" + std::string(name.as_string()) + "\"");
    } else if (k == "additionalProperties") {
      if (!value.is_object() || rule != json::value(false)) continue;
      const auto* props = s.if_contains("properties");
      for (const auto& [name, v] : value.as_object())
        if (props == nullptr || !props->as_object().contains(name))
          add("has \"" + std::string(name) + "\", which the document does not describe");
    } else if (k == "items") {
      if (!value.is_array()) continue;
      const auto& items = value.as_array();
      for (std::size_t i = 0; i < items.size(); ++i)
        nest(items[i], rule, pointer + "/" + std::to_string(i));
    } else if (k == "oneOf") {
      int matches = 0;
      for (const auto& option : rule.as_array())
        matches += schema_problems(value, option, document, pointer).empty() ? 1 : 0;
      if (matches != 1)
        add("matches " + std::to_string(matches) + " of the oneOf schemas, not 1");
    } else if (descriptive.count(k) == 0) {
      add("schema keyword \"" + k + "\" is not checked by this test");
    }
  }
  return out;
}

} // namespace satoru::testing
