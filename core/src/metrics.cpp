#include "satoru/metrics.hpp"

#include "satoru/time.hpp"

#include <map>

#include <prometheus/text_serializer.h>

#include <algorithm>

namespace satoru {

namespace {

const std::vector<std::string> all_health = {"unknown", "ok", "warning", "failed"};
const std::vector<std::string> all_sync_status = {"never", "running", "success",
                                                  "failed"};
std::vector<std::string> job_type_names() {
  std::vector<std::string> out;
  for (auto t : satoru::all_job_types())
    out.emplace_back(to_string(t));
  return out;
}
const std::vector<std::string> job_type_labels = job_type_names();

double seconds(std::int64_t unix_ms) {
  return static_cast<double>(unix_ms) / 1000.0;
}

template <class T>
prometheus::Family<T>& family(prometheus::detail::Builder<T>&& b, prometheus::Registry& r,
                              const char* name, const char* help) {
  return b.Name(name).Help(help).Register(r);
}

} // namespace

metrics::metrics()
    : registry_(std::make_shared<prometheus::Registry>())
    , build_info_(family(prometheus::BuildGauge(), *registry_, "satoru_build_info",
                         "Always 1; labels give the satoru and restic versions."))
    , jobs_finished_(family(prometheus::BuildCounter(), *registry_,
                            "satoru_jobs_finished_total",
                            "Jobs that finished, by type and final status."))
    , job_retries_(
          family(prometheus::BuildCounter(), *registry_, "satoru_job_retries_total",
                 "Attempts that failed transiently and were queued again, by type."))
    , job_duration_(family(prometheus::BuildHistogram(), *registry_,
                           "satoru_job_duration_seconds",
                           "Wall-clock duration of finished jobs, by type."))
    , queue_depth_(family(prometheus::BuildGauge(), *registry_, "satoru_queue_jobs",
                          "Jobs in the queue table by status."))
    , running_jobs_(family(prometheus::BuildGauge(), *registry_, "satoru_running_jobs",
                           "Jobs this daemon is running now."))
    , site_health_(family(prometheus::BuildGauge(), *registry_, "satoru_site_health",
                          "1 for the site's current health state, 0 for the others."))
    , site_last_preflight_(
          family(prometheus::BuildGauge(), *registry_,
                 "satoru_site_last_preflight_timestamp_seconds",
                 "Unix time of the site's last finished preflight (0 = never)."))
    , site_last_success_(
          family(prometheus::BuildGauge(), *registry_,
                 "satoru_site_last_success_timestamp_seconds",
                 "Unix time of the site's last successful backup (0 = never)."))
    , site_next_retry_(family(prometheus::BuildGauge(), *registry_,
                              "satoru_site_next_retry_timestamp_seconds",
                              "Unix time of the site's pending retry (0 = none waits)."))
    , target_last_success_(family(prometheus::BuildGauge(), *registry_,
                                  "satoru_target_last_success_timestamp_seconds",
                                  "Unix time of the target's last snapshot (0 = never)."))
    , target_unreadable_(family(prometheus::BuildGauge(), *registry_,
                                "satoru_target_unreadable_files",
                                "Files and folders the target's last pull could not read "
                                "on the edge host (not in its snapshot)."))
    , target_progress_bytes_(family(prometheus::BuildGauge(), *registry_,
                                    "satoru_target_progress_bytes",
                                    "Bytes done by the target's running step (pull or "
                                    "snapshot); absent when no step runs."))
    , target_progress_total_(family(prometheus::BuildGauge(), *registry_,
                                    "satoru_target_progress_total_bytes",
                                    "Bytes the target's running step has to do, when the "
                                    "tool says; absent when unknown or no step runs."))
    , site_host_key_mismatch_(
          family(prometheus::BuildGauge(), *registry_, "satoru_site_host_key_mismatch",
                 "1 while the site presents a host key other than the "
                 "pinned one (its jobs fail until `satoru trust`)."))
    , pulled_bytes_(family(prometheus::BuildCounter(), *registry_,
                           "satoru_pulled_bytes_total",
                           "Bytes pulled from the edge hosts over the wire."))
    , pulled_files_(family(prometheus::BuildCounter(), *registry_,
                           "satoru_pulled_files_total",
                           "Files transferred from the edge hosts."))
    , data_added_(family(prometheus::BuildCounter(), *registry_,
                         "satoru_restic_data_added_bytes_total",
                         "Bytes restic added to the local repository."))
    , site_snapshots_(family(prometheus::BuildGauge(), *registry_,
                             "satoru_site_snapshots",
                             "Snapshots of the site in the local repository."))
    , repository_size_(
          family(prometheus::BuildGauge(), *registry_, "satoru_repository_size_bytes",
                 "Size of the local restic repository (restic stats raw-data)."))
    , snapshots_removed_(family(prometheus::BuildCounter(), *registry_,
                                "satoru_retention_snapshots_removed_total",
                                "Snapshots removed by retention."))
    , sync_last_success_(
          family(prometheus::BuildGauge(), *registry_,
                 "satoru_sync_last_success_timestamp_seconds",
                 "Unix time of the last successful off-site copy (0 = never)."))
    , sync_status_(family(prometheus::BuildGauge(), *registry_, "satoru_sync_status",
                          "1 for the state of the last off-site copy, 0 for the others."))
    , offsite_lag_(family(prometheus::BuildGauge(), *registry_,
                          "satoru_offsite_lag_snapshots",
                          "Local snapshots not yet copied off-site."))
    , sync_progress_bytes_(family(prometheus::BuildGauge(), *registry_,
                                  "satoru_sync_progress_bytes",
                                  "Bytes the running off-site copy has copied (an "
                                  "estimate from restic copy's pack meter); absent when "
                                  "no copy runs."))
    , sync_progress_total_(
          family(prometheus::BuildGauge(), *registry_, "satoru_sync_progress_total_bytes",
                 "Bytes the running off-site copy has to copy, as far as "
                 "restic has announced them; absent when no copy runs."))
    , staging_free_(family(prometheus::BuildGauge(), *registry_,
                           "satoru_staging_free_bytes",
                           "Free bytes on the staging filesystem."))
    , offsite_snapshots_removed_(
          family(prometheus::BuildCounter(), *registry_,
                 "satoru_offsite_retention_snapshots_removed_total",
                 "Snapshots removed by off-site retention."))
    , offsite_repository_size_(family(prometheus::BuildGauge(), *registry_,
                                      "satoru_offsite_repository_size_bytes",
                                      "Size of the off-site repository after its last "
                                      "retention (restic stats raw-data)."))
    , site_backup_interval_(family(
          prometheus::BuildGauge(), *registry_, "satoru_site_backup_interval_seconds",
          "The site's backup interval (site_scan_interval_hours)."))
    , check_ok_(family(prometheus::BuildGauge(), *registry_, "satoru_repository_check_ok",
                       "1 when the last restic check of the repository passed, 0 when "
                       "it failed (absent until the first check)."))
    , check_last_success_(
          family(prometheus::BuildGauge(), *registry_,
                 "satoru_repository_check_last_success_timestamp_seconds",
                 "Unix time of the repository's last passed restic check."))
    , target_last_verified_(family(prometheus::BuildGauge(), *registry_,
                                   "satoru_target_last_verified_timestamp_seconds",
                                   "Unix time a restore drill last proved the target's "
                                   "latest snapshot restorable (0 = never)."))
    , fs_free_(family(prometheus::BuildGauge(), *registry_, "satoru_fs_free_bytes",
                      "Free bytes (for unprivileged users) of the filesystem holding a "
                      "configured path: staging_root or restic_repo_path."))
    , drill_max_age_(family(
          prometheus::BuildGauge(), *registry_, "satoru_restore_drill_max_age_seconds",
          "restore_drill_max_age_days: a target not verified by a restore "
          "drill for longer raises an alert."))
    , fs_min_free_(family(prometheus::BuildGauge(), *registry_,
                          "satoru_fs_min_free_bytes",
                          "Free bytes disk_min_free keeps on the filesystem holding a "
                          "configured path; work that would go below is refused.")) {
  offsite_snapshots_removed_.Add({});
  for (auto s : satoru::all_job_statuses())
    queue_depth_.Add({{"status", to_string(s)}}).Set(0);
  // Counters exist (at 0) from the start, or increase() misses their first event.
  for (const auto& t : job_type_labels)
    for (const char* s : {"success", "warning", "failed", "cancelled"})
      jobs_finished_.Add({{"type", t}, {"status", s}});
  snapshots_removed_.Add({});
  for (const auto& t : job_type_labels)
    job_retries_.Add({{"type", t}});
  running_jobs_.Add({}).Set(0);
  for (const auto& t : job_type_labels)
    job_duration_.Add({{"type", t}},
                      prometheus::Histogram::BucketBoundaries{1, 5, 15, 60, 300, 900,
                                                              1800, 3600, 7200, 21600});
  set_sync_status("never");
}

void metrics::set_sites(
    const std::vector<std::pair<std::string, std::vector<std::string>>>& sites) {
  std::lock_guard<std::mutex> guard{mutex_};
  for (const auto& [site, targets] : sites) {
    for (const auto& h : all_health)
      if (!site_health_.Has({{"site", site}, {"state", h}}))
        site_health_.Add({{"site", site}, {"state", h}}).Set(h == "unknown" ? 1 : 0);
    site_last_preflight_.Add({{"site", site}});
    site_last_success_.Add({{"site", site}});
    site_next_retry_.Add({{"site", site}});
    pulled_bytes_.Add({{"site", site}});
    pulled_files_.Add({{"site", site}});
    data_added_.Add({{"site", site}});
    site_snapshots_.Add({{"site", site}});
    site_host_key_mismatch_.Add({{"site", site}});
    for (const auto& t : targets) {
      target_last_success_.Add({{"site", site}, {"target", t}});
      target_unreadable_.Add({{"site", site}, {"target", t}});
      target_last_verified_.Add({{"site", site}, {"target", t}});
    }
  }
}

void metrics::set_target_unreadable(const std::string& site, const std::string& target,
                                    std::int64_t files) {
  target_unreadable_.Add({{"site", site}, {"target", target}})
      .Set(static_cast<double>(files));
}

void metrics::set_target_progress(const std::string& site, const std::string& target,
                                  std::uint64_t bytes_done, std::uint64_t bytes_total) {
  std::lock_guard<std::mutex> lock(mutex_);
  const std::map<std::string, std::string> labels{{"site", site}, {"target", target}};
  target_progress_bytes_.Add(labels).Set(static_cast<double>(bytes_done));
  if (bytes_total > 0)
    target_progress_total_.Add(labels).Set(static_cast<double>(bytes_total));
}

void metrics::remove_target_progress(const std::string& site, const std::string& target) {
  std::lock_guard<std::mutex> lock(mutex_);
  const std::map<std::string, std::string> labels{{"site", site}, {"target", target}};
  for (auto* family : {&target_progress_bytes_, &target_progress_total_})
    if (family->Has(labels)) family->Remove(&family->Add(labels));
}

void metrics::set_site_host_key_mismatch(const std::string& site, bool mismatch) {
  site_host_key_mismatch_.Add({{"site", site}}).Set(mismatch ? 1 : 0);
}

void metrics::set_build_info(const std::string& version,
                             const std::string& restic_version) {
  build_info_.Add({{"version", version}, {"restic_version", restic_version}}).Set(1);
}

void metrics::job_finished(job_type type, job_status status, double secs) {
  jobs_finished_.Add({{"type", to_string(type)}, {"status", to_string(status)}})
      .Increment();
  job_duration_
      .Add({{"type", to_string(type)}},
           prometheus::Histogram::BucketBoundaries{1, 5, 15, 60, 300, 900, 1800, 3600,
                                                   7200, 21600})
      .Observe(secs);
}

void metrics::job_retried(job_type type) {
  job_retries_.Add({{"type", to_string(type)}}).Increment();
}

void metrics::set_site_next_retry(const std::string& site, std::int64_t unix_ms) {
  site_next_retry_.Add({{"site", site}}).Set(seconds(unix_ms));
}

void metrics::set_queue_depth(const std::string& status, std::int64_t jobs) {
  queue_depth_.Add({{"status", status}}).Set(static_cast<double>(jobs));
}

void metrics::set_running_jobs(std::int64_t jobs) {
  running_jobs_.Add({}).Set(static_cast<double>(jobs));
}

void metrics::set_site_health(const std::string& site, const std::string& health) {
  std::lock_guard<std::mutex> guard{mutex_};
  for (const auto& h : all_health)
    site_health_.Add({{"site", site}, {"state", h}}).Set(h == health ? 1 : 0);
}

void metrics::set_site_last_preflight(const std::string& site, std::int64_t unix_ms) {
  site_last_preflight_.Add({{"site", site}}).Set(seconds(unix_ms));
}

void metrics::set_site_last_success(const std::string& site, std::int64_t unix_ms) {
  site_last_success_.Add({{"site", site}}).Set(seconds(unix_ms));
}

void metrics::set_target_last_success(const std::string& site, const std::string& target,
                                      std::int64_t unix_ms) {
  target_last_success_.Add({{"site", site}, {"target", target}}).Set(seconds(unix_ms));
}

void metrics::add_pulled(const std::string& site, std::int64_t bytes,
                         std::int64_t files) {
  pulled_bytes_.Add({{"site", site}})
      .Increment(static_cast<double>(std::max<std::int64_t>(bytes, 0)));
  pulled_files_.Add({{"site", site}})
      .Increment(static_cast<double>(std::max<std::int64_t>(files, 0)));
}

void metrics::add_data_added(const std::string& site, std::int64_t bytes) {
  data_added_.Add({{"site", site}})
      .Increment(static_cast<double>(std::max<std::int64_t>(bytes, 0)));
}

void metrics::set_site_snapshots(const std::string& site, std::int64_t snapshots) {
  site_snapshots_.Add({{"site", site}}).Set(static_cast<double>(snapshots));
  std::lock_guard lock(figures_mutex_);
  snapshots_by_site_[site] = snapshots;
}

void metrics::set_repository_size(std::int64_t bytes) {
  repository_size_.Add({}).Set(static_cast<double>(bytes));
  std::lock_guard lock(figures_mutex_);
  size_ = bytes;
  size_at_ = now_ms();
}

repository_figures metrics::last_repository_figures() const {
  std::lock_guard lock(figures_mutex_);
  repository_figures out{size_, 0, size_at_};
  for (const auto& [site, n] : snapshots_by_site_)
    out.snapshots += n;
  return out;
}

void metrics::add_snapshots_removed(std::int64_t snapshots) {
  snapshots_removed_.Add({}).Increment(
      static_cast<double>(std::max<std::int64_t>(snapshots, 0)));
}

void metrics::set_sync_last_success(std::int64_t unix_ms) {
  sync_last_success_.Add({}).Set(seconds(unix_ms));
}

void metrics::set_sync_status(const std::string& status) {
  std::lock_guard<std::mutex> guard{mutex_};
  for (const auto& s : all_sync_status)
    sync_status_.Add({{"status", s}}).Set(s == status ? 1 : 0);
}

void metrics::set_offsite_lag(std::int64_t snapshots) {
  offsite_lag_.Add({}).Set(static_cast<double>(snapshots));
}

void metrics::set_sync_progress(std::uint64_t bytes_done, std::uint64_t bytes_total) {
  std::lock_guard<std::mutex> lock(mutex_);
  sync_progress_bytes_.Add({}).Set(static_cast<double>(bytes_done));
  if (bytes_total > 0) sync_progress_total_.Add({}).Set(static_cast<double>(bytes_total));
}

void metrics::remove_sync_progress() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto* family : {&sync_progress_bytes_, &sync_progress_total_})
    if (family->Has({})) family->Remove(&family->Add({}));
}

void metrics::set_staging_free(std::int64_t bytes) {
  staging_free_.Add({}).Set(static_cast<double>(bytes));
}

std::string serialize_metrics(const prometheus::Registry& registry) {
  return prometheus::TextSerializer{}.Serialize(registry.Collect());
}

} // namespace satoru

namespace satoru {

void metrics::add_offsite_snapshots_removed(std::int64_t snapshots) {
  offsite_snapshots_removed_.Add({}).Increment(
      static_cast<double>(std::max<std::int64_t>(snapshots, 0)));
}

void metrics::set_offsite_repository_size(std::int64_t bytes) {
  offsite_repository_size_.Add({}).Set(static_cast<double>(bytes));
}

void metrics::set_site_backup_interval(const std::string& site, std::int64_t secs) {
  site_backup_interval_.Add({{"site", site}}).Set(static_cast<double>(secs));
}

void metrics::set_check_result(const std::string& repository, bool ok,
                               std::int64_t unix_ms) {
  check_ok_.Add({{"repository", repository}}).Set(ok ? 1 : 0);
  if (ok) check_last_success_.Add({{"repository", repository}}).Set(seconds(unix_ms));
}

void metrics::set_target_last_verified(const std::string& site, const std::string& target,
                                       std::int64_t unix_ms) {
  target_last_verified_.Add({{"site", site}, {"target", target}}).Set(seconds(unix_ms));
}

void metrics::set_drill_max_age(std::int64_t secs) {
  drill_max_age_.Add({}).Set(static_cast<double>(secs));
}

void metrics::set_fs_min_free(const std::string& path, std::int64_t bytes) {
  fs_min_free_.Add({{"path", path}}).Set(static_cast<double>(bytes));
}

void metrics::set_fs_free(const std::string& path, std::int64_t bytes) {
  fs_free_.Add({{"path", path}}).Set(static_cast<double>(bytes));
}

} // namespace satoru
