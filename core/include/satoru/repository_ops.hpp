#pragma once

/// The jobs that work on whole repositories rather than on one site:
/// retention (forget + prune on the local repository) and the off-site copy.
/// Blocking; the restic actor runs them on their own threads and decides
/// when (retention alone, copies beside snapshots).

#include "satoru/cancel.hpp"
#include "satoru/config.hpp"
#include "satoru/plugin_host.hpp"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace satoru {

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
