// The postgres_dump plugin, loaded from its .so, against a real PostgreSQL
// from Debian that the test starts on a Unix socket of its own (own data
// folder, own port, no TCP listener) and a real sshd edge host.

#include "edge_host.hpp"
#include "plugin_calls.hpp"
#include "satoru_env.hpp"

#include "satoru/identity.hpp"
#include "satoru/plugin_host.hpp"
#include "satoru/plugin_loader.hpp"

#include <gtest/gtest.h>

#include <glob.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <thread>

using namespace satoru;
using namespace satoru::testing;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

std::string q(const std::string& s) {
  return shell_quote(s);
}

/// The newest /usr/lib/postgresql/<major>/bin, or "".
std::string postgres_bin() {
  std::vector<std::string> found;
  glob_t g{};
  if (::glob("/usr/lib/postgresql/*/bin/postgres", 0, nullptr, &g) == 0)
    for (std::size_t i = 0; i < g.gl_pathc; ++i)
      found.push_back(fs::path(g.gl_pathv[i]).parent_path().string());
  ::globfree(&g);
  std::sort(found.begin(), found.end());
  return found.empty() ? "" : found.back();
}

/// A PostgreSQL cluster run by the `postgres` system user: initdb into a
/// folder of its own, listening only on a Unix socket in that folder on a
/// port of its own; stopped (immediate) and removed at destruction.
class pg_cluster {
public:
  pg_cluster() {
    bin_ = postgres_bin();
    if (bin_.empty()) {
      error_ =
          "no /usr/lib/postgresql/*/bin/postgres (scripts/bootstrap installs postgresql)";
      return;
    }
    char tmpl[] = "/tmp/satoru-pg-XXXXXX";
    if (!::mkdtemp(tmpl)) {
      error_ = "mkdtemp failed";
      return;
    }
    dir_ = tmpl;
    ::chmod(dir_.c_str(), 0755); // the postgres user must reach its folders
    port_ = free_port();
    std::string out;
    if (sh("install -d -o postgres -g postgres -m 0700 " + q(data()) +
               " && install -d -o postgres -g postgres -m 0755 " + q(socket_dir()) +
               " && runuser -u postgres -- " + q(bin_ + "/initdb") + " -D " + q(data()) +
               " -U postgres -A trust -E UTF8 --no-sync",
           &out) != 0) {
      error_ = "initdb failed: " + out;
      return;
    }
    start();
  }
  ~pg_cluster() {
    stop();
    if (!dir_.empty()) {
      std::error_code ec;
      fs::remove_all(dir_, ec);
    }
  }
  pg_cluster(const pg_cluster&) = delete;
  pg_cluster& operator=(const pg_cluster&) = delete;

  void start() {
    std::string out;
    const std::string opts = "-k " + socket_dir() + " -p " + std::to_string(port_) +
                             " -c listen_addresses='' -c fsync=off";
    if (sh("runuser -u postgres -- " + q(bin_ + "/pg_ctl") + " -D " + q(data()) + " -l " +
               q(socket_dir() + "/server.log") + " -o " + q(opts) + " -w -t 60 start",
           &out) != 0)
      error_ = "pg_ctl start failed: " + out + read_file(socket_dir() + "/server.log");
    else
      error_.clear();
  }
  void stop() {
    if (!dir_.empty() && fs::exists(data() + "/postmaster.pid"))
      sh("runuser -u postgres -- " + q(bin_ + "/pg_ctl") + " -D " + q(data()) +
         " -m immediate -w stop");
  }

  const std::string& error() const { return error_; }
  const std::string& bin() const { return bin_; }
  std::string socket_dir() const { return dir_ + "/sock"; }
  std::string data() const { return dir_ + "/data"; }
  const std::string& dir() const { return dir_; }
  int port() const { return port_; }

  /// Runs SQL as postgres in `db`; stdout (unaligned, tuples only) or fails.
  std::string sql(const std::string& db, const std::string& statements) const {
    std::string out;
    int rc = sh("runuser -u postgres -- " + q(bin_ + "/psql") + " -h " + q(socket_dir()) +
                    " -p " + std::to_string(port_) + " -XAtq -v ON_ERROR_STOP=1 -d " +
                    q(db) + " -c " + q(statements),
                &out);
    EXPECT_EQ(rc, 0) << statements << "\n" << out;
    while (!out.empty() && out.back() == '\n')
      out.pop_back();
    return out;
  }
  /// pg_restore of an archive into a new database `db`.
  int restore(const std::string& archive, const std::string& db, std::string* out) const {
    // The archive is readable by postgres through a copy it owns.
    const std::string copy = dir_ + "/restore-" + db + ".dump";
    return sh("install -o postgres -m 0600 " + q(archive) + " " + q(copy) +
                  " && runuser -u postgres -- " + q(bin_ + "/createdb") + " -h " +
                  q(socket_dir()) + " -p " + std::to_string(port_) + " " + q(db) +
                  " && runuser -u postgres -- " + q(bin_ + "/pg_restore") + " -h " +
                  q(socket_dir()) + " -p " + std::to_string(port_) +
                  " --exit-on-error --no-owner -d " + q(db) + " " + q(copy),
              out);
  }

  static int sh(const std::string& command, std::string* out = nullptr) {
    return run_shell(command + " 2>&1", out);
  }

private:
  std::string bin_, dir_, error_;
  int port_ = 0;
};

/// Transfers between accounts in transactions (pgbench, two clients) until
/// stopped: the total of all balances never changes in any snapshot.
class transfer_writer {
public:
  transfer_writer(const pg_cluster& pg, const std::string& db) {
    const std::string script = pg.dir() + "/transfer.sql";
    std::ofstream(script) << "\\set a random(1, 100)\n\\set b random(1, 100)\n"
                             "BEGIN;\n"
                             "UPDATE accounts SET balance = balance - 7 WHERE id = :a;\n"
                             "UPDATE accounts SET balance = balance + 7 WHERE id = :b;\n"
                             "INSERT INTO transfers(a, b) VALUES (:a, :b);\n"
                             "COMMIT;\n";
    ::chmod(script.c_str(), 0644);
    std::string out;
    run_shell("setsid runuser -u postgres -- " + q(pg.bin() + "/pgbench") +
                  " -n -c 2 -T 600 -h " + q(pg.socket_dir()) + " -p " +
                  std::to_string(pg.port()) + " -f " + q(script) + " " + q(db) +
                  " >/dev/null 2>&1 </dev/null & echo $!",
              &out);
    pgid_ = std::atoi(out.c_str());
  }
  ~transfer_writer() { stop(); }
  bool running() const { return pgid_ > 0 && ::kill(-pgid_, 0) == 0; }
  void stop() {
    if (pgid_ > 0) ::kill(-pgid_, SIGKILL);
    pgid_ = 0;
  }

private:
  int pgid_ = 0;
};

class postgres_plugin : public ::testing::Test {
protected:
  void SetUp() override {
    ASSERT_EQ(pg_.error(), "");
    host_ = std::make_unique<edge_host>(tmp_ / "edge");
    ASSERT_TRUE(host_->running());
    registry_ = plugin_registry::load(SATORU_PLUGIN_DIR);
    handler_ = registry_->find("postgres_dump");
    ASSERT_NE(handler_, nullptr)
        << "no plugin serves mode postgres_dump in " SATORU_PLUGIN_DIR;
    pg_.sql("postgres", "CREATE DATABASE appdb");
  }

  /// The target: <socket directory>/<database>, connecting as postgres.
  target_spec spec_for(const std::string& db, boost::json::object extra = {}) const {
    target_spec spec;
    spec.site_name = "edge";
    spec.site_uuid = "00000000-0000-5000-8000-000000000005";
    spec.mode = "postgres_dump";
    spec.path = pg_.socket_dir() + "/" + db;
    spec.hash = target_hash(spec.mode, spec.path);
    spec.options = {{"user", "postgres"}, {"port", pg_.port()}};
    for (auto& kv : extra)
      spec.options[kv.key()] = kv.value();
    spec.staging_dir = tmp_ / ("staging/" + spec.site_uuid + "/" + spec.hash);
    spec.work_dir = tmp_ / ("staging/" + spec.site_uuid + "/.work-" + spec.hash);
    return spec;
  }

  pull_result pull(const target_spec& spec) {
    return pull_once(*handler_, host_->endpoint(), sink_, spec);
  }
  std::vector<check_result> preflight(const target_spec& spec) {
    return preflight_once(*handler_, host_->endpoint(), sink_, spec);
  }
  static const check_result* check(const std::vector<check_result>& checks,
                                   const std::string& name) {
    return find_check(checks, name);
  }

  /// Every row of a table, in key order, as one fingerprint.
  std::string fingerprint(const std::string& db, const std::string& table) const {
    return pg_.sql(db, "SELECT count(*) || ':' || md5(coalesce(string_agg(t::text, '|' "
                       "ORDER BY t::text), '')) FROM " +
                           table + " t");
  }

  pg_cluster pg_;
  temp_dir tmp_{"satoru-pgplugin"};
  std::unique_ptr<edge_host> host_;
  std::shared_ptr<plugin_registry> registry_;
  target_handler* handler_ = nullptr;
  null_event_sink sink_;
};

TEST_F(postgres_plugin, ValidatesOptions) {
  EXPECT_TRUE(
      handler_
          ->validate_options("postgres_dump",
                             {{"user", "backup"},
                              {"database", "app"},
                              {"port", 5433},
                              {"pg_dump_path", "/usr/lib/postgresql/15/bin/pg_dump"},
                              {"pg_dump_args",
                               boost::json::array{"--no-owner", "--exclude-table=tmp_*"}},
                              {"sudo", false}})
          .empty());
  auto problems = handler_->validate_options(
      "postgres_dump", {{"database", 1},
                        {"port", 70000},
                        {"pg_dump_path", "pg_dump"},
                        {"pg_dump_args", boost::json::array{"--format=plain", "appdb"}},
                        {"usr", "x"}});
  // database, port, pg_dump_path, two pg_dump_args, usr, and the missing user.
  EXPECT_EQ(problems.size(), 7u);
  for (const auto& p : problems)
    EXPECT_EQ(p.find('\n'), std::string::npos) << p;
}

TEST_F(postgres_plugin, PreflightChecksPgDumpAndTheConnection) {
  auto checks = preflight(spec_for("appdb"));
  ASSERT_NE(check(checks, "remote.pg_dump"), nullptr);
  EXPECT_EQ(check(checks, "remote.pg_dump")->status, check_result::level::ok);
  EXPECT_NE(check(checks, "remote.pg_dump")->message.find("pg_dump (PostgreSQL)"),
            std::string::npos);
  ASSERT_NE(check(checks, "remote.connect"), nullptr);
  EXPECT_EQ(check(checks, "remote.connect")->status, check_result::level::ok)
      << check(checks, "remote.connect")->message;
  EXPECT_NE(check(checks, "remote.connect")->message.find("server 1"), std::string::npos)
      << check(checks, "remote.connect")->message;

  checks = preflight(spec_for("appdb", {{"user", "nobody_here"}}));
  ASSERT_NE(check(checks, "remote.connect"), nullptr);
  EXPECT_EQ(check(checks, "remote.connect")->status, check_result::level::fail);
  EXPECT_NE(
      check(checks, "remote.connect")->message.find("\"nobody_here\" does not exist"),
      std::string::npos)
      << check(checks, "remote.connect")->message;

  checks = preflight(spec_for("nosuchdb"));
  EXPECT_EQ(check(checks, "remote.connect")->status, check_result::level::fail);

  checks = preflight(spec_for("appdb", {{"pg_dump_path", "/opt/none/pg_dump"}}));
  ASSERT_NE(check(checks, "remote.pg_dump"), nullptr);
  EXPECT_EQ(check(checks, "remote.pg_dump")->status, check_result::level::fail);
  EXPECT_NE(check(checks, "remote.pg_dump")->message.find("/opt/none/pg_dump"),
            std::string::npos);
}

TEST_F(postgres_plugin, DumpRestoresRowForRow) {
  pg_.sql("appdb",
          "CREATE TABLE items(id serial PRIMARY KEY, name text, price numeric, "
          "tags text[], created timestamptz DEFAULT now());"
          "INSERT INTO items(name, price, tags) SELECT 'item ' || i || ' ''quoted''', "
          "i * 1.25, ARRAY['a', 'b' || i] FROM generate_series(1, 5000) i;");
  auto spec = spec_for("appdb");
  auto r = pull(spec);
  ASSERT_EQ(r.outcome, pull_result::status::success) << r.message;
  const std::string staged = spec.staging_dir + "/appdb.dump";
  ASSERT_TRUE(fs::exists(staged));
  EXPECT_EQ(r.bytes, fs::file_size(staged));
  EXPECT_EQ(r.files, 1u);
  // Nothing but the dump in staging; custom format (magic "PGDMP").
  EXPECT_EQ(
      std::distance(fs::directory_iterator(spec.staging_dir), fs::directory_iterator{}),
      1);
  EXPECT_EQ(read_file(staged).substr(0, 5), "PGDMP");

  std::string out;
  ASSERT_EQ(pg_.restore(staged, "restored", &out), 0) << out;
  EXPECT_EQ(fingerprint("restored", "items"), fingerprint("appdb", "items"));
  EXPECT_EQ(pg_.sql("restored", "SELECT count(*) FROM items"), "5000");
}

TEST_F(postgres_plugin, DumpUnderConcurrentWritesIsOneConsistentSnapshot) {
  pg_.sql("appdb", "CREATE TABLE accounts(id int PRIMARY KEY, balance bigint NOT NULL);"
                   "INSERT INTO accounts SELECT i, 1000 FROM generate_series(1, 100) i;"
                   "CREATE TABLE transfers(n bigserial PRIMARY KEY, a int, b int);"
                   // Bulk, so the dump takes a while next to the writers.
                   "CREATE TABLE filler AS SELECT i, md5(i::text) AS h FROM "
                   "generate_series(1, 200000) i;");
  transfer_writer writer(pg_, "appdb");
  // Writes are going on before the dump starts.
  for (int i = 0;
       i < 600 &&
       std::atoll(pg_.sql("appdb", "SELECT count(*) FROM transfers").c_str()) < 50;
       ++i)
    std::this_thread::sleep_for(50ms);
  const long long before =
      std::atoll(pg_.sql("appdb", "SELECT count(*) FROM transfers").c_str());
  ASSERT_GE(before, 50);

  auto spec = spec_for("appdb");
  auto r = pull(spec);
  ASSERT_EQ(r.outcome, pull_result::status::success) << r.message;
  EXPECT_TRUE(writer.running()) << "the writers stopped before the dump ended";
  writer.stop();

  std::string out;
  ASSERT_EQ(pg_.restore(spec.staging_dir + "/appdb.dump", "snap", &out), 0) << out;
  // One snapshot: every transfer is in it entirely or not at all.
  EXPECT_EQ(pg_.sql("snap", "SELECT sum(balance) FROM accounts"), "100000");
  const long long dumped =
      std::atoll(pg_.sql("snap", "SELECT count(*) FROM transfers").c_str());
  EXPECT_GE(dumped, before);
  EXPECT_EQ(pg_.sql("snap", "SELECT count(*) FROM filler"), "200000");
}

TEST_F(postgres_plugin, AFailedDumpLeavesTheLastGoodOne) {
  pg_.sql("appdb", "CREATE TABLE t(v text); INSERT INTO t VALUES ('first');");
  auto spec = spec_for("appdb");
  ASSERT_EQ(pull(spec).outcome, pull_result::status::success);
  const std::string staged = spec.staging_dir + "/appdb.dump";
  const std::string good = read_file(staged);
  ASSERT_FALSE(good.empty());

  // The server is down: a transient failure, the staged dump untouched.
  pg_.sql("appdb", "INSERT INTO t VALUES ('second')");
  pg_.stop();
  auto r = pull(spec);
  EXPECT_EQ(r.outcome, pull_result::status::failed);
  EXPECT_EQ(r.failure, failure_kind::transient) << r.message;
  EXPECT_NE(r.message.find("the last good dump stays staged"), std::string::npos)
      << r.message;
  EXPECT_EQ(read_file(staged), good);
  EXPECT_EQ(
      std::distance(fs::directory_iterator(spec.staging_dir), fs::directory_iterator{}),
      1);

  // A database that does not exist is the operator's to fix: not retried.
  pg_.start();
  ASSERT_EQ(pg_.error(), "");
  r = pull(spec_for("appdb", {{"database", "gone"}}));
  EXPECT_EQ(r.outcome, pull_result::status::failed);
  EXPECT_EQ(r.failure, failure_kind::permanent) << r.message;
  EXPECT_NE(r.message.find("\"gone\" does not exist"), std::string::npos) << r.message;
  EXPECT_EQ(read_file(staged), good);
}

TEST_F(postgres_plugin, BackedUpAndRestoredThroughSatoru) {
  pg_.sql(
      "appdb",
      "CREATE TABLE notes(id int PRIMARY KEY, body text);"
      "INSERT INTO notes SELECT i, repeat('x', i % 50) FROM generate_series(1, 300) i;");
  satoru_env env{"satoru-pg-env"};
  env.config["plugin_dir"] = SATORU_PLUGIN_DIR;
  const std::string path = pg_.socket_dir() + "/appdb";
  auto site = env.add_site("edge", *host_, {{"postgres_dump", path}});
  env.set_target_options(site, 0, {{"user", "postgres"}, {"port", pg_.port()}});
  env.write_config();
  auto c = env.run({"check-config"});
  ASSERT_EQ(c.exit_code, 0) << c.out << c.err;
  c = env.run({"run", "edge", "--wait"});
  ASSERT_EQ(c.exit_code, 0) << c.out << c.err;
  // docs/plugins.md "Restoring": satoru restore, then pg_restore.
  c = env.run_as_root({"restore", "edge", path, "--to", env.path("restored")});
  ASSERT_EQ(c.exit_code, 0) << c.out << c.err;
  std::string out;
  ASSERT_EQ(pg_.restore(env.path("restored") + "/appdb.dump", "fromsnapshot", &out), 0)
      << out;
  EXPECT_EQ(fingerprint("fromsnapshot", "notes"), fingerprint("appdb", "notes"));
}

} // namespace
