#pragma once

#include "satoru/actors/interfaces.hpp"
#include "satoru/actors/runtime.hpp"

namespace satoru::actors {

struct sync_state {
  static inline const char* name = "sync";
  runtime_context ctx;
  store_actor store;
  restic_actor restic;
  std::string repository; ///< redacted off-site repository ("" = sync off)
  sync_state_row last;    ///< the sync_state row as we last wrote/read it
  bool refreshing = false;
  bool refresh_again = false;
};

/// The singleton that owns the off-site repository (see sync_actor).
sync_actor::behavior_type sync_behavior(sync_actor::stateful_pointer<sync_state> self,
                                        runtime_context ctx, store_actor store,
                                        restic_actor restic);

} // namespace satoru::actors
