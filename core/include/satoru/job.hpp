#pragma once

/// The concepts of a job's life, shared from the store through the actors to
/// the CLI: one enum per concept, one struct per thing that travels.

#include "satoru/error.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace satoru {

/// preflight and backup belong to a site; the others to a repository:
/// retention and check to the local one, restic_sync (the copy),
/// offsite_retention and offsite_check to the off-site one; restore_drill
/// restores one target of the local repository into scratch space; restore
/// (a site job) puts a snapshot back on its edge host.
enum class job_type {
  preflight,
  backup,
  retention,
  restic_sync,
  offsite_retention,
  check,
  offsite_check,
  restore_drill,
  restore
};

/// Every job type, in declaration order.
const std::vector<job_type>& all_job_types();

/// `queued` includes a job waiting for its next attempt (`next_attempt_at`
/// in the future). `interrupted`: stopped by a shutdown; queued again at the
/// next start-up. `cancelled`: stopped for good by `satoru cancel` (or the
/// console's or API's cancel) before it ended.
enum class job_status {
  queued,
  running,
  success,
  warning,
  failed,
  interrupted,
  cancelled
};

/// Every job status, in declaration order.
const std::vector<job_status>& all_job_statuses();

const char* to_string(job_type t);
const char* to_string(job_status s);
std::optional<job_type> parse_job_type(const std::string& text);
std::optional<job_status> parse_job_status(const std::string& text);
/// success, warning, failed or cancelled: the job will not run again.
bool is_finished(job_status s);
/// A status a follower stops at: finished, or interrupted (it runs again only
/// when a daemon or another `run --wait` picks it up).
bool is_terminal(job_status s);
/// Preflight, backup and restore jobs belong to a site (one at a time per
/// site); the others to a repository.
bool is_site_job(job_type t);
/// Preflight and backup jobs: their end is the site's health. A restore
/// back to the host says nothing about how the site's backups go.
bool sets_site_health(job_type t);
/// Jobs that write or lock the off-site repository: they run one at a time
/// (a prune or check must never overlap a copy).
bool uses_offsite(job_type t);

/// Site health ("ok", "warning", "failed") of a job that ended with `s`: the
/// one place where a status becomes a health.
const char* health_of(job_status s);

/// Whether trying again can help.
enum class failure_kind {
  none,      ///< nothing failed
  transient, ///< the network, a timeout, a lock, a busy database: try again later
  permanent, ///< host key, authentication, missing path, config, integrity: an operator
             ///< must act
};

const char* to_string(failure_kind k);
/// The failure kind of an error code (see docs/architecture.md, "Retries").
failure_kind classify(errc code);
/// Combines the kinds of two failed parts: permanent wins, so a job retries
/// only when everything that failed may pass next time.
failure_kind combine(failure_kind a, failure_kind b);

/// One row of the `jobs` table; the same struct is the ticket a claimed job
/// travels with through the actors (its owner and epoch are the lease).
struct job_row {
  std::int64_t id = 0;
  std::int64_t site_id = 0; ///< 0 for repository jobs (retention, restic_sync)
  std::string site_name;
  job_type type = job_type::backup;
  job_status status = job_status::queued;
  std::int64_t created_at = 0, started_at = 0, finished_at = 0, heartbeat_at = 0;
  int attempts = 0;        ///< times claimed
  int failed_attempts = 0; ///< attempts that failed transiently (the retry budget)
  int recoveries = 0;      ///< times found orphaned by a dead process (own budget)
  std::string error;
  std::string owner;                ///< who holds the lease while running
  std::int64_t lease_until = 0;     ///< wall clock, Unix ms
  std::int64_t epoch = 0;           ///< fencing token: grows with every claim
  std::int64_t next_attempt_at = 0; ///< a queued retry waits until then
  /// Targets a retry pulls (hashes); empty = all of the site's targets.
  std::vector<std::string> retry_targets;
  /// The worst status of the targets earlier attempts already finished.
  std::optional<job_status> carried_status;
  /// What the job is asked to do beyond its type, as a JSON object (a
  /// restore's host_restore_request); "" for the other types.
  std::string params;
  /// Who asked for it: "" for the daemon's own schedule, else a person
  /// ("cli:root", "console:ana", "api:deploy-bot"); see asked_by_person().
  std::string requested_by;
  /// When someone asked to cancel it (Unix ms); 0 = never. The process that
  /// runs the job reads it with its heartbeat and cancels the job's token.
  std::int64_t cancel_requested_at = 0;
};

/// Added to the error of an applying restore that ended without being
/// applied in full: it never runs again on its own.
inline constexpr const char* not_applied_again =
    "not applied again automatically; run it again to apply";

/// A restore that changes its edge host (a `restore` job whose params say
/// `apply`): it runs at most once, and only because a person said so.
bool changes_edge_host(const job_row& job);
/// Whether a person asked for the job (the CLI, the console, the API), not
/// the daemon's schedule.
bool asked_by_person(const job_row& job);
/// Why a transiently failed attempt of `job` is not retried: a restore that
/// changes its edge host, or a preflight a person asked for (they wait for
/// the answer; the schedule's backups keep their retries). "" = it may be.
/// The one place where this is decided; the supervisor only applies it.
std::string retry_refusal(const job_row& job);
/// Whether a job cut short (a shutdown, a crash, a lapsed lease, a reload)
/// is queued again on its own: every job but one that changes its edge
/// host. The store records this decision in recover_jobs/interrupt_owned.
bool may_requeue(const job_row& job);

/// What pulling and snapshotting one target produced; also its
/// `site_targets` row.
struct target_result {
  std::string target_hash;
  job_status status = job_status::failed; ///< success, warning or failed
  std::string error;                      ///< failure or warning text
  failure_kind failure = failure_kind::none;
  std::int64_t bytes = 0; ///< pulled over the wire
  /// Bytes of the staged files the pull wrote, as staged (uncompressed,
  /// whole files): what the snapshot may add to the repository.
  std::int64_t staged_bytes = 0;
  std::int64_t files = 0;
  std::int64_t duration_ms = 0;
  std::string snapshot_id;
  std::int64_t data_added = 0;
};

/// How one attempt of a job ended, as the actor that did the work reports it.
/// The supervisor alone turns it into a finished, retried or interrupted job.
struct job_outcome {
  job_status status = job_status::failed; ///< success, warning, failed or interrupted
  std::string error;
  failure_kind failure = failure_kind::none;
  /// Backups: targets whose failure was transient (what a retry pulls).
  std::vector<std::string> retry_targets;
  /// Backups: the worst status of the targets a retry will not pull again.
  std::optional<job_status> carried_status;
};

/// The status of a backup from its parts (targets, or groups of targets
/// done in different attempts): all success → success, all failed → failed,
/// anything else → warning.
job_status combine_parts(const std::vector<job_status>& parts);

/// Exponential backoff with full jitter: the n-th retry waits a random time
/// in [0, min(max_delay, initial_delay * 2^(n-1))].
struct retry_policy {
  int max_attempts = 4;
  std::chrono::milliseconds initial_delay{60'000};
  std::chrono::milliseconds max_delay{3'600'000};

  /// Whether a job that has failed `failed_attempts` times (this one
  /// included) may run again.
  bool allows(int failed_attempts) const { return failed_attempts < max_attempts; }
  /// The upper bound of the wait before retry number `retry` (1-based).
  std::chrono::milliseconds bound(int retry) const;
  /// A wait drawn in [0, bound(retry)].
  std::chrono::milliseconds delay(int retry, std::mt19937_64& rng) const;
};

} // namespace satoru
