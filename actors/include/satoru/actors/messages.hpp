#pragma once

#include "satoru/cancel.hpp"

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/meta/type_name.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace satoru::actors {

// -- atoms (CAF 0.17: at most 10 characters) ----------------------------------
using claim_atom = caf::atom_constant<caf::atom("claim")>;
using finish_atom = caf::atom_constant<caf::atom("finish")>;
using event_atom = caf::atom_constant<caf::atom("event")>;
using health_atom = caf::atom_constant<caf::atom("health")>;
using scan_atom = caf::atom_constant<caf::atom("scan")>;
using backedup_atom = caf::atom_constant<caf::atom("backedup")>;
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

// -- messages -----------------------------------------------------------------

/// A claimed job handed from the supervisor to whoever runs it. job_id 0
/// means "nothing claimed".
struct job_ticket {
  std::int64_t job_id = 0;
  std::int64_t site_id = 0;
  std::string site_name;
  std::string type; ///< job_type as text
  std::int32_t attempt = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, job_ticket& x) {
  return f(caf::meta::type_name("job_ticket"), x.job_id, x.site_id, x.site_name, x.type,
           x.attempt);
}

/// How a job ended. status "interrupted" means cancelled by a shutdown: the
/// job is left for interrupt_owned and is not finished by the runner.
struct job_outcome {
  std::int64_t job_id = 0;
  std::string status; ///< job_status as text
  std::string error;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, job_outcome& x) {
  return f(caf::meta::type_name("job_outcome"), x.job_id, x.status, x.error);
}

/// One row for job_events.
struct job_event {
  std::int64_t job_id = 0;
  std::string level, step, target, message, data;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, job_event& x) {
  return f(caf::meta::type_name("job_event"), x.job_id, x.level, x.step, x.target,
           x.message, x.data);
}

/// Result of pulling and snapshotting one target; also the site_targets row.
struct target_outcome {
  std::string target_hash;
  std::string status;     ///< success, warning, failed
  std::string error;      ///< failure or warning text
  std::int64_t bytes = 0; ///< pulled over the wire
  std::int64_t files = 0;
  std::int64_t duration_ms = 0;
  std::string snapshot_id;
  std::int64_t data_added = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, target_outcome& x) {
  return f(caf::meta::type_name("target_outcome"), x.target_hash, x.status, x.error,
           x.bytes, x.files, x.duration_ms, x.snapshot_id, x.data_added);
}

/// Summary of a preflight run, for the site actor's decisions.
struct preflight_summary {
  bool site_ok = false;
  std::string site_error;
  std::string health;
  std::string reason;
  std::vector<std::string> failed_targets; ///< hashes
  std::vector<std::string> failed_errors;  ///< same order
  /// The host presents a key other than the pinned one: a permanent failure
  /// (retrying cannot help until an operator pins the new key).
  bool host_key_mismatch = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, preflight_summary& x) {
  return f(caf::meta::type_name("preflight_summary"), x.site_ok, x.site_error, x.health,
           x.reason, x.failed_targets, x.failed_errors, x.host_key_mismatch);
}

/// A restic snapshot of one staged target.
struct snapshot_request {
  std::int64_t job_id = 0;
  std::string site_uuid;
  std::string target_hash;
  std::string staging_dir;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, snapshot_request& x) {
  return f(caf::meta::type_name("snapshot_request"), x.job_id, x.site_uuid, x.target_hash,
           x.staging_dir);
}

struct snapshot_outcome {
  std::string status; ///< success, warning (restic exit 3), failed
  std::string error;
  std::string snapshot_id;
  std::int64_t files_new = 0, files_changed = 0, data_added = 0, bytes_processed = 0;
  std::int64_t duration_ms = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, snapshot_outcome& x) {
  return f(caf::meta::type_name("snapshot_outcome"), x.status, x.error, x.snapshot_id,
           x.files_new, x.files_changed, x.data_added, x.bytes_processed, x.duration_ms);
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

/// The sync_state row of the off-site repository.
struct sync_record {
  std::string repository; ///< redacted repository string
  std::int64_t last_attempt_at = 0, last_success_at = 0, last_success_started_at = 0;
  std::string status, error;
  std::int64_t copied = 0, lag = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, sync_record& x) {
  return f(caf::meta::type_name("sync_record"), x.repository, x.last_attempt_at,
           x.last_success_at, x.last_success_started_at, x.status, x.error, x.copied,
           x.lag);
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

/// Job counts per status (queue depth metric).
struct queue_counts {
  std::vector<std::string> statuses;
  std::vector<std::int64_t> counts;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, queue_counts& x) {
  return f(caf::meta::type_name("queue_counts"), x.statuses, x.counts);
}

} // namespace satoru::actors

/// A cancel token is shared memory between threads of one process; it is
/// never serialized.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(satoru::cancel_token)
