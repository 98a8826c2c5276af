// The backup pipeline as an operator uses it: `satoru run SITE --wait` pulls
// over a real sshd (rsync, sqlite3), snapshots into a real restic repository,
// and `satoru snapshots` / `satoru restore` / `satoru sites --json` show and
// give back exactly what was on the edge host.
#include "satoru_env.hpp"

#include "satoru/disk_headroom.hpp"
#include "satoru/identity.hpp"

#include <gtest/gtest.h>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

using namespace satoru::testing;
using satoru::sha256_hex;
using namespace std::chrono_literals;

namespace {

/// A name as a test message can show it (newlines and high bytes escaped).
std::string printable(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}

/// One entry of a folder tree, everything a faithful restore must give back.
struct tree_entry {
  char type = '?'; ///< f file, d folder, l symlink
  unsigned mode = 0;
  unsigned uid = 0, gid = 0;
  std::string content; ///< file bytes or symlink target
  long long mtime = 0; ///< files only (seconds)
  bool operator==(const tree_entry& o) const {
    return type == o.type && mode == o.mode && uid == o.uid && gid == o.gid &&
           content == o.content && mtime == o.mtime;
  }
};

std::string describe(const tree_entry& e) {
  std::ostringstream s;
  s << e.type << " mode " << std::oct << e.mode << std::dec << " uid " << e.uid << " gid "
    << e.gid << " mtime " << e.mtime << " " << e.content.size() << " bytes";
  if (e.type == 'l') s << " -> " << printable(e.content);
  return s.str();
}

/// Walks a tree with lstat and raw byte names (no UTF-8 assumptions).
void walk(const std::string& root, const std::string& rel,
          std::map<std::string, tree_entry>& out) {
  const std::string dir = rel.empty() ? root : root + "/" + rel;
  DIR* d = ::opendir(dir.c_str());
  if (!d) {
    ADD_FAILURE() << "cannot open " << printable(dir);
    return;
  }
  while (auto* ent = ::readdir(d)) {
    std::string name = ent->d_name;
    if (name == "." || name == "..") continue;
    const std::string child_rel = rel.empty() ? name : rel + "/" + name;
    const std::string path = root + "/" + child_rel;
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) {
      ADD_FAILURE() << "cannot lstat " << printable(path);
      continue;
    }
    tree_entry e;
    e.mode = st.st_mode & 07777;
    e.uid = st.st_uid;
    e.gid = st.st_gid;
    if (S_ISLNK(st.st_mode)) {
      e.type = 'l';
      std::string target(4096, '\0');
      auto n = ::readlink(path.c_str(), target.data(), target.size());
      target.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
      e.content = target;
      e.mode = 0; // symlink modes mean nothing on Linux
    } else if (S_ISDIR(st.st_mode)) {
      e.type = 'd';
      walk(root, child_rel, out);
    } else if (S_ISREG(st.st_mode)) {
      e.type = 'f';
      e.content = read_file(path);
      e.mtime = st.st_mtime;
    }
    out[child_rel] = e;
  }
  ::closedir(d);
}

std::map<std::string, tree_entry> tree_of(const std::string& root) {
  std::map<std::string, tree_entry> out;
  walk(root, "", out);
  return out;
}

/// Every difference between two trees, one line each ("" when equal).
std::string tree_diff(const std::map<std::string, tree_entry>& want,
                      const std::map<std::string, tree_entry>& got) {
  std::string out;
  for (const auto& [name, e] : want) {
    auto it = got.find(name);
    if (it == got.end())
      out += "missing: " + printable(name) + "\n";
    else if (!(it->second == e))
      out += "differs: " + printable(name) + ": want " + describe(e) + ", got " +
             describe(it->second) + "\n";
  }
  for (const auto& [name, e] : got)
    if (!want.count(name)) out += "extra: " + printable(name) + "\n";
  return out;
}

void write_bytes(const std::string& path, const std::string& content, mode_t mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ASSERT_GE(fd, 0) << printable(path);
  ASSERT_EQ(::write(fd, content.data(), content.size()),
            static_cast<ssize_t>(content.size()));
  ::close(fd);
  ASSERT_EQ(::chmod(path.c_str(), mode), 0);
}

/// SHA-256 of a file: big contents compare without flooding the log.
std::string digest(const std::string& path) {
  return satoru::sha256_hex(read_file(path));
}

std::string random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 gen{seed};
  std::string out(n, '\0');
  for (auto& c : out)
    c = static_cast<char>(gen() & 0xff);
  return out;
}

/// The folder every faithful restore must reproduce: hostile names, modes,
/// owners, symlinks (relative, absolute, dangling), a hard link, empty folders.
void make_hostile_tree(const std::string& root) {
  ASSERT_EQ(::mkdir(root.c_str(), 0755), 0) << root;
  auto file = [&](const std::string& name, const std::string& content, mode_t mode) {
    write_bytes(root + "/" + name, content, mode);
  };
  auto dir = [&](const std::string& name, mode_t mode) {
    ASSERT_EQ(::mkdir((root + "/" + name).c_str(), 0700), 0) << printable(name);
    ASSERT_EQ(::chmod((root + "/" + name).c_str(), mode), 0);
  };
  file("plain.txt", "hello\n", 0644);
  file("name with spaces.txt", "spaces\n", 0644);
  file("it's single", "single quote\n", 0644);
  file("say \"double\"", "double quote\n", 0644);
  file("$(touch satoru-pwned)", "command substitution\n", 0644);
  file("`touch satoru-pwned`", "backticks\n", 0644);
  file("semi;colon; touch satoru-pwned", "semicolon\n", 0644);
  file("-leading-dash", "dash\n", 0644);
  file("--delete", "an rsync flag as a name\n", 0644);
  file("new\nline", "newline in the name\n", 0644);
  file(std::string("bad \xff\xfe byte"), "not UTF-8\n", 0644);
  file("\xc3\xbcnic\xc3\xb6"
       "de.txt",
       "UTF-8\n", 0644);
  file("glob*?[x]", "glob characters\n", 0644);
  file("empty.txt", "", 0644);
  file("exec.sh", "#!/bin/sh\necho hi\n", 0755);
  file("private.key", "secret\n", 0600);
  file("readonly.txt", "read only\n", 0444);
  file("binary.bin", random_bytes(300 * 1024, 1), 0640);
  file("big.bin", random_bytes(3 * 1024 * 1024, 2), 0644);
  file("owned", "someone else's\n", 0644);
  ASSERT_EQ(::lchown((root + "/owned").c_str(), 1234, 2345), 0);
  dir("sub dir", 0750);
  dir("sub dir/nested 'q'", 0755);
  file("sub dir/nested 'q'/deep.txt", "deep\n", 0600);
  dir("empty dir", 0755);
  dir("nested", 0700);
  dir("nested/empty", 0711);
  dir("nested/empty/inner", 0755);
  ASSERT_EQ(::symlink("plain.txt", (root + "/link to plain").c_str()), 0);
  ASSERT_EQ(::symlink("no/such/file", (root + "/dangling").c_str()), 0);
  ASSERT_EQ(::symlink("/etc/hostname", (root + "/absolute link").c_str()), 0);
  ASSERT_EQ(::symlink("sub dir", (root + "/dir link").c_str()), 0);
  ASSERT_EQ(::symlink("new\nline", (root + "/link to newline").c_str()), 0);
  ASSERT_EQ(::link((root + "/plain.txt").c_str(), (root + "/hard link").c_str()), 0);
  // Fixed times so the comparison covers them (rsync -a and restic keep them).
  ASSERT_EQ(run_shell("find " + satoru::shell_quote(root) +
                      " -type f -exec touch -d '2021-02-03 04:05:06' {} +"),
            0);
}

boost::json::object site_json(const satoru_env& env, const std::string& name) {
  auto r = env.run({"sites", "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto sites = parse_json(r);
  if (sites.is_array())
    for (auto& s : sites.as_array())
      if (s.at("name").as_string() == name) return s.as_object();
  ADD_FAILURE() << "no site " << name << " in " << r.out;
  return {};
}

/// The site's row for one target in `satoru sites --json`.
boost::json::object target_json(const satoru_env& env, const std::string& site,
                                const std::string& path) {
  auto s = site_json(env, site);
  for (auto& t : s.at("targets").as_array())
    if (t.at("path").as_string() == path) return t.as_object();
  ADD_FAILURE() << "no target " << path << " in " << boost::json::serialize(s);
  return {};
}

boost::json::array snapshots_json(const satoru_env& env,
                                  const std::vector<std::string>& filter) {
  std::vector<std::string> args{"snapshots", "--json"};
  args.insert(args.end(), filter.begin(), filter.end());
  auto r = env.run(args);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  auto v = parse_json(r);
  return v.is_array() ? v.as_array() : boost::json::array{};
}

/// Bytes restic added to the repository for each snapshot of a job, from
/// its "snapshot" events.
std::int64_t data_added(const satoru_env& env, std::int64_t job) {
  std::int64_t sum = 0;
  int snapshots = 0;
  auto events = job_json(env, job).at("events");
  for (auto& e : events.as_array()) {
    const auto& o = e.as_object();
    if (o.at("step").as_string() != "snapshot" || !o.contains("data")) continue;
    const auto* added = o.at("data").as_object().if_contains("data_added");
    if (!added) continue; // an unchanged target's snapshot was skipped
    sum += added->to_number<std::int64_t>();
    ++snapshots;
  }
  EXPECT_GT(snapshots, 0) << "no snapshot events in job " << job;
  return sum;
}

/// The snapshots a job skipped because staging was unchanged: target hash →
/// the snapshot its event names as still current.
std::map<std::string, std::string> skipped_snapshots(const satoru_env& env,
                                                     std::int64_t job) {
  std::map<std::string, std::string> out;
  auto events = job_json(env, job).at("events");
  for (auto& e : events.as_array()) {
    const auto& o = e.as_object();
    if (o.at("step").as_string() != "snapshot" || !o.contains("data")) continue;
    const auto& data = o.at("data").as_object();
    if (!data.contains("skipped")) continue;
    EXPECT_TRUE(
        contains(std::string(o.at("message").as_string()), "unchanged, last snapshot"))
        << boost::json::serialize(o);
    out[std::string(o.at("target").as_string())] =
        std::string(data.at("snapshot_id").as_string());
  }
  return out;
}

/// site_targets.last_success_at (Unix ms) per target hash.
std::map<std::string, std::int64_t> last_success_ms(const satoru_env& env) {
  std::string out;
  run_shell("sqlite3 '" + env.path("state/satoru.db") +
                "' 'SELECT target_hash, last_success_at FROM site_targets'",
            &out);
  std::map<std::string, std::int64_t> rows;
  std::istringstream lines{out};
  for (std::string line; std::getline(lines, line);) {
    auto bar = line.find('|');
    if (bar != std::string::npos)
      rows[line.substr(0, bar)] = std::atoll(line.c_str() + bar + 1);
  }
  return rows;
}

/// `satoru run ...` as a child process of the test, to be killed mid-job.
class satoru_child {
public:
  satoru_child(const satoru_env& env, std::vector<std::string> args, std::string log)
      : log_(std::move(log)) {
    std::vector<std::string> argv{SATORU_BIN, "--config", env.config_path()};
    argv.insert(argv.end(), args.begin(), args.end());
    pid_ = ::fork();
    if (pid_ == 0) {
      int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      std::vector<char*> raw;
      for (auto& a : argv)
        raw.push_back(a.data());
      raw.push_back(nullptr);
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, nullptr);
      ::execv(raw[0], raw.data());
      ::_exit(127);
    }
  }
  ~satoru_child() { kill(SIGKILL); }
  /// Sends `sig` and reaps the process; returns its wait status.
  int kill(int sig) {
    if (pid_ <= 0) return -1;
    ::kill(pid_, sig);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = 0;
    return status;
  }
  std::string log() const { return read_file(log_); }

private:
  std::string log_;
  pid_t pid_ = -1;
};

struct Backup : ::testing::Test {
  satoru_env env{"satoru-backup"};
  edge_host host{env.path("edge")};

  void SetUp() override { ASSERT_TRUE(host.running()); }

  /// Runs a backup of `site` in this process and returns its job id.
  std::int64_t backup(const std::string& site, int expect_exit = 0) {
    auto r = env.run({"run", site, "--wait"});
    EXPECT_EQ(r.exit_code, expect_exit) << r.out << r.err;
    return parse_id(r);
  }

  /// Staging folder of a target, from `satoru sites --json`.
  std::string staging_of(const std::string& site, const std::string& path) {
    return env.path("staging") + "/" + string_of(site_json(env, site).at("uuid")) + "/" +
           string_of(target_json(env, site, path).at("hash"));
  }
};

} // namespace

TEST_F(Backup, RestoreGivesBackEveryNameModeOwnerAndLinkByteForByte) {
  // The target folder's own name is hostile too.
  const std::string data = host.remote_root() + "/app data 'live' $(x)";
  make_hostile_tree(data);
  env.add_site("edge", host, {{"directory", data}});
  env.write_config();

  backup("edge");
  auto restored = env.path("restored");
  auto r = env.run({"restore", "edge", data, "--to", restored});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "restored snapshot")) << r.out;
  EXPECT_TRUE(contains(r.out, restored)) << r.out;
  EXPECT_EQ(tree_diff(tree_of(data), tree_of(restored)), "");

  // Hard links come back as hard links.
  struct stat a {
  }, b{};
  ASSERT_EQ(::lstat((restored + "/plain.txt").c_str(), &a), 0);
  ASSERT_EQ(::lstat((restored + "/hard link").c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino) << "hard link restored as a copy";

  // No name was ever run as a command: not on the edge host (the remote
  // shell starts in $HOME), not here.
  for (const auto& dir : {std::string{"/root"}, env.dir(), host.remote_root(), data,
                          std::filesystem::current_path().string()})
    EXPECT_FALSE(std::filesystem::exists(dir + "/satoru-pwned")) << dir;

  // The target named by its hash restores the same tree. With --json, the
  // restore's progress lines come first (the last at 100%), then the result.
  auto by_hash = env.path("by-hash");
  auto h = env.run({"restore", "edge", satoru::target_hash("directory", data), "--to",
                    by_hash, "--json"});
  ASSERT_EQ(h.exit_code, 0) << h.out << h.err;
  const auto progress = progress_lines(h.out, "restore");
  ASSERT_FALSE(progress.empty()) << h.out;
  const auto& end = progress.back();
  EXPECT_TRUE(end.at("ended").as_bool()) << h.out;
  EXPECT_DOUBLE_EQ(end.at("fraction").to_number<double>(), 1.0) << h.out;
  EXPECT_GT(end.at("bytes_total").to_number<std::int64_t>(), 0) << h.out;
  EXPECT_EQ(end.at("bytes_done").to_number<std::int64_t>(),
            end.at("bytes_total").to_number<std::int64_t>())
      << h.out;
  const auto last_line = h.out.substr(h.out.rfind('\n', h.out.size() - 2) + 1);
  auto result = boost::json::parse(last_line).as_object();
  EXPECT_EQ(string_of(result.at("type")), "result");
  EXPECT_EQ(string_of(result.at("target")), data);
  EXPECT_GE(result.at("files").to_number<std::int64_t>(), 20);
  EXPECT_EQ(tree_diff(tree_of(data), tree_of(by_hash)), "");
}

TEST_F(Backup, SecondBackupOfUnchangedDataAddsNextToNothing) {
  const std::string data = host.remote_root() + "/data";
  const std::string db = host.remote_root() + "/app.db";
  host.write_file(data + "/big.bin", random_bytes(4 * 1024 * 1024, 3));
  host.write_file(data + "/small.txt", "small\n");
  host.make_sqlite_db(db,
                      "CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB);"
                      "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n "
                      "WHERE i < 2000) INSERT INTO t(v) SELECT randomblob(1000) FROM n;");
  env.add_site("edge", host, {{"directory", data}, {"sqlite_dump", db}});
  env.write_config();

  auto first = backup("edge");
  auto first_added = data_added(env, first);
  EXPECT_GT(first_added, 4 * 1024 * 1024) << "the first backup stores the data";
  // Remote commands (sshd's sessions): the whole preflight in one, the
  // folder's rsync, the database's copy and its transfer.
  auto sessions = host.commands_started();
  EXPECT_EQ(sessions.size(), 4u) << ::testing::PrintToString(sessions);
  auto dir_row = target_json(env, "edge", data);
  EXPECT_EQ(string_of(dir_row.at("last_status")), "success");
  EXPECT_EQ(dir_row.at("last_files").as_int64(), 2);
  EXPECT_GT(dir_row.at("last_bytes").as_int64(), 4 * 1024 * 1024);

  const auto first_success = last_success_ms(env);
  auto second = backup("edge");
  // The unchanged database needs its first command only (no copy, no
  // transfer): preflight, rsync, and that one.
  auto rerun_sessions = host.commands_started();
  EXPECT_EQ(rerun_sessions.size() - sessions.size(), 3u)
      << ::testing::PrintToString(rerun_sessions);
  // Staging is exactly as the first snapshots saw it: no `restic backup`
  // at all, each target's snapshot is still current.
  auto skipped = skipped_snapshots(env, second);
  EXPECT_EQ(skipped.size(), 2u) << boost::json::serialize(job_json(env, second));

  // site_targets as `satoru sites --json` shows them after the second run.
  auto snaps = snapshots_json(env, {"--site", "edge"});
  ASSERT_EQ(snaps.size(), 2u) << boost::json::serialize(snaps);
  auto rows_name_newest_snapshots = [&] {
    auto all = snapshots_json(env, {"--site", "edge"});
    for (const auto& path : {data, db}) {
      auto row = target_json(env, "edge", path);
      SCOPED_TRACE(path);
      EXPECT_EQ(string_of(row.at("last_status")), "success");
      EXPECT_EQ(string_of(row.at("last_error")), "");
      EXPECT_GT(row.at("last_duration_ms").as_int64(), 0);
      EXPECT_NE(string_of(row.at("last_success_at")), "-");
      // The newest snapshot of the target is the one the row names.
      std::string newest;
      for (auto& s : all)
        if (string_of(s.at("target")) == path) newest = string_of(s.at("short_id"));
      EXPECT_EQ(string_of(row.at("last_snapshot_id")), newest);
    }
  };
  rows_name_newest_snapshots();
  for (const auto& path : {data, db}) {
    auto row = target_json(env, "edge", path);
    EXPECT_EQ(skipped[string_of(row.at("hash"))], string_of(row.at("last_snapshot_id")))
        << path;
  }
  // A skipped snapshot is still a fresh backup (what the freshness metric
  // and alert read).
  for (const auto& [hash, at] : last_success_ms(env))
    EXPECT_GT(at, first_success.at(hash)) << hash;
  // Nothing changed, so rsync transferred no file the second time.
  EXPECT_EQ(target_json(env, "edge", data).at("last_files").as_int64(), 0);
  EXPECT_LT(target_json(env, "edge", data).at("last_bytes").as_int64(), 64 * 1024);

  // A change rsync's statistics do not count as a transfer (a mode) is
  // still a change: that folder gets a new snapshot, the database not.
  ASSERT_EQ(host.sh("chmod 0600 " + satoru::shell_quote(data + "/small.txt")), 0);
  auto third = backup("edge");
  EXPECT_EQ(target_json(env, "edge", data).at("last_files").as_int64(), 0);
  auto skipped_third = skipped_snapshots(env, third);
  ASSERT_EQ(skipped_third.size(), 1u);
  EXPECT_EQ(skipped_third.begin()->first, satoru::target_hash("sqlite_dump", db));
  ASSERT_EQ(snapshots_json(env, {"--site", "edge"}).size(), 3u);
  rows_name_newest_snapshots();

  // Retention keeps each target's newest snapshot, so the database's one
  // that every run still names survives it.
  auto pruned = env.run({"prune", "--wait"});
  ASSERT_EQ(pruned.exit_code, 0) << pruned.out << pruned.err;
  EXPECT_EQ(snapshots_json(env, {"--site", "edge"}).size(), 2u);
  rows_name_newest_snapshots();
}

TEST_F(Backup, SqliteDumpCompletesUnderAContinuousWriterAndRestoresSound) {
  const std::string db = host.remote_root() + "/busy.db";
  host.make_sqlite_db(
      db, "CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB);"
          "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n "
          "WHERE i < 20000) INSERT INTO t(v) SELECT randomblob(1000) FROM n;");
  env.add_site("edge", host, {{"sqlite_dump", db}});
  env.write_config();

  // A writer inserting rows for the whole backup (rollback journal, the
  // harder case: every insert takes the write lock).
  const std::string stop = env.path("stop-writer");
  const std::string loop =
      "while [ ! -e " + satoru::shell_quote(stop) + " ]; do sqlite3 " +
      satoru::shell_quote(db) +
      " '.timeout 10000' 'INSERT INTO t(v) VALUES (randomblob(1000));'; "
      "done";
  std::string pid;
  ASSERT_EQ(
      host.sh("sh -c " + satoru::shell_quote(loop) + " >/dev/null 2>&1 & echo $!", &pid),
      0);
  auto rows = [&] {
    std::string out;
    host.sh("sqlite3 " + satoru::shell_quote(db) +
                " '.timeout 10000' 'SELECT count(*) FROM t' 2>/dev/null",
            &out);
    return std::atoll(out.c_str());
  };
  auto writer_gone = [&] { return process_gone(std::atoi(pid.c_str())); };
  struct stop_writer {
    std::string file;
    ~stop_writer() { std::ofstream{file}; }
  } stopper{stop};
  const auto rows_before = rows();

  auto started = std::chrono::steady_clock::now();
  auto r = env.run({"run", "edge", "--wait"});
  auto took = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_LT(took, 60s);
  EXPECT_TRUE(contains(r.out, "integrity_check: ok")) << r.out;
  const auto rows_after = rows();
  EXPECT_GT(rows_after, rows_before) << "the writer kept writing during the backup";
  { std::ofstream{stop}; }
  ASSERT_TRUE(wait_until(writer_gone, 20s));

  // The edge host keeps no copy.
  std::string leftovers;
  host.sh("ls -d /tmp/satoru-" + satoru::target_hash("sqlite_dump", db) +
              ".* 2>/dev/null",
          &leftovers);
  EXPECT_EQ(leftovers, "");

  auto to = env.path("restored");
  auto restored = env.run({"restore", "edge", db, "--to", to});
  ASSERT_EQ(restored.exit_code, 0) << restored.out << restored.err;
  EXPECT_TRUE(contains(restored.out, "integrity_check")) << restored.out;
  EXPECT_TRUE(contains(restored.out, ": ok")) << restored.out;
  std::string check, count;
  ASSERT_EQ(run_shell("sqlite3 " + satoru::shell_quote(to + "/busy.db") +
                          " 'PRAGMA integrity_check'",
                      &check),
            0);
  EXPECT_EQ(check, "ok\n");
  run_shell("sqlite3 " + satoru::shell_quote(to + "/busy.db") +
                " 'SELECT count(*) FROM t'",
            &count);
  // A point-in-time copy: at least what was there before, at most what was
  // there after.
  EXPECT_GE(std::atoll(count.c_str()), rows_before);
  EXPECT_LE(std::atoll(count.c_str()), rows_after);
}

TEST_F(Backup, OneBadTargetOfThreeIsAWarningAndTheOthersAreSnapshotted) {
  const std::string data = host.remote_root() + "/data";
  const std::string db = host.remote_root() + "/app.db";
  const std::string missing = host.remote_root() + "/gone";
  host.write_file(data + "/a.txt", "a\n");
  host.make_sqlite_db(db, "CREATE TABLE t(x); INSERT INTO t VALUES (1);");
  env.add_site("edge", host,
               {{"directory", data}, {"sqlite_dump", db}, {"directory", missing}});
  env.add_site(
      "broken", host,
      {{"directory", missing}, {"sqlite_dump", host.remote_root() + "/gone.db"}});
  env.write_config();

  auto r = env.run({"run", "edge", "--wait"});
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  auto job = job_json(env, parse_id(r));
  EXPECT_EQ(string_of(job.at("status")), "warning");
  EXPECT_TRUE(contains(string_of(job.at("error")), missing))
      << string_of(job.at("error"));
  auto site = site_json(env, "edge");
  EXPECT_EQ(string_of(site.at("health")), "warning");
  EXPECT_TRUE(contains(string_of(site.at("health_reason")), missing));

  std::vector<std::string> snapshotted;
  for (auto& s : snapshots_json(env, {"--site", "edge"})) {
    snapshotted.push_back(string_of(s.at("target")));
    EXPECT_EQ(string_of(s.at("site")), "edge");
  }
  std::sort(snapshotted.begin(), snapshotted.end());
  EXPECT_EQ(snapshotted, (std::vector<std::string>{db, data}));

  auto bad = target_json(env, "edge", missing);
  EXPECT_EQ(string_of(bad.at("last_status")), "failed");
  EXPECT_TRUE(contains(string_of(bad.at("last_error")), "does not exist"))
      << string_of(bad.at("last_error"));
  EXPECT_EQ(string_of(bad.at("last_snapshot_id")), "");
  EXPECT_EQ(string_of(target_json(env, "edge", data).at("last_status")), "success");
  EXPECT_EQ(string_of(target_json(env, "edge", db).at("last_status")), "success");

  // Every target bad: failed, and nothing snapshotted.
  auto all_bad = env.run({"run", "broken", "--wait"});
  EXPECT_EQ(all_bad.exit_code, 1) << all_bad.out << all_bad.err;
  EXPECT_EQ(string_of(job_json(env, parse_id(all_bad)).at("status")), "failed");
  EXPECT_EQ(string_of(site_json(env, "broken").at("health")), "failed");
  EXPECT_TRUE(snapshots_json(env, {"--site", "broken"}).empty());
}

TEST_F(Backup, RunKilledMidPullLeavesOnlyCompleteFilesInStaging) {
  const std::string data = host.remote_root() + "/data";
  const auto v1 = random_bytes(512 * 1024, 4);
  host.write_file(data + "/blob", v1);
  host.write_file(data + "/keep.txt", "keep\n");
  auto i = env.add_site("edge", host, {{"directory", data}});
  env.write_config();
  backup("edge");
  const auto staging = staging_of("edge", data);
  ASSERT_EQ(digest(staging + "/blob"), sha256_hex(v1));

  // A new, bigger blob pulled at 256 KiB/s: ~32 s, killed after it started.
  host.write_file(data + "/blob", random_bytes(8 * 1024 * 1024, 5));
  env.set_target_options(i, 0, {{"bwlimit_kbps", 256}});
  env.write_config();
  const auto work = env.path("staging") + "/" +
                    string_of(site_json(env, "edge").at("uuid")) + "/.work-" +
                    satoru::target_hash("directory", data) + "/rsync-tmp";
  {
    satoru_child run{env, {"run", "edge", "--wait"}, env.path("run.log")};
    auto partial_grows = [&] {
      std::error_code ec;
      for (auto& f : std::filesystem::directory_iterator(work, ec))
        if (f.is_regular_file(ec) && f.file_size(ec) > 256 * 1024) return true;
      return false;
    };
    ASSERT_TRUE(wait_until(partial_grows, 30s)) << run.log();
    auto status = run.kill(SIGKILL);
    EXPECT_TRUE(WIFSIGNALED(status));
  }
  // Staging holds the last good copy, never a part of the new one.
  EXPECT_EQ(digest(staging + "/blob"), sha256_hex(v1));
  std::vector<std::string> names;
  for (auto& f : std::filesystem::directory_iterator(staging))
    names.push_back(f.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"blob", "keep.txt"}));

  // The next run (the dead runner's job does not block the site) pulls the
  // new blob whole.
  env.config["sites"]
      .as_array()[i]
      .as_object()["targets"]
      .as_array()[0]
      .as_object()
      .erase("options");
  env.write_config();
  backup("edge");
  EXPECT_EQ(digest(staging + "/blob"), digest(data + "/blob"));
}

TEST_F(Backup, StoppedMidSqlitePullLeavesNoRemoteTempFolder) {
  // The edge host's sqlite3 hangs in the copy (after the temp folder was
  // made) until the test releases it, so the stop lands mid-pull every time.
  const auto bin = env.path("slow-bin");
  const auto release = env.path("release");
  ASSERT_EQ(::mkdir(bin.c_str(), 0755), 0);
  write_bytes(bin + "/sqlite3",
              "#!/bin/sh\ncase \"$*\" in *--version*) ;; *)\n  while [ ! -e " +
                  satoru::shell_quote(release) +
                  " ]; do sleep 0.1; done ;;\nesac\nexec /usr/bin/sqlite3 \"$@\"\n",
              0755);
  edge_host slow{env.path("slow-edge"), {bin + ":/usr/bin:/bin", "", false}};
  ASSERT_TRUE(slow.running());
  const std::string db = slow.remote_root() + "/app.db";
  // Whatever happens: the hanging sqlite3 wrappers end, and a temp folder a
  // failed assertion left in /tmp goes (only this target's, by its hash).
  struct releaser {
    std::string file, temp_glob;
    ~releaser() {
      std::ofstream{file};
      run_shell("rm -rf " + temp_glob);
    }
  } release_at_end{release,
                   "/tmp/satoru-" + satoru::target_hash("sqlite_dump", db) + ".*"};
  slow.make_sqlite_db(db, "CREATE TABLE t(x); INSERT INTO t VALUES (1);");
  env.add_site("edge", slow, {{"sqlite_dump", db}});
  env.write_config();
  const std::string temp_glob =
      "/tmp/satoru-" + satoru::target_hash("sqlite_dump", db) + ".*";
  auto remote_temp = [&] {
    std::string out;
    run_shell("ls -d " + temp_glob + " 2>/dev/null", &out);
    return out;
  };

  daemon_process daemon{env};
  daemon.start();
  auto r = env.run({"run", "edge"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(wait_until([&] { return !remote_temp().empty(); }, 30s)) << daemon.log();
  std::chrono::milliseconds took{};
  EXPECT_EQ(daemon.stop(&took), 0) << daemon.log();
  EXPECT_EQ(remote_temp(), "") << daemon.log();
  // The job is not recorded as failed: it runs again at the next start.
  EXPECT_EQ(string_of(job_json(env, parse_id(r)).at("status")), "interrupted");

  // SIGTERM (or Ctrl-C) on a foreground `run --wait` stops it the same way.
  {
    satoru_child run{env, {"run", "edge", "--wait"}, env.path("run-term.log")};
    ASSERT_TRUE(wait_until([&] { return !remote_temp().empty(); }, 30s)) << run.log();
    auto status = run.kill(SIGTERM);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << status << run.log();
    EXPECT_EQ(remote_temp(), "") << run.log();
    EXPECT_TRUE(contains(run.log(), "interrupted")) << run.log();
  }

  // A `run --wait` killed outright cannot clean up. What it left could as
  // well be another server's copy in progress: later pulls leave it alone
  // until it is a day old, then remove it.
  {
    satoru_child run{env, {"run", "edge", "--wait"}, env.path("run.log")};
    ASSERT_TRUE(wait_until([&] { return !remote_temp().empty(); }, 30s)) << run.log();
    run.kill(SIGKILL);
    EXPECT_NE(remote_temp(), "");
  }
  { std::ofstream{release}; }
  auto again = env.run({"run", "edge", "--wait"});
  EXPECT_EQ(again.exit_code, 0) << again.out << again.err;
  EXPECT_NE(remote_temp(), "");
  ASSERT_EQ(run_shell("touch -d '2 days ago' " + temp_glob), 0);
  auto later = env.run({"run", "edge", "--wait"});
  EXPECT_EQ(later.exit_code, 0) << later.out << later.err;
  EXPECT_EQ(remote_temp(), "");
  auto to = env.path("restored");
  auto restored = env.run({"restore", "edge", db, "--to", to});
  EXPECT_EQ(restored.exit_code, 0) << restored.out << restored.err;
  EXPECT_TRUE(contains(restored.out, "integrity_check")) << restored.out;
}

TEST_F(Backup, SnapshotsAndRestoreRefuseBadInput) {
  const std::string data = host.remote_root() + "/data";
  const std::string other = host.remote_root() + "/other";
  host.write_file(data + "/a.txt", "version 1\n");
  host.write_file(other + "/b.txt", "b\n");
  env.add_site("edge", host, {{"directory", data}, {"directory", other}});
  env.add_site("second", host, {{"directory", data}});
  env.write_config();

  // Before any backup: no repository yet, an empty list, not an error.
  auto none = env.run({"snapshots", "--json"});
  EXPECT_EQ(none.exit_code, 0) << none.err;
  EXPECT_EQ(parse_json(none), boost::json::array{});

  backup("edge");
  // Both targets change: an unchanged one would take no new snapshot.
  host.write_file(data + "/a.txt", "version 2\n");
  host.write_file(other + "/b.txt", "b, version 2\n");
  backup("edge");
  backup("second");

  // The table maps tags back to names.
  auto table = env.run({"snapshots"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_TRUE(contains(table.out, "edge")) << table.out;
  EXPECT_TRUE(contains(table.out, "second")) << table.out;
  EXPECT_TRUE(contains(table.out, data)) << table.out;
  EXPECT_EQ(std::count(table.out.begin(), table.out.end(), '\n'), 1 + 5) << table.out;

  auto of_data = snapshots_json(env, {"--site", "edge", "--target", data});
  ASSERT_EQ(of_data.size(), 2u);
  auto old_id = string_of(of_data[0].at("id"));
  for (auto& s : of_data) {
    EXPECT_EQ(string_of(s.at("site")), "edge");
    EXPECT_EQ(string_of(s.at("target")), data);
    EXPECT_EQ(string_of(s.at("target_hash")), satoru::target_hash("directory", data));
    EXPECT_EQ(string_of(s.at("site_uuid")), string_of(site_json(env, "edge").at("uuid")));
    EXPECT_EQ(s.at("paths").as_array().size(), 1u);
    EXPECT_TRUE(contains(boost::json::serialize(s.at("tags")), "satoru"));
  }
  // By hash, and without --site (both sites back up the same path).
  EXPECT_EQ(snapshots_json(env, {"--site", "edge", "--target",
                                 satoru::target_hash("directory", data)})
                .size(),
            2u);
  EXPECT_EQ(snapshots_json(env, {"--target", data}).size(), 3u);
  EXPECT_EQ(snapshots_json(env, {"--site", "second"}).size(), 1u);

  // An older snapshot by its (short) id.
  auto old = env.path("old");
  auto r =
      env.run({"restore", "edge", data, "--snapshot", old_id.substr(0, 8), "--to", old});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(read_file(old + "/a.txt"), "version 1\n");
  EXPECT_TRUE(contains(r.out, old_id.substr(0, 8))) << r.out;

  // A non-empty --to is refused with one line, unless --force.
  r = env.run({"restore", "edge", data, "--to", old});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_TRUE(contains(r.err, "not empty")) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_EQ(read_file(old + "/a.txt"), "version 1\n") << "nothing was touched";
  r = env.run({"restore", "edge", data, "--to", old, "--force"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(read_file(old + "/a.txt"), "version 2\n");

  // Unknown site: the closest names.
  r = env.run({"snapshots", "--site", "egde"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.err, "edge")) << r.err;
  r = env.run({"restore", "egde", data, "--to", env.path("x")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.err, "closest")) << r.err;

  // Unknown target: the site's targets are listed.
  for (auto& args : std::vector<std::vector<std::string>>{
           {"snapshots", "--site", "edge", "--target", "/nope"},
           {"restore", "edge", "/nope", "--to", env.path("x")}}) {
    r = env.run(args);
    EXPECT_EQ(r.exit_code, 2) << args[0];
    EXPECT_TRUE(contains(r.err, data) && contains(r.err, other)) << r.err;
  }

  // A snapshot of another target, of another site, or no snapshot at all.
  auto other_id =
      string_of(snapshots_json(env, {"--site", "edge", "--target", other})[0].at("id"));
  auto second_id = string_of(snapshots_json(env, {"--site", "second"})[0].at("id"));
  for (const auto& [id, says] : std::vector<std::pair<std::string, std::string>>{
           {other_id, other}, {second_id, "second"}, {"deadbeef", "no snapshot"}}) {
    r = env.run({"restore", "edge", data, "--snapshot", id, "--to", env.path("x")});
    EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
    EXPECT_TRUE(contains(r.err, says)) << r.err;
  }
  r = env.run({"restore", "edge", data, "--snapshot", "--rm", "--to", env.path("x")});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  r = env.run({"restore", "edge", data, "--snapshot", "zz;rm", "--to", env.path("x")});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_FALSE(std::filesystem::exists(env.path("x")))
      << "a refused restore creates nothing";

  // --to naming a file.
  host.write_file(env.path("a-file"), "x");
  r = env.run({"restore", "edge", data, "--to", env.path("a-file")});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
}

TEST_F(Backup, RestoreOfACorruptSqliteSnapshotFailsTheIntegrityCheck) {
  // A target whose staged copy was damaged after the pull (disk rot): the
  // snapshot takes it as it is, and the restore catches it.
  const std::string db = host.remote_root() + "/app.db";
  host.make_sqlite_db(
      db, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);"
          "CREATE INDEX tv ON t(v);"
          "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n "
          "WHERE i < 5000) INSERT INTO t(v) SELECT hex(randomblob(50)) FROM n;");
  env.add_site("edge", host, {{"sqlite_dump", db}});
  env.write_config();
  backup("edge");
  const auto staged = staging_of("edge", db) + "/app.db";
  ASSERT_TRUE(std::filesystem::exists(staged));
  // Scribble over the middle pages (the index and table b-trees).
  ASSERT_EQ(run_shell("dd if=/dev/urandom of=" + satoru::shell_quote(staged) +
                      " bs=4096 seek=20 count=40 conv=notrunc 2>/dev/null"),
            0);
  // restic snapshots staging as it is now; the handler is not involved.
  ASSERT_EQ(
      run_shell("cd " + satoru::shell_quote(staging_of("edge", db)) +
                " && RESTIC_PASSWORD_FILE=" + satoru::shell_quote(env.password_file()) +
                " RESTIC_REPOSITORY=" + satoru::shell_quote(env.path("repo")) +
                " restic backup -q --tag satoru --tag site=" +
                string_of(site_json(env, "edge").at("uuid")) + " --tag target=" +
                satoru::target_hash("sqlite_dump", db) + " . >/dev/null"),
      0);
  auto r = env.run({"restore", "edge", db, "--to", env.path("restored")});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_TRUE(contains(r.out + r.err, "integrity_check")) << r.out << r.err;
  // The restore itself happened, so the operator can look at the file.
  EXPECT_TRUE(std::filesystem::exists(env.path("restored") + "/app.db"));
}

TEST_F(Backup, LsDiffAndPartialRestoreIntoASafeFolder) {
  const std::string data = host.remote_root() + "/data";
  host.write_file(data + "/a.txt", "version 1\n");
  host.write_file(data + "/sub/b.txt", "bbb\n");
  host.write_file(data + "/gone.txt", "soon gone\n");
  env.add_site("edge", host, {{"directory", data}});
  env.write_config();
  backup("edge");
  auto old_id = string_of(snapshots_json(env, {"--site", "edge"})[0].at("id"));
  host.write_file(data + "/a.txt", "version 2, longer\n");
  host.write_file(data + "/sub/new.txt", "new\n");
  std::filesystem::remove(data + "/gone.txt");
  backup("edge");

  // ls: the latest tree, relative to the target's root, with sizes and modes.
  auto paths_of = [](const boost::json::value& listing) {
    std::map<std::string, boost::json::object> out;
    for (const auto& n : listing.as_array())
      out[string_of(n.at("path"))] = n.as_object();
    return out;
  };
  auto r = env.run({"ls", "edge", data, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto latest = paths_of(parse_json(r));
  std::vector<std::string> names;
  for (const auto& [p, n] : latest)
    names.push_back(p);
  EXPECT_EQ(names,
            (std::vector<std::string>{"a.txt", "sub", "sub/b.txt", "sub/new.txt"}));
  EXPECT_EQ(latest["a.txt"].at("size").to_number<std::int64_t>(), 18);
  EXPECT_EQ(string_of(latest["a.txt"].at("type")), "file");
  EXPECT_EQ(string_of(latest["a.txt"].at("name")), "a.txt");
  EXPECT_EQ(string_of(latest["sub"].at("type")), "dir");
  EXPECT_EQ(string_of(latest["sub/b.txt"].at("mode")), "0644");
  // One folder of an older snapshot, as a table.
  r = env.run({"ls", "edge", data, "--snapshot", old_id.substr(0, 8)});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "gone.txt") && contains(r.out, "MTIME")) << r.out;
  r = env.run({"ls", "edge", data, "sub", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(paths_of(parse_json(r)).size(), 3u) << r.out;
  r = env.run({"ls", "edge", data, "no/such"});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_TRUE(contains(r.err, "no/such")) << r.err;

  // diff: added, removed and changed paths with their sizes.
  r = env.run({"diff", "edge", data, old_id.substr(0, 8), "latest", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto d = parse_json(r).as_object();
  ASSERT_EQ(d.at("added").as_array().size(), 1u) << r.out;
  EXPECT_EQ(string_of(d.at("added").as_array()[0].at("path")), "sub/new.txt");
  ASSERT_EQ(d.at("removed").as_array().size(), 1u) << r.out;
  EXPECT_EQ(string_of(d.at("removed").as_array()[0].at("path")), "gone.txt");
  EXPECT_EQ(d.at("removed").as_array()[0].at("size_before").to_number<int>(), 10);
  bool a_changed = false;
  for (const auto& c : d.at("changed").as_array())
    if (string_of(c.at("path")) == "a.txt")
      a_changed = c.at("size_before").to_number<int>() == 10 &&
                  c.at("size_after").to_number<int>() == 18;
  EXPECT_TRUE(a_changed) << r.out;
  r = env.run({"diff", "edge", data, old_id.substr(0, 8), "latest"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "1 added, 1 removed")) << r.out;

  // restore --path (repeatable): only those, at their place; a new folder is
  // private.
  const auto part = env.path("part");
  r = env.run(
      {"restore", "edge", data, "--path", "sub/b.txt", "--path", "/a.txt", "--to", part});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(tree_of(part).size(), 3u) << "a.txt, sub, sub/b.txt";
  EXPECT_EQ(read_file(part + "/a.txt"), "version 2, longer\n");
  EXPECT_EQ(read_file(part + "/sub/b.txt"), "bbb\n");
  struct stat st {};
  ASSERT_EQ(::stat(part.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  for (const auto& bad : {std::string{"no/such"}, std::string{"../etc"}}) {
    r = env.run({"restore", "edge", data, "--path", bad, "--to", env.path("x")});
    EXPECT_EQ(r.exit_code, 2) << bad << r.out << r.err;
    EXPECT_TRUE(contains(r.err, bad)) << r.err;
  }
  EXPECT_FALSE(std::filesystem::exists(env.path("x")));

  // --to: a symlink and another user's folder are refused, even with --force.
  const auto real = env.path("real");
  ASSERT_EQ(::mkdir(real.c_str(), 0700), 0);
  ASSERT_EQ(::symlink(real.c_str(), env.path("link").c_str()), 0);
  r = env.run({"restore", "edge", data, "--to", env.path("link"), "--force"});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_TRUE(contains(r.err, "symlink")) << r.err;
  EXPECT_TRUE(tree_of(real).empty());
  const auto foreign = env.path("foreign");
  ASSERT_EQ(::mkdir(foreign.c_str(), 0777), 0);
  ASSERT_EQ(::chown(foreign.c_str(), 65534, 65534), 0);
  r = env.run({"restore", "edge", data, "--to", foreign, "--force"});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_TRUE(contains(r.err, "belongs to uid 65534")) << r.err;
  EXPECT_TRUE(tree_of(foreign).empty());

  // Symlinks planted in --to are replaced, never followed.
  const auto victim = env.path("victim");
  ASSERT_EQ(::mkdir(victim.c_str(), 0700), 0);
  write_bytes(env.path("victim.txt"), "keep\n", 0644);
  const auto planted = env.path("planted");
  ASSERT_EQ(::mkdir(planted.c_str(), 0700), 0);
  ASSERT_EQ(::symlink(victim.c_str(), (planted + "/sub").c_str()), 0);
  ASSERT_EQ(::symlink(env.path("victim.txt").c_str(), (planted + "/a.txt").c_str()), 0);
  r = env.run({"restore", "edge", data, "--to", planted, "--force"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(tree_of(victim).empty()) << "restored through a planted symlink";
  EXPECT_EQ(read_file(env.path("victim.txt")), "keep\n");
  EXPECT_EQ(tree_of(planted)["sub"].type, 'd');
  EXPECT_EQ(tree_of(planted)["a.txt"].content, "version 2, longer\n");
  EXPECT_EQ(read_file(planted + "/sub/new.txt"), "new\n");
}

TEST_F(Backup, AFullStagingDiskRefusesTheBigTargetUpFrontAndTheSmallOneGoesOn) {
  // Staging on its own small filesystem (48 MiB), 24 MiB of it kept free.
  const std::string small = env.path("small-disk");
  std::filesystem::create_directories(small);
  if (run_shell("mount -t tmpfs -o size=48m,mode=0700 tmpfs " +
                satoru::shell_quote(small)) != 0)
    GTEST_SKIP() << "cannot mount a tmpfs here (needs CAP_SYS_ADMIN)";
  struct unmount {
    std::string path;
    ~unmount() { run_shell("umount -l " + satoru::shell_quote(path)); }
  } unmount_at_end{small};
  const std::string db = host.remote_root() + "/big.db";
  host.make_sqlite_db(
      db, "CREATE TABLE t(v BLOB);"
          "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n "
          "WHERE i < 16000) INSERT INTO t(v) SELECT randomblob(1000) FROM n;");
  const std::string data = host.remote_root() + "/data";
  host.write_file(data + "/a.txt", "small\n");
  const auto edge =
      env.add_site("edge", host, {{"sqlite_dump", db}, {"directory", data}});
  // Another site with a tiny folder, a folder and a database too big for
  // the 24 MiB staging may use (sparse: 40 MiB on the edge, nothing on disk).
  const std::string tiny = host.remote_root() + "/tiny";
  const std::string huge = host.remote_root() + "/huge";
  const std::string huge_db = host.remote_root() + "/huge.db";
  host.write_file(tiny + "/t.txt", "tiny\n");
  host.write_file(huge + "/keep.txt", "keep\n");
  host.make_sqlite_db(huge_db, "CREATE TABLE t(v);");
  ASSERT_EQ(run_shell("truncate -s 40M " + satoru::shell_quote(huge + "/sparse.bin") +
                      " " + satoru::shell_quote(huge_db)),
            0);
  env.add_site("crowded", host,
               {{"directory", tiny}, {"directory", huge}, {"sqlite_dump", huge_db}});
  env.config["staging_root"] = small;
  env.config["disk_min_free"] = {{"bytes", "24MiB"}};
  env.write_config();

  // The size each pull needs is known from the preflight (measured on the
  // edge in the site's one batched preflight command): the too-big folder
  // and the too-big first copy of a database are refused before anything
  // is pulled, with the filesystem, what is free, what is needed and the
  // setting; the small folder goes on.
  auto r = env.run({"run", "crowded", "--wait"});
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  for (const auto& path : {huge, huge_db})
    EXPECT_TRUE(contains(
        r.out, path + ": not enough space on the staging filesystem of " + small + ": "))
        << path << "\n"
        << r.out;
  EXPECT_TRUE(contains(r.out, "that disk_min_free keeps free")) << r.out;
  EXPECT_TRUE(contains(r.out, "1 remote command")) << r.out;
  EXPECT_EQ(string_of(target_json(env, "crowded", tiny).at("last_status")), "success");
  EXPECT_EQ(string_of(target_json(env, "crowded", huge).at("last_status")), "failed");
  EXPECT_EQ(string_of(target_json(env, "crowded", huge_db).at("last_status")), "failed");
  EXPECT_FALSE(std::filesystem::exists(staging_of("crowded", huge) + "/keep.txt"))
      << "nothing of the refused folder is pulled";

  // The first pull of the database fits (nothing staged yet).
  backup("edge");
  const auto staged_db = staging_of("edge", db) + "/big.db";
  const auto first_copy = digest(staged_db);
  // The next one needs a whole new copy beside the staged one: refused
  // before anything is pulled, with what is free, what is needed and the
  // setting; the folder target goes on.
  host.write_file(data + "/b.txt", "more\n");
  r = env.run({"run", "edge", "--wait"});
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "not enough space on the staging filesystem of " + small))
      << r.out;
  EXPECT_TRUE(contains(r.out, "disk_min_free")) << r.out;
  EXPECT_EQ(string_of(target_json(env, "edge", db).at("last_status")), "failed");
  EXPECT_EQ(string_of(target_json(env, "edge", data).at("last_status")), "success");
  EXPECT_EQ(digest(staged_db), first_copy) << "the last good staged copy is kept";
  auto snaps = snapshots_json(env, {"--site", "edge", "--target", data});
  EXPECT_EQ(snaps.size(), 2u);

  // A restore that would break disk_min_free on its filesystem is refused
  // too, before it writes anything.
  const auto to = small + "/restore";
  r = env.run({"restore", "edge", db, "--to", to});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_TRUE(contains(r.err, "not enough space on the restore filesystem")) << r.err;
  EXPECT_FALSE(std::filesystem::exists(to));

  // The disk fills anyway, after the check: another process (here the
  // edge's own copy of the database, its remote_tmp_dir on the same disk)
  // takes the space the check counted on, so the pull meets ENOSPC halfway.
  // The last good staged copy stays and the repository stays clean.
  env.config["disk_min_free"] = {{"percent", 0}};
  const auto edge_tmp = small + "/edge-tmp";
  std::filesystem::create_directories(edge_tmp);
  env.set_target_options(edge, 0, {{"remote_tmp_dir", edge_tmp}});
  env.write_config();
  ASSERT_EQ(run_shell("sqlite3 " + satoru::shell_quote(db) +
                      " 'WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n "
                      "WHERE i < 4000) INSERT INTO t(v) SELECT randomblob(1000) FROM n'"),
            0);
  // Free space for exactly what the check asks (and 2 MiB), not for the
  // edge's copy as well.
  const auto db_bytes = static_cast<std::int64_t>(std::filesystem::file_size(db));
  const auto space = std::filesystem::space(small);
  const auto filler = small + "/filler";
  const auto filler_bytes = static_cast<std::int64_t>(space.available) -
                            satoru::pull_needed_bytes(true, db_bytes, 0) - (2 << 20);
  ASSERT_GT(filler_bytes, 0);
  ASSERT_EQ(run_shell("head -c " + std::to_string(filler_bytes) + " /dev/zero > " +
                      satoru::shell_quote(filler)),
            0);
  r = env.run({"run", "edge", "--wait"});
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "No space left on device")) << r.out;
  EXPECT_EQ(string_of(target_json(env, "edge", db).at("last_status")), "failed");
  EXPECT_EQ(digest(staged_db), first_copy) << "the last good staged copy is kept";
  std::filesystem::remove(filler);
  env.set_target_options(edge, 0, {});
  auto check = restic(env, env.path("repo"), {"check"});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;

  // A repository on the small disk, with staging elsewhere: each snapshot is
  // refused before restic writes, naming the repository's filesystem. A
  // snapshot needs the staged size of what its pull wrote: 8 MiB of zeros
  // cross the wire compressed to a few KiB, and only 4 MiB are left above
  // disk_min_free.
  ASSERT_EQ(
      run_shell("head -c 8388608 /dev/zero > " + satoru::shell_quote(data + "/zeros")),
      0);
  env.config["staging_root"] = env.path("staging-big");
  env.config["restic_repo_path"] = small + "/repo";
  env.config["disk_min_free"] = {
      {"bytes",
       static_cast<std::int64_t>(std::filesystem::space(small).available) - (4 << 20)}};
  env.write_config();
  r = env.run({"run", "edge", "--wait"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "not enough space on the repository filesystem of " +
                                  small + "/repo"))
      << r.out;
}
