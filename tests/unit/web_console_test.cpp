// The console's routes without sockets: what a browser and an API client
// get for each request (the integration test covers the real server).
#include "edge_host.hpp"
#include "openapi_check.hpp"

#include "satoru/files.hpp"
#include "satoru/identity.hpp"
#include "satoru/store.hpp"
#include "satoru/web/console.hpp"
#include "satoru/web/password.hpp"
#include "satoru/web/users_file.hpp"

#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <gtest/gtest.h>
#include <sqlite3.h>

namespace {

using namespace satoru::web;
namespace http = boost::beast::http;
using satoru::testing::temp_dir;

class WebConsoleRoutes : public ::testing::Test {
protected:
  WebConsoleRoutes() {
    auto cfg = std::make_shared<satoru::config>();
    cfg->web_users_file = dir_ / "users.json";
    cfg->database_path = dir_ / "no-database-yet.db";
    satoru::site_config site;
    site.name = "<b>berlin</b>";
    site.uuid = "0b0e7f8e-0000-5000-8000-000000000001";
    cfg->sites.push_back(site);
    cfg->web_tokens_file = dir_ / "tokens.json";
    put_user(cfg->web_users_file,
             {"ana", role::operator_, *hash_password("right password", {10, 8, 1})});
    put_user(cfg->web_users_file,
             {"vic", role::viewer, *hash_password("right password", {10, 8, 1})});
    cfg_ = cfg;
    console_options options;
    options.logins.max_failures = 2;
    routes_ = std::make_unique<console>(cfg, options);
  }

  http_response
  send(http::verb method, const std::string& target, const std::string& body = "",
       const std::string& cookie = "", const std::string& origin = "",
       const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    http_request req{method, target, 11};
    req.set(http::field::host, "127.0.0.1:9465");
    if (!cookie.empty()) req.set(http::field::cookie, cookie);
    if (!origin.empty()) req.set(http::field::origin, origin);
    for (const auto& [name, value] : headers)
      req.set(name, value);
    if (!body.empty()) {
      if (req.count(http::field::content_type) == 0)
        req.set(http::field::content_type, "application/x-www-form-urlencoded");
      req.body() = body;
      req.prepare_payload();
    }
    return routes_->handle(req, "192.0.2.7", now_);
  }

  /// "satoru_session=<id>" from a successful login.
  std::string log_in(const std::string& user = "ana") {
    auto res =
        send(http::verb::post, "/login", "user=" + user + "&password=right+password");
    EXPECT_EQ(res.result(), http::status::see_other);
    std::string set_cookie(res[http::field::set_cookie]);
    return set_cookie.substr(0, set_cookie.find(';'));
  }

  /// The session's CSRF token, as a script of the console reads it.
  std::string csrf_of(const std::string& cookie) {
    auto res = send(http::verb::get, "/api/v1/session", "", cookie);
    EXPECT_EQ(res.result(), http::status::ok) << res.body();
    return std::string(boost::json::parse(res.body()).at("csrf_token").as_string());
  }

  /// POST /api/v1/sites/SITE/jobs with a JSON body.
  http_response post_job(const std::string& site, const std::string& body,
                         const std::string& cookie,
                         std::vector<std::pair<std::string, std::string>> headers,
                         const std::string& origin = "") {
    headers.emplace_back("Content-Type", "application/json");
    return send(http::verb::post, "/api/v1/sites/" + site + "/jobs", body, cookie, origin,
                headers);
  }

  std::shared_ptr<satoru::config> cfg_;

  temp_dir dir_;
  std::unique_ptr<console> routes_;
  std::int64_t now_ = 1'800'000'000'000;
};

TEST_F(WebConsoleRoutes, OnlyHealthzAndLoginAnswerWithoutASession) {
  auto health = send(http::verb::get, "/healthz");
  EXPECT_EQ(health.result(), http::status::ok);
  EXPECT_EQ(health.body(), "ok\n");
  EXPECT_EQ(send(http::verb::get, "/login").result(), http::status::ok);
  auto page = send(http::verb::get, "/");
  EXPECT_EQ(page.result(), http::status::see_other);
  EXPECT_EQ(page[http::field::location], "/login");
  auto api = send(http::verb::get, "/?format=json");
  EXPECT_EQ(api.result(), http::status::unauthorized);
  EXPECT_EQ(boost::json::parse(api.body()).at("error"), "log in first");
  EXPECT_EQ(send(http::verb::get, "/anything").result(), http::status::see_other);
  EXPECT_EQ(
      send(http::verb::get, "/", "", "satoru_session=" + std::string(64, 'a')).result(),
      http::status::see_other);
}

TEST_F(WebConsoleRoutes, LoginSetsAStrictHttpOnlyCookieThatOpensTheFleet) {
  auto res = send(http::verb::post, "/login", "user=ana&password=right+password");
  ASSERT_EQ(res.result(), http::status::see_other);
  EXPECT_EQ(res[http::field::location], "/");
  std::string set_cookie(res[http::field::set_cookie]);
  EXPECT_NE(set_cookie.find("; HttpOnly"), std::string::npos) << set_cookie;
  EXPECT_NE(set_cookie.find("; SameSite=Strict"), std::string::npos) << set_cookie;
  EXPECT_NE(set_cookie.find("; Path=/"), std::string::npos) << set_cookie;
  EXPECT_EQ(set_cookie.find("Secure"), std::string::npos) << "no TLS, no Secure";
  std::string cookie = set_cookie.substr(0, set_cookie.find(';'));

  auto fleet = send(http::verb::get, "/", "", cookie);
  ASSERT_EQ(fleet.result(), http::status::ok);
  // Names are escaped; no scripts, no CDN.
  EXPECT_NE(fleet.body().find("&lt;b&gt;berlin&lt;/b&gt;"), std::string::npos);
  EXPECT_EQ(fleet.body().find("<b>berlin"), std::string::npos);
  EXPECT_EQ(fleet.body().find("<script"), std::string::npos);
  EXPECT_EQ(fleet.body().find("http"), std::string::npos);
  auto json =
      boost::json::parse(send(http::verb::get, "/?format=json", "", cookie).body());
  EXPECT_EQ(json.at("sites").at(0).at("name"), "<b>berlin</b>");
  EXPECT_EQ(json.at("sites").at(0).at("health"), "unknown");
  EXPECT_EQ(json.at("counts").at("unknown"), 1);

  // Logging out ends the session on the server, not only in the browser;
  // the log-out form carries the session's CSRF token.
  std::string csrf = csrf_of(cookie);
  EXPECT_NE(fleet.body().find("name=\"csrf\" value=\"" + csrf + "\""), std::string::npos);
  EXPECT_EQ(send(http::verb::post, "/logout", "csrf=wrong", cookie).result(),
            http::status::forbidden);
  auto out = send(http::verb::post, "/logout", "csrf=" + csrf, cookie);
  EXPECT_EQ(out.result(), http::status::see_other);
  EXPECT_NE(std::string(out[http::field::set_cookie]).find("Max-Age=0"),
            std::string::npos);
  EXPECT_EQ(send(http::verb::get, "/", "", cookie).result(), http::status::see_other);
}

TEST_F(WebConsoleRoutes, SessionsEndAfterIdling) {
  std::string cookie = log_in();
  now_ += 29 * 60 * 1000;
  EXPECT_EQ(send(http::verb::get, "/", "", cookie).result(), http::status::ok);
  now_ += 30 * 60 * 1000;
  EXPECT_EQ(send(http::verb::get, "/", "", cookie).result(), http::status::see_other);
}

TEST_F(WebConsoleRoutes, WrongPasswordsAreRefusedThenRateLimited) {
  auto wrong = send(http::verb::post, "/login", "user=ana&password=wrong");
  EXPECT_EQ(wrong.result(), http::status::unauthorized);
  EXPECT_EQ(wrong.count(http::field::set_cookie), 0u);
  EXPECT_EQ(send(http::verb::post, "/login", "user=ana&password=wrong+again").result(),
            http::status::unauthorized);
  EXPECT_EQ(
      send(http::verb::post, "/login", "user=nobody&password=right+password").result(),
      http::status::unauthorized);
  // max_failures = 2 for ana from this address: now even the right password waits.
  auto limited = send(http::verb::post, "/login", "user=ana&password=right+password");
  EXPECT_EQ(limited.result(), http::status::too_many_requests);
  EXPECT_EQ(limited[http::field::retry_after], "900");
  // Others behind the same address (a proxy) are not locked out with ana.
  EXPECT_EQ(send(http::verb::post, "/login", "user=vic&password=right+password").result(),
            http::status::see_other);
  now_ += 15 * 60 * 1000;
  EXPECT_EQ(send(http::verb::post, "/login", "user=ana&password=right+password").result(),
            http::status::see_other);
}

TEST_F(WebConsoleRoutes, AValidTokenIsNeverRefusedForOthersFailuresFromItsAddress) {
  auto token = *new_token();
  ASSERT_TRUE(put_credential(credential_kind::token, cfg_->web_tokens_file,
                             {"ci", role::operator_, sha256_hex(token)}));
  for (int i = 0; i < 6; ++i) {
    send(http::verb::post, "/login", "user=ana&password=wrong");
    send(http::verb::get, "/api/v1/session", "", "", "",
         {{"Authorization", "Bearer satoru_" + std::string(64, '0')}});
  }
  EXPECT_EQ(send(http::verb::get, "/api/v1/session", "", "", "",
                 {{"Authorization", "Bearer satoru_" + std::string(64, '0')}})
                .result(),
            http::status::too_many_requests);
  auto valid = send(http::verb::get, "/api/v1/session", "", "", "",
                    {{"Authorization", "Bearer " + token}});
  ASSERT_EQ(valid.result(), http::status::ok) << valid.body();
  EXPECT_EQ(boost::json::parse(valid.body()).at("name"), "ci");
}

TEST_F(WebConsoleRoutes, ANewPasswordOrRoleOrRemovingTheUserEndsTheirSessions) {
  auto session = [&](const std::string& cookie) {
    return send(http::verb::get, "/api/v1/session", "", cookie).result();
  };
  auto ana = log_in("ana"), vic = log_in("vic");
  ASSERT_EQ(session(ana), http::status::ok);
  // The same entry written again (web-user add with the same password
  // gives a new salt: a new hash) ends ana's session, not vic's.
  ASSERT_TRUE(
      put_user(cfg_->web_users_file,
               {"ana", role::operator_, *hash_password("new password", {10, 8, 1})}));
  EXPECT_EQ(session(ana), http::status::unauthorized);
  EXPECT_EQ(session(vic), http::status::ok);
  auto ana_again = send(http::verb::post, "/login", "user=ana&password=new+password");
  ASSERT_EQ(ana_again.result(), http::status::see_other);
  std::string set_cookie(ana_again[http::field::set_cookie]);
  ana = set_cookie.substr(0, set_cookie.find(';'));
  EXPECT_EQ(session(ana), http::status::ok);

  // A new role: vic's viewer session does not become an operator's.
  auto entry = satoru::web::load_users(cfg_->web_users_file, true);
  ASSERT_TRUE(entry);
  for (auto u : *entry)
    if (u.name == "vic") {
      u.role = role::operator_;
      ASSERT_TRUE(put_user(cfg_->web_users_file, u));
    }
  EXPECT_EQ(session(vic), http::status::unauthorized);

  ASSERT_TRUE(remove_credential(credential_kind::user, cfg_->web_users_file, "ana"));
  EXPECT_EQ(session(ana), http::status::unauthorized);
}

TEST_F(WebConsoleRoutes, OtherHostNamesGet421) {
  auto with_host = [&](const std::string& host, const std::string& target = "/healthz") {
    http_request req{http::verb::get, target, 11};
    req.set(http::field::host, host);
    return routes_->respond_to(req, "192.0.2.7", now_).response.result();
  };
  cfg_->web_listen = "127.0.0.1:9465";
  cfg_->web_allowed_hosts = {"backup.example.com"};
  routes_->set_config(cfg_);
  for (std::string ok :
       {"127.0.0.1:9465", "127.0.0.1", "localhost:9465", "localhost", "LOCALHOST",
        "[::1]:9465", "192.0.2.10:9465", "backup.example.com", "Backup.Example.COM:443"})
    EXPECT_EQ(with_host(ok), http::status::ok) << ok;
  // A name resolving to the console (DNS rebinding) is not one of its names.
  for (std::string other : {"evil.example:9465", "evil.example", "localhost.evil.example",
                            "backup.example.com.evil.example"}) {
    EXPECT_EQ(with_host(other), http::status::misdirected_request) << other;
    EXPECT_EQ(with_host(other, "/api/v1/jobs/1/events"),
              http::status::misdirected_request)
        << other;
  }
  cfg_->web_listen = "console.internal:9465";
  routes_->set_config(cfg_);
  EXPECT_EQ(with_host("console.internal:9465"), http::status::ok);
  EXPECT_TRUE(host_allowed("console.internal", *cfg_));
  EXPECT_FALSE(host_allowed("console.internal.evil", *cfg_));
}

TEST_F(WebConsoleRoutes, PostsFromAnotherSiteAreRefused) {
  EXPECT_EQ(send(http::verb::post, "/login", "user=ana&password=right+password", "",
                 "http://evil.example")
                .result(),
            http::status::forbidden);
  EXPECT_EQ(send(http::verb::post, "/login", "user=ana&password=right+password", "",
                 "http://127.0.0.1:9465")
                .result(),
            http::status::see_other);
}

/// A site the database knows (as the daemon writes it at start), for
/// requests that queue jobs.
class WebConsoleActions : public WebConsoleRoutes {
protected:
  WebConsoleActions() {
    cfg_->sites[0].name = "berlin";
    // A hostile target path: pages must show it as text.
    satoru::target_config target;
    target.mode = "directory";
    target.path = "/srv/<script>alert(\"x\")</script>'";
    target.hash = "0123456789abcdef";
    cfg_->sites[0].targets.push_back(target);
    auto db = satoru::store::open(cfg_->database_path);
    EXPECT_TRUE(db && db->sync_config(cfg_->sites));
  }

  /// The jobs in the database, as "type status" lines.
  std::vector<std::string> jobs() {
    auto db = satoru::store::open_read_only(cfg_->database_path);
    auto rows = db->list_jobs({});
    std::vector<std::string> out;
    for (const auto& j : *rows)
      out.push_back(std::string(to_string(j.type)) + " " + to_string(j.status));
    return out;
  }
};

TEST_F(WebConsoleActions, QueuingAJobNeedsAnOperatorTheCsrfTokenAndTheSameOrigin) {
  const std::string backup = R"({"type": "backup"})";
  auto anonymous = post_job("berlin", backup, "", {});
  EXPECT_EQ(anonymous.result(), http::status::unauthorized);
  EXPECT_EQ(boost::json::parse(anonymous.body()).at("error"), "log in first");

  std::string viewer = log_in("vic");
  auto looked = post_job("berlin", backup, viewer, {{"X-CSRF-Token", csrf_of(viewer)}});
  EXPECT_EQ(looked.result(), http::status::forbidden);
  EXPECT_NE(looked.body().find("only operators"), std::string::npos) << looked.body();

  std::string op = log_in("ana");
  std::string csrf = csrf_of(op);
  EXPECT_EQ(post_job("berlin", backup, op, {}).result(), http::status::forbidden);
  EXPECT_EQ(post_job("berlin", backup, op, {{"X-CSRF-Token", csrf_of(viewer)}}).result(),
            http::status::forbidden);
  EXPECT_EQ(
      post_job("berlin", backup, op, {{"X-CSRF-Token", csrf}}, "http://evil.example")
          .result(),
      http::status::forbidden);
  EXPECT_TRUE(jobs().empty()) << "nothing refused was queued";

  auto bad = post_job("berlin", R"({"type": "restore"})", op, {{"X-CSRF-Token", csrf}});
  EXPECT_EQ(bad.result(), http::status::bad_request);
  EXPECT_EQ(boost::json::parse(bad.body()).at("error"),
            "request body: /type: must be \"backup\" or \"preflight\"");
  EXPECT_EQ(post_job("nowhere", backup, op, {{"X-CSRF-Token", csrf}}).result(),
            http::status::not_found);

  auto queued =
      post_job("berlin", backup, op, {{"X-CSRF-Token", csrf}}, "http://127.0.0.1:9465");
  ASSERT_EQ(queued.result(), http::status::accepted) << queued.body();
  auto json = boost::json::parse(queued.body());
  EXPECT_EQ(json.at("site"), "berlin");
  EXPECT_EQ(json.at("type"), "backup");
  EXPECT_EQ(queued[http::field::location],
            "/api/v1/jobs/" + std::to_string(json.at("id").as_int64()));
  EXPECT_EQ(jobs(), std::vector<std::string>{"backup queued"});

  // Viewers read what the CLI's --json prints.
  auto get = [&](const std::string& target) {
    return send(http::verb::get, target, "", viewer);
  };
  auto sites = boost::json::parse(get("/api/v1/sites").body());
  EXPECT_EQ(sites.at(0).at("name"), "berlin");
  EXPECT_EQ(boost::json::parse(get("/api/v1/sites/berlin").body()).at("uuid"),
            sites.at(0).at("uuid"));
  EXPECT_EQ(get("/api/v1/sites/nowhere").result(), http::status::not_found);
  auto listed = boost::json::parse(get("/api/v1/jobs?site=berlin&limit=5").body());
  EXPECT_EQ(listed.at(0).at("id"), json.at("id"));
  EXPECT_EQ(get("/api/v1/jobs?limit=0").result(), http::status::bad_request);
  EXPECT_EQ(get("/api/v1/jobs?site=nowhere").result(), http::status::not_found);
  auto job = boost::json::parse(
      get("/api/v1/jobs/" + std::to_string(json.at("id").as_int64())).body());
  EXPECT_EQ(job.at("status"), "queued");
  EXPECT_TRUE(job.at("events").is_array());
  EXPECT_EQ(get("/api/v1/jobs/999").result(), http::status::not_found);
  EXPECT_EQ(get("/api/v1/nothing").result(), http::status::not_found);

  // `satoru web-user remove` ends the user's sessions at once.
  ASSERT_TRUE(remove_credential(credential_kind::user, cfg_->web_users_file, "vic"));
  EXPECT_EQ(send(http::verb::get, "/api/v1/session", "", viewer).result(),
            http::status::unauthorized);
}

TEST_F(WebConsoleActions, BearerTokensActWithTheirRoleAndNeedNoCsrfToken) {
  auto op_token = *new_token();
  auto viewer_token = *new_token();
  ASSERT_TRUE(put_credential(credential_kind::token, cfg_->web_tokens_file,
                             {"ci", role::operator_, sha256_hex(op_token)}));
  ASSERT_TRUE(put_credential(credential_kind::token, cfg_->web_tokens_file,
                             {"grafana", role::viewer, sha256_hex(viewer_token)}));
  auto stored = satoru::read_whole_file(cfg_->web_tokens_file);
  EXPECT_EQ(stored->find(op_token), std::string::npos) << "only the hash is stored";

  auto session = send(http::verb::get, "/api/v1/session", "", "", "",
                      {{"Authorization", "Bearer " + viewer_token}});
  ASSERT_EQ(session.result(), http::status::ok);
  EXPECT_EQ(boost::json::parse(session.body()).at("name"), "grafana");
  EXPECT_EQ(post_job("berlin", R"({"type": "preflight"})", "",
                     {{"Authorization", "Bearer " + viewer_token}})
                .result(),
            http::status::forbidden);
  auto queued = post_job("berlin", R"({"type": "preflight"})", "",
                         {{"Authorization", "Bearer " + op_token}});
  EXPECT_EQ(queued.result(), http::status::accepted) << queued.body();
  EXPECT_EQ(jobs(), std::vector<std::string>{"preflight queued"});

  auto unknown = send(http::verb::get, "/api/v1/session", "", "", "",
                      {{"Authorization", "Bearer satoru_" + std::string(64, '0')}});
  EXPECT_EQ(unknown.result(), http::status::unauthorized);
  EXPECT_EQ(unknown[http::field::www_authenticate], "Bearer");
  // Tokens are for the API; the pages want a session.
  EXPECT_EQ(
      send(http::verb::get, "/", "", "", "", {{"Authorization", "Bearer " + op_token}})
          .result(),
      http::status::see_other);
  ASSERT_TRUE(remove_credential(credential_kind::token, cfg_->web_tokens_file, "ci"));
  EXPECT_EQ(send(http::verb::get, "/api/v1/session", "", "", "",
                 {{"Authorization", "Bearer " + op_token}})
                .result(),
            http::status::unauthorized);
}

TEST_F(WebConsoleActions, TheSitePageQueuesJobsForOperatorsAndOpensTheLiveJobPage) {
  std::string viewer = log_in("vic");
  auto looked = send(http::verb::get, "/sites/berlin", "", viewer);
  ASSERT_EQ(looked.result(), http::status::ok) << looked.body();
  EXPECT_EQ(looked.body().find("Back up now"), std::string::npos) << "viewers only look";
  // The hostile path is text, never markup.
  EXPECT_NE(looked.body().find("/srv/&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"),
            std::string::npos)
      << looked.body();
  EXPECT_EQ(looked.body().find("<script>alert"), std::string::npos);
  EXPECT_EQ(boost::json::parse(
                send(http::verb::get, "/sites/berlin?format=json", "", viewer).body())
                .at("targets")
                .at(0)
                .at("path"),
            "/srv/<script>alert(\"x\")</script>'");
  EXPECT_EQ(send(http::verb::get, "/sites/nowhere", "", viewer).result(),
            http::status::not_found);

  std::string op = log_in("ana");
  std::string csrf = csrf_of(op);
  auto page = send(http::verb::get, "/sites/berlin", "", op);
  EXPECT_NE(page.body().find("Back up now"), std::string::npos);
  EXPECT_NE(page.body().find("name=\"csrf\" value=\"" + csrf + "\""), std::string::npos);
  EXPECT_EQ(send(http::verb::post, "/sites/berlin/jobs", "type=backup", op).result(),
            http::status::forbidden);
  EXPECT_EQ(
      send(http::verb::post, "/sites/berlin/jobs", "type=backup&csrf=" + csrf, viewer)
          .result(),
      http::status::forbidden);
  auto queued =
      send(http::verb::post, "/sites/berlin/jobs", "type=backup&csrf=" + csrf, op);
  ASSERT_EQ(queued.result(), http::status::see_other) << queued.body();
  std::string job_page(queued[http::field::location]);
  EXPECT_EQ(job_page.rfind("/jobs/", 0), 0u) << job_page;
  EXPECT_EQ(jobs(), std::vector<std::string>{"backup queued"});

  // The job page follows the job live with the console's own script.
  auto job = send(http::verb::get, job_page, "", viewer);
  ASSERT_EQ(job.result(), http::status::ok) << job.body();
  EXPECT_NE(job.body().find("<script src=\"/assets/job.js\"></script>"),
            std::string::npos);
  EXPECT_NE(job.body().find("data-live=\"1\""), std::string::npos);
  EXPECT_NE(job.body().find(">queued</span>"), std::string::npos) << job.body();
  EXPECT_EQ(boost::json::parse(
                send(http::verb::get, job_page + "?format=json", "", viewer).body())
                .at("type"),
            "backup");
  auto script = send(http::verb::get, "/assets/job.js", "", viewer);
  EXPECT_EQ(script[http::field::content_type], "text/javascript; charset=utf-8");
  EXPECT_NE(script.body().find("new EventSource("), std::string::npos);
  EXPECT_NE(std::string(script["Content-Security-Policy"]).find("script-src 'self'"),
            std::string::npos);
}

/// Three sites the database knows: berlin failed with its last success 3
/// days ago (stale: more than twice the 24 h interval), Hamburg ok an hour
/// ago, and "Lager Köln" that never ran (unknown).
class WebConsoleFleet : public WebConsoleActions {
protected:
  WebConsoleFleet() {
    for (const char* name : {"Hamburg", "Lager Köln"}) {
      satoru::site_config site;
      site.name = name;
      site.uuid = satoru::derive_site_uuid(name);
      cfg_->sites.push_back(site);
    }
    cfg_->site_scan_interval_hours = 24;
    auto db = satoru::store::open(cfg_->database_path);
    EXPECT_TRUE(db && db->sync_config(cfg_->sites));
    const std::int64_t hour = 3600 * 1000;
    std::string sql = "UPDATE sites SET health = 'failed', health_reason = 'connect "
                      "refused', last_success_at = " +
                      std::to_string(now_ - 72 * hour) +
                      " WHERE name = 'berlin'; UPDATE sites SET health = 'ok', "
                      "last_success_at = " +
                      std::to_string(now_ - hour) + " WHERE name = 'Hamburg';";
    EXPECT_EQ(sqlite3_exec(db->handle(), sql.c_str(), nullptr, nullptr, nullptr),
              SQLITE_OK);
  }

  /// The names of the fleet JSON's sites for `query`, in order.
  std::vector<std::string> names(const std::string& query, const std::string& cookie) {
    auto res = send(http::verb::get, "/?format=json&" + query, "", cookie);
    EXPECT_EQ(res.result(), http::status::ok) << query << ": " << res.body();
    std::vector<std::string> out;
    auto fleet = boost::json::parse(res.body());
    for (const auto& site : fleet.at("sites").as_array())
      out.emplace_back(site.at("name").as_string());
    return out;
  }
};

TEST_F(WebConsoleFleet, SortsFiltersSearchesAndMarksStaleSitesByTheAlertsRule) {
  std::string viewer = log_in("vic");
  auto all =
      boost::json::parse(send(http::verb::get, "/?format=json", "", viewer).body());
  EXPECT_EQ(all.at("counts").at("failed"), 1);
  EXPECT_EQ(all.at("counts").at("ok"), 1);
  EXPECT_EQ(all.at("counts").at("unknown"), 1);
  EXPECT_EQ(all.at("stale"), 1);
  EXPECT_EQ(all.at("sites").at(0).at("name"), "berlin") << "in config order";
  EXPECT_EQ(all.at("sites").at(0).at("stale"), true) << all;
  EXPECT_EQ(all.at("sites").at(0).at("last_success_age_seconds"), 72 * 3600) << all;
  EXPECT_EQ(all.at("sites").at(1).at("stale"), false);
  EXPECT_TRUE(all.at("sites").at(2).at("last_success_age_seconds").is_null());

  using names_t = std::vector<std::string>;
  EXPECT_EQ(names("sort=health", viewer), (names_t{"berlin", "Lager Köln", "Hamburg"}));
  EXPECT_EQ(names("sort=staleness&order=desc", viewer),
            (names_t{"Lager Köln", "berlin", "Hamburg"}));
  EXPECT_EQ(names("sort=last_success&order=desc", viewer),
            (names_t{"Hamburg", "berlin", "Lager Köln"}));
  EXPECT_EQ(names("sort=name&order=desc", viewer),
            (names_t{"Lager Köln", "Hamburg", "berlin"}));
  EXPECT_EQ(names("health=failed", viewer), (names_t{"berlin"}));
  EXPECT_EQ(names("q=AMB", viewer), (names_t{"Hamburg"}));
  EXPECT_EQ(names("q=k%C3%B6ln", viewer), (names_t{"Lager Köln"}));
  EXPECT_EQ(names("health=ok&q=berlin", viewer), names_t{});

  // The API narrows and orders `satoru sites --json`'s array the same way.
  auto api = send(http::verb::get, "/api/v1/sites?sort=health&health=failed", "", viewer);
  ASSERT_EQ(api.result(), http::status::ok) << api.body();
  auto api_sites = boost::json::parse(api.body()).as_array();
  ASSERT_EQ(api_sites.size(), 1u);
  EXPECT_EQ(api_sites.at(0).at("name"), "berlin");
  EXPECT_TRUE(api_sites.at(0).as_object().contains("targets"));

  for (const char* bad : {"sort=size", "order=up", "health=green"}) {
    auto page = send(http::verb::get, std::string("/?") + bad, "", viewer);
    EXPECT_EQ(page.result(), http::status::bad_request) << bad;
    auto json = send(http::verb::get, std::string("/api/v1/sites?") + bad, "", viewer);
    EXPECT_EQ(json.result(), http::status::bad_request) << bad;
    auto param = std::string(bad).substr(0, std::string(bad).find('='));
    EXPECT_EQ(
        boost::json::parse(json.body()).at("error").as_string().find("?" + param + ":"),
        0u)
        << json.body();
  }

  // The page: counts that link to their filter and sortable columns keep
  // the other parameters; names are escaped.
  auto page = send(http::verb::get, "/?sort=health&q=r", "", viewer);
  ASSERT_EQ(page.result(), http::status::ok);
  const auto& html = page.body();
  EXPECT_NE(html.find("href=\"/?sort=health&amp;health=failed&amp;q=r\""),
            std::string::npos)
      << html;
  EXPECT_NE(html.find("href=\"/?sort=health&amp;order=desc&amp;q=r\""), std::string::npos)
      << "a second click reverses the order";
  EXPECT_NE(html.find("href=\"/?sort=staleness&amp;q=r\""), std::string::npos);
  EXPECT_NE(html.find("class=\"stale\">stale</td>"), std::string::npos) << html;
  EXPECT_NE(html.find("href=\"/repository\""), std::string::npos);
  EXPECT_NE(html.find("name=\"q\" placeholder=\"site name\" value=\"r\""),
            std::string::npos);
  EXPECT_NE(html.find("3 of 3 sites"), std::string::npos) << "every name has an r";
}

TEST_F(WebConsoleActions, RepositoryJobsNeedAnOperatorAndAnOffsiteRepositoryToSync) {
  auto post = [&](const std::string& body, const std::string& cookie,
                  std::vector<std::pair<std::string, std::string>> headers) {
    headers.emplace_back("Content-Type", "application/json");
    return send(http::verb::post, "/api/v1/repository/jobs", body, cookie, "", headers);
  };
  std::string viewer = log_in("vic");
  EXPECT_EQ(
      post(R"({"type": "prune"})", viewer, {{"X-CSRF-Token", csrf_of(viewer)}}).result(),
      http::status::forbidden);
  std::string op = log_in("ana");
  std::string csrf = csrf_of(op);
  EXPECT_EQ(post(R"({"type": "prune"})", op, {}).result(), http::status::forbidden)
      << "no CSRF token";
  auto bad = post(R"({"type": "backup"})", op, {{"X-CSRF-Token", csrf}});
  EXPECT_EQ(bad.result(), http::status::bad_request);
  EXPECT_EQ(boost::json::parse(bad.body()).at("error"),
            "request body: /type: must be \"sync\", \"prune\" or \"check\"");
  auto sync = post(R"({"type": "sync"})", op, {{"X-CSRF-Token", csrf}});
  EXPECT_EQ(sync.result(), http::status::conflict);
  EXPECT_NE(boost::json::parse(sync.body())
                .at("error")
                .as_string()
                .find("/restic_b2_repository: not set; there is no off-site repository"),
            std::string::npos)
      << sync.body();
  EXPECT_TRUE(jobs().empty()) << "nothing refused was queued";

  // The page's button: the same job `satoru prune` queues, then its page.
  auto viewer_page = send(http::verb::get, "/repository", "", viewer);
  ASSERT_EQ(viewer_page.result(), http::status::ok) << viewer_page.body();
  EXPECT_EQ(viewer_page.body().find("Prune now"), std::string::npos)
      << "viewers only look";
  auto page = send(http::verb::get, "/repository", "", op);
  EXPECT_NE(page.body().find("Prune now"), std::string::npos) << page.body();
  EXPECT_EQ(page.body().find("Sync now"), std::string::npos) << "no off-site repository";
  EXPECT_NE(page.body().find("No off-site repository"), std::string::npos);
  auto queued = send(http::verb::post, "/repository/jobs", "type=prune&csrf=" + csrf, op);
  ASSERT_EQ(queued.result(), http::status::see_other) << queued.body();
  EXPECT_EQ(std::string(queued[http::field::location]).rfind("/jobs/", 0), 0u);
  EXPECT_EQ(jobs(), std::vector<std::string>{"retention queued"});
  auto repo =
      boost::json::parse(send(http::verb::get, "/api/v1/repository", "", viewer).body());
  EXPECT_EQ(repo.at("last_retention").at("status"), "queued") << repo;
  EXPECT_TRUE(repo.at("last_check").is_null());
  EXPECT_EQ(repo.at("offsite").at("repository"), "");
}

} // namespace

TEST_F(WebConsoleActions, OperatorsCancelAJobFromItsPageOrTheApi) {
  auto db = satoru::store::open(cfg_->database_path);
  const auto site = (**db->find_site("berlin")).id;
  auto first = db->enqueue(satoru::job_type::backup, site)->id;
  const std::string page = "/jobs/" + std::to_string(first);

  std::string viewer = log_in("vic");
  EXPECT_EQ(send(http::verb::get, page, "", viewer).body().find("Cancel this job"),
            std::string::npos)
      << "viewers only look";
  EXPECT_EQ(send(http::verb::post, page + "/cancel", "csrf=" + csrf_of(viewer), viewer)
                .result(),
            http::status::forbidden);
  std::string op = log_in("ana");
  std::string csrf = csrf_of(op);
  auto shown = send(http::verb::get, page, "", op);
  EXPECT_NE(shown.body().find("action=\"" + page + "/cancel\""), std::string::npos)
      << shown.body();
  EXPECT_NE(shown.body().find("name=\"csrf\" value=\"" + csrf + "\""), std::string::npos);
  EXPECT_EQ(send(http::verb::post, page + "/cancel", "", op).result(),
            http::status::forbidden)
      << "no CSRF token, no cancel";
  EXPECT_EQ(jobs(), std::vector<std::string>{"backup queued"});
  auto done = send(http::verb::post, page + "/cancel", "csrf=" + csrf, op);
  EXPECT_EQ(done.result(), http::status::see_other) << done.body();
  EXPECT_EQ(done[http::field::location], page);
  EXPECT_EQ(jobs(), std::vector<std::string>{"backup cancelled"});
  EXPECT_EQ(send(http::verb::get, page, "", op).body().find("Cancel this job"),
            std::string::npos)
      << "an ended job has no button";

  // The API: an operator's token, no CSRF token; an ended job is a conflict.
  auto token = *new_token();
  ASSERT_TRUE(put_credential(credential_kind::token, cfg_->web_tokens_file,
                             {"ci", role::operator_, sha256_hex(token)}));
  auto second = db->enqueue(satoru::job_type::preflight, site)->id;
  const std::string api = "/api/v1/jobs/" + std::to_string(second) + "/cancel";
  auto bearer = std::vector<std::pair<std::string, std::string>>{
      {"Authorization", "Bearer " + token}};
  // Each answer is the one docs/openapi.json describes.
  const auto doc = satoru::testing::openapi_document();
  auto documented = [&](const http_response& res) {
    auto schema = satoru::testing::response_schema(
        doc, "/api/v1/jobs/{id}/cancel", "post", static_cast<int>(res.result_int()));
    EXPECT_TRUE(
        satoru::testing::schema_problems(boost::json::parse(res.body()), schema, doc)
            .empty())
        << res.body();
  };
  auto cancelled = send(http::verb::post, api, "", "", "", bearer);
  ASSERT_EQ(cancelled.result(), http::status::accepted) << cancelled.body();
  documented(cancelled);
  EXPECT_EQ(
      boost::json::parse(cancelled.body()),
      boost::json::parse("{\"id\": " + std::to_string(second) +
                         ", \"status\": \"cancelled\", \"cancel_requested\": true}"));
  auto ended = send(http::verb::post, api, "", "", "", bearer);
  EXPECT_EQ(ended.result(), http::status::conflict);
  documented(ended);
  auto missing = send(http::verb::post, "/api/v1/jobs/999/cancel", "", "", "", bearer);
  EXPECT_EQ(missing.result(), http::status::not_found);
  documented(missing);
  auto viewer_api = send(http::verb::post, api, "", viewer, "", {});
  EXPECT_EQ(viewer_api.result(), http::status::forbidden);
  documented(viewer_api);
  EXPECT_EQ(send(http::verb::get, api, "", "", "", bearer).result(),
            http::status::method_not_allowed);
}
