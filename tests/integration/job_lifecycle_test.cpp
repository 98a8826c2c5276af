// A job's life as an operator leaves it alone: retries with backoff of an
// edge host that is down, no retry of a changed host key, crashes of the
// daemon mid-pull, followers that end on every terminal status, and
// commands that only look and never write.
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

std::int64_t field(const boost::json::object& job, const char* name) {
  return job.contains(name) ? job.at(name).as_int64() : -1;
}

/// Adds the site "edge" backing up one small folder of `host`.
void add_small_site(satoru_env& env, const edge_host& host) {
  host.write_file(host.remote_root() + "/data/a", "hello");
  env.add_site("edge", host, {{"directory", host.remote_root() + "/data"}});
}

/// The events of a job with a given step.
std::vector<boost::json::object> events_of(const boost::json::object& job,
                                           const std::string& step) {
  std::vector<boost::json::object> out;
  if (!job.contains("events")) return out;
  for (const auto& e : job.at("events").as_array())
    if (e.at("step").as_string() == step) out.push_back(e.as_object());
  return out;
}

} // namespace

TEST(JobLifecycle, AnEdgeHostThatRefusesConnectionsIsRetriedWithGrowingBackoff) {
  satoru_env env;
  edge_host host{env.path("edge")};
  ASSERT_TRUE(host.running());
  add_small_site(env, host);
  // Enough attempts that the job cannot run out of them while the test
  // brings the host back, however loaded the machine is.
  env.config["retry_max_attempts"] = 10;
  env.config["retry_initial_delay_seconds"] = 1;
  env.config["retry_max_delay_seconds"] = 8;
  env.write_config();
  host.stop(); // the uplink is down: connections are refused

  daemon_process daemon{env};
  daemon.start();
  auto id = parse_id(env.run({"run", "edge"}));
  ASSERT_TRUE(
      wait_until([&] { return field(job_json(env, id), "failed_attempts") >= 2; }, 60s))
      << daemon.log();
  // While it waits, sites and jobs say when the next attempt runs.
  auto sites = env.run({"sites", "--json"});
  ASSERT_EQ(sites.exit_code, 0) << sites.err;
  host.restart(); // the uplink is back
  ASSERT_TRUE(wait_until([&] { return status_of(env, id) == "success"; }, 60s))
      << daemon.log();

  // The delay is drawn with full jitter from [0, bound], so a further attempt
  // may be refused before the host is back: the test reads how many were
  // refused and asserts that every one of them was retried with a doubling,
  // capped bound, and that the first attempt after the restart succeeded.
  auto job = job_json(env, id);
  auto failed = field(job, "failed_attempts");
  EXPECT_GE(failed, 2) << "at least two refused attempts";
  EXPECT_EQ(field(job, "attempts"), failed + 1) << "then one that succeeded";
  auto retries = events_of(job, "retry");
  ASSERT_EQ(static_cast<std::int64_t>(retries.size()), failed);
  std::vector<std::int64_t> bounds;
  std::vector<std::int64_t> expected;
  for (const auto& e : retries) {
    EXPECT_TRUE(contains(std::string(e.at("message").as_string()), "transient"))
        << e.at("message").as_string();
    bounds.push_back(e.at("data").at("backoff_bound_ms").as_int64());
    expected.push_back(std::min<std::int64_t>(1000 << expected.size(), 8000));
  }
  EXPECT_EQ(bounds, expected) << "the backoff doubles up to retry_max_delay_seconds";
  EXPECT_EQ(daemon.stop(), 0);
}

TEST(JobLifecycle, AChangedHostKeyIsNotRetried) {
  satoru_env env;
  edge_host host{env.path("edge")};
  edge_host impostor{env.path("impostor")};
  ASSERT_TRUE(host.running());
  ASSERT_TRUE(impostor.running());
  add_small_site(env, host);
  env.config["retry_max_attempts"] = 4; // retries allowed, yet none happens
  env.config["retry_initial_delay_seconds"] = 0;
  // The pinned key is the impostor's: the real host presents another one.
  {
    std::ofstream kh(env.path("pinned_known_hosts"));
    auto line = impostor.known_hosts_line();
    auto space = line.find(' ');
    kh << "[127.0.0.1]:" << host.port() << line.substr(space) << "\n";
  }
  env.config["sites"].as_array()[0].as_object()["ssh"].as_object()["known_hosts_file"] =
      env.path("pinned_known_hosts");
  env.write_config();
  auto r = env.run({"run", "edge", "--wait"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  auto job = job_json(env, parse_id(r));
  EXPECT_EQ(job.at("status").as_string(), "failed");
  EXPECT_EQ(field(job, "attempts"), 1) << "a permanent failure runs once";
  EXPECT_TRUE(events_of(job, "retry").empty());
  EXPECT_TRUE(contains(std::string(job.at("error").as_string()), "not retried"))
      << job.at("error").as_string();
}

TEST(JobLifecycle, TwoKillsMidPullThenARestartFinishTheJobCleanly) {
  satoru_env env;
  edge_host host{env.path("edge")};
  ASSERT_TRUE(host.running());
  auto dir = add_slow_site(env, host, 8);
  daemon_process daemon{env};
  daemon.start();
  auto id = parse_id(env.run({"run", "edge"}));
  for (int kill = 1; kill <= 2; ++kill) {
    ASSERT_TRUE(wait_until(
        [&] {
          auto job = job_json(env, id);
          return job.contains("status") && job.at("status").as_string() == "running" &&
                 field(job, "attempts") == kill;
        },
        30s))
        << daemon.log();
    std::this_thread::sleep_for(2s); // mid-pull
    daemon.kill9();
    ASSERT_TRUE(wait_until(
        [&] { return run_shell("pgrep -f '[r]sync.*" + dir + "' >/dev/null") != 0; }, 5s))
        << "an rsync outlived the killed daemon";
    daemon.start();
  }
  ASSERT_TRUE(wait_until([&] { return status_of(env, id) == "success"; }, 120s))
      << daemon.log();
  auto job = job_json(env, id);
  EXPECT_EQ(field(job, "recoveries"), 2);
  EXPECT_EQ(field(job, "failed_attempts"), 0) << "crashes use up no retries";
  EXPECT_EQ(daemon.stop(), 0);
  // No temp folder left in staging; the repository is sound.
  std::string leftovers;
  run_shell("find '" + env.path("staging") + "' -name '.work-*' -o -name 'rsync-tmp'",
            &leftovers);
  EXPECT_EQ(leftovers, "");
  auto checked = restic(env, env.path("repo"), {"check"});
  EXPECT_EQ(checked.exit_code, 0) << checked.out << checked.err;
}

TEST(JobLifecycle, FollowersEndWhenTheJobIsInterrupted) {
  satoru_env env;
  edge_host host{env.path("edge")};
  ASSERT_TRUE(host.running());
  add_slow_site(env, host, 20);
  daemon_process daemon{env};
  daemon.start();
  auto id = parse_id(env.run({"run", "edge"}));
  ASSERT_TRUE(wait_until([&] { return status_of(env, id) == "running"; }, 20s));
  cli_result followed;
  std::thread follower([&] {
    followed = env.run({"job", std::to_string(id), "--follow"}, 60s);
  });
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(daemon.stop(), 0);
  follower.join();
  EXPECT_EQ(status_of(env, id), "interrupted");
  EXPECT_EQ(followed.exit_code, 1)
      << "interrupted is not success: " << followed.out << followed.err;
}

TEST(JobLifecycle, ReadOnlyCommandsLeaveTheDatabaseByteIdentical) {
  satoru_env env;
  edge_host host{env.path("edge")};
  ASSERT_TRUE(host.running());
  add_small_site(env, host);
  env.write_config();
  auto r = env.run({"run", "edge", "--job", "preflight", "--wait"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto id = std::to_string(parse_id(r));

  // Another config naming the same database but other sites.
  auto other = env.config;
  other["database_path"] = env.path("state/satoru.db");
  other["staging_root"] = env.path("staging");
  other["restic_repo_path"] = env.path("repo");
  other["restic_password_file"] = env.password_file();
  other["sites"] = boost::json::array{};
  auto other_path = env.path("other.json");
  {
    std::ofstream out(other_path);
    out << boost::json::serialize(other);
  }
  auto db = env.path("state/satoru.db");
  auto before = file_digest(db);
  auto wal_before = std::filesystem::exists(db + "-wal") ? file_digest(db + "-wal") : "";
  for (const auto& config : {env.config_path(), other_path})
    for (std::vector<std::string> args : {std::vector<std::string>{"sites"},
                                          {"sites", "--json"},
                                          {"jobs"},
                                          {"jobs", "--json"},
                                          {"job", id},
                                          {"job", id, "--json"},
                                          {"snapshots"},
                                          {"plugins"}}) {
      satoru::process_spec spec;
      spec.argv = {SATORU_BIN, "--config", config};
      spec.argv.insert(spec.argv.end(), args.begin(), args.end());
      spec.timeout = 60s;
      auto ran = satoru::run_process(spec);
      ASSERT_TRUE(ran);
      EXPECT_NE(ran->exit_code, 2) << args[0] << ": " << ran->err;
    }
  EXPECT_EQ(file_digest(db), before) << "a read-only command changed the database";
  // A read-only WAL reader may leave an empty -wal file behind (SQLite
  // creates it to read); it must hold no writes.
  if (wal_before.empty()) {
    std::error_code ec;
    auto size = std::filesystem::file_size(db + "-wal", ec);
    EXPECT_TRUE(ec || size == 0) << "the WAL holds " << size << " bytes";
  } else {
    EXPECT_EQ(file_digest(db + "-wal"), wal_before);
  }
  // The daemon's sites are still enabled: `sites` with the other config shows none.
  auto sites = env.run({"sites", "--json"});
  ASSERT_EQ(sites.exit_code, 0);
  auto list = boost::json::parse(sites.out).as_array();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].at("health").as_string(), "ok");
}

TEST(JobLifecycle, SighupReloadsTheConfigAndAnInvalidOneChangesNothing) {
  satoru_env env;
  edge_host host{env.path("edge")};
  ASSERT_TRUE(host.running());
  add_small_site(env, host);
  env.write_config();
  daemon_process daemon{env};
  daemon.start();

  // An invalid config: logged, and the daemon goes on with the old one.
  {
    std::ofstream broken(env.config_path());
    broken << "{ \"sites\": [ ";
  }
  ASSERT_TRUE(daemon.signal(SIGHUP)) << daemon.log();
  ASSERT_TRUE(
      wait_until([&] { return contains(daemon.log(), "keeping the running one"); }, 10s))
      << daemon.log();
  env.write_config();
  auto r = env.run({"run", "edge", "--job", "preflight", "--wait"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;

  // A second site added: the reload says so and the daemon runs its jobs.
  env.add_site("second", host, {{"directory", host.remote_root() + "/data"}});
  env.write_config();
  ASSERT_TRUE(daemon.signal(SIGHUP)) << daemon.log();
  ASSERT_TRUE(wait_until([&] { return contains(daemon.log(), "added: second"); }, 10s))
      << daemon.log();
  auto second = env.run({"run", "second", "--job", "preflight", "--wait"});
  EXPECT_EQ(second.exit_code, 0) << second.out << second.err;
  EXPECT_TRUE(contains(daemon.log(), "job " + std::to_string(parse_id(second))))
      << "the daemon, not the command, ran it";
  EXPECT_EQ(daemon.stop(), 0);
}

TEST(JobLifecycle, RunQueuesSeveralSitesOrAllOfThemInOneCall) {
  satoru_env env{"satoru-run-many"};
  edge_host host{env.path("edge")};
  ASSERT_TRUE(host.running());
  for (const char* name : {"a", "b", "c"})
    env.add_site(name, host, {{"directory", host.remote_root()}});
  env.write_config();
  auto lines = [](const std::string& out) {
    std::vector<std::string> ids;
    std::istringstream in(out);
    for (std::string line; std::getline(in, line);)
      ids.push_back(line);
    return ids;
  };

  // A misspelt name queues nothing, not even the good names before it.
  auto bad = env.run({"run", "a", "bb"});
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
  EXPECT_TRUE(contains(bad.err, "unknown site \"bb\"")) << bad.err;
  EXPECT_EQ(bad.out, "");
  auto several_waits = env.run({"run", "a", "b", "--wait"});
  EXPECT_EQ(several_waits.exit_code, 2) << several_waits.err;

  auto two = env.run({"run", "a", "b"});
  ASSERT_EQ(two.exit_code, 0) << two.err;
  auto two_ids = lines(two.out);
  ASSERT_EQ(two_ids.size(), 2u) << two.out;
  // --all: every site in config order; a and b are the jobs already queued.
  auto all = env.run({"run", "--all"});
  ASSERT_EQ(all.exit_code, 0) << all.err;
  auto all_ids = lines(all.out);
  ASSERT_EQ(all_ids.size(), 3u) << all.out;
  EXPECT_EQ(all_ids[0], two_ids[0]);
  EXPECT_EQ(all_ids[1], two_ids[1]);
  EXPECT_TRUE(contains(all.err, "already queued")) << all.err;
  for (std::size_t i = 0; i < all_ids.size(); ++i) {
    auto job = job_json(env, std::stoll(all_ids[i]));
    EXPECT_EQ(job.at("site").as_string(), std::string(1, static_cast<char>('a' + i)));
    EXPECT_EQ(job.at("status").as_string(), "queued");
  }
}
