// The web console in a real browser: headless Chromium (Debian's chromium and
// chromium-driver) logs in through the form, reads the fleet page its server
// rendered, opens the site, clicks "Back up now" and watches the job page
// follow the backup to its end, then browses the new snapshot, where files
// with hostile names stay text, and downloads a file whose bytes are the
// source's, against a daemon and a loopback edge host. Screenshots of the
// pages land in <build>/test-screenshots/.
#include "browser.hpp"
#include "satoru_env.hpp"
#include "web_client.hpp"

#include "satoru/process.hpp"

#include <gtest/gtest.h>

#include <filesystem>

using namespace satoru::testing;
using namespace std::chrono_literals;

TEST(WebConsoleBrowser, AnOperatorLogsInAndSeesTheSiteBackedUp) {
  browser chromium;
  ASSERT_TRUE(chromium.ready()) << chromium.last_error();

  satoru_env env;
  edge_host host{env.path("edge")};
  ASSERT_TRUE(host.running());
  host.write_file(host.remote_root() + "/data/orders.csv", "1,espresso\n");
  // Names a page must show as text, never as markup.
  const std::string hostile = host.remote_root() + "/data/names/";
  // A name cannot hold '/': this is the folder "<script>alert(1)<" with
  // "script>.txt" in it.
  host.write_file(hostile + "<script>alert(1)</script>.txt", "script\n");
  host.write_file(hostile + "<img src=x onerror=alert(1)>.txt", "img\n");
  host.write_file(hostile + "a\"quote'.txt", "quote\n");
  host.write_file(hostile + "\xff\xfe", "not UTF-8\n");
  const std::string shots = std::string(SATORU_BINARY_DIR) + "/test-screenshots";
  std::filesystem::create_directories(shots);
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
  EXPECT_TRUE(chromium.screenshot(shots + "/fleet.png")) << chromium.last_error();

  // The site's page: "Back up now" queues a backup and opens its job page,
  // which follows the job (Server-Sent Events) to its end without reloading.
  ASSERT_TRUE(chromium.click("td[data-label=Site] a")) << chromium.last_error();
  ASSERT_TRUE(chromium.wait_for_text("h1", "Site " + site, 10s)) << chromium.text("body");
  ASSERT_TRUE(chromium.click("form.queue-backup button")) << chromium.last_error();
  ASSERT_TRUE(chromium.wait_for_text("#status", "success", 120s))
      << chromium.url() << "\n"
      << chromium.text("body") << daemon.log();
  EXPECT_TRUE(contains(chromium.url(), base + "/jobs/")) << chromium.url();
  EXPECT_TRUE(contains(chromium.text("#events"), "finished")) << chromium.text("#events");
  EXPECT_TRUE(chromium.screenshot(shots + "/job.png")) << chromium.last_error();

  // The target's snapshots, from the site page, and the newest one's tree.
  ASSERT_TRUE(chromium.go(base + "/sites/" + site)) << chromium.last_error();
  ASSERT_TRUE(chromium.click("table a.snapshots")) << chromium.last_error();
  ASSERT_TRUE(chromium.wait_for_text("h1", "Snapshots of", 10s)) << chromium.text("body");
  EXPECT_GE(chromium.count("#snapshots tbody tr"), 1);
  ASSERT_TRUE(chromium.click("#snapshots tbody a")) << chromium.last_error();
  ASSERT_TRUE(chromium.wait_for_text("#tree", "orders.csv", 10s))
      << chromium.text("body");
  ASSERT_TRUE(chromium.click("#tree a[href$='path=names']")) << chromium.text("#tree");
  ASSERT_TRUE(chromium.wait_for_text("#crumbs", "names", 10s)) << chromium.text("body");
  std::string tree = chromium.text("#tree");
  EXPECT_TRUE(contains(tree, "<script>alert(1)</")) << tree;
  EXPECT_TRUE(contains(tree, "<img src=x onerror=alert(1)>.txt")) << tree;
  EXPECT_TRUE(contains(tree, "a\"quote'.txt")) << tree;
  EXPECT_TRUE(contains(tree, "\xef\xbf\xbd\xef\xbf\xbd")) << "U+FFFD twice: " << tree;
  EXPECT_EQ(chromium.count("#tree script, #tree img"), 0)
      << "no element made from a name";
  EXPECT_EQ(chromium.count("script"), 0);
  EXPECT_EQ(chromium.url().find("alert"), std::string::npos);
  EXPECT_TRUE(chromium.screenshot(shots + "/tree.png")) << chromium.last_error();

  // A file's link downloads its bytes (fetched with the browser's session).
  ASSERT_TRUE(chromium.go(base + "/sites/" + site)) << chromium.last_error();
  ASSERT_TRUE(chromium.click("table a.snapshots")) << chromium.last_error();
  ASSERT_TRUE(chromium.click("#snapshots tbody a")) << chromium.last_error();
  ASSERT_TRUE(chromium.wait_for_text("#tree", "orders.csv", 10s))
      << chromium.text("body");
  std::string href = chromium.attribute("#tree a[href$='path=orders.csv']", "href");
  ASSERT_FALSE(href.empty()) << chromium.text("#tree");
  std::string session = chromium.cookie("satoru_session");
  ASSERT_FALSE(session.empty()) << chromium.last_error();
  auto file = http(port, "GET", href.substr(href.find("/sites/")),
                   {"Cookie: satoru_session=" + session});
  ASSERT_EQ(file.status, 200) << file.head << file.body;
  EXPECT_EQ(file.body, read_file(host.remote_root() + "/data/orders.csv"));
  EXPECT_TRUE(contains(file.header("Content-Disposition"), "attachment")) << file.head;
}
