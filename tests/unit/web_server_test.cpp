// The console's HTTP server on a loopback port, with a repository that
// answers when the test says so: unauthenticated connections cannot starve
// logged-in users or event streams, restic reads run on their own bounded
// pool (the I/O threads keep answering), and downloads stream with no
// ceiling.
#include "edge_host.hpp"
#include "satoru_env.hpp"
#include "web_client.hpp"

#include "satoru/store.hpp"
#include "satoru/web/console.hpp"
#include "satoru/web/password.hpp"
#include "satoru/web/server.hpp"
#include "satoru/web/snapshot_pages.hpp"
#include "satoru/web/users_file.hpp"

#include <gtest/gtest.h>

#include <condition_variable>
#include <future>
#include <mutex>
#include <optional>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

namespace {

using namespace satoru::web;
using namespace std::chrono_literals;
using satoru::testing::connect_to_console;
using satoru::testing::head_of_response;
using satoru::testing::http_reply;
using satoru::testing::temp_dir;

const std::string server_snapshot_id(64, 'c');

/// Where the fake repository's reads wait until the test opens it.
struct read_gate {
  std::mutex mutex;
  std::condition_variable changed;
  bool closed = false;
  int entered = 0;

  void pass() {
    std::unique_lock lock(mutex);
    ++entered;
    changed.notify_all();
    changed.wait(lock, [&] { return !closed; });
  }
  void close() {
    std::lock_guard lock(mutex);
    closed = true;
  }
  void open() {
    std::lock_guard lock(mutex);
    closed = false;
    changed.notify_all();
  }
  /// True once `n` reads are waiting (or have passed).
  bool reached(int n) {
    std::unique_lock lock(mutex);
    return changed.wait_for(lock, 60s, [&] { return entered >= n; });
  }
};

/// `bytes` bytes of a repeating pattern, written into a socket pair by a
/// thread of its own as fast as the reader takes them.
class generated_body : public body_source {
public:
  explicit generated_body(std::uint64_t bytes) {
    int ends[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) != 0) return;
    read_end_ = ends[0];
    writer_ = std::thread([fd = ends[1], bytes] {
      std::vector<char> chunk(1 << 16);
      for (std::size_t i = 0; i < chunk.size(); ++i)
        chunk[i] = static_cast<char>('a' + i % 26);
      // Byte p is 'a' + p % 65536 % 26.
      for (std::uint64_t sent = 0; sent < bytes;) {
        std::size_t at = sent % chunk.size();
        auto n = ::send(fd, chunk.data() + at,
                        std::min<std::uint64_t>(bytes - sent, chunk.size() - at),
                        MSG_NOSIGNAL);
        if (n <= 0) break;
        sent += static_cast<std::uint64_t>(n);
      }
      ::close(fd);
    });
  }
  ~generated_body() override { finish(true); }
  int fd() const override { return read_end_; }
  satoru::expected<void> finish(bool) override {
    if (read_end_ >= 0) ::shutdown(read_end_, SHUT_RDWR);
    if (writer_.joinable()) writer_.join();
    if (read_end_ >= 0) ::close(read_end_);
    read_end_ = -1;
    return {};
  }

private:
  int read_end_ = -1;
  std::thread writer_;
};

class WebServer : public ::testing::Test {
protected:
  WebServer() {
    cfg_->web_users_file = dir_ / "users.json";
    cfg_->web_tokens_file = dir_ / "tokens.json";
    cfg_->database_path = dir_ / "satoru.db";
    satoru::site_config site;
    site.name = "berlin";
    site.uuid = "0b0e7f8e-0000-5000-8000-000000000001";
    satoru::target_config target;
    target.mode = "directory";
    target.path = "/srv/data";
    target.hash = "0123456789abcdef";
    site.targets.push_back(target);
    cfg_->sites.push_back(site);
    auto db = satoru::store::open(cfg_->database_path);
    EXPECT_TRUE(db && db->sync_config(cfg_->sites));
    put_user(cfg_->web_users_file,
             {"ana", role::operator_, *hash_password("right password", {10, 8, 1})});
    token_ = *new_token();
    put_credential(credential_kind::token, cfg_->web_tokens_file,
                   {"ci", role::operator_, sha256_hex(token_)});
  }
  ~WebServer() override {
    gate_.open();
    if (server_) server_->stop();
  }

  /// A repository of one snapshot of one big file, its reads behind gate_.
  snapshot_source source() {
    snapshot_source s;
    s.snapshots = [this](const satoru::config& cfg, const std::vector<std::string>&) {
      gate_.pass();
      satoru::snapshot_info info;
      info.id = server_snapshot_id;
      info.short_id = server_snapshot_id.substr(0, 8);
      info.time = "2026-11-28T03:04:05Z";
      info.hostname = "satoru";
      info.tags = satoru::snapshot_tags(cfg.sites[0].uuid, cfg.sites[0].targets[0].hash);
      return satoru::expected<std::vector<satoru::snapshot_info>>(
          std::vector<satoru::snapshot_info>{info});
    };
    s.ls = [this](const satoru::config&, const std::string&) {
      satoru::snapshot_node n;
      n.path = "/big.bin";
      n.type = "file";
      n.size = static_cast<std::int64_t>(big_);
      return satoru::expected<std::vector<satoru::snapshot_node>>(
          std::vector<satoru::snapshot_node>{n});
    };
    s.dump =
        [this](const satoru::config&, const std::string&,
               const std::string&) -> satoru::expected<std::shared_ptr<body_source>> {
      return std::shared_ptr<body_source>(
          std::make_shared<generated_body>(dumped_ ? *dumped_ : big_));
    };
    return s;
  }

  void start(server_limits limits = {}, const tls_files& tls = {}) {
    auto routes = std::make_shared<console>(cfg_, console_options{},
                                            std::make_shared<snapshot_pages>(source()));
    auto started =
        web_server::start("127.0.0.1:" + std::to_string(port_), routes, limits, tls);
    ASSERT_TRUE(started) << started.err().message;
    server_ = std::move(*started);
  }

  std::string bearer() const { return "Authorization: Bearer " + token_; }

  std::string snapshots_path() const {
    return "/api/v1/sites/berlin/targets/0123456789abcdef/snapshots";
  }

  std::shared_ptr<satoru::config> cfg_ = std::make_shared<satoru::config>();
  temp_dir dir_;
  std::string token_;
  read_gate gate_;
  std::uint64_t big_ = 1024;
  std::optional<std::uint64_t> dumped_; ///< what restic dump gives (default big_)
  int port_ = satoru::testing::free_port();
  std::unique_ptr<web_server> server_;
};

TEST_F(WebServer, UnauthenticatedConnectionsCannotStarveUsersOrEventStreams) {
  server_limits limits;
  start(limits);
  auto login = satoru::testing::http(port_, "POST", "/login", {},
                                     "user=ana&password=right+password");
  ASSERT_EQ(login.status, 303) << login.head << login.body;
  auto set_cookie = login.header("Set-Cookie");
  std::string cookie = "Cookie: " + set_cookie.substr(0, set_cookie.find(';'));
  auto queued =
      satoru::testing::http(port_, "POST", "/api/v1/sites/berlin/jobs", {bearer()},
                            R"({"type": "preflight"})", "application/json");
  ASSERT_EQ(queued.status, 202) << queued.body;

  // More idle connections than the unauthenticated cap and than the old
  // cap on all connections (64), each a slow loris that sends nothing.
  std::vector<int> idle;
  for (int i = 0; i < std::max(limits.max_unauthenticated, 64) + 1; ++i) {
    int fd = connect_to_console(port_);
    ASSERT_GE(fd, 0);
    idle.push_back(fd);
  }
  // Every idle connection is accepted (the last one with them) before the
  // user's: it answers this request when its turn comes.
  auto health = head_of_response(idle.back(), "GET /healthz HTTP/1.1\r\nHost: "
                                              "127.0.0.1\r\n\r\n");
  EXPECT_EQ(health.rfind("HTTP/1.1 200", 0), 0u) << health;

  auto fleet = satoru::testing::http(port_, "GET", "/?format=json", {cookie});
  EXPECT_EQ(fleet.status, 200) << fleet.head << fleet.body;
  auto token = satoru::testing::http(port_, "GET", "/api/v1/session", {bearer()});
  EXPECT_EQ(token.status, 200) << token.head << token.body;
  int stream = connect_to_console(port_);
  auto events = head_of_response(
      stream, "GET /api/v1/jobs/1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n" + bearer() +
                  "\r\n\r\n");
  EXPECT_EQ(events.rfind("HTTP/1.1 200", 0), 0u) << events;
  EXPECT_NE(events.find("text/event-stream"), std::string::npos) << events;
  ::close(stream);
  for (int fd : idle)
    ::close(fd);
}

TEST_F(WebServer, RepositoryReadsRunOnTheirOwnBoundedPool) {
  server_limits limits;
  limits.threads = 2;
  limits.repository_readers = 2;
  limits.repository_queue = 0;
  start(limits);
  gate_.close();
  // As many reads as there are I/O threads, both stuck in "restic".
  auto first = std::async(std::launch::async, [&] {
    return satoru::testing::http(port_, "GET", snapshots_path(), {bearer()});
  });
  auto second = std::async(std::launch::async, [&] {
    return satoru::testing::http(port_, "GET", snapshots_path(), {bearer()});
  });
  ASSERT_TRUE(gate_.reached(2));
  // The I/O threads still answer at once...
  EXPECT_EQ(satoru::testing::http(port_, "GET", "/healthz").status, 200);
  EXPECT_EQ(satoru::testing::http(port_, "GET", "/login").status, 200);
  // ...and a read beyond the pool is told to come back, not queued forever.
  auto busy = satoru::testing::http(port_, "GET", snapshots_path(), {bearer()});
  EXPECT_EQ(busy.status, 503) << busy.body;
  EXPECT_EQ(busy.header("Retry-After"), "5");
  gate_.open();
  EXPECT_EQ(first.get().status, 200);
  EXPECT_EQ(second.get().status, 200);
}

/// The body of a download on `fd` after its head: how many bytes came
/// before the connection closed, and whether they were the pattern's.
std::pair<std::uint64_t, bool> downloaded_pattern(int fd) {
  std::uint64_t got = 0;
  bool pattern = true;
  std::vector<char> buffer(1 << 16);
  for (;;) {
    auto n = ::recv(fd, buffer.data(), buffer.size(), 0);
    if (n <= 0) break;
    for (ssize_t i = 0; i < n; ++i)
      pattern = pattern && buffer[i] == static_cast<char>('a' + (got + i) % 65536 % 26);
    got += static_cast<std::uint64_t>(n);
  }
  return {got, pattern};
}

TEST_F(WebServer, DownloadsStreamFilesLargerThanAnyBuffer) {
  big_ = std::uint64_t{80} << 20; // beyond the 64 MiB the console once held in memory
  start();
  const std::string request =
      "GET /api/v1/sites/berlin/targets/0123456789abcdef/snapshots/" +
      server_snapshot_id + "/download?path=big.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
      bearer() + "\r\n\r\n";
  int fd = connect_to_console(port_);
  auto head = head_of_response(fd, request);
  EXPECT_EQ(head.rfind("HTTP/1.1 200", 0), 0u) << head;
  EXPECT_NE(head.find("Content-Length: " + std::to_string(big_)), std::string::npos)
      << head;
  auto [got, pattern] = downloaded_pattern(fd);
  ::close(fd);
  EXPECT_EQ(got, big_);
  EXPECT_TRUE(pattern) << "the bytes are the source's, in order";

  // restic giving less than the listing said: the connection closes short,
  // which clients report as a broken download, never as a whole file.
  dumped_ = big_ / 2;
  fd = connect_to_console(port_);
  head = head_of_response(fd, request);
  EXPECT_EQ(head.rfind("HTTP/1.1 200", 0), 0u) << head;
  auto [short_got, short_pattern] = downloaded_pattern(fd);
  ::close(fd);
  EXPECT_EQ(short_got, big_ / 2);
  EXPECT_TRUE(short_pattern);
}

} // namespace
