#pragma once

#include "satoru/error.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace satoru::web {

/// What a console user may do: viewers look, operators also act.
enum class role { viewer, operator_ };

const char* to_string(role r);
std::optional<role> parse_role(std::string_view text);

struct web_user {
  std::string name;
  web::role role = role::viewer;
  std::string password_hash; ///< hash_password()'s encoding; never logged
};

/// Whether `name` is a valid user name: 1 to 64 of [A-Za-z0-9._-].
bool valid_user_name(std::string_view name);

/// Reads the users file ({"users": [{name, role, password_hash}]}). It must
/// be a regular file readable by its owner only (0600), as a secret file.
/// A missing file is an empty list when `missing_ok`.
expected<std::vector<web_user>> load_users(const std::string& path,
                                           bool missing_ok = false);

/// Adds `user`, or replaces the user of that name; writes the file
/// atomically with mode 0600.
expected<void> put_user(const std::string& path, const web_user& user);

} // namespace satoru::web
