#pragma once

#include "satoru/actors/interfaces.hpp"
#include "satoru/plugin_host.hpp"

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

private:
  store_actor store_;
  std::int64_t job_id_;
  std::int64_t epoch_;
};

} // namespace satoru::actors
