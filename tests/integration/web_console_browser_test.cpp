// The web console in a real browser: headless Chromium (Debian's chromium and
// chromium-driver) logs in through the form, reads the fleet page its server
// rendered, opens the site, clicks "Back up now" and watches the job page
// follow the backup to its end, against a daemon and a loopback edge host.
#include "browser.hpp"
#include "satoru_env.hpp"

#include "satoru/process.hpp"

#include <gtest/gtest.h>

using namespace satoru::testing;
using namespace std::chrono_literals;

TEST(WebConsoleBrowser, AnOperatorLogsInAndSeesTheSiteBackedUp) {
  browser chromium;
  ASSERT_TRUE(chromium.ready()) << chromium.last_error();

  satoru_env env;
  edge_host host{env.path("edge")};
  ASSERT_TRUE(host.running());
  host.write_file(host.remote_root() + "/data/orders.csv", "1,espresso\n");
  const std::string site = "store-berlin-01";
  env.add_site(site, host, {{"directory", host.remote_root() + "/data"}});
  int port = free_port();
  env.config["web_listen"] = "127.0.0.1:" + std::to_string(port);
  env.config["web_users_file"] = "web-users.json";
  env.write_config();
  ASSERT_EQ(add_web_user(env, "ana", "correct horse battery", "operator").exit_code, 0);
  daemon_process daemon{env};
  daemon.start();
  ASSERT_EQ(env.run({"run", site, "--wait"}).exit_code, 0) << daemon.log();

  const std::string base = "http://127.0.0.1:" + std::to_string(port);
  ASSERT_TRUE(chromium.go(base + "/")) << chromium.last_error();
  EXPECT_EQ(chromium.url(), base + "/login") << "no session: the login form";
  ASSERT_TRUE(chromium.type("input[name=user]", "ana")) << chromium.last_error();
  ASSERT_TRUE(chromium.type("input[name=password]", "correct horse battery"));
  ASSERT_TRUE(chromium.click("form.login button")) << chromium.last_error();

  ASSERT_TRUE(chromium.wait_for_text("table", site, 10s)) << chromium.url() << "\n"
                                                          << chromium.text("body");
  EXPECT_EQ(chromium.url(), base + "/");
  EXPECT_TRUE(contains(chromium.text("table"), "ok")) << chromium.text("table");

  // The site's page: "Back up now" queues a backup and opens its job page,
  // which follows the job (Server-Sent Events) to its end without reloading.
  ASSERT_TRUE(chromium.click("table a")) << chromium.last_error();
  ASSERT_TRUE(chromium.wait_for_text("h1", "Site " + site, 10s)) << chromium.text("body");
  ASSERT_TRUE(chromium.click("form.queue-backup button")) << chromium.last_error();
  ASSERT_TRUE(chromium.wait_for_text("#status", "success", 120s))
      << chromium.url() << "\n"
      << chromium.text("body") << daemon.log();
  EXPECT_TRUE(contains(chromium.url(), base + "/jobs/")) << chromium.url();
  EXPECT_TRUE(contains(chromium.text("#events"), "finished")) << chromium.text("#events");
}
