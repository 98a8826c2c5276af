#include "satoru/actors/site_actor.hpp"

#include "satoru/actors/store_event_sink.hpp"
#include "satoru/actors/target_handler_actor.hpp"
#include "satoru/actors/task_actor.hpp"
#include "satoru/identity.hpp"
#include "satoru/ssh_control.hpp"
#include "satoru/time.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

namespace satoru::actors {

namespace {

using site_self_ptr = site_actor::stateful_pointer<site_state>;

void emit(site_self_ptr self, const std::string& level, const std::string& step,
          const std::string& target, const std::string& message) {
  auto& job = self->state.job;
  self->send(self->state.store, event_atom::value,
             job_event{job.id, job.epoch, level, step, target, message, {}});
}

/// Answers the supervisor and frees the site for its next job. Called only
/// when every task of the attempt has stopped.
void report(site_self_ptr self, job_outcome outcome) {
  auto& st = self->state;
  if (st.cancel.cancelled())
    outcome = job_outcome{
        job_status::interrupted, "cancelled", failure_kind::none, {}, std::nullopt};
  auto promise = st.promise;
  // Every rsync of the attempt has ended; `ssh -O exit` only talks to the
  // local socket, so closing here does not hold the actor up.
  if (st.control) st.control->close();
  st.control.reset();
  st.busy = false;
  st.preflighting = false;
  st.pending.clear();
  st.results.clear();
  st.locks.clear();
  st.pulling = 0;
  st.snapshotting = 0;
  promise.deliver(std::move(outcome));
}

std::string path_of(const site_config& site, const std::string& hash) {
  for (const auto& t : site.targets)
    if (t.hash == hash) return t.path;
  return hash;
}

std::string summarize(const std::vector<target_result>& results,
                      const site_config& site) {
  std::vector<std::string> parts;
  for (const auto& r : results)
    if (r.status != job_status::success)
      parts.push_back(fmt::format("{}: {}", path_of(site, r.target_hash), r.error));
  return fmt::format("{}", fmt::join(parts, "; "));
}

/// Writes a target's row (under the job's lease) and its metrics.
void record_target(site_self_ptr self, const target_result& result) {
  auto& st = self->state;
  if (st.cancel.cancelled()) return;
  self->send(st.store, scan_atom::value, st.job, result);
  if (auto& m = st.ctx.metrics) {
    m->add_pulled(st.site.name, result.bytes, result.files);
    if (result.status != job_status::failed) {
      m->add_data_added(st.site.name, result.data_added);
      m->set_target_last_success(st.site.name, result.target_hash, now_ms());
    }
  }
}

void finish_backup(site_self_ptr self) {
  auto& st = self->state;
  auto outcome = backup_outcome(st.results, st.job.carried_status);
  std::size_t failed = 0;
  for (const auto& r : st.results)
    failed += r.status == job_status::failed ? 1 : 0;
  if (failed > 0)
    outcome.error = fmt::format("{} of {} targets failed: {}", failed, st.results.size(),
                                summarize(st.results, st.site));
  else if (outcome.status != job_status::success)
    outcome.error = st.results.empty() || outcome.status == job_status::failed
                        ? "no target was pulled"
                        : "finished with warnings: " + summarize(st.results, st.site);
  report(self, std::move(outcome));
}

void launch_targets(site_self_ptr self);

/// The attempt's master connection, opened by its first rsync; without a
/// socket folder (or with one whose path is too long) every rsync connects
/// on its own.
void open_control_master(site_self_ptr self) {
  auto& st = self->state;
  if (st.ctx.control_socket_dir.empty()) return;
  auto socket = control_socket_path(st.ctx.control_socket_dir, st.site.uuid, st.job.id);
  // Called from a pull's thread: a sink of its own each time.
  auto warn = [store = st.store, id = st.job.id,
               epoch = st.job.epoch](const std::string& why) {
    store_event_sink{store, id, epoch}.emit("warn", "pull", "", why, {});
  };
  if (socket.empty()) {
    warn(fmt::format("the ssh socket folder {} has too long a path for a unix socket; "
                     "one connection per rsync",
                     st.ctx.control_socket_dir));
    return;
  }
  st.control = std::make_shared<ssh_control_master>(std::move(socket), warn);
}

/// A target is through (pulled and snapshotted, or failed): its staging
/// lock goes, its row is written, the next target may start.
void target_done(site_self_ptr self, target_result result) {
  auto& st = self->state;
  st.locks.erase(result.target_hash);
  record_target(self, result);
  st.results.push_back(std::move(result));
  if (st.cancel.cancelled()) st.pending.clear();
  launch_targets(self); // finishes the attempt when nothing is left
}

target_result failed_target(const std::string& hash, std::string why, failure_kind kind) {
  target_result r;
  r.target_hash = hash;
  r.status = job_status::failed;
  r.error = std::move(why);
  r.failure = kind;
  return r;
}

/// Snapshots a pulled target through the restic actor. A snapshot whose
/// job was cancelled while it waited for the repository never starts.
void snapshot_target(site_self_ptr self, target_result pulled, cancel_token token) {
  auto& st = self->state;
  snapshot_request req{
      st.job.id,
      st.job.epoch,
      st.site.uuid,
      pulled.target_hash,
      staging_path(st.ctx.cfg->staging_root, st.site.uuid, pulled.target_hash),
      pulled.staged_bytes};
  auto limit = std::chrono::seconds{st.ctx.cfg->restic_timeout_seconds};
  self->delayed_send(self, limit + task_grace, expire_atom::value, token);
  auto done = [=](snapshot_outcome snap) mutable {
    pulled.snapshot_id = snap.snapshot_id;
    pulled.data_added = snap.data_added;
    if (snap.status == job_status::failed) {
      pulled.status = job_status::failed;
      pulled.error = "snapshot failed: " + snap.error;
      pulled.failure = snap.failure;
    } else if (snap.status == job_status::warning) {
      pulled.status = job_status::warning;
      pulled.error = snap.error;
    }
    --self->state.snapshotting;
    target_done(self, std::move(pulled));
  };
  self->request(st.restic, caf::infinite, snapshot_atom::value, req, token)
      .then(done, [=](caf::error& err) mutable {
        snapshot_outcome failed;
        failed.error = self->system().render(err);
        failed.failure = failure_kind::transient;
        done(failed);
      });
}

/// Runs one step of the attempt on its own thread as
/// `work(ctx, site, store, job, token, deadline)`, under `token` (a child of
/// the job's) and a deadline of `limit_seconds`.
template <class T, class Work, class OnDone>
void run_step(site_self_ptr self, cancel_token token, int limit_seconds, Work work,
              OnDone on_done) {
  auto& st = self->state;
  auto limit = std::chrono::seconds{limit_seconds};
  auto dl = deadline::after(limit);
  auto ctx = st.ctx;
  auto site = st.site;
  auto store = st.store;
  auto job = st.job;
  run_task<T>(
      self, [=] { return work(ctx, site, store, job, token, dl); }, token, limit,
      std::move(on_done));
}

/// Pulls one target whose staging lock we hold, then snapshots it.
void pull(site_self_ptr self, const target_config& target) {
  auto token = self->state.cancel.child();
  auto sized = self->state.remote_bytes.find(target.hash);
  const std::int64_t remote_bytes =
      sized == self->state.remote_bytes.end() ? -1 : sized->second;
  run_step<target_result>(
      self, token, self->state.ctx.cfg->target_timeout_seconds,
      [target, remote_bytes, control = self->state.control](
          const runtime_context& ctx, const site_config& site, const store_actor& store,
          const job_row& job, const cancel_token& cancel, deadline dl) {
        return pull_target(ctx, site, target, remote_bytes, store, job, cancel, dl,
                           control);
      },
      [=](expected<target_result> pulled) {
        auto& s = self->state;
        --s.pulling;
        if (!pulled) {
          target_done(self,
                      failed_target(target.hash,
                                    "the target handler failed: " + pulled.err().message,
                                    failure_kind::transient));
          return;
        }
        if (pulled->status == job_status::failed || s.cancel.cancelled()) {
          target_done(self, std::move(*pulled));
          return;
        }
        ++s.snapshotting;
        snapshot_target(self, std::move(*pulled), token);
        launch_targets(self);
      });
}

/// Starts pulls while slots are free. Each first takes its target's staging
/// lock and checks that the job's lease still holds: a worker whose lease
/// lapsed never touches staging. A slot is freed when its pull ends: the
/// snapshot goes on through the restic actor.
void launch_targets(site_self_ptr self) {
  auto& st = self->state;
  auto limit = std::max(1, st.ctx.cfg->target_concurrency);
  while (st.pulling < limit && !st.pending.empty() && !st.cancel.cancelled()) {
    auto target = st.pending.front();
    st.pending.pop_front();
    auto lock = staging_lock::try_acquire(
        staging_path(st.ctx.cfg->staging_root, st.site.uuid, target.hash));
    if (!lock) {
      emit(self, "fail", "pull", target.hash, lock.err().message);
      st.results.push_back(
          failed_target(target.hash, lock.err().message, classify(lock.err().code)));
      record_target(self, st.results.back());
      continue;
    }
    st.locks.emplace(target.hash, std::move(*lock));
    ++st.pulling;
    auto refused = [=](const std::string& why) {
      --self->state.pulling;
      target_done(self, failed_target(target.hash, why, failure_kind::transient));
    };
    self->request(st.store, caf::infinite, lease_atom::value, st.job)
        .then(
            [=](bool holds) {
              if (holds && !self->state.cancel.cancelled())
                pull(self, target);
              else
                refused("the job's lease is no longer ours: not pulling");
            },
            [=](caf::error& err) {
              refused("cannot check the job's lease: " + self->system().render(err));
            });
  }
  if (st.cancel.cancelled()) st.pending.clear();
  if (st.pulling == 0 && st.snapshotting == 0 && st.pending.empty() && st.busy &&
      !st.preflighting)
    finish_backup(self);
}

/// The targets this attempt pulls: all of them, or those a retry names.
std::vector<target_config> targets_of_attempt(const site_config& site,
                                              const job_row& job) {
  if (job.retry_targets.empty()) return site.targets;
  std::vector<target_config> out;
  for (const auto& t : site.targets)
    if (std::find(job.retry_targets.begin(), job.retry_targets.end(), t.hash) !=
        job.retry_targets.end())
      out.push_back(t);
  return out;
}

void on_preflight(site_self_ptr self, const preflight_summary& summary) {
  auto& st = self->state;
  st.preflighting = false;
  if (st.job.type == job_type::preflight) {
    auto failure = summary.status == job_status::success ? failure_kind::none
                   : summary.site_ok                     ? failure_kind::permanent
                                                         : summary.site_failure;
    report(self, job_outcome{summary.status,
                             summary.status == job_status::success ? "" : summary.reason,
                             failure,
                             {},
                             std::nullopt});
    return;
  }
  // A backup: a failed site-level check fails the attempt at once.
  if (!summary.site_ok || st.cancel.cancelled()) {
    report(self, job_outcome{job_status::failed,
                             "preflight failed: " + summary.site_error,
                             summary.site_failure,
                             {},
                             std::nullopt});
    return;
  }
  st.remote_bytes.clear();
  for (std::size_t i = 0;
       i < summary.sized_targets.size() && i < summary.remote_bytes.size(); ++i)
    st.remote_bytes[summary.sized_targets[i]] = summary.remote_bytes[i];
  auto targets = targets_of_attempt(st.site, st.job);
  for (const auto& target : targets) {
    auto it = std::find(summary.failed_targets.begin(), summary.failed_targets.end(),
                        target.hash);
    if (it == summary.failed_targets.end()) {
      st.pending.push_back(target);
      continue;
    }
    // A failed target-level check (path missing, remote tool missing) fails
    // only that target, and an operator must fix it: no retry.
    auto index = static_cast<std::size_t>(it - summary.failed_targets.begin());
    st.results.push_back(failed_target(target.hash,
                                       "preflight: " + summary.failed_errors[index],
                                       failure_kind::permanent));
    record_target(self, st.results.back());
  }
  emit(self, "info", "backup", "",
       fmt::format("pulling {} of {} targets, {} at a time", st.pending.size(),
                   st.site.targets.size(), st.ctx.cfg->target_concurrency));
  launch_targets(self);
}

void start_preflight(site_self_ptr self) {
  self->state.preflighting = true;
  run_step<preflight_summary>(
      self, self->state.cancel.child(), self->state.ctx.cfg->preflight_timeout_seconds,
      preflight_site, [=](expected<preflight_summary> summary) {
        if (summary) {
          on_preflight(self, *summary);
          return;
        }
        preflight_summary failed;
        failed.site_error = "preflight did not finish: " + summary.err().message;
        failed.site_failure = failure_kind::transient;
        failed.reason = failed.site_error;
        on_preflight(self, failed);
      });
}

/// A restore back to the edge host: the restic actor does the work (it
/// orders repository access); this actor only keeps the site from running
/// anything else meanwhile.
void restore_to_host(site_self_ptr self) {
  auto& st = self->state;
  self->request(st.restic, caf::infinite, restore_atom::value, st.job, st.cancel)
      .then([=](job_outcome& outcome) { report(self, std::move(outcome)); },
            [=](caf::error& err) {
              report(self,
                     job_outcome{job_status::failed,
                                 "the restore failed: " + self->system().render(err),
                                 failure_kind::transient,
                                 {},
                                 std::nullopt});
            });
}

} // namespace

job_outcome backup_outcome(const std::vector<target_result>& results,
                           std::optional<job_status> carried) {
  job_outcome out;
  std::vector<job_status> parts, kept;
  if (carried) {
    parts.push_back(*carried);
    kept.push_back(*carried);
  }
  bool permanent = false;
  for (const auto& r : results) {
    parts.push_back(r.status);
    if (r.status == job_status::failed && r.failure == failure_kind::transient) {
      out.retry_targets.push_back(r.target_hash);
      continue;
    }
    permanent = permanent || r.status == job_status::failed;
    kept.push_back(r.status);
  }
  out.status = combine_parts(parts);
  out.failure = !out.retry_targets.empty() ? failure_kind::transient
                : permanent                ? failure_kind::permanent
                                           : failure_kind::none;
  if (!out.retry_targets.empty() && !kept.empty())
    out.carried_status = combine_parts(kept);
  return out;
}

site_actor::behavior_type site_behavior(site_actor::stateful_pointer<site_state> self,
                                        runtime_context ctx, site_config site,
                                        store_actor store, restic_actor restic) {
  self->state.ctx = std::move(ctx);
  self->state.site = std::move(site);
  self->state.store = std::move(store);
  self->state.restic = std::move(restic);
  return {
      [=](run_atom, const job_row& job, cancel_token cancel) -> caf::result<job_outcome> {
        auto& st = self->state;
        if (st.busy)
          return caf::make_error(
              caf::sec::runtime_error,
              fmt::format("site {} is already running job {}", st.site.name, st.job.id));
        st.busy = true;
        st.job = job;
        st.cancel = cancel;
        st.promise = self->make_response_promise<job_outcome>();
        emit(self, "info", "job", "",
             fmt::format(
                 "{} of site {} ({}:{}), attempt {}{}", to_string(job.type), st.site.name,
                 st.site.host, st.site.port, job.attempts,
                 job.retry_targets.empty()
                     ? ""
                     : fmt::format(", retrying {} target(s)", job.retry_targets.size())));
        if (job.type == job_type::restore) {
          restore_to_host(self);
        } else {
          open_control_master(self);
          start_preflight(self);
        }
        return st.promise;
      },
      [=](expire_atom, cancel_token token) { token.cancel(); },
  };
}

} // namespace satoru::actors
