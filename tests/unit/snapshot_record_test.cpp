// The staging fingerprint decides whether a backup may skip `restic backup`:
// it must change with anything a pull can change, and only then.
#include "satoru/snapshot_record.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sys/stat.h>
#include <unistd.h>

namespace fs = std::filesystem;
using namespace satoru;

namespace {

struct SnapshotRecord : ::testing::Test {
  fs::path root = fs::temp_directory_path() /
                  ("satoru-snapshot-record-" + std::to_string(::getpid()));
  std::string dir = (root / "staging").string();
  void SetUp() override {
    fs::remove_all(root);
    fs::create_directories(root / "staging" / "sub");
    std::ofstream{root / "staging" / "sub" / "a.txt"} << "a\n";
    std::ofstream{root / "staging" / "b.txt"} << "b\n";
  }
  void TearDown() override { fs::remove_all(root); }
  std::string fingerprint() {
    auto f = staging_fingerprint(dir);
    EXPECT_TRUE(f) << (f ? "" : f.err().message);
    return f ? *f : "";
  }
};

} // namespace

TEST_F(SnapshotRecord, AnUntouchedTreeKeepsItsFingerprint) {
  auto first = fingerprint();
  EXPECT_EQ(first.size(), 64u);
  EXPECT_EQ(fingerprint(), first);
  // Reading changes nothing a snapshot sees.
  std::ifstream{root / "staging" / "b.txt"}.get();
  EXPECT_EQ(fingerprint(), first);
}

TEST_F(SnapshotRecord, EveryKindOfChangeMovesIt) {
  auto before = fingerprint();
  // A mode only (rsync's --stats counts no transfer for it).
  ASSERT_EQ(::chmod((root / "staging" / "b.txt").c_str(), 0600), 0);
  auto after_mode = fingerprint();
  EXPECT_NE(after_mode, before);
  // New content. (rsync writes a changed file beside it and renames it
  // over: a new inode; a write in place moves size, mtime and ctime, but
  // within one kernel clock tick of the last change only the size.)
  std::ofstream{root / "staging" / "b.txt"} << "longer\n";
  auto after_write = fingerprint();
  EXPECT_NE(after_write, after_mode);
  // A new empty folder, a symlink, a removal.
  fs::create_directory(root / "staging" / "empty");
  auto after_dir = fingerprint();
  EXPECT_NE(after_dir, after_write);
  fs::create_symlink("b.txt", root / "staging" / "link");
  auto after_link = fingerprint();
  EXPECT_NE(after_link, after_dir);
  fs::remove(root / "staging" / "sub" / "a.txt");
  EXPECT_NE(fingerprint(), after_link);
}

TEST_F(SnapshotRecord, TheRecordRoundTripsAndIsPrivate) {
  EXPECT_FALSE(read_snapshot_record(dir)) << "none yet";
  ASSERT_TRUE(write_snapshot_record(dir, {fingerprint(), "1a2b3c4d", 1234}));
  auto back = read_snapshot_record(dir);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->fingerprint, fingerprint()) << "the record lives beside staging";
  EXPECT_EQ(back->snapshot_id, "1a2b3c4d");
  EXPECT_EQ(back->taken_at, 1234);
  struct stat st {};
  ASSERT_EQ(::stat((dir + ".snapshot").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  forget_snapshot_record(dir);
  EXPECT_FALSE(read_snapshot_record(dir));
  // A damaged record means "take a snapshot".
  std::ofstream{dir + ".snapshot"} << "{not json";
  EXPECT_FALSE(read_snapshot_record(dir));
}

TEST_F(SnapshotRecord, ASnapshotCountsOnlyWhileTheRepositoryHoldsIt) {
  const auto repo = (root / "repo").string();
  fs::create_directories(repo + "/snapshots");
  const std::string full(64, 'e');
  std::ofstream{repo + "/snapshots/" + full} << "x";
  EXPECT_TRUE(local_repository_has_snapshot(repo, full));
  EXPECT_TRUE(local_repository_has_snapshot(repo, "eeeeeeee"));
  EXPECT_FALSE(local_repository_has_snapshot(repo, "ffffffff"));
  EXPECT_FALSE(local_repository_has_snapshot(repo, ""));
  fs::remove(repo + "/snapshots/" + full);
  EXPECT_FALSE(local_repository_has_snapshot(repo, "eeeeeeee"));
}
