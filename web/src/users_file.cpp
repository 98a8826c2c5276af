#include "satoru/web/users_file.hpp"

#include "satoru/files.hpp"
#include "satoru/secret.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <cctype>

namespace satoru::web {

namespace json = boost::json;

const char* to_string(role r) {
  return r == role::operator_ ? "operator" : "viewer";
}

std::optional<role> parse_role(std::string_view text) {
  if (text == "viewer") return role::viewer;
  if (text == "operator") return role::operator_;
  return std::nullopt;
}

bool valid_user_name(std::string_view name) {
  return !name.empty() && name.size() <= 64 &&
         std::all_of(name.begin(), name.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' ||
                  c == '-';
         });
}

expected<std::vector<web_user>> load_users(const std::string& path, bool missing_ok) {
  auto source = secret_source::from_file(path);
  if (auto ok = source.check_permissions(); !ok) {
    if (missing_ok && ok.err().code == errc::not_found) return std::vector<web_user>{};
    return ok.err();
  }
  auto text = read_whole_file(path);
  if (!text) return text.err();
  auto bad = [&](const std::string& pointer, const std::string& what) {
    return error{errc::invalid_argument, path + ": " + pointer + ": " + what};
  };
  json::error_code ec;
  auto value = json::parse(*text, ec);
  if (ec) return bad("", "not valid JSON (" + ec.message() + ")");
  const auto* root = value.if_object();
  const json::array* list = nullptr;
  if (root != nullptr)
    if (auto* users = root->if_contains("users")) list = users->if_array();
  if (list == nullptr) return bad("/users", "must be an array");
  std::vector<web_user> out;
  for (std::size_t i = 0; i < list->size(); ++i) {
    std::string at = "/users/" + std::to_string(i);
    const auto* obj = (*list)[i].if_object();
    if (obj == nullptr) return bad(at, "must be an object");
    auto text_of = [&](const char* key) -> const json::string* {
      auto* v = obj->if_contains(key);
      return v ? v->if_string() : nullptr;
    };
    const auto* name = text_of("name");
    const auto* role_text = text_of("role");
    const auto* hash = text_of("password_hash");
    if (name == nullptr || !valid_user_name(*name))
      return bad(at + "/name", "must be 1 to 64 of A-Z a-z 0-9 . _ -");
    auto r = role_text ? parse_role(*role_text) : std::nullopt;
    if (!r) return bad(at + "/role", "must be \"viewer\" or \"operator\"");
    if (hash == nullptr || hash->empty())
      return bad(at + "/password_hash", "must be a string");
    out.push_back({std::string(*name), *r, std::string(*hash)});
  }
  return out;
}

expected<void> put_user(const std::string& path, const web_user& user) {
  auto users = load_users(path, true);
  if (!users) return users.err();
  auto it = std::find_if(users->begin(), users->end(),
                         [&](const web_user& u) { return u.name == user.name; });
  if (it != users->end())
    *it = user;
  else
    users->push_back(user);
  json::array list;
  for (const auto& u : *users)
    list.push_back({{"name", u.name},
                    {"role", to_string(u.role)},
                    {"password_hash", u.password_hash}});
  json::object root{{"users", std::move(list)}};
  return write_file_atomically(path, json::serialize(root) + "\n");
}

} // namespace satoru::web
