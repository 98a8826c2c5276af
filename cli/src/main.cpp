#include "cli_context.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <iostream>
#include <sys/stat.h>

int main(int argc, char** argv) {
  using namespace satoru::cli;
  // Everything we create (database, staging, known_hosts, keys) is private.
  ::umask(077);
  spdlog::set_default_logger(spdlog::stderr_color_mt("satoru"));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");

  CLI::App app{"satoru — pull backups of edge hosts over SSH into restic"};
  app.set_version_flag("--version", std::string{"satoru "} + SATORU_VERSION);
  app.require_subcommand(1);
  app.footer(
      "Exit codes: 0 success, 1 failed (or interrupted, cancelled, or waiting for a "
      "retry), 2 usage or config error, 3 "
      "finished with warnings.\n"
      "Transient failures are retried with backoff and full jitter (config keys "
      "retry_max_attempts, default 4; retry_initial_delay_seconds, 60; "
      "retry_max_delay_seconds, 3600); `satoru sites` shows a pending retry under NEXT "
      "RETRY, `satoru jobs` as \"queued (retry N of M at TIME)\". Finished jobs older "
      "than "
      "job_history_days (90) are deleted by the daemon. sites, jobs, job, snapshots and "
      "plugins only read the database.");
  // Global options work before or after the subcommand:
  // `satoru check-config --config x.json` as well as `satoru --config x.json
  // check-config`.
  app.fallthrough();
  global_options opts;
  app.add_option("--config", opts.config_path,
                 "config file (default: $SATORU_CONFIG, else /etc/satoru/satoru.json)");
  app.add_flag("-v,--verbose", opts.verbose, "log debug details");

  command_runner run;
  add_check_config_command(app, opts, run);
  add_sites_command(app, opts, run);
  add_run_command(app, opts, run);
  add_jobs_command(app, opts, run);
  add_job_command(app, opts, run);
  add_daemon_command(app, opts, run);
  add_trust_command(app, opts, run);
  add_prune_command(app, opts, run);
  add_sync_command(app, opts, run);
  add_check_command(app, opts, run);
  add_drill_command(app, opts, run);
  add_snapshots_command(app, opts, run);
  add_ls_command(app, opts, run);
  add_diff_command(app, opts, run);
  add_restore_command(app, opts, run);
  add_plugins_command(app, opts, run);
  add_web_user_command(app, opts, run);
  add_web_token_command(app, opts, run);
  add_cancel_command(app, opts, run);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? exit_ok : exit_usage;
  }
  // The daemon logs what it does; other commands print their own results
  // and log only problems (their job events are printed already).
  if (opts.verbose)
    spdlog::set_level(spdlog::level::debug);
  else if (!app.got_subcommand("daemon"))
    spdlog::set_level(spdlog::level::warn);
  try {
    return run ? run() : exit_usage;
  } catch (const exit_request& r) {
    return r.code;
  } catch (const std::exception& e) {
    std::cerr << "satoru: unexpected error: " << e.what() << "\n";
    return exit_failed;
  }
}
