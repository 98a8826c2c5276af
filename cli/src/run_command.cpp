#include "cli_context.hpp"

#include "satoru/actors/runtime_host.hpp"
#include "satoru/metrics.hpp"

#include <fmt/format.h>

#include <atomic>
#include <iostream>
#include <thread>

namespace satoru::cli {

namespace {

/// Seconds after which a daemon that stopped writing its heartbeat counts as gone.
constexpr std::int64_t daemon_alive_ms = 15000;

struct run_args {
  std::string site;
  std::string job = "backup";
  bool wait = false;
};

/// Runs one queued job in this process through the same actors as the daemon.
job_row run_in_process(const config& cfg, store& db, std::int64_t job_id, bool json) {
  auto host_db = store::open(cfg.database_path);
  if (!host_db) fail(exit_failed, host_db.err().message);
  actors::runtime_context ctx;
  ctx.cfg = std::make_shared<config>(cfg);
  ctx.plugins = plugins_or_exit(cfg);
  ctx.metrics = std::make_shared<metrics>();
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

void add_run_command(CLI::App& app, global_options& opts, command_runner& run) {
  auto args = std::make_shared<run_args>();
  auto cmd = app.add_subcommand("run", "queue a job for a site and print its id");
  cmd->add_option("site", args->site, "site name")->required();
  cmd->add_option("--job", args->job, "job type")->check(CLI::IsMember({"preflight", "backup"}));
  cmd->add_flag("--wait", args->wait,
                "follow the job's events and exit with its status (0 success, 3 warning, "
                "1 failed); runs it in this process when no daemon is alive");
  cmd->add_flag("--json", opts.json, "print events as JSON lines");
  cmd->callback([&, args] {
    run = [&, args]() -> int {
      auto cfg = load_config_or_exit(opts);
      site_or_exit(cfg, args->site);
      auto db = open_store_or_exit(cfg);
      auto site = db.find_site(args->site);
      if (!site || !*site) fail(exit_failed, "site " + args->site + " is not in the database");
      auto type = *parse_job_type(args->job);
      auto queued = db.enqueue(type, (*site)->id);
      if (!queued) fail(exit_failed, queued.err().message);
      std::cout << queued->id << std::endl;
      if (queued->existing)
        std::cerr << fmt::format("satoru: a {} of {} was already queued: job {}\n", args->job,
                                 args->site, queued->id);
      auto daemon = db.live_daemon(daemon_alive_ms);
      bool daemon_alive = daemon && *daemon;
      if (!args->wait) {
        if (!daemon_alive)
          std::cerr << "satoru: no daemon is running; the job waits for `satoru daemon` "
                       "(or use --wait to run it now)\n";
        return exit_ok;
      }
      auto row = daemon_alive ? follow_job(db, queued->id, opts.json)
                              : run_in_process(cfg, db, queued->id, opts.json);
      std::cerr << fmt::format("job {} {}{}\n", row.id, to_string(row.status),
                               row.error.empty() ? "" : ": " + row.error);
      return exit_code_of(row.status);
    };
  });
}

} // namespace satoru::cli
