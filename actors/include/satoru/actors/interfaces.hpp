#pragma once

/// Every actor interface of the runtime, in one place. Blocking work never
/// runs in these actors: they hand it to detached task actors (task_actor.hpp).

#include "satoru/actors/messages.hpp"

#include <caf/all.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace satoru::actors {

/// Owns the process's connection to the SQLite state store. Detached in
/// production (SQLite may wait on busy_timeout for another process).
using store_actor = caf::typed_actor<
    /// Claims the oldest runnable site job when fewer than `cap` of ours run,
    /// skipping `busy` site ids; job_id 0 when there is none.
    caf::replies_to<claim_atom, std::int32_t,
                    std::vector<std::int64_t>>::with<job_ticket>,
    /// Claims one queued job by id (in-process `run --wait`); job_id 0 if taken.
    caf::replies_to<claim_atom, std::int64_t>::with<job_ticket>,
    /// Claims the oldest queued repository job of a type (retention, restic_sync).
    caf::replies_to<claim_atom, std::string>::with<job_ticket>,
    /// Finishes a job with a status and error; false when our lease was lost.
    caf::replies_to<finish_atom, std::int64_t, std::string, std::string>::with<bool>,
    /// Appends a job event.
    caf::reacts_to<event_atom, job_event>,
    /// Sets a site's health and reason; the flag says a preflight just ran.
    caf::reacts_to<health_atom, std::int64_t, std::string, std::string, bool>,
    /// Records the last scan of a site's target.
    caf::reacts_to<scan_atom, std::int64_t, target_outcome>,
    /// Records that a site's backup finished; the flag says it succeeded.
    caf::reacts_to<backedup_atom, std::int64_t, bool>,
    /// Renews our leases (and, for a daemon, its liveness row); replies with
    /// the number of leases renewed.
    caf::replies_to<heartbeat_atom, bool>::with<std::int32_t>,
    /// Re-queues jobs of dead processes and interrupted jobs; replies with their ids.
    caf::replies_to<recover_atom>::with<std::vector<std::int64_t>>,
    /// Marks our running jobs interrupted and our node stopped (shutdown).
    caf::replies_to<interrupt_atom, std::string>::with<std::int32_t>,
    /// Queues a job of a type for a site (0 for repository jobs); replies with
    /// its id, or the id of the identical job already queued.
    caf::replies_to<enqueue_atom, std::string, std::int64_t>::with<std::int64_t>,
    /// Ids of enabled sites whose last backup is older than the interval (ms).
    caf::replies_to<due_atom, std::int64_t>::with<std::vector<std::int64_t>>,
    /// Creation time (Unix ms) of the newest job of a type for a site; 0 = never.
    caf::replies_to<last_atom, std::string, std::int64_t>::with<std::int64_t>,
    /// Jobs per status, for the queue depth metric.
    caf::replies_to<counts_atom>::with<queue_counts>,
    /// The sync_state row of a repository (empty fields when it never ran).
    caf::replies_to<sync_state_atom, std::string>::with<sync_record>,
    /// Writes the sync_state row of a repository.
    caf::reacts_to<sync_state_atom, sync_record>>;

/// Runs the jobs of one site, one at a time.
using site_actor = caf::typed_actor<
    /// Runs a claimed preflight or backup job; the supervisor never sends a
    /// second one before this one replied. The token cancels it (shutdown).
    caf::replies_to<run_atom, job_ticket, cancel_token>::with<job_outcome>>;

/// Owns the local restic repository: snapshots share it, retention has it
/// alone (restic 0.14 has no lock retry, so we order the exclusive steps).
using restic_actor = caf::typed_actor<
    /// Snapshots one staged target; runs alongside other snapshots.
    caf::replies_to<snapshot_atom, snapshot_request,
                    cancel_token>::with<snapshot_outcome>,
    /// Runs a retention job (forget per target, then prune) once nothing else
    /// uses the repository.
    caf::replies_to<retention_atom, job_ticket, cancel_token>::with<job_outcome>,
    /// Copies the repository off-site for a restic_sync job; shares the
    /// repository with snapshots, never overlaps retention.
    caf::replies_to<copy_atom, job_ticket, cancel_token>::with<sync_outcome>,
    /// Counts snapshots per site and those taken after a time (Unix ms), and
    /// reads the repository size; shares the repository.
    caf::replies_to<stats_atom, std::int64_t>::with<repository_counts>>;

/// Owns the off-site repository: runs restic_sync jobs (the copy itself goes
/// through the restic actor), keeps sync_state and the repository metrics.
using sync_actor = caf::typed_actor<
    /// Runs a claimed restic_sync job.
    caf::replies_to<run_atom, job_ticket, cancel_token>::with<job_outcome>,
    /// Refreshes snapshot counts, repository size and offsite lag metrics
    /// (sent after every job and at start-up).
    caf::reacts_to<refresh_atom>>;

/// Claims jobs and hands them out: per-site serial, at most
/// job_worker_concurrency site jobs at once.
using supervisor_actor = caf::typed_actor<
    /// Looks for runnable jobs now (its timer, the scheduler and `run` send it).
    caf::reacts_to<poll_atom>,
    /// Internal: the poll timer (a safety net; polls mostly follow events).
    caf::reacts_to<tick_atom>,
    /// Periodic: renews leases, recovers orphaned jobs, refreshes queue metrics.
    caf::reacts_to<heartbeat_atom>,
    /// Stops claiming, cancels running jobs, marks them interrupted, quits.
    caf::reacts_to<shutdown_atom>,
    /// Number of jobs running now (tests, status).
    caf::replies_to<status_atom>::with<std::int32_t>>;

/// Queues backups, retention and off-site copies when their interval is due.
using scheduler_actor = caf::typed_actor<
    /// Periodic: looks for due work.
    caf::reacts_to<tick_atom>,
    /// Internal: the jittered delay of a due site's backup has passed.
    caf::reacts_to<enqueue_atom, std::int64_t>>;

} // namespace satoru::actors
