#include "satoru/actors/store_actor.hpp"

#include <spdlog/spdlog.h>

#include <cerrno>
#include <csignal>
#include <unistd.h>

namespace satoru::actors {

namespace {

job_ticket to_ticket(const std::optional<job_row>& job) {
  job_ticket t;
  if (!job) return t;
  t.job_id = job->id;
  t.site_id = job->site_id;
  t.site_name = job->site_name;
  t.type = to_string(job->type);
  t.attempt = job->attempts;
  return t;
}

/// Logs a failed store call; the actor keeps serving (the next call may work).
template <class T> bool check(const expected<T>& r, const char* what) {
  if (!r) spdlog::error("state store: {}: {}", what, r.err().message);
  return r.has_value();
}

} // namespace

bool owner_alive(const std::string& owner) {
  auto first = owner.find(':');
  auto second = owner.find(':', first + 1);
  if (first == std::string::npos || second == std::string::npos) return true;
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  if (owner.substr(0, first) != host) return true;
  pid_t pid = 0;
  try {
    pid = static_cast<pid_t>(std::stol(owner.substr(first + 1, second - first - 1)));
  } catch (...) {
    return true;
  }
  if (pid == getpid()) return true;
  return ::kill(pid, 0) == 0 || errno == EPERM;
}

store_actor::behavior_type store_behavior(store_actor::stateful_pointer<store_state> self,
                                          std::shared_ptr<satoru::store> db,
                                          std::string owner, std::string metrics_listen,
                                          int max_attempts, std::int64_t lease_ms) {
  self->state.owner = owner;
  self->state.metrics_listen = metrics_listen;
  self->state.max_attempts = max_attempts;
  self->state.lease_ms = lease_ms;
  auto& st = self->state;
  return {
      [=, &st](claim_atom, std::int32_t cap, const std::vector<std::int64_t>& busy) {
        auto job = db->claim_next(st.owner, st.lease_ms, cap, {busy.begin(), busy.end()});
        return check(job, "claiming a job") ? to_ticket(*job) : job_ticket{};
      },
      [=, &st](claim_atom, std::int64_t job_id) {
        auto job = db->claim_job(job_id, st.owner, st.lease_ms);
        return check(job, "claiming a job") ? to_ticket(*job) : job_ticket{};
      },
      [=, &st](claim_atom, const std::string& type) {
        auto t = parse_job_type(type);
        if (!t) return job_ticket{};
        auto job = db->claim_repository_job(*t, st.owner, st.lease_ms);
        return check(job, "claiming a repository job") ? to_ticket(*job) : job_ticket{};
      },
      [=, &st](finish_atom, std::int64_t job_id, const std::string& status,
               const std::string& error_text) {
        auto s = parse_job_status(status).value_or(job_status::failed);
        auto r = db->finish_job(job_id, st.owner, s, error_text);
        if (r && !*r)
          spdlog::warn("job {}: lease lost before it finished; result {} not recorded",
                       job_id, status);
        return check(r, "finishing a job") && *r;
      },
      [=](event_atom, const job_event& e) {
        check(db->add_event(e.job_id, e.level, e.step, e.target, e.message, e.data),
              "recording an event");
      },
      [=](health_atom, std::int64_t site_id, const std::string& health,
          const std::string& reason, bool preflight) {
        check(db->set_site_health(site_id, health, reason, preflight),
              "setting site health");
      },
      [=](scan_atom, std::int64_t site_id, const target_outcome& o) {
        store::target_scan scan;
        scan.status = o.status;
        scan.error = o.error;
        scan.snapshot_id = o.snapshot_id;
        scan.bytes = o.bytes;
        scan.files = o.files;
        scan.duration_ms = o.duration_ms;
        scan.data_added = o.data_added;
        check(db->record_target_scan(site_id, o.target_hash, scan),
              "recording a target scan");
      },
      [=](backedup_atom, std::int64_t site_id, bool succeeded) {
        check(db->record_backup_finished(site_id, succeeded), "recording a backup");
      },
      [=, &st](heartbeat_atom, bool daemon) -> std::int32_t {
        if (daemon)
          check(db->node_heartbeat(st.owner, getpid(), st.metrics_listen), "heartbeat");
        auto n = db->renew_leases(st.owner, st.lease_ms);
        return check(n, "renewing leases") ? *n : 0;
      },
      [=, &st](recover_atom) {
        auto ids = db->recover_jobs(st.max_attempts, owner_alive);
        return check(ids, "recovering jobs") ? *ids : std::vector<std::int64_t>{};
      },
      [=, &st](interrupt_atom, const std::string& reason) -> std::int32_t {
        auto n = db->interrupt_owned(st.owner, reason);
        check(db->node_stopped(st.owner), "marking the node stopped");
        return check(n, "interrupting jobs") ? *n : 0;
      },
      [=](enqueue_atom, const std::string& type, std::int64_t site_id) -> std::int64_t {
        auto t = parse_job_type(type);
        if (!t) return 0;
        auto r = db->enqueue(*t, site_id);
        return check(r, "queueing a job") ? r->id : 0;
      },
      [=](due_atom, std::int64_t interval_ms) {
        std::vector<std::int64_t> ids;
        auto sites = db->sites_due_for_backup(interval_ms);
        if (check(sites, "finding due sites"))
          for (const auto& s : *sites)
            ids.push_back(s.id);
        return ids;
      },
      [=](last_atom, const std::string& type, std::int64_t site_id) -> std::int64_t {
        auto t = parse_job_type(type);
        if (!t) return 0;
        auto job = db->last_job_of_type(*t, site_id);
        return check(job, "reading the last job") && *job ? (*job)->created_at : 0;
      },
      [=](sync_state_atom, const std::string& repository) {
        sync_record out;
        out.repository = repository;
        auto row = db->get_sync_state(repository);
        if (check(row, "reading sync_state")) {
          out.last_attempt_at = row->last_attempt_at;
          out.last_success_at = row->last_success_at;
          out.last_success_started_at = row->last_success_started_at;
          out.status = row->status;
          out.error = row->error;
          out.copied = row->snapshots_copied;
          out.lag = row->offsite_lag;
        }
        return out;
      },
      [=](sync_state_atom, const sync_record& r) {
        sync_state_row row;
        row.repository = r.repository;
        row.last_attempt_at = r.last_attempt_at;
        row.last_success_at = r.last_success_at;
        row.last_success_started_at = r.last_success_started_at;
        row.status = r.status;
        row.error = r.error;
        row.snapshots_copied = r.copied;
        row.offsite_lag = r.lag;
        check(db->put_sync_state(row), "writing sync_state");
      },
      [=](counts_atom) {
        queue_counts out;
        auto counts = db->count_jobs_by_status();
        if (check(counts, "counting jobs"))
          for (const auto& [status, n] : *counts) {
            out.statuses.push_back(status);
            out.counts.push_back(n);
          }
        return out;
      },
  };
}

} // namespace satoru::actors
