#include "satoru/actors/supervisor_actor.hpp"

#include "satoru/actors/site_actor.hpp"
#include "satoru/time.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <sys/statvfs.h>

namespace satoru::actors {

namespace {

using self_ptr = supervisor_actor::stateful_pointer<supervisor_state>;

bool is_site_job(const std::string& type) {
  return type == "preflight" || type == "backup";
}

void poll(self_ptr self);

/// The last step of a shutdown: our running jobs become `interrupted` (the
/// next start queues them again), then everything stops.
void finalize(self_ptr self) {
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

void job_done(self_ptr self, std::int64_t job_id, const job_outcome& outcome) {
  auto& st = self->state;
  st.running.erase(job_id);
  if (st.ctx.metrics)
    st.ctx.metrics->set_running_jobs(static_cast<std::int64_t>(st.running.size()));
  spdlog::info("job {} {}{}", job_id, outcome.status,
               outcome.error.empty() ? "" : ": " + outcome.error);
  // Snapshot counts, repository size and offsite lag may have changed.
  if (st.sync && !st.stopping) self->send(st.sync, refresh_atom::value);
  if (st.stopping) {
    if (st.running.empty()) finalize(self);
    return;
  }
  if (st.only_job != 0) {
    self->quit(caf::exit_reason::user_shutdown);
    return;
  }
  poll(self);
}

/// Marks a job failed that could not be handed to anyone.
void fail_job(self_ptr self, const job_ticket& job, const std::string& why) {
  self->request(self->state.store, caf::infinite, finish_atom::value, job.job_id,
                std::string{"failed"}, why)
      .then(
          [=](bool) {
            job_done(self, job.job_id, job_outcome{job.job_id, "failed", why});
          },
          [=](caf::error&) {
            job_done(self, job.job_id, job_outcome{job.job_id, "failed", why});
          });
}

void dispatch(self_ptr self, const job_ticket& job) {
  auto& st = self->state;
  cancel_token token;
  st.running[job.job_id] = {job.site_id, job.type, token};
  if (st.ctx.metrics)
    st.ctx.metrics->set_running_jobs(static_cast<std::int64_t>(st.running.size()));
  spdlog::info("job {}: {} {} started (attempt {})", job.job_id, job.type,
               job.site_name.empty() ? "repository" : "of " + job.site_name, job.attempt);
  auto on_reply = [=](job_outcome& outcome) { job_done(self, job.job_id, outcome); };
  auto on_error = [=](caf::error& err) {
    if (self->state.stopping) {
      job_done(self, job.job_id, job_outcome{job.job_id, "interrupted", ""});
      return;
    }
    fail_job(self, job, "the job runner failed: " + self->system().render(err));
  };
  if (is_site_job(job.type)) {
    auto it = st.sites.find(job.site_name);
    if (it == st.sites.end()) {
      fail_job(self, job, fmt::format("site {} is no longer configured", job.site_name));
      return;
    }
    self->request(it->second, caf::infinite, run_atom::value, job, token)
        .then(on_reply, on_error);
  } else if (job.type == "retention") {
    self->request(st.restic, caf::infinite, retention_atom::value, job, token)
        .then(on_reply, on_error);
  } else if (st.sync) {
    self->request(st.sync, caf::infinite, run_atom::value, job, token)
        .then(on_reply, on_error);
  } else {
    fail_job(self, job, "off-site copies are not available in this process");
  }
}

bool repository_job_running(self_ptr self, const std::string& type) {
  for (const auto& [id, job] : self->state.running)
    if (job.type == type) return true;
  return false;
}

void poll(self_ptr self) {
  auto& st = self->state;
  if (st.stopping || st.polling) return;
  if (st.only_job != 0) {
    if (st.only_job_claimed) return;
    st.polling = true;
    self->request(st.store, caf::infinite, claim_atom::value, st.only_job)
        .then(
            [=](job_ticket& job) {
              self->state.polling = false;
              if (job.job_id == 0)
                return; // not claimable yet (its site is busy); retry on tick
              self->state.only_job_claimed = true;
              dispatch(self, job);
            },
            [=](caf::error&) { self->state.polling = false; });
    return;
  }
  // Repository jobs run beside site jobs, one of each type at a time.
  for (auto type : {"retention", "restic_sync"}) {
    if (repository_job_running(self, type)) continue;
    self->request(st.store, caf::infinite, claim_atom::value, std::string{type})
        .then([=](job_ticket& job) {
          if (job.job_id != 0 && !self->state.stopping) dispatch(self, job);
        });
  }
  std::int32_t site_jobs = 0;
  std::vector<std::int64_t> busy;
  for (const auto& [id, job] : st.running)
    if (is_site_job(job.type)) {
      ++site_jobs;
      busy.push_back(job.site_id);
    }
  auto cap = std::max(1, st.ctx.cfg->job_worker_concurrency);
  if (site_jobs >= cap) return;
  st.polling = true;
  self->request(st.store, caf::infinite, claim_atom::value,
                static_cast<std::int32_t>(cap), busy)
      .then(
          [=](job_ticket& job) {
            self->state.polling = false;
            if (job.job_id == 0 || self->state.stopping) return;
            dispatch(self, job);
            poll(self); // there may be more
          },
          [=](caf::error&) { self->state.polling = false; });
}

void shutdown(self_ptr self) {
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

} // namespace

site_factory default_site_factory(runtime_context ctx, store_actor store,
                                  restic_actor restic) {
  return [=](caf::local_actor* parent, const site_config& site) -> site_actor {
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
  st.only_job = only_job;
  for (const auto& site : ctx.cfg->sites)
    st.sites.emplace(site.name, make_site(self, site));
  self->set_exit_handler([=](const caf::exit_msg& msg) {
    // A crashed child (site actor) takes its job with it; the lease expires
    // and the job is recovered. We keep going unless asked to stop.
    if (msg.source == self->address() || msg.reason == caf::exit_reason::user_shutdown ||
        msg.reason == caf::exit_reason::kill)
      self->quit(msg.reason);
    else
      spdlog::error("a child actor failed: {}", self->system().render(msg.reason));
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
        auto& s = self->state;
        if (s.stopping) return;
        bool daemon = s.only_job == 0;
        self->request(s.store, caf::infinite, heartbeat_atom::value, daemon)
            .then([](std::int32_t) {});
        if (s.ctx.metrics) {
          struct statvfs fs {};
          if (::statvfs(s.ctx.cfg->staging_root.c_str(), &fs) == 0)
            s.ctx.metrics->set_staging_free(static_cast<std::int64_t>(fs.f_bavail) *
                                            static_cast<std::int64_t>(fs.f_frsize));
        }
        if (daemon && s.heartbeats++ % 3 == 0) {
          self->request(s.store, caf::infinite, recover_atom::value)
              .then([=](std::vector<std::int64_t>& ids) {
                if (!ids.empty()) {
                  spdlog::warn("re-queued {} job(s) of stopped or dead processes",
                               ids.size());
                  poll(self);
                }
              });
          self->request(s.store, caf::infinite, counts_atom::value)
              .then([=](queue_counts& c) {
                if (!self->state.ctx.metrics) return;
                for (auto status : {"queued", "running", "success", "warning", "failed",
                                    "interrupted"}) {
                  std::int64_t n = 0;
                  for (std::size_t i = 0; i < c.statuses.size(); ++i)
                    if (c.statuses[i] == status) n = c.counts[i];
                  self->state.ctx.metrics->set_queue_depth(status, n);
                }
              });
        }
        self->delayed_send(self, s.ctx.heartbeat_period, heartbeat_atom::value);
      },
      [=](shutdown_atom) {
        if (!self->state.stopping)
          shutdown(self);
        else
          finalize(self); // second call: the grace period is over
      },
      [=](status_atom) { return static_cast<std::int32_t>(self->state.running.size()); },
  };
}

} // namespace satoru::actors
