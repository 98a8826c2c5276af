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

namespace {

/// The rsync argv of a push to a site on localhost, for `target` and `request`.
std::vector<std::string> push_args_of(const satoru::target_config& target,
                                      const host_restore_request& request) {
  satoru::ssh_endpoint endpoint;
  endpoint.host = "localhost";
  endpoint.user = "root";
  return satoru::rsync_base_args(endpoint,
                                 satoru::host_restore_transfer(target, request));
}

bool has_arg(const std::vector<std::string>& argv, const std::string& arg) {
  return std::find(argv.begin(), argv.end(), arg) != argv.end();
}

satoru::target_config folder_target(const std::string& path) {
  satoru::target_config t;
  t.mode = "directory";
  t.path = path;
  return t;
}

} // namespace

TEST(HostRestore, ThePushHonoursTheTargetsBandwidthLimitOrTheRequests) {
  auto target = folder_target("/srv/shop");
  host_restore_request request;
  const auto by_default = push_args_of(target, request);
  EXPECT_FALSE(
      std::any_of(by_default.begin(), by_default.end(),
                  [](const std::string& a) { return a.rfind("--bwlimit", 0) == 0; }))
      << "no limit configured, none given";
  target.options["bwlimit_kbps"] = 500;
  EXPECT_TRUE(has_arg(push_args_of(target, request), "--bwlimit=500"));
  request.bwlimit_kbps = 64; // --bwlimit 64
  EXPECT_TRUE(has_arg(push_args_of(target, request), "--bwlimit=64"));
  request.bwlimit_kbps = 0; // --bwlimit 0: unlimited
  const auto unlimited = push_args_of(target, request);
  EXPECT_FALSE(has_arg(unlimited, "--bwlimit=500") || has_arg(unlimited, "--bwlimit=0"));
  // The override travels in the job's params.
  request.bwlimit_kbps = 64;
  auto back = host_restore_request::from_json(request.to_json());
  ASSERT_TRUE(back) << back.err().message;
  EXPECT_EQ(back->bwlimit_kbps, 64);
  EXPECT_EQ(
      host_restore_request::from_json(host_restore_request{}.to_json())->bwlimit_kbps,
      -1);
}

TEST(HostRestore, ADestWithDotDotOrASystemFolderWithDeleteIsRefused) {
  const auto target = folder_target("/srv/shop");
  auto problem = [&](const std::string& dest, bool delete_extra) {
    host_restore_request r;
    r.dest = dest;
    r.delete_extra = delete_extra;
    return satoru::host_restore_request_problem(target, r);
  };
  for (const auto* dest : {"/srv/../etc", "/srv/shop/..", "/../srv"})
    for (bool del : {false, true})
      EXPECT_NE(problem(dest, del).find("--dest " + std::string(dest) +
                                        ": give a path without \"..\""),
                std::string::npos)
          << dest << ": " << problem(dest, del);
  for (const auto* dest :
       {"/", "/etc", "/etc/", "//usr", "/./var", "/root", "/boot", "/lib64", "/usr/"}) {
    EXPECT_NE(problem(dest, true).find("--dest " + std::string(dest) + " with --delete"),
              std::string::npos)
        << dest << ": " << problem(dest, true);
    EXPECT_EQ(problem(dest, false), "") << dest << " without --delete";
  }
  for (const auto* dest : {"/srv/shop.restored", "/etc/app", "/var/www", "/home/ann"})
    EXPECT_EQ(problem(dest, true), "") << dest;
  EXPECT_NE(problem("srv/shop", false).find("give an absolute path"), std::string::npos);
  // The names the web console gives its fields.
  host_restore_request r;
  r.dest = "/";
  r.delete_extra = true;
  satoru::host_restore_option_names api{"paths", "dest", "delete", "replace"};
  EXPECT_EQ(
      satoru::host_restore_request_problem(target, r, api).rfind("dest / with delete", 0),
      0u)
      << satoru::host_restore_request_problem(target, r, api);
}
