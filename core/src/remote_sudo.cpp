#include "satoru/remote_sudo.hpp"

#include "satoru/text.hpp"

namespace satoru {

check_result check_remote_sudo(remote_shell& shell, const std::string& site_name,
                               const ssh_endpoint& endpoint, const sudo_command& command,
                               std::chrono::milliseconds timeout) {
  check_result check{"remote.sudo", check_result::level::fail, ""};
  const std::string who = endpoint.user + " on " + endpoint.host;
  auto run = shell.exec("command -v sudo >/dev/null 2>&1 || exit 127; sudo -n -l " +
                            command.command_line + " </dev/null 2>&1",
                        timeout);
  if (!run) {
    check.message = "site " + site_name + ": cannot ask sudo on the edge host whether " +
                    who + " may run " + command.label + ": " + run.err().message;
    return check;
  }
  if (run->exit_status == 127) {
    check.message = "site " + site_name +
                    " has sudo configured but sudo is not installed for " + who +
                    " (Debian: apt-get install sudo)";
    return check;
  }
  if (run->exit_status != 0) {
    // sudo's verdict is its last line ("a password is required"); warnings
    // such as "unable to resolve host" come before it.
    std::string said = last_line(run->out);
    check.message = "site " + site_name + " has sudo configured but " + who +
                    " may not run " + command.label + " under sudo without a password" +
                    (said.empty() ? std::string{} : " (sudo: \"" + said + "\")") +
                    "; install the sudoers lines of \"Preparing an edge host\" in "
                    "docs/operations.md";
    return check;
  }
  check.status = check_result::level::ok;
  check.message = who + " may run " + command.label + " under sudo -n";
  return check;
}

} // namespace satoru
