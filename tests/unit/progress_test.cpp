#include "satoru/progress.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <optional>
#include <sstream>
#include <vector>

using namespace satoru;

namespace {

/// A captured output file of tests/unit/data, split into lines the way the
/// process runner hands them over: at '\n' and at '\r'.
std::vector<std::string> captured_lines(const std::string& name) {
  std::ifstream in(std::string(SATORU_SOURCE_DIR) + "/tests/unit/data/" + name,
                   std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  std::vector<std::string> lines;
  std::string line;
  for (char c : text.str()) {
    if (c == '\n' || c == '\r') {
      if (!line.empty()) lines.push_back(line);
      line.clear();
    } else {
      line.push_back(c);
    }
  }
  if (!line.empty()) lines.push_back(line);
  EXPECT_FALSE(lines.empty()) << name;
  return lines;
}

std::vector<progress_sample> samples_of(progress_format format,
                                        const std::vector<std::string>& lines) {
  std::vector<progress_sample> out;
  for (const auto& line : lines)
    if (auto s = parse_progress(format, line)) out.push_back(*s);
  return out;
}

} // namespace

TEST(progress, rsync_progress2_lines_from_a_real_run) {
  // rsync 3.5.0, 2 files of 30 and 20 MB, --info=progress2, redrawn with '\r'.
  auto samples = samples_of(progress_format::rsync_progress2,
                            captured_lines("rsync-3.5-progress2.out"));
  ASSERT_GE(samples.size(), 4u);
  EXPECT_EQ(*samples.front().bytes_done, 32768u);
  EXPECT_DOUBLE_EQ(*samples.front().fraction, 0.0);
  EXPECT_FALSE(samples.front().bytes_total) << "0% says nothing about the total";
  const auto& second = samples[1];
  EXPECT_EQ(*second.bytes_done, 20676608u);
  EXPECT_NEAR(static_cast<double>(*second.bytes_total), 50e6, 1.5e6); // from "41%"
  const auto& last = samples.back();
  EXPECT_EQ(*last.bytes_done, 50000000u);
  EXPECT_EQ(*last.bytes_total, 50000000u);
  EXPECT_EQ(*last.files_total, 3u); // to-chk=0/3: the folder and two files
  EXPECT_EQ(*last.files_done, 3u);
  for (std::size_t i = 1; i < samples.size(); ++i)
    EXPECT_GE(*samples[i].bytes_done, *samples[i - 1].bytes_done);
  // Not progress: the stats, an error, a half line.
  EXPECT_FALSE(parse_progress(progress_format::rsync_progress2, "Number of files: 3"));
  EXPECT_FALSE(parse_progress(progress_format::rsync_progress2, "rsync error: code 23"));
  EXPECT_FALSE(parse_progress(progress_format::rsync_progress2, "     20,676,6"));
  auto ir = parse_progress(progress_format::rsync_progress2,
                           "  1,024  10%  1.00MB/s  0:00:01 (xfr#4, ir-chk=1000/2002)");
  ASSERT_TRUE(ir);
  EXPECT_EQ(*ir->files_done, 1002u);
  EXPECT_EQ(*ir->files_total, 2002u);
}

TEST(progress, restic_backup_json_status_lines_from_a_real_run) {
  // restic 0.14.0 backup --json of the same 50 MB.
  auto lines = captured_lines("restic-0.14-backup.jsonl");
  auto samples = samples_of(progress_format::restic_json, lines);
  ASSERT_EQ(samples.size(), lines.size()) << "every status line and the summary";
  EXPECT_EQ(*samples.front().bytes_done, 0u);
  const auto& status = samples[samples.size() - 2];
  EXPECT_EQ(*status.bytes_done, 50000000u);
  EXPECT_EQ(*status.bytes_total, 50000000u);
  EXPECT_EQ(*status.files_done, 2u);
  EXPECT_DOUBLE_EQ(*status.fraction, 1.0);
  // The summary: everything it counted is done.
  const auto& summary = samples.back();
  EXPECT_EQ(*summary.bytes_done, 50000000u);
  EXPECT_EQ(*summary.bytes_total, 50000000u);
  EXPECT_EQ(*summary.files_done, 2u);
  EXPECT_EQ(*summary.files_total, 2u);
  EXPECT_DOUBLE_EQ(*summary.fraction, 1.0);
  EXPECT_FALSE(parse_progress(progress_format::restic_json,
                              R"({"message_type":"verbose_status","action":"new"})"));
}

TEST(progress, restic_copy_meter_from_a_real_run) {
  // restic 0.14.0 copy: a text meter counting packs.
  auto samples =
      samples_of(progress_format::restic_copy, captured_lines("restic-0.14-copy.out"));
  ASSERT_EQ(samples.size(), 1u);
  EXPECT_DOUBLE_EQ(*samples[0].fraction, 1.0);
  EXPECT_EQ(*samples[0].files_done, 4u);
  EXPECT_EQ(*samples[0].files_total, 4u);
}

TEST(progress, meter_smooths_the_rate_and_derives_the_eta) {
  progress_meter meter("pull", 0);
  progress_sample s;
  s.bytes_total = 100'000'000;
  for (int second = 1; second <= 10; ++second) {
    s.bytes_done = static_cast<std::uint64_t>(second) * 5'000'000; // 5 MB/s
    EXPECT_TRUE(meter.update(s, second * 1000));
  }
  const auto& p = meter.current();
  EXPECT_NEAR(p.rate_bytes_per_s, 5e6, 1e3);
  EXPECT_EQ(p.eta_seconds, 10); // 50 MB left at 5 MB/s
  EXPECT_EQ(p.changed_at_ms, 10'000);
  EXPECT_EQ(p.describe(), "47.7 MiB / 95.4 MiB (50%)  4.8 MiB/s  ETA 10s");
  // Nothing moves for 30 s: idle grows, the rate decays towards 0.
  EXPECT_FALSE(meter.update(s, 40'000));
  EXPECT_EQ(meter.idle_ms(40'000), 30'000);
  EXPECT_LT(meter.current().rate_bytes_per_s, 5e6 * 0.1);
}

TEST(progress, restic_copy_meters_of_every_snapshot_add_up_to_estimated_bytes) {
  // restic 0.14.0 copy of three snapshots: one meter each (6, 1 and 1
  // packs, the last two both "1 / 1"), from a repository of 8 packs.
  const auto lines = captured_lines("restic-0.14-copy-3-snapshots.out");
  constexpr std::uint64_t mean = 6'883'043; // 55,064,350 bytes of data / 8 packs
  copy_bytes_estimate estimate{mean};
  std::vector<progress_sample> samples;
  for (const auto& line : lines)
    if (auto s = estimate(line)) samples.push_back(*s);
  ASSERT_EQ(samples.size(), 5u);
  EXPECT_EQ(*samples[0].files_done, 3u);
  EXPECT_EQ(*samples[0].files_total, 6u);
  EXPECT_EQ(*samples[0].bytes_done, 3 * mean);
  EXPECT_EQ(*samples[0].bytes_total, 6 * mean);
  EXPECT_DOUBLE_EQ(*samples[0].fraction, 0.5);
  const auto& last = samples.back();
  EXPECT_EQ(*last.files_done, 8u) << "every snapshot's packs counted once";
  EXPECT_EQ(*last.files_total, 8u);
  EXPECT_EQ(*last.bytes_done, 8 * mean);
  EXPECT_EQ(*last.bytes_total, 8 * mean);
  EXPECT_DOUBLE_EQ(*last.fraction, 1.0);
  for (std::size_t i = 1; i < samples.size(); ++i)
    EXPECT_GE(*samples[i].bytes_done, *samples[i - 1].bytes_done) << i;

  // No mean pack size (a remote source): packs only.
  copy_bytes_estimate packs{0};
  std::optional<progress_sample> end;
  for (const auto& line : lines)
    if (auto s = packs(line)) end = s;
  ASSERT_TRUE(end);
  EXPECT_EQ(*end->files_done, 8u);
  EXPECT_FALSE(end->bytes_done);
}
