// Retention and the off-site copy with real restic, and rclone's REST server
// standing in for B2.
#include "rclone_server.hpp"
#include "satoru_env.hpp"

#include "satoru/process.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <set>
#include <thread>

using namespace satoru::testing;
using namespace std::chrono_literals;

namespace {

/// Snapshots as restic lists them: id -> tags.
std::map<std::string, std::set<std::string>> snapshots(const satoru_env& env,
                                                       const std::string& repo) {
  auto r = restic(env, repo, {"snapshots", "--json"});
  std::map<std::string, std::set<std::string>> out;
  if (!r.ok()) return out;
  auto list = boost::json::parse(r.out);
  for (auto& s : list.as_array()) {
    std::set<std::string> tags;
    if (auto* t = s.as_object().if_contains("tags"))
      for (auto& tag : t->as_array())
        tags.insert(std::string(tag.as_string()));
    out[std::string(s.at("id").as_string())] = tags;
  }
  return out;
}

/// Snapshot ids of one target (by its hash), oldest first.
std::vector<std::string> snapshots_of_target(const satoru_env& env,
                                             const std::string& repo,
                                             const std::string& hash) {
  auto r = restic(env, repo, {"snapshots", "--json", "--tag", "target=" + hash});
  std::vector<std::string> ids;
  if (!r.ok()) return ids;
  auto list = boost::json::parse(r.out);
  for (auto& s : list.as_array())
    ids.emplace_back(s.at("id").as_string());
  return ids;
}

std::string target_hash_of(const satoru_env& env, const std::string& site,
                           std::size_t i) {
  auto r = env.run({"sites", "--json"});
  auto sites = boost::json::parse(r.out);
  for (auto& s : sites.as_array())
    if (s.at("name").as_string() == site)
      return std::string(s.at("targets").as_array().at(i).at("hash").as_string());
  ADD_FAILURE() << "no site " << site << ": " << r.out;
  return {};
}

/// A column of sync_state (of its only row, or of `repository`'s).
std::string sync_state(const satoru_env& env, const std::string& column,
                       const std::string& repository = "") {
  std::string out;
  run_shell("sqlite3 '" + env.path("state/satoru.db") + "' \"SELECT " + column +
                " FROM sync_state" +
                (repository.empty() ? "" : " WHERE repository = '" + repository + "'") +
                "\"",
            &out);
  while (!out.empty() && out.back() == '\n')
    out.pop_back();
  return out;
}

} // namespace

TEST(Retention, KeepLastTwoKeepsEachTargetsTwoNewestAndLeavesOthersAlone) {
  satoru_env env;
  edge_host host{env.path("edge")};
  ASSERT_TRUE(host.running());
  auto a = host.remote_root() + "/a", b = host.remote_root() + "/b",
       c = host.remote_root() + "/c";
  host.write_file(a + "/f", "a");
  host.write_file(b + "/f", "b");
  host.write_file(c + "/f", "c");
  env.add_site("one", host, {{"directory", a}, {"directory", b}});
  env.add_site("two", host, {{"directory", c}});
  env.config["restic_retention_policy"] = {{"keep_last", 2}};
  env.write_config();
  for (int i = 0; i < 4; ++i) {
    // Each backup sees new data (an unchanged target takes no new snapshot).
    host.write_file(a + "/f", "a" + std::to_string(i));
    host.write_file(b + "/f", "b" + std::to_string(i));
    auto r = env.run({"run", "one", "--wait"});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  }
  ASSERT_EQ(env.run({"run", "two", "--wait"}).exit_code, 0);
  auto repo = env.path("repo");
  auto ha = target_hash_of(env, "one", 0), hb = target_hash_of(env, "one", 1),
       hc = target_hash_of(env, "two", 0);
  auto before_a = snapshots_of_target(env, repo, ha);
  auto before_b = snapshots_of_target(env, repo, hb);
  auto before_c = snapshots_of_target(env, repo, hc);
  ASSERT_EQ(before_a.size(), 4u);
  ASSERT_EQ(before_b.size(), 4u);
  ASSERT_EQ(before_c.size(), 1u);

  auto r = env.run({"prune", "--wait"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "kept 2, removed 2")) << r.out;
  EXPECT_TRUE(contains(r.out, "freed")) << r.out;

  auto after_a = snapshots_of_target(env, repo, ha);
  auto after_b = snapshots_of_target(env, repo, hb);
  EXPECT_EQ(after_a, (std::vector<std::string>{before_a[2], before_a[3]}));
  EXPECT_EQ(after_b, (std::vector<std::string>{before_b[2], before_b[3]}));
  EXPECT_EQ(snapshots_of_target(env, repo, hc), before_c);
  auto check = restic(env, repo, {"check"});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
}

TEST(Retention, RunsBesideABackupWithoutEitherFailing) {
  satoru_env env;
  edge_host host{env.path("edge")};
  ASSERT_TRUE(host.running());
  auto dir = host.remote_root() + "/big";
  ASSERT_EQ(host.sh("mkdir -p '" + dir + "' && head -c 3000000 /dev/urandom > '" + dir +
                    "/blob'"),
            0);
  auto i = env.add_site("edge", host, {{"directory", dir}});
  env.set_target_options(i, 0, {{"bwlimit_kbps", 512}, {"compress", false}});
  env.config["restic_retention_policy"] = {{"keep_last", 1}};
  env.write_config();
  ASSERT_EQ(env.run({"run", "edge", "--wait"}).exit_code, 0); // a first snapshot
  host.write_file(dir + "/more", "x");
  daemon_process daemon{env};
  daemon.start();
  auto backup = std::stoll(env.run({"run", "edge"}).out);
  auto prune = std::stoll(env.run({"prune"}).out);
  auto status = [&](std::int64_t id) {
    auto r = env.run({"job", std::to_string(id), "--json"});
    return std::string(boost::json::parse(r.out).at("status").as_string());
  };
  ASSERT_TRUE(wait_until(
      [&] { return status(backup) != "queued" && status(prune) != "queued"; }, 30s));
  ASSERT_TRUE(wait_until(
      [&] {
        auto s1 = status(backup), s2 = status(prune);
        return (s1 == "success" || s1 == "failed") && (s2 == "success" || s2 == "failed");
      },
      120s))
      << daemon.log();
  EXPECT_EQ(status(backup), "success");
  EXPECT_EQ(status(prune), "success");
  // restic check takes an exclusive lock: stop the daemon (and its
  // repository metrics refreshes) first.
  EXPECT_EQ(daemon.stop(), 0);
  auto check = restic(env, env.path("repo"), {"check"});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
}

TEST(Sync, CopiesToTheRemoteThenOnlyNewSnapshotsAndSurvivesARemoteOutage) {
  satoru_env env;
  edge_host host{env.path("edge")};
  ASSERT_TRUE(host.running());
  rclone_server remote;
  ASSERT_TRUE(remote.start(env.path("b2"))) << remote.last_error();
  auto dir = host.remote_root() + "/data";
  ASSERT_EQ(host.sh("mkdir -p '" + dir + "' && head -c 20000000 /dev/urandom > '" + dir +
                    "/blob'"),
            0);
  env.add_site("edge", host, {{"directory", dir}});
  auto repo = remote.repository("fleet");
  env.config["restic_b2_repository"] = repo;
  env.config["sync_timeout_seconds"] = 20;
  env.config["retry_max_attempts"] = 4; // the outage is retried
  // ... but not by itself while the remote is down: step 4's `satoru sync`
  // runs the pending retry (a jittered delay could draw near zero).
  env.config["retry_initial_delay_seconds"] = 3600;
  env.config["retry_max_delay_seconds"] = 3600;
  env.write_config();
  ASSERT_EQ(env.run({"run", "edge", "--wait"}).exit_code, 0);
  host.write_file(dir + "/second", "second"); // else no new snapshot
  ASSERT_EQ(env.run({"run", "edge", "--wait"}).exit_code, 0);

  // 1. First sync: initialises the remote and copies both snapshots; its
  // progress (restic copy's meter: packs) ends at 100%.
  auto first = env.run({"sync", "--wait", "--json"});
  ASSERT_EQ(first.exit_code, 0) << first.out << first.err;
  EXPECT_TRUE(contains(first.out, "initialised")) << first.out;
  EXPECT_TRUE(contains(first.out, "copied 2 new snapshot(s)")) << first.out;
  auto copy = progress_lines(first.out, "copy");
  ASSERT_FALSE(copy.empty()) << first.out;
  EXPECT_TRUE(copy.back().at("ended").as_bool());
  EXPECT_DOUBLE_EQ(copy.back().at("fraction").to_number<double>(), 1.0) << first.out;
  EXPECT_EQ(snapshots(env, repo).size(), 2u);
  auto check = restic(env, repo, {"check"});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  EXPECT_EQ(sync_state(env, "status"), "success");
  EXPECT_EQ(sync_state(env, "offsite_lag"), "0");

  // 2. One more backup; the next sync copies only that one.
  host.write_file(dir + "/new", "new");
  ASSERT_EQ(env.run({"run", "edge", "--wait"}).exit_code, 0);
  auto second = env.run({"sync", "--wait"});
  ASSERT_EQ(second.exit_code, 0) << second.out << second.err;
  EXPECT_TRUE(contains(second.out, "copied 1 new snapshot(s)")) << second.out;
  EXPECT_EQ(snapshots(env, repo).size(), 3u);

  // 3. The remote dies in the middle of a sync.
  ASSERT_EQ(host.sh("head -c 30000000 /dev/urandom > '" + dir + "/blob2'"), 0);
  ASSERT_EQ(env.run({"run", "edge", "--wait"}).exit_code, 0);
  daemon_process daemon{env};
  daemon.start();
  auto id = std::stoll(env.run({"sync"}).out);
  // Killed once packs arrive: the copy is under way, not yet done ("running"
  // is set before restic starts, and a fixed pause can outlast the copy).
  auto packs = [&] {
    std::size_t n = 0;
    std::error_code ec;
    for (auto it =
             std::filesystem::recursive_directory_iterator(env.path("b2/fleet/data"), ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec))
      n += it->is_regular_file(ec) ? 1 : 0;
    return n;
  };
  auto packs_before = packs();
  ASSERT_TRUE(wait_until([&] { return sync_state(env, "status") == "running"; }, 20s));
  ASSERT_TRUE(wait_until([&] { return packs() > packs_before; }, 20s, 20ms))
      << "the sync never wrote to the remote";
  remote.kill();
  auto status = [&] {
    auto r = env.run({"job", std::to_string(id), "--json"});
    return std::string(boost::json::parse(r.out).at("status").as_string());
  };
  // A dead remote is a transient failure: the job waits for a retry.
  auto retry_pending = [&] {
    auto job = job_json(env, id);
    return job.contains("failed_attempts") && job.at("failed_attempts").as_int64() == 1 &&
           status() == "queued" && !job.at("next_attempt_at").as_string().empty();
  };
  ASSERT_TRUE(wait_until(retry_pending, 120s)) << daemon.log();
  auto error = sync_state(env, "error");
  EXPECT_TRUE(contains(error, "off-site copy to")) << error;
  EXPECT_EQ(std::count(error.begin(), error.end(), '\n'), 0) << "one line: " << error;
  EXPECT_EQ(sync_state(env, "status"), "failed");
  std::string metrics;
  EXPECT_TRUE(wait_until(
      [&] {
        metrics = http_get(env.metrics_port(), "/metrics");
        return contains(metrics, "satoru_sync_status{status=\"failed\"} 1") &&
               contains(metrics, "satoru_offsite_lag_snapshots 1");
      },
      60s))
      << "the failed sync and the one snapshot not yet off-site show in the metrics\n"
      << metrics;

  // 4. The remote comes back; asking for a sync runs the pending retry now,
  // it succeeds and nothing is lost.
  ASSERT_TRUE(remote.start(env.path("b2"), remote.port())) << remote.last_error();
  auto again = std::stoll(env.run({"sync"}).out);
  EXPECT_EQ(again, id) << "the waiting retry is the sync that runs";
  auto again_status = [&] {
    auto r = env.run({"job", std::to_string(again), "--json"});
    return std::string(boost::json::parse(r.out).at("status").as_string());
  };
  ASSERT_TRUE(wait_until([&] { return again_status() == "success"; }, 120s))
      << daemon.log();
  EXPECT_EQ(snapshots(env, repo).size(), 4u);
  auto final_check = restic(env, repo, {"check"});
  EXPECT_EQ(final_check.exit_code, 0) << final_check.out << final_check.err;
  ASSERT_TRUE(wait_until(
      [&] {
        return contains(http_get(env.metrics_port(), "/metrics"),
                        "satoru_sync_status{status=\"success\"} 1");
      },
      10s));
  auto m = http_get(env.metrics_port(), "/metrics");
  EXPECT_TRUE(contains(m, "satoru_offsite_lag_snapshots 0")) << m;
  EXPECT_FALSE(contains(m, "satoru_sync_last_success_timestamp_seconds 0\n")) << m;
  EXPECT_EQ(daemon.stop(), 0);
}

TEST(Sync, RefusedWhenNoRemoteIsConfigured) {
  satoru_env env;
  env.write_config();
  auto r = env.run({"sync"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.err, "/restic_b2_repository")) << r.err;
}

TEST(Sync, OffsiteRetentionLeavesExactlyItsPolicysSnapshotsAndACleanRepository) {
  satoru_env env;
  edge_host host{env.path("edge")};
  ASSERT_TRUE(host.running());
  rclone_server remote;
  ASSERT_TRUE(remote.start(env.path("b2"))) << remote.last_error();
  auto dir = host.remote_root() + "/data";
  env.add_site("edge", host, {{"directory", dir}});
  auto repo = remote.repository("fleet");
  env.config["restic_b2_repository"] = repo;
  // The usual shape: the off-site copy keeps a longer history than the
  // local repository.
  env.config["restic_retention_policy"] = {{"keep_last", 1}};
  env.config["restic_b2_retention_policy"] = {{"keep_last", 2}};
  env.write_config();
  for (int i = 0; i < 3; ++i) {
    host.write_file(dir + "/f", "version " + std::to_string(i));
    ASSERT_EQ(env.run({"run", "edge", "--wait"}).exit_code, 0);
  }
  ASSERT_EQ(env.run({"sync", "--wait"}).exit_code, 0);
  auto hash = target_hash_of(env, "edge", 0);
  auto local = snapshots_of_target(env, env.path("repo"), hash);
  ASSERT_EQ(local.size(), 3u);
  ASSERT_EQ(snapshots_of_target(env, repo, hash).size(), 3u);
  ASSERT_EQ(env.run({"prune", "--wait"}).exit_code, 0);
  ASSERT_EQ(snapshots_of_target(env, env.path("repo"), hash).size(), 1u);

  auto r = env.run({"prune", "--offsite", "--wait"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "offsite_retention.forget")) << r.out;
  EXPECT_TRUE(contains(r.out, "kept 2, removed 1")) << r.out;
  EXPECT_TRUE(contains(r.out, "freed")) << r.out;
  // Off-site: the two newest (copies keep the local id as their original).
  auto left = snapshots_of_target(env, repo, hash);
  ASSERT_EQ(left.size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    auto shown = restic(env, repo, {"snapshots", "--json", left[i]});
    EXPECT_TRUE(contains(shown.out, local[i + 1])) << shown.out;
  }
  auto check = restic(env, repo, {"check"});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  auto id = parse_id(r);
  EXPECT_EQ(std::string(job_json(env, id).at("type").as_string()), "offsite_retention");
  // The next copy brings nothing back.
  auto again = env.run({"sync", "--wait"});
  EXPECT_TRUE(contains(again.out, "copied 0 new snapshot(s)")) << again.out;
  EXPECT_EQ(snapshots_of_target(env, repo, hash).size(), 2u);

  // Without an off-site repository there is nothing to prune there.
  env.config.erase("restic_b2_repository");
  env.config.erase("restic_b2_retention_policy");
  env.write_config();
  r = env.run({"prune", "--offsite"});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_TRUE(contains(r.err, "/restic_b2_repository")) << r.err;
}

TEST(Verification, ChecksAndRestoreDrillsProveRestorabilityAndFlagDamage) {
  satoru_env env;
  edge_host host{env.path("edge")};
  ASSERT_TRUE(host.running());
  rclone_server remote;
  ASSERT_TRUE(remote.start(env.path("b2"))) << remote.last_error();
  auto dir = host.remote_root() + "/data";
  auto db = host.remote_root() + "/app.db";
  host.write_file(dir + "/a.txt", "alpha\n");
  host.write_file(dir + "/sub/b.bin", std::string(5000, 'b'));
  host.make_sqlite_db(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);"
                          "CREATE TABLE u(x);"
                          "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n "
                          "WHERE i < 3000) INSERT INTO t(v) SELECT hex(randomblob(40)) "
                          "FROM n;");
  env.add_site("edge", host, {{"directory", dir}, {"sqlite_dump", db}});
  env.config["restic_b2_repository"] = remote.repository("fleet");
  env.config["check_read_data_subset"] = "100%";
  env.write_config();
  ASSERT_EQ(env.run({"run", "edge", "--wait"}).exit_code, 0);
  ASSERT_EQ(env.run({"sync", "--wait"}).exit_code, 0);

  // Both repositories pass restic check (reading all of their data).
  for (auto args : std::vector<std::vector<std::string>>{
           {"check", "--wait"}, {"check", "--offsite", "--wait"}}) {
    auto r = env.run(args);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_TRUE(contains(r.out, "passed") && contains(r.out, "read 100%")) << r.out;
  }
  EXPECT_EQ(sync_state(env, "status", "check:local"), "success");

  // Drills go round-robin: the folder, then the database; both verify.
  auto r = env.run({"drill", "--wait"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "verified") && contains(r.out, dir)) << r.out;
  r = env.run({"drill", "--wait"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "verified") && contains(r.out, db)) << r.out;
  auto sites = parse_json(env.run({"sites", "--json"})).as_array();
  ASSERT_EQ(sites.size(), 1u);
  EXPECT_NE(string_of(sites[0].at("last_verified_at")), "-");
  std::string db_verified;
  for (auto& t : sites[0].at("targets").as_array()) {
    EXPECT_NE(string_of(t.at("last_verified_at")), "-") << string_of(t.at("path"));
    if (string_of(t.at("path")) == db) db_verified = string_of(t.at("last_verified_at"));
  }
  EXPECT_TRUE(contains(env.run({"sites"}).out, "LAST VERIFIED"));
  // Nothing of the drills is left behind.
  std::string leftovers;
  run_shell("ls -a '" + env.path("staging") + "' | grep -c satoru-drill", &leftovers);
  EXPECT_EQ(leftovers, "0\n");

  // A database damaged in staging and snapshotted as it is: the drill of
  // that target fails on its integrity check, and it stays unverified.
  auto uuid = string_of(sites[0].at("uuid"));
  auto hash = target_hash_of(env, "edge", 1);
  auto staged = env.path("staging") + "/" + uuid + "/" + hash;
  ASSERT_EQ(run_shell("dd if=/dev/urandom of='" + staged +
                      "/app.db' bs=4096 seek=5 count=20 conv=notrunc 2>/dev/null"),
            0);
  ASSERT_EQ(run_shell("cd '" + staged + "' && RESTIC_PASSWORD_FILE='" +
                      env.password_file() + "' RESTIC_REPOSITORY='" + env.path("repo") +
                      "' restic backup -q --tag satoru --tag site=" + uuid +
                      " --tag target=" + hash + " . >/dev/null"),
            0);
  ASSERT_EQ(env.run({"drill", "--wait"}).exit_code, 0) << "the folder again";
  r = env.run({"drill", "--wait"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "integrity_check")) << r.out;
  EXPECT_TRUE(contains(r.out, "not retried")) << r.out;
  sites = parse_json(env.run({"sites", "--json"})).as_array();
  for (auto& t : sites[0].at("targets").as_array()) {
    if (string_of(t.at("path")) == db) {
      EXPECT_EQ(string_of(t.at("last_verified_at")), db_verified)
          << "a failed drill verifies nothing";
    }
  }

  // Bit rot in a pack of the local repository: check fails, not retried.
  // (A deleted pack would prove the same but costs minutes: restic retries a
  // missing file with backoff before it reports it.)
  ASSERT_EQ(run_shell("f=\"$(find '" + env.path("repo") +
                      "/data' -type f | head -1)\" && chmod u+w \"$f\" && "
                      "dd if=/dev/urandom of=\"$f\" bs=64 seek=1 count=4 conv=notrunc "
                      "2>/dev/null"),
            0);
  r = env.run({"check", "--wait"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "restic check of")) << r.out;
  EXPECT_EQ(sync_state(env, "status", "check:local"), "failed");
}
