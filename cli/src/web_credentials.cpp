#include "web_credentials.hpp"

#include <filesystem>
#include <iostream>
#include <sys/stat.h>
#include <unistd.h>

namespace satoru::cli {

namespace {

const char* noun_of(web::credential_kind kind) {
  return kind == web::credential_kind::user ? "web user" : "API token";
}

} // namespace

const std::string& credentials_file_or_exit(const config& cfg,
                                            web::credential_kind kind) {
  bool users = kind == web::credential_kind::user;
  const std::string& path = users ? cfg.web_users_file : cfg.web_tokens_file;
  if (path.empty())
    fail(exit_usage, cfg.file + (users ? ": /web_users_file: required for web users"
                                       : ": /web_tokens_file: required for API tokens"));
  return path;
}

std::optional<file_owner> credentials_owner(const config& cfg) {
  if (::geteuid() != 0) return std::nullopt;
  auto folder = std::filesystem::path{cfg.database_path}.parent_path();
  if (folder.empty()) folder = ".";
  struct stat st {};
  if (::stat(folder.c_str(), &st) != 0 || st.st_uid == 0) return std::nullopt;
  return file_owner{st.st_uid, st.st_gid};
}

void check_credential_name_or_exit(const std::string& name) {
  if (!web::valid_user_name(name))
    fail(exit_usage, "name \"" + name + "\" must be 1 to 64 of A-Z a-z 0-9 . _ -");
}

std::shared_ptr<credential_arguments>
add_credential_arguments(CLI::App& add, web::credential_kind kind) {
  auto args = std::make_shared<credential_arguments>();
  bool user = kind == web::credential_kind::user;
  add.add_option("NAME", args->name,
                 std::string(user ? "user" : "token") +
                     " name (A-Z a-z 0-9 . _ -, up to 64)")
      ->required();
  add.add_option("--role", args->role,
                 user ? "viewer (looks) or operator (also acts)"
                      : "viewer (reads) or operator (also queues jobs)")
      ->required()
      ->check(CLI::IsMember({"viewer", "operator"}));
  return args;
}

void add_credential_remove_command(CLI::App& parent, global_options& opts,
                                   command_runner& run, web::credential_kind kind) {
  auto name = std::make_shared<std::string>();
  auto cmd = parent.add_subcommand("remove", std::string("remove a ") + noun_of(kind) +
                                                 "; it stops working at once");
  cmd->add_option("NAME", *name, "its name")->required();
  cmd->callback([&opts, &run, kind, name] {
    run = [&opts, kind, name]() -> int {
      auto cfg = load_config_or_exit(opts);
      const auto& path = credentials_file_or_exit(cfg, kind);
      check_credential_name_or_exit(*name);
      auto removed = web::remove_credential(kind, path, *name, credentials_owner(cfg));
      if (!removed)
        fail(removed.err().code == errc::invalid_argument ? exit_usage : exit_failed,
             removed.err().message);
      if (!*removed)
        fail(exit_usage,
             std::string("no ") + noun_of(kind) + " \"" + *name + "\" in " + path);
      std::cout << noun_of(kind) << " " << *name << " removed from " << path << "\n";
      return exit_ok;
    };
  });
}

} // namespace satoru::cli
