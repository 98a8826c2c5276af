// One OpenSSH master connection per site job: every rsync of a job rides on
// it (the edge sshd accepts one connection for all of them), its socket sits
// in a private folder that is empty when the job is over, and a daemon killed
// mid-job leaves no master behind once the next daemon has started.
#include "satoru_env.hpp"

#include <gtest/gtest.h>

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>

using namespace satoru::testing;
using namespace std::chrono_literals;

namespace {

/// The names in a folder ("." and ".." left out).
std::set<std::string> entries_of(const std::string& dir) {
  std::set<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec))
    out.insert(e.path().filename().string());
  return out;
}

/// Running, not a zombie: a master is a daemon whose parent is pid 1, which
/// in a container may never reap it.
bool alive(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string stat{std::istreambuf_iterator<char>(f), {}};
  auto paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] != 'Z';
}

/// Pids of the ssh masters opened with a socket in `dir` (their command
/// line says ControlMaster=yes and names the socket).
std::vector<int> masters_in(const std::string& dir) {
  std::vector<int> out;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    const auto name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream f(e.path() / "cmdline", std::ios::binary);
    std::string cmd{std::istreambuf_iterator<char>(f), {}};
    std::replace(cmd.begin(), cmd.end(), '\0', ' ');
    if (contains(cmd, "ControlMaster=yes") && contains(cmd, dir + "/") &&
        alive(std::stoi(name)))
      out.push_back(std::stoi(name));
  }
  return out;
}

struct SshMaster : ::testing::Test {
  satoru_env env{"satoru-cm"};
  edge_host host{env.path("edge")};
  /// control_socket_dir(): "cm" beside the state database.
  std::string sockets = env.path("state/cm");

  void SetUp() override { ASSERT_TRUE(host.running()); }
};

} // namespace

TEST_F(SshMaster, EveryRsyncOfAJobRidesOnOneConnection) {
  const std::string a = host.remote_root() + "/a";
  const std::string b = host.remote_root() + "/b";
  const std::string db = host.remote_root() + "/app.db";
  host.write_file(a + "/one.txt", "one\n");
  host.write_file(b + "/two.txt", "two\n");
  host.make_sqlite_db(db, "CREATE TABLE t(v TEXT); INSERT INTO t VALUES ('x');");
  env.add_site("edge", host, {{"directory", a}, {"directory", b}, {"sqlite_dump", db}});
  env.write_config();

  auto r = env.run({"run", "edge", "--wait"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;

  // Five remote commands as before (the preflight, two folders' rsyncs,
  // the database's copy and its transfer), but three connections, not
  // five: the preflight's and the copy's libssh sessions, and one master
  // for all three rsyncs.
  auto sessions = host.commands_started();
  EXPECT_EQ(sessions.size(), 5u) << ::testing::PrintToString(sessions);
  auto connections = host.connections_accepted();
  EXPECT_EQ(connections.size(), 3u) << ::testing::PrintToString(connections);

  // The socket folder is private and empty, and no master is left running.
  EXPECT_EQ(mode_of(sockets), 0700u);
  EXPECT_TRUE(entries_of(sockets).empty())
      << ::testing::PrintToString(entries_of(sockets));
  EXPECT_TRUE(wait_until([&] { return masters_in(sockets).empty(); }, 10s))
      << ::testing::PrintToString(masters_in(sockets));
}

TEST_F(SshMaster, AKilledDaemonsMasterIsClosedByTheNextDaemon) {
  add_slow_site(env, host, 10);
  daemon_process daemon{env};
  daemon.start();
  auto queued = env.run({"run", "edge"});
  ASSERT_EQ(queued.exit_code, 0) << queued.out << queued.err;

  // The rsync is under way (its master's socket exists) when the daemon dies.
  ASSERT_TRUE(wait_until([&] { return !entries_of(sockets).empty(); }, 60s))
      << daemon.log();
  // `ssh -f` creates the socket before it forks: for a moment the foreground
  // and the background process both look like a master.
  ASSERT_TRUE(wait_until([&] { return masters_in(sockets).size() == 1; }, 10s))
      << ::testing::PrintToString(masters_in(sockets));
  auto masters = masters_in(sockets);
  daemon.kill9();
  ASSERT_TRUE(alive(masters[0])) << "the master went with the daemon; nothing to test";

  // The next daemon closes it before it says it has started.
  daemon.start();
  EXPECT_TRUE(wait_until([&] { return !alive(masters[0]); }, 10s))
      << "master " << masters[0] << " outlived the restart\n"
      << daemon.log();
  EXPECT_TRUE(contains(daemon.log(), "of an earlier run: closed")) << daemon.log();

  // Stopped mid-job (the re-queued job runs again), the daemon closes the
  // job's master and leaves the folder empty.
  daemon.stop();
  EXPECT_TRUE(wait_until([&] { return masters_in(sockets).empty(); }, 10s))
      << ::testing::PrintToString(masters_in(sockets));
  EXPECT_TRUE(entries_of(sockets).empty())
      << ::testing::PrintToString(entries_of(sockets));
  EXPECT_EQ(mode_of(sockets), 0700u);
}
