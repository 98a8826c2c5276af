#include "satoru/actors/restic_actor.hpp"

#include "check_state.hpp"

#include "satoru/actors/store_event_sink.hpp"
#include "satoru/actors/task_actor.hpp"
#include "satoru/disk_headroom.hpp"
#include "satoru/host_restore.hpp"
#include "satoru/repository_ops.hpp"
#include "satoru/restic.hpp"
#include "satoru/snapshot_record.hpp"
#include "satoru/time.hpp"

#include <filesystem>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace satoru::actors {

namespace {

using restic_self_ptr = restic_actor::stateful_pointer<restic_state>;

/// The result of repository work, or what its error says as a result of the
/// same type (the requester always gets an answer it can read).
template <class T, class Failed> T value_or_failure(expected<T> r, Failed failed) {
  return r ? std::move(*r) : failed(r.err());
}

/// Queues work on the repository. `run` is a blocking function executed on
/// its own thread; `reply` gets its result (or the error) back here. Work
/// whose token is cancelled while it waits (its job ended) never starts.
template <class T>
void schedule(restic_self_ptr self, access_kind kind, std::function<T()> run,
              std::chrono::seconds limit, cancel_token token,
              std::function<void(expected<T>)> reply) {
  auto& st = self->state;
  st.access.submit(
      kind,
      [=] {
        run_task<T>(self, run, token, limit, [=](expected<T> r) {
          self->state.access.done(kind);
          reply(std::move(r));
        });
      },
      token,
      [=] {
        reply(error{errc::cancelled, "not started: its job ended while it waited for "
                                     "the repository"});
      });
  if (st.access.waiting() > 0 && !st.sweeping) {
    st.sweeping = true;
    self->delayed_send(self, std::chrono::seconds{1}, sweep_atom::value);
  }
}

snapshot_outcome take_snapshot(const runtime_context& ctx, const store_actor& store,
                               const snapshot_request& req, const cancel_token& cancel) {
  snapshot_outcome out;
  store_event_sink sink{store, req.job_id, req.epoch};
  for (const auto& site : ctx.cfg->sites)
    if (site.uuid == req.site_uuid) sink.track_progress(ctx.metrics.get(), site.name);
  auto started = now_ms();
  // A pull that left staging exactly as it was when its last snapshot was
  // taken (an unchanged folder, a database whose copy was skipped) needs no
  // new snapshot: that one is still current. Starting restic, opening the
  // repository and scanning the tree costs ~0.3-0.6 s of CPU per target,
  // most of an unchanged site's backup.
  auto fingerprint = staging_fingerprint(req.staging_dir);
  if (fingerprint) {
    auto last = read_snapshot_record(req.staging_dir);
    if (last && last->fingerprint == *fingerprint &&
        local_repository_has_snapshot(ctx.cfg->restic_repo_path, last->snapshot_id)) {
      out.status = job_status::success;
      out.snapshot_id = last->snapshot_id;
      out.skipped = true;
      out.duration_ms = now_ms() - started;
      sink.emit("ok", "snapshot", req.target_hash,
                fmt::format("unchanged, last snapshot {} still current (taken {}): "
                            "restic backup skipped",
                            last->snapshot_id, format_time(last->taken_at)),
                {{"snapshot_id", last->snapshot_id},
                 {"skipped", true},
                 {"taken_at", last->taken_at}});
      return out;
    }
  }
  // Whatever happens next, the old record no longer describes staging.
  forget_snapshot_record(req.staging_dir);
  // Refused up front rather than found by ENOSPC halfway through restic's
  // pack writes.
  if (auto problem = headroom_problem(*ctx.cfg, ctx.cfg->restic_repo_path, "repository",
                                      req.expected_bytes);
      !problem.empty()) {
    out.error = problem;
    out.failure = failure_kind::transient;
    sink.emit("fail", "snapshot", req.target_hash, problem,
              {{"needed_bytes", req.expected_bytes}});
    return out;
  }
  auto client = local_restic(*ctx.cfg);
  client.report_to(&sink, req.target_hash);
  auto summary = client.backup(
      req.staging_dir, snapshot_tags(req.site_uuid, req.target_hash), "satoru", cancel);
  out.duration_ms = now_ms() - started;
  if (!summary) {
    out.error = summary.err().message;
    out.failure = classify(summary.err().code);
    sink.emit("fail", "snapshot", req.target_hash, out.error, {});
    return out;
  }
  out.status = summary->warning ? job_status::warning : job_status::success;
  // Only a complete snapshot may stand in for later unchanged runs (one
  // that missed unreadable files is taken again).
  if (fingerprint && !summary->warning && !summary->snapshot_id.empty())
    if (auto w = write_snapshot_record(req.staging_dir,
                                       {*fingerprint, summary->snapshot_id, started});
        !w)
      spdlog::warn("snapshot record of {}: {}", req.staging_dir, w.err().message);
  out.error = summary->warning_message;
  out.snapshot_id = summary->snapshot_id;
  out.files_new = summary->files_new;
  out.files_changed = summary->files_changed;
  out.data_added = summary->data_added;
  out.bytes_processed = summary->total_bytes_processed;
  boost::json::object data{{"snapshot_id", summary->snapshot_id},
                           {"files_new", summary->files_new},
                           {"files_changed", summary->files_changed},
                           {"data_added", summary->data_added},
                           {"total_bytes_processed", summary->total_bytes_processed},
                           {"total_duration", summary->total_duration}};
  sink.emit(summary->warning ? "warn" : "ok", "snapshot", req.target_hash,
            fmt::format(
                "snapshot {}: {} new, {} changed files, {} added of {} processed{}",
                summary->snapshot_id, summary->files_new, summary->files_changed,
                format_bytes(static_cast<std::uint64_t>(summary->data_added)),
                format_bytes(static_cast<std::uint64_t>(summary->total_bytes_processed)),
                summary->warning
                    ? " (some files could not be read: " + summary->warning_message + ")"
                    : ""),
            data);
  return out;
}

/// Queues the creation of the repository ahead of the first work that needs
/// it (exclusive: nothing else may touch a half-created repository).
void ensure_repository(restic_self_ptr self) {
  auto& st = self->state;
  if (st.initialized) return;
  st.initialized = true;
  // A local repository that has its config file exists: no need for an
  // exclusive `restic cat config` on the critical path of the first snapshot.
  std::error_code ec;
  if (std::filesystem::is_regular_file(st.ctx.cfg->restic_repo_path + "/config", ec))
    return;
  auto ctx = st.ctx;
  cancel_token token;
  schedule<std::string>(
      self, access_kind::exclusive,
      [ctx, token] {
        auto client = local_restic(*ctx.cfg);
        auto r = client.ensure(nullptr, token);
        return r ? std::string{} : r.err().message;
      },
      std::chrono::seconds{ctx.cfg->restic_timeout_seconds}, token,
      [self](expected<std::string> r) {
        auto problem = r ? *r : r.err().message;
        if (problem.empty()) return;
        spdlog::error("local restic repository {}: {}",
                      self->state.ctx.cfg->restic_repo_path, problem);
        self->state.initialized = false; // try again with the next snapshot
      });
}

/// The drill of one target: restore and verify on a task thread (sharing
/// the repository), record it, answer with the job's outcome.
void drill_target(restic_self_ptr self, const job_row& job, cancel_token cancel,
                  const std::string& site_name, const std::string& target_hash,
                  caf::typed_response_promise<job_outcome> promise) {
  auto ctx = self->state.ctx;
  auto store = self->state.store;
  const auto* site = ctx.cfg->find_site(site_name);
  const target_config* target = nullptr;
  if (site)
    for (const auto& t : site->targets)
      if (t.hash == target_hash) target = &t;
  if (!site || !target) {
    promise.deliver(job_outcome{job_status::failed,
                                "the target chosen for the drill is no longer configured",
                                failure_kind::transient,
                                {},
                                std::nullopt});
    return;
  }
  auto site_copy = *site;
  auto target_copy = *target;
  schedule<drill_result>(
      self, access_kind::shared,
      [=] {
        store_event_sink sink{store, job.id, job.epoch};
        sink.track_progress(ctx.metrics.get(), site_copy.name);
        return run_restore_drill(*ctx.cfg, site_copy, target_copy, sink, cancel);
      },
      std::chrono::seconds{ctx.cfg->restic_timeout_seconds}, cancel,
      [=](expected<drill_result> r) mutable {
        job_outcome out;
        out.status = cancel.cancelled() ? job_status::interrupted
                     : r && r->passed   ? job_status::success
                                        : job_status::failed;
        out.error = !r ? r.err().message : r->error;
        // A snapshot that fails verification stays bad: an operator must look.
        if (out.status == job_status::failed)
          out.failure = r ? failure_kind::permanent : classify(r.err().code);
        if (out.status == job_status::interrupted) {
          promise.deliver(std::move(out));
          return;
        }
        const bool passed = out.status == job_status::success;
        const auto at = now_ms();
        if (passed && ctx.metrics)
          ctx.metrics->set_target_last_verified(site_name, target_hash, at);
        self->request(store, caf::infinite, drill_atom::value, job, site_name,
                      target_hash, passed, r ? r->snapshot_id : std::string{}, at)
            .then([=](bool) mutable { promise.deliver(out); },
                  [=](caf::error&) mutable { promise.deliver(out); });
      });
}

} // namespace

restic_actor::behavior_type
restic_behavior(restic_actor::stateful_pointer<restic_state> self, runtime_context first,
                store_actor store) {
  self->state.ctx = std::move(first);
  self->state.store = store;
  // Each handler reads the context it was given last (a reload replaces it)
  // and hands that one to its work, which keeps it to the end.
  auto current = [self] { return self->state.ctx; };
  auto timeout_of = [](const runtime_context& c) {
    return std::chrono::seconds{c.cfg->restic_timeout_seconds};
  };
  return {
      [=](snapshot_atom, const snapshot_request& req,
          cancel_token cancel) -> caf::result<snapshot_outcome> {
        auto ctx = current();
        auto timeout = timeout_of(ctx);
        auto promise = self->make_response_promise<snapshot_outcome>();
        ensure_repository(self);
        schedule<snapshot_outcome>(
            self, access_kind::snapshot,
            [=] { return take_snapshot(ctx, store, req, cancel); }, timeout, cancel,
            [=](expected<snapshot_outcome> r) mutable {
              promise.deliver(value_or_failure(std::move(r), [](const error& e) {
                snapshot_outcome failed;
                failed.error = e.message;
                failed.failure = classify(e.code);
                return failed;
              }));
            });
        return promise;
      },
      [=](retention_atom, const job_row& job,
          cancel_token cancel) -> caf::result<job_outcome> {
        auto ctx = current();
        auto timeout = timeout_of(ctx);
        auto promise = self->make_response_promise<job_outcome>();
        schedule<retention_result>(
            self, access_kind::exclusive,
            [=] {
              store_event_sink sink{store, job.id, job.epoch};
              return run_retention(*ctx.cfg, sink, cancel);
            },
            timeout, cancel,
            [=](expected<retention_result> r) mutable {
              if (r && r->ok && ctx.metrics) {
                ctx.metrics->add_snapshots_removed(r->removed);
                ctx.metrics->set_repository_size(r->size_after);
              }
              job_outcome out;
              out.status = r && r->ok ? job_status::success : job_status::failed;
              out.error = !r ? r.err().message : r->error;
              // A locked repository or a failing disk may pass next time.
              if (out.status == job_status::failed)
                out.failure = r ? failure_kind::transient : classify(r.err().code);
              promise.deliver(std::move(out));
            });
        return promise;
      },
      [=](check_atom, const job_row& job,
          cancel_token cancel) -> caf::result<job_outcome> {
        auto ctx = current();
        auto timeout = timeout_of(ctx);
        auto promise = self->make_response_promise<job_outcome>();
        auto started = now_ms();
        schedule<repository_check>(
            self, access_kind::exclusive,
            [=] {
              store_event_sink sink{store, job.id, job.epoch};
              return run_check(*ctx.cfg, false, sink, cancel);
            },
            timeout, cancel,
            [=](expected<repository_check> r) mutable {
              if (!cancel.cancelled())
                record_check(self, ctx, store, "local", started, r);
              promise.deliver(check_outcome(r, cancel.cancelled()));
            });
        return promise;
      },
      [=](drill_atom, const job_row& job,
          cancel_token cancel) -> caf::result<job_outcome> {
        auto promise = self->make_response_promise<job_outcome>();
        self->request(store, caf::infinite, drill_atom::value)
            .then(
                [=](std::vector<std::string>& chosen) mutable {
                  if (chosen.size() != 2) {
                    store_event_sink{store, job.id, job.epoch}.emit(
                        "ok", "drill", "",
                        "no target has a snapshot yet: nothing to drill", {});
                    promise.deliver(job_outcome{
                        job_status::success, "", failure_kind::none, {}, std::nullopt});
                    return;
                  }
                  drill_target(self, job, cancel, chosen[0], chosen[1], promise);
                },
                [=](caf::error& err) mutable {
                  promise.deliver(job_outcome{job_status::failed,
                                              self->system().render(err),
                                              failure_kind::transient,
                                              {},
                                              std::nullopt});
                });
        return promise;
      },
      [=](restore_atom, const job_row& job,
          cancel_token cancel) -> caf::result<job_outcome> {
        auto ctx = current();
        auto timeout = timeout_of(ctx);
        auto promise = self->make_response_promise<job_outcome>();
        auto request = host_restore_request::from_json(job.params);
        const auto* site = ctx.cfg->find_site(job.site_name);
        if (!request || !site) {
          promise.deliver(job_outcome{
              job_status::failed,
              !request ? request.err().message
                       : fmt::format("site {} is no longer configured", job.site_name),
              failure_kind::permanent,
              {},
              std::nullopt});
          return promise;
        }
        auto site_copy = *site;
        auto req = *request;
        schedule<job_outcome>(
            self, access_kind::shared,
            [=] {
              store_event_sink sink{store, job.id, job.epoch};
              sink.track_progress(ctx.metrics.get(), site_copy.name);
              return run_host_restore(*ctx.cfg, site_copy, req, sink, cancel);
            },
            timeout + std::chrono::seconds{ctx.cfg->target_timeout_seconds}, cancel,
            [=](expected<job_outcome> r) mutable {
              promise.deliver(value_or_failure(std::move(r), [](const error& e) {
                return job_outcome{
                    job_status::failed, e.message, classify(e.code), {}, std::nullopt};
              }));
            });
        return promise;
      },
      [=](copy_atom, const job_row& job,
          cancel_token cancel) -> caf::result<sync_outcome> {
        auto ctx = current();
        auto promise = self->make_response_promise<sync_outcome>();
        ensure_repository(self);
        schedule<sync_outcome>(
            self, access_kind::shared,
            [=] {
              store_event_sink sink{store, job.id, job.epoch};
              sink.track_progress(ctx.metrics.get(), {});
              auto r = run_offsite_copy(*ctx.cfg, sink, cancel);
              return sync_outcome{r.ok, r.error, r.copied, r.lag};
            },
            std::chrono::seconds{ctx.cfg->sync_timeout_seconds}, cancel,
            [=](expected<sync_outcome> r) mutable {
              promise.deliver(value_or_failure(std::move(r), [](const error& e) {
                return sync_outcome{false, e.message, 0, 0};
              }));
            });
        return promise;
      },
      [=](stats_atom, std::int64_t since_ms) -> caf::result<repository_counts> {
        auto ctx = current();
        auto timeout = timeout_of(ctx);
        auto promise = self->make_response_promise<repository_counts>();
        cancel_token token;
        schedule<repository_counts>(
            self, access_kind::shared,
            [=] {
              auto o = inspect_repository(*ctx.cfg, since_ms, token);
              repository_counts out;
              out.ok = o.ok;
              out.error = o.error;
              out.size = o.size;
              out.newer_than = o.newer_than;
              for (const auto& [uuid, n] : o.per_site) {
                out.site_uuids.push_back(uuid);
                out.snapshots.push_back(n);
              }
              return out;
            },
            timeout, token,
            [=](expected<repository_counts> r) mutable {
              promise.deliver(value_or_failure(std::move(r), [](const error& e) {
                repository_counts failed;
                failed.error = e.message;
                return failed;
              }));
            });
        return promise;
      },
      [=](expire_atom, cancel_token token) { token.cancel(); },
      [=](reload_atom, runtime_context next) {
        auto& st = self->state;
        // A new repository is created before its first use (exclusive:
        // after the work running on the old one has ended).
        if (next.cfg->restic_repo_path != st.ctx.cfg->restic_repo_path)
          st.initialized = false;
        st.ctx = std::move(next);
      },
      [=](sweep_atom) {
        auto& st = self->state;
        st.access.sweep();
        st.sweeping = st.access.waiting() > 0;
        if (st.sweeping)
          self->delayed_send(self, std::chrono::seconds{1}, sweep_atom::value);
      },
  };
}

} // namespace satoru::actors
