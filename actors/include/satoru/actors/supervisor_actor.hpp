#pragma once

#include "satoru/actors/interfaces.hpp"
#include "satoru/actors/runtime.hpp"

#include <chrono>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <string>

namespace satoru::actors {

/// Creates the actor that runs the jobs of one site with a context (the
/// start's, or a reload's); tests swap in fakes.
using site_factory = std::function<site_actor(
    caf::local_actor* parent, const runtime_context&, const site_config&)>;

struct supervisor_state {
  static inline const char* name = "supervisor";
  runtime_context ctx;
  store_actor store;
  restic_actor restic;
  sync_actor sync;
  site_factory make_site;
  std::map<std::string, site_actor> sites; ///< by site name
  /// Site actors a reload replaced; each goes when its job is off our hands.
  std::set<caf::actor_addr> retired;
  retry_policy retry;
  std::mt19937_64 rng{std::random_device{}()};

  /// A job this process works on: the only leases it renews.
  struct running_job {
    job_row lease;
    cancel_token cancel;
    site_actor worker; ///< the site actor running it (site jobs only)
    std::int64_t started_ms = 0;
    /// Until when the lease is surely ours, by this process's monotonic
    /// clock (the database's lease_until is wall clock, for other processes).
    std::chrono::steady_clock::time_point lease_deadline;
    bool lease_lost = false; ///< cancelled: its result is not ours to write
    /// Someone asked to cancel it (`satoru cancel`): it ends `cancelled`.
    bool cancel_requested = false;
    /// Set once the work reported back: the end waits to be written.
    std::optional<job_outcome> outcome;
    std::optional<std::int64_t> retry_at; ///< the end is a retry at this time
    std::int64_t retry_bound_ms = 0;      ///< the backoff bound it was drawn under
    int write_tries = 0;
  };
  std::map<std::int64_t, running_job> running; ///< by job id
  bool polling = false;                        ///< a claim request is on its way
  bool stopping = false;
  bool finalizing = false;
  int heartbeats = 0;
  /// In-process mode (`satoru run --wait` without a daemon): run only this
  /// job (with its retries), then quit. 0 = daemon mode.
  std::int64_t only_job = 0;
  bool only_job_running = false;
};

/// The supervisor: the one owner of a job's life. It claims jobs from the
/// store, hands them to site actors (backups, preflights), the restic actor
/// (retention) or the sync actor (off-site copies), renews exactly the
/// leases of the jobs it runs, and alone writes how each attempt ended:
/// finished, or queued again for a retry with backoff. A site never runs two
/// jobs at once; at most job_worker_concurrency site jobs run at once.
supervisor_actor::behavior_type
supervisor_behavior(supervisor_actor::stateful_pointer<supervisor_state> self,
                    runtime_context ctx, store_actor store, restic_actor restic,
                    sync_actor sync, site_factory make_site, std::int64_t only_job);

/// The production site factory: a site_behavior actor linked to its parent.
site_factory default_site_factory(store_actor store, restic_actor restic);

/// The retry policy of a config.
retry_policy retry_policy_of(const config& cfg);

} // namespace satoru::actors
