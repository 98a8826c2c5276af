// The size estimate before a pull (the edge's size probe and what staging
// needs) and the capped inflate of transfer "gzip".

#include "edge_host.hpp"
#include "satoru/capped_gunzip.hpp"
#include "satoru/disk_headroom.hpp"
#include "satoru/remote_size.hpp"
#include "satoru/time.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

using namespace satoru;
using namespace satoru::testing;
namespace fs = std::filesystem;

namespace {

void write(const std::string& path, const std::string& content) {
  std::ofstream(path, std::ios::binary) << content;
}

/// The probe script run by the local sh, as the edge's shell runs it.
expected<exec_result> run_probe(const std::vector<std::string>& paths) {
  process_spec spec;
  spec.argv = {"sh", "-c", remote_size_script(paths)};
  auto run = run_process(spec);
  if (!run) return run.err();
  return exec_result{run->exit_code, run->out, run->err};
}

} // namespace

TEST(PullEstimate, AWholeCopyNeedsTheRemoteSizeAFolderWhatItGrewBy) {
  const std::int64_t mib = 1 << 20;
  // A database is copied whole beside its staged copy.
  EXPECT_EQ(pull_needed_bytes(true, 50 * mib, 40 * mib),
            50 * mib + pull_margin_bytes(50 * mib));
  // A folder mirrored in place needs what it grew by, never less than the margin.
  EXPECT_EQ(pull_needed_bytes(false, 50 * mib, 40 * mib),
            10 * mib + pull_margin_bytes(50 * mib));
  EXPECT_EQ(pull_needed_bytes(false, 10 * mib, 40 * mib), pull_margin_bytes(10 * mib));
  // Unknown remote size: the staged size for a copy, nothing for a folder.
  EXPECT_EQ(pull_needed_bytes(true, -1, 40 * mib), 40 * mib);
  EXPECT_EQ(pull_needed_bytes(false, -1, 40 * mib), 0);
  EXPECT_EQ(pull_margin_bytes(100 * mib), 2 * mib + mib);
}

TEST(RemoteSize, TheProbeSumsFoldersAndFilesWithQuotedNames) {
  temp_dir tmp{"satoru-size"};
  const std::string dir = tmp / "odd 'name' $(touch pwned); *";
  fs::create_directories(dir + "/sub");
  write(dir + "/a", std::string(10'000, 'a'));
  write(dir + "/sub/b", std::string(5'000, 'b'));
  write(tmp / "db", std::string(3'000, 'c'));
  auto check = remote_size_check(dir, run_probe({dir}));
  EXPECT_EQ(check.name, "remote.size");
  EXPECT_EQ(check.status, check_result::level::ok);
  // Apparent sizes: the files plus the folders' own entries.
  EXPECT_GE(check.remote_bytes, 15'000);
  EXPECT_LT(check.remote_bytes, 15'000 + 64 * 1024);
  EXPECT_FALSE(fs::exists(tmp / "pwned"));
  // A database and its WAL, which does not exist: the database alone.
  check = remote_size_check(tmp / "db", run_probe({tmp / "db", tmp / "db-wal"}));
  EXPECT_EQ(check.remote_bytes, 3'000);
  EXPECT_NE(check.message.find("holds 2.9 KiB"), std::string::npos) << check.message;
}

TEST(RemoteSize, AnUnknownAnswerIsOkWithoutASize) {
  auto check = remote_size_check("/srv/x", exec_result{0, "unknown\n", ""});
  EXPECT_EQ(check.status, check_result::level::ok);
  EXPECT_EQ(check.remote_bytes, -1);
  EXPECT_NE(check.message.find("unknown"), std::string::npos) << check.message;
  check = remote_size_check("/srv/x", exec_result{0, "bytes 12x\n", ""});
  EXPECT_EQ(check.remote_bytes, -1);
  check = remote_size_check("/srv/x", error{errc::io, "link down"});
  EXPECT_EQ(check.remote_bytes, -1);
  EXPECT_NE(check.message.find("link down"), std::string::npos) << check.message;
}

TEST(TreeBytes, CountsOnlyWhatChangedSinceWhenAsked) {
  temp_dir tmp{"satoru-tree"};
  fs::create_directories(tmp / "d");
  write(tmp / "d/a", std::string(1'000, 'a'));
  write(tmp / "d/b", std::string(2'000, 'b'));
  EXPECT_EQ(tree_bytes(tmp / "d"), 3'000);
  EXPECT_EQ(tree_bytes(tmp / "d", now_ms() - 60'000), 3'000);
  EXPECT_EQ(tree_bytes(tmp / "d", now_ms() + 60'000), 0);
  EXPECT_EQ(tree_bytes(tmp / "missing"), 0);
}

TEST(CappedGunzip, StopsPastTheLimitAndKeepsAWholeFileWithin) {
  temp_dir tmp{"satoru-gunzip"};
  const std::string plain = tmp / "plain";
  write(plain, std::string(1 << 20, 'z'));
  process_spec gzip;
  gzip.argv = {"gzip", "-k", plain};
  ASSERT_TRUE(run_process(gzip) && fs::exists(plain + ".gz"));
  const std::string out = tmp / "out";

  // Claimed 64 KiB, inflates to 1 MiB: stopped one byte past the limit.
  auto run = run_process(capped_gunzip(plain + ".gz", out, 64 * 1024));
  ASSERT_TRUE(run);
  auto problem = capped_gunzip_problem(*run, out, 64 * 1024);
  EXPECT_NE(problem.find("inflates to more than 64.0 KiB"), std::string::npos) << problem;
  EXPECT_EQ(fs::file_size(out), 64u * 1024 + 1);

  // Within the limit: the whole file, exactly.
  run = run_process(capped_gunzip(plain + ".gz", out, (1 << 20) + 4096));
  ASSERT_TRUE(run);
  EXPECT_EQ(capped_gunzip_problem(*run, out, (1 << 20) + 4096), "");
  EXPECT_EQ(fs::file_size(out), 1u << 20);

  // Not gzip at all: gzip's failure, not a short file taken for whole.
  run = run_process(capped_gunzip(plain, out, 1 << 21));
  ASSERT_TRUE(run);
  problem = capped_gunzip_problem(*run, out, 1 << 21);
  EXPECT_NE(problem.find("gzip -d failed"), std::string::npos) << problem;
}

TEST(StagingReservation, IsCountedWhileHeldAndNamedInTheRefusal) {
  temp_dir tmp{"satoru-reserve"};
  config cfg;
  cfg.disk_min_free_percent = 0;
  cfg.disk_min_free_bytes = 0;
  auto space = fs_space_of(tmp.path());
  ASSERT_TRUE(space);
  EXPECT_EQ(staging_reservation::reserved(), 0);
  EXPECT_EQ(headroom_problem(cfg, tmp.path(), "staging", 1 << 20), "");
  {
    // Another pull running now was promised all the free space (twice over).
    staging_reservation running(2 * space->free);
    EXPECT_EQ(staging_reservation::reserved(), 2 * space->free);
    auto problem = headroom_problem(cfg, tmp.path(), "staging", 1 << 20,
                                    staging_reservation::reserved());
    EXPECT_NE(problem.find("not enough space on the staging filesystem of " + tmp.path()),
              std::string::npos)
        << problem;
    EXPECT_NE(problem.find("for work running now"), std::string::npos) << problem;
  }
  EXPECT_EQ(staging_reservation::reserved(), 0);
}
