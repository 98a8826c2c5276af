// The event sink's progress reaches the metrics: a target's step as the
// site's target series, the off-site copy (target "") as the sync series,
// each removed when its step ends.
#include "satoru/actors/store_event_sink.hpp"

#include <gtest/gtest.h>

using namespace satoru;

namespace {

std::string exposition(const metrics& m) {
  return serialize_metrics(*m.registry());
}

progress step_at(const char* step, std::uint64_t done, std::uint64_t total) {
  progress p;
  p.step = step;
  p.bytes_done = done;
  p.bytes_total = total;
  return p;
}

} // namespace

TEST(StoreEventSink, TheOffsiteCopysProgressIsTheSyncMetricUntilItEnds) {
  metrics m;
  // No store behind it: only the metrics are looked at here.
  actors::store_event_sink sink{actors::store_actor{}, 1, 1};
  sink.track_progress(&m, {});
  sink.progress("", step_at("copy", 5'000, 80'000));
  auto text = exposition(m);
  EXPECT_NE(text.find("satoru_sync_progress_bytes 5000"), std::string::npos) << text;
  EXPECT_NE(text.find("satoru_sync_progress_total_bytes 80000"), std::string::npos)
      << text;
  EXPECT_EQ(text.find("satoru_target_progress_bytes{"), std::string::npos) << text;
  sink.progress_ended("", step_at("copy", 80'000, 80'000));
  text = exposition(m);
  EXPECT_EQ(text.find("\nsatoru_sync_progress_bytes "), std::string::npos) << text;
  EXPECT_EQ(text.find("\nsatoru_sync_progress_total_bytes "), std::string::npos) << text;
}

TEST(StoreEventSink, ARestoresProgressIsItsTargetsMetricUntilItEnds) {
  metrics m;
  actors::store_event_sink sink{actors::store_actor{}, 1, 1};
  sink.track_progress(&m, "edge");
  sink.progress("0123456789abcdef", step_at("restore", 700, 1'000));
  auto text = exposition(m);
  EXPECT_NE(text.find("satoru_target_progress_bytes{site=\"edge\",target="
                      "\"0123456789abcdef\"} 700"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find("\nsatoru_sync_progress_bytes "), std::string::npos) << text;
  sink.progress_ended("0123456789abcdef", step_at("restore", 1'000, 1'000));
  text = exposition(m);
  EXPECT_EQ(text.find("satoru_target_progress_bytes{"), std::string::npos) << text;
}
