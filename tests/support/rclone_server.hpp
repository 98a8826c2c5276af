#pragma once

#include <string>

namespace satoru::testing {

/// `rclone serve restic` on 127.0.0.1: a restic REST server standing in for
/// B2 (docs/operations.md). Started as our own child and stopped by its pid, never by
/// name, so parallel tests and other rclone processes are left alone. The
/// destructor kills it if the test did not.
class rclone_server {
public:
  rclone_server() = default;
  ~rclone_server();
  rclone_server(const rclone_server&) = delete;
  rclone_server& operator=(const rclone_server&) = delete;

  /// Serves `dir` (created if missing) on `port`, or on a free port when 0.
  /// Returns once the server accepts connections; false (see last_error())
  /// if it did not within 15 s. A fixed port lets a test restart a killed
  /// server where clients expect it.
  bool start(const std::string& dir, int port = 0);
  /// SIGTERM, then SIGKILL after 5 s; reaps the child. Idempotent.
  void stop();
  /// SIGKILL at once, like a remote that died; reaps the child. Idempotent.
  void kill();

  bool running() const { return pid_ > 0; }
  int pid() const { return pid_; }
  int port() const { return port_; }
  const std::string& dir() const { return dir_; }
  /// "rest:http://127.0.0.1:PORT/"
  std::string url() const;
  /// A repository on this server: url() + name.
  std::string repository(const std::string& name) const { return url() + name; }
  /// rclone's own output (kept in a file next to `dir`).
  std::string log() const;
  const std::string& last_error() const { return last_error_; }

private:
  bool start_once(int port);
  void terminate(int signal, int grace_ms);

  std::string dir_;
  std::string log_file_;
  std::string last_error_;
  int port_ = 0;
  int pid_ = 0;
};

} // namespace satoru::testing
