// Jobs a person asked for and waits on: a preflight of an unreachable host
// answers at its first failure; a followed backup stops at its first failed
// attempt and says when the daemon tries again; a restore that changes the
// edge host runs at most once (no retry, no re-queue after a crash); and
// `satoru cancel` stops a queued job and a running backup, leaving the last
// snapshot as it was.
#include "satoru_env.hpp"

#include "satoru/job.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <filesystem>
#include <thread>

using namespace satoru::testing;
using namespace std::chrono_literals;

namespace {

std::int64_t job_field(const boost::json::object& job, const char* name) {
  return job.contains(name) ? job.at(name).as_int64() : -1;
}

std::string job_text(const boost::json::object& job, const char* name) {
  return job.contains(name) ? string_of(job.at(name)) : std::string{};
}

std::size_t events_with_step(const boost::json::object& job, const std::string& step) {
  std::size_t n = 0;
  if (job.contains("events"))
    for (const auto& e : job.at("events").as_array())
      n += e.at("step").as_string() == step ? 1 : 0;
  return n;
}

/// The site "edge" on a loopback port where nothing listens: every
/// connection is refused at once.
void add_unreachable_site(satoru_env& env, const edge_host& host) {
  env.add_site_at("edge", host, free_port(), {{"directory", "/srv/data"}});
  env.config["retry_max_attempts"] = 4;
  env.config["retry_initial_delay_seconds"] = 600; // the retry is far away
  env.config["retry_max_delay_seconds"] = 3600;
  env.write_config();
}

/// The ids of the snapshots `satoru snapshots --json` lists.
std::vector<std::string> snapshot_ids(const satoru_env& env) {
  auto listed = env.run({"snapshots", "--json"});
  EXPECT_EQ(listed.exit_code, 0) << listed.err;
  std::vector<std::string> ids;
  auto snapshots = parse_json(listed);
  for (const auto& s : snapshots.as_array())
    ids.push_back(string_of(s.at("id")));
  return ids;
}

} // namespace

TEST(JobControl, APreflightAPersonAskedForAnswersAtItsFirstFailureAndIsNotRetried) {
  satoru_env env;
  edge_host host{env.path("edge")};
  add_unreachable_site(env, host);
  // Without a daemon (run in this process) and with one (followed).
  for (bool with_daemon : {false, true}) {
    daemon_process daemon{env};
    if (with_daemon) daemon.start();
    auto r = env.run({"run", "edge", "--job", "preflight", "--wait"}, 60s);
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    auto job = job_json(env, parse_id(r));
    EXPECT_EQ(job_text(job, "status"), "failed") << r.err;
    EXPECT_EQ(job_field(job, "attempts"), 1);
    EXPECT_EQ(events_with_step(job, "retry"), 0u);
    EXPECT_TRUE(contains(job_text(job, "error"), "not retried"))
        << job_text(job, "error");
    if (with_daemon) EXPECT_EQ(daemon.stop(), 0);
  }
}

TEST(JobControl, AFollowedBackupStopsAtItsFirstFailedAttemptWhileTheDaemonRetriesIt) {
  satoru_env env;
  edge_host host{env.path("edge")};
  add_unreachable_site(env, host);
  daemon_process daemon{env};
  daemon.start();
  auto id = parse_id(env.run({"run", "edge"}));
  auto followed = env.run({"job", std::to_string(id), "--follow"}, 60s);
  EXPECT_EQ(followed.exit_code, 1) << followed.out << followed.err;
  EXPECT_TRUE(contains(followed.err, "the daemon retries at ")) << followed.err;
  EXPECT_TRUE(contains(followed.err, "(attempt 2 of 4)")) << followed.err;
  // The daemon's own retry is unchanged: the backup waits for it.
  auto job = job_json(env, id);
  EXPECT_EQ(job_text(job, "status"), "queued");
  EXPECT_EQ(job_field(job, "failed_attempts"), 1);
  EXPECT_EQ(events_with_step(job, "retry"), 1u);
  EXPECT_EQ(daemon.stop(), 0);
  // With no daemon, the follower says that nothing will retry it.
  auto alone = env.run({"job", std::to_string(id), "--follow"}, 60s);
  EXPECT_EQ(alone.exit_code, 1) << alone.err;
  EXPECT_TRUE(contains(alone.err, "no daemon is running, so nothing retries it"))
      << alone.err;
}

TEST(JobControl, AnApplyingRestoreWhoseHostRefusesConnectionsFailsOnceAndIsNotRetried) {
  satoru_env env;
  edge_host host{env.path("edge")};
  ASSERT_TRUE(host.running());
  const std::string data = host.remote_root() + "/srv";
  host.write_file(data + "/a.txt", "version 1\n");
  env.add_site("edge", host, {{"directory", data}});
  env.config["retry_max_attempts"] = 4;
  env.config["retry_initial_delay_seconds"] = 0; // a retry would come at once
  env.write_config();
  auto backup = env.run({"run", "edge", "--wait"});
  ASSERT_EQ(backup.exit_code, 0) << backup.out << backup.err;
  host.stop(); // connections are refused
  auto r = env.run({"restore", "edge", data, "--to-host", "--yes"}, 120s);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  auto job = job_json(env, parse_id(r));
  EXPECT_EQ(job_text(job, "status"), "failed");
  EXPECT_EQ(job_field(job, "attempts"), 1) << "an applying restore runs at most once";
  EXPECT_EQ(events_with_step(job, "retry"), 0u);
  EXPECT_TRUE(contains(job_text(job, "error"),
                       "not applied again automatically; run it again to apply"))
      << job_text(job, "error");
}

TEST(JobControl, AnApplyingRestoreCutShortByAKilledDaemonIsNotQueuedAgain) {
  satoru_env env;
  edge_host host{env.path("edge")};
  ASSERT_TRUE(host.running());
  const std::string data = host.remote_root() + "/srv";
  // Enough data that restoring it takes a while on loopback.
  ASSERT_EQ(host.sh("mkdir -p '" + data + "' && head -c 48M /dev/urandom > '" + data +
                    "/blob'"),
            0);
  env.add_site("edge", host, {{"directory", data}});
  env.write_config();
  ASSERT_EQ(env.run({"run", "edge", "--wait"}).exit_code, 0);
  daemon_process daemon{env};
  daemon.start();
  cli_result followed;
  std::thread follower([&] {
    followed = env.run({"restore", "edge", data, "--to-host", "--yes", "--dest",
                        host.remote_root() + "/restored"});
  });
  // Joined however the test ends (the follower ends with the job, or at
  // its own timeout).
  struct joined {
    std::thread& thread;
    ~joined() {
      if (thread.joinable()) thread.join();
    }
  } join_follower{follower};
  std::int64_t id = 0;
  ASSERT_TRUE(wait_until(
      [&] {
        auto jobs = parse_json(env.run({"jobs", "--json"}));
        if (!jobs.is_array()) return false;
        for (const auto& j : jobs.as_array())
          if (string_of(j.at("type")) == "restore" &&
              string_of(j.at("status")) == "running") {
            id = j.at("id").as_int64();
            return true;
          }
        return false;
      },
      60s, 20ms))
      << daemon.log();
  daemon.kill9();
  daemon.start(); // recovery finds the job of the dead process
  EXPECT_TRUE(wait_until(
      [&] {
        auto status = satoru::parse_job_status(status_of(env, id));
        return status && satoru::is_finished(*status);
      },
      60s))
      << daemon.log();
  follower.join();
  EXPECT_EQ(status_of(env, id), "failed") << "not applied a second time";
  EXPECT_EQ(followed.exit_code, 1) << followed.out << followed.err;
  auto job = job_json(env, id);
  EXPECT_EQ(job_field(job, "attempts"), 1) << "never claimed again";
  EXPECT_TRUE(contains(job_text(job, "error"),
                       "not applied again automatically; run it again to apply"))
      << job_text(job, "error");
  EXPECT_EQ(daemon.stop(), 0);
}

TEST(JobControl, CancelStopsAQueuedJobAndARunningBackupLeavingTheLastSnapshot) {
  satoru_env env;
  edge_host host{env.path("edge")};
  ASSERT_TRUE(host.running());
  auto dir = add_slow_site(env, host, 6);
  // A queued job (no daemon runs it) ends at once.
  auto queued = parse_id(env.run({"run", "edge"}));
  auto cancelled = env.run({"cancel", std::to_string(queued)});
  EXPECT_EQ(cancelled.exit_code, 0) << cancelled.out << cancelled.err;
  EXPECT_TRUE(contains(cancelled.out, "job " + std::to_string(queued) + " cancelled"));
  EXPECT_EQ(status_of(env, queued), "cancelled");
  auto again = env.run({"cancel", std::to_string(queued)});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_TRUE(contains(again.err, "already ended (cancelled); nothing to cancel"))
      << again.err;
  EXPECT_EQ(env.run({"cancel", "999"}).exit_code, 2);

  // A good backup, then the edge data changes and the next pull is cancelled.
  ASSERT_EQ(env.run({"run", "edge", "--wait"}).exit_code, 0);
  const auto before = snapshot_ids(env);
  ASSERT_EQ(before.size(), 1u);
  ASSERT_EQ(host.sh("head -c 1572864 /dev/urandom > '" + dir + "/blob'"), 0);
  daemon_process daemon{env};
  daemon.start();
  auto id = parse_id(env.run({"run", "edge"}));
  ASSERT_TRUE(wait_until(
      [&] {
        auto job = job_json(env, id);
        return job_text(job, "status") == "running" && events_with_step(job, "pull") > 0;
      },
      60s))
      << daemon.log();
  auto stopped = env.run({"cancel", std::to_string(id)}, 90s);
  EXPECT_EQ(stopped.exit_code, 0) << stopped.out << stopped.err << daemon.log();
  auto job = job_json(env, id);
  EXPECT_EQ(job_text(job, "status"), "cancelled");
  EXPECT_EQ(job_field(job, "attempts"), 1);
  EXPECT_EQ(events_with_step(job, "retry"), 0u);
  ASSERT_TRUE(
      wait_until([&] { return run_shell("pgrep -f '[r]sync.*" + dir + "'") != 0; }, 10s))
      << "the pull's rsync outlived the cancel";
  EXPECT_EQ(snapshot_ids(env), before) << "no snapshot of a cancelled pull";
  // The next backup repairs the staging copy and takes the new data.
  auto next = env.run({"run", "edge", "--wait"}, 120s);
  EXPECT_EQ(next.exit_code, 0) << next.out << next.err;
  EXPECT_EQ(snapshot_ids(env).size(), 2u);
  std::string staged;
  run_shell("find '" + env.path("staging") + "' -name blob", &staged);
  ASSERT_FALSE(staged.empty());
  EXPECT_EQ(file_digest(staged.substr(0, staged.find('\n'))), file_digest(dir + "/blob"));
  EXPECT_EQ(daemon.stop(), 0);
}
