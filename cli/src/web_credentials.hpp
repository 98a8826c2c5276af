#pragma once

#include "cli_context.hpp"
#include "satoru/web/users_file.hpp"

#include <memory>
#include <optional>
#include <string>

namespace satoru::cli {

/// The config's file of `kind` (web_users_file or web_tokens_file), or exit
/// 2 naming the missing key.
const std::string& credentials_file_or_exit(const config& cfg, web::credential_kind kind);

/// Who the credentials files must belong to: when root runs `web-user` or
/// `web-token`, the owner of database_path's folder (the daemon's user: on
/// the package `satoru`, whose unit cannot read a root-owned file); else
/// nobody but the writer (empty).
std::optional<file_owner> credentials_owner(const config& cfg);

/// The user or token name or exit 2.
void check_credential_name_or_exit(const std::string& name);

/// NAME and `--role` of `web-user add` / `web-token add`, as parsed.
struct credential_arguments {
  std::string name;
  std::string role; ///< "viewer" or "operator" (CLI11 refuses anything else)
};

/// Declares NAME and `--role viewer|operator` on an `add` subcommand: users
/// and tokens take the same name rules and the same two roles.
std::shared_ptr<credential_arguments> add_credential_arguments(CLI::App& add,
                                                               web::credential_kind kind);

/// `web-user remove NAME` / `web-token remove NAME`: the same command for
/// either file.
void add_credential_remove_command(CLI::App& parent, global_options& opts,
                                   command_runner& run, web::credential_kind kind);

} // namespace satoru::cli
