#pragma once

#include "satoru/actors/interfaces.hpp"
#include "satoru/actors/runtime.hpp"

#include <deque>
#include <functional>

namespace satoru::actors {

struct restic_state {
  static inline const char* name = "restic";
  runtime_context ctx;
  store_actor store;
  /// Work waiting for the repository, in arrival order. Shared work
  /// (snapshots, copies) runs side by side; exclusive work (initialisation,
  /// retention) waits until nothing runs and holds everything else back.
  struct pending_op {
    bool exclusive = false;
    std::function<void()> start;
  };
  std::deque<pending_op> queue;
  int shared_running = 0;
  bool exclusive_running = false;
  bool initialized = false;           ///< the repository was created (or exists)
};

/// The singleton that owns the local restic repository.
restic_actor::behavior_type restic_behavior(restic_actor::stateful_pointer<restic_state> self,
                                            runtime_context ctx, store_actor store);

} // namespace satoru::actors
