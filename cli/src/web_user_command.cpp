#include "web_credentials.hpp"

#include "satoru/web/password.hpp"

#include <openssl/crypto.h>

#include <iostream>
#include <termios.h>
#include <unistd.h>

namespace satoru::cli {

namespace {

/// One line of stdin without its line end; false at end of input.
bool read_line(std::string& out) {
  if (!std::getline(std::cin, out)) return false;
  if (!out.empty() && out.back() == '\r') out.pop_back();
  return true;
}

/// Asks on the terminal with echo off.
std::string prompt_hidden(const char* question) {
  std::cerr << question << std::flush;
  termios old{};
  bool restore = ::tcgetattr(STDIN_FILENO, &old) == 0;
  if (restore) {
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
  }
  std::string line;
  bool got = read_line(line);
  if (restore) ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
  std::cerr << "\n";
  if (!got) fail(exit_usage, "no password given");
  return line;
}

/// The password: asked twice without echo on a terminal, else the first
/// line of stdin (never argv, where `ps` would show it).
std::string read_password() {
  std::string password;
  if (::isatty(STDIN_FILENO)) {
    password = prompt_hidden("Password: ");
    std::string again = prompt_hidden("Password again: ");
    bool same = web::constant_time_equal(password, again);
    OPENSSL_cleanse(again.data(), again.size());
    if (!same) fail(exit_usage, "the passwords differ");
  } else if (!read_line(password)) {
    fail(exit_usage, "no password on stdin (give it as one line)");
  }
  if (password.size() < 8)
    fail(exit_usage, "the password must have at least 8 characters");
  return password;
}

} // namespace

void add_web_user_command(CLI::App& app, global_options& opts, command_runner& run) {
  auto cmd = app.add_subcommand("web-user", "manage the web console's users");
  cmd->require_subcommand(1);
  auto add = cmd->add_subcommand(
      "add", "add a console user or set their role and password; the password is "
             "prompted for (or read as one line from stdin)");
  auto args = add_credential_arguments(*add, web::credential_kind::user);
  add->callback([&, args] {
    run = [&, args]() -> int {
      const std::string& name = args->name;
      const std::string& role_text = args->role;
      auto cfg = load_config_or_exit(opts);
      credentials_file_or_exit(cfg, web::credential_kind::user);
      check_credential_name_or_exit(name);
      std::string password = read_password();
      auto hash = web::hash_password(password);
      OPENSSL_cleanse(password.data(), password.size());
      if (!hash) fail(exit_failed, hash.err().message);
      web::web_credential user{name, *web::parse_role(role_text), *hash};
      if (auto ok = web::put_credential(web::credential_kind::user, cfg.web_users_file,
                                        user, credentials_owner(cfg));
          !ok)
        fail(ok.err().code == errc::invalid_argument ? exit_usage : exit_failed,
             ok.err().message);
      std::cout << "web user " << name << " (" << role_text << ") saved in "
                << cfg.web_users_file << "\n";
      return exit_ok;
    };
  });
  add_credential_remove_command(*cmd, opts, run, web::credential_kind::user);
}

} // namespace satoru::cli
