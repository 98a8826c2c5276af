#include "satoru/actors/store_event_sink.hpp"

#include "satoru/time.hpp"

#include <boost/json/serialize.hpp>
#include <caf/send.hpp>
#include <spdlog/spdlog.h>

namespace satoru::actors {

namespace {
/// The off-site copy's step (restic_client::copy_from), the one piece of
/// repository work with a metric of its own.
constexpr const char* sync_copy_step = "copy";
} // namespace

void store_event_sink::emit(const std::string& level, const std::string& step,
                            const std::string& target, const std::string& message,
                            const boost::json::object& data) {
  spdlog::debug("job {} {} {} {} {}", job_id_, level, step, target, message);
  caf::anon_send(store_, event_atom::value,
                 job_event{job_id_, epoch_, level, step, target, message,
                           data.empty() ? std::string{} : boost::json::serialize(data)});
}

void store_event_sink::track_progress(metrics* m, std::string site) {
  metrics_ = m;
  site_ = std::move(site);
}

void store_event_sink::progress(const std::string& target, const satoru::progress& now) {
  const std::int64_t t = now_ms();
  bool live = false, event = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto [it, first] = marks_.try_emplace(target);
    if (first) it->second.event_ms = t; // a step shorter than a minute writes none
    live = t - it->second.live_ms >= 1000;
    event = t - it->second.event_ms >= 60'000;
    if (live) it->second.live_ms = t;
    if (event) it->second.event_ms = t;
  }
  if (live) {
    if (metrics_ && !target.empty())
      metrics_->set_target_progress(site_, target, now.bytes_done, now.bytes_total);
    else if (metrics_ && now.step == sync_copy_step)
      metrics_->set_sync_progress(now.bytes_done, now.bytes_total);
    caf::anon_send(store_, progress_atom::value,
                   job_progress{job_id_, epoch_, target, now, false});
  }
  if (event)
    emit("info", now.step + ".progress", target, now.describe(),
         {{"bytes_done", now.bytes_done},
          {"bytes_total", now.bytes_total},
          {"files_done", now.files_done},
          {"files_total", now.files_total},
          {"fraction", now.fraction},
          {"rate_bytes_per_s", now.rate_bytes_per_s},
          {"eta_seconds", now.eta_seconds}});
}

void store_event_sink::progress_ended(const std::string& target,
                                      const satoru::progress& last) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (marks_.erase(target) == 0) return; // it never showed progress
  }
  if (metrics_ && !target.empty())
    metrics_->remove_target_progress(site_, target);
  else if (metrics_ && last.step == sync_copy_step)
    metrics_->remove_sync_progress();
  // The step's last values stay until the job's attempt ends, so that a
  // follower polling the table sees where it ended (100% of a done pull).
  caf::anon_send(store_, progress_atom::value,
                 job_progress{job_id_, epoch_, target, last, true});
}

} // namespace satoru::actors
