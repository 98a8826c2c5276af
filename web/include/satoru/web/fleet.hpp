#pragma once

#include "satoru/config.hpp"
#include "satoru/error.hpp"
#include "satoru/store.hpp"

#include <boost/json/array.hpp>

#include <boost/json/object.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace satoru::web {

/// One configured site as the fleet page shows it. Times are Unix ms, 0 = never.
struct fleet_site {
  std::string name;
  std::string health; ///< ok, warning, failed, unknown (health.hpp)
  std::string health_reason;
  std::int64_t last_success_at = 0;
  std::int64_t last_backup_at = 0;
  /// When the scheduler starts the next backup: the last backup job's
  /// creation + site_scan_interval_hours; 0 when backups are not scheduled.
  std::int64_t next_run_at = 0;
  std::int64_t next_retry_at = 0; ///< a failed backup's queued retry, 0 = none
  /// The last success is older than the rule of freshness.hpp allows (the
  /// SatoruTargetStale alert's).
  bool stale = false;
};

struct fleet {
  std::vector<fleet_site> sites;     ///< in config order
  std::map<std::string, int> counts; ///< health -> sites, every health listed
  std::int64_t generated_at = 0;
};

/// The configured sites with what the database knows of them, read through
/// a read-only connection in a fixed number of queries, however many sites
/// (sites the database has not seen yet are "unknown"; so is every site
/// before the database exists).
expected<fleet> read_fleet(const config& cfg, std::int64_t now_ms);
/// The same through an open connection (null: there is no database yet).
expected<fleet> read_fleet(const config& cfg, store* db, std::int64_t now_ms);

/// Sorting, filtering and searching the fleet: the query parameters of the
/// fleet page, its JSON and GET /api/v1/sites.
struct fleet_query {
  std::string sort;         ///< name, health, last_success, staleness; "" = config order
  bool descending = false;   ///< ?order=desc
  std::string health;        ///< only sites of this health; "" = all
  std::string search;        ///< ?q: a case-insensitive substring of the name
};

/// The query of `?sort=&order=&health=&q=` (other parameters are left to
/// the caller); a bad value is an errc::invalid_argument naming the
/// parameter and what it may be.
expected<fleet_query> parse_fleet_query(const std::map<std::string, std::string>& args);

/// The sites `query` selects, in its order. Health sorts worst first
/// (failed, warning, unknown, ok), last_success oldest (never) first,
/// staleness by the age of the last success (never: oldest of all), so
/// `order=desc` puts the most stale first; names (and ties) sort without
/// regard to case.
/// Ages are taken at the fleet's generated_at.
std::vector<const fleet_site*> select_sites(const fleet& f, const fleet_query& query);

/// `satoru sites --json`'s array (GET /api/v1/sites) narrowed and ordered
/// by `query` as select_sites() does the fleet `f` of the same sites.
boost::json::array select_sites_json(const boost::json::array& sites, const fleet& f,
                                     const fleet_query& query);

/// The fleet's JSON: the counts of every site by health (and of stale
/// ones), then the selected sites.
boost::json::object fleet_json(const fleet& f, const fleet_query& query);

/// The fleet page: one HTML document with its CSS, no scripts; counts that
/// link to their filter, sortable columns, a search form (every link keeps
/// the other parameters); its log-out form carries the session's CSRF token.
std::string fleet_html(const fleet& f, const fleet_query& query, const std::string& user,
                       const std::string& csrf);

} // namespace satoru::web
