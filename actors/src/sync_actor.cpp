#include "satoru/actors/sync_actor.hpp"

#include "check_state.hpp"

#include "satoru/actors/store_event_sink.hpp"
#include "satoru/actors/task_actor.hpp"
#include "satoru/repository_ops.hpp"
#include "satoru/restic.hpp"
#include "satoru/time.hpp"

#include <caf/event_based_actor.hpp>
#include <spdlog/spdlog.h>

#include <map>

namespace satoru::actors {

namespace {

using sync_self_ptr = sync_actor::stateful_pointer<sync_state>;

void publish(sync_self_ptr self) {
  auto& st = self->state;
  if (!st.ctx.metrics || st.repository.empty()) return;
  st.ctx.metrics->set_sync_status(st.last.status.empty() ? "never" : st.last.status);
  st.ctx.metrics->set_sync_last_success(st.last.last_success_at);
  st.ctx.metrics->set_offsite_lag(st.last.offsite_lag);
}

void save(sync_self_ptr self) {
  self->send(self->state.store, sync_state_atom::value, self->state.last);
  publish(self);
}

void refresh(sync_self_ptr self, bool urgent = false);

void act(sync_self_ptr self, refresh_gate::decision d);

void adopt_pending(sync_self_ptr self);

void start_refresh(sync_self_ptr self) {
  auto& st = self->state;
  // Snapshots taken after the last successful copy started are not off-site.
  auto since = st.last.last_success_started_at;
  auto ended = [=] {
    act(self, self->state.refresh.finished(refresh_gate::clock::now()));
  };
  self->request(st.restic, caf::infinite, stats_atom::value, since)
      .then(
          [=](repository_counts& counts) {
            auto& s = self->state;
            if (!counts.ok) {
              if (!counts.error.empty())
                spdlog::warn("repository metrics: {}", counts.error);
            } else if (auto& m = s.ctx.metrics) {
              m->set_repository_size(counts.size);
              std::map<std::string, std::int64_t> by_uuid;
              for (std::size_t i = 0; i < counts.site_uuids.size(); ++i)
                by_uuid[counts.site_uuids[i]] = counts.snapshots[i];
              for (const auto& site : s.ctx.cfg->sites)
                m->set_site_snapshots(site.name, by_uuid[site.uuid]);
              if (!s.repository.empty() && s.last.status != "running") {
                s.last.offsite_lag = counts.newer_than;
                publish(self);
              }
            }
            ended();
          },
          [=](caf::error&) { ended(); });
}

void act(sync_self_ptr self, refresh_gate::decision d) {
  if (d.what == refresh_gate::action::start)
    start_refresh(self);
  else if (d.what == refresh_gate::action::wait)
    self->delayed_send(self, d.wait, refresh_atom::value, true);
}

/// Refreshes the repository metrics now or when the gate allows it.
void refresh(sync_self_ptr self, bool urgent) {
  if (!self->state.ctx.metrics) return; // nothing to publish to (in-process `run --wait`)
  act(self, self->state.refresh.want(refresh_gate::clock::now(), urgent));
}

/// Copies the repository off-site through the restic actor and keeps
/// sync_state; the supervisor writes the job's end.
void run_copy(sync_self_ptr self, const job_row& job, cancel_token cancel,
              caf::typed_response_promise<job_outcome> promise) {
  auto& st = self->state;
  auto started = now_ms();
  st.last.last_attempt_at = started;
  st.last.status = "running";
  st.last.error.clear();
  save(self);
  auto ended = [=](bool ok, const std::string& error_text, std::int64_t copied,
                   std::int64_t lag) mutable {
    auto& s = self->state;
    if (cancel.cancelled()) {
      s.last.status = "failed";
      s.last.error = "interrupted by shutdown";
      save(self);
      promise.deliver(job_outcome{
          job_status::interrupted, s.last.error, failure_kind::none, {}, std::nullopt});
      adopt_pending(self);
      return;
    }
    if (ok) {
      s.last.status = "success";
      s.last.last_success_at = now_ms();
      s.last.last_success_started_at = started;
      s.last.snapshots_copied = copied;
      s.last.offsite_lag = lag;
    } else {
      s.last.status = "failed";
      s.last.error = error_text;
    }
    save(self);
    // The off-site lag changed: the alerts should not wait for the interval.
    refresh(self, true);
    // A dead link or a busy remote may pass next time.
    promise.deliver(job_outcome{ok ? job_status::success : job_status::failed,
                                error_text,
                                ok ? failure_kind::none : failure_kind::transient,
                                {},
                                std::nullopt});
    adopt_pending(self);
  };
  self->request(st.restic, caf::infinite, copy_atom::value, job, cancel)
      .then([=](sync_outcome& r) mutable { ended(r.ok, r.error, r.copied, r.lag); },
            [=](caf::error& err) mutable {
              ended(false, self->system().render(err), 0, 0);
            });
}

/// The answer to off-site work when no off-site repository is configured.
job_outcome no_offsite_repository() {
  return job_outcome{job_status::failed,
                     "no restic_b2_repository is configured",
                     failure_kind::permanent,
                     {},
                     std::nullopt};
}

/// forget + prune on the off-site repository, on its own thread.
void run_offsite_retention_job(sync_self_ptr self, const job_row& job,
                               cancel_token cancel,
                               caf::typed_response_promise<job_outcome> promise) {
  auto& st = self->state;
  auto ctx = st.ctx;
  auto store = st.store;
  run_task<retention_result>(
      self,
      [=] {
        store_event_sink sink{store, job.id, job.epoch};
        return run_offsite_retention(*ctx.cfg, sink, cancel);
      },
      cancel, std::chrono::seconds{ctx.cfg->sync_timeout_seconds},
      [=](expected<retention_result> r) mutable {
        if (r && r->ok && ctx.metrics) {
          ctx.metrics->add_offsite_snapshots_removed(r->removed);
          ctx.metrics->set_offsite_repository_size(r->size_after);
        }
        job_outcome out;
        out.status = cancel.cancelled() ? job_status::interrupted
                     : r && r->ok       ? job_status::success
                                        : job_status::failed;
        out.error = !r ? r.err().message : r->error;
        // A dead link, a busy remote or a lock may pass next time.
        if (out.status == job_status::failed) out.failure = failure_kind::transient;
        promise.deliver(std::move(out));
      });
}

/// Takes a context (at start, or a reload's): its off-site repository, and
/// that repository's sync_state row and metrics when it is another one.
void adopt(sync_self_ptr self, runtime_context ctx) {
  auto& st = self->state;
  auto repository = ctx.cfg->restic_b2_repository
                        ? redact_repository(*ctx.cfg->restic_b2_repository)
                        : std::string{};
  st.ctx = std::move(ctx);
  bool same = st.adopted && repository == st.repository;
  st.adopted = true;
  if (same) return;
  st.repository = repository;
  st.last = sync_state_row{};
  if (st.repository.empty()) {
    refresh(self);
    return;
  }
  // Pick up where the last run left the state (and the metrics).
  self->request(st.store, caf::infinite, sync_state_atom::value, st.repository)
      .then(
          [=](sync_state_row& r) {
            auto& s = self->state;
            if (s.repository != repository) return;         // another reload came first
            if (r.status == "running") r.status = "failed"; // that process is gone
            if (s.last.status == "running") {
              // A job started before this answer came: keep its fields.
              s.last.last_success_at = r.last_success_at;
              s.last.last_success_started_at = r.last_success_started_at;
            } else {
              s.last = r;
            }
            publish(self);
            refresh(self);
          },
          [=](caf::error& err) {
            spdlog::warn("reading sync_state: {}", self->system().render(err));
            refresh(self);
          });
}

/// A reload's context waits while an off-site copy runs (its sync_state
/// row belongs to the repository it copies to); taken when it has ended.
void adopt_pending(sync_self_ptr self) {
  auto& st = self->state;
  if (!st.pending || st.last.status == "running") return;
  auto next = std::move(*st.pending);
  st.pending.reset();
  adopt(self, std::move(next));
}

} // namespace

refresh_gate::decision refresh_gate::start(clock::time_point now) {
  running_ = true;
  last_start_ = now;
  return {action::start, {}};
}

refresh_gate::decision refresh_gate::want(clock::time_point now, bool urgent) {
  if (running_) {
    again_ = true;
    again_urgent_ = again_urgent_ || urgent;
    return {};
  }
  if (urgent || !last_start_ || now - *last_start_ >= interval_) {
    scheduled_ = false; // a pending timer finds the refresh done (see timer_fired)
    return start(now);
  }
  if (scheduled_) return {};
  scheduled_ = true;
  return {action::wait, *last_start_ + interval_ - now};
}

refresh_gate::decision refresh_gate::timer_fired(clock::time_point now) {
  if (!scheduled_) return {}; // an urgent refresh ran meanwhile
  scheduled_ = false;
  return want(now);
}

refresh_gate::decision refresh_gate::finished(clock::time_point now) {
  running_ = false;
  if (!again_) return {};
  auto urgent = again_urgent_;
  again_ = again_urgent_ = false;
  return want(now, urgent);
}

sync_actor::behavior_type sync_behavior(sync_actor::stateful_pointer<sync_state> self,
                                        runtime_context first, store_actor store,
                                        restic_actor restic) {
  auto& st = self->state;
  st.store = store;
  st.restic = restic;
  adopt(self, std::move(first));
  return {
      [=](run_atom, const job_row& job, cancel_token cancel) -> caf::result<job_outcome> {
        auto& s = self->state;
        if (s.repository.empty()) return no_offsite_repository();
        auto promise = self->make_response_promise<job_outcome>();
        s.last.repository = s.repository;
        run_copy(self, job, cancel, promise);
        return promise;
      },
      [=](retention_atom, const job_row& job,
          cancel_token cancel) -> caf::result<job_outcome> {
        if (self->state.repository.empty()) return no_offsite_repository();
        auto promise = self->make_response_promise<job_outcome>();
        run_offsite_retention_job(self, job, cancel, promise);
        return promise;
      },
      [=](check_atom, const job_row& job,
          cancel_token cancel) -> caf::result<job_outcome> {
        if (self->state.repository.empty()) return no_offsite_repository();
        auto promise = self->make_response_promise<job_outcome>();
        auto ctx = self->state.ctx;
        auto store = self->state.store;
        auto started = now_ms();
        run_task<repository_check>(
            self,
            [=] {
              store_event_sink sink{store, job.id, job.epoch};
              return run_check(*ctx.cfg, true, sink, cancel);
            },
            cancel, std::chrono::seconds{ctx.cfg->sync_timeout_seconds},
            [=](expected<repository_check> r) mutable {
              if (!cancel.cancelled())
                record_check(self, ctx, store, "offsite", started, r);
              promise.deliver(check_outcome(r, cancel.cancelled()));
            });
        return promise;
      },
      [=](expire_atom, cancel_token token) { token.cancel(); },
      [=](reload_atom, runtime_context next) {
        self->state.pending = std::move(next);
        adopt_pending(self);
      },
      [=](refresh_atom) { refresh(self); },
      [=](refresh_atom, bool) {
        act(self, self->state.refresh.timer_fired(refresh_gate::clock::now()));
      },
  };
}

} // namespace satoru::actors
