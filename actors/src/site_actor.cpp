#include "satoru/actors/site_actor.hpp"

#include "satoru/actors/target_handler_actor.hpp"
#include "satoru/actors/task_actor.hpp"
#include "satoru/health.hpp"
#include "satoru/identity.hpp"
#include "satoru/store.hpp"
#include "satoru/time.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

namespace satoru::actors {

namespace {

using self_ptr = site_actor::stateful_pointer<site_state>;

/// Slack on top of a task's own deadline before we stop waiting for it.
constexpr std::chrono::seconds grace{30};

void emit(self_ptr self, const std::string& level, const std::string& step,
          const std::string& target, const std::string& message) {
  self->send(self->state.store, event_atom::value,
             job_event{self->state.job.job_id, level, step, target, message, {}});
}

std::string health_of_status(const std::string& status) {
  if (status == "success") return health_ok;
  if (status == "warning") return health_warning;
  return health_failed;
}

/// Ends the current job: records it, answers the supervisor, frees the site.
void finish_job(self_ptr self, const std::string& status, const std::string& error_text) {
  auto& st = self->state;
  auto job = st.job;
  auto promise = st.promise;
  auto duration = static_cast<double>(now_ms() - st.started_ms) / 1000.0;
  auto reset = [self] {
    auto& s = self->state;
    s.busy = false;
    s.pending.clear();
    s.results.clear();
    s.pulling = 0;
    s.snapshotting = 0;
  };
  if (st.cancel.cancelled()) {
    // A shutdown cancelled us: the supervisor marks the job interrupted so
    // that it runs again; nothing of it is recorded as finished.
    reset();
    promise.deliver(job_outcome{job.job_id, "interrupted", "cancelled by shutdown"});
    return;
  }
  self->request(st.store, caf::infinite, finish_atom::value, job.job_id, status,
                error_text)
      .then(
          [=](bool recorded) mutable {
            if (recorded && self->state.ctx.metrics)
              self->state.ctx.metrics->job_finished(job.type, status, duration);
            reset();
            promise.deliver(
                job_outcome{job.job_id, recorded ? status : "lost", error_text});
          },
          [=](caf::error& err) mutable {
            reset();
            promise.deliver(std::move(err));
          });
}

std::string summarize_failures(const std::vector<target_outcome>& results,
                               const site_config& site) {
  std::vector<std::string> parts;
  for (const auto& r : results) {
    if (r.status == "success") continue;
    auto it =
        std::find_if(site.targets.begin(), site.targets.end(),
                     [&](const target_config& t) { return t.hash == r.target_hash; });
    parts.push_back(fmt::format(
        "{}: {}", it != site.targets.end() ? it->path : r.target_hash, r.error));
  }
  return fmt::format("{}", fmt::join(parts, "; "));
}

void record_target(self_ptr self, const target_outcome& outcome) {
  auto& st = self->state;
  self->send(st.store, scan_atom::value, st.job.site_id, outcome);
  if (auto& m = st.ctx.metrics) {
    m->add_pulled(st.site.name, outcome.bytes, outcome.files);
    if (outcome.status != "failed") {
      m->add_data_added(st.site.name, outcome.data_added);
      m->set_target_last_success(st.site.name, outcome.target_hash, now_ms());
    }
  }
}

void finish_backup(self_ptr self) {
  auto& st = self->state;
  auto status = backup_status(st.results);
  std::size_t failed = 0;
  for (const auto& r : st.results)
    failed += r.status == "failed" ? 1 : 0;
  std::string error_text;
  if (failed > 0)
    error_text = fmt::format("{} of {} targets failed: {}", failed, st.results.size(),
                             summarize_failures(st.results, st.site));
  else if (status != "success")
    error_text = "finished with warnings: " + summarize_failures(st.results, st.site);
  if (!st.cancel.cancelled()) {
    auto reason = status == "success" ? std::string{"last backup succeeded"} : error_text;
    self->send(st.store, health_atom::value, st.job.site_id, health_of_status(status),
               reason, false);
    self->send(st.store, backedup_atom::value, st.job.site_id, status != "failed");
    if (auto& m = st.ctx.metrics) {
      m->set_site_health(st.site.name, health_of_status(status));
      if (status != "failed") m->set_site_last_success(st.site.name, now_ms());
    }
  }
  finish_job(self, status, error_text);
}

void target_done(self_ptr self, target_outcome outcome);

/// Snapshots a pulled target through the restic actor.
void snapshot_target(self_ptr self, target_outcome pulled) {
  auto& st = self->state;
  snapshot_request req{
      st.job.job_id, st.site.uuid, pulled.target_hash,
      staging_path(st.ctx.cfg->staging_root, st.site.uuid, pulled.target_hash)};
  auto timeout = std::chrono::seconds{st.ctx.cfg->restic_timeout_seconds} + grace;
  self->request(st.restic, timeout, snapshot_atom::value, req, st.cancel.child())
      .then(
          [=](snapshot_outcome& snap) mutable {
            pulled.snapshot_id = snap.snapshot_id;
            pulled.data_added = snap.data_added;
            if (snap.status == "failed") {
              pulled.status = "failed";
              pulled.error = "snapshot failed: " + snap.error;
            } else if (snap.status == "warning") {
              pulled.status = "warning";
              pulled.error = snap.error;
            }
            --self->state.snapshotting;
            target_done(self, std::move(pulled));
          },
          [=](caf::error& err) mutable {
            pulled.status = "failed";
            pulled.error = "snapshot failed: " + self->system().render(err);
            --self->state.snapshotting;
            target_done(self, std::move(pulled));
          });
}

/// Starts target handlers while pull slots are free. A slot is freed when
/// its pull ends: the snapshot runs on through the restic actor, and the
/// next target's pull need not wait for it.
void launch_targets(self_ptr self) {
  auto& st = self->state;
  auto limit = std::max(1, st.ctx.cfg->target_concurrency);
  while (st.pulling < limit && !st.pending.empty()) {
    auto target = st.pending.front();
    st.pending.pop_front();
    ++st.pulling;
    auto token = st.cancel.child();
    auto seconds = std::chrono::seconds{st.ctx.cfg->target_timeout_seconds};
    auto dl = deadline::after(seconds);
    auto ctx = st.ctx;
    auto site = st.site;
    auto store = st.store;
    auto job_id = st.job.job_id;
    auto worker = spawn_task<target_outcome>(
        self, [=] { return pull_target(ctx, site, target, store, job_id, token, dl); });
    self->request(worker, seconds + grace, run_atom::value)
        .then(
            [=](target_outcome& pulled) {
              --self->state.pulling;
              if (pulled.status == "failed" || self->state.cancel.cancelled()) {
                target_done(self, std::move(pulled));
                return;
              }
              ++self->state.snapshotting;
              snapshot_target(self, std::move(pulled));
              launch_targets(self);
            },
            [=](caf::error& err) {
              token.cancel(); // stop the handler if it is still running
              --self->state.pulling;
              target_outcome failed;
              failed.target_hash = target.hash;
              failed.status = "failed";
              failed.error =
                  "target handler did not finish: " + self->system().render(err);
              target_done(self, std::move(failed));
            });
  }
}

/// A target is through (pulled and snapshotted, or failed).
void target_done(self_ptr self, target_outcome outcome) {
  auto& st = self->state;
  if (!st.cancel.cancelled()) record_target(self, outcome);
  st.results.push_back(std::move(outcome));
  if (st.cancel.cancelled()) st.pending.clear();
  launch_targets(self);
  if (st.pulling == 0 && st.snapshotting == 0 && st.pending.empty()) finish_backup(self);
}

void on_preflight(self_ptr self, const preflight_summary& summary) {
  auto& st = self->state;
  if (!st.cancel.cancelled()) {
    self->send(st.store, health_atom::value, st.job.site_id, summary.health,
               summary.reason, true);
    if (auto& m = st.ctx.metrics) {
      m->set_site_health(st.site.name, summary.health);
      m->set_site_last_preflight(st.site.name, now_ms());
    }
  }
  if (st.job.type == "preflight") {
    auto status = summary.health == health_ok        ? "success"
                  : summary.health == health_warning ? "warning"
                                                     : "failed";
    finish_job(self, status, summary.health == health_ok ? "" : summary.reason);
    return;
  }
  // A backup: a failed site-level check fails the job at once.
  if (!summary.site_ok || st.cancel.cancelled()) {
    if (!st.cancel.cancelled())
      self->send(st.store, backedup_atom::value, st.job.site_id, false);
    finish_job(self, "failed", "preflight failed: " + summary.site_error);
    return;
  }
  for (const auto& target : st.site.targets) {
    auto it = std::find(summary.failed_targets.begin(), summary.failed_targets.end(),
                        target.hash);
    if (it == summary.failed_targets.end()) {
      st.pending.push_back(target);
      continue;
    }
    // A failed target-level check fails only that target (decision 6).
    target_outcome failed;
    failed.target_hash = target.hash;
    failed.status = "failed";
    failed.error =
        "preflight: " +
        summary
            .failed_errors[static_cast<std::size_t>(it - summary.failed_targets.begin())];
    record_target(self, failed);
    st.results.push_back(std::move(failed));
  }
  emit(self, "info", "backup", "",
       fmt::format("pulling {} of {} targets, {} at a time", st.pending.size(),
                   st.site.targets.size(), st.ctx.cfg->target_concurrency));
  if (st.pending.empty()) {
    finish_backup(self);
    return;
  }
  launch_targets(self);
}

} // namespace

std::string backup_status(const std::vector<target_outcome>& results) {
  std::size_t failed = 0, warned = 0;
  for (const auto& r : results) {
    failed += r.status == "failed" ? 1 : 0;
    warned += r.status == "warning" ? 1 : 0;
  }
  if (results.empty() || failed == results.size()) return "failed";
  if (failed > 0 || warned > 0) return "warning";
  return "success";
}

site_actor::behavior_type site_behavior(site_actor::stateful_pointer<site_state> self,
                                        runtime_context ctx, site_config site,
                                        store_actor store, restic_actor restic) {
  self->state.ctx = std::move(ctx);
  self->state.site = std::move(site);
  self->state.store = std::move(store);
  self->state.restic = std::move(restic);
  return {
      [=](run_atom, const job_ticket& job,
          cancel_token cancel) -> caf::result<job_outcome> {
        auto& st = self->state;
        if (st.busy)
          return caf::make_error(caf::sec::runtime_error,
                                 fmt::format("site {} is already running job {}",
                                             st.site.name, st.job.job_id));
        st.busy = true;
        st.job = job;
        st.cancel = cancel;
        st.started_ms = now_ms();
        st.promise = self->make_response_promise<job_outcome>();
        emit(self, "info", "job", "",
             fmt::format("{} of site {} ({}:{}), attempt {}", job.type, st.site.name,
                         st.site.host, st.site.port, job.attempt));
        auto seconds = std::chrono::seconds{st.ctx.cfg->preflight_timeout_seconds};
        auto token = cancel.child();
        auto dl = deadline::after(seconds);
        auto ctx = st.ctx;
        auto site = st.site;
        auto store = st.store;
        auto worker = spawn_task<preflight_summary>(self, [=] {
          return preflight_site(ctx, site, store, job.job_id, token, dl);
        });
        self->request(worker, seconds + grace, run_atom::value)
            .then([=](preflight_summary& summary) { on_preflight(self, summary); },
                  [=](caf::error& err) {
                    token.cancel();
                    preflight_summary failed;
                    failed.health = health_failed;
                    failed.site_error =
                        "preflight did not finish: " + self->system().render(err);
                    failed.reason = failed.site_error;
                    on_preflight(self, failed);
                  });
        return st.promise;
      },
  };
}

} // namespace satoru::actors
