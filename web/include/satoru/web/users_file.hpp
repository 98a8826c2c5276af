#pragma once

#include "satoru/error.hpp"
#include "satoru/files.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace satoru::web {

/// What a console user or API token may do: viewers look, operators also act.
enum class role { viewer, operator_ };

const char* to_string(role r);
std::optional<role> parse_role(std::string_view text);

/// Who may use the console: a user (a name and a password's scrypt hash)
/// or an API token (a name and the SHA-256 of the token). The hash is
/// never logged.
struct web_credential {
  std::string name;
  web::role role = role::viewer;
  std::string hash; ///< hash_password()'s encoding, or sha256_hex() of a token
};

/// The two files of credentials: `web_users_file`
/// ({"users": [{name, role, password_hash}]}) and `web_tokens_file`
/// ({"tokens": [{name, role, token_hash}]}).
enum class credential_kind { user, token };

/// Whether `name` is a valid user or token name: 1 to 64 of [A-Za-z0-9._-].
bool valid_user_name(std::string_view name);

/// Reads a credentials file. It must be a regular file readable by its
/// owner only (0600), as a secret file. A missing file is an empty list
/// when `missing_ok`.
expected<std::vector<web_credential>>
load_credentials(credential_kind kind, const std::string& path, bool missing_ok = false);

/// Adds `entry`, or replaces the entry of that name; writes the file
/// atomically with mode 0600, owned by `owner` when set (the daemon's user,
/// when root runs the command).
expected<void> put_credential(credential_kind kind, const std::string& path,
                              const web_credential& entry,
                              std::optional<file_owner> owner = std::nullopt);

/// Removes the entry called `name`; false when there is none (the file is
/// then left alone).
expected<bool> remove_credential(credential_kind kind, const std::string& path,
                                 const std::string& name,
                                 std::optional<file_owner> owner = std::nullopt);

inline expected<std::vector<web_credential>> load_users(const std::string& path,
                                                        bool missing_ok = false) {
  return load_credentials(credential_kind::user, path, missing_ok);
}

inline expected<void> put_user(const std::string& path, const web_credential& user) {
  return put_credential(credential_kind::user, path, user);
}

/// A new API token: "satoru_" and 64 hex digits (256 bits from OpenSSL).
expected<std::string> new_token();

/// The token of `tokens` that `presented` is, compared by hash in constant
/// time; nullopt when it is none of them.
std::optional<web_credential> match_token(const std::vector<web_credential>& tokens,
                                          std::string_view presented);

} // namespace satoru::web
