#pragma once

#include "satoru/actors/interfaces.hpp"
#include "satoru/actors/repository_access.hpp"
#include "satoru/actors/runtime.hpp"

namespace satoru::actors {

struct restic_state {
  static inline const char* name = "restic";
  runtime_context ctx;
  store_actor store;
  repository_access access; ///< shared snapshots, exclusive retention
  bool initialized = false; ///< the repository was created (or exists)
  bool sweeping = false;    ///< a sweep of cancelled waiting work is scheduled
};

/// The singleton that owns the local restic repository.
restic_actor::behavior_type
restic_behavior(restic_actor::stateful_pointer<restic_state> self, runtime_context ctx,
                store_actor store);

} // namespace satoru::actors
