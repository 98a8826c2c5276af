#pragma once

#include "satoru/job.hpp"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace satoru {

/// What the last refresh of the repository metrics found, for the web
/// console's repository page (which must not run restic itself when the
/// daemon already knows).
struct repository_figures {
  std::int64_t size = 0;       ///< bytes (restic stats), as satoru_repository_size_bytes
  std::int64_t snapshots = 0;  ///< satoru's snapshots of the configured sites
  std::int64_t updated_at = 0; ///< Unix ms of the last size; 0 = not known yet
};

/// Every Prometheus metric satoru exports, in one place so that names and
/// labels stay consistent (prefix satoru_, base units, counters end in
/// _total, labels only from the config: site names, target hashes, job types
/// and statuses). Thread-safe: prometheus-cpp metrics are.
class metrics {
public:
  metrics();
  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

  /// Declares the configured sites (and their targets' hashes) so that every
  /// series exists from the start: an alert on a site that never backed up
  /// needs its timestamp series to exist (with value 0).
  void
  set_sites(const std::vector<std::pair<std::string, std::vector<std::string>>>& sites);

  void set_build_info(const std::string& version, const std::string& restic_version);

  // -- jobs and queue ---------------------------------------------------------
  void job_finished(job_type type, job_status status, double seconds);
  /// An attempt failed transiently and its job was queued again.
  void job_retried(job_type type);
  void set_queue_depth(const std::string& status, std::int64_t jobs);
  void set_running_jobs(std::int64_t jobs);

  // -- sites ------------------------------------------------------------------
  void set_site_health(const std::string& site, const std::string& health);
  void set_site_last_preflight(const std::string& site, std::int64_t unix_ms);
  void set_site_last_success(const std::string& site, std::int64_t unix_ms);
  /// When the site's pending retry runs (0 = none waits).
  void set_site_next_retry(const std::string& site, std::int64_t unix_ms);
  void set_target_last_success(const std::string& site, const std::string& target,
                               std::int64_t unix_ms);
  /// Files and folders the last pull of a target could not read (rsync exit 23).
  void set_target_unreadable(const std::string& site, const std::string& target,
                             std::int64_t files);
  /// The running step of a target (pull, snapshot): bytes done and, when
  /// known, the total; removed when the step ends (no stale series).
  void set_target_progress(const std::string& site, const std::string& target,
                           std::uint64_t bytes_done, std::uint64_t bytes_total);
  void remove_target_progress(const std::string& site, const std::string& target);
  /// 1 while the site's host key differs from the pinned one, else 0.
  void set_site_host_key_mismatch(const std::string& site, bool mismatch);
  void add_pulled(const std::string& site, std::int64_t bytes, std::int64_t files);
  void add_data_added(const std::string& site, std::int64_t bytes);
  void set_site_snapshots(const std::string& site, std::int64_t snapshots);

  // -- repository and off-site copy ---------------------------------------------
  void set_repository_size(std::int64_t bytes);
  /// The repository size and snapshots as last set; updated_at 0 when the
  /// daemon has not measured them yet.
  repository_figures last_repository_figures() const;
  /// The running off-site copy: bytes copied and, when known, the total
  /// (estimates from restic copy's pack meter); removed when it ends.
  void set_sync_progress(std::uint64_t bytes_done, std::uint64_t bytes_total);
  void remove_sync_progress();
  void add_snapshots_removed(std::int64_t snapshots);
  void set_sync_last_success(std::int64_t unix_ms);
  void set_sync_status(const std::string& status);
  void set_offsite_lag(std::int64_t snapshots);
  void set_staging_free(std::int64_t bytes);
  /// Off-site retention: snapshots it removed, the off-site size after prune.
  void add_offsite_snapshots_removed(std::int64_t snapshots);
  void set_offsite_repository_size(std::int64_t bytes);

  // -- freshness, restorability and headroom -----------------------------------
  /// The site's backup interval (site_scan_interval_hours), so that alerts
  /// can compare a target's age with it.
  void set_site_backup_interval(const std::string& site, std::int64_t seconds);
  /// How the last `restic check` of a repository ("local" or "offsite")
  /// ended (1 passed, 0 failed) and when it last passed.
  void set_check_result(const std::string& repository, bool ok, std::int64_t unix_ms);
  /// When a restore drill last proved the target restorable (0 = never).
  void set_target_last_verified(const std::string& site, const std::string& target,
                                std::int64_t unix_ms);
  /// restore_drill_max_age_days in seconds, for the alert on unverified targets.
  void set_drill_max_age(std::int64_t seconds);
  /// Free bytes (for unprivileged users) of the filesystem holding `path`.
  void set_fs_free(const std::string& path, std::int64_t bytes);
  /// The free space disk_min_free keeps on the filesystem holding `path`.
  void set_fs_min_free(const std::string& path, std::int64_t bytes);

private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::mutex mutex_; ///< guards the multi-series updates (health, sync status)
  mutable std::mutex figures_mutex_; ///< guards the three below
  std::int64_t size_ = 0, size_at_ = 0;
  std::map<std::string, std::int64_t> snapshots_by_site_;
  prometheus::Family<prometheus::Gauge>& build_info_;
  prometheus::Family<prometheus::Counter>& jobs_finished_;
  prometheus::Family<prometheus::Counter>& job_retries_;
  prometheus::Family<prometheus::Histogram>& job_duration_;
  prometheus::Family<prometheus::Gauge>& queue_depth_;
  prometheus::Family<prometheus::Gauge>& running_jobs_;
  prometheus::Family<prometheus::Gauge>& site_health_;
  prometheus::Family<prometheus::Gauge>& site_last_preflight_;
  prometheus::Family<prometheus::Gauge>& site_last_success_;
  prometheus::Family<prometheus::Gauge>& site_next_retry_;
  prometheus::Family<prometheus::Gauge>& target_last_success_;
  prometheus::Family<prometheus::Gauge>& target_unreadable_;
  prometheus::Family<prometheus::Gauge>& target_progress_bytes_;
  prometheus::Family<prometheus::Gauge>& target_progress_total_;
  prometheus::Family<prometheus::Gauge>& site_host_key_mismatch_;
  prometheus::Family<prometheus::Counter>& pulled_bytes_;
  prometheus::Family<prometheus::Counter>& pulled_files_;
  prometheus::Family<prometheus::Counter>& data_added_;
  prometheus::Family<prometheus::Gauge>& site_snapshots_;
  prometheus::Family<prometheus::Gauge>& repository_size_;
  prometheus::Family<prometheus::Counter>& snapshots_removed_;
  prometheus::Family<prometheus::Gauge>& sync_last_success_;
  prometheus::Family<prometheus::Gauge>& sync_status_;
  prometheus::Family<prometheus::Gauge>& offsite_lag_;
  prometheus::Family<prometheus::Gauge>& sync_progress_bytes_;
  prometheus::Family<prometheus::Gauge>& sync_progress_total_;
  prometheus::Family<prometheus::Gauge>& staging_free_;
  prometheus::Family<prometheus::Counter>& offsite_snapshots_removed_;
  prometheus::Family<prometheus::Gauge>& offsite_repository_size_;
  prometheus::Family<prometheus::Gauge>& site_backup_interval_;
  prometheus::Family<prometheus::Gauge>& check_ok_;
  prometheus::Family<prometheus::Gauge>& check_last_success_;
  prometheus::Family<prometheus::Gauge>& target_last_verified_;
  prometheus::Family<prometheus::Gauge>& fs_free_;
  prometheus::Family<prometheus::Gauge>& drill_max_age_;
  prometheus::Family<prometheus::Gauge>& fs_min_free_;
};

/// The text exposition of a registry (what /metrics serves).
std::string serialize_metrics(const prometheus::Registry& registry);

} // namespace satoru
