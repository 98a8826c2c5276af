// Real edge hosts (issue "Real edge hosts"): edge users that are not root and
// cannot read everything, two servers copying one database at once, child
// processes that get only what they need, remote output that floods, and
// host keys that change. Every edge host is a real sshd on loopback; every
// edge user is a real local user made with useradd.
#include "satoru_env.hpp"

#include "satoru/identity.hpp"
#include "satoru/process.hpp"

#include <gtest/gtest.h>

#include <csignal>
#include <dirent.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

using namespace satoru::testing;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

void write_file(const std::string& path, const std::string& content, mode_t mode) {
  fs::create_directories(fs::path(path).parent_path());
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << content;
  }
  ::chmod(path.c_str(), mode);
}

/// The first event of a job at `step` (and target hash, when given).
boost::json::object event_of(const boost::json::object& job, const std::string& step) {
  for (const auto& e : job.at("events").as_array())
    if (string_of(e.at("step")) == step) return e.as_object();
  ADD_FAILURE() << "no event " << step << " in " << boost::json::serialize(job);
  return {};
}

/// The value of one series in a /metrics text ("" when absent).
std::string metric_value(const std::string& text, const std::string& series) {
  auto at = text.find("\n" + series + " ");
  if (at == std::string::npos) return {};
  auto begin = at + series.size() + 2;
  return text.substr(begin, text.find('\n', begin) - begin);
}

std::string sha256_fingerprint(const std::string& pub_file) {
  std::string out;
  run_shell("ssh-keygen -lf " + satoru::shell_quote(pub_file) + " | awk '{print $2}'",
            &out);
  return out.substr(0, out.find('\n'));
}

/// A folder outside the test's private (0700) temp folder, where an edge user
/// other than root can go: the "edge host's filesystem" of these tests.
struct public_dir {
  temp_dir dir{"satoru-edge-fs"};
  public_dir() { ::chmod(dir.path().c_str(), 0755); }
  std::string operator/(const std::string& name) const { return dir / name; }
};

/// "type mode uid:gid" of every file and folder under root (lstat, not
/// following links), by path relative to root; symbolic links by target.
std::map<std::string, std::string> attributes_under(const std::string& root) {
  std::map<std::string, std::string> out;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::end(it); ++it) {
    const std::string rel = it->path().lexically_relative(root).string();
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) != 0) {
      out[rel] = "unreadable";
    } else if (S_ISLNK(st.st_mode)) {
      out[rel] = "link -> " + fs::read_symlink(it->path()).string();
    } else {
      const char* type = S_ISDIR(st.st_mode)    ? "dir"
                         : S_ISREG(st.st_mode)  ? "file"
                         : S_ISFIFO(st.st_mode) ? "fifo"
                                                : "other";
      char mode[8];
      std::snprintf(mode, sizeof mode, "%04o", st.st_mode & 07777);
      out[rel] = std::string(type) + " " + mode + " " + std::to_string(st.st_uid) + ":" +
                 std::to_string(st.st_gid);
    }
  }
  return out;
}

std::string xattr_of(const std::string& path, const std::string& name) {
  char buf[256];
  ssize_t n = ::lgetxattr(path.c_str(), name.c_str(), buf, sizeof buf);
  return n < 0 ? std::string{} : std::string(buf, static_cast<std::size_t>(n));
}

struct EdgeHosts : ::testing::Test {
  satoru_env env{"satoru-edge-hosts"};

  std::string staging_of(const std::string& site, const std::string& mode,
                         const std::string& path) const {
    return satoru::staging_path(env.path("staging"), satoru::derive_site_uuid(site),
                                satoru::target_hash(mode, path));
  }
};

} // namespace

TEST_F(EdgeHosts, UnreadableFilesOfANonRootEdgeUserAreAWarningAndTheRestIsSnapshotted) {
  test_user user;
  ASSERT_TRUE(user.created());
  edge_host::options as_user;
  as_user.login_user = user.name();
  edge_host host(env.path("edge"), as_user);
  ASSERT_TRUE(host.running());
  public_dir fs_root;
  const std::string data = fs_root / "etc";
  write_file(data + "/hostname", "edge-01\n", 0644);
  write_file(data + "/app/app.conf", "port=80\n", 0644);
  write_file(data + "/shadow", "root:*:1:0:99999:7:::\n",
             0600); // root's, like /etc/shadow
  write_file(data + "/ssl/private/key.pem", "KEY\n", 0600);
  ::chmod((data + "/ssl/private").c_str(), 0700);
  ::chmod(data.c_str(), 0755);
  // A target whose folder itself the edge user cannot enter still fails.
  const std::string closed = fs_root / "closed";
  write_file(closed + "/x", "x", 0644);
  ::chmod(closed.c_str(), 0700);
  env.add_site("edge", host, {{"directory", data}, {"directory", closed}});
  env.write_config();

  daemon_process daemon(env);
  daemon.start();
  auto r = env.run({"run", "edge", "--wait"});
  EXPECT_EQ(r.exit_code, 3) << "warning expected\n" << r.out << r.err;
  auto job = job_json(env, parse_id(r));
  EXPECT_EQ(string_of(job.at("status")), "warning");

  // The event names the count and the first paths; the full list is beside
  // the staging folder (not in the database).
  auto unreadable = event_of(job, "pull.unreadable");
  EXPECT_EQ(string_of(unreadable.at("level")), "warn");
  EXPECT_EQ(unreadable.at("data").at("count").to_number<int>(), 2)
      << boost::json::serialize(unreadable);
  const std::string message = string_of(unreadable.at("message"));
  EXPECT_TRUE(contains(message, data + "/shadow")) << message;
  EXPECT_TRUE(contains(message, data + "/ssl/private")) << message;
  const std::string staging = staging_of("edge", "directory", data);
  const std::string list_file = staging + ".unreadable";
  const std::string list = read_file(list_file);
  EXPECT_TRUE(contains(list, data + "/shadow\n") &&
              contains(list, data + "/ssl/private\n"))
      << list;
  struct stat st {};
  ASSERT_EQ(::stat(list_file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);

  // The rest was snapshotted and restores.
  const std::string restored = env.path("restored");
  auto rr = env.run({"restore", "edge", data, "--to", restored});
  ASSERT_EQ(rr.exit_code, 0) << rr.out << rr.err;
  EXPECT_EQ(read_file(restored + "/hostname"), "edge-01\n");
  EXPECT_EQ(read_file(restored + "/app/app.conf"), "port=80\n");
  EXPECT_FALSE(fs::exists(restored + "/shadow"));

  // The closed folder failed, with the reason.
  bool closed_failed = false;
  for (const auto& e : job.at("events").as_array())
    closed_failed =
        closed_failed || (string_of(e.at("level")) == "fail" &&
                          contains(string_of(e.at("message")), closed) &&
                          contains(string_of(e.at("message")), "not readable"));
  EXPECT_TRUE(closed_failed) << boost::json::serialize(job);

  const std::string metrics = http_get(env.metrics_port(), "/metrics");
  EXPECT_EQ(
      metric_value(metrics, "satoru_target_unreadable_files{site=\"edge\",target=\"" +
                                satoru::target_hash("directory", data) + "\"}"),
      "2")
      << metrics;

  // Once the edge user may read everything, the warning and the list go.
  ::chmod((data + "/shadow").c_str(), 0644);
  ::chmod((data + "/ssl/private").c_str(), 0755);
  ::chmod((data + "/ssl/private/key.pem").c_str(), 0644);
  env.config["sites"].as_array()[0].as_object()["targets"].as_array().pop_back();
  env.write_config();
  daemon.stop();
  daemon.start();
  auto again = env.run({"run", "edge", "--wait"});
  EXPECT_EQ(again.exit_code, 0) << again.out << again.err;
  EXPECT_FALSE(fs::exists(list_file));
  EXPECT_EQ(metric_value(http_get(env.metrics_port(), "/metrics"),
                         "satoru_target_unreadable_files{site=\"edge\",target=\"" +
                             satoru::target_hash("directory", data) + "\"}"),
            "0");
}

TEST_F(EdgeHosts, EveryChildProcessGetsOnlyTheEnvironmentItNeeds) {
  edge_host host(env.path("edge"));
  ASSERT_TRUE(host.running());
  const std::string data = host.remote_root() + "/data";
  host.write_file(data + "/a.txt", "a");
  const std::string db = host.remote_root() + "/app.db";
  host.make_sqlite_db(db, "CREATE TABLE t(x); INSERT INTO t VALUES (1);");
  const std::string db2 = host.remote_root() + "/other.db";
  host.make_sqlite_db(db2, "CREATE TABLE t(x); INSERT INTO t VALUES (2);");
  env.add_site("edge", host,
               {{"directory", data}, {"sqlite_dump", db}, {"sqlite_dump", db2}});
  env.set_target_options(0, 2, {{"transfer", "gzip"}}); // a local gzip -d as well
  // The daemon's secrets: the repository password from its environment, and
  // something unrelated that no child may see.
  env.config.erase("restic_password_file");
  env.config["restic_password"] = {{"env", "SATORU_TEST_RESTIC_PASSWORD"}};
  env.write_config();

  // Each tool is first in PATH as a wrapper that records its own
  // /proc/PID/environ, then becomes the real tool (same pid, same environment).
  const std::string bin = env.path("spy-bin"), seen = env.path("seen");
  fs::create_directories(seen);
  const std::vector<std::string> tools{"rsync", "ssh", "sqlite3", "gzip", "restic"};
  for (const auto& tool : tools)
    write_file(bin + "/" + tool,
               "#!/bin/sh\ncat /proc/$$/environ > " + satoru::shell_quote(seen) + "/" +
                   tool + ".$$\nexec /usr/bin/" + tool + " \"$@\"\n",
               0755);
  const std::string old_path =
      std::getenv("PATH") ? std::getenv("PATH") : "/usr/bin:/bin";
  ::setenv("PATH", (bin + ":" + old_path).c_str(), 1);
  ::setenv("SATORU_TEST_RESTIC_PASSWORD", "correct horse battery staple", 1);
  ::setenv("SATORU_TEST_DAEMON_SECRET", "s3cr3t-of-the-daemon", 1);
  auto r = env.run({"run", "edge", "--wait"});
  ::setenv("PATH", old_path.c_str(), 1);
  ::unsetenv("SATORU_TEST_RESTIC_PASSWORD");
  ::unsetenv("SATORU_TEST_DAEMON_SECRET");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;

  // PWD is the child's working folder, set by the shells on the way (sh -c,
  // rsync's remote-shell start), not something of the daemon's.
  const std::set<std::string> base{"PATH", "LANG", "HOME", "PWD"};
  const std::set<std::string> rsync_vars{"LC_ALL", "RSYNC_OLD_ARGS",
                                         "RSYNC_PROTECT_ARGS"};
  std::map<std::string, int> runs;
  for (const auto& entry : fs::directory_iterator(seen)) {
    const std::string name = entry.path().filename().string();
    const std::string tool = name.substr(0, name.find('.'));
    ++runs[tool];
    std::string environ = read_file(entry.path().string());
    EXPECT_FALSE(contains(environ, "s3cr3t-of-the-daemon")) << tool << " got the secret";
    std::istringstream vars(environ);
    for (std::string var; std::getline(vars, var, '\0');) {
      const std::string key = var.substr(0, var.find('='));
      bool allowed = base.count(key) > 0 ||
                     ((tool == "rsync" || tool == "ssh") && rsync_vars.count(key) > 0) ||
                     (tool == "restic" && key.rfind("RESTIC_", 0) == 0);
      EXPECT_TRUE(allowed) << tool << " got " << key;
    }
    if (tool == "restic" && contains(environ, "RESTIC_REPOSITORY="))
      EXPECT_TRUE(contains(environ, "RESTIC_PASSWORD=correct horse battery staple"))
          << "restic needs its password";
    else
      EXPECT_FALSE(contains(environ, "correct horse battery staple")) << tool;
  }
  for (const auto& tool : tools)
    EXPECT_GT(runs[tool], 0) << "no " << tool << " child was seen";
}

TEST_F(EdgeHosts, TwoServersCopyingOneEdgeDatabaseAtOnceBothSucceed) {
  edge_host host(env.path("edge"));
  ASSERT_TRUE(host.running());
  const std::string db = host.remote_root() + "/app.db";
  std::string sql =
      "CREATE TABLE t(x); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT "
      "i+1 FROM n WHERE i < 20000) INSERT INTO t SELECT randomblob(200) FROM n;";
  host.make_sqlite_db(db, sql);
  const std::string tmp = host.remote_root() + "/tmp";
  fs::create_directories(tmp);
  const std::string hash = satoru::target_hash("sqlite_dump", db);
  // Another server's copy in progress (a fresh folder with a live process
  // in it), and the leftover of a run killed two days ago.
  const std::string foreign = tmp + "/satoru-" + hash + ".0123456789abcdef.AbCdEfGhIj";
  const std::string old = tmp + "/satoru-" + hash + ".fedcba9876543210.KlMnOpQrSt";
  fs::create_directories(foreign);
  fs::create_directories(old);
  pid_t busy = ::fork();
  if (busy == 0) {
    if (::chdir(foreign.c_str()) != 0) ::_exit(1);
    ::execl("/bin/sleep", "sleep", "300", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ASSERT_GT(busy, 0);
  write_file(foreign + "/pid", std::to_string(busy) + "\n", 0600);
  ASSERT_EQ(run_shell("touch -d '2 days ago' " + satoru::shell_quote(old)), 0);

  // The second server: its own config, database, staging and repository.
  satoru_env standby{"satoru-edge-standby"};
  for (auto* e : {&env, &standby}) {
    e->add_site("edge", host, {{"sqlite_dump", db}});
    e->set_target_options(0, 0, {{"remote_tmp_dir", tmp}});
    e->write_config();
  }
  daemon_process primary_daemon(env), standby_daemon(standby);
  primary_daemon.start();
  standby_daemon.start();
  cli_result a, b;
  std::thread first([&] { a = env.run({"run", "edge", "--wait"}); });
  std::thread second([&] { b = standby.run({"run", "edge", "--wait"}); });
  first.join();
  second.join();
  EXPECT_EQ(a.exit_code, 0) << a.out << a.err << primary_daemon.log();
  EXPECT_EQ(b.exit_code, 0) << b.out << b.err << standby_daemon.log();

  // The other server's folder and process are untouched; the old leftover
  // is gone; neither backup left a folder of its own.
  EXPECT_TRUE(fs::exists(foreign + "/pid"));
  EXPECT_EQ(::kill(busy, 0), 0) << "the other server's sqlite3 was stopped";
  EXPECT_FALSE(fs::exists(old));
  std::vector<std::string> left;
  for (const auto& entry : fs::directory_iterator(tmp))
    left.push_back(entry.path().string());
  EXPECT_EQ(left, std::vector<std::string>{foreign});
  ::kill(busy, SIGKILL);
  ::waitpid(busy, nullptr, 0);

  for (auto* e : {&env, &standby}) {
    std::string count;
    run_shell("sqlite3 " +
                  satoru::shell_quote(
                      satoru::staging_path(e->path("staging"),
                                           satoru::derive_site_uuid("edge"), hash) +
                      "/app.db") +
                  " 'SELECT count(*) FROM t'",
              &count);
    EXPECT_EQ(count, "20000\n");
  }
}

TEST_F(EdgeHosts, TheEdgeDatabaseIsOpenedReadOnlySoAHotJournalIsNotRolledBack) {
  edge_host host(env.path("edge"));
  ASSERT_TRUE(host.running());
  const std::string db = host.remote_root() + "/app.db";
  // An application that died in the middle of a transaction: its changes
  // are in the file, the journal that undoes them is beside it.
  ASSERT_EQ(run_shell("python3 -c " +
                      satoru::shell_quote("import sqlite3, os\n"
                                          "c = sqlite3.connect('" +
                                          db +
                                          "')\n"
                                          "c.execute('CREATE TABLE t(x)')\n"
                                          "c.executemany('INSERT INTO t VALUES (?)', "
                                          "[('a' * 500,) for _ in range(200)])\n"
                                          "c.commit()\n"
                                          "c.isolation_level = None\n"
                                          "c.execute('PRAGMA cache_size=1')\n"
                                          "c.execute('BEGIN')\n"
                                          "c.execute('UPDATE t SET x = upper(x)')\n"
                                          "c.execute('INSERT INTO t SELECT x FROM t')\n"
                                          "os._exit(0)\n")),
            0);
  ASSERT_TRUE(fs::exists(db + "-journal"));
  const std::string db_before = read_file(db),
                    journal_before = read_file(db + "-journal");
  env.add_site("edge", host, {{"sqlite_dump", db}});
  env.write_config();

  auto r = env.run({"run", "edge", "--wait"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_TRUE(contains(r.out + r.err, "hot journal")) << r.out << r.err;
  EXPECT_TRUE(read_file(db) == db_before) << "the production database was changed";
  EXPECT_TRUE(read_file(db + "-journal") == journal_before)
      << "the journal was rolled back";
}

TEST_F(EdgeHosts, RemoteOutputInEventsAndHealthIsCappedToItsEnd) {
  // An edge host whose sqlite3 fails after printing 200 KB on one line.
  const std::string fake = env.path("fake-bin");
  write_file(
      fake + "/sqlite3",
      "#!/bin/sh\nhead -c 200000 /dev/zero | tr '\\0' x >&2\necho ' the real cause' "
      ">&2\nexit 1\n",
      0755);
  edge_host::options hostile;
  hostile.remote_path = fake + ":/usr/bin:/bin";
  edge_host host(env.path("edge"), hostile);
  ASSERT_TRUE(host.running());
  const std::string db = host.remote_root() + "/app.db";
  host.make_sqlite_db(db, "CREATE TABLE t(x);");
  const std::string data = host.remote_root() + "/data";
  host.write_file(data + "/a", "a");
  env.add_site("edge", host, {{"sqlite_dump", db}, {"directory", data}});
  env.write_config();

  auto r = env.run({"run", "edge", "--wait"});
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  auto job = job_json(env, parse_id(r));
  bool cut = false;
  // A message is a short sentence around the last 4 KiB of remote output.
  for (const auto& e : job.at("events").as_array()) {
    const std::string message = string_of(e.at("message"));
    EXPECT_LE(message.size(), 4096u + 400) << string_of(e.at("step"));
    cut = cut ||
          (contains(message, "[cut: the first") && contains(message, "the real cause"));
  }
  EXPECT_TRUE(cut) << boost::json::serialize(job);
  EXPECT_LE(string_of(job.at("error")).size(), 2 * (4096u + 400));
  auto sites = parse_json(env.run({"sites", "--json"}));
  const std::string reason = string_of(sites.as_array().at(0).at("health_reason"));
  EXPECT_LE(reason.size(), 2 * (4096u + 400)) << reason.size();
}

TEST_F(EdgeHosts, TrustPinsOnlyTheShownKeyAndAChangedKeyFailsWithBothFingerprints) {
  edge_host host(env.path("edge"));
  ASSERT_TRUE(host.running());
  const std::string data = host.remote_root() + "/data";
  host.write_file(data + "/a", "a");
  const std::string known_hosts = env.path("pinned_known_hosts");
  env.add_site("edge", host, {{"directory", data}});
  env.config["sites"].as_array()[0].as_object()["ssh"].as_object()["known_hosts_file"] =
      known_hosts;
  env.write_config();
  const std::string shown = sha256_fingerprint(host.host_key_pub());
  ASSERT_EQ(shown.rfind("SHA256:", 0), 0u) << shown;
  const std::string wrong = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

  auto refused = env.run({"trust", "edge", "--yes", "--fingerprint", wrong});
  EXPECT_EQ(refused.exit_code, 1) << refused.out << refused.err;
  EXPECT_TRUE(contains(refused.err, shown) && contains(refused.err, wrong))
      << refused.err;
  EXPECT_EQ(read_file(known_hosts), "") << "a key that was not shown got pinned";

  auto pinned = env.run({"trust", "edge", "--yes", "--fingerprint", shown});
  EXPECT_EQ(pinned.exit_code, 0) << pinned.out << pinned.err;
  EXPECT_TRUE(contains(pinned.out, shown)) << pinned.out;
  EXPECT_EQ(env.run({"trust", "edge", "--rotate"}).exit_code, 2);

  // The host is reinstalled: a new host key.
  host.stop();
  fs::remove(host.dir() + "/host_key");
  fs::remove(host.dir() + "/host_key.pub");
  host.restart();
  ASSERT_TRUE(host.running());
  const std::string fresh = sha256_fingerprint(host.host_key_pub());
  ASSERT_NE(fresh, shown);

  daemon_process daemon(env);
  daemon.start();
  auto job = env.run({"run", "edge", "--job", "preflight", "--wait"});
  EXPECT_EQ(job.exit_code, 1) << job.out << job.err;
  auto failed = job_json(env, parse_id(job));
  const std::string error = string_of(failed.at("error"));
  EXPECT_TRUE(contains(error, fresh) && contains(error, shown)) << error;
  EXPECT_TRUE(contains(error, "satoru trust edge --rotate --fingerprint " + fresh))
      << error;
  auto ssh_event = event_of(failed, "preflight.ssh");
  EXPECT_EQ(ssh_event.at("data").at("host_key_mismatch"), true);
  EXPECT_EQ(metric_value(http_get(env.metrics_port(), "/metrics"),
                         "satoru_site_host_key_mismatch{site=\"edge\"}"),
            "1");

  // Plain --yes does not replace a pinned key; --rotate with the new one does.
  auto plain = env.run({"trust", "edge", "--yes"});
  EXPECT_EQ(plain.exit_code, 1) << plain.out;
  EXPECT_TRUE(contains(plain.err, "--rotate --fingerprint " + fresh)) << plain.err;
  auto rotated = env.run({"trust", "edge", "--rotate", "--fingerprint", fresh});
  EXPECT_EQ(rotated.exit_code, 0) << rotated.out << rotated.err;
  auto ok = env.run({"run", "edge", "--job", "preflight", "--wait"});
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  EXPECT_EQ(metric_value(http_get(env.metrics_port(), "/metrics"),
                         "satoru_site_host_key_mismatch{site=\"edge\"}"),
            "0");
}

namespace {

/// A site with a folder and two databases (rsync and gzip + SFTP transfers)
/// in `root`, readable by any edge user; returns {folder, db, db2}.
std::vector<std::string> add_every_transfer(satoru_env& env, const edge_host& host,
                                            const std::string& root) {
  const std::string data = root + "/data", db = root + "/app.db", db2 = root + "/gz.db";
  write_file(data + "/a.txt", "alpha\n", 0644);
  write_file(data + "/sub/b.txt", "beta\n", 0644);
  for (const auto& path : {db, db2}) {
    EXPECT_EQ(run_shell("sqlite3 " + satoru::shell_quote(path) +
                        " 'CREATE TABLE t(x); INSERT INTO t VALUES (42);'"),
              0);
    ::chmod(path.c_str(), 0644);
  }
  env.add_site("edge", host,
               {{"directory", data}, {"sqlite_dump", db}, {"sqlite_dump", db2}});
  env.set_target_options(0, 2, {{"transfer", "gzip"}});
  env.write_config();
  return {data, db, db2};
}

/// Restores every target of `paths` and checks the content came back.
void expect_restored(const satoru_env& env, const std::vector<std::string>& paths) {
  for (std::size_t i = 0; i < paths.size(); ++i) {
    const std::string to = env.path("restored-" + std::to_string(i));
    auto r = env.run({"restore", "edge", paths[i], "--to", to});
    ASSERT_EQ(r.exit_code, 0) << paths[i] << "\n" << r.out << r.err;
    if (i == 0) {
      EXPECT_EQ(read_file(to + "/sub/b.txt"), "beta\n");
    } else {
      std::string value;
      run_shell(
          "sqlite3 " +
              satoru::shell_quote(to + "/" + fs::path(paths[i]).filename().string()) +
              " 'SELECT x FROM t'",
          &value);
      EXPECT_EQ(value, "42\n") << paths[i];
    }
  }
}

} // namespace

TEST_F(EdgeHosts, DashAsLoginShellWithBusyBoxFirstInPathBacksUpEveryTransfer) {
  if (satoru::find_in_path("busybox").empty())
    GTEST_SKIP() << "busybox is not installed (scripts/bootstrap installs it)";
  test_user user("/bin/dash");
  ASSERT_TRUE(user.created());
  // Every BusyBox applet (sh, find, mktemp, readlink, gzip, dd, df, ...)
  // comes before the real tools; sqlite3 and rsync are not applets.
  const std::string applets = env.path("busybox-bin");
  fs::create_directories(applets);
  ::chmod(env.dir().c_str(), 0755); // the edge user runs the applets from here
  ASSERT_EQ(run_shell("for a in $(busybox --list); do ln -s /usr/bin/busybox " +
                      satoru::shell_quote(applets) + "/$a; done"),
            0);
  edge_host::options opts;
  opts.login_user = user.name();
  opts.remote_path = applets + ":/usr/bin:/bin";
  edge_host host(env.path("edge"), opts);
  ASSERT_TRUE(host.running());
  public_dir fs_root;
  auto paths = add_every_transfer(env, host, fs_root.dir.path());

  auto r = env.run({"run", "edge", "--wait"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  expect_restored(env, paths);
  // Nothing of ours is left in the edge host's /tmp.
  std::string left;
  run_shell("ls -d /tmp/satoru-" + satoru::target_hash("sqlite_dump", paths[1]) +
                ".* 2>/dev/null",
            &left);
  EXPECT_EQ(left, "");
}

TEST_F(EdgeHosts, ALoginShellThatPrintsTextIsNamedByPreflightAndASlowOneWorks) {
  test_user user("/bin/bash");
  ASSERT_TRUE(user.created());
  edge_host::options opts;
  opts.login_user = user.name();
  edge_host host(env.path("edge"), opts);
  ASSERT_TRUE(host.running());
  public_dir fs_root;
  auto paths = add_every_transfer(env, host, fs_root.dir.path());
  const std::string bashrc = user.home() + "/.bashrc";

  // bash reads ~/.bashrc for commands run by sshd: a greeting there goes
  // into rsync's protocol stream.
  write_file(bashrc, "echo 'Welcome to edge-01'\n", 0644);
  ASSERT_EQ(::chown(bashrc.c_str(), user.uid(), user.gid()), 0);
  auto chatty = env.run({"run", "edge", "--wait"});
  EXPECT_EQ(chatty.exit_code, 1) << chatty.out << chatty.err;
  const std::string expected = "the login shell of " + user.name() +
                               " on 127.0.0.1 prints text; rsync needs a clean shell";
  EXPECT_TRUE(contains(chatty.out + chatty.err, expected)) << chatty.out << chatty.err;

  // Slow but quiet startup files are fine.
  write_file(bashrc, "sleep 1\nexport EDGE_GREETING=hello\n", 0644);
  auto slow = env.run({"run", "edge", "--wait"});
  ASSERT_EQ(slow.exit_code, 0) << slow.out << slow.err;
  expect_restored(env, paths);
}

TEST_F(EdgeHosts, AnIpv6LiteralHostWorksForSshRsyncAndSftp) {
  edge_host::options opts;
  opts.ipv6 = true;
  edge_host host(env.path("edge"), opts);
  ASSERT_TRUE(host.running()) << "no IPv6 loopback on this machine";
  const std::string known_hosts = env.path("v6_known_hosts");
  auto paths = add_every_transfer(env, host, host.remote_root());
  env.config["sites"].as_array()[0].as_object()["ssh"].as_object()["known_hosts_file"] =
      known_hosts;
  env.write_config();

  auto trusted = env.run({"trust", "edge", "--yes"});
  ASSERT_EQ(trusted.exit_code, 0) << trusted.out << trusted.err;
  EXPECT_TRUE(contains(read_file(known_hosts), "[::1]:" + std::to_string(host.port())))
      << read_file(known_hosts);
  auto r = env.run({"run", "edge", "--wait"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  expect_restored(env, paths);
}

TEST_F(EdgeHosts, AHostnameWorksForSshRsyncAndSftp) {
  edge_host host(env.path("edge"));
  ASSERT_TRUE(host.running());
  const std::string known_hosts = env.path("name_known_hosts");
  auto paths = add_every_transfer(env, host, host.remote_root());
  auto& site = env.config["sites"].as_array()[0].as_object();
  site["host"] = "localhost";
  site["ssh"].as_object()["known_hosts_file"] = known_hosts;
  env.write_config();

  auto trusted = env.run({"trust", "edge", "--yes"});
  ASSERT_EQ(trusted.exit_code, 0) << trusted.out << trusted.err;
  EXPECT_TRUE(
      contains(read_file(known_hosts), "[localhost]:" + std::to_string(host.port())))
      << read_file(known_hosts);
  auto r = env.run({"run", "edge", "--wait"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  expect_restored(env, paths);
}

TEST_F(EdgeHosts, OwnersGroupsAndModesComeBackExactlyFromADaemonThatIsNotRoot) {
  const passwd* service = ::getpwnam("satoru");
  if (service == nullptr)
    GTEST_SKIP() << "needs the local user satoru (scripts/bootstrap creates it)";
  test_user alice, bob;
  ASSERT_TRUE(alice.created() && bob.created());
  edge_host host(env.path("edge")); // root on the edge: it reads everything
  ASSERT_TRUE(host.running());
  // Owners, groups and modes that a receiver without root loses: other
  // users' files, a group that is not the owner's, no owner-read bit, setgid
  // and sticky folders, a setuid program, a FIFO, hard and symbolic links.
  const std::string data = host.remote_root() + "/srv";
  auto own = [](const std::string& path, int uid, int gid, mode_t mode) {
    ASSERT_EQ(::lchown(path.c_str(), uid, gid), 0) << path;
    if (!fs::is_symlink(path)) {
      ASSERT_EQ(::chmod(path.c_str(), mode), 0) << path;
    }
  };
  write_file(data + "/alice.txt", "alice only\n", 0600);
  own(data + "/alice.txt", alice.uid(), alice.gid(), 0600);
  write_file(data + "/shared.txt", "alice writes, bob's group reads\n", 0640);
  own(data + "/shared.txt", alice.uid(), bob.gid(), 0640);
  write_file(data + "/locked", "no one may read this, not even its owner\n", 0);
  own(data + "/locked", bob.uid(), bob.gid(), 0000);
  write_file(data + "/team/plan.txt", "bob's plan\n", 0660);
  own(data + "/team/plan.txt", bob.uid(), bob.gid(), 0660);
  own(data + "/team", 0, bob.gid(), 02770);
  write_file(data + "/drop/note", "x", 0644);
  own(data + "/drop", 0, 0, 01777);
  write_file(data + "/bin/tool", "#!/bin/sh\n", 04755);
  own(data + "/bin/tool", 0, 0, 04755);
  ASSERT_EQ(::link((data + "/alice.txt").c_str(), (data + "/alice-again.txt").c_str()),
            0);
  ASSERT_EQ(::mkfifo((data + "/pipe").c_str(), 0620), 0);
  own(data + "/pipe", alice.uid(), bob.gid(), 0620);
  fs::create_symlink("alice.txt", data + "/link");
  ::chmod(data.c_str(), 0755);
  const auto edge = attributes_under(data);

  env.add_site("edge", host, {{"directory", data}});
  env.write_config();
  // The daemon as the service user, with the client key it is given.
  env.hand_to("satoru", &host);
  daemon_process daemon(env);
  daemon.start();
  auto r = env.run({"run", "edge", "--wait"});
  // Success, not a warning: restic (as satoru) read every staged file,
  // the 0000 one included.
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << daemon.log();
  daemon.stop();

  // Everything satoru made is its own and private.
  for (const auto& made : {env.path("staging"), env.path("repo"), env.path("state")}) {
    struct stat st {};
    ASSERT_EQ(::stat(made.c_str(), &st), 0) << made;
    EXPECT_EQ(st.st_uid, service->pw_uid) << made;
    EXPECT_EQ(st.st_mode & 077, 0u) << made << " is open to others";
  }
  // Staged as satoru, with the edge's owner and mode in the xattr rsync
  // --fake-super writes ("mode major,minor uid:gid", octal mode with type).
  const std::string staged = staging_of("edge", "directory", data);
  struct stat locked {};
  ASSERT_EQ(::stat((staged + "/locked").c_str(), &locked), 0);
  EXPECT_EQ(locked.st_uid, service->pw_uid);
  EXPECT_EQ(xattr_of(staged + "/locked", "user.rsync.%stat"),
            "100000 0,0 " + std::to_string(bob.uid()) + ":" + std::to_string(bob.gid()));

  // A restore as root gives back exactly the edge's owners, groups, modes,
  // FIFO, links and contents, and leaves no bookkeeping xattrs behind.
  const std::string restored = env.path("restored");
  auto rr = env.run_as_root({"restore", "edge", data, "--to", restored});
  ASSERT_EQ(rr.exit_code, 0) << rr.out << rr.err;
  EXPECT_EQ(attributes_under(restored), edge);
  EXPECT_EQ(read_file(restored + "/locked"),
            "no one may read this, not even its owner\n");
  EXPECT_EQ(read_file(restored + "/team/plan.txt"), "bob's plan\n");
  struct stat a {
  }, b{};
  ASSERT_EQ(::stat((restored + "/alice.txt").c_str(), &a), 0);
  ASSERT_EQ(::stat((restored + "/alice-again.txt").c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino) << "the hard link came back as a copy";
  EXPECT_EQ(xattr_of(restored + "/locked", "user.rsync.%stat"), "");
  // root's restore ran restic as the repository's owner: nothing in the
  // repository or restic's cache became root's (a root lock there is one
  // the daemon cannot read).
  for (const auto& kept : {env.path("repo"), env.path("repo") + "-cache"}) {
    const auto foreign = not_owned_by(kept, service->pw_uid);
    EXPECT_TRUE(foreign.empty()) << "not satoru's: " << foreign.front();
  }
  // The private scratch folder beside --to is gone.
  for (const auto& entry : fs::directory_iterator(env.dir()))
    EXPECT_EQ(entry.path().filename().string().rfind(".satoru-restore-", 0),
              std::string::npos)
        << entry.path();
}

TEST_F(EdgeHosts, SudoWithTheDocumentedSudoersLinesBacksUpWhatTheEdgeUserCannotRead) {
  if (!fs::exists("/usr/bin/sudo") || !fs::is_directory("/etc/sudoers.d"))
    GTEST_SKIP() << "needs sudo with /etc/sudoers.d (scripts/bootstrap installs it)";
  test_user user;
  ASSERT_TRUE(user.created());
  edge_host::options as_user;
  as_user.login_user = user.name();
  edge_host host(env.path("edge"), as_user);
  ASSERT_TRUE(host.running());
  public_dir fs_root;
  const std::string data = fs_root / "etc";
  write_file(data + "/hostname", "edge-01\n", 0644);
  write_file(data + "/shadow", "root:*:1:0:99999:7:::\n", 0600); // root's
  ::chmod(data.c_str(), 0755);
  // A database in a folder only root may enter, under a steady writer.
  const std::string db_dir = fs_root / "private";
  fs::create_directories(db_dir);
  ::chmod(db_dir.c_str(), 0700);
  const std::string db = db_dir + "/app.db";
  ASSERT_EQ(run_shell("sqlite3 " + satoru::shell_quote(db) +
                      " 'PRAGMA journal_mode=WAL; CREATE TABLE t(x); INSERT INTO t "
                      "VALUES (42);' >/dev/null"),
            0);
  ::chmod(db.c_str(), 0600);
  // The edge helper, installed root-owned as docs/operations.md says.
  const std::string helper = fs_root / "satoru-sqlite-copy";
  fs::copy_file(std::string(SATORU_SOURCE_DIR) +
                    "/plugins/sqlite_dump/edge/satoru-sqlite-copy",
                helper);
  ::chmod(helper.c_str(), 0755);

  env.add_site("edge", host, {{"directory", data}, {"sqlite_dump", db}});
  env.set_target_options(0, 1, {{"sudo_helper", helper}});
  env.config["sites"].as_array()[0].as_object()["sudo"] = true;
  env.write_config();
  daemon_process daemon(env);
  daemon.start();

  // Configured but not allowed (no sudoers lines): preflight fails each
  // target with one line naming the site, the user and the command, before
  // any transfer.
  auto denied = env.run({"run", "edge", "--wait"});
  EXPECT_NE(denied.exit_code, 0) << denied.out << denied.err;
  const std::string who =
      "site edge has sudo configured but " + user.name() + " on 127.0.0.1 may not run ";
  const auto job = job_json(env, parse_id(denied));
  for (const std::string& command :
       {std::string("rsync"), "the SQLite copy helper " + helper}) {
    const std::string expected = who + command + " under sudo without a password";
    std::string said;
    for (const auto& e : job.at("events").as_array())
      if (string_of(e.at("level")) == "fail" &&
          contains(string_of(e.at("message")), expected))
        said = string_of(e.at("message"));
    EXPECT_FALSE(said.empty()) << expected << "\n" << denied.out << denied.err;
    EXPECT_FALSE(contains(said, "\n")) << said;
  }

  // With the documented lines: success, the file only root may read is in
  // the snapshot, and so is the database the user cannot even see.
  const auto lines = documented_sudoers_lines("docs/operations.md", user.name(), helper);
  EXPECT_EQ(std::count(lines.begin(), lines.end(), '\n'), 2)
      << "docs/operations.md has one sudoers line for rsync and one for the SQLite "
         "copy helper";
  sudoers_file allowed(lines);
  std::atomic<bool> writing{true};
  std::thread writer([&] {
    for (int i = 0; writing; ++i)
      run_shell("sqlite3 " + satoru::shell_quote(db) +
                " '.timeout 5000' 'INSERT INTO t "
                "VALUES (" +
                std::to_string(1000 + i) + ")'");
  });
  auto r = env.run({"run", "edge", "--wait"});
  writing = false;
  writer.join();
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err << daemon.log();
  const std::string restored = env.path("restored");
  auto rr = env.run({"restore", "edge", data, "--to", restored});
  ASSERT_EQ(rr.exit_code, 0) << rr.out << rr.err;
  EXPECT_EQ(read_file(restored + "/shadow"), "root:*:1:0:99999:7:::\n");
  EXPECT_EQ(read_file(restored + "/hostname"), "edge-01\n");
  const std::string restored_db = env.path("restored-db");
  auto rd = env.run({"restore", "edge", db, "--to", restored_db});
  ASSERT_EQ(rd.exit_code, 0) << rd.out << rd.err;
  std::string check;
  run_shell("sqlite3 " + satoru::shell_quote(restored_db + "/app.db") +
                " 'PRAGMA integrity_check; SELECT x FROM t WHERE x = 42'",
            &check);
  EXPECT_EQ(check, "ok\n42\n");
  // Nothing of the copy is left on the edge host: not the edge user's temp
  // folder, not the helper's own copy.
  std::string left;
  run_shell("ls -d /tmp/satoru-" + satoru::target_hash("sqlite_dump", db) +
                ".* /tmp/satoru-sqlite-copy.* 2>/dev/null",
            &left);
  EXPECT_EQ(left, "");
}
