#pragma once

#include "satoru/actors/interfaces.hpp"
#include "satoru/actors/runtime.hpp"

#include <caf/typed_response_promise.hpp>

#include <deque>
#include <vector>

namespace satoru::actors {

struct site_state {
  static inline const char* name = "site";
  runtime_context ctx;
  site_config site;
  store_actor store;
  restic_actor restic;

  // The job in progress (a site runs one job at a time).
  bool busy = false;
  job_ticket job;
  cancel_token cancel;
  caf::typed_response_promise<job_outcome> promise;
  std::int64_t started_ms = 0;
  std::deque<target_config> pending; ///< targets waiting for a free slot
  int pulling = 0;                   ///< pulls running (at most target_concurrency)
  int snapshotting = 0;              ///< pulled targets waiting for their snapshot
  std::vector<target_outcome> results;
};

/// One actor per configured site. It runs a job as: preflight (a detached
/// task) → for a backup, one target handler per target (detached, at most
/// target_concurrency at once) → a snapshot per pulled target through the
/// restic actor → job status, site health and target rows.
site_actor::behavior_type site_behavior(site_actor::stateful_pointer<site_state> self,
                                        runtime_context ctx, site_config site,
                                        store_actor store, restic_actor restic);

/// The job status of a backup from its targets: all ok → success, some
/// failed or warned → warning, all failed → failed.
std::string backup_status(const std::vector<target_outcome>& results);

} // namespace satoru::actors
