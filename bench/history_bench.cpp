/// satoru_history_bench — does the state database stay flat over a year?
///
/// Simulates hourly backups of S sites (default 100) for D days (default
/// 365), each job with E events (default 8) as a real backup writes them,
/// and after each simulated day runs the daemon's sweep: store::prune_history
/// with job_history_days (default 90) in batches of 500. Prints the database
/// size (page_count × page_size) every 30 days and the sweep's median time.
/// Timing is reported, never asserted: this is not a test.

#include "satoru/identity.hpp"
#include "satoru/store.hpp"

#include <fmt/format.h>
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

using namespace satoru;

namespace {

[[noreturn]] void die(const std::string& why) {
  std::cerr << "satoru_history_bench: " << why << "\n";
  std::exit(1);
}

std::int64_t pragma(sqlite3* db, const char* name) {
  std::int64_t value = 0;
  auto sql = std::string{"PRAGMA "} + name;
  sqlite3_exec(
      db, sql.c_str(),
      [](void* out, int, char** values, char**) {
        *static_cast<std::int64_t*>(out) = std::stoll(values[0]);
        return 0;
      },
      &value, nullptr);
  return value;
}

void exec(sqlite3* db, const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK)
    die(fmt::format("{}: {}", sql.substr(0, 60), err ? err : "?"));
}

} // namespace

int main(int argc, char** argv) {
  int sites = 100, days = 365, events = 8, keep_days = 90;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    int value = std::atoi(argv[i + 1]);
    if (flag == "--sites")
      sites = value;
    else if (flag == "--days")
      days = value;
    else if (flag == "--events")
      events = value;
    else if (flag == "--history-days")
      keep_days = value;
    else
      die("usage: satoru_history_bench [--sites N] [--days N] [--events N] "
          "[--history-days N]");
  }
  auto dir = std::filesystem::temp_directory_path() /
             fmt::format("satoru-history-bench-{}", ::getpid());
  auto path = (dir / "satoru.db").string();
  auto opened = store::open(path);
  if (!opened) die(opened.err().message);
  auto& db = *opened;
  std::vector<site_config> configured;
  for (int s = 0; s < sites; ++s) {
    site_config c;
    c.name = fmt::format("site-{:04d}", s);
    c.uuid = derive_site_uuid(c.name);
    c.host = "127.0.0.1";
    c.user = "backup";
    configured.push_back(c);
  }
  if (!db.sync_config(configured)) die("syncing sites");
  auto* h = db.handle();
  sqlite3_stmt* job = nullptr;
  sqlite3_stmt* event = nullptr;
  sqlite3_prepare_v2(
      h,
      "INSERT INTO jobs (site_id, type, status, created_at, started_at, "
      "finished_at, attempts, epoch) VALUES (?, 'backup', 'success', ?, ?, "
      "?, 1, ?)",
      -1, &job, nullptr);
  sqlite3_prepare_v2(h,
                     "INSERT INTO job_events (job_id, ts, level, step, target, message) "
                     "VALUES (?, ?, 'ok', 'pull', '0123456789abcdef', 'pulled /srv/data "
                     "(120 files, 4.2 MiB over the wire)')",
                     -1, &event, nullptr);
  const std::int64_t day_ms = 24LL * 3600 * 1000;
  const std::int64_t start = 1'700'000'000'000LL;
  std::int64_t epoch = 0, deleted = 0;
  std::vector<double> sweep_ms;
  std::cout << fmt::format(
      "satoru_history_bench: {} sites, hourly, {} days, {} events per "
      "job, job_history_days {}\n",
      sites, days, events, keep_days);
  std::cout << "day  jobs kept  database size\n";
  for (int d = 0; d < days; ++d) {
    exec(h, "BEGIN");
    for (int hour = 0; hour < 24; ++hour)
      for (int s = 1; s <= sites; ++s) {
        auto t = start + d * day_ms + hour * 3600 * 1000LL;
        sqlite3_bind_int64(job, 1, s);
        sqlite3_bind_int64(job, 2, t);
        sqlite3_bind_int64(job, 3, t);
        sqlite3_bind_int64(job, 4, t + 60'000);
        sqlite3_bind_int64(job, 5, ++epoch);
        if (sqlite3_step(job) != SQLITE_DONE) die(sqlite3_errmsg(h));
        sqlite3_reset(job);
        auto id = sqlite3_last_insert_rowid(h);
        for (int e = 0; e < events; ++e) {
          sqlite3_bind_int64(event, 1, id);
          sqlite3_bind_int64(event, 2, t);
          if (sqlite3_step(event) != SQLITE_DONE) die(sqlite3_errmsg(h));
          sqlite3_reset(event);
        }
      }
    exec(h, "COMMIT");
    // The daemon's sweep at the end of that day.
    auto t0 = std::chrono::steady_clock::now();
    auto before = start + (d + 1) * day_ms - keep_days * day_ms;
    for (;;) {
      auto n = db.prune_history(before, 500);
      if (!n) die(n.err().message);
      deleted += *n;
      if (*n < 500) break;
    }
    sweep_ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
            .count());
    if ((d + 1) % 30 == 0 || d + 1 == days) {
      exec(h, "PRAGMA wal_checkpoint(TRUNCATE)");
      auto bytes = pragma(h, "page_count") * pragma(h, "page_size");
      std::cout << fmt::format("{:>3}  {:>9}  {:>8.1f} MiB\n", d + 1,
                               static_cast<std::int64_t>(d + 1) * 24 * sites - deleted,
                               bytes / 1048576.0);
    }
  }
  sqlite3_finalize(job);
  sqlite3_finalize(event);
  std::sort(sweep_ms.begin(), sweep_ms.end());
  std::cout << fmt::format(
      "daily sweep: median {:.0f} ms, max {:.0f} ms; {} jobs deleted\n",
      sweep_ms[sweep_ms.size() / 2], sweep_ms.back(), deleted);
  std::filesystem::remove_all(dir);
  return 0;
}
