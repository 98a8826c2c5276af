#include "satoru/web/sessions.hpp"

#include "satoru/web/password.hpp"

#include <algorithm>

namespace satoru::web {

session_store::session_store(session_limits limits)
    : limits_(limits) {}

bool session_store::expired(const session& s, std::int64_t now_ms) const {
  return now_ms - s.last_used_at >= limits_.idle_ms ||
         now_ms - s.created_at >= limits_.absolute_ms;
}

void session_store::evict(std::int64_t now_ms) {
  for (auto it = by_hash_.begin(); it != by_hash_.end();)
    it = expired(it->second, now_ms) ? by_hash_.erase(it) : std::next(it);
  while (by_hash_.size() >= limits_.max_sessions) {
    auto oldest = std::min_element(by_hash_.begin(), by_hash_.end(),
                                   [](const auto& a, const auto& b) {
                                     return a.second.created_at < b.second.created_at;
                                   });
    by_hash_.erase(oldest);
  }
}

std::string credential_fingerprint(const web_credential& user) {
  return sha256_hex(user.name + '\n' + to_string(user.role) + '\n' + user.hash);
}

expected<std::string> session_store::create(const std::string& user, role r,
                                            std::int64_t now_ms, std::string credential) {
  auto id = random_hex(32);
  if (!id) return id.err();
  auto csrf = random_hex(32);
  if (!csrf) return csrf.err();
  std::lock_guard lock(mutex_);
  evict(now_ms);
  by_hash_[sha256_hex(*id)] =
      session{user, r, now_ms, now_ms, *csrf, std::move(credential)};
  return *id;
}

std::optional<session> session_store::find(const std::string& id, std::int64_t now_ms) {
  if (id.size() != 64) return std::nullopt;
  std::lock_guard lock(mutex_);
  auto it = by_hash_.find(sha256_hex(id));
  if (it == by_hash_.end()) return std::nullopt;
  if (expired(it->second, now_ms)) {
    by_hash_.erase(it);
    return std::nullopt;
  }
  it->second.last_used_at = now_ms;
  return it->second;
}

void session_store::remove(const std::string& id) {
  std::lock_guard lock(mutex_);
  by_hash_.erase(sha256_hex(id));
}

std::size_t session_store::size() const {
  std::lock_guard lock(mutex_);
  return by_hash_.size();
}

} // namespace satoru::web
