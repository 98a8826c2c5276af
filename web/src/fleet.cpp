#include "satoru/web/fleet.hpp"

#include "satoru/health.hpp"
#include "satoru/store.hpp"
#include "satoru/time.hpp"
#include "satoru/web/http_text.hpp"
#include "satoru/web/page.hpp"

#include <fmt/format.h>

namespace satoru::web {

namespace {

constexpr const char* healths[] = {health_failed, health_warning, health_unknown,
                                   health_ok};

/// Fills in what the database knows; leaves the sites as configured when
/// there is no database yet.
expected<void> read_state(const config& cfg, std::vector<fleet_site>& sites,
                          std::int64_t now_ms) {
  auto db = store::open_read_only(cfg.database_path);
  if (!db) {
    if (db.err().code == errc::not_found) return {};
    return db.err();
  }
  auto rows = db->list_sites(true);
  if (!rows) return rows.err();
  auto retries = db->pending_retries();
  if (!retries) return retries.err();
  std::map<std::string, std::int64_t> retry_at(retries->begin(), retries->end());
  std::map<std::string, const site_row*> by_uuid;
  for (const auto& row : *rows)
    by_uuid[row.uuid] = &row;
  std::int64_t interval_ms = std::int64_t{cfg.site_scan_interval_hours} * 3600 * 1000;
  for (std::size_t i = 0; i < sites.size(); ++i) {
    auto& site = sites[i];
    if (auto found = by_uuid.find(cfg.sites[i].uuid); found != by_uuid.end()) {
      const site_row& row = *found->second;
      site.health = row.health;
      site.health_reason = row.health_reason;
      site.last_success_at = row.last_success_at;
      site.last_backup_at = row.last_backup_at;
      if (interval_ms > 0) {
        auto last = db->last_job_of_type(job_type::backup, row.id);
        if (!last) return last.err();
        site.next_run_at = *last ? (*last)->created_at + interval_ms : now_ms;
      }
    }
    if (auto it = retry_at.find(site.name); it != retry_at.end())
      site.next_retry_at = it->second;
  }
  return {};
}

std::string time_or_empty(std::int64_t ms) {
  return ms > 0 ? format_time(ms) : "";
}

} // namespace

expected<fleet> read_fleet(const config& cfg, std::int64_t now_ms) {
  fleet f;
  f.generated_at = now_ms;
  for (const auto& s : cfg.sites) {
    fleet_site site;
    site.name = s.name;
    site.health = health_unknown;
    if (cfg.site_scan_interval_hours > 0) site.next_run_at = now_ms;
    f.sites.push_back(std::move(site));
  }
  if (auto ok = read_state(cfg, f.sites, now_ms); !ok) return ok.err();
  for (const char* h : healths)
    f.counts[h] = 0;
  for (const auto& s : f.sites)
    ++f.counts[s.health];
  return f;
}

boost::json::object fleet_json(const fleet& f) {
  boost::json::object counts;
  for (const auto& [health, n] : f.counts)
    counts[health] = n;
  boost::json::array sites;
  for (const auto& s : f.sites)
    sites.push_back({{"name", s.name},
                     {"health", s.health},
                     {"health_reason", s.health_reason},
                     {"last_success_at", time_or_empty(s.last_success_at)},
                     {"last_backup_at", time_or_empty(s.last_backup_at)},
                     {"next_run_at", time_or_empty(s.next_run_at)},
                     {"next_retry_at", time_or_empty(s.next_retry_at)}});
  return {{"generated_at", format_time(f.generated_at)},
          {"counts", std::move(counts)},
          {"sites", std::move(sites)}};
}

std::string fleet_html(const fleet& f, const std::string& user, const std::string& csrf) {
  std::string body = "<header><h1>Satoru fleet</h1><form method=\"post\" "
                     "action=\"/logout\"><input type=\"hidden\" name=\"csrf\" value=\"" +
                     html_escape(csrf) + "\"><span>" + html_escape(user) +
                     "</span> <button type=\"submit\">Log out</button></form></header>"
                     "<ul class=\"counts\">";
  for (const char* h : healths)
    body += fmt::format("<li class=\"{0}\"><b>{1}</b> {0}</li>", h, f.counts.at(h));
  body += "</ul><table><thead><tr><th>Site</th><th>Health</th><th>Reason</th>"
          "<th>Last success</th><th>Next run or retry</th></tr></thead><tbody>";
  for (const auto& s : f.sites) {
    std::string next = s.next_retry_at > 0 ? "retry " + format_time(s.next_retry_at)
                       : s.next_run_at > 0 ? format_time(s.next_run_at)
                                           : "not scheduled";
    body += fmt::format(
        "<tr><td data-label=\"Site\"><a href=\"/sites/{}\">{}</a></td><td "
        "data-label=\"Health\"><span "
        "class=\"health {}\">{}</span></td><td data-label=\"Reason\">{}</td><td "
        "data-label=\"Last success\">{}</td><td data-label=\"Next\">{}</td></tr>",
        html_escape(s.name), html_escape(s.name), html_escape(s.health),
        html_escape(s.health), html_escape(s.health_reason),
        format_time(s.last_success_at), html_escape(next));
  }
  body += "</tbody></table><p class=\"note\">As of " + format_time(f.generated_at) +
          " &middot; <a href=\"/?format=json\">JSON</a></p>";
  return page("Satoru fleet", body);
}

} // namespace satoru::web
