#include "satoru/progress_display.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <sstream>

using namespace satoru;

namespace {

progress_row row(const std::string& target, std::uint64_t done, std::int64_t updated_at,
                 std::int64_t ended_at = 0) {
  progress_row r;
  r.job_id = 7;
  r.target = target;
  r.now.step = "pull";
  r.now.bytes_done = done;
  r.now.bytes_total = 4000;
  r.now.fraction = done / 4000.0;
  r.updated_at = updated_at;
  r.ended_at = ended_at;
  return r;
}

std::string paths(const std::string& hash) {
  return hash == "h1" ? "/srv/db" : hash;
}

} // namespace

TEST(ProgressDisplay, AStatusLineNamesTheTargetStepBytesRateAndEta) {
  progress p;
  p.step = "pull";
  p.bytes_done = 1288490189; // 1.2 GiB
  p.bytes_total = 4294967296;
  p.fraction = 0.3;
  p.rate_bytes_per_s = 31 * 1048576.0;
  p.eta_seconds = 92;
  EXPECT_EQ(progress_line("/srv/db", p),
            "[/srv/db] pull 1.2 GiB / 4.0 GiB (30%)  31.0 MiB/s  ETA 1m32s");
  progress starting;
  starting.step = "snapshot";
  EXPECT_EQ(progress_line("/srv/db", starting), "[/srv/db] snapshot");
}

TEST(ProgressDisplay, AJobsPercentIsOfTheBytesItsRunningStepsMove) {
  std::vector<progress_row> rows{row("h1", 1000, 1), row("h2", 3000, 1),
                                 row("h3", 4000, 1, 2)}; // h3 ended: not counted
  EXPECT_DOUBLE_EQ(*running_fraction(rows, 7), 0.5);
  EXPECT_EQ(running_steps(rows, 7), "pull 25%, pull 75%");
  EXPECT_FALSE(running_fraction(rows, 8));
  rows[1].now.bytes_total = 0; // a total unknown: the mean of the fractions
  EXPECT_DOUBLE_EQ(*running_fraction(rows, 7), 0.5);
}

TEST(ProgressDisplay, OnATerminalTheStatusLineIsRedrawnInPlaceBelowTheEvents) {
  std::ostringstream out;
  {
    progress_display d{out, progress_display::mode::terminal, paths, 200};
    d.line("event one");
    d.update({row("h1", 1000, 1)}, 0);
    d.update({row("h1", 2000, 2)}, 100);
    d.line("event two");
    d.update({row("h1", 4000, 3, 3)}, 200); // ended: the line goes
  }
  const std::string first = "[/srv/db] pull 1000 B / 3.9 KiB (25%)";
  const std::string second = "[/srv/db] pull 2.0 KiB / 3.9 KiB (50%)";
  EXPECT_EQ(out.str(), "event one\n" + first + "\x1b[K" +                   // drawn
                           "\r\x1b[J" + second + "\x1b[K" +                 // redrawn
                           "\r\x1b[J" + "event two\n" + second + "\x1b[K" + // event above
                           "\r\x1b[J");                                     // erased
}

TEST(ProgressDisplay, SeveralRunningTargetsAreSeveralLinesRedrawnTogether) {
  std::ostringstream out;
  progress_display d{out, progress_display::mode::terminal, paths, 20};
  d.update({row("h1", 1000, 1), row("h2", 1000, 1)}, 0);
  d.update({row("h1", 2000, 2), row("h2", 1000, 1)}, 100);
  d.clear();
  // Cut to the width (19 columns) so that no line wraps; back up one line
  // to the first before erasing.
  EXPECT_EQ(out.str(), "[/srv/db] pull 1000\x1b[K\n[h2] pull 1000 B / \x1b[K"
                       "\r\x1b[1A\x1b[J"
                       "[/srv/db] pull 2.0 \x1b[K\n[h2] pull 1000 B / \x1b[K"
                       "\r\x1b[1A\x1b[J");
}

TEST(ProgressDisplay, APlainLineIsPrintedAtMostEveryTenSecondsAndOnlyWhenItMoved) {
  std::ostringstream out;
  progress_display d{out, progress_display::mode::plain, paths};
  d.update({row("h1", 1000, 1)}, 0);         // first: printed
  d.update({row("h1", 1500, 2)}, 5'000);     // too soon
  d.update({row("h1", 2000, 3)}, 9'999);     // too soon
  d.update({row("h1", 2000, 3)}, 12'000);    // moved since the last line: printed
  d.update({row("h1", 2000, 3)}, 30'000);    // did not move since
  d.update({row("h1", 4000, 5, 5)}, 31'000); // ended: the event says it
  EXPECT_EQ(out.str(), "[/srv/db] pull 1000 B / 3.9 KiB (25%)\n"
                       "[/srv/db] pull 2.0 KiB / 3.9 KiB (50%)\n");
  EXPECT_EQ(out.str().find('\x1b'), std::string::npos) << "no escapes in a log";
}

TEST(ProgressDisplay, JsonPrintsEveryChangeAndTheEndOnce) {
  std::ostringstream out;
  progress_display d{out, progress_display::mode::json};
  d.update({row("h1", 1000, 1)}, 0);
  d.update({row("h1", 1000, 1)}, 150); // unchanged
  d.line(R"({"level":"info"})");
  d.update({row("h1", 4000, 2, 2)}, 300);
  d.update({row("h1", 4000, 2, 2)}, 450); // already printed
  std::istringstream lines{out.str()};
  std::vector<boost::json::object> got;
  for (std::string l; std::getline(lines, l);)
    got.push_back(boost::json::parse(l).as_object());
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].at("type").as_string(), "progress");
  EXPECT_EQ(got[0].at("target").as_string(), "h1");
  EXPECT_EQ(got[0].at("step").as_string(), "pull");
  EXPECT_EQ(got[0].at("bytes_done").to_number<std::int64_t>(), 1000);
  EXPECT_DOUBLE_EQ(got[0].at("fraction").as_double(), 0.25);
  EXPECT_FALSE(got[0].at("ended").as_bool());
  EXPECT_EQ(got[1].at("level").as_string(), "info");
  EXPECT_DOUBLE_EQ(got[2].at("fraction").as_double(), 1.0);
  EXPECT_TRUE(got[2].at("ended").as_bool());
}
