#include "satoru/web/users_file.hpp"

#include "satoru/files.hpp"
#include "satoru/secret.hpp"
#include "satoru/web/password.hpp"

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

namespace {

struct file_keys {
  const char* list;
  const char* hash;
};

file_keys keys_of(credential_kind kind) {
  return kind == credential_kind::user ? file_keys{"users", "password_hash"}
                                       : file_keys{"tokens", "token_hash"};
}

} // namespace

expected<std::vector<web_credential>>
load_credentials(credential_kind kind, const std::string& path, bool missing_ok) {
  auto source = secret_source::from_file(path);
  if (auto ok = source.check_permissions(); !ok) {
    if (missing_ok && ok.err().code == errc::not_found)
      return std::vector<web_credential>{};
    return ok.err();
  }
  auto text = read_whole_file(path);
  if (!text) return text.err();
  auto keys = keys_of(kind);
  auto bad = [&](const std::string& pointer, const std::string& what) {
    return error{errc::invalid_argument, path + ": " + pointer + ": " + what};
  };
  json::error_code ec;
  auto value = json::parse(*text, ec);
  if (ec) return bad("", "not valid JSON (" + ec.message() + ")");
  const auto* root = value.if_object();
  const json::array* list = nullptr;
  if (root != nullptr)
    if (auto* entries = root->if_contains(keys.list)) list = entries->if_array();
  if (list == nullptr) return bad(std::string("/") + keys.list, "must be an array");
  std::vector<web_credential> out;
  for (std::size_t i = 0; i < list->size(); ++i) {
    std::string at = std::string("/") + keys.list + "/" + std::to_string(i);
    const auto* obj = (*list)[i].if_object();
    if (obj == nullptr) return bad(at, "must be an object");
    auto text_of = [&](const char* key) -> const json::string* {
      auto* v = obj->if_contains(key);
      return v ? v->if_string() : nullptr;
    };
    const auto* name = text_of("name");
    const auto* role_text = text_of("role");
    const auto* hash = text_of(keys.hash);
    if (name == nullptr || !valid_user_name(*name))
      return bad(at + "/name", "must be 1 to 64 of A-Z a-z 0-9 . _ -");
    auto r = role_text ? parse_role(*role_text) : std::nullopt;
    if (!r) return bad(at + "/role", "must be \"viewer\" or \"operator\"");
    if (hash == nullptr || hash->empty())
      return bad(at + "/" + keys.hash, "must be a string");
    out.push_back({std::string(*name), *r, std::string(*hash)});
  }
  return out;
}

namespace {

expected<void> save_credentials(credential_kind kind, const std::string& path,
                                const std::vector<web_credential>& entries,
                                std::optional<file_owner> owner) {
  auto keys = keys_of(kind);
  json::array list;
  for (const auto& e : entries)
    list.push_back({{"name", e.name}, {"role", to_string(e.role)}, {keys.hash, e.hash}});
  json::object root{{keys.list, std::move(list)}};
  return write_file_atomically(path, json::serialize(root) + "\n", owner);
}

} // namespace

expected<void> put_credential(credential_kind kind, const std::string& path,
                              const web_credential& entry,
                              std::optional<file_owner> owner) {
  auto entries = load_credentials(kind, path, true);
  if (!entries) return entries.err();
  auto it = std::find_if(entries->begin(), entries->end(),
                         [&](const web_credential& e) { return e.name == entry.name; });
  if (it != entries->end())
    *it = entry;
  else
    entries->push_back(entry);
  return save_credentials(kind, path, *entries, owner);
}

expected<bool> remove_credential(credential_kind kind, const std::string& path,
                                 const std::string& name,
                                 std::optional<file_owner> owner) {
  auto entries = load_credentials(kind, path, true);
  if (!entries) return entries.err();
  auto it = std::find_if(entries->begin(), entries->end(),
                         [&](const web_credential& e) { return e.name == name; });
  if (it == entries->end()) return false;
  entries->erase(it);
  if (auto ok = save_credentials(kind, path, *entries, owner); !ok) return ok.err();
  return true;
}

expected<std::string> new_token() {
  auto bits = random_hex(32);
  if (!bits) return bits.err();
  return "satoru_" + *bits;
}

std::optional<web_credential> match_token(const std::vector<web_credential>& tokens,
                                          std::string_view presented) {
  std::string hash = sha256_hex(presented);
  std::optional<web_credential> found;
  // Every entry is compared, so the time says nothing about which matched.
  for (const auto& t : tokens)
    if (constant_time_equal(hash, t.hash)) found = t;
  return found;
}

} // namespace satoru::web
