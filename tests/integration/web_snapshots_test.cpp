// The console's snapshot pages and API against a real daemon, restic
// repository and edge host (one backed-up site for the whole suite): the
// snapshots and tree are what the CLI's --json prints, a downloaded file's
// bytes are the source's, traversal is refused, a viewer cannot restore,
// and a restore back to the edge host is a dry run that changes nothing
// until it is applied.
#include "satoru_env.hpp"
#include "web_client.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>

#include <sys/socket.h>
#include <unistd.h>

using namespace satoru::testing;
using namespace std::chrono_literals;

namespace {

const std::string site = "store-berlin-01";

/// "satoru_session=…" of a login with the form.
std::string cookie_of(int port, const std::string& user) {
  auto login =
      http(port, "POST", "/login", {}, "user=" + user + "&password=correct+horse");
  EXPECT_EQ(login.status, 303) << login.body;
  auto set_cookie = login.header("Set-Cookie");
  return "Cookie: " + set_cookie.substr(0, set_cookie.find(';'));
}

} // namespace

class WebConsoleSnapshots : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    env_ = new satoru_env("satoru-web-snapshots");
    host_ = new edge_host(env_->path("edge"));
    ASSERT_TRUE(host_->running());
    data_ = host_->remote_root() + "/data";
    host_->write_file(data_ + "/orders.csv", "1,espresso\n2,cortado\n");
    host_->write_file(data_ + "/sub/notes.txt", "private notes\n");
    host_->write_file(data_ + "/sub/keep.txt", "kept\n");
    // Larger than the 64 MiB the console once held in memory to send; a
    // repeating pattern, so that restic stores it in a few chunks.
    std::string big(big_size, '\0');
    for (std::size_t i = 0; i < big.size(); ++i)
      big[i] = static_cast<char>('a' + i % 65536 % 26);
    host_->write_file(data_ + "/big.bin", big);
    env_->add_site(site, *host_, {{"directory", data_}});
    port_ = free_port();
    env_->config["web_listen"] = "127.0.0.1:" + std::to_string(port_);
    env_->config["web_users_file"] = "web-users.json";
    env_->config["web_tokens_file"] = "web-tokens.json";
    env_->write_config();
    ASSERT_EQ(add_web_user(*env_, "ana", "correct horse", "operator").exit_code, 0);
    ASSERT_EQ(add_web_user(*env_, "vic", "correct horse", "viewer").exit_code, 0);
    auto token = env_->run({"web-token", "add", "ci", "--role", "operator"});
    ASSERT_EQ(token.exit_code, 0) << token.err;
    bearer_ = "Authorization: Bearer " + token.out.substr(0, token.out.find('\n'));
    daemon_ = new daemon_process(*env_);
    daemon_->start();
    auto run = env_->run({"run", site, "--wait"});
    ASSERT_EQ(run.exit_code, 0) << run.out << run.err << daemon_->log();
    auto sites = parse_json(env_->run({"sites", "--json"}));
    hash_ = std::string(sites.at(0).at("targets").at(0).at("hash").as_string());
    auto snaps = parse_json(env_->run({"snapshots", "--site", site, "--json"}));
    snapshot_ = std::string(snaps.at(0).at("id").as_string());
    base_ = "/api/v1/sites/" + site + "/targets/" + hash_;
  }

  static void TearDownTestSuite() {
    delete daemon_;
    delete host_;
    delete env_;
  }

  static http_reply api(const std::string& method, const std::string& target,
                        const std::string& body = "") {
    return http(port_, method, target, {bearer_}, body, "application/json");
  }

  /// Waits for a job to end; its JSON (`satoru job ID --json`).
  static boost::json::object finished(std::int64_t id) {
    EXPECT_TRUE(wait_until(
        [&] {
          auto s = status_of(*env_, id);
          return s != "queued" && s != "running" && !s.empty();
        },
        90s, 200ms))
        << daemon_->log();
    return job_json(*env_, id);
  }

  static constexpr std::size_t big_size = std::size_t{80} << 20;
  static satoru_env* env_;
  static edge_host* host_;
  static daemon_process* daemon_;
  static int port_;
  static std::string data_, bearer_, hash_, snapshot_, base_;
};

satoru_env* WebConsoleSnapshots::env_ = nullptr;
edge_host* WebConsoleSnapshots::host_ = nullptr;
daemon_process* WebConsoleSnapshots::daemon_ = nullptr;
int WebConsoleSnapshots::port_ = 0;
std::string WebConsoleSnapshots::data_, WebConsoleSnapshots::bearer_,
    WebConsoleSnapshots::hash_, WebConsoleSnapshots::snapshot_,
    WebConsoleSnapshots::base_;

TEST_F(WebConsoleSnapshots, ListsAndBrowsesLikeTheCliAndDownloadsTheSourceBytes) {
  auto list = api("GET", base_ + "/snapshots");
  ASSERT_EQ(list.status, 200) << list.body;
  expect_documented(list, "/api/v1/sites/{site}/targets/{hash}/snapshots", "get");
  EXPECT_EQ(
      boost::json::parse(list.body),
      parse_json(env_->run({"snapshots", "--site", site, "--target", hash_, "--json"})));

  // The whole tree as `satoru ls --json`, one folder level by default.
  auto all = api("GET", base_ + "/snapshots/" + snapshot_ + "/tree?recursive=1");
  ASSERT_EQ(all.status, 200) << all.body;
  expect_documented(all, "/api/v1/sites/{site}/targets/{hash}/snapshots/{id}/tree",
                    "get");
  EXPECT_EQ(boost::json::parse(all.body),
            parse_json(env_->run(
                {"ls", site, hash_, "--snapshot", snapshot_.substr(0, 8), "--json"})));
  // One level: what `satoru ls` lists below the folder, without the folder.
  auto sub = api("GET", base_ + "/snapshots/" + snapshot_ + "/tree?path=sub");
  ASSERT_EQ(sub.status, 200) << sub.body;
  auto below = parse_json(env_->run({"ls", site, hash_, "sub", "--snapshot",
                                     snapshot_.substr(0, 8), "--json"}))
                   .as_array();
  below.erase(below.begin());
  EXPECT_EQ(boost::json::parse(sub.body), boost::json::value(below));
  auto page = http(port_, "GET",
                   "/sites/" + site + "/targets/" + hash_ + "/snapshots/" + snapshot_ +
                       "/tree?path=sub",
                   {cookie_of(port_, "vic")});
  ASSERT_EQ(page.status, 200) << page.body;
  EXPECT_TRUE(contains(page.body, "notes.txt")) << page.body;

  auto file = api("GET", base_ + "/snapshots/" + snapshot_ + "/download?path=orders.csv");
  ASSERT_EQ(file.status, 200) << file.body;
  EXPECT_EQ(file.body, read_file(data_ + "/orders.csv"));
  EXPECT_EQ(file.header("Content-Disposition"), "attachment; filename=\"orders.csv\"");
  EXPECT_EQ(file.header("Content-Type"), "application/octet-stream");
}

TEST_F(WebConsoleSnapshots, SlowDownloadsOfAFileBeyondAnyCeilingKeepTheDaemonSmall) {
  const std::string request = "GET " + base_ + "/snapshots/" + snapshot_ +
                              "/download?path=big.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
                              bearer_ + "\r\n\r\n";
  // Sixteen downloads at once, each read 1 MiB and then left waiting, as a
  // slow client would: the daemon holds a chunk of each, not the file.
  std::vector<int> downloads;
  std::vector<char> buffer(1 << 20);
  for (int i = 0; i < 16; ++i) {
    int fd = connect_to_console(port_);
    ASSERT_GE(fd, 0);
    downloads.push_back(fd);
    auto head = head_of_response(fd, request);
    ASSERT_EQ(head.rfind("HTTP/1.1 200", 0), 0u) << head << daemon_->log();
    EXPECT_TRUE(contains(head, "Content-Length: " + std::to_string(big_size))) << head;
    std::size_t got = 0;
    while (got < buffer.size()) {
      auto n = ::recv(fd, buffer.data() + got, buffer.size() - got, 0);
      ASSERT_GT(n, 0);
      got += static_cast<std::size_t>(n);
    }
  }
  long rss = resident_kib(daemon_->pid());
  ASSERT_GT(rss, 0);
  EXPECT_LT(rss, 200 * 1024) << "the daemon grew to " << rss << " KiB";

  // One read to the end: the bytes are the file's, all of them.
  std::size_t total = 0;
  bool same = true;
  for (;;) {
    auto n = ::recv(downloads[0], buffer.data(), buffer.size(), 0);
    if (n <= 0) break;
    for (ssize_t i = 0; i < n && same; ++i)
      same = buffer[i] == static_cast<char>('a' + (total + (1 << 20) + i) % 65536 % 26);
    total += static_cast<std::size_t>(n);
  }
  EXPECT_EQ(total + (1 << 20), big_size);
  EXPECT_TRUE(same);
  for (int fd : downloads)
    ::close(fd);
}

TEST_F(WebConsoleSnapshots, RefusesPathTraversalInTreeAndDownload) {
  const std::string snap = base_ + "/snapshots/" + snapshot_;
  for (std::string bad : {"..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", "sub%2F..%2F..",
                          "orders.csv%00.txt", "sub%5C..%5C..%5Corders.csv"}) {
    for (std::string what : {"/tree", "/download"}) {
      auto r = api("GET", snap + what + "?path=" + bad);
      EXPECT_EQ(r.status, 400) << what << " " << bad << ": " << r.body;
      EXPECT_TRUE(contains(r.body, "?path: ")) << r.body;
      expect_documented(r, "/api/v1/sites/{site}/targets/{hash}/snapshots/{id}" + what,
                        "get");
    }
  }
  auto missing = api("GET", snap + "/download?path=etc%2Fpasswd");
  EXPECT_EQ(missing.status, 404) << missing.body;
  expect_documented(missing,
                    "/api/v1/sites/{site}/targets/{hash}/snapshots/{id}/download", "get");
  auto folder = api("GET", snap + "/download?path=sub");
  EXPECT_EQ(folder.status, 400) << folder.body;
  auto other = api("GET", base_ + "/snapshots/" + std::string(64, '0') + "/tree");
  EXPECT_EQ(other.status, 404) << other.body;
  auto unknown =
      api("GET", "/api/v1/sites/" + site + "/targets/0000000000000000/snapshots");
  EXPECT_EQ(unknown.status, 404) << unknown.body;
  expect_documented(unknown, "/api/v1/sites/{site}/targets/{hash}/snapshots", "get");
}

TEST_F(WebConsoleSnapshots, AViewerCannotRestore) {
  auto vic = cookie_of(port_, "vic");
  auto session = http(port_, "GET", "/api/v1/session", {vic});
  auto csrf = std::string(boost::json::parse(session.body).at("csrf_token").as_string());
  auto refused = http(port_, "POST", base_ + "/restores", {vic, "X-CSRF-Token: " + csrf},
                      R"({"snapshot": "latest"})", "application/json");
  EXPECT_EQ(refused.status, 403) << refused.body;
  expect_documented(refused, "/api/v1/sites/{site}/targets/{hash}/restores", "post");
  auto form = http(port_, "POST", "/sites/" + site + "/targets/" + hash_ + "/restores",
                   {vic}, "csrf=" + csrf + "&snapshot=" + snapshot_);
  EXPECT_EQ(form.status, 403) << form.body;
}

TEST_F(WebConsoleSnapshots, ADryRunChangesNothingAndTheAppliedRestorePutsTheFileBack) {
  const std::string lost = data_ + "/sub/notes.txt";
  std::filesystem::remove(lost);
  auto bad = api("POST", base_ + "/restores", R"({"paths": ["../etc"]})");
  EXPECT_EQ(bad.status, 400) << bad.body;
  expect_documented(bad, "/api/v1/sites/{site}/targets/{hash}/restores", "post");

  auto dry = api("POST", base_ + "/restores",
                 R"({"snapshot": "latest", "paths": ["sub"], "apply": false})");
  ASSERT_EQ(dry.status, 202) << dry.body;
  expect_documented(dry, "/api/v1/sites/{site}/targets/{hash}/restores", "post");
  auto dry_id = boost::json::parse(dry.body).at("id").as_int64();
  EXPECT_EQ(dry.header("Location"), "/api/v1/jobs/" + std::to_string(dry_id));
  auto job = finished(dry_id);
  ASSERT_EQ(job.at("status"), "success") << job;
  EXPECT_EQ(job.at("type"), "restore");
  boost::json::value changes;
  for (const auto& e : job.at("events").as_array())
    if (e.at("step") == "restore.changes") changes = e.at("data");
  ASSERT_TRUE(changes.is_object()) << job;
  EXPECT_EQ(changes.at("applied"), false);
  EXPECT_EQ(changes.at("created"), boost::json::array{"sub/notes.txt"}) << changes;
  EXPECT_FALSE(std::filesystem::exists(lost)) << "a dry run changes nothing";

  // The preview page lists the change and offers the confirmation.
  auto ana = cookie_of(port_, "ana");
  auto preview =
      http(port_, "GET",
           "/sites/" + site + "/targets/" + hash_ + "/restores/" + std::to_string(dry_id),
           {ana});
  ASSERT_EQ(preview.status, 200) << preview.body;
  EXPECT_TRUE(contains(preview.body, "sub/notes.txt")) << preview.body;
  EXPECT_TRUE(contains(preview.body, "name=\"confirm\"")) << preview.body;

  auto applied =
      api("POST", base_ + "/restores",
          R"({"snapshot": ")" + snapshot_ + R"(", "paths": ["sub"], "apply": true})");
  ASSERT_EQ(applied.status, 202) << applied.body;
  auto done = finished(boost::json::parse(applied.body).at("id").as_int64());
  ASSERT_EQ(done.at("status"), "success") << done;
  EXPECT_EQ(read_file(lost), "private notes\n");
}
