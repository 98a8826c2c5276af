#include "cli_context.hpp"

#include "satoru/actors/runtime_host.hpp"
#include "satoru/actors/store_actor.hpp"
#include "satoru/ssh_control.hpp"

#include <fmt/format.h>

#include <atomic>
#include <csignal>
#include <ctime>
#include <iostream>
#include <pthread.h>
#include <pwd.h>
#include <thread>
#include <unistd.h>

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
  // A daemon may be running: its masters are not ours to close here.
  if (auto dir = control_socket_dir(cfg.database_path); prepare_control_socket_dir(dir))
    ctx.control_socket_dir = dir;
  // SIGTERM / SIGINT (Ctrl-C) stop the job the way they stop a daemon's:
  // cancelled, plugins clean up (no temp folder left on the edge host), the
  // job marked interrupted to run again. Blocked before the actor threads
  // start so that they inherit the mask and only sigtimedwait() below sees them.
  sigset_t stop_signals, old_mask;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, &old_mask);
  actors::runtime_host host{
      ctx, std::make_unique<store>(std::move(*host_db)), {false, job_id}};
  std::atomic<bool> done{false};
  std::atomic<int> stop_signal{0};
  std::thread waiter([&] {
    host.wait(std::chrono::hours{24 * 365});
    done = true;
  });
  std::thread signal_watch([&] {
    const timespec tick{0, 200'000'000};
    while (!done) {
      int sig = sigtimedwait(&stop_signals, nullptr, &tick);
      if (sig > 0) {
        stop_signal = sig;
        return;
      }
    }
  });
  auto row = follow_job(db, job_id, json, [&] { return done || stop_signal != 0; });
  if (stop_signal != 0)
    std::cerr << fmt::format("satoru: {}: stopping job {}\n",
                             stop_signal == SIGINT ? "SIGINT" : "SIGTERM", job_id);
  host.stop();
  waiter.join();
  signal_watch.join();
  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  // The runner may have finished between our last read and its exit.
  if (auto again = db.get_job(job_id); again && *again) row = **again;
  if (!is_finished(row.status) && !waits_for_retry(row))
    fail(exit_failed,
         fmt::format("job {} did not finish (status {}){}", job_id, to_string(row.status),
                     row.status == job_status::interrupted
                         ? "; it runs again with the next `satoru run --wait` or daemon"
                         : ""));
  return row;
}

} // namespace

bool daemon_alive(store& db) {
  auto daemon = db.live_daemon(daemon_alive_ms);
  return daemon && *daemon;
}

void note_no_daemon() {
  std::cerr << "satoru: no daemon is running; the job waits for `satoru daemon` "
               "(or use --wait to run it now)\n";
}

std::string cli_requester() {
  const auto* pw = ::getpwuid(::geteuid());
  return "cli:" +
         (pw != nullptr ? std::string{pw->pw_name} : std::to_string(::geteuid()));
}

std::int64_t enqueue_or_exit(store& db, job_type type, std::int64_t site_id,
                             const std::string& what, const std::string& params) {
  auto queued = db.enqueue(type, site_id, params, cli_requester());
  if (!queued) fail(exit_failed, queued.err().message);
  std::cout << queued->id << std::endl;
  if (queued->existing)
    std::cerr << fmt::format("satoru: {} was already queued: job {}\n", what, queued->id);
  return queued->id;
}

int queue_job(const config& cfg, store& db, job_type type, std::int64_t site_id,
              const std::string& what, bool wait, bool json, const std::string& params,
              std::int64_t* job_id) {
  const bool alive = daemon_alive(db);
  // Without a daemon this process is the one that runs the job, so it first
  // does what a daemon does at start-up: re-queue the jobs of dead processes.
  // Otherwise a killed `run --wait` leaves its job "running" and the site
  // blocked until some daemon starts; re-queued, that job is the one
  // enqueue() returns, and this run finishes it.
  if (wait && !alive)
    if (auto ids = db.recover_jobs(actors::runtime_context{}.max_recoveries,
                                   actors::owner_alive);
        ids && !ids->empty())
      std::cerr << fmt::format("satoru: re-queued {} job(s) left by a dead process\n",
                               ids->size());
  auto id = enqueue_or_exit(db, type, site_id, what, params);
  if (job_id) *job_id = id;
  if (!wait) {
    if (!alive) note_no_daemon();
    return exit_ok;
  }
  auto row = alive ? follow_job(db, id, json) : run_in_process(cfg, db, id, json);
  return report_followed(cfg, db, row);
}

} // namespace satoru::cli
