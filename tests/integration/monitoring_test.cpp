// Monitoring: the alert rules and their promtool unit tests, the Grafana
// dashboard's structure, and every dashboard and alert query run against a
// real Prometheus scraping a real daemon that backed up a real edge host and
// copied its repository to rclone's REST server (the B2 stand-in).
#include "rclone_server.hpp"
#include "satoru_env.hpp"

#include "satoru/identity.hpp"
#include "satoru/process.hpp"

#include <gtest/gtest.h>

#include <csignal>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <fstream>
#include <future>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

using namespace satoru::testing;
using namespace std::chrono_literals;

namespace {

const std::string source_dir = SATORU_SOURCE_DIR;
const std::string dashboard_file = source_dir + "/dashboards/satoru.json";
const std::string alerts_file = source_dir + "/dashboards/alerts.yml";

satoru::process_result run_tool(std::vector<std::string> argv) {
  satoru::process_spec spec;
  spec.argv = std::move(argv);
  spec.timeout = 180s; // promtool test rules takes ~50 s on a loaded 2-core machine
  auto r = satoru::run_process(spec);
  EXPECT_TRUE(r) << (r ? "" : r.err().message);
  return r ? *r : satoru::process_result{};
}

boost::json::object load_dashboard() {
  auto text = read_file(dashboard_file);
  EXPECT_FALSE(text.empty()) << dashboard_file;
  boost::system::error_code ec;
  auto v = boost::json::parse(text, ec);
  EXPECT_FALSE(ec) << dashboard_file << ": " << ec.message();
  return ec || !v.is_object() ? boost::json::object{} : v.as_object();
}

std::string str(const boost::json::value* v) {
  return v && v->is_string() ? std::string(v->as_string()) : std::string{};
}

/// Panels, including those nested in collapsed rows.
std::vector<boost::json::object> all_panels(const boost::json::object& dashboard) {
  std::vector<boost::json::object> out;
  if (auto* list = dashboard.if_contains("panels"))
    for (auto& p : list->as_array()) {
      out.push_back(p.as_object());
      if (auto* nested = p.as_object().if_contains("panels"))
        for (auto& q : nested->as_array())
          out.push_back(q.as_object());
    }
  return out;
}

/// Every (panel title, PromQL expression) of the dashboard.
std::vector<std::pair<std::string, std::string>>
dashboard_queries(const boost::json::object& dashboard) {
  std::vector<std::pair<std::string, std::string>> out;
  for (auto& p : all_panels(dashboard))
    if (auto* targets = p.if_contains("targets"))
      for (auto& t : targets->as_array())
        out.emplace_back(str(p.if_contains("title")),
                         str(t.as_object().if_contains("expr")));
  return out;
}

/// What Grafana would send for the dashboard's variables (all sites, the
/// interval variables at values that suit a 1 s scrape interval).
std::string substitute(std::string expr) {
  const std::vector<std::pair<std::string, std::string>> vars = {
      {"${__rate_interval}", "1m"},
      {"$__rate_interval", "1m"},
      {"${__interval}", "15s"},
      {"$__interval", "15s"},
      {"${__range}", "10m"},
      {"$__range", "10m"},
      {"${site}", ".*"},
      {"$site", ".*"}};
  for (const auto& [from, to] : vars)
    for (auto at = expr.find(from); at != std::string::npos; at = expr.find(from, at))
      expr.replace(at, from.size(), to);
  return expr;
}

/// The series selectors of an expression: satoru_* metrics with their label
/// matchers, and up{...}.
std::set<std::string> selectors(const std::string& expr) {
  static const std::regex re{R"((satoru_[a-z_]+)(\{[^}]*\})?|\bup\{[^}]*\})"};
  std::set<std::string> out;
  for (std::sregex_iterator it{expr.begin(), expr.end(), re}, end; it != end; ++it)
    out.insert(it->str());
  return out;
}

std::string url_encode(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

/// Debian's prometheus as a child of the test, on a free loopback port,
/// scraping the daemon every second with the repository's alert rules.
/// Stopped by its pid (never by name), also when the test fails.
class prometheus_server {
public:
  prometheus_server(std::string dir, int metrics_port)
      : dir_(std::move(dir)) {
    port_ = free_port();
    run_shell("mkdir -p '" + dir_ + "/data'");
    std::ofstream cfg(dir_ + "/prometheus.yml");
    cfg << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        << "rule_files:\n  - " << alerts_file << "\n"
        << "scrape_configs:\n  - job_name: satoru\n    static_configs:\n"
        << "      - targets: ['127.0.0.1:" << metrics_port << "']\n";
  }
  ~prometheus_server() { stop(); }

  bool start() {
    pid_t pid = fork();
    if (pid < 0) return false;
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL); // dies with the test even if it crashes
      int fd =
          ::open((dir_ + "/prometheus.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
      dup2(fd, 1);
      dup2(fd, 2);
      int null = ::open("/dev/null", O_RDONLY);
      dup2(null, 0);
      auto config = "--config.file=" + dir_ + "/prometheus.yml";
      auto storage = "--storage.tsdb.path=" + dir_ + "/data";
      auto listen = "--web.listen-address=127.0.0.1:" + std::to_string(port_);
      execl("/usr/bin/prometheus", "prometheus", config.c_str(), storage.c_str(),
            listen.c_str(), "--log.level=warn", static_cast<char*>(nullptr));
      _exit(127);
    }
    pid_ = pid;
    return wait_until(
               [&] {
                 int status = 0;
                 if (waitpid(pid_, &status, WNOHANG) == pid_) {
                   pid_ = 0;
                   return true;
                 }
                 return contains(http_get(port_, "/-/ready"), "Ready");
               },
               30s, 200ms) &&
           pid_ > 0;
  }

  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int status = 0;
    if (!wait_until([&] { return waitpid(pid_, &status, WNOHANG) == pid_; }, 10s, 50ms)) {
      ::kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
    }
    pid_ = 0;
  }

  /// GET /api/v1/<path> as JSON (null when it failed).
  boost::json::value api(const std::string& path) const {
    auto body = http_get(port_, "/api/v1/" + path);
    boost::system::error_code ec;
    auto v = boost::json::parse(body, ec);
    return ec ? boost::json::value{} : v;
  }

  /// An instant query's result vector; *error gets Prometheus' complaint.
  boost::json::array query(const std::string& promql,
                           std::string* error = nullptr) const {
    auto v = api("query?query=" + url_encode(promql));
    if (!v.is_object() || str(v.as_object().if_contains("status")) != "success") {
      if (error)
        *error = v.is_object() ? str(v.as_object().if_contains("error")) : "no answer";
      return {};
    }
    auto& data = v.at("data").as_object();
    if (str(data.if_contains("resultType")) != "vector") {
      if (error) *error = "result type " + str(data.if_contains("resultType"));
      return {};
    }
    return data.at("result").as_array();
  }

  std::string log() const { return read_file(dir_ + "/prometheus.log"); }
  int port() const { return port_; }

private:
  std::string dir_;
  int port_ = 0;
  int pid_ = 0;
};

} // namespace

TEST(Monitoring, AlertRulesPassPromtoolChecksAndTheirUnitTests) {
  auto check = run_tool({"promtool", "check", "rules", alerts_file});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  EXPECT_TRUE(contains(check.out, "SUCCESS: 14 rules found")) << check.out;

  // Every alert has firing and non-firing cases there (see the file).
  // Two files: alerts whose timing is in minutes are evaluated every minute,
  // the ones that span days every 5 minutes.
  auto test =
      run_tool({"promtool", "test", "rules", source_dir + "/dashboards/alerts_test.yml",
                source_dir + "/dashboards/alerts_minute_test.yml"});
  EXPECT_EQ(test.exit_code, 0) << test.out << test.err;
  EXPECT_TRUE(contains(test.out, "SUCCESS") &&
              contains(test.out, "alerts_minute_test.yml"))
      << test.out;
  auto tests = read_file(source_dir + "/dashboards/alerts_test.yml") +
               read_file(source_dir + "/dashboards/alerts_minute_test.yml");
  for (auto name :
       {"SatoruBackupStale", "SatoruSiteFailed", "SatoruSiteWarning", "SatoruSyncStale",
        "SatoruSyncFailing", "SatoruOffsiteLagGrowing", "SatoruStagingDiskLow",
        "SatoruDaemonDown", "SatoruHostKeyMismatch", "SatoruTargetUnreadableFiles",
        "SatoruTargetStale", "SatoruRepositoryCheckFailed", "SatoruTargetNotVerified",
        "SatoruDiskHeadroomLow"}) {
    EXPECT_TRUE(contains(read_file(alerts_file), std::string("alert: ") + name)) << name;
    EXPECT_TRUE(contains(tests, std::string("alertname: ") + name))
        << name << " is not tested";
    // The runbook the annotation links to exists.
    std::string anchor = name;
    for (auto& c : anchor)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    EXPECT_TRUE(contains(read_file(alerts_file), "docs/operations.md#" + anchor)) << name;
    EXPECT_TRUE(contains(read_file(source_dir + "/docs/operations.md"),
                         std::string("### ") + name))
        << name << " has no section in docs/operations.md";
  }

  auto config = run_tool(
      {"promtool", "check", "config", source_dir + "/dashboards/prometheus.yml"});
  EXPECT_EQ(config.exit_code, 0) << config.out << config.err;
}

TEST(Monitoring, DashboardIsBuiltOnTheDatasourceVariable) {
  auto text = read_file(dashboard_file);
  auto dashboard = load_dashboard();
  ASSERT_FALSE(dashboard.empty());
  // Import-only placeholders break file provisioning.
  EXPECT_FALSE(dashboard.contains("__inputs"));
  EXPECT_FALSE(contains(text, "${DS_")) << "a ${DS_...} placeholder";
  EXPECT_FALSE(contains(text, "DS_PROMETHEUS"));
  ASSERT_TRUE(dashboard.contains("schemaVersion"));
  EXPECT_GE(dashboard.at("schemaVersion").to_number<int>(), 36);
  EXPECT_LE(dashboard.at("schemaVersion").to_number<int>(), 39);
  EXPECT_FALSE(str(dashboard.if_contains("uid")).empty());

  const boost::json::value ds = {{"type", "prometheus"}, {"uid", "${datasource}"}};
  std::map<std::string, boost::json::object> vars;
  for (auto& v : dashboard.at("templating").at("list").as_array())
    vars[str(v.as_object().if_contains("name"))] = v.as_object();
  ASSERT_TRUE(vars.count("datasource"));
  EXPECT_EQ(str(vars["datasource"].if_contains("type")), "datasource");
  EXPECT_EQ(str(vars["datasource"].if_contains("query")), "prometheus");
  ASSERT_TRUE(vars.count("site"));
  auto& site = vars["site"];
  EXPECT_EQ(str(site.if_contains("type")), "query");
  EXPECT_EQ(site.at("datasource"), ds);
  EXPECT_TRUE(
      contains(str(site.if_contains("query")), "label_values(satoru_site_health, site)"));
  EXPECT_TRUE(site.at("multi").as_bool());
  EXPECT_TRUE(site.at("includeAll").as_bool());
  EXPECT_EQ(str(site.if_contains("allValue")), ".*");

  std::set<std::int64_t> ids;
  std::size_t with_targets = 0, site_panels = 0;
  for (auto& p : all_panels(dashboard)) {
    auto title = str(p.if_contains("title"));
    EXPECT_TRUE(ids.insert(p.at("id").to_number<std::int64_t>()).second)
        << "duplicate id: " << title;
    EXPECT_TRUE(p.contains("gridPos")) << title;
    if (str(p.if_contains("type")) == "row") continue;
    ASSERT_TRUE(p.contains("datasource")) << title;
    EXPECT_EQ(p.at("datasource"), ds) << title;
    ASSERT_TRUE(p.contains("targets")) << title;
    auto& targets = p.at("targets").as_array();
    EXPECT_FALSE(targets.empty()) << title;
    ++with_targets;
    bool uses_site = false;
    for (auto& t : targets) {
      ASSERT_TRUE(t.as_object().contains("datasource")) << title;
      EXPECT_EQ(t.at("datasource"), ds) << title;
      auto expr = str(t.as_object().if_contains("expr"));
      EXPECT_FALSE(expr.empty()) << title;
      // A site filter is a regex match (multi-value, All = .*).
      if (contains(expr, "$site")) {
        uses_site = true;
        EXPECT_TRUE(contains(expr, "site=~\"$site\"")) << title << ": " << expr;
      }
    }
    site_panels += uses_site ? 1 : 0;
  }
  EXPECT_GE(with_targets, 20u);
  EXPECT_GE(site_panels, 8u);
}

TEST(Monitoring, EveryDashboardAndAlertQueryReturnsDataFromARealDaemon) {
  satoru_env env;
  edge_host host{env.path("edge")};
  ASSERT_TRUE(host.running());
  auto dir = host.remote_root() + "/data";
  host.write_file(dir + "/a.txt", "alpha");
  host.write_file(dir + "/sub/b.txt", std::string(100000, 'b'));
  host.make_sqlite_db(host.remote_root() + "/app.db",
                      "CREATE TABLE t(x); INSERT INTO t VALUES (1), (2);");
  env.add_site("edge-1", host,
               {{"directory", dir}, {"sqlite_dump", host.remote_root() + "/app.db"}});
  rclone_server remote;
  ASSERT_TRUE(remote.start(env.path("b2"))) << remote.last_error();
  env.config["restic_b2_repository"] = remote.repository("fleet");
  env.config["restic_retention_policy"] = {{"keep_last", 1}};
  env.write_config();

  daemon_process daemon{env};
  daemon.start();
  prometheus_server prometheus{env.path("prometheus"), env.metrics_port()};
  ASSERT_TRUE(prometheus.start()) << prometheus.log();
  ASSERT_TRUE(wait_until(
      [&] { return !prometheus.query("up{job=\"satoru\"} == 1").empty(); }, 20s, 200ms))
      << prometheus.log();

  // A real backup (twice, so that retention has something to remove), an
  // off-site copy and a prune, all run by the daemon while Prometheus watches.
  for (int i = 0; i < 2; ++i) {
    host.write_file(dir + "/a.txt", "alpha " + std::to_string(i));
    auto backup = env.run({"run", "edge-1", "--wait"});
    ASSERT_EQ(backup.exit_code, 0) << backup.out << backup.err << daemon.log();
  }
  auto sync = env.run({"sync", "--wait"});
  ASSERT_EQ(sync.exit_code, 0) << sync.out << sync.err << daemon.log();
  auto prune = env.run({"prune", "--wait"});
  ASSERT_EQ(prune.exit_code, 0) << prune.out << prune.err << daemon.log();
  // Off-site retention, both checks and a drill of each target, so that
  // every restorability series has data.
  for (auto args : std::vector<std::vector<std::string>>{{"prune", "--offsite", "--wait"},
                                                         {"check", "--wait"},
                                                         {"check", "--offsite", "--wait"},
                                                         {"drill", "--wait"},
                                                         {"drill", "--wait"}}) {
    auto r = env.run(args);
    ASSERT_EQ(r.exit_code, 0) << args[0] << r.out << r.err << daemon.log();
  }
  ASSERT_TRUE(wait_until(
      [&] {
        return !prometheus
                    .query("satoru_jobs_finished_total{type=\"retention\",status="
                           "\"success\"} == 1")
                    .empty() &&
               !prometheus.query("satoru_sync_status{status=\"success\"} == 1").empty() &&
               !prometheus.query("satoru_retention_snapshots_removed_total > 0")
                    .empty() &&
               !prometheus.query("satoru_offsite_repository_size_bytes > 0").empty() &&
               prometheus.query("satoru_repository_check_ok == 1").size() == 2 &&
               !prometheus.query("min(satoru_target_last_verified_timestamp_seconds) > 0")
                    .empty();
      },
      30s, 250ms))
      << http_get(env.metrics_port(), "/metrics");
  auto dashboard_text = read_file(dashboard_file);
  auto dashboard = load_dashboard();
  // A few more scrapes for the rate() windows: until every query has data (a
  // scrape that a loaded machine answers late marks the series stale for a
  // moment), then each is checked below with its own message.
  auto all_have_data = [&] {
    for (const auto& [title, raw] : dashboard_queries(dashboard)) {
      auto expr = substitute(raw);
      if (prometheus.query(expr).empty()) return false;
      for (const auto& sel : selectors(expr))
        if (prometheus.query(sel).empty()) return false;
    }
    return true;
  };
  wait_until(all_have_data, 60s, 500ms);
  auto metrics_text = http_get(env.metrics_port(), "/metrics");

  // 1. Every satoru_ metric family the daemon exports is on the dashboard
  // (the exposer_* families are prometheus-cpp's own).
  std::size_t families = 0;
  std::istringstream lines{metrics_text};
  for (std::string line; std::getline(lines, line);)
    if (line.rfind("# TYPE satoru_", 0) == 0) {
      auto name = line.substr(7, line.find(' ', 7) - 7);
      ++families;
      EXPECT_TRUE(contains(dashboard_text, name)) << name << " is not on the dashboard";
    }
  EXPECT_GE(families, 19u);

  // 2. Every dashboard query, and every series selector in it, returns data.
  auto check = [&](const std::string& where, const std::string& promql) {
    std::string error;
    auto result = prometheus.query(promql, &error);
    EXPECT_TRUE(error.empty()) << where << ": " << promql << ": " << error;
    EXPECT_FALSE(result.empty()) << where << ": no data for " << promql;
  };
  auto queries = dashboard_queries(dashboard);
  ASSERT_GE(queries.size(), 20u);
  std::size_t checked = 0;
  for (const auto& [title, raw] : queries) {
    auto expr = substitute(raw);
    EXPECT_FALSE(contains(expr, "$")) << title << ": unknown variable in " << expr;
    check(title, expr);
    for (const auto& sel : selectors(expr))
      check(title + " (selector)", sel);
    ++checked;
  }
  EXPECT_EQ(checked, queries.size());
  // The site variable: label_values(satoru_site_health, site).
  auto sites =
      prometheus.api("label/site/values?match[]=" + url_encode("satoru_site_health"));
  EXPECT_TRUE(contains(boost::json::serialize(sites), "\"edge-1\"")) << sites;

  // 3. Every alert rule is loaded and evaluates cleanly, and every series it
  // selects exists (no misspelt metric or label value).
  const std::set<std::string> alert_names = {
      "SatoruBackupStale",       "SatoruSiteFailed",
      "SatoruSiteWarning",       "SatoruSyncStale",
      "SatoruSyncFailing",       "SatoruOffsiteLagGrowing",
      "SatoruStagingDiskLow",    "SatoruDaemonDown",
      "SatoruHostKeyMismatch",   "SatoruTargetUnreadableFiles",
      "SatoruTargetStale",       "SatoruRepositoryCheckFailed",
      "SatoruTargetNotVerified", "SatoruDiskHeadroomLow"};
  boost::json::array rules;
  ASSERT_TRUE(wait_until(
      [&] {
        rules.clear();
        auto v = prometheus.api("rules?type=alert");
        if (!v.is_object() || str(v.as_object().if_contains("status")) != "success")
          return false;
        for (auto& g : v.at("data").at("groups").as_array())
          if (str(g.as_object().if_contains("name")) == "satoru")
            for (auto& r : g.at("rules").as_array())
              rules.push_back(r);
        for (auto& r : rules)
          if (str(r.as_object().if_contains("health")) != "ok") return false;
        return !rules.empty();
      },
      15s, 250ms))
      << boost::json::serialize(rules) << prometheus.log();
  std::set<std::string> seen;
  for (auto& r : rules) {
    auto name = str(r.as_object().if_contains("name"));
    auto query = str(r.as_object().if_contains("query"));
    seen.insert(name);
    EXPECT_EQ(str(r.as_object().if_contains("lastError")), "") << name;
    auto sels = selectors(query);
    EXPECT_FALSE(sels.empty()) << name << ": " << query;
    for (const auto& sel : sels)
      check(name, sel);
  }
  EXPECT_EQ(seen, alert_names);

  // 4. A healthy deployment raises none of them (the staging disk of the
  // machine running the test may really be low, so that one is left out).
  auto alerts = prometheus.api("alerts");
  for (auto& a : alerts.at("data").at("alerts").as_array()) {
    auto name = str(a.at("labels").as_object().if_contains("alertname"));
    EXPECT_TRUE(name == "SatoruStagingDiskLow" || !alert_names.count(name))
        << name << " is " << str(a.as_object().if_contains("state"))
        << " on a healthy daemon: " << boost::json::serialize(a);
  }

  // 5. The daemon stops: SatoruDaemonDown matches the real up{job="satoru"}.
  EXPECT_EQ(daemon.stop(), 0);
  EXPECT_TRUE(wait_until(
      [&] {
        auto v = prometheus.api("alerts");
        return contains(boost::json::serialize(v), "\"alertname\":\"SatoruDaemonDown\"");
      },
      20s, 250ms))
      << boost::json::serialize(prometheus.api("alerts"));
  prometheus.stop();
}

// A pull's progress is a metric while it runs (updated as it moves) and is
// gone when it ends: no stale series.
TEST(Monitoring, APullsProgressIsAMetricWhileItRunsAndGoneAfter) {
  satoru_env env;
  edge_host host{env.path("edge")};
  ASSERT_TRUE(host.running());
  const std::string dir = host.remote_root() + "/data";
  ASSERT_EQ(host.sh("mkdir -p '" + dir + "' && head -c 3000000 /dev/urandom > '" + dir +
                    "/blob'"),
            0);
  env.add_site("edge", host, {{"directory", dir}});
  env.set_target_options(0, 0, {{"bwlimit_kbps", 400}, {"compress", false}}); // ~7 s
  env.write_config();
  daemon_process daemon{env};
  daemon.start();
  const std::string series = "satoru_target_progress_bytes{site=\"edge\",target=\"" +
                             satoru::target_hash("directory", dir) + "\"} ";
  auto value_now = [&]() -> long long {
    const std::string text = http_get(env.metrics_port(), "/metrics");
    auto at = text.find(series);
    return at == std::string::npos ? -1 : std::atoll(text.c_str() + at + series.size());
  };
  auto run = env.run({"run", "edge"});
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  const auto id = parse_id(run);
  // The CLI follows the same pull through the database (job_progress).
  auto follow = std::async(std::launch::async, [&] {
    return env.run({"job", std::to_string(id), "--follow", "--json"});
  });
  std::vector<long long> seen;
  boost::json::value jobs_then;
  cli_result sites_then;
  ASSERT_TRUE(wait_until(
      [&] {
        auto v = value_now();
        if (v > 0 && (seen.empty() || v != seen.back())) seen.push_back(v);
        if (seen.size() == 2 && jobs_then.is_null()) {
          jobs_then = parse_json(env.run({"jobs", "--json"}));
          sites_then = env.run({"sites"});
        }
        const auto status = str(job_json(env, id).if_contains("status"));
        return status != "running" && status != "queued";
      },
      120s, 250ms))
      << daemon.log();
  EXPECT_EQ(str(job_json(env, id).if_contains("status")), "success");
  // The series follows the target's running step: the pull's bytes grow;
  // the snapshot after it (if it runs long enough to show) starts again.
  std::vector<long long> pulled;
  for (auto v : seen) {
    if (!pulled.empty() && v < pulled.back()) break;
    pulled.push_back(v);
  }
  ASSERT_GE(pulled.size(), 3u) << "the pull's bytes, as it moved";
  EXPECT_EQ(value_now(), -1) << "no stale series after the steps";

  const auto followed = follow.get();
  EXPECT_EQ(followed.exit_code, 0) << followed.err;
  // Every line is typed: the job's events and the progress lines.
  std::map<std::string, int> types;
  std::istringstream lines{followed.out};
  for (std::string line; std::getline(lines, line);)
    ++types[str(boost::json::parse(line).as_object().if_contains("type"))];
  EXPECT_GT(types["event"], 0) << followed.out;
  EXPECT_GT(types["progress"], 0) << followed.out;
  EXPECT_EQ(types.size(), 2u) << followed.out;
  auto pull = progress_lines(followed.out, "pull");
  ASSERT_GE(pull.size(), 4u) << followed.out;
  auto bytes = [&](std::size_t i) {
    return pull[i].at("bytes_done").to_number<double>();
  };
  for (std::size_t i = 1; i + 1 < pull.size(); ++i)
    EXPECT_GT(bytes(i), bytes(i - 1)) << followed.out;
  EXPECT_TRUE(pull.back().at("ended").as_bool());
  EXPECT_DOUBLE_EQ(pull.back().at("fraction").to_number<double>(), 1.0);
  EXPECT_EQ(pull.back().at("bytes_done").to_number<std::int64_t>(), 3000000);
  EXPECT_EQ(pull.back().at("target").as_string(), satoru::target_hash("directory", dir));
  // The snapshot's progress (restic backup --json) ends at 100% too.
  auto snapshot = progress_lines(followed.out, "snapshot");
  ASSERT_FALSE(snapshot.empty()) << followed.out;
  EXPECT_DOUBLE_EQ(snapshot.back().at("fraction").to_number<double>(), 1.0)
      << followed.out;

  // While it ran, `jobs` showed its percent and `sites` its running step.
  ASSERT_TRUE(jobs_then.is_array()) << "never saw the pull run";
  const auto& job = jobs_then.as_array()[0].as_object();
  EXPECT_EQ(job.at("id").to_number<std::int64_t>(), id);
  EXPECT_GT(job.at("percent").to_number<double>(), 0);
  EXPECT_LT(job.at("percent").to_number<double>(), 100);
  EXPECT_EQ(job.at("progress").as_array()[0].at("step").as_string(), "pull");
  EXPECT_TRUE(contains(sites_then.out, " pull ")) << sites_then.out;
}

TEST(Monitoring, OnATerminalRunWaitRedrawsTheStatusLineOfAPullInPlace) {
  satoru_env env;
  edge_host host{env.path("edge")};
  ASSERT_TRUE(host.running());
  const auto dir = add_slow_site(env, host, 4);
  // `run --wait` with no daemon: the job runs in this process, and its
  // stdout is a terminal (script's pseudo-terminal).
  auto quote = [](const std::string& s) { return "'" + s + "'"; };
  satoru::process_spec spec;
  spec.argv = {"script", "-qfec",
               quote(SATORU_BIN) + " --config " + quote(env.config_path()) +
                   " run edge --wait",
               "/dev/null"};
  spec.env = {{"TERM", "xterm"}, {"COLUMNS", "200"}};
  spec.inherit_environment = true;
  spec.timeout = 120s;
  auto r = satoru::run_process(spec);
  ASSERT_TRUE(r) << r.err().message;
  ASSERT_EQ(r->exit_code, 0) << r->out << r->err;
  const std::string& screen = r->out;
  // Two successive values of the status line, the second drawn over the
  // first: carriage return and erase, no new line between them.
  const std::regex redrawn{"\\[" + dir + "\\] pull ([^\x1b\r\n]+)\x1b\\[K\r\x1b\\[J\\[" +
                           dir + "\\] pull ([^\x1b\r\n]+)\x1b\\[K"};
  std::smatch m;
  bool moved = false;
  for (auto from = screen.cbegin();
       !moved && std::regex_search(from, screen.cend(), m, redrawn); from = m[1].second)
    moved = m[1].str() != m[2].str();
  EXPECT_TRUE(moved) << screen;
  // The event lines are printed whole, above it.
  EXPECT_TRUE(contains(screen, "pulled " + dir)) << screen;
}
