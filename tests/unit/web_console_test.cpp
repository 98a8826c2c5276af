// The console's routes without sockets: what a browser and an API client
// get for each request (the integration test covers the real server).
#include "edge_host.hpp"

#include "satoru/web/console.hpp"
#include "satoru/web/password.hpp"
#include "satoru/web/users_file.hpp"

#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <gtest/gtest.h>

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
    put_user(cfg->web_users_file,
             {"ana", role::operator_, *hash_password("right password", {10, 8, 1})});
    console_options options;
    options.logins.max_failures = 2;
    routes_ = std::make_unique<console>(cfg, options);
  }

  http_response send(http::verb method, const std::string& target,
                     const std::string& body = "", const std::string& cookie = "",
                     const std::string& origin = "") {
    http_request req{method, target, 11};
    req.set(http::field::host, "127.0.0.1:9465");
    if (!cookie.empty()) req.set(http::field::cookie, cookie);
    if (!origin.empty()) req.set(http::field::origin, origin);
    if (!body.empty()) {
      req.set(http::field::content_type, "application/x-www-form-urlencoded");
      req.body() = body;
      req.prepare_payload();
    }
    return routes_->handle(req, "192.0.2.7", now_);
  }

  /// "satoru_session=<id>" from a successful login.
  std::string log_in() {
    auto res = send(http::verb::post, "/login", "user=ana&password=right+password");
    EXPECT_EQ(res.result(), http::status::see_other);
    std::string set_cookie(res[http::field::set_cookie]);
    return set_cookie.substr(0, set_cookie.find(';'));
  }

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

  // Logging out ends the session on the server, not only in the browser.
  auto out = send(http::verb::post, "/logout", "", cookie);
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
  EXPECT_EQ(
      send(http::verb::post, "/login", "user=nobody&password=right+password").result(),
      http::status::unauthorized);
  // max_failures = 2: now even the right password waits.
  auto limited = send(http::verb::post, "/login", "user=ana&password=right+password");
  EXPECT_EQ(limited.result(), http::status::too_many_requests);
  EXPECT_EQ(limited[http::field::retry_after], "900");
  now_ += 15 * 60 * 1000;
  EXPECT_EQ(send(http::verb::post, "/login", "user=ana&password=right+password").result(),
            http::status::see_other);
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

} // namespace
