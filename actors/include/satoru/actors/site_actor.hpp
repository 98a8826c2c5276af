#pragma once

#include "satoru/actors/interfaces.hpp"
#include "satoru/actors/runtime.hpp"
#include "satoru/ssh_control.hpp"
#include "satoru/staging_lock.hpp"

#include <caf/typed_response_promise.hpp>

#include <deque>
#include <map>
#include <vector>

namespace satoru::actors {

struct site_state {
  static inline const char* name = "site";
  runtime_context ctx;
  site_config site;
  store_actor store;
  restic_actor restic;

  // The attempt in progress (a site runs one job at a time).
  bool busy = false;
  job_row job; ///< with its lease (owner, epoch)
  cancel_token cancel;
  caf::typed_response_promise<job_outcome> promise;
  bool preflighting = false;
  std::deque<target_config> pending; ///< targets waiting for a free slot
  /// Target hash → its size on the edge host, as this attempt's preflight
  /// measured it (the pull's staging headroom estimate).
  std::map<std::string, std::int64_t> remote_bytes;
  int pulling = 0;      ///< pulls running (at most target_concurrency)
  int snapshotting = 0; ///< pulled targets waiting for their snapshot
  std::vector<target_result> results;
  /// Staging locks held from a target's pull until its snapshot ends.
  std::map<std::string, staging_lock> locks;
  /// The attempt's ssh master connection, shared by its pulls' rsyncs.
  std::shared_ptr<ssh_control_master> control;
};

/// One actor per configured site. It runs an attempt of a job as: preflight
/// (a detached task) → for a backup, one target handler per target (or per
/// target a retry names; detached, at most target_concurrency at once) → a
/// snapshot per pulled target through the restic actor → the target rows.
/// It reports how the attempt ended (job_outcome) only when every task it
/// started has stopped; the supervisor writes the job's end.
site_actor::behavior_type site_behavior(site_actor::stateful_pointer<site_state> self,
                                        runtime_context ctx, site_config site,
                                        store_actor store, restic_actor restic);

/// How a backup attempt ended, from its targets' results and the status the
/// targets of earlier attempts ended with: its status (all ok → success,
/// some failed or warned → warning, all failed → failed), the transiently
/// failed targets a retry pulls, and what the other targets carry forward.
job_outcome backup_outcome(const std::vector<target_result>& results,
                           std::optional<job_status> carried);

} // namespace satoru::actors
