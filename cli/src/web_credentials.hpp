#pragma once

#include "cli_context.hpp"
#include "satoru/web/users_file.hpp"

namespace satoru::cli {

/// The config's file of `kind` (web_users_file or web_tokens_file), or exit
/// 2 naming the missing key.
const std::string& credentials_file_or_exit(const config& cfg, web::credential_kind kind);

/// The user or token name or exit 2.
void check_credential_name_or_exit(const std::string& name);

/// `web-user remove NAME` / `web-token remove NAME`: the same command for
/// either file.
void add_credential_remove_command(CLI::App& parent, global_options& opts,
                                   command_runner& run, web::credential_kind kind);

} // namespace satoru::cli
