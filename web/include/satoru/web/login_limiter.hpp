#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace satoru::web {

struct login_limits {
  int max_failures = 5;                    ///< failed logins allowed per window
  std::int64_t window_ms = 15 * 60 * 1000; ///< counted over 15 minutes
  std::size_t max_clients = 10000;         ///< (address, name) pairs tracked at most
};

/// Counts failed logins per client address and user name; once a pair has
/// failed max_failures times within the window it is refused until the
/// window that started with its first failure ends. Per pair, not per
/// address: behind a proxy or tunnel everyone shares one address, and one
/// person's typos (or an attacker's guesses) must not lock out the others.
/// A valid API token is never asked (console.cpp checks it first).
/// Thread-safe; times are Unix ms.
class login_limiter {
public:
  explicit login_limiter(login_limits limits = {});

  /// Milliseconds until `client` may try `name` again; 0 = it may now.
  std::int64_t retry_after(const std::string& client, const std::string& name,
                           std::int64_t now_ms);
  void record_failure(const std::string& client, const std::string& name,
                      std::int64_t now_ms);
  /// A successful login clears the pair's count.
  void record_success(const std::string& client, const std::string& name);

private:
  struct entry {
    int failures = 0;
    std::int64_t window_start = 0;
  };
  void forget_old(std::int64_t now_ms);
  /// The table's key of a pair: a NUL cannot be in an address; a name is
  /// cut to 128 bytes so that the table's memory stays bounded.
  static std::string key_of(const std::string& client, const std::string& name) {
    return client + '\0' + name.substr(0, 128);
  }

  login_limits limits_;
  std::mutex mutex_;
  std::map<std::string, entry> clients_;
};

} // namespace satoru::web
