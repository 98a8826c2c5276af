#include "satoru/web/repository_pages.hpp"

#include "satoru/cancel.hpp"
#include "satoru/repository_ops.hpp"
#include "satoru/restic.hpp"
#include "satoru/state_json.hpp"
#include "satoru/time.hpp"
#include "satoru/web/http_text.hpp"
#include "satoru/web/page.hpp"

#include <boost/json/serialize.hpp>
#include <fmt/format.h>

#include <algorithm>

namespace satoru::web {

namespace json = boost::json;

namespace {

/// The newest job of a repository `type`, as the API's job JSON; null when
/// none ran yet.
expected<json::value> last_job(store* db, job_type type) {
  if (db == nullptr) return json::value(nullptr);
  auto job = db->last_job_of_type(type, 0);
  if (!job) return job.err();
  if (!*job) return json::value(nullptr);
  return json::value(job_json(**job));
}

/// A field of a JSON object as escaped text ("-" for null and "").
std::string text(const json::object& o, const char* key) {
  const auto* v = o.if_contains(key);
  if (v == nullptr || v->is_null()) return "-";
  if (v->is_string()) return v->get_string().empty() ? "-" : html_escape(v->get_string());
  return html_escape(json::serialize(*v));
}

std::string fact(const char* label, const std::string& escaped) {
  return fmt::format("<dt>{}</dt><dd>{}</dd>", label, escaped);
}

/// "success, 2026-11-28T03:04:05Z (job 12)" for a job, "never" for null.
std::string job_fact(const json::value& job) {
  if (!job.is_object()) return "never";
  const auto& j = job.as_object();
  std::string when =
      text(j, "finished_at") != "-" ? text(j, "finished_at") : text(j, "created_at");
  return fmt::format(
      "<span class=\"status {0}\">{0}</span>, {1} (<a href=\"/jobs/{2}\">job "
      "{2}</a>){3}",
      text(j, "status"), when, text(j, "id"),
      text(j, "error") == "-" ? "" : ": " + text(j, "error"));
}

/// A button that queues the repository job `type` (operators only).
std::string queue_form(const char* type, const char* label, const std::string& csrf) {
  return fmt::format("<form class=\"inline queue-{0}\" method=\"post\" "
                     "action=\"/repository/jobs\"><input type=\"hidden\" name=\"csrf\" "
                     "value=\"{1}\"><input type=\"hidden\" name=\"type\" value=\"{0}\">"
                     "<button type=\"submit\">{2}</button></form>",
                     type, html_escape(csrf), label);
}

} // namespace

repository_figures_source::repository_figures_source(std::shared_ptr<const metrics> m)
    : metrics_(std::move(m)) {}

repository_figures_source::reading repository_figures_source::read(const config& cfg,
                                                                   std::int64_t now_ms) {
  if (metrics_) {
    auto known = metrics_->last_repository_figures();
    if (known.updated_at > 0) return {known, "metrics", {}};
  }
  std::lock_guard lock(mutex_);
  if (cached_ && now_ms - cached_->figures.updated_at < repository_figures_cache_ms)
    return *cached_;
  reading r;
  r.measured_by = "restic";
  auto overview = inspect_repository(cfg, 0, cancel_token{});
  if (!overview.ok) {
    r.error = redact_repository(overview.error);
  } else {
    r.figures.size = overview.size;
    for (const auto& s : cfg.sites)
      if (auto it = overview.per_site.find(s.uuid); it != overview.per_site.end())
        r.figures.snapshots += it->second;
  }
  r.figures.updated_at = now_ms;
  cached_ = r;
  return r;
}

expected<json::object> repository_json(const config& cfg, store* db,
                                       const repository_figures_source::reading& r,
                                       std::int64_t now_ms) {
  bool measured = r.error.empty() && r.figures.updated_at > 0;
  json::object local{
      {"repository", redact_repository(cfg.restic_repo_path)},
      {"size_bytes", measured ? json::value(r.figures.size) : json::value(nullptr)},
      {"snapshots", measured ? json::value(r.figures.snapshots) : json::value(nullptr)},
      {"measured_at", format_time(r.figures.updated_at)},
      {"measured_by", r.measured_by},
      {"error", r.error}};
  auto retention = last_job(db, job_type::retention);
  if (!retention) return retention.err();
  auto check = last_job(db, job_type::check);
  if (!check) return check.err();
  auto sync = last_job(db, job_type::restic_sync);
  if (!sync) return sync.err();

  std::string remote =
      cfg.restic_b2_repository ? redact_repository(*cfg.restic_b2_repository) : "";
  sync_state_row state;
  if (db != nullptr && !remote.empty()) {
    // The sync actor keys the copy's row by the redacted repository.
    auto row = db->get_sync_state(remote);
    if (!row) return row.err();
    state = *row;
  }
  json::value age = nullptr;
  if (state.last_success_at > 0)
    age = std::max<std::int64_t>(0, now_ms - state.last_success_at) / 1000;
  json::object offsite{{"repository", remote},
                       {"status", state.status},
                       {"last_sync_at", format_time(state.last_attempt_at)},
                       {"last_success_at", format_time(state.last_success_at)},
                       {"last_success_age_seconds", age},
                       {"error", redact_repository(state.error)},
                       {"snapshots_copied", state.snapshots_copied},
                       {"lag_snapshots", state.offsite_lag}};
  return json::object{
      {"generated_at", format_time(now_ms)},     {"local", std::move(local)},
      {"last_retention", std::move(*retention)}, {"last_check", std::move(*check)},
      {"offsite", std::move(offsite)},           {"last_sync", std::move(*sync)}};
}

std::string repository_html(const json::object& repo, const std::string& user,
                            const std::string& csrf) {
  const auto& local = repo.at("local").as_object();
  const auto& offsite = repo.at("offsite").as_object();
  bool has_offsite = !offsite.at("repository").as_string().empty();
  std::string body = "<header><h1>Repository &amp; off-site sync</h1><span><a "
                     "href=\"/\">Fleet</a> &middot; " +
                     html_escape(user) + "</span></header>";
  if (!csrf.empty()) {
    body += "<p>";
    if (has_offsite) body += queue_form("sync", "Sync now", csrf) + " ";
    body += queue_form("prune", "Prune now", csrf) + " " +
            queue_form("check", "Check now", csrf) + "</p>";
  }
  std::string size = local.at("size_bytes").is_int64()
                         ? html_escape(format_bytes(static_cast<std::uint64_t>(
                               local.at("size_bytes").as_int64())))
                         : "not known yet";
  std::string measured =
      text(local, "error") != "-"
          ? "<span class=\"error\">" + text(local, "error") + "</span>"
          : text(local, "measured_at") + " (" + text(local, "measured_by") + ")";
  body +=
      "<h2>Local repository</h2><dl class=\"facts local\">" +
      fact("Location", text(local, "repository")) + fact("Size", size) +
      fact("Snapshots", local.at("snapshots").is_int64() ? text(local, "snapshots")
                                                         : std::string("not known yet")) +
      fact("Measured", measured) +
      fact("Last retention", job_fact(repo.at("last_retention"))) +
      fact("Last check", job_fact(repo.at("last_check"))) + "</dl>";
  body += "<h2>Off-site copy</h2>";
  if (!has_offsite) {
    body += "<p class=\"note offsite\">No off-site repository: set restic_b2_repository "
            "in the config.</p>";
  } else {
    std::string status = text(offsite, "status") == "-"
                             ? std::string("never ran")
                             : "<span class=\"status " + text(offsite, "status") + "\">" +
                                   text(offsite, "status") + "</span>";
    body += "<dl class=\"facts offsite\">" +
            fact("Repository", text(offsite, "repository")) + fact("Status", status) +
            fact("Last sync", text(offsite, "last_sync_at")) +
            fact("Last success", text(offsite, "last_success_at")) +
            fact("Error", text(offsite, "error")) +
            fact("Lag", text(offsite, "lag_snapshots") + " snapshots not off-site yet") +
            fact("Last sync job", job_fact(repo.at("last_sync"))) + "</dl>";
  }
  body += "<p class=\"note\">As of " + text(repo, "generated_at") +
          " &middot; <a href=\"/repository?format=json\">JSON</a></p>";
  return page("Satoru repository", body);
}

std::optional<job_type> repository_job_type(std::string_view name) {
  if (name == "sync") return job_type::restic_sync;
  if (name == "prune") return job_type::retention;
  if (name == "check") return job_type::check;
  return std::nullopt;
}

expected<enqueue_result> enqueue_repository_job(const config& cfg, job_type type) {
  if (auto ok = check_repository_job(cfg, type); !ok) return ok.err();
  auto db = store::open(cfg.database_path);
  if (!db) return db.err();
  return queue_repository_job(cfg, *db, type);
}

} // namespace satoru::web
