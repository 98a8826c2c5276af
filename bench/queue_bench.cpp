/// satoru_queue_bench — what the job queue and the actor runtime cost per job,
/// and what an idle daemon with many sites keeps resident.
///
///   (a) store:   N queued no-op jobs over S sites claimed (BEGIN IMMEDIATE)
///                and finished through satoru::store alone — the baseline.
///   (b) runtime: the same N jobs through the real actor runtime (detached
///                store actor + supervisor, job_worker_concurrency C) with
///                no-op site actors that finish the job in the store and reply
///                at once. Overhead per job = (wall(b) − wall(a)) / N.
///   (c) daemon:  VmRSS of an idle `satoru daemon` with 1,000 configured sites
///                (baseline: 1 site), median of several starts.
///
/// Timing is reported, never asserted: this is not a test. Run through
/// bench/run, which builds it on demand (target `benchmarks`).

#include "satoru/actors/interfaces.hpp"
#include "satoru/actors/runtime.hpp"
#include "satoru/actors/store_actor.hpp"
#include "satoru/actors/supervisor_actor.hpp"
#include "satoru/config.hpp"
#include "satoru/identity.hpp"
#include "satoru/metrics.hpp"
#include "satoru/store.hpp"

#include "bench_support.hpp"

#include <caf/all.hpp>
#include <fmt/format.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <algorithm>
#include <arpa/inet.h>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <netinet/in.h>
#include <optional>
#include <set>
#include <spawn.h>
#include <sstream>
#include <string>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

extern char** environ;

namespace fs = std::filesystem;
using namespace satoru;
using namespace satoru::actors;
using namespace satoru::bench;
using clock_type = std::chrono::steady_clock;

namespace {

// -- parameters ------------------------------------------------------------------

struct params {
  int jobs = 1000;
  int sites = 100;
  int concurrency = 8;
  int runs = 5; ///< timed runs of (a) and of (b), alternated
  int daemon_sites = 1000;
  int daemon_runs = 3;
  int settle_seconds = 5; ///< idle time after /metrics answered, before reading VmRSS
  bool skip_daemon = false;
  bool diagnose = false; ///< (c): also measure intermediate site counts
  std::string satoru = SATORU_BENCH_BIN;
  std::string plugin_dir = SATORU_BENCH_PLUGIN_DIR;
  std::string summary;   ///< TSV rows for bench/run, when given
  std::string work_root; ///< where temp folders go ($TMPDIR or /tmp)
};

template <class T> T must(expected<T> r, const char* what) {
  if (!r) die(fmt::format("{}: {}", what, r.err().message));
  return std::move(*r);
}

void must(expected<void> r, const char* what) {
  if (!r) die(fmt::format("{}: {}", what, r.err().message));
}

std::string join(const std::vector<double>& v, const char* fmt_spec) {
  std::string out;
  for (auto x : v)
    out += (out.empty() ? "" : " ") + fmt::format(fmt::runtime(fmt_spec), x);
  return out;
}

std::vector<site_config> make_sites(int n) {
  std::vector<site_config> out;
  for (int i = 0; i < n; ++i) {
    site_config s;
    s.name = fmt::format("site-{:04}", i);
    s.uuid = derive_site_uuid(s.name);
    s.host = "127.0.0.1";
    s.port = 1;
    s.user = "root";
    out.push_back(std::move(s));
  }
  return out;
}

/// Queues `jobs` backup jobs round-robin over the sites, as store::enqueue
/// writes them (job row + "queued" event). enqueue itself keeps one queued
/// job per site and type, so 10 per site need direct inserts; setup is not
/// timed.
void queue_jobs(store& db, int jobs) {
  auto sites = must(db.list_sites(), "listing sites");
  auto h = db.handle();
  auto exec = [&](const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(h, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string why = err ? err : "?";
      sqlite3_free(err);
      die(fmt::format("{}: {}", sql, why));
    }
  };
  exec("BEGIN IMMEDIATE");
  sqlite3_stmt* job = nullptr;
  sqlite3_stmt* event = nullptr;
  sqlite3_prepare_v2(h,
                     "INSERT INTO jobs (site_id, type, status, created_at) "
                     "VALUES (?, 'backup', 'queued', ?)",
                     -1, &job, nullptr);
  sqlite3_prepare_v2(
      h,
      "INSERT INTO job_events (job_id, ts, level, step, target, message, data) "
      "VALUES (?, ?, 'info', 'queued', '', 'job queued', '')",
      -1, &event, nullptr);
  auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  for (int i = 0; i < jobs; ++i) {
    sqlite3_bind_int64(job, 1, sites[static_cast<std::size_t>(i) % sites.size()].id);
    sqlite3_bind_int64(job, 2, now);
    if (sqlite3_step(job) != SQLITE_DONE) die("inserting a job failed");
    sqlite3_reset(job);
    sqlite3_bind_int64(event, 1, sqlite3_last_insert_rowid(h));
    sqlite3_bind_int64(event, 2, now);
    if (sqlite3_step(event) != SQLITE_DONE) die("inserting an event failed");
    sqlite3_reset(event);
  }
  sqlite3_finalize(job);
  sqlite3_finalize(event);
  exec("COMMIT");
}

std::int64_t count_status(store& db, const char* status) {
  sqlite3_stmt* q = nullptr;
  sqlite3_prepare_v2(db.handle(), "SELECT COUNT(*) FROM jobs WHERE status = ?", -1, &q,
                     nullptr);
  sqlite3_bind_text(q, 1, status, -1, SQLITE_STATIC);
  std::int64_t n = sqlite3_step(q) == SQLITE_ROW ? sqlite3_column_int64(q, 0) : -1;
  sqlite3_finalize(q);
  return n;
}

/// Counts write transactions (BEGIN …) on a connection; used only in the
/// untimed diagnostic run, to show how many store round trips a job costs.
struct txn_counter {
  std::atomic<std::int64_t> begins{0};
  std::atomic<std::int64_t> statements{0};
  std::map<std::string, std::int64_t> by_sql; ///< one connection = one thread at a time
  /// SQLITE_TRACE_STMT: p is the statement, x its unexpanded SQL text.
  static int on_trace(unsigned, void* ctx, void*, void* x) {
    auto* self = static_cast<txn_counter*>(ctx);
    const char* sql = static_cast<const char*>(x);
    ++self->statements;
    if (!sql) return 0;
    if (std::strncmp(sql, "BEGIN", 5) == 0) ++self->begins;
    ++self->by_sql[std::string{sql}.substr(0, 72)];
    return 0;
  }
  void attach(sqlite3* h) {
    sqlite3_trace_v2(h, SQLITE_TRACE_STMT, &txn_counter::on_trace, this);
  }
};

/// A fresh database with the sites and the queued jobs.
std::unique_ptr<store> prepared_store(const std::string& path,
                                      const std::vector<site_config>& sites, int jobs) {
  auto db = std::make_unique<store>(must(store::open(path), "opening the store"));
  must(db->sync_config(sites), "syncing sites");
  queue_jobs(*db, jobs);
  return db;
}

// -- (a) the store alone ---------------------------------------------------------

struct run_result {
  double seconds = 0;
  std::int64_t begins = 0, statements = 0;
  std::map<std::string, std::int64_t> by_sql;
};

/// Claims and finishes every queued job with the same window as the runtime:
/// up to `concurrency` claimed at once (their sites passed as busy), the
/// oldest finished first — the SQL work of (b) without any actor.
run_result run_store_only(const params& p, const std::string& dir, bool trace) {
  auto sites = make_sites(p.sites);
  auto db = prepared_store(dir + "/satoru.db", sites, p.jobs);
  txn_counter counter;
  if (trace) counter.attach(db->handle());
  auto owner = make_owner_id();
  std::deque<job_row> running;
  std::set<std::int64_t> busy;
  int finished = 0;
  auto t0 = clock_type::now();
  for (;;) {
    while (static_cast<int>(running.size()) < p.concurrency) {
      auto job = must(db->claim_next(owner, 60000, p.concurrency, busy), "claiming");
      if (!job) break;
      running.push_back(*job);
      busy.insert(job->site_id);
    }
    if (running.empty()) break;
    auto lease = running.front();
    running.pop_front();
    if (!must(db->finish_job(lease, job_outcome{job_status::success, "", {}, {}, {}}),
              "finishing"))
      die("lost a lease in the store benchmark");
    busy.erase(lease.site_id);
    ++finished;
  }
  run_result r;
  r.seconds = std::chrono::duration<double>(clock_type::now() - t0).count();
  r.begins = counter.begins;
  r.statements = counter.statements;
  r.by_sql = counter.by_sql;
  if (finished != p.jobs || count_status(*db, "success") != p.jobs)
    die(fmt::format("store benchmark finished {} of {} jobs", finished, p.jobs));
  return r;
}

// -- (b) the actor runtime with no-op sites -----------------------------------------

/// A site actor that does no work: it reports success at once; the
/// supervisor writes the job's end, as it does for real sites.
site_actor::behavior_type noop_site(site_actor::pointer) {
  return {
      [=](run_atom, const job_row&, cancel_token) {
        return job_outcome{job_status::success, "", failure_kind::none, {}, std::nullopt};
      },
      [=](expire_atom, cancel_token) {},
  };
}

run_result run_runtime(const params& p, const std::string& dir, bool trace) {
  auto sites = make_sites(p.sites);
  auto db = prepared_store(dir + "/satoru.db", sites, p.jobs);
  auto check = must(store::open(dir + "/satoru.db"), "opening the check connection");
  txn_counter counter;
  if (trace) counter.attach(db->handle());

  auto cfg = std::make_shared<config>();
  cfg->sites = sites;
  cfg->job_worker_concurrency = p.concurrency;
  cfg->staging_root = dir;
  cfg->database_path = dir + "/satoru.db";
  runtime_context ctx;
  ctx.cfg = cfg;
  ctx.metrics = std::make_shared<metrics>();
  ctx.owner = make_owner_id();

  run_result r;
  {
    runtime_config sys_cfg;
    caf::actor_system sys{sys_cfg};
    std::shared_ptr<store> shared{std::move(db)};
    // Detached, as runtime_host spawns it in the daemon.
    auto store_handle =
        sys.spawn<caf::detached>(store_behavior, shared, ctx.owner, std::string{},
                                 ctx.max_recoveries, ctx.lease_ms);
    site_factory factory = [](caf::local_actor* parent, const runtime_context&,
                              const site_config&) {
      return parent->spawn<caf::linked>(noop_site);
    };
    auto t0 = clock_type::now();
    auto supervisor = sys.spawn(supervisor_behavior, ctx, store_handle, restic_actor{},
                                sync_actor{}, factory, std::int64_t{0});
    // The end of the last job is in the database: poll for it (a cheap read).
    while (count_status(check, "success") < p.jobs) {
      if (clock_type::now() - t0 > std::chrono::seconds{600})
        die("the runtime did not finish the jobs in 600 s");
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    r.seconds = std::chrono::duration<double>(clock_type::now() - t0).count();
    caf::anon_send_exit(supervisor, caf::exit_reason::kill);
    caf::anon_send_exit(store_handle, caf::exit_reason::user_shutdown);
  }
  r.begins = counter.begins;
  r.statements = counter.statements;
  r.by_sql = counter.by_sql;
  if (count_status(check, "success") != p.jobs)
    die(fmt::format("runtime benchmark: {} of {} jobs succeeded",
                    count_status(check, "success"), p.jobs));
  return r;
}

// -- (c) resident memory of an idle daemon ----------------------------------------

/// True when GET /metrics on 127.0.0.1:port answers 200; the body size in *bytes.
bool metrics_answer(int port, std::size_t* bytes) {
  auto resp = http_exchange(port, "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
  bool ok = resp.rfind("HTTP/1.", 0) == 0 && resp.find(" 200 ") != std::string::npos;
  if (ok && bytes) {
    auto body = resp.find("\r\n\r\n");
    *bytes = body == std::string::npos ? 0 : resp.size() - body - 4;
  }
  return ok;
}

/// Sums Rss of /proc/PID/smaps by mapping kind: heap, thread stacks and
/// other anonymous memory, and each shared library (the largest are named).
std::vector<std::pair<std::string, long>> rss_by_mapping(pid_t pid) {
  std::ifstream in{fmt::format("/proc/{}/smaps", pid)};
  std::map<std::string, long> sums;
  std::string line, current;
  while (std::getline(in, line)) {
    if (!line.empty() && std::isxdigit(static_cast<unsigned char>(line[0])) &&
        line.find('-') < line.find(' ')) {
      std::istringstream ls{line};
      std::string range, perms, offset, dev, inode, name;
      ls >> range >> perms >> offset >> dev >> inode;
      std::getline(ls, name);
      name.erase(0, name.find_first_not_of(' '));
      if (name.empty())
        current = "[anon]";
      else
        current = fs::path(name).filename().string();
      continue;
    }
    if (line.rfind("Rss:", 0) == 0)
      sums[current] += std::strtol(line.c_str() + 4, nullptr, 10);
  }
  std::vector<std::pair<std::string, long>> out(sums.begin(), sums.end());
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.second > b.second; });
  return out;
}

struct daemon_sample {
  long rss_kb = 0, anon_kb = 0, file_kb = 0, threads = 0;
  double ready_seconds = 0;      ///< start until /metrics answered
  std::size_t metrics_bytes = 0; ///< size of the /metrics page
  std::vector<std::pair<std::string, long>> mappings;
};

/// A config with `n` sites, each with a directory and a sqlite_dump target,
/// pointing at a closed port (127.0.0.1:1); every interval 0 so nothing runs.
std::string daemon_config(const params& p, const temp_dir& dir, int n, int port) {
  std::string sites;
  for (int i = 0; i < n; ++i)
    sites += fmt::format(
        R"({}{{"name": "edge-{:04}", "host": "127.0.0.1", "port": 1, "user": "root",
  "targets": [{{"mode": "directory", "path": "/srv/data"}},
              {{"mode": "sqlite_dump", "path": "/srv/app.db"}}]}})",
        i ? ",\n" : "", i);
  return fmt::format(R"({{
  "staging_root": "{0}/staging",
  "restic_repo_path": "{0}/repo",
  "restic_password_file": "{0}/restic.pass",
  "database_path": "{0}/satoru.db",
  "plugin_dir": "{1}",
  "metrics_listen": "127.0.0.1:{2}",
  "site_scan_interval_hours": 0,
  "restic_retention_interval_hours": 0,
  "restic_sync_interval_hours": 0,
  "ssh": {{"identity_file": "{0}/id_ed25519", "known_hosts_file": "{0}/known_hosts"}},
  "sites": [
{3}
  ]
}}
)",
                     dir.path(), p.plugin_dir, port, sites);
}

daemon_sample measure_daemon(const params& p, int n_sites) {
  temp_dir dir{p.work_root, "satoru-bench-daemon"};
  int port = free_port();
  write_file(dir / "satoru.json", daemon_config(p, dir, n_sites, port));
  write_file(dir / "restic.pass", "bench-password\n");
  write_file(dir / "id_ed25519", "not a key: the sites are never contacted\n");
  write_file(dir / "known_hosts", "");
  auto log = dir / "daemon.log";
  auto t0 = clock_type::now();
  pid_t pid = spawn_daemon(p.satoru, dir / "satoru.json", log);

  daemon_sample s;
  bool ready = false;
  while (clock_type::now() - t0 < std::chrono::seconds{120}) {
    if (exited(pid)) {
      std::ifstream in{log};
      std::stringstream text;
      text << in.rdbuf();
      die(fmt::format("satoru daemon ({} sites) exited early; its log:\n{}", n_sites,
                      text.str()));
    }
    if (metrics_answer(port, nullptr)) {
      ready = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{50});
  }
  s.ready_seconds = std::chrono::duration<double>(clock_type::now() - t0).count();
  if (ready) {
    std::this_thread::sleep_for(std::chrono::seconds{p.settle_seconds});
    metrics_answer(port, &s.metrics_bytes);
    // The scrape above allocated; give the allocator a moment like a real
    // scrape interval would, then read the resident size.
    std::this_thread::sleep_for(std::chrono::seconds{1});
    auto st = proc_status(pid);
    s.rss_kb = st["VmRSS"];
    s.anon_kb = st["RssAnon"];
    s.file_kb = st["RssFile"];
    s.threads = st["Threads"];
    s.mappings = rss_by_mapping(pid);
  }
  stop_daemon(pid);
  if (!ready)
    die(fmt::format("satoru daemon ({} sites) never answered /metrics", n_sites));
  return s;
}

struct daemon_summary {
  int sites = 0;
  std::vector<double> rss_mb, anon_mb, file_mb, ready_s;
  long threads = 0;
  std::size_t metrics_bytes = 0;
  std::vector<std::pair<std::string, long>> mappings; ///< of the median run
};

daemon_summary daemon_series(const params& p, int n_sites) {
  daemon_summary d;
  d.sites = n_sites;
  std::vector<daemon_sample> samples;
  for (int i = 0; i < p.daemon_runs; ++i) {
    auto s = measure_daemon(p, n_sites);
    d.rss_mb.push_back(static_cast<double>(s.rss_kb) / 1024.0);
    d.anon_mb.push_back(static_cast<double>(s.anon_kb) / 1024.0);
    d.file_mb.push_back(static_cast<double>(s.file_kb) / 1024.0);
    d.ready_s.push_back(s.ready_seconds);
    d.threads = s.threads;
    d.metrics_bytes = s.metrics_bytes;
    samples.push_back(std::move(s));
  }
  std::sort(samples.begin(), samples.end(),
            [](auto& a, auto& b) { return a.rss_kb < b.rss_kb; });
  d.mappings = samples[samples.size() / 2].mappings;
  return d;
}

// -- output ------------------------------------------------------------------------

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
    if (a == "--jobs")
      p.jobs = std::stoi(value());
    else if (a == "--sites")
      p.sites = std::stoi(value());
    else if (a == "--concurrency")
      p.concurrency = std::stoi(value());
    else if (a == "--runs")
      p.runs = std::stoi(value());
    else if (a == "--daemon-sites")
      p.daemon_sites = std::stoi(value());
    else if (a == "--daemon-runs")
      p.daemon_runs = std::stoi(value());
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
    else if (a == "--diagnose")
      p.diagnose = true;
    else if (a == "-h" || a == "--help") {
      std::cout << "usage: satoru_queue_bench [--runs N] [--jobs N] [--sites N] "
                   "[--concurrency N]\n"
                   "         [--daemon-sites N] [--daemon-runs N] [--settle S] "
                   "[--skip-daemon]\n"
                   "         [--diagnose] [--satoru PATH] [--plugin-dir DIR] [--summary "
                   "FILE]\n";
      std::exit(0);
    } else
      die("unknown argument " + a);
  }
  if (p.jobs < 1 || p.sites < 1 || p.concurrency < 1 || p.runs < 1 || p.daemon_runs < 1)
    die("counts must be positive");
  return p;
}

} // namespace

int main(int argc, char** argv) {
  program = "satoru_queue_bench";
  pending_removals(); // constructed before the handler is registered, so it outlives it
  std::atexit(remove_pending);
  auto p = parse_args(argc, argv);
  summary_writer summary{"queue", p.summary};
  // The runtime logs two lines per job, as in the daemon; they go to a file so
  // that the cost stays in (b) without flooding the terminal.
  temp_dir logs{p.work_root, "satoru-bench-log"};
  auto logger = spdlog::basic_logger_mt("satoru", logs / "runtime.log");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %l %v");

  std::cout << fmt::format("satoru_queue_bench: {} jobs over {} sites, "
                           "job_worker_concurrency {}, {} runs each, "
                           "{} cores\n",
                           p.jobs, p.sites, p.concurrency, p.runs,
                           std::thread::hardware_concurrency());

  // (a) and (b) alternate so that machine noise hits both alike.
  std::vector<double> store_s, runtime_s;
  for (int i = 0; i < p.runs; ++i) {
    {
      temp_dir d{p.work_root, "satoru-bench-store"};
      store_s.push_back(run_store_only(p, d.path(), false).seconds);
    }
    {
      temp_dir d{p.work_root, "satoru-bench-runtime"};
      runtime_s.push_back(run_runtime(p, d.path(), false).seconds);
    }
    std::cout << fmt::format("  run {}: store {:.3f} s, runtime {:.3f} s\n", i + 1,
                             store_s.back(), runtime_s.back());
  }
  // One untimed run each with statement tracing: store round trips per job.
  run_result traced_store, traced_runtime;
  {
    temp_dir d{p.work_root, "satoru-bench-store"};
    traced_store = run_store_only(p, d.path(), true);
  }
  {
    temp_dir d{p.work_root, "satoru-bench-runtime"};
    traced_runtime = run_runtime(p, d.path(), true);
  }

  auto a = median(store_s), b = median(runtime_s);
  double jobs = p.jobs;
  double overhead_ms = (b - a) / jobs * 1000.0;
  std::cout << "\n(a) store only (claim BEGIN IMMEDIATE + finish)\n";
  std::cout << fmt::format("    wall s: {}   median {:.3f} s = {:.0f} jobs/s\n",
                           join(store_s, "{:.3f}"), a, jobs / a);
  std::cout << fmt::format(
      "    write transactions per job {:.2f}, statements per job {:.1f}\n",
      static_cast<double>(traced_store.begins) / jobs,
      static_cast<double>(traced_store.statements) / jobs);
  std::cout << "(b) actor runtime, no-op sites\n";
  std::cout << fmt::format("    wall s: {}   median {:.3f} s = {:.0f} jobs/s\n",
                           join(runtime_s, "{:.3f}"), b, jobs / b);
  std::cout << fmt::format(
      "    write transactions per job {:.2f}, statements per job {:.1f}\n",
      static_cast<double>(traced_runtime.begins) / jobs,
      static_cast<double>(traced_runtime.statements) / jobs);
  // Where the extra store work of the runtime comes from.
  std::vector<std::pair<double, std::string>> extra;
  for (const auto& [sql, n] : traced_runtime.by_sql) {
    auto it = traced_store.by_sql.find(sql);
    auto diff =
        static_cast<double>(n - (it == traced_store.by_sql.end() ? 0 : it->second)) /
        jobs;
    if (diff >= 0.05) extra.emplace_back(diff, sql);
  }
  std::sort(extra.rbegin(), extra.rend());
  for (const auto& [diff, sql] : extra)
    std::cout << fmt::format("      +{:.2f}/job  {}\n", diff, sql);
  std::cout << fmt::format(
      "    ratio runtime/store {:.2f}x; overhead per job {:.3f} ms\n", b / a,
      overhead_ms);
  std::cout << fmt::format(
      "    targets: >= 500 jobs/s: {}; < 5 ms overhead per job: {}\n",
      jobs / b >= 500 ? "met" : "MISSED", overhead_ms < 5 ? "met" : "MISSED");

  summary.row("(a) store: jobs/s (baseline)", fmt::format("{:.0f}", jobs / a), "jobs/s",
              "-", "-");
  summary.row("(b) runtime: jobs/s", fmt::format("{:.0f}", jobs / b), "jobs/s", ">= 500",
              jobs / b >= 500 ? "met" : "MISSED");
  summary.row("(b) runtime/store wall ratio", fmt::format("{:.2f}", b / a), "x", "-",
              "-");
  summary.row("(b) overhead per job", fmt::format("{:.3f}", overhead_ms), "ms", "< 5",
              overhead_ms < 5 ? "met" : "MISSED");

  if (!p.skip_daemon) {
    if (::access(p.satoru.c_str(), X_OK) != 0) die("no satoru binary at " + p.satoru);
    std::vector<int> counts = {1, p.daemon_sites};
    if (p.diagnose) counts = {1, 10, 100, p.daemon_sites};
    std::vector<daemon_summary> series;
    for (auto n : counts)
      series.push_back(daemon_series(p, n));
    std::cout << fmt::format(
        "(c) idle `satoru daemon` resident memory, median of {} starts, "
        "{} s after /metrics answered\n",
        p.daemon_runs, p.settle_seconds);
    for (const auto& d : series)
      std::cout << fmt::format("    {:>5} sites: VmRSS {} MB (median {:.1f}); RssAnon "
                               "{:.1f} MB, RssFile {:.1f} MB; "
                               "{} threads; /metrics {} KB; ready after {:.2f} s\n",
                               d.sites, join(d.rss_mb, "{:.1f}"), median(d.rss_mb),
                               median(d.anon_mb), median(d.file_mb), d.threads,
                               d.metrics_bytes / 1024, median(d.ready_s));
    const auto& base = series.front();
    const auto& big = series.back();
    double per_site_kb = (median(big.anon_mb) - median(base.anon_mb)) * 1024.0 /
                         std::max(1, big.sites - base.sites);
    std::cout << fmt::format("    ratio {} sites / 1 site: {:.2f}x; anonymous memory per "
                             "extra site {:.1f} KB\n",
                             big.sites, median(big.rss_mb) / median(base.rss_mb),
                             per_site_kb);
    std::cout << fmt::format("    target < 60 MB with {} sites: {}\n", big.sites,
                             median(big.rss_mb) < 60 ? "met" : "MISSED");
    std::cout << fmt::format("    largest mappings with {} sites (Rss, KB):", big.sites);
    for (std::size_t i = 0; i < big.mappings.size() && i < 8; ++i)
      std::cout << fmt::format(" {} {}{}", big.mappings[i].first, big.mappings[i].second,
                               i + 1 < 8 ? ";" : "");
    std::cout << "\n";
    summary.row("(c) daemon RSS, 1 site (baseline)",
                fmt::format("{:.1f}", median(base.rss_mb)), "MB", "-", "-");
    summary.row(fmt::format("(c) daemon RSS, {} sites", big.sites),
                fmt::format("{:.1f}", median(big.rss_mb)), "MB", "< 60",
                median(big.rss_mb) < 60 ? "met" : "MISSED");
    summary.row(fmt::format("(c) ratio {} sites / 1 site", big.sites),
                fmt::format("{:.2f}", median(big.rss_mb) / median(base.rss_mb)), "x", "-",
                "-");
  }
  return 0;
}
