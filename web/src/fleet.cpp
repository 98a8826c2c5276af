#include "satoru/web/fleet.hpp"

#include "satoru/freshness.hpp"
#include "satoru/health.hpp"
#include "satoru/store.hpp"
#include "satoru/time.hpp"
#include "satoru/web/http_text.hpp"
#include "satoru/web/page.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <limits>
#include <unordered_map>

namespace satoru::web {

namespace {

/// Worst first: the order of the counts and of ?sort=health.
constexpr const char* healths[] = {health_failed, health_warning, health_unknown,
                                   health_ok};
constexpr const char* sorts[] = {"", "name", "health", "last_success", "staleness"};
constexpr std::size_t max_search = 200;

int health_rank(const std::string& health) {
  for (int i = 0; i < 4; ++i)
    if (health == healths[i]) return i;
  return 4;
}

/// Fills in what the database knows, in four queries whatever the number
/// of sites; leaves the sites as configured when there is no database yet.
expected<void> read_state(const config& cfg, store* db, std::vector<fleet_site>& sites,
                          std::int64_t now_ms) {
  if (db == nullptr) return {};
  auto rows = db->list_sites(true);
  if (!rows) return rows.err();
  auto retries = db->pending_retries();
  if (!retries) return retries.err();
  std::int64_t interval_ms = site_backup_interval_ms(cfg);
  std::unordered_map<std::int64_t, std::int64_t> last_backup_job;
  if (interval_ms > 0) {
    auto last = db->last_job_created_by_site(job_type::backup);
    if (!last) return last.err();
    last_backup_job.insert(last->begin(), last->end());
  }
  std::unordered_map<std::string, std::int64_t> retry_at(retries->begin(),
                                                         retries->end());
  std::unordered_map<std::string, const site_row*> by_uuid;
  for (const auto& row : *rows)
    by_uuid[row.uuid] = &row;
  for (std::size_t i = 0; i < sites.size(); ++i) {
    auto& site = sites[i];
    if (auto found = by_uuid.find(cfg.sites[i].uuid); found != by_uuid.end()) {
      const site_row& row = *found->second;
      site.health = row.health;
      site.health_reason = row.health_reason;
      site.last_success_at = row.last_success_at;
      site.last_backup_at = row.last_backup_at;
      site.stale = is_stale(row.last_success_at, interval_ms, now_ms);
      if (auto last = last_backup_job.find(row.id); last != last_backup_job.end())
        site.next_run_at = last->second + interval_ms;
    }
    if (auto it = retry_at.find(site.name); it != retry_at.end())
      site.next_retry_at = it->second;
  }
  return {};
}

std::string time_or_empty(std::int64_t ms) {
  return ms > 0 ? format_time(ms) : "";
}

std::string lower(std::string_view text) {
  std::string out(text);
  for (auto& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

/// The age of a site's last success; never is older than anything.
std::int64_t success_age(const fleet_site& s, std::int64_t now_ms) {
  return s.last_success_at > 0 ? now_ms - s.last_success_at
                               : std::numeric_limits<std::int64_t>::max();
}

/// The fleet page's address for `q` (the defaults left out), HTML-escaped.
std::string href(const fleet_query& q) {
  std::string out;
  auto add = [&](const char* name, const std::string& value) {
    out += (out.empty() ? "?" : "&") + std::string(name) + "=" + url_encode(value);
  };
  if (!q.sort.empty()) add("sort", q.sort);
  if (q.descending) add("order", "desc");
  if (!q.health.empty()) add("health", q.health);
  if (!q.search.empty()) add("q", q.search);
  return html_escape("/" + out);
}

/// A column heading that sorts by `sort`; a second click reverses the order.
std::string sort_heading(const fleet_query& q, const char* sort, const char* label) {
  fleet_query next = q;
  next.sort = sort;
  next.descending = q.sort == sort && !q.descending;
  std::string mark = q.sort != sort ? "" : q.descending ? " &darr;" : " &uarr;";
  return fmt::format("<th><a href=\"{}\">{}</a>{}</th>", href(next), label, mark);
}

std::string age_text(const fleet_site& s, std::int64_t now_ms) {
  if (s.last_success_at <= 0) return "never";
  return format_time(s.last_success_at) + " (" +
         format_duration(std::max<std::int64_t>(0, now_ms - s.last_success_at)) +
         " ago)" + (s.stale ? " <span class=\"stale\">stale</span>" : "");
}

} // namespace

expected<fleet> read_fleet(const config& cfg, std::int64_t now_ms) {
  auto db = store::open_read_only(cfg.database_path);
  if (!db && db.err().code != errc::not_found) return db.err();
  return read_fleet(cfg, db ? &*db : nullptr, now_ms);
}

expected<fleet> read_fleet(const config& cfg, store* db, std::int64_t now_ms) {
  fleet f;
  f.generated_at = now_ms;
  for (const auto& s : cfg.sites) {
    fleet_site site;
    site.name = s.name;
    site.health = health_unknown;
    if (cfg.site_scan_interval_hours > 0) site.next_run_at = now_ms;
    f.sites.push_back(std::move(site));
  }
  if (auto ok = read_state(cfg, db, f.sites, now_ms); !ok) return ok.err();
  for (const char* h : healths)
    f.counts[h] = 0;
  for (const auto& s : f.sites)
    ++f.counts[s.health];
  return f;
}

expected<fleet_query> parse_fleet_query(const std::map<std::string, std::string>& args) {
  fleet_query q;
  if (auto it = args.find("sort"); it != args.end()) {
    if (std::find(std::begin(sorts), std::end(sorts), it->second) == std::end(sorts))
      return error{errc::invalid_argument,
                   "?sort: must be name, health, last_success or staleness"};
    q.sort = it->second;
  }
  if (auto it = args.find("order"); it != args.end()) {
    if (it->second != "asc" && it->second != "desc")
      return error{errc::invalid_argument, "?order: must be asc or desc"};
    q.descending = it->second == "desc";
  }
  if (auto it = args.find("health"); it != args.end() && !it->second.empty()) {
    if (health_rank(it->second) > 3)
      return error{errc::invalid_argument,
                   "?health: must be failed, warning, unknown or ok"};
    q.health = it->second;
  }
  if (auto it = args.find("q"); it != args.end()) {
    if (it->second.size() > max_search)
      return error{errc::invalid_argument,
                   fmt::format("?q: at most {} characters", max_search)};
    q.search = it->second;
  }
  return q;
}

std::vector<const fleet_site*> select_sites(const fleet& f, const fleet_query& query) {
  std::vector<const fleet_site*> out;
  std::string needle = lower(query.search);
  for (const auto& s : f.sites) {
    if (!query.health.empty() && s.health != query.health) continue;
    if (!needle.empty() && lower(s.name).find(needle) == std::string::npos) continue;
    out.push_back(&s);
  }
  auto now = f.generated_at;
  auto key = [&](const fleet_site* s) -> std::int64_t {
    if (query.sort == "health") return health_rank(s->health);
    if (query.sort == "last_success") return s->last_success_at;
    if (query.sort == "staleness") return success_age(*s, now);
    return 0;
  };
  std::stable_sort(out.begin(), out.end(), [&](const fleet_site* a, const fleet_site* b) {
    if (query.sort.empty()) return query.descending ? a > b : a < b; // config order
    auto ka = key(a), kb = key(b);
    if (ka != kb) return query.descending ? ka > kb : ka < kb;
    // Names sort as people read them: case aside, then as written.
    auto na = std::make_pair(lower(a->name), a->name);
    auto nb = std::make_pair(lower(b->name), b->name);
    return query.descending && query.sort == "name" ? na > nb : na < nb;
  });
  return out;
}

boost::json::array select_sites_json(const boost::json::array& sites, const fleet& f,
                                     const fleet_query& query) {
  std::unordered_map<std::string_view, const boost::json::value*> by_name;
  for (const auto& s : sites)
    by_name[s.as_object().at("name").as_string()] = &s;
  boost::json::array out;
  for (const auto* s : select_sites(f, query))
    if (auto it = by_name.find(s->name); it != by_name.end()) out.push_back(*it->second);
  return out;
}

boost::json::object fleet_json(const fleet& f, const fleet_query& query) {
  boost::json::object counts;
  for (const auto& [health, n] : f.counts)
    counts[health] = n;
  int stale = 0;
  for (const auto& s : f.sites)
    stale += s.stale ? 1 : 0;
  boost::json::array sites;
  for (const auto* s : select_sites(f, query)) {
    boost::json::value age = nullptr;
    if (s->last_success_at > 0)
      age = std::max<std::int64_t>(0, f.generated_at - s->last_success_at) / 1000;
    sites.push_back({{"name", s->name},
                     {"health", s->health},
                     {"health_reason", s->health_reason},
                     {"last_success_at", time_or_empty(s->last_success_at)},
                     {"last_success_age_seconds", age},
                     {"stale", s->stale},
                     {"last_backup_at", time_or_empty(s->last_backup_at)},
                     {"next_run_at", time_or_empty(s->next_run_at)},
                     {"next_retry_at", time_or_empty(s->next_retry_at)}});
  }
  return {{"generated_at", format_time(f.generated_at)},
          {"counts", std::move(counts)},
          {"stale", stale},
          {"total", f.sites.size()},
          {"query",
           {{"sort", query.sort},
            {"order", query.descending ? "desc" : "asc"},
            {"health", query.health},
            {"q", query.search}}},
          {"sites", std::move(sites)}};
}

std::string fleet_html(const fleet& f, const fleet_query& query, const std::string& user,
                       const std::string& csrf) {
  std::string body = "<header><h1>Satoru fleet</h1><nav><a href=\"/repository\">"
                     "Repository &amp; off-site sync</a></nav><form method=\"post\" "
                     "action=\"/logout\"><input type=\"hidden\" name=\"csrf\" value=\"" +
                     html_escape(csrf) + "\"><span>" + html_escape(user) +
                     "</span> <button type=\"submit\">Log out</button></form></header>"
                     "<ul class=\"counts\">";
  fleet_query all = query;
  all.health.clear();
  body += fmt::format("<li class=\"all{}\"><a href=\"{}\"><b>{}</b> all</a></li>",
                      query.health.empty() ? " selected" : "", href(all), f.sites.size());
  for (const char* h : healths) {
    fleet_query only = query;
    only.health = h;
    body += fmt::format("<li class=\"{0}{1}\"><a href=\"{2}\"><b>{3}</b> {0}</a></li>", h,
                        query.health == h ? " selected" : "", href(only), f.counts.at(h));
  }
  body += "</ul><form class=\"search\" method=\"get\" action=\"/\">";
  if (!query.sort.empty())
    body +=
        "<input type=\"hidden\" name=\"sort\" value=\"" + html_escape(query.sort) + "\">";
  if (query.descending) body += "<input type=\"hidden\" name=\"order\" value=\"desc\">";
  if (!query.health.empty())
    body += "<input type=\"hidden\" name=\"health\" value=\"" +
            html_escape(query.health) + "\">";
  body +=
      "<input type=\"search\" name=\"q\" placeholder=\"site name\" value=\"" +
      html_escape(query.search) +
      "\" aria-label=\"Search sites\"> <button type=\"submit\">Search</button></form>";
  auto selected = select_sites(f, query);
  body += "<table><thead><tr>" + sort_heading(query, "name", "Site") +
          sort_heading(query, "health", "Health") + "<th>Reason</th>" +
          sort_heading(query, "last_success", "Last success") +
          sort_heading(query, "staleness", "Staleness") +
          "<th>Next run or retry</th></tr></thead><tbody>";
  for (const auto* s : selected) {
    std::string next = s->next_retry_at > 0 ? "retry " + format_time(s->next_retry_at)
                       : s->next_run_at > 0 ? format_time(s->next_run_at)
                                            : "not scheduled";
    std::string staleness = s->last_success_at <= 0 ? "never"
                            : s->stale              ? "stale"
                                                    : "fresh";
    body += fmt::format(
        "<tr><td data-label=\"Site\"><a href=\"/sites/{}\">{}</a></td><td "
        "data-label=\"Health\"><span "
        "class=\"health {}\">{}</span></td><td data-label=\"Reason\">{}</td><td "
        "data-label=\"Last success\">{}</td><td data-label=\"Staleness\" "
        "class=\"{}\">{}</td><td data-label=\"Next\">{}</td></tr>",
        html_escape(url_encode(s->name)), html_escape(s->name), html_escape(s->health),
        html_escape(s->health), html_escape(s->health_reason),
        age_text(*s, f.generated_at), staleness, staleness, html_escape(next));
  }
  body += fmt::format("</tbody></table><p class=\"note\">{} of {} sites &middot; As of "
                      "{} &middot; <a href=\"{}{}format=json\">JSON</a></p>",
                      selected.size(), f.sites.size(), format_time(f.generated_at),
                      href(query), href(query) == "/" ? "?" : "&amp;");
  return page("Satoru fleet", body);
}

} // namespace satoru::web
