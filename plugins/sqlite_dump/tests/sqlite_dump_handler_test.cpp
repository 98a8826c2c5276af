// The sqlite_dump plugin, loaded from its .so, against a real sshd.

#include "edge_host.hpp"
#include "satoru/identity.hpp"
#include "satoru/plugin_host.hpp"
#include "satoru/plugin_loader.hpp"
#include "satoru_env.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <glob.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace satoru;
using namespace satoru::testing;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

struct recorded_event {
  std::string level, step, target, message;
  boost::json::object data;
};

/// Keeps every event; `on_event` lets a test act at a given step.
class recording_sink final : public event_sink {
public:
  std::function<void(const recorded_event&)> on_event;

  void emit(const std::string& level, const std::string& step, const std::string& target,
            const std::string& message, const boost::json::object& data) override {
    recorded_event e{level, step, target, message, data};
    {
      std::lock_guard<std::mutex> lock(mutex_);
      events_.push_back(e);
    }
    if (on_event) on_event(e);
  }
  std::vector<recorded_event> events() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return events_;
  }
  /// The last event of a step, or an empty one.
  recorded_event last(const std::string& step) const {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = events_.rbegin(); it != events_.rend(); ++it)
      if (it->step == step) return *it;
    return {};
  }
  void clear() {
    std::lock_guard<std::mutex> lock(mutex_);
    events_.clear();
  }

private:
  mutable std::mutex mutex_;
  std::vector<recorded_event> events_;
};

std::string q(const std::string& s) {
  return shell_quote(s);
}

/// Paths matching a glob pattern (nothing when none match).
std::vector<std::string> glob_paths(const std::string& pattern) {
  std::vector<std::string> out;
  glob_t g{};
  if (::glob(pattern.c_str(), 0, nullptr, &g) == 0)
    for (std::size_t i = 0; i < g.gl_pathc; ++i)
      out.push_back(g.gl_pathv[i]);
  ::globfree(&g);
  return out;
}

/// SQL for `rows` rows of about `bytes` each (half-compressible hex text).
std::string filled_db_sql(int rows, int bytes, const std::string& journal = "wal") {
  return "PRAGMA journal_mode=" + journal +
         ";\n"
         "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);\n"
         "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < " +
         std::to_string(rows) + ") INSERT INTO t SELECT x, hex(randomblob(" +
         std::to_string(bytes / 2) + ")) FROM c;\n";
}

/// A shell loop that inserts rows, each in its own transaction, until stopped.
class background_writer {
public:
  background_writer(const edge_host& host, const std::string& db) {
    std::string loop =
        "while :; do sqlite3 " + q(db) +
        " '.timeout 10000' 'INSERT INTO log(v) VALUES (hex(randomblob(100)))'"
        " >/dev/null 2>&1; done";
    std::string out;
    host.sh("setsid sh -c " + q(loop) + " >/dev/null 2>&1 </dev/null & echo $!", &out);
    pgid_ = std::atoi(out.c_str());
  }
  ~background_writer() { stop(); }
  void stop() {
    if (pgid_ > 0) ::kill(-pgid_, SIGKILL);
    pgid_ = 0;
  }
  bool running() const { return pgid_ > 0 && ::kill(-pgid_, 0) == 0; }

private:
  int pgid_ = 0;
};

class sqlite_plugin : public ::testing::Test {
protected:
  void SetUp() override { start_host({}); }

  void start_host(edge_host::options opts) {
    host_.reset();
    host_ = std::make_unique<edge_host>(tmp_ / "edge", std::move(opts));
    ASSERT_TRUE(host_->running());
    if (!registry_) {
      registry_ = plugin_registry::load(SATORU_PLUGIN_DIR);
      ASSERT_TRUE(registry_);
    }
    handler_ = registry_->find("sqlite_dump");
    ASSERT_NE(handler_, nullptr)
        << "no plugin serves mode sqlite_dump in " SATORU_PLUGIN_DIR;
  }

  target_spec spec_for(const std::string& path, boost::json::object options = {}) const {
    target_spec spec;
    spec.site_name = "edge";
    spec.site_uuid = "00000000-0000-5000-8000-000000000002";
    spec.mode = "sqlite_dump";
    spec.path = path;
    spec.hash = target_hash(spec.mode, path);
    spec.options = std::move(options);
    spec.staging_dir = tmp_ / ("staging/" + spec.site_uuid + "/" + spec.hash);
    spec.work_dir = tmp_ / ("staging/" + spec.site_uuid + "/.work-" + spec.hash);
    return spec;
  }

  pull_result pull(const target_spec& spec, cancel_token cancel = {},
                   satoru::deadline dl = {}) {
    host_services services(host_->endpoint(), sink_, std::move(cancel), dl, spec.hash);
    auto r = handler_->pull(spec, services);
    std::error_code ec;
    fs::remove_all(spec.work_dir, ec); // the host empties work_dir after every pull
    return r;
  }

  std::vector<check_result> preflight(const target_spec& spec) {
    host_services services(host_->endpoint(), sink_, cancel_token{}, satoru::deadline{},
                           spec.hash);
    return handler_->preflight(spec, services);
  }

  static const check_result* check(const std::vector<check_result>& checks,
                                   const std::string& name) {
    for (const auto& c : checks)
      if (c.name == name) return &c;
    return nullptr;
  }

  std::string remote(const std::string& rel) const {
    return host_->remote_root() + "/" + rel;
  }

  std::string dump(const std::string& db) const {
    std::string out;
    int rc = host_->sh("sqlite3 -readonly " + q(db) + " .dump 2>&1", &out);
    EXPECT_EQ(rc, 0) << out;
    return out;
  }

  std::string integrity(const std::string& db) const {
    std::string out;
    host_->sh("sqlite3 -readonly " + q(db) + " 'PRAGMA integrity_check' 2>&1", &out);
    while (!out.empty() && out.back() == '\n')
      out.pop_back();
    return out;
  }

  long long scalar(const std::string& db, const std::string& sql) const {
    std::string out;
    host_->sh("sqlite3 -readonly " + q(db) + " " + q(".timeout 10000") + " " + q(sql),
              &out);
    return std::atoll(out.c_str());
  }

  /// Processes whose working folder is (or was) a temp folder of the target:
  /// a sqlite3 or gzip that outlived its pull.
  static std::vector<std::string> stray_processes(const target_spec& spec) {
    std::vector<std::string> out;
    const std::string prefix = "/tmp/satoru-" + spec.hash + ".";
    for (const auto& cwd : glob_paths("/proc/[0-9]*/cwd")) {
      std::error_code ec;
      auto target = fs::read_symlink(cwd, ec).string();
      if (!ec && target.rfind(prefix, 0) == 0) out.push_back(cwd + " -> " + target);
    }
    return out;
  }

  /// True once no process works in a temp folder of the target. The remote
  /// script's shell ends only after the cleanup has stopped its sqlite3, so
  /// it gets a moment.
  static bool no_stray_processes(const target_spec& spec) {
    return satoru::testing::wait_until([&] { return stray_processes(spec).empty(); },
                                       std::chrono::seconds{5});
  }

  /// Temp folders of the target left on the edge host.
  static std::vector<std::string> leftovers(const target_spec& spec) {
    return glob_paths("/tmp/satoru-" + spec.hash + ".*");
  }

  static std::string staged(const target_spec& spec) {
    return spec.staging_dir + "/" + fs::path(spec.path).filename().string();
  }

  temp_dir tmp_{"satoru-sqliteplugin"};
  std::unique_ptr<edge_host> host_;
  std::shared_ptr<plugin_registry> registry_;
  target_handler* handler_ = nullptr;
  recording_sink sink_;
};

TEST_F(sqlite_plugin, registers_mode_and_tools) {
  EXPECT_EQ(handler_->name(), "sqlite_dump");
  EXPECT_EQ(handler_->modes(), std::vector<std::string>{"sqlite_dump"});
  auto tools = handler_->local_tools("sqlite_dump");
  for (const char* t : {"sqlite3", "rsync", "ssh", "gzip"})
    EXPECT_NE(std::find(tools.begin(), tools.end(), t), tools.end()) << t;
}

TEST_F(sqlite_plugin, validates_options) {
  EXPECT_TRUE(handler_->validate_options("sqlite_dump", {}).empty());
  EXPECT_TRUE(handler_
                  ->validate_options("sqlite_dump", {{"method", "backup"},
                                                     {"transfer", "gzip"},
                                                     {"remote_tmp_dir", "/var/tmp"},
                                                     {"sudo", true},
                                                     {"sudo_helper", "/opt/satoru/copy"},
                                                     {"no_progress_timeout_seconds", 30}})
                  .empty());
  auto problems =
      handler_->validate_options("sqlite_dump", {{"method", "copy"},
                                                 {"transfer", 1},
                                                 {"remote_tmp_dir", "tmp"},
                                                 {"no_progress_timeout_seconds", -1},
                                                 {"sudo_helper", "satoru-sqlite-copy"},
                                                 {"methd", "auto"}});
  EXPECT_EQ(problems.size(), 6u);
  EXPECT_FALSE(
      handler_->validate_options("sqlite_dump", {{"remote_tmp_dir", "/tmp/a\nb"}})
          .empty());
}

TEST_F(sqlite_plugin, dump_restores_equal_with_vacuum_into) {
  const std::string db = remote("app data/it's $(x); db.sqlite");
  host_->make_sqlite_db(db,
                        "PRAGMA journal_mode=wal;\n"
                        "CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT UNIQUE, "
                        "photo BLOB);\n"
                        "CREATE INDEX users_photo ON users(photo);\n"
                        "INSERT INTO users(name, photo) VALUES ('ann', x'00ff10'), "
                        "('bob''s', randomblob(5000)), ('zoë', NULL);\n"
                        "CREATE VIEW v AS SELECT name FROM users;\n"
                        "CREATE TRIGGER tr AFTER INSERT ON users BEGIN SELECT 1; END;\n");
  auto spec = spec_for(db);
  auto r = pull(spec);
  ASSERT_EQ(r.outcome, pull_result::status::success) << r.message;
  EXPECT_EQ(r.files, 1u);
  EXPECT_GT(r.bytes, 0u);
  const std::string local = staged(spec);
  ASSERT_TRUE(fs::exists(local));
  // A plain database, not gzip, named after the remote file.
  EXPECT_EQ(read_file(local).substr(0, 15), "SQLite format 3");
  EXPECT_EQ(dump(local), dump(db));
  EXPECT_EQ(integrity(local), "ok");
  auto snap = sink_.last("pull.snapshot");
  ASSERT_FALSE(snap.step.empty());
  EXPECT_EQ(snap.data.at("method").as_string(), "vacuum_into");
  EXPECT_NE(snap.message.find("VACUUM INTO"), std::string::npos);
  EXPECT_EQ(sink_.last("pull.integrity").level, "ok");
  EXPECT_EQ(sink_.last("pull.transfer").data.at("transfer").as_string(), "rsync");
  EXPECT_TRUE(leftovers(spec).empty());
  // Nothing but the database in staging.
  EXPECT_EQ(
      std::distance(fs::directory_iterator(spec.staging_dir), fs::directory_iterator{}),
      1);
  struct stat st {};
  ASSERT_EQ(::stat(local.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(sqlite_plugin, backup_fallback_is_used_when_forced) {
  const std::string db = remote("fallback.db");
  // WAL mode: .backup keeps it in the copy, which the local check must open.
  host_->make_sqlite_db(db, filled_db_sql(500, 400, "wal"));
  auto spec = spec_for(db, {{"method", "backup"}});
  auto r = pull(spec);
  ASSERT_EQ(r.outcome, pull_result::status::success) << r.message;
  // Only the database itself is staged (no -wal / -shm beside it; opening
  // it below creates them).
  EXPECT_EQ(
      std::distance(fs::directory_iterator(spec.staging_dir), fs::directory_iterator{}),
      1);
  EXPECT_EQ(dump(staged(spec)), dump(db));
  EXPECT_EQ(integrity(staged(spec)), "ok");
  auto snap = sink_.last("pull.snapshot");
  EXPECT_EQ(snap.data.at("method").as_string(), "backup");
  EXPECT_NE(snap.message.find(".backup"), std::string::npos) << snap.message;
  EXPECT_EQ(r.data.at("method").as_string(), "backup");
  EXPECT_TRUE(leftovers(spec).empty());
}

TEST_F(sqlite_plugin, completes_while_another_process_writes) {
  for (const std::string journal : {"wal", "delete"}) {
    SCOPED_TRACE(journal);
    const std::string db = remote("busy-" + journal + ".db");
    host_->make_sqlite_db(db, filled_db_sql(5000, 2000, journal) +
                                  "CREATE TABLE log(id INTEGER PRIMARY KEY, v TEXT);\n");
    background_writer writer(*host_, db);
    // Let the writer get going, and make sure it really writes.
    ASSERT_TRUE(satoru::testing::wait_until(
        [&] { return scalar(db, "SELECT count(*) FROM log") > 0; }, 30s))
        << "the writer does not write";
    const long long before = scalar(db, "SELECT count(*) FROM log");
    auto spec = spec_for(db);
    auto started = std::chrono::steady_clock::now();
    auto r = pull(spec);
    auto took = std::chrono::steady_clock::now() - started;
    const long long after = scalar(db, "SELECT count(*) FROM log");
    EXPECT_TRUE(writer.running());
    writer.stop();
    ASSERT_EQ(r.outcome, pull_result::status::success) << r.message;
    EXPECT_LT(took, 60s);
    EXPECT_EQ(sink_.last("pull.snapshot").data.at("method").as_string(), "vacuum_into");
    EXPECT_EQ(integrity(staged(spec)), "ok");
    const long long copied = scalar(staged(spec), "SELECT count(*) FROM log");
    EXPECT_GE(copied, before);
    EXPECT_LE(copied, after);
    EXPECT_GT(after, before) << "the writer stopped during the pull";
    EXPECT_EQ(scalar(staged(spec), "SELECT count(*) FROM t"), 5000);
    EXPECT_TRUE(leftovers(spec).empty());
  }
}

TEST_F(sqlite_plugin, missing_or_foreign_files_fail_clearly) {
  auto spec = spec_for(remote("nope.db"));
  auto r = pull(spec);
  EXPECT_EQ(r.outcome, pull_result::status::failed);
  EXPECT_NE(r.message.find("does not exist"), std::string::npos) << r.message;
  EXPECT_TRUE(leftovers(spec).empty());

  host_->write_file(remote("text.db"), "just some text, not a database\n");
  spec = spec_for(remote("text.db"));
  r = pull(spec);
  EXPECT_EQ(r.outcome, pull_result::status::failed);
  EXPECT_NE(r.message.find("not a SQLite database"), std::string::npos) << r.message;
  EXPECT_TRUE(leftovers(spec).empty());
  EXPECT_FALSE(fs::exists(staged(spec)));

  // An empty file is an empty database to SQLite, not an error.
  host_->write_file(remote("empty.db"), "");
  spec = spec_for(remote("empty.db"));
  r = pull(spec);
  EXPECT_EQ(r.outcome, pull_result::status::success) << r.message;
  EXPECT_EQ(integrity(staged(spec)), "ok");
}

TEST_F(sqlite_plugin, a_bad_new_copy_never_replaces_the_last_good_one) {
  const std::string db = remote("precious.db");
  host_->make_sqlite_db(db, filled_db_sql(2000, 1000, "delete"));
  auto spec = spec_for(db);
  ASSERT_EQ(pull(spec).outcome, pull_result::status::success);
  const std::string good = read_file(staged(spec));
  ASSERT_FALSE(good.empty());

  // 1. The remote "database" becomes something else entirely.
  const std::string saved = read_file(db);
  host_->write_file(db, std::string(100000, 'x'));
  auto r = pull(spec);
  EXPECT_EQ(r.outcome, pull_result::status::failed);
  EXPECT_NE(r.message.find("not a SQLite database"), std::string::npos) << r.message;
  EXPECT_TRUE(read_file(staged(spec)) == good);
  EXPECT_TRUE(leftovers(spec).empty());

  // 2. A database whose pages are garbage behind a valid header: .backup
  //    copies the pages as they are, and the local integrity check refuses.
  host_->write_file(db, saved);
  ASSERT_EQ(host_->sh("dd if=/dev/urandom of=" + q(db) +
                      " bs=4096 seek=20 count=200 conv=notrunc 2>/dev/null"),
            0);
  spec.options = {{"method", "backup"}};
  r = pull(spec);
  EXPECT_EQ(r.outcome, pull_result::status::failed);
  EXPECT_NE(r.message.find("integrity check"), std::string::npos) << r.message;
  EXPECT_EQ(sink_.last("pull.integrity").level, "fail");
  EXPECT_TRUE(read_file(staged(spec)) == good);
  EXPECT_TRUE(leftovers(spec).empty());

  // 3. The same corruption with VACUUM INTO fails on the edge host already.
  spec.options = {};
  r = pull(spec);
  EXPECT_EQ(r.outcome, pull_result::status::failed);
  EXPECT_TRUE(read_file(staged(spec)) == good);
  EXPECT_TRUE(leftovers(spec).empty()) << "temp folder left after a failed copy";
}

TEST_F(sqlite_plugin, cancel_mid_pull_cleans_up_and_keeps_the_good_copy) {
  const std::string db = remote("big.db");
  host_->make_sqlite_db(db, filled_db_sql(25600, 2000));
  auto spec = spec_for(db);
  ASSERT_EQ(pull(spec).outcome, pull_result::status::success);
  const std::string good = read_file(staged(spec));
  ASSERT_GT(good.size(), 40u << 20);

  // a) cancel while the copy is being made on the edge host (as soon as its
  //    temp folder exists); b) cancel while the transfer runs.
  for (const std::string when : {"snapshot", "transfer"}) {
    SCOPED_TRACE(when);
    ASSERT_EQ(host_->sh("sqlite3 " + q(db) +
                        " 'UPDATE t SET v = hex(randomblob(1000)) WHERE id % 50 = 0'"),
              0);
    cancel_token cancel;
    std::atomic<bool> done{false};
    std::thread watcher;
    if (when == "snapshot") {
      watcher = std::thread([&] {
        while (!done && leftovers(spec).empty())
          std::this_thread::sleep_for(2ms);
        cancel.cancel();
      });
    } else {
      sink_.on_event = [&](const recorded_event& e) {
        if (e.step == "pull.snapshot") cancel.cancel();
      };
    }
    auto r = pull(spec, cancel);
    done = true;
    if (watcher.joinable()) watcher.join();
    sink_.on_event = nullptr;
    EXPECT_EQ(r.outcome, pull_result::status::failed) << r.message;
    EXPECT_NE(r.message.find("cancel"), std::string::npos) << r.message;
    EXPECT_TRUE(leftovers(spec).empty()) << "temp folder left after cancel";
    EXPECT_TRUE(no_stray_processes(spec)) << stray_processes(spec).front();
    // Staging holds the previous good copy and nothing else.
    if (fs::exists(staged(spec))) {
      EXPECT_TRUE(read_file(staged(spec)) == good);
    }
    for (const auto& e : fs::directory_iterator(spec.staging_dir))
      EXPECT_EQ(e.path(), fs::path(staged(spec))) << "unexpected file in staging";
  }
  // And the next pull works.
  auto r = pull(spec);
  ASSERT_EQ(r.outcome, pull_result::status::success) << r.message;
  EXPECT_EQ(dump(staged(spec)), dump(db));
}

TEST_F(sqlite_plugin, deadline_mid_pull_cleans_up) {
  const std::string db = remote("slow.db");
  host_->make_sqlite_db(db, filled_db_sql(25600, 2000));
  auto spec = spec_for(db);
  auto r = pull(spec, cancel_token{}, satoru::deadline::after(400ms));
  EXPECT_EQ(r.outcome, pull_result::status::failed) << r.message;
  EXPECT_TRUE(leftovers(spec).empty()) << "temp folder left after the deadline";
  EXPECT_TRUE(no_stray_processes(spec)) << stray_processes(spec).front();
  EXPECT_FALSE(fs::exists(staged(spec)));
}

TEST_F(sqlite_plugin, only_leftovers_older_than_a_day_are_removed) {
  const std::string db = remote("x.db");
  host_->make_sqlite_db(db, "CREATE TABLE a(b); INSERT INTO a VALUES (1);");
  auto spec = spec_for(db);
  // A run killed two days ago, and a copy another server (or site) is
  // making right now: only the first is ours to remove.
  const std::string old = "/tmp/satoru-" + spec.hash + ".killed123";
  const std::string young = "/tmp/satoru-" + spec.hash + ".otherserver";
  fs::create_directories(old);
  fs::create_directories(young);
  host_->write_file(old + "/snapshot.db", "half a copy");
  host_->write_file(young + "/snapshot.db", "copy in progress");
  ASSERT_EQ(host_->sh("touch -d '2 days ago' " + q(old)), 0);
  auto r = pull(spec);
  ASSERT_EQ(r.outcome, pull_result::status::success) << r.message;
  EXPECT_FALSE(fs::exists(old));
  EXPECT_EQ(read_file(young + "/snapshot.db"), "copy in progress");
  fs::remove_all(young);
  EXPECT_TRUE(leftovers(spec).empty());
}

TEST_F(sqlite_plugin, rsync_delta_moves_far_less_than_gzip) {
  const std::string db = remote("delta.db");
  host_->make_sqlite_db(db, filled_db_sql(8000, 2000));
  auto spec = spec_for(db);
  auto first = pull(spec);
  ASSERT_EQ(first.outcome, pull_result::status::success) << first.message;
  // 1% of the rows, scattered.
  ASSERT_EQ(host_->sh("sqlite3 " + q(db) +
                      " 'UPDATE t SET v = hex(randomblob(1000)) WHERE id IN "
                      "(SELECT id FROM t ORDER BY random() LIMIT 80)'"),
            0);
  sink_.clear();
  auto delta = pull(spec);
  ASSERT_EQ(delta.outcome, pull_result::status::success) << delta.message;
  EXPECT_EQ(dump(staged(spec)), dump(db));
  EXPECT_EQ(sink_.last("pull.transfer").data.at("bytes").to_number<std::uint64_t>(),
            delta.bytes);

  // A change, so that the gzip pull copies rather than skips.
  ASSERT_EQ(host_->sh("sqlite3 " + q(db) +
                      " 'UPDATE t SET v = hex(randomblob(1000)) WHERE id = 1'"),
            0);
  spec.options = {{"transfer", "gzip"}};
  auto gz = pull(spec);
  ASSERT_EQ(gz.outcome, pull_result::status::success) << gz.message;
  EXPECT_EQ(dump(staged(spec)), dump(db));
  EXPECT_EQ(integrity(staged(spec)), "ok");
  EXPECT_EQ(sink_.last("pull.transfer").data.at("transfer").as_string(), "gzip");
  EXPECT_TRUE(leftovers(spec).empty());

  std::cout << "[ bytes    ] database " << fs::file_size(db) << ", first rsync "
            << first.bytes << ", rsync after 1% update " << delta.bytes << ", gzip "
            << gz.bytes << "\n";
  RecordProperty("rsync_bytes", std::to_string(delta.bytes));
  RecordProperty("gzip_bytes", std::to_string(gz.bytes));
  EXPECT_LT(delta.bytes, gz.bytes / 3);
}

TEST_F(sqlite_plugin, preflight_checks_file_tools_and_temp_folder) {
  const std::string db = remote("odd 'name' $(touch pwned); x\n.db");
  host_->make_sqlite_db(db, "CREATE TABLE a(b);");
  auto checks = preflight(spec_for(db));
  for (const char* name : {"remote.path", "remote.size", "remote.sqlite3", "remote.gzip",
                           "remote.rsync", "remote.tmp"}) {
    const auto* c = check(checks, name);
    ASSERT_NE(c, nullptr) << name;
    EXPECT_EQ(c->status, check_result::level::ok) << name << ": " << c->message;
  }
  // The size probe: the database (no WAL here), for the staging headroom.
  EXPECT_EQ(check(checks, "remote.size")->remote_bytes,
            static_cast<std::int64_t>(fs::file_size(db)));
  EXPECT_NE(check(checks, "remote.sqlite3")->message.find("3."), std::string::npos);
  EXPECT_FALSE(fs::exists(host_->remote_root() + "/pwned"));

  host_->write_file(remote("plain.txt"), "hello");
  checks = preflight(spec_for(remote("plain.txt")));
  EXPECT_EQ(check(checks, "remote.path")->status, check_result::level::fail);
  EXPECT_NE(check(checks, "remote.path")->message.find("not a SQLite database"),
            std::string::npos);

  checks = preflight(spec_for(db, {{"remote_tmp_dir", "/nonexistent/tmp"}}));
  EXPECT_EQ(check(checks, "remote.tmp")->status, check_result::level::fail);
  EXPECT_NE(check(checks, "remote.tmp")->message.find("does not exist"),
            std::string::npos);

  const std::string pwned = host_->remote_root() + "/pwned2";
  checks = preflight(spec_for(remote("x; touch ") + pwned));
  EXPECT_EQ(check(checks, "remote.path")->status, check_result::level::fail);
  EXPECT_FALSE(fs::exists(pwned));
}

TEST_F(sqlite_plugin, preflight_fails_without_remote_sqlite3) {
  // rsync and the basics stay, sqlite3 and gzip are hidden.
  const std::string bin = tmp_ / "bin";
  fs::create_directories(bin);
  for (const char* tool : {"rsync", "dd", "wc", "mktemp", "rm", "cat", "df", "head"})
    fs::create_symlink(find_in_path(tool), bin + "/" + tool);
  edge_host::options opts;
  opts.remote_path = bin;
  start_host(opts);
  const std::string db = remote("a.db");
  host_->make_sqlite_db(db, "CREATE TABLE a(b);");
  auto checks = preflight(spec_for(db));
  EXPECT_EQ(check(checks, "remote.path")->status, check_result::level::ok);
  EXPECT_EQ(check(checks, "remote.sqlite3")->status, check_result::level::fail);
  EXPECT_NE(check(checks, "remote.sqlite3")->message.find("not installed"),
            std::string::npos);
  // gzip is only needed for transfer "gzip".
  EXPECT_EQ(check(checks, "remote.gzip")->status, check_result::level::ok);
  checks = preflight(spec_for(db, {{"transfer", "gzip"}}));
  EXPECT_EQ(check(checks, "remote.gzip")->status, check_result::level::fail);

  auto r = pull(spec_for(db));
  EXPECT_EQ(r.outcome, pull_result::status::failed);
  EXPECT_NE(r.message.find("sqlite3 is not installed"), std::string::npos) << r.message;
}

} // namespace

// The edge helper that targets with "sudo" run as root: it copies SQLite
// databases to its standard output and nothing else.
TEST(sqlite_edge_helper, copies_only_sqlite_databases_to_stdout) {
  const std::string helper =
      std::string(SATORU_SOURCE_DIR) + "/plugins/sqlite_dump/edge/satoru-sqlite-copy";
  char pattern[] = "/tmp/satoru-helper-test.XXXXXX";
  ASSERT_NE(::mkdtemp(pattern), nullptr);
  const std::string dir = pattern;
  auto sh = [](const std::string& script) {
    int status = std::system(script.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  };
  const std::string q = "'" + dir + "'";
  ASSERT_EQ(sh("sqlite3 " + q + "/app.db 'CREATE TABLE t(x); INSERT INTO t VALUES (7)'"),
            0);
  ASSERT_EQ(sh("printf 'not a database' > " + q + "/notes.txt"), 0);
  for (const char* method : {"vacuum_into", "backup"}) {
    EXPECT_EQ(sh(helper + " copy " + method + " " + q + "/app.db > " + q + "/copy.db"), 0)
        << method;
    EXPECT_EQ(sh("[ \"$(sqlite3 " + q + "/copy.db 'SELECT x FROM t')\" = 7 ]"), 0)
        << method;
    fs::remove(dir + "/copy.db");
  }
  EXPECT_EQ(sh(helper + " probe " + q + "/app.db | grep -q '^satoru-size 8192$'"), 0);
  // Not a database, not absolute, not there, or any other arguments: refused,
  // and nothing written.
  EXPECT_EQ(sh(helper + " copy backup " + q + "/notes.txt > " + q + "/out 2>/dev/null"),
            3);
  EXPECT_EQ(sh(helper + " probe " + q + "/missing.db | grep -q '^satoru-error missing$'"),
            0);
  EXPECT_EQ(sh("cd " + q + " && " + helper + " probe app.db 2>/dev/null"), 64);
  EXPECT_EQ(sh(helper + " copy '.shell id' " + q + "/app.db 2>/dev/null"), 64);
  EXPECT_EQ(sh(helper + " copy backup " + q + "/app.db extra 2>/dev/null"), 64);
  EXPECT_EQ(fs::file_size(dir + "/out"), 0u);
  fs::remove_all(dir);
}

// An unchanged database is not copied again; every kind of change is seen.
TEST_F(sqlite_plugin, unchanged_database_is_skipped_and_every_change_is_copied) {
  const std::string db = remote("skip.db");
  host_->make_sqlite_db(db, "PRAGMA journal_mode=delete; CREATE TABLE t(x INTEGER);"
                            "INSERT INTO t VALUES (1);");
  auto spec = spec_for(db);
  auto copied = [&](const char* what) {
    sink_.clear();
    auto r = pull(spec);
    EXPECT_EQ(r.outcome, pull_result::status::success) << what << ": " << r.message;
    return sink_.last("pull.unchanged").step.empty();
  };
  ASSERT_TRUE(copied("first pull"));
  struct stat before {};
  ASSERT_EQ(::stat(staged(spec).c_str(), &before), 0);
  EXPECT_FALSE(copied("no change"));
  EXPECT_NE(sink_.last("pull.unchanged").message.find("copy skipped"), std::string::npos);
  EXPECT_TRUE(sink_.last("pull.snapshot").step.empty()) << "no copy on the edge";
  EXPECT_TRUE(leftovers(spec).empty());
  struct stat after {};
  ASSERT_EQ(::stat(staged(spec).c_str(), &after), 0);
  EXPECT_EQ(after.st_ino, before.st_ino) << "the staged copy was left alone";

  // A write that keeps the file's size (rollback journal: the change counter).
  host_->sh("sqlite3 " + q(db) + " 'UPDATE t SET x = 2'");
  EXPECT_TRUE(copied("same-size update"));
  EXPECT_EQ(scalar(staged(spec), "SELECT x FROM t"), 2);
  EXPECT_FALSE(copied("no change after the update"));

  // WAL mode: a commit goes to the -wal file; a checkpoint moves it back.
  host_->sh("sqlite3 " + q(db) + " 'PRAGMA journal_mode=wal' >/dev/null");
  EXPECT_TRUE(copied("switch to WAL"));
  host_->sh("sqlite3 " + q(db) +
            " 'PRAGMA wal_autocheckpoint=0; INSERT INTO t VALUES (3)' >/dev/null");
  EXPECT_TRUE(copied("commit into the WAL"));
  EXPECT_EQ(scalar(staged(spec), "SELECT count(*) FROM t"), 2);
  EXPECT_FALSE(copied("no change after the commit"));

  // The file replaced by another with the same content (a restore, a move).
  host_->sh("cp -p " + q(db) + " " + q(db + ".new") + " && mv " + q(db + ".new") + " " +
            q(db));
  EXPECT_TRUE(copied("replaced file"));

  // The staged copy changed on the server: never taken for current.
  EXPECT_FALSE(copied("no change"));
  ::truncate(staged(spec).c_str(), 0);
  EXPECT_TRUE(copied("staged copy damaged"));
  EXPECT_EQ(integrity(staged(spec)), "ok");
  EXPECT_EQ(scalar(staged(spec), "SELECT count(*) FROM t"), 2);
}
