#pragma once

/// Every actor interface of the runtime, in one place. Blocking work never
/// runs in these actors: they hand it to detached task actors (task_actor.hpp).

#include "satoru/actors/messages.hpp"

#include <caf/all.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace satoru::actors {

struct runtime_context; // runtime.hpp

/// Owns the process's connection to the SQLite state store. Detached in
/// production (SQLite may wait on busy_timeout for another process).
using store_actor = caf::typed_actor<
    /// Claims the oldest due site job when fewer than `cap` of ours run,
    /// skipping `busy` site ids; id 0 when there is none.
    caf::replies_to<claim_atom, std::int32_t, std::vector<std::int64_t>>::with<job_row>,
    /// Claims one due queued job by id (in-process `run --wait`); id 0 if not now.
    caf::replies_to<claim_atom, std::int64_t>::with<job_row>,
    /// Claims the oldest due repository job of a type (retention, restic_sync).
    caf::replies_to<claim_atom, job_type>::with<job_row>,
    /// Ends a job for good under its lease; false when the lease was lost,
    /// an error when the database could not be written (the caller retries).
    caf::replies_to<finish_atom, job_row, job_outcome>::with<bool>,
    /// Queues a job again for a retry at a time (Unix ms, drawn below a
    /// backoff bound in ms) under its lease; false when the lease was lost,
    /// an error when nothing could be written.
    caf::replies_to<retry_atom, job_row, job_outcome, std::int64_t,
                    std::int64_t>::with<bool>,
    /// Whether a lease still holds its running job.
    caf::replies_to<lease_atom, job_row>::with<bool>,
    /// Appends a job event (fenced by its epoch).
    caf::reacts_to<event_atom, job_event>,
    /// Upserts the live progress of a step (fenced by its epoch).
    caf::reacts_to<progress_atom, job_progress>,
    /// Records a target's result under its job's lease.
    caf::reacts_to<scan_atom, job_row, target_result>,
    /// Renews the leases of exactly these jobs (and, for a daemon, its
    /// liveness row); replies with the ids whose lease is no longer ours.
    caf::replies_to<heartbeat_atom, bool,
                    std::vector<job_row>>::with<std::vector<std::int64_t>>,
    /// Of these running jobs (ids), the ones someone asked to cancel.
    caf::replies_to<cancel_atom,
                    std::vector<std::int64_t>>::with<std::vector<std::int64_t>>,
    /// Re-queues jobs of dead processes and interrupted jobs; replies with their ids.
    caf::replies_to<recover_atom>::with<std::vector<std::int64_t>>,
    /// Marks our running jobs interrupted and our node stopped (shutdown).
    caf::replies_to<interrupt_atom, std::string>::with<std::int32_t>,
    /// Queues a job of a type for a site (0 for repository jobs); replies with
    /// its id, or the id of the identical job already queued.
    caf::replies_to<enqueue_atom, job_type, std::int64_t>::with<std::int64_t>,
    /// Ids of enabled sites whose last backup is older than the interval (ms).
    caf::replies_to<due_atom, std::int64_t>::with<std::vector<std::int64_t>>,
    /// Creation time (Unix ms) of the newest job of a type for a site; 0 = never.
    caf::replies_to<last_atom, job_type, std::int64_t>::with<std::int64_t>,
    /// Jobs per status and the pending retries, for the queue metrics.
    caf::replies_to<counts_atom>::with<queue_counts>,
    /// Deletes up to `batch` finished jobs older than a time (Unix ms);
    /// replies with how many it deleted.
    caf::replies_to<history_atom, std::int64_t, std::int32_t>::with<std::int32_t>,
    /// The sync_state row of a repository (empty fields when it never ran).
    caf::replies_to<sync_state_atom, std::string>::with<sync_state_row>,
    /// Writes the sync_state row of a repository.
    caf::reacts_to<sync_state_atom, sync_state_row>,
    /// The target the next restore drill verifies: {site name, target hash},
    /// or empty when no target has a snapshot yet.
    caf::replies_to<drill_atom>::with<std::vector<std::string>>,
    /// Records a drill (job lease, site name, target hash, passed, snapshot
    /// id, time): replies false when the lease was lost.
    caf::replies_to<drill_atom, job_row, std::string, std::string, bool, std::string,
                    std::int64_t>::with<bool>>;

/// Runs the jobs of one site, one at a time.
using site_actor = caf::typed_actor<
    /// Runs one attempt of a claimed preflight, backup or restore job and
    /// reports how it ended; it replies only when every task of the job has stopped. The
    /// supervisor never sends a second one before this one replied. The
    /// token cancels it (shutdown, lost lease).
    caf::replies_to<run_atom, job_row, cancel_token>::with<job_outcome>,
    /// Internal: a step's deadline (plus grace) passed: cancel its token.
    caf::reacts_to<expire_atom, cancel_token>>;

/// Owns the local restic repository: snapshots share it, retention has it
/// alone (restic 0.14 has no lock retry, so we order the exclusive steps).
using restic_actor = caf::typed_actor<
    /// Snapshots one staged target; runs alongside other snapshots.
    caf::replies_to<snapshot_atom, snapshot_request,
                    cancel_token>::with<snapshot_outcome>,
    /// Runs a retention job (forget per target, then prune) once nothing else
    /// uses the repository.
    caf::replies_to<retention_atom, job_row, cancel_token>::with<job_outcome>,
    /// Copies the repository off-site for a restic_sync job; shares the
    /// repository with snapshots, never overlaps retention.
    caf::replies_to<copy_atom, job_row, cancel_token>::with<sync_outcome>,
    /// Counts snapshots per site and those taken after a time (Unix ms), and
    /// reads the repository size; shares the repository.
    caf::replies_to<stats_atom, std::int64_t>::with<repository_counts>,
    /// Runs a check job (`restic check`) once nothing else uses the repository.
    caf::replies_to<check_atom, job_row, cancel_token>::with<job_outcome>,
    /// Runs a restore_drill job: restores the next target's latest snapshot
    /// into scratch space and verifies it; shares the repository.
    caf::replies_to<drill_atom, job_row, cancel_token>::with<job_outcome>,
    /// Runs a restore job of a site (the site actor hands it over while the
    /// site runs nothing else): the snapshot into scratch space, then back to
    /// the edge host; shares the repository.
    caf::replies_to<restore_atom, job_row, cancel_token>::with<job_outcome>,
    /// Internal: a step's deadline (plus grace) passed: cancel its token.
    caf::reacts_to<expire_atom, cancel_token>,
    /// Internal: drops queued work whose job was cancelled before it started.
    caf::reacts_to<sweep_atom>,
    /// A reloaded config: work queued or running keeps the settings it was
    /// given; work asked for from now on uses these. A changed repository
    /// is created (exclusive, so after the running work) before its first use.
    caf::reacts_to<reload_atom, runtime_context>>;

/// Owns the off-site repository: runs restic_sync jobs (the copy itself goes
/// through the restic actor) and offsite_retention jobs, keeps sync_state and
/// the repository metrics. The supervisor never runs two jobs that use the
/// off-site repository at once (uses_offsite).
using sync_actor = caf::typed_actor<
    /// Runs one attempt of a claimed restic_sync job and reports how it ended.
    caf::replies_to<run_atom, job_row, cancel_token>::with<job_outcome>,
    /// Runs one attempt of an offsite_retention job (forget + prune there).
    caf::replies_to<retention_atom, job_row, cancel_token>::with<job_outcome>,
    /// Runs one attempt of an offsite_check job (`restic check` there).
    caf::replies_to<check_atom, job_row, cancel_token>::with<job_outcome>,
    /// Internal: a step's deadline (plus grace) passed: cancel its token.
    caf::reacts_to<expire_atom, cancel_token>,
    /// Refreshes snapshot counts, repository size and offsite lag metrics
    /// (sent after every job and at start-up; rate-limited, see refresh_gate).
    caf::reacts_to<refresh_atom>,
    /// Internal: the refresh_gate's wait is over.
    caf::reacts_to<refresh_atom, bool>,
    /// A reloaded config: taken at once when no off-site copy runs, else
    /// when the running one has ended (its sync_state row stays that of the
    /// repository it copies to).
    caf::reacts_to<reload_atom, runtime_context>>;

/// The one owner of a job's life: claims jobs (per-site serial, at most
/// job_worker_concurrency site jobs at once), hands them to the actor that
/// does the work, renews exactly their leases, and finishes or retries them.
using supervisor_actor = caf::typed_actor<
    /// Looks for runnable jobs now (its timer, the scheduler and `run` send it).
    caf::reacts_to<poll_atom>,
    /// Internal: the poll timer (a safety net; polls mostly follow events).
    caf::reacts_to<tick_atom>,
    /// Periodic: renews leases, recovers orphaned jobs, refreshes queue metrics.
    caf::reacts_to<heartbeat_atom>,
    /// Internal: writes a job's end again after the database refused it.
    caf::reacts_to<finish_atom, std::int64_t>,
    /// Internal: deletes another batch of old history.
    caf::reacts_to<history_atom>,
    /// Stops claiming, cancels running jobs, marks them interrupted, quits.
    caf::reacts_to<shutdown_atom>,
    /// Number of jobs running now (tests, status).
    caf::replies_to<status_atom>::with<std::int32_t>,
    /// A reloaded config: running jobs finish under the config they started
    /// with; each site gets a new actor with the new config (a busy site's
    /// actor is replaced once its job has ended, a removed site's goes then);
    /// jobs claimed from now on use the new config.
    caf::reacts_to<reload_atom, runtime_context>>;

/// Queues backups, retention and off-site copies when their interval is due.
using scheduler_actor = caf::typed_actor<
    /// Periodic: looks for due work.
    caf::reacts_to<tick_atom>,
    /// Internal: the jittered delay of a due site's backup has passed.
    caf::reacts_to<enqueue_atom, std::int64_t>,
    /// A reloaded config: new intervals and sites; looks for due work at once
    /// (an added site's first backup need not wait for the next tick).
    caf::reacts_to<reload_atom, runtime_context>>;

} // namespace satoru::actors
