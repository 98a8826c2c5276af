#pragma once

#include "satoru/cancel.hpp"
#include "satoru/job.hpp"
#include "satoru/repository_ops.hpp"
#include "satoru/store.hpp"

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/detail/scope_guard.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/optional.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

namespace satoru::actors {

// -- atoms (CAF 0.17: at most 10 characters) ----------------------------------
using claim_atom = caf::atom_constant<caf::atom("claim")>;
using finish_atom = caf::atom_constant<caf::atom("finish")>;
using event_atom = caf::atom_constant<caf::atom("event")>;
using scan_atom = caf::atom_constant<caf::atom("scan")>;
using heartbeat_atom = caf::atom_constant<caf::atom("heartbeat")>;
using recover_atom = caf::atom_constant<caf::atom("recover")>;
using interrupt_atom = caf::atom_constant<caf::atom("interrupt")>;
using enqueue_atom = caf::atom_constant<caf::atom("enqueue")>;
using due_atom = caf::atom_constant<caf::atom("due")>;
using counts_atom = caf::atom_constant<caf::atom("counts")>;
using last_atom = caf::atom_constant<caf::atom("last")>;
using sync_state_atom = caf::atom_constant<caf::atom("syncstate")>;
using run_atom = caf::atom_constant<caf::atom("run")>;
using done_atom = caf::atom_constant<caf::atom("done")>;
using poll_atom = caf::atom_constant<caf::atom("poll")>;
using tick_atom = caf::atom_constant<caf::atom("tick")>;
using shutdown_atom = caf::atom_constant<caf::atom("shutdown")>;
using snapshot_atom = caf::atom_constant<caf::atom("snapshot")>;
using retention_atom = caf::atom_constant<caf::atom("retention")>;
using copy_atom = caf::atom_constant<caf::atom("copy")>;
using status_atom = caf::atom_constant<caf::atom("status")>;
using stats_atom = caf::atom_constant<caf::atom("stats")>;
using refresh_atom = caf::atom_constant<caf::atom("refresh")>;
using retry_atom = caf::atom_constant<caf::atom("retry")>;
using lease_atom = caf::atom_constant<caf::atom("lease")>;
using expire_atom = caf::atom_constant<caf::atom("expire")>;
using history_atom = caf::atom_constant<caf::atom("history")>;
using sweep_atom = caf::atom_constant<caf::atom("sweep")>;
using check_atom = caf::atom_constant<caf::atom("check")>;
using drill_atom = caf::atom_constant<caf::atom("drill")>;
using progress_atom = caf::atom_constant<caf::atom("progress")>;
using restore_atom = caf::atom_constant<caf::atom("restore")>;
using reload_atom = caf::atom_constant<caf::atom("reload")>;
using cancel_atom = caf::atom_constant<caf::atom("cancel")>;

// -- core types that travel as messages ------------------------------------------
} // namespace satoru::actors

namespace satoru {

/// A std::optional member seen by a CAF 0.17 inspector (which knows only
/// caf::optional): a flag, then the value when there is one.
template <class T> struct optional_field { std::optional<T>& value; };

template <class Inspector, class T>
typename std::enable_if<Inspector::reads_state, typename Inspector::result_type>::type
inspect(Inspector& f, optional_field<T>& x) {
  if (!x.value) return f(false);
  T copy = *x.value;
  return f(true, copy);
}

template <class Inspector, class T>
typename std::enable_if<Inspector::writes_state, typename Inspector::result_type>::type
inspect(Inspector& f, optional_field<T>& x) {
  bool flag = false;
  T tmp{};
  caf::optional_inspect_helper<T> helper{flag, tmp};
  auto guard = caf::detail::make_scope_guard([&] {
    if (flag)
      x.value = tmp;
    else
      x.value.reset();
  });
  return f(flag, helper);
}

/// CAF 0.17 inspectors for the core structs the actors pass around (found by
/// ADL, so they live in the structs' namespace).
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, job_row& x) {
  optional_field<job_status> carried{x.carried_status};
  return f(caf::meta::type_name("job_row"), x.id, x.site_id, x.site_name, x.type,
           x.status, x.created_at, x.started_at, x.finished_at, x.heartbeat_at,
           x.attempts, x.failed_attempts, x.recoveries, x.error, x.owner, x.lease_until,
           x.epoch, x.next_attempt_at, x.retry_targets, carried, x.params);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, target_result& x) {
  return f(caf::meta::type_name("target_result"), x.target_hash, x.status, x.error,
           x.failure, x.bytes, x.staged_bytes, x.files, x.duration_ms, x.snapshot_id,
           x.data_added);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, job_outcome& x) {
  optional_field<job_status> carried{x.carried_status};
  return f(caf::meta::type_name("job_outcome"), x.status, x.error, x.failure,
           x.retry_targets, carried);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, progress& x) {
  return f(caf::meta::type_name("progress"), x.step, x.bytes_done, x.bytes_total,
           x.files_done, x.files_total, x.fraction, x.rate_bytes_per_s, x.eta_seconds,
           x.changed_at_ms);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, sync_state_row& x) {
  return f(caf::meta::type_name("sync_state_row"), x.repository, x.last_attempt_at,
           x.last_success_at, x.last_success_started_at, x.status, x.error,
           x.snapshots_copied, x.offsite_lag);
}

} // namespace satoru

namespace satoru::actors {

// -- messages -----------------------------------------------------------------

/// One row for job_events. With an epoch, it is written only while that
/// lease holds the job (a worker whose lease lapsed writes nothing).
struct job_event {
  std::int64_t job_id = 0;
  std::int64_t epoch = 0;
  std::string level, step, target, message, data;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, job_event& x) {
  return f(caf::meta::type_name("job_event"), x.job_id, x.epoch, x.level, x.step,
           x.target, x.message, x.data);
}

/// The live progress of a step for job_progress (fenced by its epoch like
/// job_event); `ended` carries the step's last values.
struct job_progress {
  std::int64_t job_id = 0;
  std::int64_t epoch = 0;
  std::string target;
  progress now;
  bool ended = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, job_progress& x) {
  return f(caf::meta::type_name("job_progress"), x.job_id, x.epoch, x.target, x.now,
           x.ended);
}

/// Summary of a preflight run, for the site actor's decisions.
struct preflight_summary {
  bool site_ok = false;
  std::string site_error;
  failure_kind site_failure = failure_kind::none;
  job_status status = job_status::failed; ///< success, warning or failed
  std::string reason;
  std::vector<std::string> failed_targets; ///< hashes
  std::vector<std::string> failed_errors;  ///< same order
  /// The targets whose size on the edge host the preflight measured, and
  /// those sizes (same order): each pull's staging headroom estimate.
  std::vector<std::string> sized_targets;
  std::vector<std::int64_t> remote_bytes;
  /// The host presents a key other than the pinned one: a permanent failure
  /// (retrying cannot help until an operator pins the new key).
  bool host_key_mismatch = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, preflight_summary& x) {
  return f(caf::meta::type_name("preflight_summary"), x.site_ok, x.site_error,
           x.site_failure, x.status, x.reason, x.failed_targets, x.failed_errors,
           x.sized_targets, x.remote_bytes, x.host_key_mismatch);
}

/// A restic snapshot of one staged target.
struct snapshot_request {
  std::int64_t job_id = 0;
  std::int64_t epoch = 0; ///< the job's lease (fences the snapshot's events)
  std::string site_uuid;
  std::string target_hash;
  std::string staging_dir;
  /// What the snapshot may add to the repository: the staged size of the
  /// files its pull wrote (not the wire bytes, which compression and rsync's
  /// delta make smaller), checked against disk_min_free on the repository's
  /// filesystem before restic runs.
  std::int64_t expected_bytes = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, snapshot_request& x) {
  return f(caf::meta::type_name("snapshot_request"), x.job_id, x.epoch, x.site_uuid,
           x.target_hash, x.staging_dir, x.expected_bytes);
}

struct snapshot_outcome {
  job_status status = job_status::failed; ///< success, warning (restic exit 3), failed
  std::string error;
  failure_kind failure = failure_kind::none;
  std::string snapshot_id;
  std::int64_t files_new = 0, files_changed = 0, data_added = 0, bytes_processed = 0;
  std::int64_t duration_ms = 0;
  bool skipped = false; ///< staging unchanged: snapshot_id is the last one, still current
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, snapshot_outcome& x) {
  return f(caf::meta::type_name("snapshot_outcome"), x.status, x.error, x.failure,
           x.snapshot_id, x.files_new, x.files_changed, x.data_added, x.bytes_processed,
           x.duration_ms, x.skipped);
}

/// What an off-site copy did.
struct sync_outcome {
  bool ok = false;
  std::string error;
  std::int64_t copied = 0; ///< snapshots copied by this run
  std::int64_t lag = 0;    ///< local snapshots not in the remote afterwards
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, sync_outcome& x) {
  return f(caf::meta::type_name("sync_outcome"), x.ok, x.error, x.copied, x.lag);
}

/// Snapshot counts per site (by uuid), repository size, and how many
/// snapshots were taken after a given time.
struct repository_counts {
  bool ok = false;
  std::string error;
  std::int64_t size = 0;
  std::vector<std::string> site_uuids;
  std::vector<std::int64_t> snapshots;
  std::int64_t newer_than = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, repository_counts& x) {
  return f(caf::meta::type_name("repository_counts"), x.ok, x.error, x.size, x.site_uuids,
           x.snapshots, x.newer_than);
}

/// Job counts per status (queue depth metric) and the pending retries
/// (site name and next attempt time, Unix ms).
struct queue_counts {
  std::vector<std::string> statuses;
  std::vector<std::int64_t> counts;
  std::vector<std::string> retry_sites;
  std::vector<std::int64_t> retry_at;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, queue_counts& x) {
  return f(caf::meta::type_name("queue_counts"), x.statuses, x.counts, x.retry_sites,
           x.retry_at);
}

} // namespace satoru::actors

/// A cancel token is shared memory between threads of one process; it is
/// never serialized.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(satoru::cancel_token)
/// Only ever passed between a task thread and the actor that started it,
/// never serialized.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(satoru::retention_result)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(satoru::repository_check)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(satoru::drill_result)
