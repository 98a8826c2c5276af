#include "satoru/host_restore.hpp"
#include "satoru/restic.hpp"

#include <gtest/gtest.h>

using satoru::host_restore_request;
using satoru::itemized_changes;

TEST(HostRestore, ARequestSurvivesTheJobsParams) {
  host_restore_request r;
  r.target_hash = "0123456789abcdef";
  r.snapshot_id = "f00d";
  r.snapshot_path = "/var/lib/satoru/backups/u/t";
  r.paths = {"css", "a b/c.txt"};
  r.dest = "/srv/shop.restored";
  r.delete_extra = true;
  r.apply = true;
  auto back = host_restore_request::from_json(r.to_json());
  ASSERT_TRUE(back) << back.err().message;
  EXPECT_EQ(back->target_hash, r.target_hash);
  EXPECT_EQ(back->snapshot_id, r.snapshot_id);
  EXPECT_EQ(back->snapshot_path, r.snapshot_path);
  EXPECT_EQ(back->paths, r.paths);
  EXPECT_EQ(back->dest, r.dest);
  EXPECT_TRUE(back->delete_extra && back->apply);
  EXPECT_FALSE(back->replace);
  EXPECT_FALSE(host_restore_request::from_json("{\"paths\": []}"));
  EXPECT_FALSE(host_restore_request::from_json("not json"));
}

TEST(HostRestore, RsyncsItemizedListIsSortedIntoCreatedUpdatedAndDeleted) {
  // rsync 3.2 `-i` output with --info=progress2 lines in between.
  const char* out = "*deleting   extra.txt\n"
                    ".d..t...... ./\n"
                    ">f.st...... a.txt\n"
                    "        1,234 100%  0.00kB/s    0:00:00 (xfr#1, to-chk=2/5)\r"
                    ">f+++++++++ owned.txt\n"
                    ".f...p..... sub/b.txt\n"
                    "cd+++++++++ new dir/\n"
                    "cL+++++++++ link -> a.txt\n";
  auto c = itemized_changes::parse(out);
  EXPECT_EQ(c.created,
            (std::vector<std::string>{"owned.txt", "new dir/", "link -> a.txt"}));
  EXPECT_EQ(c.updated, (std::vector<std::string>{"a.txt", "sub/b.txt"}));
  EXPECT_EQ(c.deleted, (std::vector<std::string>{"extra.txt"}));
}

// What a restore writes (its progress' total): the files chosen, in bytes.
TEST(HostRestore, TheBytesToRestoreAreTheChosenFilesSizes) {
  std::vector<satoru::snapshot_node> listed;
  auto node = [&](const char* path, const char* type, std::int64_t size) {
    satoru::snapshot_node n;
    n.path = path;
    n.type = type;
    n.size = size;
    listed.push_back(n);
  };
  node("/a.txt", "file", 10);
  node("/sub", "dir", 4096);
  node("/sub/b.txt", "file", 200);
  node("/sub/c.txt", "file", 3000);
  node("/subway.txt", "file", 40000);
  node("/link", "symlink", 5);
  EXPECT_EQ(satoru::restore_bytes(listed), 43210);
  EXPECT_EQ(satoru::restore_bytes(listed, {"sub"}), 3200) << "not /subway.txt";
  EXPECT_EQ(satoru::restore_bytes(listed, {"/sub/b.txt", "a.txt"}), 210);
  EXPECT_EQ(satoru::restore_bytes(listed, {"sub/"}), 3200);
  EXPECT_EQ(satoru::restore_bytes(listed, {"nothing"}), 0);
}
