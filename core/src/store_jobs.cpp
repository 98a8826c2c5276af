#include "satoru/store.hpp"
#include "satoru/time.hpp"
#include "store_impl.hpp"

#include <boost/json.hpp>
#include <fmt/format.h>

namespace satoru {

namespace {

constexpr const char* job_columns =
    "j.id, COALESCE(j.site_id, 0), COALESCE(s.name, ''), j.type, j.status, j.created_at, "
    "j.started_at, j.finished_at, j.heartbeat_at, j.attempts, j.error, j.owner, "
    "j.lease_until, j.epoch, j.next_attempt_at, j.failed_attempts, j.recoveries, "
    "j.retry_targets, j.carried_status, j.params, j.requested_by, j.cancel_requested_at";

std::vector<std::string> split_hashes(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < text.size()) {
    auto comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    if (comma > start) out.push_back(text.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

std::string join_hashes(const std::vector<std::string>& hashes) {
  std::string out;
  for (const auto& h : hashes)
    out += (out.empty() ? "" : ",") + h;
  return out;
}

job_row read_job(const detail::statement& q) {
  job_row r;
  r.id = q.int64(0);
  r.site_id = q.int64(1);
  r.site_name = q.text(2);
  r.type = parse_job_type(q.text(3)).value_or(job_type::backup);
  r.status = parse_job_status(q.text(4)).value_or(job_status::queued);
  r.created_at = q.int64(5);
  r.started_at = q.int64(6);
  r.finished_at = q.int64(7);
  r.heartbeat_at = q.int64(8);
  r.attempts = static_cast<int>(q.int64(9));
  r.error = q.text(10);
  r.owner = q.text(11);
  r.lease_until = q.int64(12);
  r.epoch = q.int64(13);
  r.next_attempt_at = q.int64(14);
  r.failed_attempts = static_cast<int>(q.int64(15));
  r.recoveries = static_cast<int>(q.int64(16));
  r.retry_targets = split_hashes(q.text(17));
  r.carried_status = parse_job_status(q.text(18));
  r.params = q.text(19);
  r.requested_by = q.text(20);
  r.cancel_requested_at = q.int64(21);
  return r;
}

expected<std::vector<job_row>> collect_jobs(sqlite3* db, detail::statement& q) {
  std::vector<job_row> out;
  for (;;) {
    int rc = q.step();
    if (rc == SQLITE_DONE) return out;
    if (rc != SQLITE_ROW)
      return error{errc::database, std::string{"database: "} + sqlite3_errmsg(db)};
    out.push_back(read_job(q));
  }
}

expected<std::optional<job_row>> job_by_id(sqlite3* db, std::int64_t id) {
  SATORU_PREPARE(
      q, db,
      fmt::format("SELECT {} FROM jobs j LEFT JOIN sites s ON s.id = j.site_id "
                  "WHERE j.id = ?",
                  job_columns));
  q.bind(1, id);
  auto rows = collect_jobs(db, q);
  if (!rows) return rows.err();
  if (rows->empty()) return std::optional<job_row>{};
  return std::optional<job_row>{rows->front()};
}

/// Moves a queued job to running under owner's lease; false if someone else
/// claimed it first.
expected<bool> take_job(sqlite3* db, std::int64_t id, const std::string& owner,
                        std::int64_t lease_ms) {
  auto now = now_ms();
  SATORU_PREPARE(
      q, db,
      "UPDATE jobs SET status = 'running', owner = ?, started_at = ?, "
      "heartbeat_at = ?, lease_until = ?, attempts = attempts + 1, error = '', "
      "finished_at = 0, epoch = (SELECT COALESCE(MAX(epoch), 0) + 1 FROM jobs) "
      "WHERE id = ? AND status = 'queued'");
  q.bind(1, owner).bind(2, now).bind(3, now).bind(4, now + lease_ms).bind(5, id);
  if (auto r = q.run(); !r) return r.err();
  return sqlite3_changes(db) == 1;
}

expected<void> insert_event(sqlite3* db, std::int64_t job_id, const std::string& level,
                            const std::string& step, const std::string& target,
                            const std::string& message, const std::string& data = "") {
  SATORU_PREPARE(
      q, db,
      "INSERT INTO job_events (job_id, ts, level, step, target, message, data) "
      "VALUES (?,?,?,?,?,?,?)");
  q.bind(1, job_id).bind(2, now_ms()).bind(3, level).bind(4, step).bind(5, target);
  q.bind(6, message).bind(7, data);
  return q.run();
}

/// An attempt ended: its live progress is no longer current. With
/// `keep_ended`, the last values of the steps that ended stay a little
/// (drop_finished_progress): a follower polling the job sees where its last
/// step ended even when the job finished right after it.
expected<void> delete_progress(sqlite3* db, std::int64_t job_id,
                               bool keep_ended = false) {
  SATORU_PREPARE(q, db,
                 keep_ended ? "DELETE FROM job_progress WHERE job_id = ? AND ended_at = 0"
                            : "DELETE FROM job_progress WHERE job_id = ?");
  q.bind(1, job_id);
  return q.run();
}

/// How long the ended steps of a finished job stay in job_progress.
constexpr std::int64_t finished_progress_kept_ms = 10'000;

/// Deletes what finish_job left of the progress of jobs finished a while ago.
expected<void> drop_finished_progress(sqlite3* db, std::int64_t now) {
  SATORU_PREPARE(q, db,
                 "DELETE FROM job_progress WHERE job_id IN (SELECT id FROM jobs WHERE "
                 "status <> 'running' AND finished_at < ?)");
  q.bind(1, now - finished_progress_kept_ms);
  return q.run();
}

/// take_job plus its "started" event, and the row as it is now; nothing
/// when another process was quicker.
expected<std::optional<job_row>>
start_job(sqlite3* db, std::int64_t id, const std::string& owner, std::int64_t lease_ms) {
  auto taken = take_job(db, id, owner, lease_ms);
  if (!taken) return taken.err();
  if (!*taken) return std::optional<job_row>{};
  auto row = job_by_id(db, id);
  if (!row || !*row) return row;
  if (auto r = insert_event(db, id, "info", "started", "",
                            fmt::format("attempt {} started by {} (lease epoch {})",
                                        (*row)->attempts, owner, (*row)->epoch));
      !r)
    return r.err();
  return row;
}

/// A cheap read before a claim's write transaction: an idle queue (the
/// common case, polled twice a second) then costs no write lock at all.
bool any_queued(sqlite3* db, const char* types_sql) {
  detail::statement q{
      db, std::string{"SELECT 1 FROM jobs WHERE status = 'queued' AND type IN ("} +
              types_sql + ") LIMIT 1"};
  return !q.ok() || q.step() == SQLITE_ROW; // on doubt, take the slow path
}

/// The job types `pick` chooses, as an SQL list ("'a', 'b'").
std::string types_sql(bool (*pick)(job_type)) {
  std::string out;
  for (auto t : all_job_types())
    if (pick(t)) out += (out.empty() ? "'" : ", '") + std::string{to_string(t)} + "'";
  return out;
}

/// The job types that use the off-site repository, as an SQL list.
std::string offsite_types_sql() {
  return types_sql(uses_offsite);
}

/// A new queued job and its "queued" event (inside the caller's transaction).
expected<enqueue_result> insert_job(sqlite3* db, job_type type, std::int64_t site_id,
                                    const std::string& params,
                                    const std::string& requested_by) {
  SATORU_PREPARE(q, db,
                 "INSERT INTO jobs (site_id, type, status, created_at, params, "
                 "requested_by) VALUES (?, ?, 'queued', ?, ?, ?)");
  if (site_id > 0)
    q.bind(1, site_id);
  else
    q.bind_null(1);
  q.bind(2, to_string(type)).bind(3, now_ms()).bind(4, params).bind(5, requested_by);
  if (auto r = q.run(); !r) return r.err();
  auto id = sqlite3_last_insert_rowid(db);
  auto message =
      requested_by.empty() ? std::string{"job queued"} : "job queued by " + requested_by;
  if (auto r = insert_event(db, id, "info", "queued", "", message); !r) return r.err();
  return enqueue_result{id, false};
}

} // namespace

expected<enqueue_result> store::enqueue(job_type type, std::int64_t site_id,
                                        const std::string& params,
                                        const std::string& requested_by) {
  auto db = impl_->db.get();
  return detail::with_write_transaction(impl_->db, [&]() -> expected<enqueue_result> {
    // Asking again for a job that is already waiting returns that job; a job
    // with params is a request of its own (two restores are two jobs).
    SATORU_PREPARE(find, db,
                   "SELECT id FROM jobs WHERE type = ? AND status = 'queued' AND "
                   "COALESCE(site_id, 0) = ? AND params = '' ORDER BY id LIMIT 1");
    find.bind(1, to_string(type)).bind(2, site_id);
    if (params.empty() && find.step() == SQLITE_ROW) {
      auto id = find.int64(0);
      SATORU_PREPARE(due, db,
                     "UPDATE jobs SET next_attempt_at = 0 WHERE id = ? AND "
                     "next_attempt_at > ?");
      due.bind(1, id).bind(2, now_ms());
      if (auto r = due.run(); !r) return r.err();
      if (sqlite3_changes(db) == 1)
        if (auto r = insert_event(db, id, "info", "queued", "",
                                  "asked to run again: the retry starts now");
            !r)
          return r.err();
      return enqueue_result{id, true};
    }
    return insert_job(db, type, site_id, params, requested_by);
  });
}

expected<enqueue_result> store::enqueue_confirmed(std::int64_t dry_run_id,
                                                  std::int64_t site_id,
                                                  const std::string& params,
                                                  const std::string& requested_by,
                                                  std::int64_t not_before) {
  auto db = impl_->db.get();
  return detail::with_write_transaction(impl_->db, [&]() -> expected<enqueue_result> {
    SATORU_PREPARE(q, db,
                   "SELECT confirmed_by, finished_at FROM jobs WHERE id = ? AND "
                   "type = 'restore' AND site_id = ? AND finished_at > 0");
    q.bind(1, dry_run_id).bind(2, site_id);
    int rc = q.step();
    if (rc == SQLITE_DONE)
      return error{
          errc::not_found,
          fmt::format("job {} is not a finished restore of this site", dry_run_id)};
    if (rc != SQLITE_ROW) return impl_->db.last_error("reading the dry run");
    if (auto used = q.int64(0); used != 0)
      return error{errc::busy, fmt::format("the dry run (job {}) was confirmed already: "
                                           "job {}; preview it again to restore again",
                                           dry_run_id, used)};
    if (q.int64(1) < not_before)
      return error{errc::timeout,
                   fmt::format("the dry run (job {}) ended at {}, more than an hour "
                               "ago; preview it again",
                               dry_run_id, format_time(q.int64(1)))};
    auto queued = insert_job(db, job_type::restore, site_id, params, requested_by);
    if (!queued) return queued.err();
    SATORU_PREPARE(u, db, "UPDATE jobs SET confirmed_by = ? WHERE id = ?");
    u.bind(1, queued->id).bind(2, dry_run_id);
    if (auto r = u.run(); !r) return r.err();
    return queued;
  });
}

expected<cancel_result> store::request_cancel(std::int64_t id,
                                              const std::string& requested_by) {
  auto db = impl_->db.get();
  return detail::with_write_transaction(impl_->db, [&]() -> expected<cancel_result> {
    auto row = job_by_id(db, id);
    if (!row) return row.err();
    if (!*row) return error{errc::not_found, fmt::format("no job {}", id)};
    const auto status = (*row)->status;
    if (is_finished(status)) return cancel_result{status, false, true};
    auto now = now_ms();
    const bool running = status == job_status::running;
    SATORU_PREPARE(u, db,
                   running ? "UPDATE jobs SET cancel_requested_at = ?1 WHERE id = ?2"
                           : "UPDATE jobs SET status = 'cancelled', finished_at = ?1, "
                             "next_attempt_at = 0, owner = '', lease_until = 0, "
                             "cancel_requested_at = ?1, error = ?3 WHERE id = ?2");
    auto message = running ? "cancel requested by " + requested_by
                           : "cancelled by " + requested_by + " before it ran";
    u.bind(1, now).bind(2, id);
    if (!running) u.bind(3, message);
    if (auto r = u.run(); !r) return r.err();
    if (auto r = insert_event(db, id, "warn", running ? "cancel" : "finished", "",
                              running ? message : "job finished: cancelled: " + message);
        !r)
      return r.err();
    if (running) return cancel_result{job_status::running, true};
    if (auto r = delete_progress(db, id); !r) return r.err();
    return cancel_result{job_status::cancelled, false};
  });
}

expected<std::vector<std::int64_t>>
store::cancel_requests(const std::vector<std::int64_t>& ids) {
  std::vector<std::int64_t> out;
  for (auto id : ids) {
    SATORU_PREPARE(q, impl_->db.get(),
                   "SELECT 1 FROM jobs WHERE id = ? AND status = 'running' AND "
                   "cancel_requested_at > 0");
    q.bind(1, id);
    int rc = q.step();
    if (rc == SQLITE_ROW) out.push_back(id);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
      return impl_->db.last_error("reading cancel requests");
  }
  return out;
}

expected<std::optional<job_row>>
store::claim_next(const std::string& owner, std::int64_t lease_ms, int max_running,
                  const std::set<std::int64_t>& busy_sites) {
  auto db = impl_->db.get();
  using result = std::optional<job_row>;
  const std::string site_types = types_sql(is_site_job);
  if (!any_queued(db, site_types.c_str())) return result{};
  return detail::with_write_transaction(impl_->db, [&]() -> expected<result> {
    SATORU_PREPARE(count, db,
                   "SELECT COUNT(*) FROM jobs WHERE status = 'running' AND owner = ? AND "
                   "site_id IS NOT NULL AND type IN (" +
                       site_types + ")");
    count.bind(1, owner);
    if (count.step() != SQLITE_ROW) return impl_->db.last_error("counting running jobs");
    if (count.int64(0) >= max_running) return result{};
    std::string skip;
    for (auto id : busy_sites)
      skip += fmt::format(" AND j.site_id <> {}", id);
    // FIFO over jobs whose site is enabled and not running anything, in any process.
    SATORU_PREPARE(
        pick, db,
        "SELECT j.id FROM jobs j JOIN sites s ON s.id = j.site_id "
        "WHERE j.status = 'queued' AND j.next_attempt_at <= ?1 AND s.enabled = 1 AND "
        "j.type IN (" +
            site_types +
            ") AND NOT EXISTS (SELECT 1 FROM jobs r WHERE "
            "r.site_id = "
            "j.site_id AND r.status = 'running')" +
            skip + " ORDER BY j.id LIMIT 1");
    pick.bind(1, now_ms());
    int rc = pick.step();
    if (rc == SQLITE_DONE) return result{};
    if (rc != SQLITE_ROW) return impl_->db.last_error("picking a job");
    auto id = pick.int64(0);
    return start_job(db, id, owner, lease_ms);
  });
}

expected<std::optional<job_row>>
store::claim_job(std::int64_t job_id, const std::string& owner, std::int64_t lease_ms) {
  auto db = impl_->db.get();
  using result = std::optional<job_row>;
  return detail::with_write_transaction(impl_->db, [&]() -> expected<result> {
    // A site still runs one job at a time, whoever runs it.
    SATORU_PREPARE(busy, db,
                   "SELECT 1 FROM jobs j JOIN jobs r ON r.site_id = j.site_id "
                   "WHERE j.id = ? AND r.status = 'running' AND r.id <> j.id");
    busy.bind(1, job_id);
    if (busy.step() == SQLITE_ROW) return result{};
    // The off-site repository too (a `sync --wait` and a `prune --offsite
    // --wait` run in two processes).
    SATORU_PREPARE(kind, db, "SELECT type FROM jobs WHERE id = ?");
    kind.bind(1, job_id);
    if (kind.step() == SQLITE_ROW)
      if (auto type = parse_job_type(kind.text(0)); type && uses_offsite(*type)) {
        SATORU_PREPARE(offsite, db,
                       "SELECT 1 FROM jobs WHERE type IN (" + offsite_types_sql() +
                           ") AND status = 'running' AND id <> ? LIMIT 1");
        offsite.bind(1, job_id);
        if (offsite.step() == SQLITE_ROW) return result{};
      }
    // A retry waits for its time here too.
    SATORU_PREPARE(due, db, "SELECT 1 FROM jobs WHERE id = ? AND next_attempt_at > ?");
    due.bind(1, job_id).bind(2, now_ms());
    if (due.step() == SQLITE_ROW) return result{};
    return start_job(db, job_id, owner, lease_ms);
  });
}

expected<std::optional<job_row>> store::claim_repository_job(job_type type,
                                                             const std::string& owner,
                                                             std::int64_t lease_ms) {
  auto db = impl_->db.get();
  using result = std::optional<job_row>;
  if (!any_queued(db, (std::string{"'"} + to_string(type) + "'").c_str()))
    return result{};
  return detail::with_write_transaction(impl_->db, [&]() -> expected<result> {
    // One of each type at a time; one at a time on the off-site repository.
    std::string types = uses_offsite(type) ? offsite_types_sql()
                                           : "'" + std::string{to_string(type)} + "'";
    SATORU_PREPARE(busy, db,
                   "SELECT 1 FROM jobs WHERE type IN (" + types +
                       ") AND status = 'running' LIMIT 1");
    if (busy.step() == SQLITE_ROW) return result{};
    SATORU_PREPARE(pick, db,
                   "SELECT id FROM jobs WHERE type = ? AND status = 'queued' AND "
                   "next_attempt_at <= ? ORDER BY id LIMIT 1");
    pick.bind(1, to_string(type)).bind(2, now_ms());
    if (pick.step() != SQLITE_ROW) return result{};
    auto id = pick.int64(0);
    return start_job(db, id, owner, lease_ms);
  });
}

expected<std::vector<std::int64_t>>
store::renew_leases(const std::string& owner, const std::vector<job_row>& leases,
                    std::int64_t lease_ms) {
  auto db = impl_->db.get();
  using ids = std::vector<std::int64_t>;
  if (leases.empty()) return ids{};
  return detail::with_write_transaction(impl_->db, [&]() -> expected<ids> {
    auto now = now_ms();
    ids lost;
    for (const auto& lease : leases) {
      SATORU_PREPARE(q, db,
                     "UPDATE jobs SET heartbeat_at = ?, lease_until = ? WHERE id = ? AND "
                     "owner = ? AND epoch = ? AND status = 'running'");
      q.bind(1, now).bind(2, now + lease_ms).bind(3, lease.id).bind(4, owner);
      q.bind(5, lease.epoch);
      if (auto r = q.run(); !r) return r.err();
      if (sqlite3_changes(db) != 1) lost.push_back(lease.id);
    }
    return lost;
  });
}

namespace {

/// The fence every write of a job's results passes: the job still runs
/// under this owner and epoch.
constexpr const char* lease_holds =
    "EXISTS (SELECT 1 FROM jobs WHERE id = ? AND owner = ? AND epoch = ? AND "
    "status = 'running')";

expected<bool> lease_holds_now(sqlite3* db, const job_row& lease) {
  SATORU_PREPARE(q, db, std::string{"SELECT "} + lease_holds);
  q.bind(1, lease.id).bind(2, lease.owner).bind(3, lease.epoch);
  if (q.step() != SQLITE_ROW)
    return error{errc::database, std::string{"database: "} + sqlite3_errmsg(db)};
  return q.int64(0) != 0;
}

/// What a site job's end tells about its site: health and reason, the time
/// of its last preflight and, for a finished backup, of its last backup.
expected<void> record_site_effects(sqlite3* db, const job_row& job, job_status status,
                                   const std::string& reason, bool finished) {
  // A cancelled job says nothing about how the site is.
  if (job.site_id <= 0 || !sets_site_health(job.type) || status == job_status::cancelled)
    return {};
  auto now = now_ms();
  bool backup_done = finished && job.type == job_type::backup;
  SATORU_PREPARE(q, db,
                 "UPDATE sites SET health = ?, health_reason = ?, updated_at = ?, "
                 "last_preflight_at = ?, "
                 "last_backup_at = CASE WHEN ? THEN ? ELSE last_backup_at END, "
                 "last_success_at = CASE WHEN ? THEN ? ELSE last_success_at END "
                 "WHERE id = ?");
  q.bind(1, health_of(status)).bind(2, reason).bind(3, now).bind(4, now);
  q.bind(5, backup_done ? 1 : 0).bind(6, now);
  q.bind(7, backup_done && status != job_status::failed ? 1 : 0).bind(8, now);
  q.bind(9, job.site_id);
  return q.run();
}

std::string success_reason(job_type type) {
  return type == job_type::preflight ? "preflight passed" : "last backup succeeded";
}

} // namespace

expected<bool> store::holds_lease(const job_row& lease) {
  return lease_holds_now(impl_->db.get(), lease);
}

namespace {

/// finish_job inside the caller's transaction.
expected<bool> write_finished(sqlite3* db, const job_row& lease,
                              const job_outcome& outcome) {
  SATORU_PREPARE(q, db,
                 "UPDATE jobs SET status = ?, error = ?, finished_at = ?, heartbeat_at = "
                 "?, next_attempt_at = 0 WHERE id = ? AND owner = ? AND epoch = ? AND "
                 "status = 'running'");
  auto now = now_ms();
  q.bind(1, to_string(outcome.status)).bind(2, outcome.error).bind(3, now).bind(4, now);
  q.bind(5, lease.id).bind(6, lease.owner).bind(7, lease.epoch);
  if (auto r = q.run(); !r) return r.err();
  if (sqlite3_changes(db) != 1) return false;
  auto msg =
      outcome.error.empty()
          ? fmt::format("job finished: {}", to_string(outcome.status))
          : fmt::format("job finished: {}: {}", to_string(outcome.status), outcome.error);
  const char* level =
      outcome.status == job_status::success ? "ok"
      : outcome.status == job_status::warning || outcome.status == job_status::cancelled
          ? "warn"
          : "fail";
  if (auto r = insert_event(db, lease.id, level, "finished", "", msg); !r) return r.err();
  if (auto r = delete_progress(db, lease.id, true); !r) return r.err();
  auto reason =
      outcome.status == job_status::success ? success_reason(lease.type) : outcome.error;
  if (auto r = record_site_effects(db, lease, outcome.status, reason, true); !r)
    return r.err();
  return true;
}

/// When someone asked to cancel the job (Unix ms; 0 = nobody).
expected<std::int64_t> cancel_requested_at(sqlite3* db, std::int64_t id) {
  SATORU_PREPARE(q, db, "SELECT cancel_requested_at FROM jobs WHERE id = ?");
  q.bind(1, id);
  int rc = q.step();
  if (rc == SQLITE_DONE) return std::int64_t{0};
  if (rc != SQLITE_ROW)
    return error{errc::database, std::string{"database: "} + sqlite3_errmsg(db)};
  return q.int64(0);
}

} // namespace

expected<bool> store::finish_job(const job_row& lease, const job_outcome& outcome) {
  return detail::with_write_transaction(
      impl_->db, [&]() { return write_finished(impl_->db.get(), lease, outcome); });
}

expected<bool> store::retry_job(const job_row& lease, const job_outcome& outcome,
                                std::int64_t next_attempt_at,
                                std::int64_t backoff_bound_ms) {
  auto db = impl_->db.get();
  return detail::with_write_transaction(impl_->db, [&]() -> expected<bool> {
    // A cancel asked for while the attempt ended wins over its retry.
    auto asked = cancel_requested_at(db, lease.id);
    if (!asked) return asked.err();
    if (*asked > 0)
      return write_finished(
          db, lease,
          job_outcome{job_status::cancelled,
                      "cancelled (its attempt had failed: " + outcome.error + ")",
                      outcome.failure,
                      {},
                      std::nullopt});
    SATORU_PREPARE(
        q, db,
        "UPDATE jobs SET status = 'queued', owner = '', lease_until = 0, "
        "next_attempt_at = ?, failed_attempts = failed_attempts + 1, error = ?, "
        "retry_targets = ?, carried_status = ? WHERE id = ? AND owner = ? AND "
        "epoch = ? AND status = 'running'");
    q.bind(1, next_attempt_at).bind(2, outcome.error);
    q.bind(3, join_hashes(outcome.retry_targets));
    q.bind(4, outcome.carried_status ? to_string(*outcome.carried_status) : "");
    q.bind(5, lease.id).bind(6, lease.owner).bind(7, lease.epoch);
    if (auto r = q.run(); !r) return r.err();
    if (sqlite3_changes(db) != 1) return false;
    auto wait = next_attempt_at - now_ms();
    auto msg = fmt::format(
        "attempt {} {} ({} failure): {}; next attempt at {} (in {}){}", lease.attempts,
        to_string(outcome.status), to_string(outcome.failure), outcome.error,
        format_time(next_attempt_at), format_duration(std::max<std::int64_t>(wait, 0)),
        outcome.retry_targets.empty()
            ? ""
            : fmt::format(", pulling only {} target(s)", outcome.retry_targets.size()));
    boost::json::object data{{"failed_attempts", lease.failed_attempts + 1},
                             {"next_attempt_at", next_attempt_at},
                             {"delay_ms", std::max<std::int64_t>(wait, 0)},
                             {"backoff_bound_ms", backoff_bound_ms},
                             {"failure", to_string(outcome.failure)}};
    if (auto r = insert_event(db, lease.id, "warn", "retry", "", msg,
                              boost::json::serialize(data));
        !r)
      return r.err();
    if (auto r = delete_progress(db, lease.id); !r) return r.err();
    auto reason =
        fmt::format("retrying at {}: {}", format_time(next_attempt_at), outcome.error);
    if (auto r = record_site_effects(db, lease, outcome.status, reason, false); !r)
      return r.err();
    return true;
  });
}

namespace {

/// Ends a job cut short that must not run again on its own (may_requeue()
/// said so, or someone asked to cancel it): `failed` with why and
/// not_applied_again, or `cancelled`; with its event.
expected<void> end_cut_short(sqlite3* db, const job_row& job, const std::string& why,
                             const char* step) {
  const bool cancel = job.cancel_requested_at > 0;
  auto status = cancel ? job_status::cancelled : job_status::failed;
  auto message = cancel ? fmt::format("cancelled: the job {}", why)
                        : fmt::format("the job {}; {}", why, not_applied_again);
  SATORU_PREPARE(u, db,
                 "UPDATE jobs SET status = ?, finished_at = ?, error = ?, owner = '', "
                 "lease_until = 0 WHERE id = ?");
  u.bind(1, to_string(status)).bind(2, now_ms()).bind(3, message).bind(4, job.id);
  if (auto r = u.run(); !r) return r.err();
  if (auto r = insert_event(db, job.id, cancel ? "warn" : "fail", step, "", message); !r)
    return r.err();
  return delete_progress(db, job.id);
}

/// The newest plugin crash recorded for a job (record_plugin_crashes), ""
/// when none: a job given up after recoveries names what killed its
/// processes in its error, not only in its events.
expected<std::string> last_plugin_crash(sqlite3* db, std::int64_t job_id) {
  SATORU_PREPARE(q, db,
                 "SELECT message FROM job_events WHERE job_id = ? AND step = 'plugin' "
                 "AND level = 'fail' ORDER BY id DESC LIMIT 1");
  q.bind(1, job_id);
  int rc = q.step();
  if (rc == SQLITE_ROW) return q.text(0);
  if (rc == SQLITE_DONE) return std::string{};
  return error{errc::database, std::string{"database: "} + sqlite3_errmsg(db)};
}

/// Why a running or interrupted job is orphaned ("" when it is not).
std::string orphaned_because(const job_row& c, std::int64_t now,
                             const std::function<bool(const std::string&)>& owner_alive) {
  if (c.status == job_status::interrupted) return "was interrupted by a shutdown";
  if (c.lease_until < now)
    return fmt::format("was left running by {} whose lease ran out at {}", c.owner,
                       format_time(c.lease_until));
  if (owner_alive && !owner_alive(c.owner))
    return fmt::format("was left running by {}, which is no longer alive", c.owner);
  return "";
}

} // namespace

expected<std::vector<std::int64_t>>
store::recover_jobs(int max_recoveries,
                    const std::function<bool(const std::string&)>& owner_alive) {
  auto db = impl_->db.get();
  using ids = std::vector<std::int64_t>;
  return detail::with_write_transaction(impl_->db, [&]() -> expected<ids> {
    auto now = now_ms();
    if (auto r = drop_finished_progress(db, now); !r) return r.err();
    SATORU_PREPARE(q, db,
                   fmt::format("SELECT {} FROM jobs j LEFT JOIN sites s ON s.id = "
                               "j.site_id WHERE j.status IN ('running', 'interrupted') "
                               "ORDER BY j.id",
                               job_columns));
    auto candidates = collect_jobs(db, q);
    if (!candidates) return candidates.err();
    ids touched;
    for (const auto& c : *candidates) {
      std::string why = orphaned_because(c, now, owner_alive);
      if (why.empty()) continue;
      touched.push_back(c.id);
      if (!may_requeue(c) || c.cancel_requested_at > 0) {
        if (auto r = end_cut_short(db, c, why, "recovery"); !r) return r.err();
        continue;
      }
      int recoveries = c.recoveries + 1;
      bool give_up = recoveries > max_recoveries;
      SATORU_PREPARE(
          u, db,
          give_up ? "UPDATE jobs SET status = 'failed', finished_at = ?, error = ?, "
                    "recoveries = ? WHERE id = ?"
                  : "UPDATE jobs SET status = 'queued', owner = '', lease_until = "
                    "0, finished_at = ?, error = ?, recoveries = ? WHERE id = ?");
      auto message = give_up ? fmt::format("the job {}; giving up after {} recoveries",
                                           why, max_recoveries)
                             : fmt::format("the job {}; queued again (recovery {} of {})",
                                           why, recoveries, max_recoveries);
      if (give_up) {
        auto crash = last_plugin_crash(db, c.id);
        if (!crash) return crash.err();
        if (!crash->empty()) message += " (last: " + *crash + ")";
      }
      u.bind(1, give_up ? now : 0)
          .bind(2, give_up ? message : std::string{})
          .bind(3, recoveries)
          .bind(4, c.id);
      if (auto r = u.run(); !r) return r.err();
      if (auto r =
              insert_event(db, c.id, give_up ? "fail" : "warn", "recovery", "", message);
          !r)
        return r.err();
      if (auto r = delete_progress(db, c.id); !r) return r.err();
    }
    return touched;
  });
}

expected<int> store::interrupt_owned(const std::string& owner,
                                     const std::string& reason) {
  auto db = impl_->db.get();
  return detail::with_write_transaction(impl_->db, [&]() -> expected<int> {
    SATORU_PREPARE(q, db,
                   fmt::format("SELECT {} FROM jobs j LEFT JOIN sites s ON s.id = "
                               "j.site_id WHERE j.owner = ? AND j.status = 'running'",
                               job_columns));
    q.bind(1, owner);
    auto jobs = collect_jobs(db, q);
    if (!jobs) return jobs.err();
    for (const auto& job : *jobs) {
      if (!may_requeue(job) || job.cancel_requested_at > 0) {
        // Not queued again at the next start: it ends here.
        if (auto r =
                end_cut_short(db, job, "was stopped (" + reason + ")", "interrupted");
            !r)
          return r.err();
        continue;
      }
      SATORU_PREPARE(u, db,
                     "UPDATE jobs SET status = 'interrupted', error = ?, finished_at = ? "
                     "WHERE id = ?");
      u.bind(1, reason).bind(2, now_ms()).bind(3, job.id);
      if (auto r = u.run(); !r) return r.err();
      if (auto r = insert_event(db, job.id, "warn", "interrupted", "", reason); !r)
        return r.err();
      if (auto r = delete_progress(db, job.id); !r) return r.err();
    }
    return static_cast<int>(jobs->size());
  });
}

expected<std::optional<job_row>> store::get_job(std::int64_t id) {
  return job_by_id(impl_->db.get(), id);
}

expected<std::vector<job_row>> store::list_jobs(const job_filter& filter) {
  std::string where = "WHERE 1 = 1";
  if (filter.site_id) where += " AND j.site_id = ?1";
  if (filter.status) where += " AND j.status = ?2";
  SATORU_PREPARE(
      q, impl_->db.get(),
      fmt::format("SELECT {} FROM jobs j LEFT JOIN sites s ON s.id = j.site_id "
                  "{} ORDER BY j.id DESC LIMIT ?3",
                  job_columns, where));
  if (filter.site_id) q.bind(1, *filter.site_id);
  if (filter.status) q.bind(2, to_string(*filter.status));
  q.bind(3, filter.limit);
  return collect_jobs(impl_->db.get(), q);
}

expected<std::vector<std::pair<std::string, std::int64_t>>>
store::count_jobs_by_status() {
  SATORU_PREPARE(q, impl_->db.get(), "SELECT status, COUNT(*) FROM jobs GROUP BY status");
  std::vector<std::pair<std::string, std::int64_t>> out;
  while (q.step() == SQLITE_ROW)
    out.emplace_back(q.text(0), q.int64(1));
  return out;
}

expected<std::optional<job_row>> store::last_job_of_type(job_type type,
                                                         std::int64_t site_id) {
  SATORU_PREPARE(
      q, impl_->db.get(),
      fmt::format("SELECT {} FROM jobs j LEFT JOIN sites s ON s.id = j.site_id "
                  "WHERE j.type = ? AND COALESCE(j.site_id, 0) = ? "
                  "ORDER BY j.id DESC LIMIT 1",
                  job_columns));
  q.bind(1, to_string(type)).bind(2, site_id);
  auto rows = collect_jobs(impl_->db.get(), q);
  if (!rows) return rows.err();
  if (rows->empty()) return std::optional<job_row>{};
  return std::optional<job_row>{rows->front()};
}

expected<std::int64_t> store::add_event(std::int64_t job_id, const std::string& level,
                                        const std::string& step,
                                        const std::string& target,
                                        const std::string& message,
                                        const std::string& data, std::int64_t epoch) {
  auto db = impl_->db.get();
  if (epoch == 0) {
    if (auto r = insert_event(db, job_id, level, step, target, message, data); !r)
      return r.err();
    return static_cast<std::int64_t>(sqlite3_last_insert_rowid(db));
  }
  // A worker whose lease lapsed writes nothing more into its job's history.
  SATORU_PREPARE(
      q, db,
      "INSERT INTO job_events (job_id, ts, level, step, target, message, data) "
      "SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 WHERE EXISTS (SELECT 1 FROM jobs "
      "WHERE id = ?1 AND epoch = ?8 AND status = 'running')");
  q.bind(1, job_id).bind(2, now_ms()).bind(3, level).bind(4, step).bind(5, target);
  q.bind(6, message).bind(7, data).bind(8, epoch);
  if (auto r = q.run(); !r) return r.err();
  if (sqlite3_changes(db) != 1) return std::int64_t{0};
  return static_cast<std::int64_t>(sqlite3_last_insert_rowid(db));
}

expected<bool> store::put_progress(std::int64_t job_id, std::int64_t epoch,
                                   const std::string& target, const satoru::progress& now,
                                   bool ended) {
  auto db = impl_->db.get();
  // Fenced like add_event: a worker whose lease lapsed shows nothing more.
  SATORU_PREPARE(
      q, db,
      "INSERT INTO job_progress (job_id, target, step, bytes_done, bytes_total, "
      "files_done, files_total, fraction, rate_bytes_per_s, eta_seconds, changed_at, "
      "updated_at, ended_at) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, "
      "?13 WHERE EXISTS (SELECT 1 FROM jobs WHERE id = ?1 AND epoch = ?14 AND status = "
      "'running') ON CONFLICT (job_id, target, step) DO UPDATE SET "
      "bytes_done = excluded.bytes_done, bytes_total = excluded.bytes_total, "
      "files_done = excluded.files_done, files_total = excluded.files_total, "
      "fraction = excluded.fraction, rate_bytes_per_s = excluded.rate_bytes_per_s, "
      "eta_seconds = excluded.eta_seconds, changed_at = excluded.changed_at, "
      "updated_at = excluded.updated_at, ended_at = excluded.ended_at");
  const auto t = now_ms();
  q.bind(1, job_id).bind(2, target).bind(3, now.step);
  q.bind(4, static_cast<std::int64_t>(now.bytes_done));
  q.bind(5, static_cast<std::int64_t>(now.bytes_total));
  q.bind(6, static_cast<std::int64_t>(now.files_done));
  q.bind(7, static_cast<std::int64_t>(now.files_total));
  q.bind(8, now.fraction).bind(9, now.rate_bytes_per_s).bind(10, now.eta_seconds);
  q.bind(11, now.changed_at_ms).bind(12, t).bind(13, ended ? t : std::int64_t{0});
  q.bind(14, epoch);
  if (auto r = q.run(); !r) return r.err();
  return sqlite3_changes(db) == 1;
}

expected<std::vector<progress_row>>
store::list_progress(std::optional<std::int64_t> job_id) {
  SATORU_PREPARE(
      q, impl_->db.get(),
      "SELECT p.job_id, p.target, p.step, p.bytes_done, p.bytes_total, p.files_done, "
      "p.files_total, p.fraction, p.rate_bytes_per_s, p.eta_seconds, p.changed_at, "
      "p.updated_at, p.ended_at FROM job_progress p JOIN jobs j ON j.id = p.job_id "
      "WHERE (?1 IS NULL AND j.status = 'running') OR p.job_id = ?1 "
      "ORDER BY p.job_id, p.target, p.updated_at");
  if (job_id)
    q.bind(1, *job_id);
  else
    q.bind_null(1);
  std::vector<progress_row> out;
  for (;;) {
    int rc = q.step();
    if (rc == SQLITE_DONE) return out;
    if (rc != SQLITE_ROW) return impl_->db.last_error("reading job_progress");
    progress_row r;
    r.job_id = q.int64(0);
    r.target = q.text(1);
    r.now.step = q.text(2);
    r.now.bytes_done = static_cast<std::uint64_t>(q.int64(3));
    r.now.bytes_total = static_cast<std::uint64_t>(q.int64(4));
    r.now.files_done = static_cast<std::uint64_t>(q.int64(5));
    r.now.files_total = static_cast<std::uint64_t>(q.int64(6));
    r.now.fraction = q.real(7);
    r.now.rate_bytes_per_s = q.real(8);
    r.now.eta_seconds = q.int64(9);
    r.now.changed_at_ms = q.int64(10);
    r.updated_at = q.int64(11);
    r.ended_at = q.int64(12);
    out.push_back(std::move(r));
  }
}

expected<std::vector<std::pair<std::int64_t, std::int64_t>>>
store::last_job_created_by_site(job_type type) {
  // The newest job by id, as last_job_of_type() picks it; jobs_of_site
  // (site_id, id) serves the grouping.
  SATORU_PREPARE(q, impl_->db.get(),
                 "SELECT j.site_id, j.created_at FROM jobs j JOIN (SELECT MAX(id) AS id "
                 "FROM jobs WHERE type = ? AND site_id IS NOT NULL GROUP BY site_id) l "
                 "ON l.id = j.id");
  q.bind(1, to_string(type));
  std::vector<std::pair<std::int64_t, std::int64_t>> out;
  while (q.step() == SQLITE_ROW)
    out.emplace_back(q.int64(0), q.int64(1));
  return out;
}

expected<std::vector<std::pair<std::string, std::int64_t>>> store::pending_retries() {
  SATORU_PREPARE(
      q, impl_->db.get(),
      "SELECT s.name, MIN(j.next_attempt_at) FROM jobs j JOIN sites s ON s.id = "
      "j.site_id WHERE j.status = 'queued' AND j.next_attempt_at > 0 GROUP BY "
      "s.name");
  std::vector<std::pair<std::string, std::int64_t>> out;
  while (q.step() == SQLITE_ROW)
    out.emplace_back(q.text(0), q.int64(1));
  return out;
}

expected<int> store::prune_history(std::int64_t before_ms, int batch) {
  auto db = impl_->db.get();
  return detail::with_write_transaction(impl_->db, [&]() -> expected<int> {
    SATORU_PREPARE(pick, db,
                   "SELECT id FROM jobs WHERE status IN ('success', 'warning', 'failed', "
                   "'cancelled') "
                   "AND finished_at < ? ORDER BY finished_at LIMIT ?");
    pick.bind(1, before_ms).bind(2, batch);
    std::vector<std::int64_t> ids;
    while (pick.step() == SQLITE_ROW)
      ids.push_back(pick.int64(0));
    for (auto id : ids) {
      SATORU_PREPARE(events, db, "DELETE FROM job_events WHERE job_id = ?");
      events.bind(1, id);
      if (auto r = events.run(); !r) return r.err();
      SATORU_PREPARE(job, db, "DELETE FROM jobs WHERE id = ?");
      job.bind(1, id);
      if (auto r = job.run(); !r) return r.err();
    }
    SATORU_PREPARE(nodes, db, "DELETE FROM nodes WHERE heartbeat_at < ?");
    nodes.bind(1, before_ms);
    if (auto r = nodes.run(); !r) return r.err();
    return static_cast<int>(ids.size());
  });
}

expected<std::vector<event_row>> store::list_events(std::int64_t job_id,
                                                    std::int64_t after_id) {
  SATORU_PREPARE(
      q, impl_->db.get(),
      "SELECT id, job_id, ts, level, step, target, message, data FROM job_events "
      "WHERE job_id = ? AND id > ? ORDER BY id");
  q.bind(1, job_id).bind(2, after_id);
  std::vector<event_row> out;
  for (;;) {
    int rc = q.step();
    if (rc == SQLITE_DONE) return out;
    if (rc != SQLITE_ROW) return impl_->db.last_error("reading job_events");
    out.push_back({q.int64(0), q.int64(1), q.int64(2), q.text(3), q.text(4), q.text(5),
                   q.text(6), q.text(7)});
  }
}

} // namespace satoru
