#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace satoru::web {

struct login_limits {
  int max_failures = 5;                    ///< failed logins allowed per window
  std::int64_t window_ms = 15 * 60 * 1000; ///< counted over 15 minutes
  std::size_t max_clients = 10000;         ///< addresses tracked at most
};

/// Counts failed logins per client address; once an address has failed
/// max_failures times within the window it is refused until the window
/// that started with its first failure ends. Thread-safe; times are Unix ms.
class login_limiter {
public:
  explicit login_limiter(login_limits limits = {});

  /// Milliseconds until `client` may try again; 0 = it may now.
  std::int64_t retry_after(const std::string& client, std::int64_t now_ms);
  void record_failure(const std::string& client, std::int64_t now_ms);
  /// A successful login clears the client's count.
  void record_success(const std::string& client);

private:
  struct entry {
    int failures = 0;
    std::int64_t window_start = 0;
  };
  void forget_old(std::int64_t now_ms);

  login_limits limits_;
  std::mutex mutex_;
  std::map<std::string, entry> clients_;
};

} // namespace satoru::web
