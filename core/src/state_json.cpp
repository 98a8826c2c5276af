#include "satoru/state_json.hpp"

#include "satoru/progress_display.hpp"
#include "satoru/time.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <cmath>
#include <map>

namespace satoru {

namespace json = boost::json;

boost::json::object job_json(const job_row& j) {
  json::array retry_targets;
  for (const auto& h : j.retry_targets)
    retry_targets.push_back(json::value(h));
  return {{"id", j.id},
          {"site", j.site_name},
          {"type", to_string(j.type)},
          {"status", to_string(j.status)},
          {"created_at", format_time(j.created_at)},
          {"started_at", format_time(j.started_at)},
          {"finished_at", format_time(j.finished_at)},
          {"heartbeat_at", format_time(j.heartbeat_at)},
          {"attempts", j.attempts},
          {"failed_attempts", j.failed_attempts},
          {"recoveries", j.recoveries},
          {"next_attempt_at", j.next_attempt_at > 0 && j.status == job_status::queued
                                  ? format_time(j.next_attempt_at)
                                  : std::string{}},
          {"retry_targets", std::move(retry_targets)},
          {"error", j.error},
          {"owner", j.owner},
          {"epoch", j.epoch}};
}

boost::json::object event_json(const event_row& e) {
  json::object o{{"type", "event"},           {"id", e.id},          {"job_id", e.job_id},
                 {"time", format_time(e.ts)}, {"level", e.level},    {"step", e.step},
                 {"target", e.target},        {"message", e.message}};
  if (!e.data.empty()) {
    json::error_code ec;
    auto data = json::parse(e.data, ec);
    if (!ec) o["data"] = data;
  }
  return o;
}

void add_progress_json(boost::json::object& o, const job_row& j,
                       const std::vector<progress_row>& progress) {
  auto fraction = running_fraction(progress, j.id);
  if (fraction)
    o["percent"] = std::round(*fraction * 1000) / 10;
  else
    o["percent"] = nullptr;
  json::array steps;
  for (const auto& row : progress)
    if (row.job_id == j.id && row.ended_at == 0) steps.push_back(progress_json(row));
  o["progress"] = std::move(steps);
}

expected<std::vector<progress_row>> live_progress(store* db,
                                                  const std::vector<job_row>& jobs) {
  bool running = std::any_of(jobs.begin(), jobs.end(), [](const job_row& j) {
    return j.status == job_status::running;
  });
  if (db == nullptr || !running) return std::vector<progress_row>{};
  return db->list_progress();
}

expected<boost::json::array> jobs_json(store* db, const job_filter& filter) {
  std::vector<job_row> jobs;
  if (db != nullptr) {
    auto rows = db->list_jobs(filter);
    if (!rows) return rows.err();
    jobs = std::move(*rows);
  }
  auto progress = live_progress(db, jobs);
  if (!progress) return progress.err();
  json::array out;
  for (const auto& j : jobs) {
    auto o = job_json(j);
    add_progress_json(o, j, *progress);
    out.push_back(std::move(o));
  }
  return out;
}

expected<std::optional<boost::json::object>> job_detail_json(store* db, std::int64_t id) {
  if (db == nullptr) return std::optional<json::object>{};
  auto job = db->get_job(id);
  if (!job) return job.err();
  if (!*job) return std::optional<json::object>{};
  auto events = db->list_events(id);
  if (!events) return events.err();
  auto progress = live_progress(db, {**job});
  if (!progress) return progress.err();
  auto out = job_json(**job);
  add_progress_json(out, **job, *progress);
  json::array list;
  for (const auto& e : *events)
    list.push_back(event_json(e));
  out["events"] = std::move(list);
  return std::optional<json::object>{std::move(out)};
}

namespace {

/// The sites of this config as the database knows them (matched by uuid);
/// a site the database has never seen shows health unknown.
expected<std::vector<site_row>> configured_sites(const config& cfg, store* db) {
  std::map<std::string, site_row> known;
  if (db != nullptr) {
    auto rows = db->list_sites(true);
    if (!rows) return rows.err();
    for (auto& r : *rows)
      known[r.uuid] = std::move(r);
  }
  std::vector<site_row> out;
  for (const auto& site : cfg.sites) {
    auto it = known.find(site.uuid);
    site_row row = it != known.end() ? it->second : site_row{};
    row.name = site.name;
    row.uuid = site.uuid;
    row.host = site.host;
    row.port = site.port;
    row.user = site.user;
    row.target_count = static_cast<int>(site.targets.size());
    out.push_back(std::move(row));
  }
  return out;
}

/// When a restore drill last verified the site: its least recently verified
/// target's time (0 when one never was, or the site has no targets yet).
std::int64_t site_last_verified(const std::vector<target_row>& targets) {
  std::int64_t oldest = 0;
  bool first = true;
  for (const auto& t : targets) {
    if (!t.enabled) continue;
    oldest = first ? t.last_verified_at : std::min(oldest, t.last_verified_at);
    first = false;
  }
  return oldest;
}

/// What a site runs now: its running job and that job's running step.
struct running_work {
  std::int64_t job_id = 0;
  std::string step; ///< "pull 43%", "snapshot", else the step of its last event
  std::vector<progress_row> progress;
};

/// The running work of each site (by name), from the jobs that run now.
expected<std::map<std::string, running_work>> running_by_site(store* db) {
  std::map<std::string, running_work> out;
  if (db == nullptr) return out;
  job_filter filter;
  filter.status = job_status::running;
  auto jobs = db->list_jobs(filter);
  if (!jobs) return jobs.err();
  if (jobs->empty()) return out;
  auto rows = db->list_progress();
  if (!rows) return rows.err();
  for (const auto& j : *jobs) {
    if (j.site_name.empty()) continue;
    running_work w;
    w.job_id = j.id;
    w.step = running_steps(*rows, j.id);
    for (const auto& r : *rows)
      if (r.job_id == j.id && r.ended_at == 0) w.progress.push_back(r);
    if (w.step.empty())
      if (auto events = db->list_events(j.id); events && !events->empty())
        w.step = events->back().step;
    if (w.step.empty()) w.step = to_string(j.type);
    out[j.site_name] = std::move(w);
  }
  return out;
}

json::value running_json(const std::map<std::string, running_work>& running,
                         const std::string& site) {
  auto it = running.find(site);
  if (it == running.end()) return nullptr;
  json::array steps;
  for (const auto& r : it->second.progress)
    steps.push_back(progress_json(r));
  return json::object{{"job_id", it->second.job_id},
                      {"step", it->second.step},
                      {"progress", std::move(steps)}};
}

json::object target_json(const target_row& t) {
  return {{"path", t.path},
          {"mode", t.mode},
          {"hash", t.target_hash},
          {"enabled", t.enabled},
          {"last_status", t.last_status},
          {"last_error", t.last_error},
          {"last_bytes", t.last_bytes},
          {"last_files", t.last_files},
          {"last_duration_ms", t.last_duration_ms},
          {"last_data_added", t.last_data_added},
          {"last_snapshot_id", t.last_snapshot_id},
          {"last_scan_at", format_time(t.last_scan_at)},
          {"last_success_at", format_time(t.last_success_at)},
          {"last_verified_at", format_time(t.last_verified_at)},
          {"last_verified_snapshot", t.last_verified_snapshot}};
}

} // namespace

expected<boost::json::array> sites_json(const config& cfg, store* db) {
  auto sites = configured_sites(cfg, db);
  if (!sites) return sites.err();
  std::map<std::string, std::int64_t> retries;
  if (db != nullptr) {
    auto pending = db->pending_retries();
    if (!pending) return pending.err();
    retries.insert(pending->begin(), pending->end());
  }
  auto running = running_by_site(db);
  if (!running) return running.err();
  // Each target's last scan: what an operator checks after a backup (and
  // what a dashboard without Prometheus can read).
  std::map<std::int64_t, std::vector<target_row>> all_targets;
  if (db != nullptr) {
    auto rows = db->targets_by_site();
    if (!rows) return rows.err();
    all_targets = std::move(*rows);
  }
  static const std::vector<target_row> no_targets;
  json::array out;
  for (const auto& s : *sites) {
    auto found = s.id > 0 ? all_targets.find(s.id) : all_targets.end();
    const auto& targets = found != all_targets.end() ? found->second : no_targets;
    json::array target_list;
    for (const auto& t : targets)
      target_list.push_back(target_json(t));
    auto retry = retries.find(s.name);
    out.push_back({{"name", s.name},
                   {"uuid", s.uuid},
                   {"host", s.host},
                   {"port", s.port},
                   {"user", s.user},
                   {"health", s.health},
                   {"health_reason", s.health_reason},
                   {"last_preflight_at", format_time(s.last_preflight_at)},
                   {"last_backup_at", format_time(s.last_backup_at)},
                   {"last_success_at", format_time(s.last_success_at)},
                   {"last_verified_at", format_time(site_last_verified(targets))},
                   {"target_count", s.target_count},
                   {"next_retry_at",
                    retry != retries.end() ? format_time(retry->second) : std::string{}},
                   {"targets", std::move(target_list)},
                   {"running", running_json(*running, s.name)}});
  }
  return out;
}

} // namespace satoru
