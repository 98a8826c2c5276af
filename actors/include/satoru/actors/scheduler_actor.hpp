#pragma once

#include "satoru/actors/interfaces.hpp"
#include "satoru/actors/runtime.hpp"

#include <chrono>
#include <cstdint>
#include <random>
#include <set>
#include <vector>

namespace satoru::actors {

struct scheduler_state {
  static inline const char* name = "scheduler";
  runtime_context ctx;
  store_actor store;
  supervisor_actor supervisor;
  std::set<std::int64_t> waiting; ///< sites whose jittered enqueue is pending
  std::mt19937_64 rng{std::random_device{}()};
};

/// Queues a backup per enabled site every site_scan_interval_hours since its
/// last backup (the first ones soon after start-up, spread with jitter),
/// retention every restic_retention_interval_hours and the off-site copy
/// every restic_sync_interval_hours. An interval of 0 turns that part off.
scheduler_actor::behavior_type
scheduler_behavior(scheduler_actor::stateful_pointer<scheduler_state> self,
                   runtime_context ctx, store_actor store, supervisor_actor supervisor);

/// Delays that spread `count` due sites over a window that grows with their
/// number (250 ms per site, at most `max_window`), so that 100 sites do not
/// start in the same second.
std::vector<std::chrono::milliseconds> jitter_delays(std::size_t count,
                                                     std::chrono::milliseconds max_window,
                                                     std::mt19937_64& rng);

} // namespace satoru::actors
