// Preflight over real SSH: `satoru run SITE --job preflight --wait` against a
// real sshd on loopback, with the directory and sqlite_dump plugins.
#include "satoru_env.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <chrono>
#include <fstream>
#include <netinet/in.h>
#include <sstream>
#include <sys/socket.h>
#include <unistd.h>

using namespace satoru::testing;

namespace {

/// Health and reason of a site as `satoru sites --json` reports them.
boost::json::object site_json(const satoru_env& env, const std::string& name) {
  auto r = env.run({"sites", "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto sites = boost::json::parse(r.out);
  for (auto& s : sites.as_array())
    if (s.at("name").as_string() == name) return s.as_object();
  ADD_FAILURE() << "no site " << name << " in " << r.out;
  return {};
}

struct Preflight : ::testing::Test {
  satoru_env env{"satoru-preflight"};
  edge_host host{env.path("edge")};
  std::string data = host.remote_root() + "/data";
  std::string db = host.remote_root() + "/app.db";

  void SetUp() override {
    ASSERT_TRUE(host.running());
    host.write_file(data + "/a.txt", "hello");
    host.make_sqlite_db(db, "CREATE TABLE t(x); INSERT INTO t VALUES (1);");
  }
};

} // namespace

TEST_F(Preflight, PassesWithPinnedKeyAndEveryCheckIsAnEvent) {
  env.add_site("edge", host, {{"directory", data}, {"sqlite_dump", db}});
  env.write_config();
  auto r = env.run({"run", "edge", "--job", "preflight", "--wait"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "preflight.ssh")) << r.out;
  EXPECT_TRUE(contains(r.out, "preflight.local.restic")) << r.out;
  EXPECT_TRUE(contains(r.out, "preflight.local.rsync")) << r.out;
  EXPECT_TRUE(contains(r.out, "sqlite3")) << r.out;
  auto site = site_json(env, "edge");
  EXPECT_EQ(site.at("health").as_string(), "ok");
  EXPECT_NE(site.at("last_preflight_at").as_string(), "-");
}

TEST_F(Preflight, UnknownHostKeyFailsAndShowsTheFingerprint) {
  env.add_site("edge", host, {{"directory", data}});
  env.config["sites"].as_array()[0].as_object()["ssh"].as_object()["known_hosts_file"] =
      env.path("empty_known_hosts");
  env.write_config();
  auto r = env.run({"run", "edge", "--job", "preflight", "--wait"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "SHA256:")) << r.out;
  EXPECT_TRUE(contains(r.out, "not trusted")) << r.out;
  auto site = site_json(env, "edge");
  EXPECT_EQ(site.at("health").as_string(), "failed");
  EXPECT_TRUE(contains(std::string(site.at("health_reason").as_string()), "SHA256:"));
  // Nothing was written to the known_hosts file: keys are never accepted silently.
  EXPECT_EQ(read_file(env.path("empty_known_hosts")), "");
}

TEST_F(Preflight, ChangedHostKeyFails) {
  env.add_site("edge", host, {{"directory", data}});
  env.write_config();
  // The host gets a new key; the pinned line is the old one.
  host.stop();
  ASSERT_EQ(
      host.sh("rm -f '" + host.dir() + "/host_key' '" + host.dir() + "/host_key.pub'"),
      0);
  auto pinned = read_file(host.known_hosts_file());
  host.restart();
  ASSERT_TRUE(host.running());
  {
    std::ofstream out(host.known_hosts_file());
    out << pinned;
  }
  auto r = env.run({"run", "edge", "--job", "preflight", "--wait"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  // One line naming the site, both fingerprints and what to run.
  EXPECT_TRUE(contains(r.out, "site edge: host key mismatch")) << r.out;
  EXPECT_TRUE(contains(r.out, "satoru trust edge --rotate --fingerprint SHA256:"))
      << r.out;
}

TEST_F(Preflight, MissingRemotePathFailsThatTargetOnly) {
  env.add_site("edge", host,
               {{"directory", data}, {"directory", host.remote_root() + "/nope"}});
  env.write_config();
  auto r = env.run({"run", "edge", "--job", "preflight", "--wait"});
  EXPECT_EQ(r.exit_code, 3) << "one of two targets failed: warning\n" << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "/nope")) << r.out;
  EXPECT_EQ(site_json(env, "edge").at("health").as_string(), "warning");
}

TEST_F(Preflight, MissingRemoteToolFails) {
  // The edge host's PATH lacks rsync and sqlite3.
  auto bin = env.path("edge-bin");
  ASSERT_EQ(
      host.sh("mkdir -p '" + bin +
              "' && for t in sh bash env ls cat test true mktemp rm "
              "printf echo gzip head stat dd; do p=$(command -v $t) && ln -sf \"$p\" '" +
              bin + "'/$t; done"),
      0);
  edge_host hidden{env.path("edge2"), {bin, "", false}};
  ASSERT_TRUE(hidden.running());
  env.add_site("edge", hidden, {{"directory", data}, {"sqlite_dump", db}});
  env.write_config();
  auto r = env.run({"run", "edge", "--job", "preflight", "--wait"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "rsync")) << r.out;
  EXPECT_TRUE(contains(r.out, "sqlite3")) << r.out;
}

TEST_F(Preflight, ClosedPortFailsWithinTheConnectTimeout) {
  env.add_site_at("edge", host, free_port(), {{"directory", data}});
  env.write_config();
  auto started = std::chrono::steady_clock::now();
  auto r = env.run({"run", "edge", "--job", "preflight", "--wait"});
  auto took = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_LT(took, std::chrono::seconds{20});
  EXPECT_EQ(site_json(env, "edge").at("health").as_string(), "failed");
}

TEST_F(Preflight, ServerThatHangsAfterConnectFailsAtTheDeadline) {
  // Accepts TCP connections and never says a word.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 8), 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  env.add_site_at("edge", host, ntohs(addr.sin_port), {{"directory", data}});
  env.add_site("other", host, {{"directory", data}});
  env.write_config();
  auto r =
      env.run({"run", "edge", "--job", "preflight", "--wait"}, std::chrono::seconds{60});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  // The runtime is free for the next job: another site's preflight runs fine.
  auto ok = env.run({"run", "other", "--job", "preflight", "--wait"});
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  ::close(fd);
}

TEST_F(Preflight, HostilePathsAreCheckedLiterallyAndRunNothingElse) {
  auto marker = env.path("pwned");
  std::vector<std::string> names = {
      "with space",           "quote'single", "quote\"double", "$(touch " + marker + ")",
      "semi;touch " + marker, "new\nline",    "-leading-dash"};
  std::vector<std::pair<std::string, std::string>> targets;
  for (const auto& n : names) {
    auto dir = host.remote_root() + "/" + n;
    host.write_file(dir + "/f", "x");
    targets.push_back({"directory", dir});
  }
  // A path that exists only if the quoting is wrong.
  targets.push_back({"directory", host.remote_root() + "/missing; true"});
  env.add_site("edge", host, targets);
  env.write_config();
  auto r = env.run({"run", "edge", "--job", "preflight", "--wait", "--json"});
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_FALSE(std::ifstream(marker).good()) << "a hostile path ran a command";
  // Exactly the one missing target failed.
  int failed = 0;
  std::string line;
  std::istringstream lines(r.out);
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] != '{') continue;
    auto ev = boost::json::parse(line).as_object();
    if (ev.at("level").as_string() == "fail") {
      ++failed;
      EXPECT_TRUE(contains(std::string(ev.at("message").as_string()), "missing; true"))
          << line;
    }
  }
  EXPECT_EQ(failed, 1) << r.out;
}

TEST_F(Preflight, TrustShowsTheFingerprintAndPinsTheKeyOnlyWithYes) {
  auto known_hosts = env.path("trust_known_hosts");
  env.add_site("edge", host, {{"directory", data}});
  env.config["sites"].as_array()[0].as_object()["ssh"].as_object()["known_hosts_file"] =
      known_hosts;
  env.write_config();
  std::string expected;
  ASSERT_EQ(run_shell("ssh-keygen -lf '" + host.host_key_pub() + "' | awk '{print $2}'",
                      &expected),
            0);
  expected.erase(expected.find_last_not_of('\n') + 1);
  ASSERT_EQ(expected.rfind("SHA256:", 0), 0u) << expected;

  auto shown = env.run({"trust", "edge"});
  EXPECT_EQ(shown.exit_code, 0) << shown.err;
  EXPECT_TRUE(contains(shown.out, expected)) << shown.out;
  EXPECT_EQ(read_file(known_hosts), "") << "shown, not trusted";
  EXPECT_EQ(env.run({"run", "edge", "--job", "preflight", "--wait"}).exit_code, 1);

  auto pinned = env.run({"trust", "edge", "--yes"});
  EXPECT_EQ(pinned.exit_code, 0) << pinned.err;
  EXPECT_TRUE(contains(pinned.out, expected)) << pinned.out;
  EXPECT_TRUE(
      contains(read_file(known_hosts), "[127.0.0.1]:" + std::to_string(host.port())));
  auto r = env.run({"run", "edge", "--job", "preflight", "--wait"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}
