// The repository metrics refresh is rate-limited: a fleet's stream of job
// ends must not keep three restic processes running back to back.
#include "satoru/actors/sync_actor.hpp"

#include <gtest/gtest.h>

using satoru::actors::refresh_gate;
using namespace std::chrono_literals;

namespace {

const auto t0 = refresh_gate::clock::time_point{} + 1000h;

} // namespace

TEST(RefreshGate, TheFirstRefreshStartsAtOnce) {
  refresh_gate gate{60s};
  EXPECT_EQ(gate.want(t0).what, refresh_gate::action::start);
}

TEST(RefreshGate, JobEndsWithinTheIntervalMakeOneRefreshWhenItIsUp) {
  refresh_gate gate{60s};
  ASSERT_EQ(gate.want(t0).what, refresh_gate::action::start);
  EXPECT_EQ(gate.want(t0 + 1s).what, refresh_gate::action::none) << "one runs already";
  // It ends; the request that came meanwhile waits for the interval.
  auto after = gate.finished(t0 + 3s);
  ASSERT_EQ(after.what, refresh_gate::action::wait);
  EXPECT_EQ(after.wait, 57s);
  // Many more job ends: all covered by the one scheduled refresh.
  for (int i = 0; i < 100; ++i)
    EXPECT_EQ(gate.want(t0 + 4s + i * 100ms).what, refresh_gate::action::none);
  EXPECT_EQ(gate.timer_fired(t0 + 60s).what, refresh_gate::action::start);
  EXPECT_EQ(gate.finished(t0 + 62s).what, refresh_gate::action::none);
}

TEST(RefreshGate, AQuietDaemonRefreshesAtOnceAfterTheInterval) {
  refresh_gate gate{60s};
  ASSERT_EQ(gate.want(t0).what, refresh_gate::action::start);
  ASSERT_EQ(gate.finished(t0 + 2s).what, refresh_gate::action::none);
  EXPECT_EQ(gate.want(t0 + 61s).what, refresh_gate::action::start);
}

TEST(RefreshGate, AnUrgentRequestSkipsTheWaitButNeverRunsTwoAtOnce) {
  refresh_gate gate{60s};
  ASSERT_EQ(gate.want(t0).what, refresh_gate::action::start);
  ASSERT_EQ(gate.finished(t0 + 2s).what, refresh_gate::action::none);
  ASSERT_EQ(gate.want(t0 + 5s).what, refresh_gate::action::wait);
  // The end of an off-site copy: at once.
  ASSERT_EQ(gate.want(t0 + 6s, true).what, refresh_gate::action::start);
  // Its start covered the waiting request: the timer finds nothing to do.
  EXPECT_EQ(gate.timer_fired(t0 + 60s).what, refresh_gate::action::none);
  // An urgent request while one runs starts right after it.
  EXPECT_EQ(gate.want(t0 + 7s, true).what, refresh_gate::action::none);
  EXPECT_EQ(gate.finished(t0 + 8s).what, refresh_gate::action::start);
}
