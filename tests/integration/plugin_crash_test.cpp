// A plugin that crashes (SIGSEGV in its pull) ends the daemon it runs in:
// what an operator sees. The journal (here the daemon's log) names the
// plugin, the call and the target; the next start records that as a `fail`
// event of the job, the recovery queues the job again, and after the
// recovery limit the job fails.
#include "satoru_env.hpp"

#include <gtest/gtest.h>

#include <sys/resource.h>
#include <sys/stat.h>

#include <filesystem>

using namespace satoru::testing;
namespace fs = std::filesystem;

namespace {

/// A plugin_dir with the build's plugins and the crashing test plugin.
std::string plugin_dir_with_crash_test(const satoru_env& env) {
  const std::string dir = env.path("plugins");
  fs::create_directories(dir);
  ::chmod(dir.c_str(), 0755);
  for (const auto* from : {SATORU_PLUGIN_DIR, SATORU_TEST_PLUGIN_DIR})
    for (const auto& e : fs::directory_iterator(from))
      if (e.path().extension() == ".so")
        fs::copy_file(e.path(), dir + "/" + e.path().filename().string());
  return dir;
}

/// The messages of a job's events of `step`, in order.
std::vector<std::string> messages_of(const boost::json::object& job,
                                     const std::string& step) {
  std::vector<std::string> out;
  for (const auto& e : job.at("events").as_array())
    if (string_of(e.at("step")) == step) out.push_back(string_of(e.at("message")));
  return out;
}

} // namespace

TEST(PluginCrash, ASegfaultInPullStopsTheDaemonAndTheJobFailsAfterTheRecoveryLimit) {
  const rlimit no_core{0, 0}; // the crashes below leave no core files
  ::setrlimit(RLIMIT_CORE, &no_core);
  satoru_env env{"satoru-plugin-crash"};
  edge_host host{env.path("edge")};
  ASSERT_TRUE(host.running());
  const std::string go = env.path("go");
  env.config["plugin_dir"] = plugin_dir_with_crash_test(env);
  env.add_site("edge", host, {{"crash_test", "/srv/app"}});
  env.set_target_options(0, 0, {{"go_file", go}});
  env.write_config();

  daemon_process daemon{env};
  const std::string crashed =
      "plugin crash_test crashed (SIGSEGV) in pull of /srv/app (site edge, job ";
  std::int64_t id = 0;
  // The first run and three recoveries each crash the daemon.
  for (int crash = 1; crash <= 4; ++crash) {
    fs::remove(go);
    daemon.start();
    if (crash == 1) {
      auto queued = env.run({"run", "edge"});
      ASSERT_EQ(queued.exit_code, 0) << queued.out << queued.err;
      id = parse_id(queued);
    }
    write_text(go, "crash now\n"); // the pull waits for it
    const int pid = daemon.pid();
    ASSERT_TRUE(wait_until([&] { return process_gone(pid); }, std::chrono::seconds{30}))
        << "the daemon survived crash " << crash << ":\n"
        << daemon.log() << env.run({"job", std::to_string(id)}).out;
    daemon.kill9(); // reaps it
    const auto log = daemon.log();
    EXPECT_TRUE(contains(log, "satoru: " + crashed + std::to_string(id) + ")")) << log;
    if (crash < 4) {
      EXPECT_NE(status_of(env, id), "failed") << "crash " << crash;
    }
  }
  // The fifth start records the last crash and gives the job up.
  fs::remove(go);
  daemon.start();
  ASSERT_TRUE(wait_until([&] { return status_of(env, id) == "failed"; },
                         std::chrono::seconds{30}))
      << status_of(env, id) << "\n"
      << daemon.log();
  EXPECT_TRUE(daemon.running()) << "the daemon itself is fine";
  daemon.stop();
  const auto job = job_json(env, id);
  EXPECT_TRUE(contains(string_of(job.at("error")), "giving up after 3 recoveries"))
      << string_of(job.at("error"));
  // The error itself names what killed the daemon each time.
  EXPECT_TRUE(contains(string_of(job.at("error")), "(last: " + crashed))
      << string_of(job.at("error"));
  const auto crashes = messages_of(job, "plugin");
  ASSERT_EQ(crashes.size(), 4u) << boost::json::serialize(job);
  for (const auto& m : crashes)
    EXPECT_EQ(m, crashed + std::to_string(id) + "); the process running it stopped");
  EXPECT_EQ(messages_of(job, "recovery").size(), 4u) << boost::json::serialize(job);
  // `satoru job` shows it in plain words.
  auto shown = env.run({"job", std::to_string(id)});
  EXPECT_TRUE(contains(shown.out, "fail  plugin")) << shown.out;
}
