#include "satoru/actors/supervisor_actor.hpp"

#include "satoru/actors/site_actor.hpp"
#include "satoru/disk_headroom.hpp"
#include "satoru/time.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

namespace satoru::actors {

namespace {

using supervisor_self_ptr = supervisor_actor::stateful_pointer<supervisor_state>;
using steady = std::chrono::steady_clock;
using running_job = supervisor_state::running_job;

/// Old history goes in batches this small, so the store never holds its
/// write lock for long.
constexpr std::int32_t history_batch = 500;
/// Heartbeats between two history sweeps (2 s each: about an hour).
constexpr int history_every = 1800;

void poll(supervisor_self_ptr self);

std::chrono::milliseconds lease_period(supervisor_self_ptr self) {
  return std::chrono::milliseconds{self->state.ctx.lease_ms};
}

void publish_running(supervisor_self_ptr self) {
  if (auto& m = self->state.ctx.metrics)
    m->set_running_jobs(static_cast<std::int64_t>(self->state.running.size()));
}

/// The last step of a shutdown: our running jobs become `interrupted` (the
/// next start queues them again), then everything stops.
void finalize(supervisor_self_ptr self) {
  if (self->state.finalizing) return;
  self->state.finalizing = true;
  self->request(self->state.store, std::chrono::seconds{10}, interrupt_atom::value,
                std::string{"interrupted: satoru stopped while the job ran"})
      .then(
          [=](std::int32_t n) {
            if (n > 0) spdlog::info("{} running job(s) marked interrupted", n);
            self->quit(caf::exit_reason::user_shutdown);
          },
          [=](caf::error&) { self->quit(caf::exit_reason::user_shutdown); });
}

/// A site actor a reload replaced while it ran this job goes once the job
/// is off our hands (it ran the job under the config the job started with).
void retire_worker(supervisor_self_ptr self, std::int64_t job_id) {
  auto& st = self->state;
  auto it = st.running.find(job_id);
  if (it == st.running.end() || !it->second.worker) return;
  if (st.retired.count(it->second.worker.address()) > 0)
    self->send_exit(it->second.worker, caf::exit_reason::user_shutdown);
}

/// The job is off our hands (its end written, or given up): no more lease
/// renewals for it; then look for more work.
void release(supervisor_self_ptr self, std::int64_t job_id, bool ended) {
  auto& st = self->state;
  retire_worker(self, job_id);
  st.running.erase(job_id);
  publish_running(self);
  // Snapshot counts, repository size and offsite lag may have changed.
  if (st.sync && !st.stopping) self->send(st.sync, refresh_atom::value);
  if (st.stopping) {
    if (st.running.empty()) finalize(self);
    return;
  }
  if (st.only_job != 0) {
    st.only_job_running = false;
    // In-process mode ends with the job; a retry waits here for its time.
    if (ended) {
      self->quit(caf::exit_reason::user_shutdown);
      return;
    }
  }
  poll(self);
}

/// Metrics of an attempt whose end was written.
void record_metrics(supervisor_self_ptr self, const running_job& job) {
  auto& m = self->state.ctx.metrics;
  if (!m) return;
  const auto& lease = job.lease;
  const auto& outcome = *job.outcome;
  if (job.retry_at)
    m->job_retried(lease.type);
  else
    m->job_finished(lease.type, outcome.status,
                    static_cast<double>(now_ms() - job.started_ms) / 1000.0);
  // A cancelled job says nothing about its site.
  if (!sets_site_health(lease.type) || outcome.status == job_status::cancelled) return;
  auto now = now_ms();
  m->set_site_health(lease.site_name, health_of(outcome.status));
  m->set_site_last_preflight(lease.site_name, now);
  m->set_site_next_retry(lease.site_name, job.retry_at.value_or(0));
  if (!job.retry_at && lease.type == job_type::backup &&
      outcome.status != job_status::failed)
    m->set_site_last_success(lease.site_name, now);
}

void write_end(supervisor_self_ptr self, std::int64_t job_id);

/// The database refused the end of a job: try again with backoff while the
/// lease surely holds, else give the job up (stop renewing its lease) so
/// that it is recovered once the lease runs out.
void end_not_written(supervisor_self_ptr self, std::int64_t job_id,
                     const std::string& why) {
  auto it = self->state.running.find(job_id);
  if (it == self->state.running.end()) return;
  auto& job = it->second;
  auto tries = ++job.write_tries;
  auto wait = std::min<std::chrono::milliseconds>(
      std::chrono::milliseconds{250} * (1 << std::min(tries, 6)), lease_period(self) / 4);
  if (steady::now() + wait >= job.lease_deadline) {
    spdlog::error(
        "job {}: could not write how it ended ({}); giving it up: its lease runs "
        "out and it is recovered",
        job_id, why);
    release(self, job_id, true);
    return;
  }
  spdlog::warn("job {}: could not write how it ended ({}); trying again in {} ms", job_id,
               why, wait.count());
  self->delayed_send(self, wait, finish_atom::value, job_id);
}

/// Writes the end of an attempt: finished for good, or queued for a retry.
void write_end(supervisor_self_ptr self, std::int64_t job_id) {
  auto it = self->state.running.find(job_id);
  if (it == self->state.running.end()) return;
  auto& job = it->second;
  if (job.lease_lost) {
    release(self, job_id, true);
    return;
  }
  auto on_written = [=](bool recorded) {
    auto found = self->state.running.find(job_id);
    if (found == self->state.running.end()) return;
    auto& j = found->second;
    if (!recorded) {
      spdlog::warn(
          "job {}: its lease was lost before its end was written; {} not recorded",
          job_id, to_string(j.outcome->status));
    } else {
      record_metrics(self, j);
      spdlog::info("job {} {}{}", job_id,
                   j.retry_at ? fmt::format("will retry at {}", format_time(*j.retry_at))
                              : to_string(j.outcome->status),
                   j.outcome->error.empty() ? "" : ": " + j.outcome->error);
    }
    release(self, job_id, !recorded || !j.retry_at);
  };
  auto on_error = [=](caf::error& err) {
    end_not_written(self, job_id, self->system().render(err));
  };
  auto& store = self->state.store;
  if (job.retry_at)
    self->request(store, caf::infinite, retry_atom::value, job.lease, *job.outcome,
                  *job.retry_at, job.retry_bound_ms)
        .then(on_written, on_error);
  else
    self->request(store, caf::infinite, finish_atom::value, job.lease, *job.outcome)
        .then(on_written, on_error);
}

/// Decides how an attempt ended: finished for good, or (a transient failure
/// with attempts left) queued again after a backoff with full jitter.
void conclude(supervisor_self_ptr self, std::int64_t job_id, job_outcome outcome) {
  auto& st = self->state;
  auto it = st.running.find(job_id);
  if (it == st.running.end()) return;
  auto& job = it->second;
  if (job.cancel_requested && !job.lease_lost && outcome.status != job_status::success &&
      outcome.status != job_status::warning) {
    // Asked to stop and it did (work that ended anyway keeps its status):
    // it ends here for good, never retried.
    job.outcome =
        job_outcome{job_status::cancelled,
                    "cancelled while it ran" +
                        (outcome.error.empty() ? "" : " (" + outcome.error + ")"),
                    failure_kind::none,
                    {},
                    std::nullopt};
    write_end(self, job_id);
    return;
  }
  if (job.lease_lost || st.stopping || job.cancel.cancelled() ||
      outcome.status == job_status::interrupted) {
    // A shutdown marks it interrupted; a lost lease belongs to someone else.
    if (job.lease_lost)
      spdlog::warn("job {}: its lease was lost; this attempt's end is not recorded",
                   job_id);
    release(self, job_id, true);
    return;
  }
  bool failed_part =
      outcome.status == job_status::failed ||
      (outcome.status == job_status::warning && outcome.failure != failure_kind::none);
  auto failed_attempts = job.lease.failed_attempts + 1;
  auto refusal = retry_refusal(job.lease);
  if (failed_part && outcome.failure == failure_kind::transient && !refusal.empty()) {
    outcome.error += " (" + refusal + ")";
  } else if (failed_part && outcome.failure == failure_kind::transient) {
    if (st.retry.allows(failed_attempts)) {
      job.retry_at = now_ms() + st.retry.delay(failed_attempts, st.rng).count();
      job.retry_bound_ms = st.retry.bound(failed_attempts).count();
    } else
      outcome.error += fmt::format(" (gave up after {} attempts)", failed_attempts);
  } else if (failed_part && outcome.failure == failure_kind::permanent) {
    outcome.error += " (permanent failure: not retried)";
    if (changes_edge_host(job.lease))
      outcome.error += "; " + std::string{not_applied_again};
  }
  job.outcome = std::move(outcome);
  write_end(self, job_id);
}

/// The lease of a job is no longer ours: stop its work, write nothing of it.
void lose_lease(supervisor_self_ptr self, std::int64_t job_id, const std::string& why) {
  auto it = self->state.running.find(job_id);
  if (it == self->state.running.end() || it->second.lease_lost) return;
  spdlog::warn("job {}: {}; cancelling it", job_id, why);
  it->second.lease_lost = true;
  it->second.cancel.cancel();
  if (it->second.outcome) release(self, job_id, true); // only its end was left
}

void dispatch(supervisor_self_ptr self, const job_row& job) {
  auto& st = self->state;
  running_job entry;
  entry.lease = job;
  entry.started_ms = now_ms();
  entry.lease_deadline = steady::now() + lease_period(self);
  auto token = entry.cancel;
  st.running[job.id] = std::move(entry);
  publish_running(self);
  spdlog::info("job {}: {} {} started (attempt {})", job.id, to_string(job.type),
               job.site_name.empty() ? "repository" : "of " + job.site_name,
               job.attempts);
  auto id = job.id;
  auto on_reply = [=](job_outcome& outcome) { conclude(self, id, std::move(outcome)); };
  auto failed = [=](failure_kind kind, const std::string& why) {
    conclude(self, id, job_outcome{job_status::failed, why, kind, {}, std::nullopt});
  };
  auto on_error = [=](caf::error& err) {
    failed(failure_kind::transient,
           "the job's actor failed: " + self->system().render(err));
  };
  switch (job.type) {
  case job_type::preflight:
  case job_type::backup:
  case job_type::restore: {
    auto site = st.sites.find(job.site_name);
    if (site == st.sites.end()) {
      failed(failure_kind::permanent,
             fmt::format("site {} is no longer configured", job.site_name));
      return;
    }
    st.running[id].worker = site->second;
    self->request(site->second, caf::infinite, run_atom::value, job, token)
        .then(on_reply, on_error);
    return;
  }
  case job_type::retention:
    self->request(st.restic, caf::infinite, retention_atom::value, job, token)
        .then(on_reply, on_error);
    return;
  case job_type::restic_sync:
  case job_type::offsite_retention:
    if (!st.sync) {
      failed(failure_kind::permanent, "off-site jobs are not available in this process");
      return;
    }
    if (job.type == job_type::restic_sync)
      self->request(st.sync, caf::infinite, run_atom::value, job, token)
          .then(on_reply, on_error);
    else
      self->request(st.sync, caf::infinite, retention_atom::value, job, token)
          .then(on_reply, on_error);
    return;
  case job_type::offsite_check:
    if (!st.sync) {
      failed(failure_kind::permanent, "off-site jobs are not available in this process");
      return;
    }
    self->request(st.sync, caf::infinite, check_atom::value, job, token)
        .then(on_reply, on_error);
    return;
  case job_type::check:
    self->request(st.restic, caf::infinite, check_atom::value, job, token)
        .then(on_reply, on_error);
    return;
  case job_type::restore_drill:
    self->request(st.restic, caf::infinite, drill_atom::value, job, token)
        .then(on_reply, on_error);
    return;
  }
}

/// A repository job of `type` may not start now: one of its type runs, or
/// (for the off-site repository) any job that uses that repository.
bool repository_job_blocked(supervisor_self_ptr self, job_type type) {
  for (const auto& [id, job] : self->state.running)
    if (job.lease.type == type || (uses_offsite(type) && uses_offsite(job.lease.type)))
      return true;
  return false;
}

void poll(supervisor_self_ptr self) {
  auto& st = self->state;
  if (st.stopping || st.polling) return;
  if (st.only_job != 0) {
    if (st.only_job_running) return;
    st.polling = true;
    self->request(st.store, caf::infinite, claim_atom::value, st.only_job)
        .then(
            [=](job_row& job) {
              self->state.polling = false;
              // Not claimable now (site busy, retry not due): the tick retries.
              if (job.id == 0 || self->state.stopping) return;
              self->state.only_job_running = true;
              dispatch(self, job);
            },
            [=](caf::error&) { self->state.polling = false; });
    return;
  }
  // Repository jobs run beside site jobs, one of each type at a time, and
  // one at a time on the off-site repository (the store's claim enforces
  // both in its transaction; this only saves asking).
  for (auto type : all_job_types()) {
    if (is_site_job(type) || repository_job_blocked(self, type)) continue;
    self->request(st.store, caf::infinite, claim_atom::value, type)
        .then(
            [=](job_row& job) {
              if (job.id != 0 && !self->state.stopping) dispatch(self, job);
            },
            [](caf::error&) {});
  }
  std::int32_t site_jobs = 0;
  std::vector<std::int64_t> busy;
  for (const auto& [id, job] : st.running)
    if (is_site_job(job.lease.type)) {
      ++site_jobs;
      busy.push_back(job.lease.site_id);
    }
  auto cap = std::max(1, st.ctx.cfg->job_worker_concurrency);
  if (site_jobs >= cap) return;
  st.polling = true;
  self->request(st.store, caf::infinite, claim_atom::value,
                static_cast<std::int32_t>(cap), busy)
      .then(
          [=](job_row& job) {
            self->state.polling = false;
            if (job.id == 0 || self->state.stopping) return;
            dispatch(self, job);
            poll(self); // there may be more
          },
          [=](caf::error&) { self->state.polling = false; });
}

/// Renews exactly the leases of the jobs we work on. A lease the store no
/// longer gives us, or one we could not renew before it ran out by our own
/// monotonic clock, cancels its job.
void renew_leases(supervisor_self_ptr self) {
  auto& st = self->state;
  auto now = steady::now();
  std::vector<std::int64_t> overdue;
  std::vector<job_row> leases;
  for (const auto& [id, job] : st.running) {
    if (job.lease_lost) continue;
    if (now >= job.lease_deadline)
      overdue.push_back(id);
    else
      leases.push_back(job.lease);
  }
  for (auto id : overdue)
    lose_lease(self, id, "its lease could not be renewed before it ran out");
  bool daemon = st.only_job == 0;
  self->request(st.store, st.ctx.heartbeat_period, heartbeat_atom::value, daemon, leases)
      .then(
          [=](std::vector<std::int64_t>& lost) {
            for (const auto& lease : leases) {
              if (std::find(lost.begin(), lost.end(), lease.id) != lost.end()) {
                lose_lease(self, lease.id, "another process holds its lease now");
                continue;
              }
              auto it = self->state.running.find(lease.id);
              if (it != self->state.running.end())
                it->second.lease_deadline = now + lease_period(self);
            }
          },
          [=](caf::error& err) {
            spdlog::warn("could not renew leases: {}", self->system().render(err));
          });
}

/// Cancels the token of every job of ours someone asked to cancel (`satoru
/// cancel` writes the request into the database from another process).
void read_cancel_requests(supervisor_self_ptr self) {
  std::vector<std::int64_t> ids;
  for (const auto& [id, job] : self->state.running)
    if (!job.cancel_requested && !job.lease_lost && !job.outcome) ids.push_back(id);
  if (ids.empty()) return;
  self->request(self->state.store, self->state.ctx.heartbeat_period, cancel_atom::value,
                ids)
      .then(
          [=](std::vector<std::int64_t>& asked) {
            for (auto id : asked) {
              auto it = self->state.running.find(id);
              if (it == self->state.running.end() || it->second.cancel_requested)
                continue;
              spdlog::info("job {}: cancel requested; stopping it", id);
              it->second.cancel_requested = true;
              it->second.cancel.cancel();
            }
          },
          [](caf::error&) {});
}

/// Queue depth and pending retries, for the metrics.
void refresh_queue_metrics(supervisor_self_ptr self) {
  self->request(self->state.store, caf::infinite, counts_atom::value)
      .then(
          [=](queue_counts& c) {
            auto& m = self->state.ctx.metrics;
            if (!m) return;
            for (auto status : all_job_statuses()) {
              std::int64_t n = 0;
              for (std::size_t i = 0; i < c.statuses.size(); ++i)
                if (c.statuses[i] == to_string(status)) n = c.counts[i];
              m->set_queue_depth(to_string(status), n);
            }
            for (const auto& site : self->state.ctx.cfg->sites) {
              std::int64_t at = 0;
              for (std::size_t i = 0; i < c.retry_sites.size(); ++i)
                if (c.retry_sites[i] == site.name) at = c.retry_at[i];
              m->set_site_next_retry(site.name, at);
            }
          },
          [](caf::error&) {});
}

void heartbeat(supervisor_self_ptr self) {
  auto& st = self->state;
  renew_leases(self);
  read_cancel_requests(self);
  if (st.ctx.metrics) {
    const auto& cfg = *st.ctx.cfg;
    for (const auto& path : {cfg.staging_root, cfg.restic_repo_path})
      if (auto space = fs_space_of(path)) {
        st.ctx.metrics->set_fs_free(path, space->free);
        st.ctx.metrics->set_fs_min_free(path, min_free_bytes(cfg, space->total));
        if (path == cfg.staging_root) st.ctx.metrics->set_staging_free(space->free);
      }
  }
  bool daemon = st.only_job == 0;
  auto beat = st.heartbeats++;
  if (daemon && beat % 3 == 0) {
    self->request(st.store, caf::infinite, recover_atom::value)
        .then(
            [=](std::vector<std::int64_t>& ids) {
              if (ids.empty()) return;
              spdlog::warn("re-queued {} job(s) of stopped or dead processes",
                           ids.size());
              poll(self);
            },
            [](caf::error&) {});
    refresh_queue_metrics(self);
  }
  if (daemon && beat % history_every == 0) self->send(self, history_atom::value);
}

/// Deletes finished jobs older than job_history_days, a batch at a time.
void prune_history(supervisor_self_ptr self) {
  auto days = self->state.ctx.cfg->job_history_days;
  if (days <= 0 || self->state.stopping) return;
  auto before = now_ms() - static_cast<std::int64_t>(days) * 24 * 3600 * 1000;
  self->request(self->state.store, caf::infinite, history_atom::value, before,
                history_batch)
      .then(
          [=](std::int32_t deleted) {
            if (deleted > 0)
              spdlog::info("deleted {} job(s) older than {} days", deleted, days);
            if (deleted == history_batch)
              self->delayed_send(self, std::chrono::milliseconds{200},
                                 history_atom::value);
          },
          [](caf::error&) {});
}

void shutdown(supervisor_self_ptr self) {
  auto& st = self->state;
  if (st.stopping) return;
  st.stopping = true;
  spdlog::info("stopping: cancelling {} running job(s)", st.running.size());
  for (auto& [id, job] : st.running)
    job.cancel.cancel();
  if (st.running.empty()) {
    finalize(self);
    return;
  }
  // Children get a few seconds to die; then we stop waiting for them.
  self->delayed_send(self, std::chrono::seconds{8}, shutdown_atom::value);
}

/// A site actor died: a new one takes its place (its job, if any, failed
/// with it and is retried).
bool respawn_site(supervisor_self_ptr self, const caf::actor_addr& source,
                  const caf::error& reason) {
  auto& st = self->state;
  for (auto& [name, actor] : st.sites) {
    if (actor.address() != source) continue;
    auto* site = st.ctx.cfg->find_site(name);
    if (!site || st.stopping) return true;
    auto why = fmt::format("the actor of site {} failed ({})", name,
                           self->system().render(reason));
    spdlog::error("{}; starting a new one", why);
    actor = st.make_site(self, st.ctx, *site);
    // Its job went down with it: that attempt failed (and is retried).
    std::vector<std::int64_t> orphaned;
    for (const auto& [id, job] : st.running)
      if (job.lease.site_name == name && !job.outcome) orphaned.push_back(id);
    for (auto id : orphaned)
      conclude(self, id,
               job_outcome{
                   job_status::failed, why, failure_kind::transient, {}, std::nullopt});
    return true;
  }
  return false;
}

/// A reload: jobs claimed from now on use `next`, and every site gets a
/// new actor built with it. A site actor that runs a job keeps running it
/// with the config it started with and goes when the job is off our hands
/// (retire_worker); an idle one goes now; a removed site's actor too.
void reload(supervisor_self_ptr self, runtime_context next) {
  auto& st = self->state;
  if (st.stopping) return;
  st.ctx = std::move(next);
  st.retry = retry_policy_of(*st.ctx.cfg);
  std::set<caf::actor_addr> busy;
  for (const auto& [id, job] : st.running)
    if (job.worker) busy.insert(job.worker.address());
  auto old = std::move(st.sites);
  st.sites.clear();
  for (const auto& site : st.ctx.cfg->sites)
    st.sites.emplace(site.name, st.make_site(self, st.ctx, site));
  for (auto& [name, actor] : old) {
    st.retired.insert(actor.address());
    if (busy.count(actor.address()) == 0)
      self->send_exit(actor, caf::exit_reason::user_shutdown);
  }
  spdlog::info("supervisor: new config for the jobs it claims; {} running job(s) "
               "finish with the config they started with",
               st.running.size());
  poll(self);
}

} // namespace

retry_policy retry_policy_of(const config& cfg) {
  retry_policy p;
  p.max_attempts = cfg.retry_max_attempts;
  p.initial_delay = std::chrono::seconds{cfg.retry_initial_delay_seconds};
  p.max_delay = std::chrono::seconds{cfg.retry_max_delay_seconds};
  return p;
}

site_factory default_site_factory(store_actor store, restic_actor restic) {
  return [=](caf::local_actor* parent, const runtime_context& ctx,
             const site_config& site) -> site_actor {
    return parent->spawn<caf::linked>(site_behavior, ctx, site, store, restic);
  };
}

supervisor_actor::behavior_type
supervisor_behavior(supervisor_actor::stateful_pointer<supervisor_state> self,
                    runtime_context ctx, store_actor store, restic_actor restic,
                    sync_actor sync, site_factory make_site, std::int64_t only_job) {
  auto& st = self->state;
  st.ctx = ctx;
  st.store = store;
  st.restic = restic;
  st.sync = sync;
  st.make_site = make_site;
  st.only_job = only_job;
  st.retry = retry_policy_of(*ctx.cfg);
  for (const auto& site : ctx.cfg->sites)
    st.sites.emplace(site.name, make_site(self, ctx, site));
  self->set_exit_handler([=](const caf::exit_msg& msg) {
    // An actor a reload replaced: its end is expected (its job, if it
    // crashed with it, fails through the job's request).
    if (self->state.retired.erase(msg.source) > 0) return;
    if (msg.source != self->address() && respawn_site(self, msg.source, msg.reason))
      return;
    if (msg.source == self->address() || msg.reason == caf::exit_reason::user_shutdown ||
        msg.reason == caf::exit_reason::kill)
      self->quit(msg.reason);
    else
      spdlog::error("a linked actor failed: {}", self->system().render(msg.reason));
  });
  self->send(self, heartbeat_atom::value);
  self->send(self, poll_atom::value);
  self->delayed_send(self, ctx.poll_period, tick_atom::value);
  return {
      [=](poll_atom) { poll(self); },
      [=](tick_atom) {
        // Safety net: polls also happen on every job end and every scheduler run.
        poll(self);
        if (!self->state.stopping)
          self->delayed_send(self, self->state.ctx.poll_period, tick_atom::value);
      },
      [=](heartbeat_atom) {
        if (self->state.stopping) return;
        heartbeat(self);
        self->delayed_send(self, self->state.ctx.heartbeat_period, heartbeat_atom::value);
      },
      [=](finish_atom, std::int64_t job_id) { write_end(self, job_id); },
      [=](history_atom) { prune_history(self); },
      [=](shutdown_atom) {
        if (!self->state.stopping)
          shutdown(self);
        else
          finalize(self); // second call: the grace period is over
      },
      [=](status_atom) { return static_cast<std::int32_t>(self->state.running.size()); },
      [=](reload_atom, runtime_context next) { reload(self, std::move(next)); },
  };
}

} // namespace satoru::actors
