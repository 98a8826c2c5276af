#pragma once

#include "satoru/config.hpp"
#include "satoru/error.hpp"

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
};

struct fleet {
  std::vector<fleet_site> sites;     ///< in config order
  std::map<std::string, int> counts; ///< health -> sites, every health listed
  std::int64_t generated_at = 0;
};

/// The configured sites with what the database knows of them, read through
/// a read-only connection (sites the database has not seen yet are
/// "unknown"; so is every site before the database exists).
expected<fleet> read_fleet(const config& cfg, std::int64_t now_ms);

boost::json::object fleet_json(const fleet& f);

/// The fleet page: one HTML document with its CSS, no scripts; its log-out
/// form carries the session's CSRF token.
std::string fleet_html(const fleet& f, const std::string& user, const std::string& csrf);

} // namespace satoru::web
