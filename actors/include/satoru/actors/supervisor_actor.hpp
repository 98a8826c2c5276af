#pragma once

#include "satoru/actors/interfaces.hpp"
#include "satoru/actors/runtime.hpp"

#include <functional>
#include <map>
#include <string>

namespace satoru::actors {

/// Creates the actor that runs the jobs of one site (tests swap in fakes).
using site_factory =
    std::function<site_actor(caf::local_actor* parent, const site_config&)>;

struct supervisor_state {
  static inline const char* name = "supervisor";
  runtime_context ctx;
  store_actor store;
  restic_actor restic;
  sync_actor sync;
  std::map<std::string, site_actor> sites; ///< by site name
  struct running_job {
    std::int64_t site_id = 0;
    std::string type;
    cancel_token cancel;
  };
  std::map<std::int64_t, running_job> running; ///< by job id
  bool polling = false;                        ///< a claim request is on its way
  bool stopping = false;
  bool finalizing = false;
  int heartbeats = 0;
  /// In-process mode (`satoru run --wait` without a daemon): run only this
  /// job, then quit. 0 = daemon mode.
  std::int64_t only_job = 0;
  bool only_job_claimed = false;
};

/// The supervisor: claims jobs from the store and hands them to site actors
/// (backups, preflights) or the restic actor (retention, off-site copies).
/// A site never runs two jobs at once; at most job_worker_concurrency site
/// jobs run at once.
supervisor_actor::behavior_type
supervisor_behavior(supervisor_actor::stateful_pointer<supervisor_state> self,
                    runtime_context ctx, store_actor store, restic_actor restic,
                    sync_actor sync, site_factory make_site, std::int64_t only_job);

/// The production site factory: a site_behavior actor linked to its parent.
site_factory default_site_factory(runtime_context ctx, store_actor store,
                                  restic_actor restic);

} // namespace satoru::actors
