#pragma once

/// Running the edge side of a target under `sudo -n`: the preflight check
/// that tells an operator, in one line, when sudo is configured for a site
/// but the edge user may not run the command without a password.

#include "satoru/plugin.hpp"
#include "satoru/ssh.hpp"

#include <chrono>
#include <string>

namespace satoru {

/// One command a plugin runs as root on the edge host.
struct sudo_command {
  std::string label; ///< what the operator reads: "rsync", "the SQLite copy helper"
  std::string command_line; ///< shell words, quoted, as the pull runs them
};

/// The preflight check "remote.sudo": the edge user may run `command` under
/// `sudo -n` (asked with `sudo -n -l`, which runs nothing). Its message is
/// one line naming the site, the edge user and the command, and points at
/// "Preparing an edge host" in docs/operations.md.
check_result check_remote_sudo(remote_shell& shell, const std::string& site_name,
                               const ssh_endpoint& endpoint, const sudo_command& command,
                               std::chrono::milliseconds timeout);

} // namespace satoru
