// satoru::ssh_session against a real sshd (tests/support/edge_host).

#include "edge_host.hpp"
#include "satoru/ssh.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <dirent.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace satoru;
using namespace satoru::testing;
using namespace std::chrono_literals;

namespace {

using steady = std::chrono::steady_clock;

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

/// "ssh-ed25519 AAAA..." of a public key file (without its comment).
std::string key_type_and_blob(const std::string& pub_path) {
  std::istringstream in(read_file(pub_path));
  std::string type, blob;
  in >> type >> blob;
  return type + " " + blob;
}

/// A TCP listener on 127.0.0.1 that completes handshakes (the kernel does
/// that from the backlog) but never says a word: a hung server.
class silent_listener {
public:
  silent_listener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::listen(fd_, 16);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~silent_listener() { ::close(fd_); }
  int port() const { return port_; }

private:
  int fd_ = -1;
  int port_ = 0;
};

class SshSession : public ::testing::Test {
protected:
  temp_dir tmp_{"satoru-ssh-test"};

  ssh_session connect_ok(const edge_host& host) {
    auto s = ssh_session::connect(host.endpoint());
    EXPECT_TRUE(s) << s.err().message;
    if (!s) throw std::runtime_error("connect failed: " + s.err().message);
    return std::move(s).value();
  }
};

} // namespace

TEST(ShellQuote, WrapsInSingleQuotes) {
  EXPECT_EQ(shell_quote(""), "''");
  EXPECT_EQ(shell_quote("abc"), "'abc'");
  EXPECT_EQ(shell_quote("a b"), "'a b'");
  EXPECT_EQ(shell_quote("it's"), "'it'\\''s'");
  EXPECT_EQ(shell_quote("''"), "''\\'''\\'''");
}

TEST_F(SshSession, ConnectsWithThePinnedKey) {
  edge_host host(tmp_ / "edge");
  ASSERT_TRUE(host.running());
  auto s = ssh_session::connect(host.endpoint());
  ASSERT_TRUE(s) << s.err().message;
  EXPECT_EQ(s->endpoint().port, host.port());
  EXPECT_EQ(s->endpoint().display(), "127.0.0.1:" + std::to_string(host.port()));

  // Moving keeps the session working.
  ssh_session moved = std::move(s).value();
  auto r = moved.exec("echo moved", 10s);
  ASSERT_TRUE(r) << r.err().message;
  EXPECT_EQ(r->out, "moved\n");
}

TEST_F(SshSession, ExecReturnsStdoutStderrAndExitStatus) {
  edge_host host(tmp_ / "edge");
  ASSERT_TRUE(host.running());
  auto s = connect_ok(host);

  auto r = s.exec("printf 'out\\n'; printf 'err\\n' >&2; exit 3", 10s);
  ASSERT_TRUE(r) << r.err().message;
  EXPECT_EQ(r->out, "out\n");
  EXPECT_EQ(r->err, "err\n");
  EXPECT_EQ(r->exit_status, 3);

  auto ok = s.exec("true", 10s);
  ASSERT_TRUE(ok) << ok.err().message;
  EXPECT_EQ(ok->exit_status, 0);
  EXPECT_EQ(ok->out, "");

  // More than the channel window, on both streams at once.
  auto big =
      s.exec("head -c 3000000 /dev/zero | tr '\\0' o; head -c 500000 /dev/zero | tr "
             "'\\0' e >&2",
             30s);
  ASSERT_TRUE(big) << big.err().message;
  EXPECT_EQ(big->out.size(), 3000000u);
  EXPECT_EQ(big->out.find_first_not_of('o'), std::string::npos);
  EXPECT_EQ(big->err.size(), 500000u);
  EXPECT_EQ(big->exit_status, 0);

  // Only stderr, far beyond the channel window: reading it must keep the
  // window open even though stdout stays silent.
  auto noisy = s.exec("head -c 8000000 /dev/zero >&2; echo done", 30s);
  ASSERT_TRUE(noisy) << noisy.err().message;
  EXPECT_EQ(noisy->err.size(), 8000000u);
  EXPECT_EQ(noisy->out, "done\n");
}

TEST_F(SshSession, ShellQuoteRoundTripsHostileStrings) {
  edge_host host(tmp_ / "edge");
  ASSERT_TRUE(host.running());
  auto s = connect_ok(host);
  const std::string marker = host.remote_root() + "/pwned";
  host.sh("mkdir -p '" + host.remote_root() + "'");
  const std::vector<std::string> hostile = {
      "two words",
      "  leading and trailing  ",
      "it's \"quoted\"",
      "'",
      "\"",
      "''",
      "$(touch " + marker + "1)",
      "`touch " + marker + "2`",
      ";rm -rf x",
      "; touch " + marker + "3",
      "a && touch " + marker + "4 || touch " + marker + "5",
      "line one\nline two",
      "\n",
      "-n",
      "-e \\n",
      "$HOME ${PATH} *",
      "back\\slash\\",
      "| cat > " + marker + "6",
      std::string("non-utf8 \xff\xfe\x80 end"),
      "tab\there",
      "%s %d %%",
      "!history",
      "",
  };
  // One round trip: each quoted string must come back as exactly one word,
  // byte for byte (printf '%s\0' ends every word with a NUL).
  std::string command = "printf '%s\\0'";
  std::string expected;
  for (const auto& text : hostile) {
    command += " " + shell_quote(text);
    expected += text + std::string(1, '\0');
  }
  auto all = s.exec(command, 20s);
  ASSERT_TRUE(all) << all.err().message;
  EXPECT_EQ(all->err, "");
  EXPECT_EQ(all->exit_status, 0);
  EXPECT_EQ(all->out, expected);
  // A few alone, the way callers build commands.
  for (const auto& text : {hostile[2], hostile[6], hostile[11], hostile[13]}) {
    auto r = s.exec("printf %s " + shell_quote(text), 10s);
    ASSERT_TRUE(r) << r.err().message;
    EXPECT_EQ(r->out, text) << "quoted as: " << shell_quote(text);
  }
  // Several quoted words stay separate words.
  auto words = s.exec("printf '[%s]' " + shell_quote("a b") + " " + shell_quote("") +
                          " " + shell_quote("c'd"),
                      10s);
  ASSERT_TRUE(words);
  EXPECT_EQ(words->out, "[a b][][c'd]");
  for (int i = 1; i <= 6; ++i)
    EXPECT_FALSE(exists(marker + std::to_string(i))) << "injected command ran: " << i;
}

TEST_F(SshSession, UnknownHostKeyIsRefusedWithItsFingerprint) {
  edge_host host(tmp_ / "edge");
  ASSERT_TRUE(host.running());
  auto ep = host.endpoint();
  ep.known_hosts_file = tmp_ / "empty_known_hosts";
  write_text(ep.known_hosts_file, "");
  auto s = ssh_session::connect(ep);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.err().code, errc::host_key);
  const std::string& msg = s.err().message;
  EXPECT_NE(msg.find("SHA256:"), std::string::npos) << msg;
  EXPECT_NE(msg.find("ssh-ed25519"), std::string::npos) << msg;
  EXPECT_NE(msg.find("127.0.0.1:" + std::to_string(host.port())), std::string::npos)
      << msg;
  EXPECT_NE(msg.find("not trusted"), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos);

  // A missing known_hosts file is the same: unknown, never trusted.
  ep.known_hosts_file = tmp_ / "no/such/known_hosts";
  auto missing = ssh_session::connect(ep);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.err().code, errc::host_key);

  // ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts are never consulted, and
  // neither is an empty setting.
  ep.known_hosts_file = "";
  auto unset = ssh_session::connect(ep);
  ASSERT_FALSE(unset);
  EXPECT_EQ(unset.err().code, errc::host_key);
}

TEST_F(SshSession, ChangedHostKeyIsRefused) {
  edge_host host(tmp_ / "edge");
  ASSERT_TRUE(host.running());
  const std::string other = tmp_ / "other_host_key";
  ASSERT_EQ(host.sh("ssh-keygen -q -t ed25519 -N '' -f '" + other + "'"), 0);
  auto ep = host.endpoint();
  ep.known_hosts_file = tmp_ / "changed_known_hosts";
  write_text(ep.known_hosts_file, "[127.0.0.1]:" + std::to_string(host.port()) + " " +
                                      key_type_and_blob(other + ".pub") + "\n");
  auto s = ssh_session::connect(ep);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.err().code, errc::host_key);
  EXPECT_NE(s.err().message.find("CHANGED"), std::string::npos) << s.err().message;
  EXPECT_NE(s.err().message.find("SHA256:"), std::string::npos) << s.err().message;
}

TEST_F(SshSession, WrongClientKeyFailsAuthentication) {
  edge_host host(tmp_ / "edge");
  ASSERT_TRUE(host.running());
  const std::string stranger = tmp_ / "stranger_key";
  ASSERT_EQ(host.sh("ssh-keygen -q -t ed25519 -N '' -f '" + stranger + "'"), 0);
  auto ep = host.endpoint();
  ep.identity_file = stranger;
  auto s = ssh_session::connect(ep);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.err().code, errc::auth);
  EXPECT_NE(s.err().message.find("authentication as " + host.user() +
                                 " failed with key " + stranger),
            std::string::npos)
      << s.err().message;

  ep.identity_file = tmp_ / "missing_key";
  auto missing = ssh_session::connect(ep);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.err().code, errc::auth);
  EXPECT_NE(missing.err().message.find(ep.identity_file), std::string::npos);
}

TEST_F(SshSession, ClosedPortFailsFast) {
  ssh_endpoint ep;
  ep.host = "127.0.0.1";
  ep.port = free_port();
  ep.user = "root";
  ep.known_hosts_file = tmp_ / "known_hosts";
  ep.connect_timeout_seconds = 10;
  auto start = steady::now();
  auto s = ssh_session::connect(ep);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.err().code, errc::ssh);
  EXPECT_NE(s.err().message.find("127.0.0.1:" + std::to_string(ep.port)),
            std::string::npos)
      << s.err().message;
  EXPECT_LT(steady::now() - start, 2s);
}

TEST_F(SshSession, SilentServerFailsWithinTheConnectTimeout) {
  silent_listener silent;
  ssh_endpoint ep;
  ep.host = "127.0.0.1";
  ep.port = silent.port();
  ep.user = "root";
  ep.known_hosts_file = tmp_ / "known_hosts";
  ep.connect_timeout_seconds = 2;
  auto start = steady::now();
  auto s = ssh_session::connect(ep);
  auto took = steady::now() - start;
  ASSERT_FALSE(s);
  EXPECT_EQ(s.err().code, errc::timeout) << s.err().message;
  EXPECT_GE(took, 1500ms);
  EXPECT_LT(took, 10s) << "the 2 s connect timeout, not the kernel's";

  // fetch_host_key (satoru trust) has the same bound.
  start = steady::now();
  auto key = fetch_host_key(ep);
  ASSERT_FALSE(key);
  EXPECT_EQ(key.err().code, errc::timeout);
  EXPECT_LT(steady::now() - start, 10s);
}

TEST_F(SshSession, CancelStopsAHangingConnect) {
  silent_listener silent;
  ssh_endpoint ep;
  ep.host = "127.0.0.1";
  ep.port = silent.port();
  ep.user = "root";
  ep.known_hosts_file = tmp_ / "known_hosts";
  ep.connect_timeout_seconds = 30;
  cancel_token cancel;
  std::thread canceller([cancel] {
    std::this_thread::sleep_for(300ms);
    cancel.cancel();
  });
  auto start = steady::now();
  auto s = ssh_session::connect(ep, cancel);
  auto took = steady::now() - start;
  canceller.join();
  ASSERT_FALSE(s);
  EXPECT_EQ(s.err().code, errc::cancelled) << s.err().message;
  EXPECT_LT(took, 10s) << "the cancel, not the 30 s limit, ended it";
}

TEST_F(SshSession, ExecDeadlineReturnsTimeoutAndKeepsTheSession) {
  edge_host host(tmp_ / "edge");
  ASSERT_TRUE(host.running());
  auto s = connect_ok(host);
  auto start = steady::now();
  auto r = s.exec("sleep 30.0417", 1s);
  auto took = steady::now() - start;
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::timeout);
  EXPECT_NE(r.err().message.find("timed out after 1 s"), std::string::npos)
      << r.err().message;
  EXPECT_GE(took, 900ms);
  EXPECT_LT(took, 10s) << "the 1 s deadline, not the 30 s sleep, ended it";

  // The session is still usable.
  auto again = s.exec("echo still-here", 10s);
  ASSERT_TRUE(again) << again.err().message;
  EXPECT_EQ(again->out, "still-here\n");
}

TEST_F(SshSession, ExecDeadlineSendsEofToACommandReadingStdin) {
  // sshd refuses "signal" requests in root sessions ("session signalling
  // requires privilege separation"), so a timed-out command is stopped by the
  // EOF and channel close we send: a command that reads its input ends.
  edge_host host(tmp_ / "edge");
  ASSERT_TRUE(host.running());
  auto s = connect_ok(host);
  auto r =
      s.exec("cat >/dev/null; echo satoru-eof-marker-4242 >/dev/null; sleep 0", 500ms);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::timeout);
  bool gone = false;
  for (int i = 0; i < 60 && !gone; ++i) {
    gone = host.sh("pgrep -f 'satoru-eof-marker-[4]242' >/dev/null") != 0;
    if (!gone) std::this_thread::sleep_for(50ms);
  }
  EXPECT_TRUE(gone) << "remote command still runs after the channel was closed";
}

TEST_F(SshSession, ExecCancelFromAnotherThread) {
  edge_host host(tmp_ / "edge");
  ASSERT_TRUE(host.running());
  auto s = connect_ok(host);
  cancel_token cancel;
  std::thread canceller([cancel] {
    std::this_thread::sleep_for(300ms);
    cancel.cancel();
  });
  auto start = steady::now();
  auto r = s.exec("sleep 30", 60s, cancel);
  auto took = steady::now() - start;
  canceller.join();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code, errc::cancelled);
  EXPECT_LT(took, 10s) << "the cancel, not the 30 s limit, ended it";
}

TEST_F(SshSession, SftpGetCopiesAFileByteExactly) {
  edge_host host(tmp_ / "edge");
  ASSERT_TRUE(host.running());
  auto s = connect_ok(host);

  // Every byte value, a size that is not a multiple of any read size.
  std::string content(3 * 1024 * 1024 + 12345, '\0');
  std::mt19937 rng(42);
  for (auto& c : content)
    c = static_cast<char>(rng() & 0xff);
  const std::string remote = host.remote_root() + "/data/blob.bin";
  host.write_file(remote, content);

  const std::string local = tmp_ / "blob.bin";
  std::uint64_t last_progress = 0;
  int progress_calls = 0;
  auto got = s.sftp_get(remote, local, 60s, {}, [&](std::uint64_t bytes) {
    EXPECT_GE(bytes, last_progress);
    last_progress = bytes;
    ++progress_calls;
  });
  ASSERT_TRUE(got) << got.err().message;
  EXPECT_EQ(*got, content.size());
  EXPECT_EQ(last_progress, content.size());
  EXPECT_GT(progress_calls, 1);
  EXPECT_TRUE(read_file(local) == content) << "downloaded bytes differ";
  EXPECT_FALSE(exists(local + ".part"));

  // An empty file is a file too.
  host.write_file(host.remote_root() + "/data/empty", "");
  auto empty = s.sftp_get(host.remote_root() + "/data/empty", tmp_ / "empty", 10s);
  ASSERT_TRUE(empty) << empty.err().message;
  EXPECT_EQ(*empty, 0u);
  EXPECT_TRUE(exists(tmp_ / "empty"));

  // The session keeps working after downloads.
  auto r = s.exec("echo after", 10s);
  ASSERT_TRUE(r) << r.err().message;
  EXPECT_EQ(r->out, "after\n");
}

TEST_F(SshSession, SftpGetFromAStalledServerTimesOut) {
  edge_host host(tmp_ / "edge");
  ASSERT_TRUE(host.running());
  auto s = connect_ok(host);
  const std::string remote = host.remote_root() + "/big.bin";
  ASSERT_EQ(host.sh("mkdir -p '" + host.remote_root() +
                    "' && head -c 64000000 /dev/urandom > '" + remote + "'"),
            0);
  // Freeze the per-connection sshd processes once data flows: the server
  // keeps the TCP connection but stops answering mid-transfer.
  std::vector<pid_t> frozen;
  auto freeze = [&] {
    std::string out;
    host.sh("pgrep -P " + std::to_string(host.pid()), &out);
    std::istringstream pids(out);
    pid_t pid;
    while (pids >> pid)
      if (::kill(pid, SIGSTOP) == 0) frozen.push_back(pid);
  };
  const std::string local = tmp_ / "big.bin";
  auto start = steady::now();
  auto got = s.sftp_get(remote, local, 1s, {}, [&](std::uint64_t) {
    if (frozen.empty()) freeze();
  });
  auto took = steady::now() - start;
  for (pid_t pid : frozen)
    ::kill(pid, SIGCONT);
  ASSERT_FALSE(frozen.empty());
  ASSERT_FALSE(got);
  EXPECT_EQ(got.err().code, errc::timeout) << got.err().message;
  EXPECT_LT(took, 15s);
  EXPECT_FALSE(exists(local));
  EXPECT_FALSE(exists(local + ".part"));
  // The connection was cut to get out; the session says so instead of hanging.
  auto after = s.exec("true", 5s);
  ASSERT_FALSE(after);
  EXPECT_EQ(after.err().code, errc::ssh);
}

TEST_F(SshSession, SftpGetOfAMissingFileLeavesNothingBehind) {
  edge_host host(tmp_ / "edge");
  ASSERT_TRUE(host.running());
  auto s = connect_ok(host);
  const std::string local = tmp_ / "missing.bin";
  auto got = s.sftp_get(host.remote_root() + "/no/such/file", local, 10s);
  ASSERT_FALSE(got);
  EXPECT_EQ(got.err().code, errc::not_found) << got.err().message;
  EXPECT_FALSE(exists(local));
  EXPECT_FALSE(exists(local + ".part"));

  // A local folder that does not exist: an io error, no remote side effect.
  host.write_file(host.remote_root() + "/present", "x");
  auto bad_local = s.sftp_get(host.remote_root() + "/present", tmp_ / "no/dir/file", 10s);
  ASSERT_FALSE(bad_local);
  EXPECT_EQ(bad_local.err().code, errc::io);

  auto r = s.exec("echo fine", 10s);
  ASSERT_TRUE(r) << r.err().message;
}

TEST_F(SshSession, TrustHostKeyPinsTheKeyAndThenConnectSucceeds) {
  edge_host host(tmp_ / "edge");
  ASSERT_TRUE(host.running());
  auto ep = host.endpoint();
  ep.known_hosts_file = tmp_ / "trust/sub/known_hosts"; // folders do not exist yet
  auto before = ssh_session::connect(ep);
  ASSERT_FALSE(before);
  EXPECT_EQ(before.err().code, errc::host_key);

  auto info = trust_host_key(ep);
  ASSERT_TRUE(info) << info.err().message;
  EXPECT_EQ(info->type, "ssh-ed25519");
  EXPECT_EQ(info->sha256_fingerprint.rfind("SHA256:", 0), 0u);
  EXPECT_EQ(mode_of(ep.known_hosts_file), 0600u);
  EXPECT_EQ(mode_of(tmp_ / "trust/sub"), 0700u);
  const std::string expected_line = "[127.0.0.1]:" + std::to_string(host.port()) + " " +
                                    key_type_and_blob(host.host_key_pub()) + "\n";
  EXPECT_EQ(read_file(ep.known_hosts_file), expected_line);

  auto after = ssh_session::connect(ep);
  ASSERT_TRUE(after) << after.err().message;

  // Trusting again changes nothing.
  ASSERT_TRUE(trust_host_key(ep));
  EXPECT_EQ(read_file(ep.known_hosts_file), expected_line);
}

TEST_F(SshSession, TrustReplacesAStaleKeyAndKeepsOtherHosts) {
  edge_host host(tmp_ / "edge");
  ASSERT_TRUE(host.running());
  const std::string other = tmp_ / "old_host_key";
  ASSERT_EQ(host.sh("ssh-keygen -q -t ed25519 -N '' -f '" + other + "'"), 0);
  auto ep = host.endpoint();
  ep.known_hosts_file = tmp_ / "stale_known_hosts";
  const std::string hostname = "[127.0.0.1]:" + std::to_string(host.port());
  const std::string other_host_line =
      "[10.0.0.9]:2222 " + key_type_and_blob(other + ".pub");
  write_text(ep.known_hosts_file, other_host_line + "\n" + hostname + " " +
                                      key_type_and_blob(other + ".pub") + "\n");
  auto changed = ssh_session::connect(ep);
  ASSERT_FALSE(changed);
  EXPECT_NE(changed.err().message.find("CHANGED"), std::string::npos);
  auto presented = fetch_host_key(ep);
  auto pinned = pinned_host_key(ep);
  ASSERT_TRUE(presented && pinned);
  EXPECT_NE(presented->sha256_fingerprint, pinned->sha256_fingerprint);
  // Both fingerprints in the error, so the operator can compare.
  EXPECT_NE(changed.err().message.find(presented->sha256_fingerprint), std::string::npos);
  EXPECT_NE(changed.err().message.find(pinned->sha256_fingerprint), std::string::npos);

  // A pinned key is replaced only on purpose: --rotate with the new fingerprint.
  const std::string before = read_file(ep.known_hosts_file);
  auto plain = trust_host_key(ep);
  ASSERT_FALSE(plain);
  EXPECT_NE(
      plain.err().message.find("--rotate --fingerprint " + presented->sha256_fingerprint),
      std::string::npos)
      << plain.err().message;
  EXPECT_FALSE(trust_host_key(ep, {"", true, ""})) << "--rotate needs --fingerprint";
  EXPECT_FALSE(trust_host_key(ep, {pinned->sha256_fingerprint, true, ""}));
  EXPECT_EQ(read_file(ep.known_hosts_file), before);

  ASSERT_TRUE(trust_host_key(ep, {presented->sha256_fingerprint, true, ""}));
  EXPECT_EQ(read_file(ep.known_hosts_file), other_host_line + "\n" + hostname + " " +
                                                key_type_and_blob(host.host_key_pub()) +
                                                "\n");
  auto after = ssh_session::connect(ep);
  ASSERT_TRUE(after) << after.err().message;
}

TEST_F(SshSession, NoFileDescriptorLeaks) {
  edge_host host(tmp_ / "edge");
  ASSERT_TRUE(host.running());
  silent_listener silent;
  auto count_fds = [] {
    std::string out;
    int n = 0;
    if (auto* dir = ::opendir("/proc/self/fd")) {
      while (::readdir(dir))
        ++n;
      ::closedir(dir);
    }
    return n;
  };
  auto unknown = host.endpoint();
  unknown.known_hosts_file = tmp_ / "none";
  auto closed = host.endpoint();
  closed.port = free_port();
  auto hung = host.endpoint(1);
  hung.port = silent.port();
  auto wrong_key = host.endpoint();
  wrong_key.identity_file = host.host_key_pub();

  const int before = count_fds();
  for (int i = 0; i < 3; ++i) {
    {
      auto s = ssh_session::connect(host.endpoint());
      ASSERT_TRUE(s) << s.err().message;
      ASSERT_TRUE(s->exec("true", 10s));
    }
    EXPECT_FALSE(ssh_session::connect(unknown));
    EXPECT_FALSE(ssh_session::connect(closed));
    EXPECT_FALSE(ssh_session::connect(wrong_key));
    EXPECT_TRUE(fetch_host_key(host.endpoint()));
  }
  EXPECT_FALSE(ssh_session::connect(hung));
  EXPECT_EQ(count_fds(), before);
}

TEST_F(SshSession, FetchHostKeyMatchesSshKeygen) {
  edge_host host(tmp_ / "edge");
  ASSERT_TRUE(host.running());
  auto ep = host.endpoint();
  ep.known_hosts_file = tmp_ / "never_written";
  auto info = fetch_host_key(ep);
  ASSERT_TRUE(info) << info.err().message;

  std::string out;
  ASSERT_EQ(host.sh("ssh-keygen -lf '" + host.host_key_pub() + "'", &out), 0);
  std::istringstream fields(out); // "256 SHA256:... comment (ED25519)"
  std::string bits, fingerprint;
  fields >> bits >> fingerprint;
  EXPECT_EQ(info->sha256_fingerprint, fingerprint);
  EXPECT_EQ(info->type, "ssh-ed25519");
  EXPECT_FALSE(exists(ep.known_hosts_file)); // fetching never pins
}
