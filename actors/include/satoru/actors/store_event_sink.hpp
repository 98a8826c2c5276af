#pragma once

#include "satoru/actors/interfaces.hpp"
#include "satoru/metrics.hpp"
#include "satoru/plugin_host.hpp"

#include <map>
#include <mutex>

namespace satoru::actors {

/// Turns events from core code (preflight, plugins) into job_events rows by
/// sending them to the store actor; safe to call from any thread. The
/// job's epoch fences them: a worker whose lease lapsed writes nothing.
class store_event_sink final : public event_sink {
public:
  store_event_sink(store_actor store, std::int64_t job_id, std::int64_t epoch)
      : store_(std::move(store))
      , job_id_(job_id)
      , epoch_(epoch) {}
  void emit(const std::string& level, const std::string& step, const std::string& target,
            const std::string& message, const boost::json::object& data) override;

  /// Progress of a running step goes to the live table job_progress, read
  /// by the CLI, and (after track_progress) the metrics: a target's step to
  /// the site's target series, the off-site copy (target "") to the sync
  /// series; both at most once a second; and to job_events at most once a minute per
  /// target (history stays small; the first after the step ran a minute).
  void track_progress(metrics* m, std::string site);
  void progress(const std::string& target, const satoru::progress& now) override;
  void progress_ended(const std::string& target, const satoru::progress& last) override;

private:
  struct progress_marks {
    std::int64_t live_ms = 0;
    std::int64_t event_ms = 0;
  };
  store_actor store_;
  std::int64_t job_id_;
  std::int64_t epoch_;
  metrics* metrics_ = nullptr;
  std::string site_;
  std::mutex mutex_;
  std::map<std::string, progress_marks> marks_; ///< by target hash
};

} // namespace satoru::actors
