/// satoru_console_bench — is the web console fast with 1,000 sites, and
/// what does it cost the daemon's memory?
///
/// For each fleet size (default 10 and 1000): a config of N sites (two
/// targets each, never contacted) and a database filled directly through
/// the store and SQL (no backups run: a site's state is a finished backup
/// job 1 h ago and its health; every 10th site failed with its last
/// success 3 days ago, so stale; every 10th+1 a warning; every 25th+2
/// unknown; 10 older jobs of history per site). Then:
///   (a) server time: the console's routes in this process
///       (web::console::handle, logged in as an operator), 50 requests
///       (after 3 untimed) of `/` (the fleet page), `/api/v1/sites` and
///       `/?format=json&sort=staleness&order=desc&q=7`; median and p95.
///   (b) memory (largest size only): `satoru daemon` on that config with
///       the console off, then on; after /metrics answers, a settle and
///       the same warm-up (on: a login, then the 50 + 50 requests over
///       HTTP), VmRSS and VmHWM from /proc/PID/status.
/// Timing is reported, never asserted: this is not a test.

#include "bench_support.hpp"

#include "satoru/config.hpp"
#include "satoru/identity.hpp"
#include "satoru/store.hpp"
#include "satoru/time.hpp"
#include "satoru/web/console.hpp"
#include "satoru/web/password.hpp"
#include "satoru/web/users_file.hpp"

#include <boost/beast/http.hpp>
#include <sqlite3.h>

#include <chrono>
#include <sstream>

using namespace satoru;
using namespace satoru::bench;
namespace http = boost::beast::http;
using clock_type = std::chrono::steady_clock;

namespace {

struct params {
  std::vector<int> sites = {10, 1000};
  int requests = 50;
  int settle_seconds = 3;
  bool skip_daemon = false;
  std::string satoru = SATORU_BENCH_BIN;
  std::string plugin_dir = SATORU_BENCH_PLUGIN_DIR;
  std::string summary;
  std::string work_root;
};

constexpr const char* password = "bench password";
const char* const routes[] = {"/", "/api/v1/sites",
                              "/?format=json&sort=staleness&order=desc&q=7"};

/// The config of `n` sites; `web_port` 0 = no console.
std::string config_text(const params& p, const temp_dir& dir, int n, int metrics_port,
                        int web_port) {
  std::string sites;
  for (int i = 0; i < n; ++i)
    sites += fmt::format(
        R"({}{{"name": "edge-{:04}", "host": "127.0.0.1", "port": 1, "user": "root",
  "targets": [{{"mode": "directory", "path": "/srv/data"}},
              {{"mode": "sqlite_dump", "path": "/srv/app.db"}}]}})",
        i ? ",\n" : "", i);
  std::string web = web_port == 0 ? ""
                                  : fmt::format(R"(  "web_listen": "127.0.0.1:{}",
  "web_users_file": "{}/web-users.json",
)",
                                                web_port, dir.path());
  return fmt::format(R"({{
  "staging_root": "{0}/staging",
  "restic_repo_path": "{0}/repo",
  "restic_password_file": "{0}/restic.pass",
  "database_path": "{0}/satoru.db",
  "plugin_dir": "{1}",
  "metrics_listen": "127.0.0.1:{2}",
  "site_scan_interval_hours": 24,
  "restic_retention_interval_hours": 0,
  "restic_sync_interval_hours": 0,
  "check_interval_hours": 0,
  "restore_drill_interval_hours": 0,
{3}  "ssh": {{"identity_file": "{0}/id_ed25519", "known_hosts_file": "{0}/known_hosts"}},
  "sites": [
{4}
  ]
}}
)",
                     dir.path(), p.plugin_dir, metrics_port, web, sites);
}

void exec(sqlite3* db, const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string why = err ? err : "?";
    sqlite3_free(err);
    die(fmt::format("{}: {}", sql.substr(0, 60), why));
  }
}

/// The database of a fleet whose backups ran (see the top of the file).
void fill_database(const config& cfg) {
  auto db = store::open(cfg.database_path);
  if (!db) die(db.err().message);
  if (auto r = db->sync_config(cfg.sites); !r) die(r.err().message);
  auto now = satoru::now_ms();
  const std::int64_t hour = 3600 * 1000;
  auto h = db->handle();
  exec(h, "BEGIN IMMEDIATE");
  // History: 10 older jobs per site, one a day, then the last one 1 h ago.
  exec(h,
       fmt::format("WITH RECURSIVE n(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n "
                   "WHERE k < 11) INSERT INTO jobs (site_id, type, status, created_at, "
                   "started_at, finished_at, attempts) SELECT s.id, 'backup', "
                   "CASE WHEN k = 11 AND s.id % 10 = 0 THEN 'failed' WHEN k = 11 AND "
                   "s.id % 10 = 1 THEN 'warning' ELSE 'success' END, {0} - (11 - k) * "
                   "{1} * 24 - {1}, {0} - (11 - k) * {1} * 24 - {1}, {0} - (11 - k) * "
                   "{1} * 24 - {1} + 60000, 1 FROM sites s, n ORDER BY k, s.id",
                   now, hour));
  exec(h,
       fmt::format(
           "UPDATE sites SET health = CASE WHEN id % 10 = 0 THEN 'failed' WHEN id % 10 "
           "= 1 THEN 'warning' WHEN id % 25 = 2 THEN 'unknown' ELSE 'ok' END, "
           "health_reason = CASE WHEN id % 10 = 0 THEN 'connect to 127.0.0.1:1: "
           "connection refused' WHEN id % 10 = 1 THEN '1 of 2 targets failed' ELSE '' "
           "END, last_preflight_at = {0} - {1}, last_backup_at = {0} - {1} + 60000, "
           "last_success_at = CASE WHEN id % 10 = 0 THEN {0} - 72 * {1} ELSE {0} - {1} "
           "+ 60000 END",
           now, hour));
  exec(h, "COMMIT");
}

web::http_request request(const std::string& target, const std::string& cookie) {
  web::http_request req{http::verb::get, target, 11};
  req.set(http::field::host, "127.0.0.1:9465");
  if (!cookie.empty()) req.set(http::field::cookie, cookie);
  return req;
}

struct timing {
  std::string route;
  double median_ms = 0, p95_ms = 0;
  std::size_t bytes = 0;
};

/// (a): the routes' server time in this process.
std::vector<timing> time_routes(const params& p, const config& cfg) {
  web::console console(std::make_shared<const config>(cfg));
  web::http_request login{http::verb::post, "/login", 11};
  login.set(http::field::host, "127.0.0.1:9465");
  login.set(http::field::content_type, "application/x-www-form-urlencoded");
  login.body() = "user=bench&password=bench+password";
  login.prepare_payload();
  auto res = console.handle(login, "127.0.0.1", satoru::now_ms());
  if (res.result() != http::status::see_other) die("cannot log in: " + res.body());
  std::string cookie(res[http::field::set_cookie]);
  cookie = cookie.substr(0, cookie.find(';'));
  std::vector<timing> out;
  for (const char* route : routes) {
    std::vector<double> ms;
    timing t;
    t.route = route;
    for (int i = -3; i < p.requests; ++i) {
      auto req = request(route, cookie);
      auto t0 = clock_type::now();
      auto answer = console.handle(req, "127.0.0.1", satoru::now_ms());
      auto t1 = clock_type::now();
      if (answer.result() != http::status::ok)
        die(fmt::format("{}: {} {}", route, answer.result_int(), answer.body()));
      t.bytes = answer.body().size();
      if (i >= 0)
        ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    }
    t.median_ms = median(ms);
    t.p95_ms = percentile(ms, 95);
    out.push_back(t);
  }
  return out;
}

/// One HTTP request to the daemon's console; the status and Set-Cookie.
std::pair<int, std::string> fetch(int port, const std::string& method,
                                  const std::string& target, const std::string& cookie,
                                  const std::string& body = "") {
  std::string req = method + " " + target +
                    " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                    "\r\nConnection: close\r\n";
  if (!cookie.empty()) req += "Cookie: " + cookie + "\r\n";
  if (!body.empty())
    req += "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n";
  auto raw = http_exchange(port, req + "\r\n" + body);
  if (raw.size() < 12) return {0, ""};
  std::string set_cookie;
  if (auto at = raw.find("\r\nSet-Cookie: "); at != std::string::npos) {
    at += 14;
    set_cookie = raw.substr(at, raw.find(';', at) - at);
  }
  return {std::stoi(raw.substr(9, 3)), set_cookie};
}

struct memory {
  long rss_kb = 0, hwm_kb = 0;
};

/// (b): the daemon's memory after the same warm-up, the console on or off.
memory measure_daemon(const params& p, const temp_dir& dir, int n, bool console) {
  int metrics_port = free_port(), web_port = console ? free_port() : 0;
  write_file(dir / "satoru.json", config_text(p, dir, n, metrics_port, web_port));
  auto pid = spawn_daemon(p.satoru, dir / "satoru.json", dir / "daemon.log");
  auto t0 = clock_type::now();
  bool ready = false;
  while (!ready && clock_type::now() - t0 < std::chrono::seconds{120}) {
    if (exited(pid)) {
      std::ifstream in{dir / "daemon.log"};
      std::stringstream text;
      text << in.rdbuf();
      die("satoru daemon exited early; its log:\n" + text.str());
    }
    ready = http_exchange(metrics_port, "GET /metrics HTTP/1.0\r\n\r\n").find(" 200 ") !=
            std::string::npos;
    if (!ready) std::this_thread::sleep_for(std::chrono::milliseconds{50});
  }
  if (!ready) {
    stop_daemon(pid);
    die("satoru daemon never answered /metrics");
  }
  std::this_thread::sleep_for(std::chrono::seconds{p.settle_seconds});
  if (console) {
    auto [status, cookie] =
        fetch(web_port, "POST", "/login", "", "user=bench&password=bench+password");
    if (status != 303) {
      stop_daemon(pid);
      die(fmt::format("logging in to the daemon's console: HTTP {}", status));
    }
    for (const char* route : {routes[0], routes[1]})
      for (int i = 0; i < p.requests; ++i)
        if (auto [code, ignored] = fetch(web_port, "GET", route, cookie); code != 200) {
          stop_daemon(pid);
          die(fmt::format("GET {} from the daemon: HTTP {}", route, code));
        }
  }
  std::this_thread::sleep_for(std::chrono::seconds{1});
  auto st = proc_status(pid);
  stop_daemon(pid);
  return {st["VmRSS"], st["VmHWM"]};
}

params parse_args(int argc, char** argv) {
  params p;
  const char* tmp = std::getenv("TMPDIR");
  p.work_root = tmp && *tmp ? tmp : "/tmp";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) die("missing value after " + a);
      return argv[++i];
    };
    if (a == "--sites") {
      p.sites.clear();
      std::istringstream in(value());
      for (int n; in >> n;)
        p.sites.push_back(n);
    } else if (a == "--requests")
      p.requests = std::stoi(value());
    else if (a == "--settle")
      p.settle_seconds = std::stoi(value());
    else if (a == "--satoru")
      p.satoru = value();
    else if (a == "--plugin-dir")
      p.plugin_dir = value();
    else if (a == "--summary")
      p.summary = value();
    else if (a == "--skip-daemon")
      p.skip_daemon = true;
    else
      die("usage: satoru_console_bench [--sites \"10 1000\"] [--requests N] [--settle S] "
          "[--satoru BIN] [--plugin-dir DIR] [--summary FILE] [--skip-daemon]");
  }
  if (p.sites.empty() || p.requests < 1)
    die("--sites and --requests need positive numbers");
  return p;
}

} // namespace

int main(int argc, char** argv) {
  program = "satoru_console_bench";
  auto p = parse_args(argc, argv);
  std::atexit(remove_pending);
  summary_writer summary("console", p.summary);
  std::cout << fmt::format(
      "(a) console server time, {} requests per route (median / p95)\n", p.requests);
  int largest = *std::max_element(p.sites.begin(), p.sites.end());
  for (int n : p.sites) {
    temp_dir dir{p.work_root, "satoru-console-bench"};
    write_file(dir / "satoru.json", config_text(p, dir, n, free_port(), free_port()));
    write_file(dir / "restic.pass", "bench-password\n");
    write_file(dir / "id_ed25519", "not a key: the sites are never contacted\n");
    write_file(dir / "known_hosts", "");
    auto hash = web::hash_password(password);
    if (!hash) die(hash.err().message);
    if (auto r =
            web::put_user(dir / "web-users.json", {"bench", web::role::operator_, *hash});
        !r)
      die(r.err().message);
    auto loaded = load_config(dir / "satoru.json");
    if (!loaded.value)
      die("the generated config: " + (loaded.diagnostics.empty()
                                          ? std::string("invalid")
                                          : loaded.diagnostics.front().to_string()));
    const config& cfg = *loaded.value;
    auto t0 = clock_type::now();
    fill_database(cfg);
    std::cout << fmt::format(
        "  {:>5} sites (database filled in {:.1f} s):\n", n,
        std::chrono::duration<double>(clock_type::now() - t0).count());
    for (const auto& t : time_routes(p, cfg)) {
      std::cout << fmt::format("    {:<48} {:>7.2f} ms / {:>7.2f} ms  ({} KiB)\n",
                               t.route, t.median_ms, t.p95_ms, t.bytes / 1024);
      bool goal = n >= 1000;
      summary.row(fmt::format("(a) {} sites: GET {} median", n, t.route),
                  fmt::format("{:.2f}", t.median_ms), "ms", goal ? "< 50" : "baseline",
                  goal ? (t.median_ms < 50 ? "met" : "missed") : "");
      summary.row(fmt::format("(a) {} sites: GET {} p95", n, t.route),
                  fmt::format("{:.2f}", t.p95_ms), "ms", goal ? "< 50" : "baseline",
                  goal ? (t.p95_ms < 50 ? "met" : "missed") : "");
    }
    if (n != largest || p.skip_daemon) continue;
    auto off = measure_daemon(p, dir, n, false);
    auto on = measure_daemon(p, dir, n, true);
    std::cout << fmt::format(
        "(b) `satoru daemon`, {} sites, {} s settle{}: console off VmRSS {:.1f} MB "
        "(VmHWM {:.1f}); on VmRSS {:.1f} MB (VmHWM {:.1f}); extra {:.1f} MB "
        "(VmHWM {:.1f})\n",
        n, p.settle_seconds, " + the warm-up", off.rss_kb / 1024.0, off.hwm_kb / 1024.0,
        on.rss_kb / 1024.0, on.hwm_kb / 1024.0, (on.rss_kb - off.rss_kb) / 1024.0,
        (on.hwm_kb - off.hwm_kb) / 1024.0);
    summary.row(fmt::format("(b) daemon VmRSS, {} sites, console off (baseline)", n),
                fmt::format("{:.1f}", off.rss_kb / 1024.0), "MB", "", "");
    summary.row(fmt::format("(b) daemon VmRSS, {} sites, console on", n),
                fmt::format("{:.1f}", on.rss_kb / 1024.0), "MB", "", "");
    summary.row(fmt::format("(b) daemon extra VmHWM with the console, {} sites", n),
                fmt::format("{:.1f}", (on.hwm_kb - off.hwm_kb) / 1024.0), "MB", "", "");
  }
  return 0;
}
