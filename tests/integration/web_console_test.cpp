// The web console served by a real daemon: a user made with
// `satoru web-user add` (password on stdin) logs in over HTTP and reads the
// fleet after a real backup; check-config refuses a console reachable
// beyond loopback without TLS; the fleet sorts, filters and searches; the
// repository page shows retention and the off-site copy and syncs for operators.
#include "openapi_check.hpp"
#include "rclone_server.hpp"
#include "satoru_env.hpp"
#include "web_client.hpp"

#include "satoru/process.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

using namespace satoru::testing;
using namespace std::chrono_literals;

namespace {

/// A string in a curl config file: quoted, with \ and " escaped.
std::string curl_quoted(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '\\' || c == '"') out += '\\';
    out += c;
  }
  return out + "\"";
}

/// One HTTPS request with curl to 127.0.0.1:port, trusting only the
/// certificate `ca`; its options (headers, the body) go through stdin, so
/// no token or password is in an argv.
http_reply https(int port, const std::string& ca, const std::string& method,
                 const std::string& target, const std::vector<std::string>& headers = {},
                 const std::string& body = "",
                 const std::string& content_type = "application/json") {
  std::string options =
      "url = " + curl_quoted("https://127.0.0.1:" + std::to_string(port) + target) +
      "\nrequest = " + curl_quoted(method) + "\n";
  for (const auto& h : headers)
    options += "header = " + curl_quoted(h) + "\n";
  if (!body.empty())
    options += "header = " + curl_quoted("Content-Type: " + content_type) +
               "\ndata-binary = " + curl_quoted(body) + "\n";
  satoru::process_spec spec;
  spec.argv = {"curl", "-sS", "-i", "--cacert", ca, "--config", "-"};
  spec.stdin_data = options;
  spec.timeout = 120s;
  auto r = satoru::run_process(spec);
  return r ? parse_reply(r->out) : http_reply{};
}

} // namespace

/// A site "store-berlin-01" on a real edge host with one small directory
/// target, and the console on a free loopback port (config not written yet).
class WebConsole : public ::testing::Test {
protected:
  WebConsole() {
    host_.write_file(host_.remote_root() + "/data/a", "a");
    env_.add_site("store-berlin-01", host_,
                  {{"directory", host_.remote_root() + "/data"}});
    env_.config["web_listen"] = "127.0.0.1:" + std::to_string(port_);
    env_.config["web_users_file"] = "web-users.json";
  }

  satoru_env env_;
  edge_host host_{env_.path("edge")};
  int port_ = free_port();
};

TEST_F(WebConsole, AUserAddedFromStdinLogsInAndSeesTheFleetAfterABackup) {
  ASSERT_TRUE(host_.running());
  auto& env = env_;
  int port = port_;
  env.write_config();
  const std::string password = "correct horse battery";

  auto added = add_web_user(env, "ana", password);
  ASSERT_EQ(added.exit_code, 0) << added.out << added.err;
  struct stat st {};
  ASSERT_EQ(::stat(env.path("web-users.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto users = read_file(env.path("web-users.json"));
  EXPECT_TRUE(contains(users, "$scrypt$ln=15,r=8,p=1$")) << users;
  EXPECT_FALSE(contains(users, password));

  daemon_process daemon{env};
  daemon.start();
  ASSERT_TRUE(
      wait_until([&] { return http(port, "GET", "/healthz").status == 200; }, 10s))
      << daemon.log();
  EXPECT_EQ(http(port, "GET", "/healthz").body, "ok\n");

  // Nothing else without a session: browsers go to the form, API clients get 401.
  auto page = http(port, "GET", "/");
  EXPECT_EQ(page.status, 303);
  EXPECT_EQ(page.header("Location"), "/login");
  auto api = http(port, "GET", "/?format=json");
  EXPECT_EQ(api.status, 401);
  EXPECT_TRUE(contains(api.body, "\"error\"")) << api.body;
  EXPECT_EQ(http(port, "GET", "/login").status, 200);

  // The backup the fleet page will show.
  auto run = env.run({"run", "store-berlin-01", "--wait"});
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err << daemon.log();

  // The right password: a strict, HttpOnly session cookie.
  auto login =
      http(port, "POST", "/login", {}, "user=ana&password=correct+horse+battery");
  ASSERT_EQ(login.status, 303) << login.head << login.body;
  std::string set_cookie = login.header("Set-Cookie");
  EXPECT_TRUE(contains(set_cookie, "; HttpOnly")) << set_cookie;
  EXPECT_TRUE(contains(set_cookie, "; SameSite=Strict")) << set_cookie;
  EXPECT_TRUE(contains(set_cookie, "; Path=/")) << set_cookie;
  std::string cookie = "Cookie: " + set_cookie.substr(0, set_cookie.find(';'));

  auto fleet = http(port, "GET", "/?format=json", {cookie});
  ASSERT_EQ(fleet.status, 200) << fleet.body;
  auto json = boost::json::parse(fleet.body);
  auto& site = json.at("sites").at(0);
  EXPECT_EQ(site.at("name"), "store-berlin-01");
  EXPECT_EQ(site.at("health"), "ok") << fleet.body;
  EXPECT_NE(site.at("last_success_at"), "") << fleet.body;
  EXPECT_EQ(json.at("counts").at("ok"), 1) << fleet.body;
  auto html = http(port, "GET", "/", {cookie});
  EXPECT_EQ(html.status, 200);
  EXPECT_TRUE(contains(html.body, "store-berlin-01")) << html.body;
  EXPECT_TRUE(contains(html.header("Content-Type"), "text/html"));

  // The API after a real backup: what the CLI's --json prints, and every
  // answer as docs/openapi.json describes it.
  auto api_get = [&](const std::string& target, const std::string& documented) {
    auto reply = http(port, "GET", target, {cookie});
    expect_documented(reply, documented, "get");
    return reply;
  };
  api_get("/api/v1/session", "/api/v1/session");
  auto sites = api_get("/api/v1/sites", "/api/v1/sites");
  ASSERT_EQ(sites.status, 200) << sites.body;
  EXPECT_EQ(boost::json::parse(sites.body), parse_json(env.run({"sites", "--json"})));
  EXPECT_EQ(boost::json::parse(sites.body).at(0).at("targets").at(0).at("last_status"),
            "success");
  api_get("/api/v1/sites/store-berlin-01", "/api/v1/sites/{site}");
  api_get("/api/v1/sites/nowhere", "/api/v1/sites/{site}");
  auto jobs = api_get("/api/v1/jobs?site=store-berlin-01&limit=5", "/api/v1/jobs");
  ASSERT_EQ(jobs.status, 200) << jobs.body;
  auto job_id = boost::json::parse(jobs.body).at(0).at("id").as_int64();
  api_get("/api/v1/jobs?limit=0", "/api/v1/jobs");
  auto job = api_get("/api/v1/jobs/" + std::to_string(job_id), "/api/v1/jobs/{id}");
  EXPECT_EQ(boost::json::parse(job.body), boost::json::value(job_json(env, job_id)));
  api_get("/api/v1/jobs/99999", "/api/v1/jobs/{id}");
  expect_documented(http(port, "GET", "/api/v1/sites"), "/api/v1/sites", "get");
  auto refused = http(port, "POST", "/api/v1/sites/store-berlin-01/jobs", {cookie},
                      R"({"type": "backup"})", "application/json");
  EXPECT_EQ(refused.status, 403) << "a viewer";
  expect_documented(refused, "/api/v1/sites/{site}/jobs", "post");

  // Wrong passwords: 401, then 429 for this address after five, and the
  // log names the user and the address but never a password.
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(
        http(port, "POST", "/login", {}, "user=ana&password=guess" + std::to_string(i))
            .status,
        401);
  auto limited =
      http(port, "POST", "/login", {}, "user=ana&password=correct+horse+battery");
  EXPECT_EQ(limited.status, 429);
  EXPECT_NE(limited.header("Retry-After"), "");
  std::string log = daemon.log();
  EXPECT_TRUE(contains(log, "failed login for \"ana\" from 127.0.0.1")) << log;
  EXPECT_FALSE(contains(log, "guess0")) << log;
  EXPECT_FALSE(contains(log, "correct horse")) << log;
  EXPECT_EQ(daemon.stop(), 0);

  // A console reachable from the network without TLS is a config error.
  env.config["web_listen"] = "0.0.0.0:" + std::to_string(port);
  env.write_config();
  auto check = env.run({"check-config"});
  EXPECT_EQ(check.exit_code, 2);
  EXPECT_TRUE(
      contains(check.err,
               env.config_path() + ": /web_listen: listens beyond loopback without TLS"))
      << check.err;
}

TEST_F(WebConsole, ServesHttpsAndQueuesAJobForAnApiTokenUntilItIsRemoved) {
  ASSERT_TRUE(host_.running());
  auto& env = env_;
  int port = port_;
  // A self-signed certificate for 127.0.0.1, as an operator would make one.
  satoru::process_spec openssl;
  openssl.argv = {"openssl",
                  "req",
                  "-x509",
                  "-newkey",
                  "ec",
                  "-pkeyopt",
                  "ec_paramgen_curve:P-256",
                  "-nodes",
                  "-days",
                  "2",
                  "-subj",
                  "/CN=127.0.0.1",
                  "-addext",
                  "subjectAltName=IP:127.0.0.1",
                  "-keyout",
                  env.path("tls.key"),
                  "-out",
                  env.path("cert.pem")};
  openssl.timeout = 30s;
  auto made = satoru::run_process(openssl);
  ASSERT_TRUE(made && made->exit_code == 0) << (made ? made->err : made.err().message);
  ASSERT_EQ(::chmod(env.path("tls.key").c_str(), 0600), 0);
  env.config["web_tokens_file"] = "web-tokens.json";
  env.config["web_tls_certificate"] = "cert.pem";
  env.config["web_tls_key"] = "tls.key";
  env.write_config();
  const std::string ca = env.path("cert.pem");

  ASSERT_EQ(add_web_user(env, "ana", "correct horse battery", "operator").exit_code, 0);
  auto added = env.run({"web-token", "add", "ci", "--role", "operator"});
  ASSERT_EQ(added.exit_code, 0) << added.err;
  std::string token = added.out.substr(0, added.out.find('\n'));
  ASSERT_EQ(token.size(), 71u) << added.out; // satoru_ + 64 hex digits
  struct stat st {};
  ASSERT_EQ(::stat(env.path("web-tokens.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_FALSE(contains(read_file(env.path("web-tokens.json")), token));
  auto listed = env.run({"web-token", "list", "--json"});
  EXPECT_EQ(boost::json::parse(listed.out),
            boost::json::parse(R"([{"name": "ci", "role": "operator"}])"))
      << listed.out;

  daemon_process daemon{env};
  daemon.start();
  ASSERT_TRUE(
      wait_until([&] { return https(port, ca, "GET", "/healthz").status == 200; }, 10s))
      << daemon.log();
  EXPECT_TRUE(contains(daemon.log(), "web console on https://127.0.0.1:"))
      << daemon.log();
  EXPECT_EQ(http(port, "GET", "/healthz").status, 0) << "no plain HTTP on a TLS port";

  // Under TLS the session cookie is Secure.
  auto login =
      https(port, ca, "POST", "/login", {}, "user=ana&password=correct+horse+battery",
            "application/x-www-form-urlencoded");
  ASSERT_EQ(login.status, 303) << login.head << login.body;
  std::string set_cookie = login.header("Set-Cookie");
  EXPECT_TRUE(contains(set_cookie, "; Secure")) << set_cookie;
  // ...and every response tells the browser to come back over HTTPS only.
  EXPECT_EQ(login.header("Strict-Transport-Security"), "max-age=31536000") << login.head;
  EXPECT_EQ(https(port, ca, "GET", "/healthz").header("Strict-Transport-Security"),
            "max-age=31536000");
  std::string cookie = "Cookie: " + set_cookie.substr(0, set_cookie.find(';'));
  EXPECT_EQ(https(port, ca, "GET", "/?format=json", {cookie}).status, 200);

  // The token queues a preflight without a CSRF token; the daemon runs it.
  auto bearer = "Authorization: Bearer " + token;
  auto queued = https(port, ca, "POST", "/api/v1/sites/store-berlin-01/jobs", {bearer},
                      R"({"type": "preflight"})");
  ASSERT_EQ(queued.status, 202) << queued.head << queued.body;
  expect_documented(queued, "/api/v1/sites/{site}/jobs", "post");
  auto id = boost::json::parse(queued.body).at("id").as_int64();

  // Its events as Server-Sent Events while it waits and runs; the stream
  // ends with the job.
  auto stream =
      https(port, ca, "GET", "/api/v1/jobs/" + std::to_string(id) + "/events", {bearer});
  ASSERT_EQ(stream.status, 200) << stream.head << stream.body << daemon.log();
  EXPECT_EQ(stream.header("Content-Type"), "text/event-stream");
  EXPECT_EQ(stream.header("Strict-Transport-Security"), "max-age=31536000");
  auto job = job_json(env, id);
  EXPECT_EQ(job.at("status"), "success") << stream.body;
  std::size_t events = 0;
  for (auto at = stream.body.find("event: event\n"); at != std::string::npos;
       at = stream.body.find("event: event\n", at + 1))
    ++events;
  EXPECT_EQ(events, job.at("events").as_array().size()) << stream.body;
  auto end = stream.body.find("event: end\ndata: ");
  ASSERT_NE(end, std::string::npos) << stream.body;
  auto last = boost::json::parse(stream.body.substr(end + 17));
  EXPECT_EQ(last.at("status"), "success");
  EXPECT_EQ(last.at("type"), "preflight");

  // Removed credentials stop working at once, without a reload.
  ASSERT_EQ(env.run({"web-token", "remove", "ci"}).exit_code, 0);
  EXPECT_EQ(https(port, ca, "GET", "/api/v1/session", {bearer}).status, 401);
  ASSERT_EQ(env.run({"web-user", "remove", "ana"}).exit_code, 0);
  EXPECT_EQ(https(port, ca, "GET", "/?format=json", {cookie}).status, 401);
  auto missing = env.run({"web-user", "remove", "ana"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_TRUE(contains(missing.err, "no web user \"ana\" in ")) << missing.err;
  EXPECT_EQ(daemon.stop(), 0);

  // A key others may read is refused, naming the key.
  ASSERT_EQ(::chmod(env.path("tls.key").c_str(), 0644), 0);
  auto check = env.run({"check-config"});
  EXPECT_EQ(check.exit_code, 2);
  EXPECT_TRUE(contains(check.err, env.config_path() + ": /web_tls_key: ")) << check.err;
}

TEST_F(WebConsole, FailedPasswordsLockOutOnlyTheirNameAndNewPasswordsEndSessions) {
  ASSERT_TRUE(host_.running());
  auto& env = env_;
  int port = port_;
  env.config["web_tokens_file"] = "web-tokens.json";
  env.config["web_allowed_hosts"] = boost::json::array{"backup.example.com"};
  env.write_config();
  ASSERT_EQ(add_web_user(env, "ana", "correct horse battery", "operator").exit_code, 0);
  ASSERT_EQ(add_web_user(env, "bo", "battery staple", "viewer").exit_code, 0);
  auto added = env.run({"web-token", "add", "ci", "--role", "operator"});
  ASSERT_EQ(added.exit_code, 0) << added.err;
  auto bearer = "Authorization: Bearer " + added.out.substr(0, added.out.find('\n'));
  daemon_process daemon{env};
  daemon.start();
  ASSERT_TRUE(
      wait_until([&] { return http(port, "GET", "/healthz").status == 200; }, 10s))
      << daemon.log();
  auto bo_login = http(port, "POST", "/login", {}, "user=bo&password=battery+staple");
  ASSERT_EQ(bo_login.status, 303) << bo_login.body;
  auto bo_cookie = bo_login.header("Set-Cookie");
  bo_cookie = "Cookie: " + bo_cookie.substr(0, bo_cookie.find(';'));

  // Six wrong passwords for ana from this address (everyone behind one
  // proxy shares it): ana waits; the token and bo do not.
  for (int i = 0; i < 6; ++i)
    http(port, "POST", "/login", {}, "user=ana&password=guess" + std::to_string(i));
  EXPECT_EQ(
      http(port, "POST", "/login", {}, "user=ana&password=correct+horse+battery").status,
      429);
  auto token = http(port, "GET", "/api/v1/session", {bearer});
  EXPECT_EQ(token.status, 200) << token.body;
  EXPECT_EQ(http(port, "GET", "/api/v1/session", {bo_cookie}).status, 200);
  EXPECT_EQ(http(port, "POST", "/login", {}, "user=bo&password=battery+staple").status,
            303);

  // A page of another site whose name resolves here (DNS rebinding) gets 421.
  auto rebound = parse_reply(http_exchange(
      port, "GET /api/v1/session HTTP/1.1\r\nHost: evil.example:" + std::to_string(port) +
                "\r\nConnection: close\r\n" + bo_cookie + "\r\n\r\n"));
  EXPECT_EQ(rebound.status, 421) << rebound.head << rebound.body;
  auto named = parse_reply(
      http_exchange(port, "GET /api/v1/session HTTP/1.1\r\nHost: backup.example.com\r\n"
                          "Connection: close\r\n" +
                              bo_cookie + "\r\n\r\n"));
  EXPECT_EQ(named.status, 200) << named.head << named.body;

  // A new password for bo ends bo's session at once, without a reload.
  ASSERT_EQ(add_web_user(env, "bo", "a new password", "viewer").exit_code, 0);
  EXPECT_EQ(http(port, "GET", "/api/v1/session", {bo_cookie}).status, 401);
  EXPECT_EQ(daemon.stop(), 0);
}

/// One daemon for the fleet and repository tests: "store-berlin-01" backed
/// up (ok), "store-hamburg-02" whose host refuses connections (failed) and
/// "Lager-Koeln" that never ran (unknown); a retention job ran; the
/// off-site repository is rclone's REST server, the stand-in for B2. Set
/// up once: the backups, the prune and the daemon's start are the slow part.
class WebConsoleFleetAndRepository : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    env_ = std::make_unique<satoru_env>();
    host_ = std::make_unique<edge_host>(env_->path("edge"));
    ASSERT_TRUE(host_->running());
    remote_ = std::make_unique<rclone_server>();
    ASSERT_TRUE(remote_->start(env_->path("b2"))) << remote_->last_error();
    auto& env = *env_;
    host_->write_file(host_->remote_root() + "/data/a", "a");
    env.add_site("store-berlin-01", *host_,
                 {{"directory", host_->remote_root() + "/data"}});
    int closed = free_port();
    env.add_site_at("store-hamburg-02", *host_, closed, {{"directory", "/srv"}});
    env.add_site_at("Lager-Koeln", *host_, closed, {{"directory", "/srv"}});
    port_ = free_port();
    env.config["web_listen"] = "127.0.0.1:" + std::to_string(port_);
    env.config["web_users_file"] = "web-users.json";
    // The off-site repository's URL with a password in it: never shown.
    auto url = remote_->url();
    env.config["restic_b2_repository"] =
        url.replace(url.find("http://") + 7, 0, "satoru:s3cret@") + "fleet";
    env.config["site_scan_interval_hours"] = 0; // nothing runs unasked
    env.config["retry_max_attempts"] = 1;
    env.write_config();
    ASSERT_EQ(add_web_user(env, "ana", "correct horse battery", "operator").exit_code, 0);
    ASSERT_EQ(add_web_user(env, "vic", "correct horse battery").exit_code, 0);
    auto backup = env.run({"run", "store-berlin-01", "--wait"});
    ASSERT_EQ(backup.exit_code, 0) << backup.out << backup.err;
    EXPECT_NE(env.run({"run", "store-hamburg-02", "--wait"}).exit_code, 0);
    auto prune = env.run({"prune", "--wait"});
    ASSERT_EQ(prune.exit_code, 0) << prune.out << prune.err;
    daemon_ = std::make_unique<daemon_process>(env);
    daemon_->start();
    ASSERT_TRUE(
        wait_until([] { return http(port_, "GET", "/healthz").status == 200; }, 10s))
        << daemon_->log();
  }

  static void TearDownTestSuite() {
    if (daemon_) {
      EXPECT_EQ(daemon_->stop(), 0);
    }
    daemon_.reset();
    remote_.reset();
    host_.reset();
    env_.reset();
  }

  /// "Cookie: satoru_session=…" of a fresh login.
  static std::string log_in(const std::string& user) {
    auto login = http(port_, "POST", "/login", {},
                      "user=" + user + "&password=correct+horse+battery");
    EXPECT_EQ(login.status, 303) << login.body;
    auto set_cookie = login.header("Set-Cookie");
    return "Cookie: " + set_cookie.substr(0, set_cookie.find(';'));
  }

  static std::string csrf_of(const std::string& cookie) {
    auto session = http(port_, "GET", "/api/v1/session", {cookie});
    return std::string(boost::json::parse(session.body).at("csrf_token").as_string());
  }

  static std::vector<std::string> names(const boost::json::value& sites) {
    std::vector<std::string> out;
    for (const auto& s : sites.as_array())
      out.emplace_back(s.at("name").as_string());
    return out;
  }

  static inline std::unique_ptr<satoru_env> env_;
  static inline std::unique_ptr<edge_host> host_;
  static inline std::unique_ptr<rclone_server> remote_;
  static inline std::unique_ptr<daemon_process> daemon_;
  static inline int port_ = 0;
};

TEST_F(WebConsoleFleetAndRepository, TheFleetSortsFiltersAndSearchesInPagesAndTheApi) {
  ASSERT_TRUE(daemon_ && daemon_->running());
  auto cookie = log_in("vic");
  auto fleet = http(port_, "GET", "/?format=json&sort=health", {cookie});
  ASSERT_EQ(fleet.status, 200) << fleet.body;
  auto json = boost::json::parse(fleet.body);
  EXPECT_EQ(json.at("counts").at("ok"), 1) << fleet.body;
  EXPECT_EQ(json.at("counts").at("failed"), 1) << fleet.body;
  EXPECT_EQ(json.at("counts").at("unknown"), 1) << fleet.body;
  EXPECT_EQ(
      names(json.at("sites")),
      (std::vector<std::string>{"store-hamburg-02", "Lager-Koeln", "store-berlin-01"}))
      << "worst first";
  EXPECT_EQ(json.at("sites").at(2).at("stale"), false) << "just backed up";
  auto failed = http(port_, "GET", "/?format=json&health=failed", {cookie});
  EXPECT_EQ(names(boost::json::parse(failed.body).at("sites")),
            std::vector<std::string>{"store-hamburg-02"});
  auto searched = http(port_, "GET", "/?format=json&q=BERLIN", {cookie});
  EXPECT_EQ(names(boost::json::parse(searched.body).at("sites")),
            std::vector<std::string>{"store-berlin-01"});

  // The API: `satoru sites --json`'s elements, narrowed and ordered alike.
  auto api = http(port_, "GET", "/api/v1/sites?q=store&order=desc", {cookie});
  ASSERT_EQ(api.status, 200) << api.body;
  expect_documented(api, "/api/v1/sites", "get");
  EXPECT_EQ(names(boost::json::parse(api.body)),
            (std::vector<std::string>{"store-hamburg-02", "store-berlin-01"}));
  auto bad = http(port_, "GET", "/api/v1/sites?sort=size", {cookie});
  EXPECT_EQ(bad.status, 400);
  expect_documented(bad, "/api/v1/sites", "get");
  EXPECT_TRUE(
      contains(bad.body, "?sort: must be name, health, last_success or staleness"))
      << bad.body;

  // The page a browser gets: counts link to their filter keeping the
  // search, and the header links the repository page.
  auto page = http(port_, "GET", "/?q=store", {cookie});
  ASSERT_EQ(page.status, 200);
  EXPECT_TRUE(contains(page.body, "href=\"/?health=failed&amp;q=store\"")) << page.body;
  EXPECT_TRUE(contains(page.body, "2 of 3 sites")) << page.body;
  EXPECT_FALSE(contains(page.body, ">Lager-Koeln<")) << page.body;
  EXPECT_TRUE(contains(page.body, "href=\"/repository\"")) << page.body;
}

TEST_F(WebConsoleFleetAndRepository,
       TheRepositoryPageShowsRetentionAndSyncsForOperators) {
  ASSERT_TRUE(daemon_ && daemon_->running());
  auto viewer = log_in("vic");
  auto op = log_in("ana");
  // The daemon measures the repository at start (its metrics refresh).
  boost::json::value repo;
  ASSERT_TRUE(wait_until(
      [&] {
        auto r = http(port_, "GET", "/api/v1/repository", {viewer});
        repo = boost::json::parse(r.body);
        return r.status == 200 && repo.at("local").at("snapshots").is_int64();
      },
      30s))
      << repo << daemon_->log();
  expect_documented(http(port_, "GET", "/api/v1/repository", {viewer}),
                    "/api/v1/repository", "get");
  EXPECT_EQ(repo.at("local").at("snapshots"), 1) << repo;
  EXPECT_GT(repo.at("local").at("size_bytes").as_int64(), 0) << repo;
  // From the daemon's metrics refresh when it has run since the start (at
  // most once a minute), else from the console's own --no-lock read: the
  // figures are the same either way.
  auto source = repo.at("local").at("measured_by");
  EXPECT_TRUE(source == "metrics" || source == "restic") << repo;
  EXPECT_EQ(repo.at("local").at("repository").as_string(), env_->path("repo")) << repo;
  EXPECT_EQ(repo.at("last_retention").at("status"), "success") << repo;
  EXPECT_TRUE(repo.at("last_check").is_null()) << repo;
  EXPECT_EQ(repo.at("offsite").at("repository").as_string(), remote_->repository("fleet"))
      << repo;
  EXPECT_FALSE(contains(boost::json::serialize(repo), "s3cret"));
  EXPECT_EQ(repo.at("offsite").at("status"), "") << "never synced";

  auto viewer_page = http(port_, "GET", "/repository", {viewer});
  ASSERT_EQ(viewer_page.status, 200);
  EXPECT_TRUE(contains(viewer_page.body, "Last retention")) << viewer_page.body;
  EXPECT_FALSE(contains(viewer_page.body, "Sync now")) << "viewers only look";
  auto refused = http(port_, "POST", "/repository/jobs", {viewer},
                      "type=sync&csrf=" + csrf_of(viewer));
  EXPECT_EQ(refused.status, 403);
  auto refused_api = http(port_, "POST", "/api/v1/repository/jobs",
                          {viewer, "X-CSRF-Token: " + csrf_of(viewer)},
                          R"({"type": "sync"})", "application/json");
  EXPECT_EQ(refused_api.status, 403);
  expect_documented(refused_api, "/api/v1/repository/jobs", "post");

  // An operator's "Sync now": `satoru sync`'s job, then its page.
  auto op_page = http(port_, "GET", "/repository", {op});
  EXPECT_TRUE(contains(op_page.body, "Sync now")) << op_page.body;
  EXPECT_TRUE(contains(op_page.body, "Prune now")) << op_page.body;
  auto sync =
      http(port_, "POST", "/repository/jobs", {op}, "type=sync&csrf=" + csrf_of(op));
  ASSERT_EQ(sync.status, 303) << sync.body;
  auto location = sync.header("Location");
  ASSERT_EQ(location.rfind("/jobs/", 0), 0u) << location;
  auto id = std::stoll(location.substr(6));
  ASSERT_TRUE(wait_until([&] { return status_of(*env_, id) == "success"; }, 60s))
      << status_of(*env_, id) << daemon_->log();
  EXPECT_EQ(job_json(*env_, id).at("type"), "restic_sync");
  repo = boost::json::parse(http(port_, "GET", "/repository?format=json", {viewer}).body);
  EXPECT_EQ(repo.at("offsite").at("status"), "success") << repo;
  EXPECT_EQ(repo.at("offsite").at("lag_snapshots"), 0) << repo;
  EXPECT_EQ(repo.at("last_sync").at("id"), id) << repo;
  auto synced_page = http(port_, "GET", "/repository", {viewer});
  EXPECT_TRUE(contains(synced_page.body, "href=\"/jobs/" + std::to_string(id) + "\""))
      << synced_page.body;

  // The API queues a check; 202 with the job's address.
  auto check =
      http(port_, "POST", "/api/v1/repository/jobs", {op, "X-CSRF-Token: " + csrf_of(op)},
           R"({"type": "check"})", "application/json");
  ASSERT_EQ(check.status, 202) << check.body;
  expect_documented(check, "/api/v1/repository/jobs", "post");
  auto check_id = boost::json::parse(check.body).at("id").as_int64();
  EXPECT_EQ(check.header("Location"), "/api/v1/jobs/" + std::to_string(check_id));

  // A reconnecting event stream resumes after the Last-Event-ID it sends.
  auto events = job_json(*env_, id).at("events").as_array();
  ASSERT_GE(events.size(), 2u);
  auto first_id = events.at(0).at("id").as_int64();
  auto resumed = http(port_, "GET", "/api/v1/jobs/" + std::to_string(id) + "/events",
                      {op, "Last-Event-ID: " + std::to_string(first_id)});
  ASSERT_EQ(resumed.status, 200) << resumed.body;
  EXPECT_FALSE(contains(resumed.body, "id: " + std::to_string(first_id) + "\n"))
      << resumed.body;
  EXPECT_TRUE(contains(resumed.body,
                       "id: " + std::to_string(events.at(1).at("id").as_int64()) + "\n"))
      << resumed.body;
  EXPECT_TRUE(contains(resumed.body, "event: end\n")) << resumed.body;
}
