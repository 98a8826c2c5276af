#pragma once

#include "satoru/config.hpp"
#include "satoru/error.hpp"
#include "satoru/health.hpp"
#include "satoru/job.hpp"
#include "satoru/progress.hpp"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

struct sqlite3;

namespace satoru {

struct site_row {
  std::int64_t id = 0;
  std::string name, uuid, host, user;
  int port = 22;
  bool enabled = true;
  std::string health = health_unknown;
  std::string health_reason;
  std::int64_t last_preflight_at = 0; ///< 0 = never
  std::int64_t last_backup_at = 0;    ///< last backup job that finished (any status)
  std::int64_t last_success_at = 0;   ///< last backup job with status success or warning
  int target_count = 0;               ///< enabled targets
};

struct target_row {
  std::int64_t id = 0, site_id = 0;
  std::string target_hash, mode, path;
  bool enabled = true;
  std::string last_status; ///< "", success, warning, failed
  std::string last_error;
  std::int64_t last_bytes = 0; ///< bytes transferred by the last pull
  std::int64_t last_files = 0; ///< files transferred by the last pull
  std::int64_t last_duration_ms = 0;
  std::int64_t last_scan_at = 0;
  std::int64_t last_success_at = 0;
  std::string last_snapshot_id;
  std::int64_t last_data_added = 0;   ///< bytes restic added for the last snapshot
  std::int64_t last_verified_at = 0;  ///< last passed restore drill; 0 = never
  std::string last_verified_snapshot; ///< the snapshot that drill restored
};

struct event_row {
  std::int64_t id = 0, job_id = 0, ts = 0;
  std::string level;  ///< info, ok, warn, fail, error
  std::string step;   ///< e.g. "preflight.ssh", "pull", "snapshot"
  std::string target; ///< target_hash or ""
  std::string message;
  std::string data; ///< JSON object text or ""
};

struct sync_state_row {
  std::string repository;
  std::int64_t last_attempt_at = 0, last_success_at = 0;
  std::int64_t last_success_started_at = 0; ///< start of the last successful copy
  std::string status;                       ///< "", running, success, failed
  std::string error;
  std::int64_t snapshots_copied = 0; ///< by the last successful run
  std::int64_t offsite_lag = 0;      ///< local snapshots not yet in the remote
};

/// The live progress of one step of a running job (table job_progress).
struct progress_row {
  std::int64_t job_id = 0;
  std::string target;   ///< target hash; "" for repository work (the off-site copy)
  satoru::progress now; ///< step and where it stands
  std::int64_t updated_at = 0;
  std::int64_t ended_at = 0; ///< the step ended (its last values); 0 = running
};

struct job_filter {
  std::optional<std::int64_t> site_id;
  std::optional<job_status> status;
  int limit = 50;
};

struct enqueue_result {
  std::int64_t id = 0;
  bool existing = false; ///< an identical job was already queued
};

/// What a request to cancel a job found and did.
struct cancel_result {
  /// The job's status after the request: `cancelled` when it was queued
  /// (or interrupted), `running` while its process stops it, or the status
  /// it had already ended with.
  job_status status = job_status::queued;
  bool asked = false;         ///< a running job: the process that runs it stops it
  bool already_ended = false; ///< it had ended (status): nothing was changed
};

/// The SQLite state store: the durable truth of the service. One object per
/// thread (it owns one connection). All read-then-write transactions use
/// BEGIN IMMEDIATE so that they wait on busy_timeout instead of failing.
class store {
public:
  ~store();
  store(store&&) noexcept;
  store& operator=(store&&) noexcept;

  /// Opens (creating with 0700 folder / 0600 file) and migrates the database.
  static expected<store> open(const std::string& path, int busy_timeout_ms = 10000);
  /// Opens an existing database for reading only: nothing is created,
  /// migrated or written (the commands that only look use it). A missing
  /// database is errc::not_found; an older schema is errc::invalid_argument.
  static expected<store> open_read_only(const std::string& path);

  static int latest_schema_version();
  expected<int> schema_version();
  /// Applies missing migrations; idempotent.
  expected<void> migrate();

  // -- sites and targets ------------------------------------------------------
  /// Upserts configured sites/targets; marks the others disabled (history kept).
  expected<void> sync_config(const std::vector<site_config>& sites);
  expected<std::vector<site_row>> list_sites(bool include_disabled = false);
  expected<std::optional<site_row>> find_site(const std::string& name);
  expected<std::optional<site_row>> get_site(std::int64_t id);
  expected<std::vector<target_row>> list_targets(std::int64_t site_id);
  /// Every site's targets in one read (by site id, each in list_targets'
  /// order): a listing of 1,000 sites needs one query, not 1,000.
  expected<std::map<std::int64_t, std::vector<target_row>>> targets_by_site();
  /// Records a target's pull and snapshot while `lease` still holds its job;
  /// false (nothing written) when the lease was lost.
  expected<bool> record_target(const job_row& lease, const target_result& result);
  /// Records a restore drill of a target: `passed` sets last_verified_at to
  /// `at` and the snapshot it restored. Only while `lease` holds the drill job.
  expected<bool> record_drill(const job_row& lease, std::int64_t site_id,
                              const std::string& target_hash, bool passed,
                              const std::string& snapshot_id, std::int64_t at);
  /// The enabled target a restore drill should verify next: one with a
  /// snapshot, least recently verified first (never verified first of all),
  /// ties by site and target order. Empty when no target has a snapshot.
  expected<std::optional<target_row>> next_drill_target();

  // -- jobs -------------------------------------------------------------------
  /// Queues a job, or returns the id of the same type already queued for the
  /// site. A queued job waiting for a retry is made due now: asking for it
  /// is asking to run it. A job with `params` (a JSON object, e.g. a
  /// restore's request) is always queued as a new job. `requested_by`: who
  /// asked ("" = the daemon's schedule; see job_row::requested_by).
  expected<enqueue_result> enqueue(job_type type, std::int64_t site_id,
                                   const std::string& params = {},
                                   const std::string& requested_by = {});
  /// Queues the applying restore (`params`) that a confirmation of the dry
  /// run `dry_run_id` asks for, once: errc::busy (naming the job it queued)
  /// when that dry run was confirmed already, errc::timeout when it ended
  /// before `not_before` (Unix ms), errc::not_found when it is not a
  /// finished restore job of the site.
  expected<enqueue_result> enqueue_confirmed(std::int64_t dry_run_id,
                                             std::int64_t site_id,
                                             const std::string& params,
                                             const std::string& requested_by,
                                             std::int64_t not_before);
  /// Cancels a job: a queued (or interrupted) one ends `cancelled` at once;
  /// a running one records the request (cancel_requested_at, an event) and
  /// the process running it stops it (its heartbeat reads the request); a
  /// job that already ended stays as it is. errc::not_found: no such job.
  expected<cancel_result> request_cancel(std::int64_t id,
                                         const std::string& requested_by);
  /// Of these jobs, the running ones someone asked to cancel.
  expected<std::vector<std::int64_t>>
  cancel_requests(const std::vector<std::int64_t>& ids);
  /// Claims the oldest due queued job whose site has no running job, if
  /// fewer than max_running of owner's jobs run. `busy_sites` are skipped too.
  expected<std::optional<job_row>>
  claim_next(const std::string& owner, std::int64_t lease_ms, int max_running,
             const std::set<std::int64_t>& busy_sites = {});
  /// Claims one specific due queued job (in-process `run --wait`).
  expected<std::optional<job_row>>
  claim_job(std::int64_t job_id, const std::string& owner, std::int64_t lease_ms);
  /// Claims the oldest due queued repository job (retention, restic_sync) of
  /// a type unless one of that type is already running anywhere.
  expected<std::optional<job_row>>
  claim_repository_job(job_type type, const std::string& owner, std::int64_t lease_ms);
  /// Extends the leases of exactly these jobs (each with its epoch) while
  /// owner still holds them; returns the ids whose lease is no longer ours.
  expected<std::vector<std::int64_t>> renew_leases(const std::string& owner,
                                                   const std::vector<job_row>& leases,
                                                   std::int64_t lease_ms);
  /// Whether `lease` (owner and epoch) still holds its running job.
  expected<bool> holds_lease(const job_row& lease);
  /// Ends an attempt for good: the job row, its `finished` event and, for
  /// site jobs, the site's health (health_of) and last preflight/backup
  /// times, in one transaction. False (nothing written) when the lease was lost.
  expected<bool> finish_job(const job_row& lease, const job_outcome& outcome);
  /// Queues the job again for `next_attempt_at` after a transient failure:
  /// failed_attempts + 1, the targets to pull, an event saying when and why
  /// (with the backoff bound the wait was drawn under), the site's health.
  /// False (nothing written) when the lease was lost.
  expected<bool> retry_job(const job_row& lease, const job_outcome& outcome,
                           std::int64_t next_attempt_at, std::int64_t backoff_bound_ms);
  /// Re-queues jobs whose lease expired (their process died) and jobs left
  /// `interrupted`, with recoveries + 1 and an event; gives up (failed)
  /// after max_recoveries. Recoveries do not use up the retry budget.
  /// `owner_alive`, when given, lets the caller declare a holder dead before
  /// its lease runs out (same host, pid gone). Returns the ids touched.
  expected<std::vector<std::int64_t>>
  recover_jobs(int max_recoveries = 3,
               const std::function<bool(const std::string&)>& owner_alive = {});
  /// Marks the running jobs of owner interrupted (clean shutdown).
  expected<int> interrupt_owned(const std::string& owner, const std::string& reason);
  expected<std::optional<job_row>> get_job(std::int64_t id);
  expected<std::vector<job_row>> list_jobs(const job_filter& filter);
  /// Number of jobs per status, for the queue depth metric.
  expected<std::vector<std::pair<std::string, std::int64_t>>> count_jobs_by_status();
  /// Sites with no backup queued/running whose last backup is older than
  /// interval (or never), for the scheduler.
  expected<std::vector<site_row>> sites_due_for_backup(std::int64_t interval_ms);
  /// The newest finished-or-not job of a type (repository jobs: site_id 0).
  expected<std::optional<job_row>> last_job_of_type(job_type type, std::int64_t site_id);
  /// The creation time of each site's newest job of `type` (site id ->
  /// created_at), in one query: the fleet's next runs without a query per site.
  expected<std::vector<std::pair<std::int64_t, std::int64_t>>>
  last_job_created_by_site(job_type type);
  /// The queued retry of each site that waits for one: site name -> next_attempt_at.
  expected<std::vector<std::pair<std::string, std::int64_t>>> pending_retries();
  /// Deletes up to `batch` finished jobs that ended before `before_ms` (with
  /// their events) and nodes stopped before it; returns the jobs deleted.
  expected<int> prune_history(std::int64_t before_ms, int batch);

  // -- events -----------------------------------------------------------------
  /// Appends an event. With a lease (epoch > 0) the event is written only
  /// while that lease holds its running job: 0 is returned otherwise.
  expected<std::int64_t> add_event(std::int64_t job_id, const std::string& level,
                                   const std::string& step, const std::string& target,
                                   const std::string& message,
                                   const std::string& data = "", std::int64_t epoch = 0);
  expected<std::vector<event_row>> list_events(std::int64_t job_id,
                                               std::int64_t after_id = 0);

  // -- live progress ------------------------------------------------------------
  /// Upserts the progress of a running step of a job's target; with
  /// `ended`, its last values and the time it ended. Only while the job runs
  /// under `epoch`: false (nothing written) otherwise. The rows of a job are
  /// deleted when its attempt ends (retry, recovery, interruption); when it
  /// finishes, the ended steps' rows stay 10 s more (for its followers) and
  /// go with the next recover_jobs().
  expected<bool> put_progress(std::int64_t job_id, std::int64_t epoch,
                              const std::string& target, const satoru::progress& now,
                              bool ended = false);
  /// The progress rows of running jobs, or of one job whatever its status,
  /// by job, target and step.
  expected<std::vector<progress_row>>
  list_progress(std::optional<std::int64_t> job_id = std::nullopt);

  // -- sync state -------------------------------------------------------------
  expected<sync_state_row> get_sync_state(const std::string& repository);
  expected<void> put_sync_state(const sync_state_row& row);

  // -- daemon liveness --------------------------------------------------------
  expected<void> node_heartbeat(const std::string& owner, int pid,
                                const std::string& metrics_listen);
  expected<void> node_stopped(const std::string& owner);
  /// A daemon whose heartbeat is younger than max_age_ms, if any.
  expected<std::optional<std::string>> live_daemon(std::int64_t max_age_ms);

  /// Raw connection for tests and migrations.
  sqlite3* handle() const;

private:
  struct impl;
  explicit store(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

/// "host:pid:random" — identifies this process as a lease holder.
std::string make_owner_id();

} // namespace satoru
