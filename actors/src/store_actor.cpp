#include "satoru/actors/store_actor.hpp"

#include <spdlog/spdlog.h>

#include <cerrno>
#include <csignal>
#include <unistd.h>

namespace satoru::actors {

namespace {

/// Logs a failed store call; the actor keeps serving (the next call may work).
template <class T> bool check(const expected<T>& r, const char* what) {
  if (!r) spdlog::error("state store: {}: {}", what, r.err().message);
  return r.has_value();
}

job_row claimed(const expected<std::optional<job_row>>& job, const char* what) {
  return check(job, what) && *job ? **job : job_row{};
}

/// A write whose failure the caller must see (and retry): an error, not false.
caf::result<bool> reply(const expected<bool>& r, const char* what) {
  if (r) return *r;
  spdlog::error("state store: {}: {}", what, r.err().message);
  return caf::make_error(caf::sec::runtime_error, r.err().message);
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
                                          int max_recoveries, std::int64_t lease_ms) {
  self->state.owner = owner;
  self->state.metrics_listen = metrics_listen;
  self->state.max_recoveries = max_recoveries;
  self->state.lease_ms = lease_ms;
  auto& st = self->state;
  return {
      [=, &st](claim_atom, std::int32_t cap, const std::vector<std::int64_t>& busy) {
        return claimed(
            db->claim_next(st.owner, st.lease_ms, cap, {busy.begin(), busy.end()}),
            "claiming a job");
      },
      [=, &st](claim_atom, std::int64_t job_id) {
        return claimed(db->claim_job(job_id, st.owner, st.lease_ms), "claiming a job");
      },
      [=, &st](claim_atom, job_type type) {
        return claimed(db->claim_repository_job(type, st.owner, st.lease_ms),
                       "claiming a repository job");
      },
      [=](finish_atom, const job_row& lease, const job_outcome& outcome) {
        return reply(db->finish_job(lease, outcome), "finishing a job");
      },
      [=](retry_atom, const job_row& lease, const job_outcome& outcome,
          std::int64_t next_attempt_at, std::int64_t bound_ms) {
        return reply(db->retry_job(lease, outcome, next_attempt_at, bound_ms),
                     "queueing a retry");
      },
      [=](lease_atom, const job_row& lease) {
        return reply(db->holds_lease(lease), "checking a lease");
      },
      [=](event_atom, const job_event& e) {
        check(db->add_event(e.job_id, e.level, e.step, e.target, e.message, e.data,
                            e.epoch),
              "recording an event");
      },
      [=](progress_atom, const job_progress& p) {
        check(db->put_progress(p.job_id, p.epoch, p.target, p.now, p.ended),
              "recording progress");
      },
      [=](scan_atom, const job_row& lease, const target_result& result) {
        auto r = db->record_target(lease, result);
        if (check(r, "recording a target") && !*r)
          spdlog::warn("job {}: lease lost; target {} not recorded", lease.id,
                       result.target_hash);
      },
      [=, &st](heartbeat_atom, bool daemon, const std::vector<job_row>& leases)
          -> caf::result<std::vector<std::int64_t>> {
        if (daemon)
          check(db->node_heartbeat(st.owner, getpid(), st.metrics_listen), "heartbeat");
        auto lost = db->renew_leases(st.owner, leases, st.lease_ms);
        // An error, not "none lost": the caller must not count on leases
        // that were not renewed.
        if (!check(lost, "renewing leases"))
          return caf::make_error(caf::sec::runtime_error, lost.err().message);
        return *lost;
      },
      [=](cancel_atom, const std::vector<std::int64_t>& ids) {
        auto asked = db->cancel_requests(ids);
        return check(asked, "reading cancel requests") ? *asked
                                                       : std::vector<std::int64_t>{};
      },
      [=, &st](recover_atom) {
        auto ids = db->recover_jobs(st.max_recoveries, owner_alive);
        return check(ids, "recovering jobs") ? *ids : std::vector<std::int64_t>{};
      },
      [=, &st](interrupt_atom, const std::string& reason) -> std::int32_t {
        auto n = db->interrupt_owned(st.owner, reason);
        check(db->node_stopped(st.owner), "marking the node stopped");
        return check(n, "interrupting jobs") ? *n : 0;
      },
      [=](enqueue_atom, job_type type, std::int64_t site_id) -> std::int64_t {
        auto r = db->enqueue(type, site_id);
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
      [=](last_atom, job_type type, std::int64_t site_id) -> std::int64_t {
        auto job = db->last_job_of_type(type, site_id);
        return check(job, "reading the last job") && *job ? (*job)->created_at : 0;
      },
      [=](sync_state_atom, const std::string& repository) {
        auto row = db->get_sync_state(repository);
        if (check(row, "reading sync_state")) return *row;
        sync_state_row empty;
        empty.repository = repository;
        return empty;
      },
      [=](sync_state_atom, const sync_state_row& row) {
        check(db->put_sync_state(row), "writing sync_state");
      },
      [=](drill_atom) {
        std::vector<std::string> out;
        auto next = db->next_drill_target();
        if (!check(next, "choosing the target of a restore drill") || !*next) return out;
        auto site = db->get_site((*next)->site_id);
        if (check(site, "reading a site") && *site)
          out = {(*site)->name, (*next)->target_hash};
        return out;
      },
      [=](drill_atom, const job_row& lease, const std::string& site_name,
          const std::string& target_hash, bool passed, const std::string& snapshot_id,
          std::int64_t at) -> caf::result<bool> {
        auto site = db->find_site(site_name);
        if (!check(site, "reading a site") || !*site) return false;
        return reply(
            db->record_drill(lease, (*site)->id, target_hash, passed, snapshot_id, at),
            "recording a restore drill");
      },
      [=](history_atom, std::int64_t before_ms, std::int32_t batch) -> std::int32_t {
        auto n = db->prune_history(before_ms, batch);
        return check(n, "deleting old history") ? *n : 0;
      },
      [=](counts_atom) {
        queue_counts out;
        auto counts = db->count_jobs_by_status();
        if (check(counts, "counting jobs"))
          for (const auto& [status, n] : *counts) {
            out.statuses.push_back(status);
            out.counts.push_back(n);
          }
        if (auto retries = db->pending_retries(); check(retries, "reading retries"))
          for (const auto& [site, at] : *retries) {
            out.retry_sites.push_back(site);
            out.retry_at.push_back(at);
          }
        return out;
      },
  };
}

} // namespace satoru::actors
