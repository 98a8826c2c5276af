#pragma once

#include "satoru/error.hpp"
#include "satoru/web/users_file.hpp"

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>

namespace satoru::web {

/// Times are Unix milliseconds, passed in so that tests need no clock.
struct session_limits {
  std::int64_t idle_ms = 30 * 60 * 1000;          ///< ends after 30 min unused
  std::int64_t absolute_ms = 12 * 60 * 60 * 1000; ///< and 12 h after login
  std::size_t max_sessions = 10000;               ///< oldest go first beyond this
};

struct session {
  std::string user;
  web::role role = role::viewer;
  std::int64_t created_at = 0;
  std::int64_t last_used_at = 0;
  /// The session's CSRF token (64 hex digits): its pages send it back in a
  /// hidden form field, its scripts in X-CSRF-Token. A page of another site
  /// cannot read it, so it cannot forge a state-changing request.
  std::string csrf;
  /// credential_fingerprint() of the users-file entry it was made for.
  std::string credential;
};

/// What a session remembers of its user's entry in the users file (name,
/// role and password hash): when the entry changes (a new password, another
/// role) or goes, the console ends the session at its next request.
std::string credential_fingerprint(const web_credential& user);

/// The console's logged-in sessions, in memory (a restart logs everyone
/// out). Thread-safe. Ids are 256 random bits; only their SHA-256 is kept,
/// so a lookup's timing says nothing about a valid id.
class session_store {
public:
  explicit session_store(session_limits limits = {});

  /// A new session for `user`; returns its id (64 hex digits) for the cookie.
  expected<std::string> create(const std::string& user, role r, std::int64_t now_ms,
                               std::string credential = {});
  /// The live session of `id`, touched (idle expiry restarts); expired ones
  /// are removed and not returned.
  std::optional<session> find(const std::string& id, std::int64_t now_ms);
  void remove(const std::string& id);
  std::size_t size() const;

private:
  bool expired(const session& s, std::int64_t now_ms) const;
  void evict(std::int64_t now_ms);

  session_limits limits_;
  mutable std::mutex mutex_;
  std::map<std::string, session> by_hash_;
};

} // namespace satoru::web
