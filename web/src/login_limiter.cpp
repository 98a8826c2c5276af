#include "satoru/web/login_limiter.hpp"

namespace satoru::web {

login_limiter::login_limiter(login_limits limits)
    : limits_(limits) {}

void login_limiter::forget_old(std::int64_t now_ms) {
  for (auto it = clients_.begin(); it != clients_.end();)
    it = now_ms - it->second.window_start >= limits_.window_ms ? clients_.erase(it)
                                                               : std::next(it);
}

std::int64_t login_limiter::retry_after(const std::string& client,
                                        const std::string& name, std::int64_t now_ms) {
  std::lock_guard lock(mutex_);
  auto it = clients_.find(key_of(client, name));
  if (it == clients_.end()) return 0;
  std::int64_t ends = it->second.window_start + limits_.window_ms;
  if (now_ms >= ends) {
    clients_.erase(it);
    return 0;
  }
  return it->second.failures >= limits_.max_failures ? ends - now_ms : 0;
}

void login_limiter::record_failure(const std::string& client, const std::string& name,
                                   std::int64_t now_ms) {
  auto key = key_of(client, name);
  std::lock_guard lock(mutex_);
  auto it = clients_.find(key);
  if (it != clients_.end() && now_ms - it->second.window_start >= limits_.window_ms)
    it->second = entry{};
  if (it == clients_.end()) {
    // Under a flood of addresses, expired entries go first; if that is not
    // enough, the whole table: forgetting errs towards letting clients try.
    if (clients_.size() >= limits_.max_clients) forget_old(now_ms);
    if (clients_.size() >= limits_.max_clients) clients_.clear();
    it = clients_.emplace(key, entry{}).first;
  }
  if (it->second.failures == 0) it->second.window_start = now_ms;
  ++it->second.failures;
}

void login_limiter::record_success(const std::string& client, const std::string& name) {
  std::lock_guard lock(mutex_);
  clients_.erase(key_of(client, name));
}

} // namespace satoru::web
