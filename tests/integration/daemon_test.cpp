// The daemon as an operator runs it: background jobs, SIGTERM, crash
// recovery, the concurrency cap, the metrics endpoint and bad input.
#include "satoru_env.hpp"

#include "satoru/process.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

using namespace satoru::testing;
using namespace std::chrono_literals;

namespace {

/// A site whose one directory target takes about `seconds` to pull (like
/// add_slow_site, under another name and folder).
void add_slow_site_called(satoru_env& env, const edge_host& host, const std::string& name,
                          int seconds) {
  auto dir = host.remote_root() + "/slow-" + name;
  ASSERT_EQ(host.sh("mkdir -p '" + dir + "' && head -c " +
                    std::to_string(seconds * 256 * 1024) + " /dev/urandom > '" + dir +
                    "/blob'"),
            0);
  auto i = env.add_site(name, host, {{"directory", dir}});
  env.set_target_options(i, 0, {{"bwlimit_kbps", 256}, {"compress", false}});
}

/// How many reloads the daemon has logged as done.
std::size_t reloads_in(const std::string& log) {
  std::size_t n = 0;
  for (auto at = log.find("config reloaded: "); at != std::string::npos;
       at = log.find("config reloaded: ", at + 1))
    ++n;
  return n;
}

/// Sends SIGHUP and waits until the daemon logged that reload.
void reload_daemon(const daemon_process& daemon) {
  auto before = reloads_in(daemon.log());
  ASSERT_TRUE(daemon.signal(SIGHUP)) << daemon.log();
  ASSERT_TRUE(wait_until([&] { return reloads_in(daemon.log()) > before; }, 20s))
      << daemon.log();
}

} // namespace

TEST(Daemon, RunQueuesInTheBackgroundAndTheDaemonStartsItWithinASecond) {
  satoru_env env;
  edge_host host{env.path("edge")};
  ASSERT_TRUE(host.running());
  host.write_file(host.remote_root() + "/data/a", "a");
  env.add_site("edge", host, {{"directory", host.remote_root() + "/data"}});
  env.config["site_scan_interval_hours"] = 0; // only what we ask for
  env.write_config();
  daemon_process daemon{env};
  daemon.start();

  auto started = std::chrono::steady_clock::now();
  auto r = env.run({"run", "edge", "--job", "preflight"});
  auto returned = std::chrono::steady_clock::now() - started;
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_LT(returned, 5s) << "run returns at once";
  auto id = parse_id(r);
  // The daemon looks every 500 ms; each status_of is a CLI process, which
  // takes longer on a loaded machine.
  ASSERT_TRUE(wait_until([&] { return status_of(env, id) != "queued"; }, 10s))
      << "the job did not start";
  ASSERT_TRUE(wait_until([&] { return status_of(env, id) == "success"; }, 60s))
      << daemon.log();
  auto job = job_json(env, id);
  EXPECT_EQ(job.at("attempts").as_int64(), 1);
  EXPECT_FALSE(job.at("events").as_array().empty());

  // --wait with a live daemon follows the daemon's run of the job.
  auto waited = env.run({"run", "edge", "--job", "preflight", "--wait"});
  EXPECT_EQ(waited.exit_code, 0) << waited.out << waited.err;
  EXPECT_TRUE(contains(waited.out, "preflight.ssh")) << waited.out;
  EXPECT_TRUE(contains(daemon.log(), "job " + std::to_string(parse_id(waited))))
      << daemon.log();

  std::chrono::milliseconds took{};
  EXPECT_EQ(daemon.stop(&took), 0);
  EXPECT_LT(took, 10s);
}

TEST(Daemon, SigtermInterruptsRunningJobsAndTheNextStartFinishesThem) {
  satoru_env env;
  edge_host host{env.path("edge")};
  ASSERT_TRUE(host.running());
  auto dir = add_slow_site(env, host, 12);
  daemon_process daemon{env};
  daemon.start();
  auto id = parse_id(env.run({"run", "edge"}));
  ASSERT_TRUE(wait_until([&] { return status_of(env, id) == "running"; }, 10s));
  std::this_thread::sleep_for(2s);
  std::chrono::milliseconds took{};
  EXPECT_EQ(daemon.stop(&took), 0) << daemon.log();
  EXPECT_LT(took, 10s);
  EXPECT_EQ(status_of(env, id), "interrupted");
  // No rsync left behind (the edge's `rsync --server` ends by itself once
  // its channel is closed: it gets a moment).
  EXPECT_TRUE(wait_until(
      [&] { return run_shell("pgrep -f '[r]sync.*" + dir + "' >/dev/null") != 0; }, 5s));

  daemon.start();
  ASSERT_TRUE(wait_until([&] { return status_of(env, id) == "success"; }, 90s))
      << daemon.log();
  auto job = job_json(env, id);
  EXPECT_EQ(job.at("attempts").as_int64(), 2);
  bool requeued = false;
  for (auto& e : job.at("events").as_array())
    requeued |= e.at("step").as_string() == "recovery";
  EXPECT_TRUE(requeued);
}

TEST(Daemon, AJobOfAKilledDaemonIsQueuedAgainAndFinishes) {
  satoru_env env;
  edge_host host{env.path("edge")};
  ASSERT_TRUE(host.running());
  auto dir = add_slow_site(env, host, 10);
  daemon_process daemon{env};
  daemon.start();
  auto id = parse_id(env.run({"run", "edge"}));
  ASSERT_TRUE(wait_until([&] { return status_of(env, id) == "running"; }, 10s));
  std::this_thread::sleep_for(2s);
  daemon.kill9();
  EXPECT_EQ(status_of(env, id), "running") << "a killed daemon cannot clean up";
  // Its rsync child died with it (PR_SET_PDEATHSIG); nothing else writes to staging.
  EXPECT_TRUE(wait_until(
      [&] { return run_shell("pgrep -f '[r]sync.*" + dir + "' >/dev/null") != 0; }, 5s))
      << [] {
           std::string out;
           run_shell("pgrep -af rsync", &out);
           return out;
         }();

  daemon.start();
  ASSERT_TRUE(wait_until([&] { return status_of(env, id) == "success"; }, 90s))
      << daemon.log();
  auto job = job_json(env, id);
  EXPECT_EQ(job.at("attempts").as_int64(), 2);
  EXPECT_EQ(job.at("recoveries").as_int64(), 1);
  EXPECT_EQ(job.at("failed_attempts").as_int64(), 0) << "a crash uses no retry";
  std::string messages;
  for (auto& e : job.at("events").as_array())
    messages += std::string(e.at("message").as_string()) + "\n";
  EXPECT_TRUE(contains(messages, "no longer alive") ||
              contains(messages, "lease ran out"))
      << messages;
}

// A reload changes the config, not the running work: three reloads during
// two slow backups (one adds a site and turns the scheduler on, one removes
// the site of the second backup, one changes a setting) interrupt neither.
TEST(Daemon, ReloadsLetRunningBackupsFinishWithTheConfigTheyStartedWith) {
  satoru_env env;
  edge_host host{env.path("edge")};
  ASSERT_TRUE(host.running());
  add_slow_site_called(env, host, "edge", 12);
  add_slow_site_called(env, host, "leaving", 12);
  env.write_config();
  daemon_process daemon{env};
  daemon.start();
  auto edge = parse_id(env.run({"run", "edge"}));
  auto leaving = parse_id(env.run({"run", "leaving"}));
  ASSERT_TRUE(wait_until(
      [&] {
        return status_of(env, edge) == "running" && status_of(env, leaving) == "running";
      },
      20s))
      << daemon.log();

  // 1: a site added, and the scheduler on (it backs up due sites itself).
  host.write_file(host.remote_root() + "/added/a", "a");
  env.add_site("added", host, {{"directory", host.remote_root() + "/added"}});
  env.config["site_scan_interval_hours"] = 24;
  env.write_config();
  reload_daemon(daemon);
  // 2: the site of the second running backup removed.
  auto& sites = env.config["sites"].as_array();
  sites.erase(std::find_if(sites.begin(), sites.end(), [](const boost::json::value& s) {
    return s.at("name").as_string() == "leaving";
  }));
  env.write_config();
  reload_daemon(daemon);
  // 3: a setting changed.
  env.config["target_timeout_seconds"] = 400;
  env.write_config();
  reload_daemon(daemon);
  EXPECT_TRUE(contains(daemon.log(), "added: added")) << daemon.log();
  EXPECT_TRUE(contains(daemon.log(), "removed: leaving")) << daemon.log();
  EXPECT_TRUE(
      contains(daemon.log(), "running jobs finish with the config they started with"))
      << daemon.log();

  for (auto id : {edge, leaving}) {
    ASSERT_TRUE(wait_until(
        [&] {
          auto s = status_of(env, id);
          return s != "running" && s != "queued";
        },
        120s))
        << daemon.log();
    auto job = job_json(env, id);
    EXPECT_EQ(job.at("status").as_string(), "success") << daemon.log();
    EXPECT_EQ(job.at("attempts").as_int64(), 1) << "a reload interrupted it";
  }
  // The added site gets its first backup from the reloaded scheduler.
  auto backed_up = [&] {
    auto r = env.run({"sites", "--json"});
    if (r.exit_code != 0) return false;
    auto list = boost::json::parse(r.out);
    for (const auto& s : list.as_array())
      if (s.at("name").as_string() == "added")
        return s.at("last_success_at").as_string() != "-";
    return false;
  };
  EXPECT_TRUE(wait_until(backed_up, 90s, 500ms)) << daemon.log();
  EXPECT_EQ(daemon.stop(), 0);
}

TEST(Daemon, TwentySitesWithConcurrencyThreeNeverRunMoreThanThree) {
  satoru_env env;
  edge_host host{env.path("edge")};
  ASSERT_TRUE(host.running());
  host.write_file(host.remote_root() + "/data/a", "a");
  for (int i = 0; i < 20; ++i)
    env.add_site("site-" + std::to_string(i), host,
                 {{"directory", host.remote_root() + "/data"}});
  env.config["job_worker_concurrency"] = 3;
  env.config["site_scan_interval_hours"] = 0;
  env.write_config();
  std::vector<std::int64_t> ids;
  for (int i = 0; i < 20; ++i)
    ids.push_back(
        parse_id(env.run({"run", "site-" + std::to_string(i), "--job", "preflight"})));
  daemon_process daemon{env};
  daemon.start();
  ASSERT_TRUE(wait_until(
      [&] {
        auto r = env.run({"jobs", "--json", "--limit", "100"});
        auto jobs = boost::json::parse(r.out).as_array();
        return std::all_of(jobs.begin(), jobs.end(), [](auto& j) {
          auto s = j.at("status").as_string();
          return s == "success" || s == "failed" || s == "warning";
        });
      },
      180s))
      << daemon.log();
  daemon.stop();
  // From the table: at no instant were more than 3 jobs between start and finish.
  satoru::process_spec q;
  q.argv = {"sqlite3", env.path("state/satoru.db"),
            "SELECT started_at, finished_at FROM jobs ORDER BY id"};
  auto rows = satoru::run_process(q);
  ASSERT_TRUE(rows && rows->ok());
  std::vector<std::pair<std::int64_t, int>> edges;
  std::istringstream in(rows->out);
  std::string line;
  int finished = 0;
  while (std::getline(in, line)) {
    auto bar = line.find('|');
    auto start = std::stoll(line.substr(0, bar));
    auto end = std::stoll(line.substr(bar + 1));
    ASSERT_GT(start, 0);
    ASSERT_GE(end, start);
    edges.push_back({start, +1});
    edges.push_back({end, -1});
    ++finished;
  }
  EXPECT_EQ(finished, 20);
  std::sort(edges.begin(), edges.end()); // an end sorts before a start at the same ms
  int running = 0, peak = 0;
  for (auto& [t, d] : edges)
    peak = std::max(peak, running += d);
  EXPECT_LE(peak, 3);
  EXPECT_GE(peak, 2) << "sites should run side by side";
}

TEST(Daemon, MetricsEndpointPassesPromtool) {
  satoru_env env;
  edge_host host{env.path("edge")};
  ASSERT_TRUE(host.running());
  host.write_file(host.remote_root() + "/data/a", "a");
  env.add_site("edge", host, {{"directory", host.remote_root() + "/data"}});
  env.config["site_scan_interval_hours"] = 0;
  env.write_config();
  daemon_process daemon{env};
  daemon.start();
  auto id = parse_id(env.run({"run", "edge", "--job", "preflight"}));
  ASSERT_TRUE(wait_until([&] { return status_of(env, id) == "success"; }, 60s));
  std::string body;
  ASSERT_TRUE(wait_until(
      [&] {
        body = http_get(env.metrics_port(), "/metrics");
        return contains(
            body, "satoru_jobs_finished_total{status=\"success\",type=\"preflight\"} 1");
      },
      10s))
      << body;
  for (auto name :
       {"satoru_build_info", "satoru_job_duration_seconds_bucket", "satoru_queue_jobs",
        "satoru_running_jobs", "satoru_site_health{site=\"edge\",state=\"ok\"} 1",
        "satoru_site_last_preflight_timestamp_seconds{site=\"edge\"}"})
    EXPECT_TRUE(contains(body, name)) << name << "\n" << body;
  satoru::process_spec check;
  check.argv = {"promtool", "check", "metrics"};
  check.stdin_data = body;
  auto r = satoru::run_process(check);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->exit_code, 0) << r->out << r->err;
  // The endpoint listens on loopback only by default.
  EXPECT_TRUE(contains(read_file(env.config_path()), "127.0.0.1:"));
}

TEST(Cli, UnknownSiteIsAUsageErrorWithTheClosestNames) {
  satoru_env env;
  edge_host host{env.path("edge")};
  env.add_site("store-berlin-01", host, {{"directory", "/srv"}});
  env.add_site("store-munich-02", host, {{"directory", "/srv"}});
  env.write_config();
  auto r = env.run({"run", "store-berlin-1"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.err, "unknown site \"store-berlin-1\"")) << r.err;
  EXPECT_TRUE(contains(r.err, "store-berlin-01")) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line: " << r.err;
}

TEST(Cli, MalformedJobIdIsAUsageError) {
  satoru_env env;
  env.write_config();
  for (auto bad : {"abc", "-1", "12x", "0"}) {
    auto r = env.run({"job", bad});
    EXPECT_EQ(r.exit_code, 2) << bad;
    EXPECT_TRUE(contains(r.err, "not a job id")) << r.err;
  }
  auto missing = env.run({"job", "999"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_TRUE(contains(missing.err, "no job 999")) << missing.err;
}

TEST(Cli, ALockedDatabaseIsWaitedFor) {
  satoru_env env;
  edge_host host{env.path("edge")};
  env.add_site("edge", host, {{"directory", "/srv"}});
  env.write_config();
  ASSERT_EQ(env.run({"run", "edge", "--job", "preflight"}).exit_code,
            0); // creates the database
  // Another process holds the write lock for 5 seconds; the marker says it
  // has it.
  auto held = env.path("lock-held");
  std::thread locker([&] {
    run_shell("(echo 'BEGIN IMMEDIATE; UPDATE sites SET health = health;'; echo '.system "
              "touch " +
              held + "'; sleep 5; echo 'COMMIT;') | sqlite3 '" +
              env.path("state/satoru.db") + "'");
  });
  ASSERT_TRUE(wait_until([&] { return std::filesystem::exists(held); }, 30s))
      << "the locker never got the lock";
  auto started = std::chrono::steady_clock::now();
  auto r = env.run({"run", "edge"});
  auto took = std::chrono::steady_clock::now() - started;
  locker.join();
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_GE(took, 1500ms) << "it waited for the lock";
}
