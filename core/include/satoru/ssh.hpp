#pragma once

#include "satoru/cancel.hpp"
#include "satoru/error.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace satoru {

class ssh_control_master;

struct ssh_endpoint {
  std::string host;
  int port = 22;
  std::string user;
  std::string identity_file;
  std::string known_hosts_file;
  int connect_timeout_seconds = 10;
  /// The site job's OpenSSH master connection (ssh_control.hpp): OpenSSH
  /// processes built with ssh_command_args ride on it. Empty = one
  /// connection per process (and always for libssh sessions).
  std::shared_ptr<ssh_control_master> control;
  /// "host:port" for messages; "[host]:port" is the known_hosts spelling.
  std::string display() const;
};

struct host_key_info {
  std::string type;               ///< e.g. "ssh-ed25519"
  std::string sha256_fingerprint; ///< "SHA256:..." as ssh-keygen prints it
};

struct exec_result {
  int exit_status = -1;
  std::string out;
  std::string err;
};

/// Quotes a string for a POSIX shell: the result is one word whatever it
/// contains (spaces, quotes, `$(...)`, `;`, newlines, a leading '-').
std::string shell_quote(std::string_view text);

/// A libssh session that has passed a strict host key check and public key
/// authentication. One session per thread; every call has a deadline and
/// watches a cancel token.
class ssh_session {
public:
  ~ssh_session();
  ssh_session(ssh_session&&) noexcept;
  ssh_session& operator=(ssh_session&&) noexcept;

  /// Connects, checks the host key against endpoint.known_hosts_file (unknown
  /// or changed = errc::host_key, the message names the SHA256 fingerprint;
  /// never accepted automatically) and authenticates with identity_file.
  static expected<ssh_session> connect(const ssh_endpoint& endpoint,
                                       const cancel_token& cancel = {});

  /// Runs a command through the remote user's shell.
  expected<exec_result> exec(const std::string& command, std::chrono::milliseconds timeout,
                             const cancel_token& cancel = {});

  /// Downloads a remote file over SFTP into local_path (written to a
  /// temporary name and renamed when complete). on_progress gets bytes so far.
  expected<std::uint64_t> sftp_get(const std::string& remote_path,
                                   const std::string& local_path,
                                   std::chrono::milliseconds timeout,
                                   const cancel_token& cancel = {},
                                   const std::function<void(std::uint64_t)>& on_progress = {});

  const ssh_endpoint& endpoint() const;

private:
  struct impl;
  explicit ssh_session(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

/// Connects without authenticating and returns the server's host key, for
/// `satoru trust`. Does not look at known_hosts.
expected<host_key_info> fetch_host_key(const ssh_endpoint& endpoint);

/// The key pinned for endpoint in endpoint.known_hosts_file ("[host]:port" or,
/// for port 22, "host" entries), or errc::not_found when none is.
expected<host_key_info> pinned_host_key(const ssh_endpoint& endpoint);

/// What `satoru trust --yes` may pin.
struct trust_request {
  /// Pin only a key with this SHA256 fingerprint ("SHA256:..."); empty = the
  /// key the server presents now.
  std::string fingerprint;
  /// Replace a different key already pinned for this host (needs fingerprint).
  bool rotate = false;
  /// The command to suggest in refusals, e.g. "satoru trust store-berlin-01".
  std::string command;
};

/// Pins the key the server presents on this very connection in
/// endpoint.known_hosts_file (created 0600, "[host]:port" form for non-22
/// ports), after checking it against the request: a different fingerprint
/// than the one given, or a different key already pinned without `rotate`,
/// is refused (errc::host_key) with both fingerprints in the message.
expected<host_key_info> trust_host_key(const ssh_endpoint& endpoint,
                                       const trust_request& request = {});

} // namespace satoru
