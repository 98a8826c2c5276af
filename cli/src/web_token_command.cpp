#include "web_credentials.hpp"

#include "satoru/web/password.hpp"

#include <boost/json.hpp>
#include <fmt/format.h>

#include <iostream>

namespace satoru::cli {

namespace {

void add_token_add_command(CLI::App& parent, global_options& opts, command_runner& run) {
  auto add = parent.add_subcommand(
      "add", "create an API token (or replace the token of that name) and print it "
             "once; only its SHA-256 is stored");
  auto args = add_credential_arguments(*add, web::credential_kind::token);
  add->callback([&, args] {
    run = [&, args]() -> int {
      auto cfg = load_config_or_exit(opts);
      const auto& path = credentials_file_or_exit(cfg, web::credential_kind::token);
      check_credential_name_or_exit(args->name);
      auto token = web::new_token();
      if (!token) fail(exit_failed, token.err().message);
      web::web_credential entry{args->name, *web::parse_role(args->role),
                                web::sha256_hex(*token)};
      if (auto ok = web::put_credential(web::credential_kind::token, path, entry,
                                        credentials_owner(cfg));
          !ok)
        fail(ok.err().code == errc::invalid_argument ? exit_usage : exit_failed,
             ok.err().message);
      // The token itself on stdout (for a script to capture), the note on
      // stderr: it cannot be shown again.
      std::cout << *token << "\n";
      std::cerr << "API token " << args->name << " (" << args->role << ") saved in "
                << path << "; this is the only time it is shown\n";
      return exit_ok;
    };
  });
}

void add_token_list_command(CLI::App& parent, global_options& opts, command_runner& run) {
  auto list = parent.add_subcommand("list", "list API tokens: names and roles");
  list->add_flag("--json", opts.json, "print JSON");
  list->callback([&] {
    run = [&]() -> int {
      auto cfg = load_config_or_exit(opts);
      const auto& path = credentials_file_or_exit(cfg, web::credential_kind::token);
      auto tokens = web::load_credentials(web::credential_kind::token, path, true);
      if (!tokens)
        fail(tokens.err().code == errc::invalid_argument ? exit_usage : exit_failed,
             tokens.err().message);
      if (opts.json) {
        boost::json::array out;
        for (const auto& t : *tokens)
          out.push_back({{"name", t.name}, {"role", web::to_string(t.role)}});
        print_json(out);
        return exit_ok;
      }
      std::cout << fmt::format("{:<32} {}\n", "NAME", "ROLE");
      for (const auto& t : *tokens)
        std::cout << fmt::format("{:<32} {}\n", t.name, web::to_string(t.role));
      return exit_ok;
    };
  });
}

} // namespace

void add_web_token_command(CLI::App& app, global_options& opts, command_runner& run) {
  auto cmd = app.add_subcommand("web-token", "manage the web console's API tokens");
  cmd->require_subcommand(1);
  add_token_add_command(*cmd, opts, run);
  add_token_list_command(*cmd, opts, run);
  add_credential_remove_command(*cmd, opts, run, web::credential_kind::token);
}

} // namespace satoru::cli
