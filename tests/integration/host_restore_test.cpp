// `satoru restore --to-host`: a snapshot put back on its edge host over the
// real sshd with rsync, as a queued `restore` job: a dry run that changes
// nothing, `--yes` with exact contents, owners and modes, `--delete`, and a
// SQLite database restored beside a live one under a writer, then swapped
// in with `--replace`.
#include "satoru_env.hpp"

#include <gtest/gtest.h>

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <sstream>
#include <thread>

using namespace satoru::testing;
namespace fs = std::filesystem;

namespace {

/// "type mode uid:gid content" of everything below root, by relative path.
std::map<std::string, std::string> listing_of(const std::string& root) {
  std::map<std::string, std::string> out;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::end(it); ++it) {
    struct stat st {};
    EXPECT_EQ(::lstat(it->path().c_str(), &st), 0) << it->path();
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", st.st_mode & 07777);
    out[it->path().lexically_relative(root).string()] =
        std::string(S_ISDIR(st.st_mode) ? "dir " : "file ") + mode + " " +
        std::to_string(st.st_uid) + ":" + std::to_string(st.st_gid) + " " +
        (S_ISREG(st.st_mode) ? read_file(it->path().string()) : std::string{});
  }
  return out;
}

/// The one file in `dir` whose name starts with `prefix` ("" when none or more).
std::string only_file_starting(const std::string& dir, const std::string& prefix) {
  std::string found;
  int n = 0;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().rfind(prefix, 0) == 0) {
      found = e.path().string();
      ++n;
    }
  return n == 1 ? found : std::string{};
}

std::string str_of(const boost::json::value& v) {
  return v.is_string() ? std::string(v.as_string()) : std::string{};
}

std::string sql(const std::string& db, const std::string& query) {
  std::string out;
  run_shell("sqlite3 " + satoru::shell_quote(db) + " " + satoru::shell_quote(query),
            &out);
  return out;
}

} // namespace

TEST(HostRestore,
     DryRunChangesNothingYesRestoresExactlyAndADatabaseGoesBesideThenReplaces) {
  satoru_env env{"satoru-host-restore"};
  edge_host host{env.path("edge")};
  ASSERT_TRUE(host.running());
  const std::string data = host.remote_root() + "/srv";
  host.write_file(data + "/a.txt", "version 1\n");
  host.write_file(data + "/sub/b.txt", "private\n");
  host.write_file(data + "/owned.txt", "someone else's\n");
  host.write_file(data + "/a[1].txt", "bracket\n");
  host.write_file(data + "/a1.txt", "plain\n");
  ASSERT_EQ(::chmod((data + "/sub/b.txt").c_str(), 0600), 0);
  ASSERT_EQ(::chown((data + "/owned.txt").c_str(), 1234, 2345), 0);
  ASSERT_EQ(::chmod((data + "/owned.txt").c_str(), 0640), 0);
  const std::string db = host.remote_root() + "/app.db";
  host.make_sqlite_db(db, "PRAGMA journal_mode=WAL; CREATE TABLE t(x); INSERT INTO t "
                          "VALUES (42);");
  env.add_site("edge", host, {{"directory", data}, {"sqlite_dump", db}});
  env.write_config();
  auto backup = env.run({"run", "edge", "--wait"});
  ASSERT_EQ(backup.exit_code, 0) << backup.out << backup.err;
  const auto backed_up = listing_of(data);

  // The edge host drifts: a changed file, a changed mode, a lost file, an
  // extra one.
  host.write_file(data + "/a.txt", "version 2, damaged\n");
  ASSERT_EQ(::chmod((data + "/sub/b.txt").c_str(), 0644), 0);
  fs::remove(data + "/owned.txt");
  host.write_file(data + "/extra.txt", "only on the host\n");
  const auto drifted = listing_of(data);

  // Without --yes: the itemized list, and nothing changes.
  auto dry = env.run({"restore", "edge", data, "--to-host"});
  ASSERT_EQ(dry.exit_code, 0) << dry.out << dry.err;
  for (const auto& line : {"M a.txt", "M sub/b.txt", "+ owned.txt", "? extra.txt",
                           "dry run: nothing was changed on edge"})
    EXPECT_TRUE(contains(dry.out, line)) << line << "\n" << dry.out;
  EXPECT_EQ(listing_of(data), drifted);
  EXPECT_EQ(str_of(job_json(env, parse_id(dry)).at("type")), "restore");
  // --path: only that folder is compared (and would be restored).
  auto part =
      env.run({"restore", "edge", data, "--to-host", "--path", "sub", "--dry-run"});
  ASSERT_EQ(part.exit_code, 0) << part.out << part.err;
  EXPECT_TRUE(contains(part.out, "M sub/b.txt")) << part.out;
  EXPECT_FALSE(contains(part.out, "a.txt") || contains(part.out, "extra.txt"))
      << part.out;
  // Flags that do not fit the target are refused before anything is queued.
  auto bad = env.run({"restore", "edge", data, "--to-host", "--replace"});
  EXPECT_EQ(bad.exit_code, 2) << bad.out << bad.err;
  EXPECT_TRUE(contains(bad.err, "--replace is for sqlite_dump targets")) << bad.err;

  // --yes: exact content, owners and modes back; the extra file stays. With
  // --json, the restore into scratch space (restic) ends with a 100%
  // progress line: the five files the snapshot holds ("version 1\n",
  // "private\n", "someone else's\n", "bracket\n", "plain\n"); the push to the
  // host (rsync) with the
  // bytes it sent (the two files whose content changed).
  auto yes = env.run({"restore", "edge", data, "--to-host", "--yes", "--json"});
  ASSERT_EQ(yes.exit_code, 0) << yes.out << yes.err;
  const auto restic_leg = progress_lines(yes.out, "restore");
  ASSERT_FALSE(restic_leg.empty()) << yes.out;
  EXPECT_TRUE(restic_leg.back().at("ended").as_bool()) << yes.out;
  EXPECT_DOUBLE_EQ(restic_leg.back().at("fraction").to_number<double>(), 1.0) << yes.out;
  EXPECT_EQ(restic_leg.back().at("bytes_done").to_number<int>(), 47) << yes.out;
  const auto pushed = progress_lines(yes.out, "push");
  ASSERT_FALSE(pushed.empty()) << yes.out;
  EXPECT_TRUE(pushed.back().at("ended").as_bool()) << yes.out;
  EXPECT_EQ(pushed.back().at("bytes_done").to_number<int>(), 25) << yes.out;
  auto now = listing_of(data);
  EXPECT_EQ(now.count("extra.txt"), 1u) << "deleted without --delete";
  now.erase("extra.txt");
  EXPECT_EQ(now, backed_up);
  // --delete removes it.
  auto del = env.run({"restore", "edge", data, "--to-host", "--yes", "--delete"});
  ASSERT_EQ(del.exit_code, 0) << del.out << del.err;
  EXPECT_TRUE(contains(del.out, "- extra.txt")) << del.out;
  EXPECT_EQ(listing_of(data), backed_up);
  // No scratch folder is left behind.
  for (const auto& e : fs::directory_iterator(env.path("staging")))
    EXPECT_NE(e.path().filename().string().rfind(".satoru-restore-", 0), 0u) << e.path();
  // --path takes a name as it is: "a[1].txt" is that file, not a pattern
  // matching "a1.txt".
  host.write_file(data + "/a[1].txt", "changed\n");
  host.write_file(data + "/a1.txt", "changed\n");
  auto odd =
      env.run({"restore", "edge", data, "--to-host", "--path", "a[1].txt", "--yes"});
  ASSERT_EQ(odd.exit_code, 0) << odd.out << odd.err;
  EXPECT_TRUE(contains(odd.out, "M a[1].txt")) << odd.out;
  EXPECT_EQ(read_file(data + "/a[1].txt"), "bracket\n");
  EXPECT_EQ(read_file(data + "/a1.txt"), "changed\n")
      << "a[1].txt was taken as a pattern";

  // A database goes beside the live one, which a writer keeps changing.
  std::atomic<bool> writing{true};
  std::thread writer([&] {
    for (int i = 0; writing; ++i)
      run_shell("sqlite3 " + satoru::shell_quote(db) +
                " '.timeout 5000' 'INSERT INTO t " + "VALUES (" +
                std::to_string(1000 + i) + ")'");
  });
  auto beside = env.run({"restore", "edge", db, "--to-host", "--yes"});
  writing = false;
  writer.join();
  ASSERT_EQ(beside.exit_code, 0) << beside.out << beside.err;
  EXPECT_TRUE(contains(beside.out, "integrity_check")) << beside.out;
  const auto restored = only_file_starting(host.remote_root(), "app.db.restored-");
  ASSERT_FALSE(restored.empty());
  EXPECT_EQ(sql(restored, "PRAGMA integrity_check; SELECT group_concat(x) FROM t"),
            "ok\n42\n");
  const auto written = sql(db, "SELECT count(*) FROM t WHERE x >= 1000");
  EXPECT_NE(written, "0\n") << "the writer wrote nothing";

  // --replace (the application stopped): the live name gets the backup's
  // data, the old file is kept aside with what the writer wrote.
  ASSERT_EQ(::chmod(db.c_str(), 0664), 0);
  auto swap = env.run({"restore", "edge", db, "--to-host", "--yes", "--replace"});
  ASSERT_EQ(swap.exit_code, 0) << swap.out << swap.err;
  EXPECT_EQ(sql(db, "PRAGMA integrity_check; SELECT group_concat(x) FROM t"), "ok\n42\n");
  struct stat live {};
  ASSERT_EQ(::stat(db.c_str(), &live), 0);
  EXPECT_EQ(live.st_mode & 07777, 0664u) << "the live database's mode is kept";
  const auto aside = only_file_starting(host.remote_root(), "app.db.before-restore-");
  ASSERT_FALSE(aside.empty()) << swap.out;
  EXPECT_EQ(sql(aside, "SELECT count(*) FROM t WHERE x >= 1000"), written);
  EXPECT_FALSE(fs::exists(db + "-wal") && fs::file_size(db + "-wal") > 0)
      << "the old database's WAL was left beside the restored one";
}

TEST(HostRestore, ANonRootEdgeUserWithTheDocumentedSudoLinesGetsOwnersAndModesBack) {
  if (!fs::exists("/usr/bin/sudo") || !fs::is_directory("/etc/sudoers.d"))
    GTEST_SKIP() << "needs sudo with /etc/sudoers.d (scripts/bootstrap installs it)";
  satoru_env env{"satoru-host-restore-sudo"};
  test_user user;
  ASSERT_TRUE(user.created());
  edge_host::options as_user;
  as_user.login_user = user.name();
  edge_host host{env.path("edge"), as_user};
  ASSERT_TRUE(host.running());
  // Files the edge user can neither read nor own: root's, another user's.
  temp_dir edge_fs{"satoru-edge-fs"};
  ::chmod(edge_fs.path().c_str(), 0755);
  const std::string data = edge_fs / "etc";
  host.write_file(data + "/shadow", "root:*:1:0:99999:7:::\n");
  ASSERT_EQ(::chmod((data + "/shadow").c_str(), 0600), 0);
  host.write_file(data + "/app/app.conf", "secret=1\n");
  ASSERT_EQ(::chown((data + "/app/app.conf").c_str(), 1234, 2345), 0);
  ASSERT_EQ(::chmod((data + "/app/app.conf").c_str(), 0640), 0);
  ASSERT_EQ(::chmod(data.c_str(), 0755), 0);
  env.add_site("edge", host, {{"directory", data}});
  env.config["sites"].as_array()[0].as_object()["sudo"] = true;
  env.write_config();
  // What operations.md gives for backups plus what restore.md adds for a
  // restore to the host.
  sudoers_file allowed(documented_sudoers_lines("docs/operations.md", user.name()) +
                       documented_sudoers_lines("docs/restore.md", user.name()));
  auto backup = env.run({"run", "edge", "--wait"});
  ASSERT_EQ(backup.exit_code, 0) << backup.out << backup.err;
  const auto backed_up = listing_of(data);

  fs::remove(data + "/shadow");
  ASSERT_EQ(::chown((data + "/app/app.conf").c_str(), user.uid(), user.gid()), 0);
  ASSERT_EQ(::chmod((data + "/app/app.conf").c_str(), 0666), 0);
  auto r = env.run({"restore", "edge", data, "--to-host", "--yes"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "+ shadow") && contains(r.out, "M app/app.conf")) << r.out;
  EXPECT_EQ(listing_of(data), backed_up);

  // A database of a sudo site is refused before anything is queued, with
  // the way that works named: root would write a file the edge user's
  // integrity check and rename cannot reach.
  const std::string db = edge_fs / "app.db";
  env.config["sites"].as_array()[0].as_object()["targets"].as_array().push_back(
      {{"mode", "sqlite_dump"}, {"path", db}});
  env.write_config();
  const auto jobs_before = parse_json(env.run({"jobs", "--json"})).as_array().size();
  auto refused = env.run({"restore", "edge", db, "--to-host", "--dry-run"});
  EXPECT_EQ(refused.exit_code, 2) << refused.out << refused.err;
  EXPECT_TRUE(contains(refused.err,
                       "cannot restore the database " + db + " of a sudo site yet") &&
              contains(refused.err, "--to DIR"))
      << refused.err;
  EXPECT_EQ(parse_json(env.run({"jobs", "--json"})).as_array().size(), jobs_before)
      << "a refused restore queues no job";
}

TEST(HostRestore, RootSendsTheOwnersAndModesADaemonThatIsNotRootRecorded) {
  const passwd* service = ::getpwnam("satoru");
  ASSERT_NE(service, nullptr) << "needs the local user satoru (scripts/bootstrap)";
  satoru_env env{"satoru-host-restore-fake-super"};
  edge_host host{env.path("edge")}; // root on the edge: it sets any owner
  ASSERT_TRUE(host.running());
  const std::string data = host.remote_root() + "/srv";
  host.write_file(data + "/owned.txt", "someone else's\n");
  ASSERT_EQ(::chown((data + "/owned.txt").c_str(), 1234, 2345), 0);
  ASSERT_EQ(::chmod((data + "/owned.txt").c_str(), 0640), 0);
  host.write_file(data + "/team/plan.txt", "plan\n");
  ASSERT_EQ(::chown((data + "/team/plan.txt").c_str(), 1234, 1234), 0);
  ASSERT_EQ(::chmod((data + "/team/plan.txt").c_str(), 0600), 0);
  ASSERT_EQ(::chown((data + "/team").c_str(), 1234, 2345), 0);
  ASSERT_EQ(::chmod((data + "/team").c_str(), 02750), 0);
  env.add_site("edge", host, {{"directory", data}});
  env.write_config();
  // Pulled by the daemon as the service user: the edge's owners and modes
  // are only in the staged files' user.rsync.%stat xattrs.
  env.hand_to("satoru", &host);
  {
    daemon_process daemon(env);
    daemon.start();
    auto backup = env.run({"run", "edge", "--wait"});
    ASSERT_EQ(backup.exit_code, 0) << backup.out << backup.err << daemon.log();
    daemon.stop();
  }
  const auto backed_up = listing_of(data);

  ASSERT_EQ(::chown((data + "/owned.txt").c_str(), 0, 0), 0);
  ASSERT_EQ(::chmod((data + "/owned.txt").c_str(), 0666), 0);
  fs::remove_all(data + "/team");
  // As root with no daemon running: the job runs in this process, as root.
  auto r = env.run_as_root({"restore", "edge", data, "--to-host", "--yes"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(listing_of(data), backed_up)
      << "owners and modes are the staging user's, not the edge's";
}

TEST(HostRestore, ThePushToTheHostHonoursTheTargetsBandwidthLimitAndBwlimit) {
  satoru_env env{"satoru-host-restore-bwlimit"};
  edge_host host{env.path("edge")};
  ASSERT_TRUE(host.running());
  const std::string data = host.remote_root() + "/srv";
  host.write_file(data + "/a.txt", "version 1\n");
  env.add_site("edge", host, {{"directory", data}});
  env.set_target_options(0, 0, {{"bwlimit_kbps", 300}});
  env.write_config();
  ASSERT_EQ(env.run({"run", "edge", "--wait"}).exit_code, 0);
  host.write_file(data + "/a.txt", "version 2\n");
  // The local rsync is a wrapper first in PATH that writes down its
  // arguments, one a line, then becomes the real rsync.
  const std::string bin = env.path("spy-bin"), seen = env.path("rsync-args");
  write_text(bin + "/rsync",
             "#!/bin/sh\nprintf '%s\\n' \"$@\" > " + satoru::shell_quote(seen) +
                 "\nexec /usr/bin/rsync \"$@\"\n",
             0755);
  scoped_env path{"PATH", bin + ":" + std::getenv("PATH")};
  auto bwlimit_args = [&](std::vector<std::string> extra) {
    std::vector<std::string> args{"restore", "edge", data, "--to-host", "--yes"};
    args.insert(args.end(), extra.begin(), extra.end());
    fs::remove(seen);
    auto r = env.run(args);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    std::istringstream lines(read_file(seen));
    std::vector<std::string> out;
    for (std::string line; std::getline(lines, line);)
      if (line.rfind("--bwlimit", 0) == 0) out.push_back(line);
    return out;
  };
  EXPECT_EQ(bwlimit_args({}), std::vector<std::string>{"--bwlimit=300"});
  EXPECT_EQ(bwlimit_args({"--bwlimit", "64"}), std::vector<std::string>{"--bwlimit=64"});
  EXPECT_EQ(bwlimit_args({"--bwlimit", "0"}), std::vector<std::string>{})
      << "--bwlimit 0 is unlimited";
  EXPECT_EQ(read_file(data + "/a.txt"), "version 1\n");
  // With --to DIR it means nothing: refused.
  auto local =
      env.run({"restore", "edge", data, "--to", env.path("out"), "--bwlimit", "5"});
  EXPECT_EQ(local.exit_code, 2) << local.out << local.err;
  EXPECT_TRUE(contains(local.err, "--bwlimit goes with --to-host")) << local.err;
}

TEST(HostRestore, NamesFromTheEdgeHostReachTheTerminalWithControlCharactersEscaped) {
  satoru_env env{"satoru-host-restore-names"};
  edge_host host{env.path("edge")};
  ASSERT_TRUE(host.running());
  const std::string data = host.remote_root() + "/srv";
  // A name that would clear the screen and fake a line of its own.
  const std::string hostile = "x\x1b[2J\nM shadow";
  host.write_file(data + "/" + hostile, "payload\n");
  env.add_site("edge", host, {{"directory", data}});
  env.write_config();
  auto backup = env.run({"run", "edge", "--wait"});
  ASSERT_EQ(backup.exit_code, 0) << backup.out << backup.err;
  fs::remove(data + "/" + hostile);
  const std::string shown = "x\\x1b[2J\\nM shadow";
  auto ls = env.run({"ls", "edge", data});
  ASSERT_EQ(ls.exit_code, 0) << ls.out << ls.err;
  EXPECT_TRUE(contains(ls.out, shown)) << ls.out;
  auto dry = env.run({"restore", "edge", data, "--to-host"});
  ASSERT_EQ(dry.exit_code, 0) << dry.out << dry.err;
  // rsync's itemized list escapes names its own way ("\\#033").
  EXPECT_TRUE(contains(dry.out, "+ x\\#033[2J\\#012M shadow")) << dry.out;
  for (const auto* out : {&ls.out, &dry.out}) {
    EXPECT_EQ(out->find('\x1b'), std::string::npos) << "a raw ESC reached the terminal";
    EXPECT_FALSE(contains(*out, "\nM shadow")) << "a name printed a line of its own";
  }
  // JSON keeps the name as it is (its writer escapes it).
  auto json = parse_json(env.run({"ls", "edge", data, "--json"}));
  bool found = false;
  for (const auto& n : json.as_array())
    found = found || string_of(n.at("path")) == hostile;
  EXPECT_TRUE(found);
}
