// Tests of the test fixture itself: the real-sshd edge host (C++ and the
// scripts/edge-host twin). Every other integration test trusts that a host
// key is pinned, that a hidden tool is really hidden and that stop() really
// stops, so these are checked against the system OpenSSH client.

#include "edge_host.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <pwd.h>
#include <sstream>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

using satoru::testing::edge_host;
using satoru::testing::read_file;
using satoru::testing::run_shell;
using satoru::testing::temp_dir;

std::string quote(const std::string& text) {
  std::string out = "'";
  for (char c : text)
    out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

/// The system ssh client, isolated from ~/.ssh and /etc/ssh config so only
/// the given known_hosts and key can make it succeed.
std::string ssh_command(int port, const std::string& known_hosts, const std::string& key,
                        const std::string& user, const std::string& remote_command) {
  return "ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=yes"
         " -o GlobalKnownHostsFile=/dev/null -o IdentitiesOnly=yes -o ConnectTimeout=5"
         " -o UserKnownHostsFile=" +
         quote(known_hosts) + " -i " + quote(key) + " -p " + std::to_string(port) + " " +
         user + "@127.0.0.1 " + quote(remote_command);
}

std::string ssh_command(const edge_host& host, const std::string& remote_command) {
  return ssh_command(host.port(), host.known_hosts_file(), host.identity_file(),
                     host.user(), remote_command);
}

bool wait_gone(int pid, std::chrono::seconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!process_gone(pid)) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

/// (pid, ppid, comm) of every process, from /proc.
struct proc_entry {
  int pid, ppid;
  std::string comm;
};
std::vector<proc_entry> processes() {
  std::vector<proc_entry> result;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string stat = read_file("/proc/" + name + "/stat");
    auto open_paren = stat.find('('), close_paren = stat.rfind(')');
    if (open_paren == std::string::npos || close_paren == std::string::npos) continue;
    std::istringstream rest(stat.substr(close_paren + 1));
    std::string state;
    int ppid = 0;
    rest >> state >> ppid;
    result.push_back({std::stoi(name), ppid,
                      stat.substr(open_paren + 1, close_paren - open_paren - 1)});
  }
  return result;
}

bool has_descendant(int root, const std::string& comm) {
  auto procs = processes();
  std::vector<int> tree{root};
  for (std::size_t i = 0; i < tree.size(); ++i)
    for (const auto& p : procs)
      if (p.ppid == tree[i]) {
        if (p.comm == comm) return true;
        tree.push_back(p.pid);
      }
  return false;
}

std::string current_user() {
  const passwd* pw = ::getpwuid(::geteuid());
  return pw ? pw->pw_name : "root";
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' '))
    s.pop_back();
  return s;
}

TEST(EdgeHost, SshClientRunsCommandWithPinnedKey) {
  temp_dir tmp;
  edge_host host(tmp / "site");
  ASSERT_TRUE(host.running());
  EXPECT_GT(host.port(), 0);
  EXPECT_EQ(trim(read_file(host.known_hosts_file())), host.known_hosts_line());
  EXPECT_EQ(host.known_hosts_line().rfind(
                "[127.0.0.1]:" + std::to_string(host.port()) + " ssh-ed25519 AAAA", 0),
            0u)
      << host.known_hosts_line();

  std::string out;
  ASSERT_EQ(run_shell(ssh_command(host, "echo hello"), &out), 0) << out;
  EXPECT_EQ(out, "hello\n");

  auto ep = host.endpoint(7);
  EXPECT_EQ(ep.host, "127.0.0.1");
  EXPECT_EQ(ep.port, host.port());
  EXPECT_EQ(ep.user, host.user());
  EXPECT_EQ(ep.identity_file, host.identity_file());
  EXPECT_EQ(ep.known_hosts_file, host.known_hosts_file());
  EXPECT_EQ(ep.connect_timeout_seconds, 7);
}

TEST(EdgeHost, UnknownHostKeyIsRejectedNotAccepted) {
  temp_dir tmp;
  edge_host host(tmp / "site");
  ASSERT_TRUE(host.running());
  std::string empty_known_hosts = tmp / "empty_known_hosts";
  host.write_file(empty_known_hosts, "");

  std::string out;
  EXPECT_EQ(run_shell(ssh_command(host.port(), empty_known_hosts, host.identity_file(),
                                  host.user(), "echo hello") +
                          " 2>&1",
                      &out),
            255)
      << out;
  EXPECT_EQ(out.find("hello\n"), std::string::npos) << out;
  // StrictHostKeyChecking=yes must not have added the key.
  EXPECT_EQ(read_file(empty_known_hosts), "");
}

TEST(EdgeHost, SshdIsGoneAfterDestruction) {
  temp_dir tmp;
  int pid = 0;
  int port = 0;
  {
    edge_host host(tmp / "site");
    ASSERT_TRUE(host.running());
    pid = host.pid();
    port = host.port();
    ASSERT_EQ(::kill(pid, 0), 0);
  }
  // The fixture reaped its child, so the pid no longer exists at all.
  errno = 0;
  EXPECT_EQ(::kill(pid, 0), -1);
  EXPECT_EQ(errno, ESRCH);
  EXPECT_TRUE(read_file(tmp / "site/sshd.pid").empty());
  std::string out;
  EXPECT_EQ(run_shell(ssh_command(port, tmp / "site/known_hosts", tmp / "site/client_key",
                                  current_user(), "true") +
                          " 2>&1",
                      &out),
            255)
      << out;
}

TEST(EdgeHost, StopBreaksOpenSessionsAndRestartKeepsPortAndKey) {
  temp_dir tmp;
  edge_host host(tmp / "site");
  ASSERT_TRUE(host.running());
  const int port = host.port();
  const std::string line = host.known_hosts_line();

  // A long-running session in the background; its client pid on stdout.
  std::string client_pid_text;
  ASSERT_EQ(
      run_shell(ssh_command(host, "sleep 60") + " >/dev/null 2>&1 </dev/null & echo $!",
                &client_pid_text),
      0);
  const int client_pid = std::atoi(client_pid_text.c_str());
  ASSERT_GT(client_pid, 0);
  // Wait until the remote side runs the command.
  bool session_up = false;
  for (int i = 0; i < 500 && !session_up; ++i) {
    session_up = has_descendant(host.pid(), "sleep");
    if (!session_up) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(session_up) << "remote `sleep 60` never started";

  host.stop();
  EXPECT_FALSE(host.running());
  host.stop(); // idempotent
  EXPECT_TRUE(wait_gone(client_pid, std::chrono::seconds(10)))
      << "ssh client still connected after stop()";

  host.restart();
  ASSERT_TRUE(host.running());
  EXPECT_EQ(host.port(), port);
  EXPECT_EQ(host.known_hosts_line(), line);
  std::string out;
  ASSERT_EQ(run_shell(ssh_command(host, "echo again"), &out), 0);
  EXPECT_EQ(out, "again\n");
}

TEST(EdgeHost, RemotePathHidesTool) {
  temp_dir tmp;
  std::string bin = tmp / "bin";
  std::filesystem::create_directories(bin);
  for (const char* tool : {"sh", "ls", "cat", "test", "true"})
    std::filesystem::create_symlink(std::string("/bin/") + tool, bin + "/" + tool);

  edge_host plain(tmp / "plain");
  edge_host::options opts;
  opts.remote_path = bin;
  edge_host hiding(tmp / "hiding", opts);
  ASSERT_TRUE(plain.running());
  ASSERT_TRUE(hiding.running());

  std::string out;
  EXPECT_EQ(run_shell(ssh_command(plain, "command -v rsync"), &out), 0) << out;
  EXPECT_NE(out.find("rsync"), std::string::npos) << out;
  EXPECT_NE(run_shell(ssh_command(hiding, "command -v rsync"), &out), 0) << out;
  EXPECT_EQ(run_shell(ssh_command(hiding, "command -v cat"), &out), 0) << out;
  EXPECT_EQ(trim(out), bin + "/cat");
}

TEST(EdgeHost, HelpersWriteFilesAndSqlite) {
  temp_dir tmp;
  edge_host host(tmp / "site");
  ASSERT_TRUE(host.running());
  EXPECT_TRUE(std::filesystem::is_directory(host.remote_root()));

  std::string file = host.remote_root() + "/a/b/c.txt";
  host.write_file(file, "content\n");
  EXPECT_EQ(read_file(file), "content\n");

  std::string db = host.remote_root() + "/db/app.sqlite";
  host.make_sqlite_db(db, "CREATE TABLE t(x INTEGER); INSERT INTO t VALUES (1), (2);");
  std::string out;
  ASSERT_EQ(host.sh("sqlite3 " + quote(db) + " 'SELECT sum(x) FROM t'", &out), 0);
  EXPECT_EQ(out, "3\n");
  EXPECT_EQ(host.sh("exit 7"), 7);
}

TEST(EdgeHost, TempDirIsPrivateAndRemoved) {
  std::string path;
  {
    temp_dir tmp("edge-host-test");
    path = tmp.path();
    ASSERT_TRUE(std::filesystem::is_directory(path));
    auto perms = std::filesystem::status(path).permissions();
    EXPECT_EQ(perms & std::filesystem::perms::all, std::filesystem::perms::owner_all);
    std::filesystem::create_directories(tmp / "x/y");
  }
  if (!std::getenv("SATORU_KEEP_TMP")) {
    EXPECT_FALSE(std::filesystem::exists(path));
  }
}

/// Stops a script-started host even when an assertion bails out early.
struct script_host_guard {
  std::string script;
  std::string dir;
  ~script_host_guard() {
    run_shell(quote(script) + " stop " + quote(dir) + " >/dev/null 2>&1");
  }
};

TEST(EdgeHostScript, StartSshStopStatus) {
  temp_dir tmp;
  const std::string script = std::string(SATORU_SOURCE_DIR) + "/scripts/edge-host";
  const std::string dir = tmp / "site";
  script_host_guard guard{script, dir};

  std::string out;
  ASSERT_EQ(run_shell(quote(script) + " start " + quote(dir), &out), 0) << out;
  const int port = std::atoi(out.c_str());
  ASSERT_GT(port, 0) << out;
  EXPECT_EQ(trim(read_file(dir + "/port")), std::to_string(port));
  const int pid = std::atoi(read_file(dir + "/sshd.pid").c_str());
  ASSERT_GT(pid, 0);

  // Idempotent start: same port, same sshd.
  ASSERT_EQ(run_shell(quote(script) + " start " + quote(dir), &out), 0);
  EXPECT_EQ(std::atoi(out.c_str()), port);
  EXPECT_EQ(std::atoi(read_file(dir + "/sshd.pid").c_str()), pid);
  EXPECT_EQ(run_shell(quote(script) + " status " + quote(dir), &out), 0) << out;

  ASSERT_EQ(run_shell(ssh_command(port, dir + "/known_hosts", dir + "/client_key",
                                  current_user(), "echo hello"),
                      &out),
            0);
  EXPECT_EQ(out, "hello\n");

  EXPECT_EQ(run_shell(quote(script) + " stop " + quote(dir)), 0);
  EXPECT_TRUE(process_gone(pid));
  EXPECT_EQ(run_shell(quote(script) + " status " + quote(dir), &out), 3) << out;
  EXPECT_EQ(run_shell(quote(script) + " stop " + quote(dir)), 0); // twice is fine
}

} // namespace
