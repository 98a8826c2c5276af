#pragma once

#include "satoru/ssh.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace satoru::testing {

/// A real OpenSSH server on 127.0.0.1 acting as an edge host ("site"). It
/// runs as the current user (root in CI) with a generated host key and a
/// generated client key, all inside `dir`. The destructor stops the sshd it
/// started (by pid), also when the test failed.
///
/// Logged in as the current user, remote commands get an empty HOME
/// (home()): the test machine's own ~/.bashrc (pyenv and cargo set-up, seconds
/// per shell on a loaded machine) would otherwise be paid by every remote
/// command of every test. Startup files that are slow or print text are
/// tested on purpose with `login_user` (a test_user with its own ~/.bashrc),
/// whose real home is used.
class edge_host {
public:
  struct options {
    /// PATH for commands run over ssh; empty = the normal PATH. Lets a test
    /// hide a remote tool (e.g. "/opt/empty:/usr/bin" without rsync).
    std::string remote_path;
    /// Log in as this (existing) user instead of the current one: the client
    /// key goes to its ~/.ssh/authorized_keys, which sshd reads as that user.
    std::string login_user;
    /// Listen on ::1 instead of 127.0.0.1 (endpoint().host is "::1").
    bool ipv6 = false;
  };

  /// Creates keys and config under `dir` (created if missing) and starts
  /// sshd on a free port; fails the calling test (ASSERT) if it cannot.
  explicit edge_host(std::string dir);
  edge_host(std::string dir, options opts);
  ~edge_host();
  edge_host(const edge_host&) = delete;
  edge_host& operator=(const edge_host&) = delete;

  bool running() const { return pid_ > 0; }
  /// sshd's "Starting session: ..." log lines so far: one per remote
  /// command, rsync connection or SFTP session.
  std::vector<std::string> commands_started() const;
  /// sshd's "Accepted publickey ..." log lines so far: one per
  /// authenticated connection (an ssh master's sessions share one).
  std::vector<std::string> connections_accepted() const;
  int port() const { return port_; }
  int pid() const { return pid_; }
  const std::string& dir() const { return dir_; }
  std::string user() const;             ///< the login user's name
  std::string host() const;             ///< "127.0.0.1" or "::1"
  std::string identity_file() const;    ///< client private key
  std::string known_hosts_file() const; ///< holds the pinned host key line
  std::string host_key_pub() const;     ///< the host's public key file
  /// "[127.0.0.1]:port ssh-ed25519 AAAA..."
  std::string known_hosts_line() const;
  /// An ssh_endpoint with the fixture's key and known_hosts.
  satoru::ssh_endpoint endpoint(int connect_timeout_seconds = 5) const;

  /// HOME of remote commands: dir()/home for the current user, the
  /// login_user's own home folder otherwise.
  std::string home() const;
  /// Root of the "remote" filesystem area tests should use: dir()/remote.
  std::string remote_root() const;
  /// Creates (or replaces) a file with content, creating parent folders.
  void write_file(const std::string& path, const std::string& content) const;
  /// Creates a SQLite database at path by running the sqlite3 CLI with sql.
  void make_sqlite_db(const std::string& path, const std::string& sql) const;
  /// Runs a shell command locally with /bin/sh -c (the edge host is this machine),
  /// returns its exit status; stdout in *out when given (see run_shell).
  int sh(const std::string& command, std::string* out = nullptr) const;

  /// Stops sshd now (idempotent): SIGTERM to the listener by pid (SIGKILL
  /// after 5 s) and to its open connections, so running transfers break as
  /// if the host went down.
  void stop();
  /// Starts sshd again after stop(), with the same keys and, when still free,
  /// the same port (so endpoint() and known_hosts stay valid).
  void restart();

private:
  void start();
  std::string dir_;
  options opts_;
  int port_ = 0;
  int pid_ = 0;
};

/// A fresh private temporary folder removed at destruction (unless
/// SATORU_KEEP_TMP is set, for debugging).
class temp_dir {
public:
  explicit temp_dir(const std::string& prefix = "satoru-test");
  ~temp_dir();
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

private:
  std::string path_;
};

/// True when something accepts TCP connections on 127.0.0.1:port (or ::1).
bool port_accepts(int port, bool ipv6 = false);

/// A local user made for one test the way an operator makes an edge user:
/// `useradd -m` (login shell `shell`), then `usermod -p '*'` (sshd with
/// UsePAM no refuses a locked account). Removed with its home folder at
/// destruction. Names are unique per process, so tests can run in parallel.
class test_user {
public:
  explicit test_user(const std::string& shell = "/bin/sh");
  ~test_user();
  test_user(const test_user&) = delete;
  test_user& operator=(const test_user&) = delete;
  bool created() const { return uid_ >= 0; }
  const std::string& name() const { return name_; }
  const std::string& home() const { return home_; }
  int uid() const { return uid_; }
  int gid() const { return gid_; }

private:
  std::string name_, home_;
  int uid_ = -1, gid_ = -1;
};

/// The sudoers lines a document of the repository gives operators
/// ("satoru-backup ALL=(root) NOPASSWD: ..."), for `user`, with the SQLite
/// copy helper at `helper` instead of its documented place: tests install
/// exactly what operators are told to. `doc` is relative to the source tree.
std::string documented_sudoers_lines(const std::string& doc, const std::string& user,
                                     const std::string& helper = {});

/// One file under /etc/sudoers.d (a unique name per process), checked with
/// visudo and removed at destruction.
struct sudoers_file {
  std::string path;
  explicit sudoers_file(const std::string& lines);
  ~sudoers_file();
  sudoers_file(const sudoers_file&) = delete;
  sudoers_file& operator=(const sudoers_file&) = delete;
};

/// A free TCP port on 127.0.0.1 (bound and released), below the ephemeral
/// range so that no outgoing connection takes it while its server is down.
int free_port();

/// Reads a whole file; "" when missing.
std::string read_file(const std::string& path);

/// Runs a command with /bin/sh -c; returns its exit status (128+signal when
/// killed, -1 when it could not run). Only stdout goes to *out; stderr is
/// left to the test's stderr (add 2>&1 to capture it).
int run_shell(const std::string& command, std::string* out = nullptr);

} // namespace satoru::testing
