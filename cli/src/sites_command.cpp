#include "cli_context.hpp"
#include "satoru/progress_display.hpp"
#include "satoru/time.hpp"

#include <boost/json.hpp>
#include <fmt/format.h>

#include <iostream>
#include <map>

namespace satoru::cli {

namespace {

/// The sites of this config as the database knows them (matched by uuid);
/// a site the database has never seen shows health unknown. Read only.
std::vector<site_row> configured_sites(const config& cfg, std::optional<store>& db) {
  std::map<std::string, site_row> known;
  if (db) {
    auto rows = db->list_sites(true);
    if (!rows) fail(exit_failed, rows.err().message);
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

/// The targets the database knows of a site (none before its first job).
std::vector<target_row> targets_of(std::optional<store>& db, const site_row& s) {
  if (!db || s.id <= 0) return {};
  auto rows = db->list_targets(s.id);
  if (!rows) fail(exit_failed, rows.err().message);
  return std::move(*rows);
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
std::map<std::string, running_work> running_by_site(std::optional<store>& db) {
  std::map<std::string, running_work> out;
  if (!db) return out;
  job_filter filter;
  filter.status = job_status::running;
  auto jobs = db->list_jobs(filter);
  if (!jobs) fail(exit_failed, jobs.err().message);
  if (jobs->empty()) return out;
  auto rows = db->list_progress();
  if (!rows) fail(exit_failed, rows.err().message);
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

/// "running" of a site in --json output: null when it runs nothing.
boost::json::value running_json(const std::map<std::string, running_work>& running,
                                const std::string& site) {
  auto it = running.find(site);
  if (it == running.end()) return nullptr;
  boost::json::array steps;
  for (const auto& r : it->second.progress)
    steps.push_back(progress_json(r));
  return boost::json::object{{"job_id", it->second.job_id},
                             {"step", it->second.step},
                             {"progress", std::move(steps)}};
}

} // namespace

void add_sites_command(CLI::App& app, global_options& opts, command_runner& run) {
  auto cmd = app.add_subcommand("sites", "list configured sites with their health");
  cmd->add_flag("--json", opts.json, "print JSON");
  cmd->callback([&] {
    run = [&]() -> int {
      auto cfg = load_config_or_exit(opts);
      auto db = open_read_only_or_exit(cfg);
      auto sites = configured_sites(cfg, db);
      std::map<std::string, std::int64_t> retries;
      if (db) {
        auto pending = db->pending_retries();
        if (!pending) fail(exit_failed, pending.err().message);
        retries.insert(pending->begin(), pending->end());
      }
      auto running = running_by_site(db);
      auto step_of = [&](const site_row& s) {
        auto it = running.find(s.name);
        return it == running.end() ? std::string{"-"} : it->second.step;
      };
      auto next_retry = [&](const site_row& s) {
        auto it = retries.find(s.name);
        return it == retries.end() ? std::string{"-"} : format_time(it->second);
      };
      if (opts.json) {
        boost::json::array out;
        for (const auto& s : sites) {
          // Each target's last scan: what an operator checks after a backup
          // (and what a dashboard without Prometheus can read).
          auto targets = targets_of(db, s);
          boost::json::array target_list;
          for (const auto& t : targets)
            target_list.push_back({{"path", t.path},
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
                                   {"last_verified_snapshot", t.last_verified_snapshot}});
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
                         {"next_retry_at", retries.count(s.name) ? next_retry(s) : ""},
                         {"targets", std::move(target_list)},
                         {"running", running_json(running, s.name)}});
        }
        print_json(out);
        return exit_ok;
      }
      const char* row =
          "{:<20} {:<36} {:<22} {:<8} {:<20} {:<20} {:<20} {:<20} {:<7} {}\n";
      std::cout << fmt::format(fmt::runtime(row), "NAME", "UUID", "HOST", "HEALTH",
                               "LAST PREFLIGHT", "LAST BACKUP", "LAST VERIFIED",
                               "NEXT RETRY", "TARGETS", "RUNNING");
      for (const auto& s : sites)
        std::cout << fmt::format(
            fmt::runtime(row), s.name, s.uuid, fmt::format("{}:{}", s.host, s.port),
            s.health, format_time(s.last_preflight_at), format_time(s.last_backup_at),
            format_time(site_last_verified(targets_of(db, s))), next_retry(s),
            s.target_count, step_of(s));
      return exit_ok;
    };
  });
}

} // namespace satoru::cli
