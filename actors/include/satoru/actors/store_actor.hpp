#pragma once

#include "satoru/actors/interfaces.hpp"
#include "satoru/store.hpp"

#include <memory>
#include <string>

namespace satoru::actors {

struct store_state {
  static inline const char* name = "store";
  std::string owner;
  std::int64_t lease_ms = 30000;
  std::string metrics_listen;
  int max_recoveries = 3;
};

/// The store actor over an already opened store. Spawn it detached in
/// production (SQLite may wait for another process's lock); tests spawn it
/// event-based under the deterministic scheduler.
store_actor::behavior_type store_behavior(store_actor::stateful_pointer<store_state> self,
                                          std::shared_ptr<satoru::store> db,
                                          std::string owner, std::string metrics_listen,
                                          int max_recoveries, std::int64_t lease_ms);

/// Whether the process behind an owner id ("host:pid:nonce") still lives.
/// Unknown hosts count as alive: their leases expire instead.
bool owner_alive(const std::string& owner);

} // namespace satoru::actors
