#pragma once

#include "satoru/error.hpp"
#include "satoru/web/console.hpp"

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

namespace satoru::web {

/// What clients may cost the daemon. Each kind of connection has its own
/// cap, so that one kind cannot starve another: connections that have not
/// yet sent a valid session or token (anyone can open them) cannot keep
/// logged-in users, event streams or downloads out.
struct server_limits {
  /// Connections that have not yet authenticated; at the cap, a new one
  /// closes the one waiting longest (a slow loris makes room, not a user).
  int max_unauthenticated = 32;
  /// Connections of logged-in users and API tokens between requests; more
  /// get 503.
  int max_connections = 64;
  /// Event streams and downloads running at once (each outlives its
  /// request); more get 503.
  int max_streams = 64;
  /// Requests that read the repository with restic (reads_repository())
  /// run on this many threads of their own, never the I/O threads...
  int repository_readers = 2;
  /// ...and at most this many more wait for one; more get 503.
  int repository_queue = 16;
  std::chrono::seconds read_timeout{10};  ///< a whole request must arrive in this
  std::chrono::seconds write_timeout{30}; ///< a whole response must leave in this
  std::chrono::seconds idle_timeout{30};  ///< a kept-alive connection waits this long
  std::size_t header_limit = 8 * 1024;    ///< bytes of request line and headers
  std::size_t body_limit = 16 * 1024;     ///< bytes of request body
  int threads = 2;                        ///< the console's I/O threads, not the actors'
};

/// PEM files of the console's certificate chain and private key; both
/// empty = plain HTTP.
struct tls_files {
  std::string certificate;
  std::string key;
};

/// The console's HTTP server (Boost.Beast) on its own threads. Errors of a
/// connection end that connection only; nothing is thrown out of it.
class web_server {
public:
  /// Listens on `listen` ("host:port", "[v6]:port") and serves `routes`,
  /// over TLS when `tls` names the files.
  static expected<std::unique_ptr<web_server>> start(const std::string& listen,
                                                     std::shared_ptr<console> routes,
                                                     server_limits limits = {},
                                                     const tls_files& tls = {});
  ~web_server();
  web_server(const web_server&) = delete;
  web_server& operator=(const web_server&) = delete;

  /// Stops accepting, drops open connections and joins the threads.
  void stop();

  struct impl;

private:
  explicit web_server(std::unique_ptr<impl> i);
  std::unique_ptr<impl> impl_;
};

} // namespace satoru::web
