#pragma once

/// One OpenSSH master connection per site job: every ssh and rsync process
/// of the job (plugins reach it through ssh_command_args) rides on it
/// instead of paying a TCP connection, key exchange and authentication each.

#include "satoru/ssh.hpp"

#include <functional>
#include <mutex>
#include <string>
#include <vector>

namespace satoru {

/// How long an idle master outlives its last client (ssh's ControlPersist):
/// it bounds the life of a master whose daemon was killed before it could
/// close it, and spans the gap while a target is snapshotted before the
/// next one pulls.
inline constexpr int control_persist_seconds = 60;

/// The daemon's folder for control sockets: $RUNTIME_DIRECTORY (systemd's
/// RuntimeDirectory=) when set, else "cm" beside the state database.
std::string control_socket_dir(const std::string& database_path);

/// Creates the folder 0700 (and makes it 0700 if it exists).
expected<void> prepare_control_socket_dir(const std::string& dir);

/// The socket of one job's master: a short hashed name, or empty when the
/// folder's path is too long for a unix socket (ssh then connects per use).
std::string control_socket_path(const std::string& dir, const std::string& site_uuid,
                                std::int64_t job_id);

/// Asks the masters of a killed daemon's jobs to exit (`ssh -O exit`) and
/// removes their sockets; one line per socket found.
std::vector<std::string> close_stale_control_masters(const std::string& dir);

/// A job's master connection, opened at its first use and closed by close().
/// Shared by the job's pulls (several threads at once).
class ssh_control_master {
public:
  /// on_fallback is called once, with a one-line reason, when the master
  /// cannot be opened: the job then uses one connection per ssh process.
  ssh_control_master(std::string socket_path,
                     std::function<void(const std::string&)> on_fallback = {});
  ~ssh_control_master();
  ssh_control_master(const ssh_control_master&) = delete;
  ssh_control_master& operator=(const ssh_control_master&) = delete;

  /// The socket to pass as ControlPath, opening the master if it is not
  /// running (first use, or it ended after ControlPersist); empty when the
  /// master could not be opened.
  std::string socket_for(const ssh_endpoint& endpoint);

  /// Closes the master (`ssh -O exit`) if it was opened.
  void close();

private:
  bool open(const ssh_endpoint& endpoint);

  std::mutex mutex_;
  std::string path_;
  std::function<void(const std::string&)> on_fallback_;
  bool opened_ = false;
  bool failed_ = false;
};

} // namespace satoru
