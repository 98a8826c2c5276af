#pragma once

/// The jobs that work on whole repositories rather than on one site:
/// retention (forget + prune on the local repository) and the off-site copy.
/// Blocking; the restic actor runs them on their own threads and decides
/// when (retention alone, copies beside snapshots).

#include "satoru/cancel.hpp"
#include "satoru/config.hpp"
#include "satoru/error.hpp"
#include "satoru/job.hpp"
#include "satoru/plugin_host.hpp"
#include "satoru/store.hpp"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace satoru {

/// Whether a repository job of `type` (retention, check, restic_sync, …)
/// can be queued under `cfg`: one on the off-site repository needs
/// restic_b2_repository. The error (errc::invalid_argument) names the
/// config file and key. `satoru prune|sync|check|drill` and the console
/// both ask it.
expected<void> check_repository_job(const config& cfg, job_type type);

/// Queues a repository job (no site) as `satoru prune`, `sync` and
/// `check` do, after check_repository_job(); an identical queued job is
/// returned instead (enqueue_result::existing).
expected<enqueue_result> queue_repository_job(const config& cfg, store& db,
                                              job_type type);

struct retention_result {
  bool ok = false;
  std::string error;
  std::int64_t kept = 0;
  std::int64_t removed = 0;
  std::int64_t freed_bytes = 0; ///< repository size before prune − after
  std::int64_t size_after = 0;
};

/// Removes the locks of our dead processes (restic_client::clear_dead_locks),
/// runs `forget --json --group-by tags` with the configured policy over
/// satoru's snapshots, so that every target keeps its own history, then
/// `prune` as a separate step (restic 0.14's `forget --prune --json` mixes
/// prune's text into the JSON). One event
/// per target with kept/removed counts, one with the space freed.
retention_result run_retention(const config& cfg, event_sink& events,
                               const cancel_token& cancel);

/// The same on the off-site repository (restic_b2_repository) with
/// restic_b2_retention_policy (the local policy unless set); events under
/// "offsite_retention". The caller keeps it apart from copies and checks of
/// that repository (the sync actor runs one at a time).
retention_result run_offsite_retention(const config& cfg, event_sink& events,
                                       const cancel_token& cancel);

struct repository_check {
  bool ok = false;
  bool damaged = false; ///< restic found errors in the repository (not a lock or link)
  std::string error;
};

/// The sync_state row that keeps how the checks of a repository ended
/// ("check:local", "check:offsite"), beside the off-site copy's own row
/// (keyed by its repository).
inline std::string check_state_key(const std::string& which) {
  return "check:" + which;
}

/// `restic check` of the local repository (or with `offsite` the off-site
/// one) reading check_read_data_subset of the data, after removing the
/// locks of our dead processes; events under "check" / "offsite_check".
repository_check run_check(const config& cfg, bool offsite, event_sink& events,
                           const cancel_token& cancel);

/// What a restore drill of one target found.
struct drill_result {
  bool passed = false;
  std::string error;       ///< why it did not pass
  std::string snapshot_id; ///< the snapshot it restored
};

/// Restores the latest snapshot of `target` of `site` into a private scratch
/// folder below staging_root and verifies it: a sqlite_dump database passes
/// `PRAGMA integrity_check` and has every table of the staged copy; a
/// directory holds the snapshot's file count and bytes (`restic ls`). The
/// scratch folder is removed afterwards. Events under "drill".
drill_result run_restore_drill(const config& cfg, const site_config& site,
                               const target_config& target, event_sink& events,
                               const cancel_token& cancel);

struct offsite_result {
  bool ok = false;
  std::string error;
  std::int64_t copied = 0; ///< snapshots copied by this run
  std::int64_t lag = 0;    ///< local snapshots not in the remote after the run
};

/// Copies the local repository to restic_b2_repository: initialises the
/// remote with --copy-chunker-params when it does not exist, removes the
/// locks of our dead processes (a failed or killed earlier run's), `restic copy`, then
/// counts the local snapshots the remote does not have. After a failure it removes the
/// lock the failed run left on the remote, if its process is gone.
offsite_result run_offsite_copy(const config& cfg, event_sink& events,
                                const cancel_token& cancel);

/// At daemon start: removes the locks our dead processes left (a restic
/// killed with the previous daemon) in the local repository, or with
/// `offsite` in the off-site one, if it exists. Never fails the start:
/// returns one line per lock removed or left, and per problem, for the log.
std::vector<std::string> clear_dead_locks_at_start(const config& cfg, bool offsite,
                                                   const cancel_token& cancel);

struct repository_overview {
  bool ok = false;
  std::string error;
  std::int64_t size = 0;                        ///< restic stats raw-data
  std::map<std::string, std::int64_t> per_site; ///< snapshots by site uuid
  std::int64_t newer_than = 0;                  ///< snapshots taken after `since_ms`
};

/// Snapshot counts per site, the repository size and the number of
/// snapshots taken after `since_ms` (the start of the last successful
/// off-site copy: those are not off-site yet), for the metrics.
repository_overview inspect_repository(const config& cfg, std::int64_t since_ms,
                                       const cancel_token& cancel);

} // namespace satoru
