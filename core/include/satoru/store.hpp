#pragma once

#include "satoru/config.hpp"
#include "satoru/error.hpp"
#include "satoru/health.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

struct sqlite3;

namespace satoru {

enum class job_type { preflight, backup, retention, restic_sync };
/// `interrupted`: stopped by a shutdown or found orphaned by a dead process;
/// re-queued at the next start-up while attempts remain.
enum class job_status { queued, running, success, warning, failed, interrupted };

const char* to_string(job_type t);
const char* to_string(job_status s);
std::optional<job_type> parse_job_type(const std::string& text);
std::optional<job_status> parse_job_status(const std::string& text);
bool is_finished(job_status s);


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
  std::string last_status;            ///< "", success, warning, failed
  std::string last_error;
  std::int64_t last_bytes = 0;        ///< bytes transferred by the last pull
  std::int64_t last_files = 0;        ///< files transferred by the last pull
  std::int64_t last_duration_ms = 0;
  std::int64_t last_scan_at = 0;
  std::int64_t last_success_at = 0;
  std::string last_snapshot_id;
  std::int64_t last_data_added = 0;   ///< bytes restic added for the last snapshot
};

struct job_row {
  std::int64_t id = 0;
  std::int64_t site_id = 0;           ///< 0 for repository jobs (retention, restic_sync)
  std::string site_name;
  job_type type = job_type::backup;
  job_status status = job_status::queued;
  std::int64_t created_at = 0, started_at = 0, finished_at = 0, heartbeat_at = 0;
  int attempts = 0;
  std::string error;
  std::string owner;                  ///< who holds the lease while running
  std::int64_t lease_until = 0;
};

struct event_row {
  std::int64_t id = 0, job_id = 0, ts = 0;
  std::string level;                  ///< info, ok, warn, fail, error
  std::string step;                   ///< e.g. "preflight.ssh", "pull", "snapshot"
  std::string target;                 ///< target_hash or ""
  std::string message;
  std::string data;                   ///< JSON object text or ""
};

struct sync_state_row {
  std::string repository;
  std::int64_t last_attempt_at = 0, last_success_at = 0;
  std::int64_t last_success_started_at = 0; ///< start of the last successful copy
  std::string status;                 ///< "", running, success, failed
  std::string error;
  std::int64_t snapshots_copied = 0;  ///< by the last successful run
  std::int64_t offsite_lag = 0;       ///< local snapshots not yet in the remote
};

struct job_filter {
  std::optional<std::int64_t> site_id;
  std::optional<job_status> status;
  int limit = 50;
};

struct enqueue_result {
  std::int64_t id = 0;
  bool existing = false;              ///< an identical job was already queued
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
  expected<void> set_site_health(std::int64_t site_id, const std::string& health,
                                 const std::string& reason, bool preflight_done);
  expected<void> record_backup_finished(std::int64_t site_id, bool succeeded);
  struct target_scan {
    std::string status, error, snapshot_id;
    std::int64_t bytes = 0, files = 0, duration_ms = 0, data_added = 0;
  };
  expected<void> record_target_scan(std::int64_t site_id, const std::string& target_hash,
                                    const target_scan& scan);

  // -- jobs -------------------------------------------------------------------
  /// Queues a job, or returns the id of the same type already queued for the site.
  expected<enqueue_result> enqueue(job_type type, std::int64_t site_id);
  /// Claims the oldest queued job whose site has no running job, if fewer
  /// than max_running jobs hold a live lease. `busy_sites` are skipped too.
  expected<std::optional<job_row>> claim_next(const std::string& owner,
                                              std::int64_t lease_ms, int max_running,
                                              const std::set<std::int64_t>& busy_sites = {});
  /// Claims one specific queued job (in-process `run --wait`).
  expected<std::optional<job_row>> claim_job(std::int64_t job_id, const std::string& owner,
                                             std::int64_t lease_ms);
  /// Claims the oldest queued repository job (retention, restic_sync) of a
  /// type unless one of that type is already running anywhere.
  expected<std::optional<job_row>> claim_repository_job(job_type type,
                                                        const std::string& owner,
                                                        std::int64_t lease_ms);
  /// Extends the lease of every job `owner` runs. Returns how many.
  expected<int> renew_leases(const std::string& owner, std::int64_t lease_ms);
  /// Finishes a running job if owner still holds it; false if the lease was lost.
  expected<bool> finish_job(std::int64_t job_id, const std::string& owner,
                            job_status status, const std::string& error);
  /// Re-queues jobs whose lease expired (their process died) and jobs left
  /// `interrupted`, with attempts + 1 and an event; gives up (failed) after
  /// max_attempts. `owner_alive`, when given, lets the caller declare a
  /// holder dead before its lease runs out (same host, pid gone). Returns the
  /// ids touched.
  expected<std::vector<std::int64_t>> recover_jobs(
    int max_attempts = 3, const std::function<bool(const std::string&)>& owner_alive = {});
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

  // -- events -----------------------------------------------------------------
  expected<std::int64_t> add_event(std::int64_t job_id, const std::string& level,
                                   const std::string& step, const std::string& target,
                                   const std::string& message, const std::string& data = "");
  expected<std::vector<event_row>> list_events(std::int64_t job_id, std::int64_t after_id = 0);

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
