#pragma once

#include "satoru/config.hpp"

#include <cstdint>

namespace satoru {

/// When a site's backups count as stale: the one rule behind the fleet
/// page's "stale" and the SatoruTargetStale alert (dashboards/alerts.yml
/// compares a target's age with 2 × satoru_site_backup_interval_seconds,
/// which the daemon exports from site_backup_interval_ms()).
inline constexpr std::int64_t stale_after_intervals = 2;

/// A site's backup interval (site_scan_interval_hours); 0 = backups are
/// never scheduled, so nothing is ever stale.
inline std::int64_t site_backup_interval_ms(const config& cfg) {
  return std::int64_t{cfg.site_scan_interval_hours} * 3600 * 1000;
}

/// Whether a last success at `last_success_ms` (0 = never) is older than
/// stale_after_intervals backup intervals at `now_ms`. Never is not "stale"
/// here: it has no age (the fleet shows "never"; the alert waits 48 h).
inline bool is_stale(std::int64_t last_success_ms, std::int64_t interval_ms,
                     std::int64_t now_ms) {
  return interval_ms > 0 && last_success_ms > 0 &&
         now_ms - last_success_ms > stale_after_intervals * interval_ms;
}

} // namespace satoru
