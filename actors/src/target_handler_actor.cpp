#include "satoru/actors/target_handler_actor.hpp"

#include "satoru/actors/store_event_sink.hpp"
#include "satoru/disk_headroom.hpp"
#include "satoru/files.hpp"
#include "satoru/health.hpp"
#include "satoru/plugin_crash.hpp"
#include "satoru/preflight.hpp"
#include "satoru/text.hpp"
#include "satoru/time.hpp"

#include <fmt/format.h>

#include <filesystem>
#include <memory>
#include <mutex>
#include <sys/stat.h>

namespace satoru::actors {

namespace fs = std::filesystem;

namespace {

/// A fresh, private scratch folder (leftovers of a killed run are removed).
expected<void> fresh_private_dir(const std::string& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
  return make_dirs(path, 0700);
}

/// Held while a pull checks staging and reserves its estimate, so that two
/// pulls starting at once never both count the same free space.
std::mutex staging_check;

/// "" when a pull fits in staging with disk_min_free kept (besides what the
/// running pulls reserved), else the one-line refusal; `needed` and
/// `estimate` get the figures. A sqlite_dump target (`whole_copy`) writes a
/// whole new copy beside the staged one before replacing it; a directory
/// changes files in place, and its staged size is only walked (a stat per
/// staged file) when the pull does not fit without counting it.
std::string staging_refusal(const config& cfg, const target_spec& spec, bool whole_copy,
                            std::int64_t remote_bytes, std::int64_t& needed,
                            boost::json::object& estimate) {
  const std::int64_t reserved = staging_reservation::reserved();
  std::int64_t staged = whole_copy ? tree_bytes(spec.staging_dir) : 0;
  needed = pull_needed_bytes(whole_copy, remote_bytes, staged);
  auto problem = headroom_problem(cfg, cfg.staging_root, "staging", needed, reserved);
  if (!problem.empty() && !whole_copy && remote_bytes >= 0) {
    staged = tree_bytes(spec.staging_dir);
    needed = pull_needed_bytes(whole_copy, remote_bytes, staged);
    problem = headroom_problem(cfg, cfg.staging_root, "staging", needed, reserved);
  }
  estimate = {{"needed_bytes", needed},
              {"remote_bytes", remote_bytes},
              {"staged_bytes", staged},
              {"reserved_bytes", reserved}};
  return problem;
}

} // namespace

target_result pull_target(const runtime_context& ctx, const site_config& site,
                          const target_config& target, std::int64_t remote_bytes,
                          const store_actor& store, const job_row& job,
                          const cancel_token& cancel, satoru::deadline deadline,
                          std::shared_ptr<ssh_control_master> control) {
  target_result out;
  out.target_hash = target.hash;
  auto started = now_ms();
  store_event_sink sink{store, job.id, job.epoch};
  auto spec = spec_of(*ctx.cfg, site, target);
  auto finish = [&](job_status status, std::string message,
                    failure_kind failure = failure_kind::none) {
    out.status = status;
    out.error = std::move(message);
    out.failure = status == job_status::failed ? failure : failure_kind::none;
    out.duration_ms = now_ms() - started;
    std::error_code ec;
    fs::remove_all(spec.work_dir, ec);
    return out;
  };
  auto* handler = ctx.plugins->find(target.mode);
  if (!handler)
    return finish(job_status::failed,
                  fmt::format("no plugin serves mode \"{}\"", target.mode),
                  failure_kind::permanent);
  if (auto r = make_dirs(fs::path(spec.staging_dir).parent_path().string()); !r)
    return finish(job_status::failed, r.err().message, classify(r.err().code));
  if (auto r = fresh_private_dir(spec.work_dir); !r)
    return finish(job_status::failed, r.err().message, classify(r.err().code));
  // Refused before anything is pulled, so the other targets go on and the
  // last good staged copy stays.
  std::unique_ptr<staging_reservation> reservation;
  {
    std::lock_guard<std::mutex> lock(staging_check);
    std::int64_t needed = 0;
    boost::json::object estimate;
    if (auto problem = staging_refusal(*ctx.cfg, spec, target.mode == "sqlite_dump",
                                       remote_bytes, needed, estimate);
        !problem.empty()) {
      problem = target.path + ": " + problem;
      sink.emit("fail", "pull", target.hash, problem, estimate);
      return finish(job_status::failed, problem, failure_kind::transient);
    }
    reservation = std::make_unique<staging_reservation>(needed);
  }

  sink.track_progress(ctx.metrics.get(), site.name);
  auto endpoint = endpoint_of(site);
  endpoint.control = std::move(control);
  host_services services{std::move(endpoint), sink, cancel, deadline, target.hash};
  sink.emit(
      "info", "pull", target.hash,
      fmt::format("pulling {} {} with {}", target.mode, target.path, handler->name()),
      {});
  pull_result result;
  try {
    plugin_call_scope crash_report{handler->name(), "pull", target.path, site.name,
                                   job.id};
    result = handler->pull(spec, services);
  } catch (const std::exception& e) {
    result.outcome = pull_result::status::failed;
    result.failure = failure_kind::permanent;
    result.message = fmt::format("plugin {} failed: {}", handler->name(), e.what());
  } catch (...) {
    result.outcome = pull_result::status::failed;
    result.failure = failure_kind::permanent;
    result.message = fmt::format("plugin {} failed", handler->name());
  }
  // The message may quote remote output; it becomes the job's error and the
  // site's health reason.
  result.message = capped_output(result.message);
  out.bytes = static_cast<std::int64_t>(result.bytes);
  out.files = static_cast<std::int64_t>(result.files);
  // What the snapshot may add: the staged files this pull wrote, whole (a
  // second of slack for the filesystem's coarse clock).
  if (result.outcome != pull_result::status::failed)
    out.staged_bytes = tree_bytes(spec.staging_dir, started - 1000);
  if (result.outcome == pull_result::status::failed) {
    if (cancel.cancelled() && result.message.empty()) result.message = "cancelled";
    sink.emit("fail", "pull", target.hash, result.message, {{"path", target.path}});
    return finish(job_status::failed, result.message,
                  result.failure == failure_kind::none ? failure_kind::transient
                                                       : result.failure);
  }
  if (ctx.metrics) {
    const auto* unreadable = result.data.if_contains("unreadable_files");
    ctx.metrics->set_target_unreadable(site.name, target.hash,
                                       unreadable && unreadable->is_number()
                                           ? unreadable->to_number<std::int64_t>()
                                           : 0);
  }
  auto data = result.data;
  data["bytes"] = result.bytes;
  data["files"] = result.files;
  sink.emit(result.outcome == pull_result::status::warning ? "warn" : "ok", "pull",
            target.hash,
            fmt::format("pulled {} ({} files, {} over the wire){}", target.path,
                        result.files, format_bytes(result.bytes),
                        result.message.empty() ? "" : ": " + result.message),
            data);
  // target_result.error is failure or warning text only: a success's note
  // ("copied with VACUUM INTO ...") is in the pull event, not site_targets.last_error.
  if (result.outcome == pull_result::status::warning)
    return finish(job_status::warning, result.message);
  return finish(job_status::success, "");
}

preflight_summary preflight_site(const runtime_context& ctx, const site_config& site,
                                 const store_actor& store, const job_row& job,
                                 const cancel_token& cancel, satoru::deadline deadline) {
  store_event_sink sink{store, job.id, job.epoch};
  preflight_summary out;
  try {
    auto report = run_preflight(*ctx.cfg, site, *ctx.plugins, sink, cancel, deadline);
    out.site_ok = report.site_ok;
    out.site_error = report.site_error;
    out.site_failure = report.site_ok ? failure_kind::none : classify(report.site_code);
    out.host_key_mismatch = report.host_key_mismatch;
    if (ctx.metrics && report.host_key_checked)
      ctx.metrics->set_site_host_key_mismatch(site.name, report.host_key_mismatch);
    out.status = report.status();
    out.reason = report.reason();
    for (const auto& t : report.targets) {
      if (t.remote_bytes >= 0) {
        out.sized_targets.push_back(t.hash);
        out.remote_bytes.push_back(t.remote_bytes);
      }
      if (!t.ok) {
        out.failed_targets.push_back(t.hash);
        out.failed_errors.push_back(t.error);
      }
    }
  } catch (const std::exception& e) {
    out.site_ok = false;
    out.site_error = std::string{"preflight failed: "} + e.what();
    out.site_failure = failure_kind::permanent;
    out.status = job_status::failed;
    out.reason = out.site_error;
  }
  return out;
}

} // namespace satoru::actors
