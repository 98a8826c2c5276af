// The web console served by a real daemon: a user made with
// `satoru web-user add` (password on stdin) logs in over HTTP and reads the
// fleet after a real backup; check-config refuses a console reachable
// beyond loopback without TLS.
#include "satoru_env.hpp"

#include "satoru/process.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

using namespace satoru::testing;
using namespace std::chrono_literals;

namespace {

struct http_reply {
  int status = 0;
  std::string head; ///< status line and headers
  std::string body;
  std::string header(const std::string& name) const {
    auto at = head.find("\r\n" + name + ": ");
    if (at == std::string::npos) return {};
    at += name.size() + 4;
    return head.substr(at, head.find("\r\n", at) - at);
  }
};

/// One HTTP/1.1 request on a fresh connection to 127.0.0.1:port.
http_reply http(int port, const std::string& method, const std::string& target,
                const std::vector<std::string>& headers = {},
                const std::string& body = "") {
  http_reply reply;
  std::string req = method + " " + target +
                    " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                    "\r\nConnection: close\r\n";
  for (const auto& h : headers)
    req += h + "\r\n";
  if (!body.empty())
    req += "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n";
  std::string raw = http_exchange(port, req + "\r\n" + body);
  auto split = raw.find("\r\n\r\n");
  if (raw.size() < 12 || split == std::string::npos) return reply;
  reply.status = std::stoi(raw.substr(9, 3));
  reply.head = raw.substr(0, split + 2);
  reply.body = raw.substr(split + 4);
  return reply;
}

/// `satoru web-user add NAME --role ROLE` with the password on stdin.
satoru::process_result add_web_user(const satoru_env& env, const std::string& name,
                                    const std::string& password) {
  satoru::process_spec spec;
  spec.argv = {SATORU_BIN, "--config", env.config_path(), "web-user",
               "add",      name,       "--role",          "viewer"};
  spec.stdin_data = password + "\n";
  spec.inherit_environment = true;
  spec.timeout = 60s;
  auto r = satoru::run_process(spec);
  EXPECT_TRUE(r) << (r ? "" : r.err().message);
  return r ? *r : satoru::process_result{};
}

} // namespace

TEST(WebConsole, AUserAddedFromStdinLogsInAndSeesTheFleetAfterABackup) {
  satoru_env env;
  edge_host host{env.path("edge")};
  ASSERT_TRUE(host.running());
  host.write_file(host.remote_root() + "/data/a", "a");
  env.add_site("store-berlin-01", host, {{"directory", host.remote_root() + "/data"}});
  int port = free_port();
  env.config["web_listen"] = "127.0.0.1:" + std::to_string(port);
  env.config["web_users_file"] = "web-users.json";
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
