#include "cli_context.hpp"

#include "satoru/actors/runtime_host.hpp"

#include <fmt/format.h>

#include <atomic>
#include <iostream>
#include <thread>

namespace satoru::cli {

namespace {

/// A daemon that stopped writing its heartbeat this long ago counts as gone.
constexpr std::int64_t daemon_alive_ms = 15000;

/// Runs one queued job in this process through the same actors as the daemon.
job_row run_in_process(const config& cfg, store& db, std::int64_t job_id, bool json) {
  auto host_db = store::open(cfg.database_path);
  if (!host_db) fail(exit_failed, host_db.err().message);
  actors::runtime_context ctx;
  ctx.cfg = std::make_shared<config>(cfg);
  ctx.plugins = plugins_or_exit(cfg);
  // No metrics: nothing serves them from a short-lived command.
  ctx.owner = make_owner_id();
  actors::runtime_host host{ctx, std::make_unique<store>(std::move(*host_db)),
                            {false, job_id}};
  std::atomic<bool> done{false};
  std::thread waiter([&] {
    host.wait(std::chrono::hours{24 * 365});
    done = true;
  });
  auto row = follow_job(db, job_id, json, [&] { return done.load(); });
  host.stop();
  waiter.join();
  // The runner may have finished between our last read and its exit.
  if (auto again = db.get_job(job_id); again && *again) row = **again;
  if (!is_finished(row.status))
    fail(exit_failed, fmt::format("job {} did not finish (status {})", job_id,
                                  to_string(row.status)));
  return row;
}

} // namespace

int queue_job(const config& cfg, store& db, job_type type, std::int64_t site_id,
              const std::string& what, bool wait, bool json) {
  auto queued = db.enqueue(type, site_id);
  if (!queued) fail(exit_failed, queued.err().message);
  std::cout << queued->id << std::endl;
  if (queued->existing)
    std::cerr << fmt::format("satoru: {} was already queued: job {}\n", what, queued->id);
  auto daemon = db.live_daemon(daemon_alive_ms);
  bool daemon_alive = daemon && *daemon;
  if (!wait) {
    if (!daemon_alive)
      std::cerr << "satoru: no daemon is running; the job waits for `satoru daemon` "
                   "(or use --wait to run it now)\n";
    return exit_ok;
  }
  auto row = daemon_alive ? follow_job(db, queued->id, json)
                          : run_in_process(cfg, db, queued->id, json);
  std::cerr << fmt::format("job {} {}{}\n", row.id, to_string(row.status),
                           row.error.empty() ? "" : ": " + row.error);
  return exit_code_of(row.status);
}

} // namespace satoru::cli
