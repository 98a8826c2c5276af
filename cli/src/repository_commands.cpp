#include "cli_context.hpp"

namespace satoru::cli {

namespace {

/// `satoru prune` and `satoru sync`: queue a repository job, optionally wait.
void add_repository_job_command(CLI::App& app, global_options& opts, command_runner& run,
                                const std::string& name, job_type type,
                                const std::string& description) {
  auto wait = std::make_shared<bool>(false);
  auto cmd = app.add_subcommand(name, description);
  cmd->add_flag(
      "--wait", *wait,
      "follow the job's events and exit with its status; runs it in this process "
      "when no daemon is alive");
  cmd->add_flag("--json", opts.json, "print events as JSON lines");
  cmd->callback([&, wait, type, name] {
    run = [&, wait, type, name]() -> int {
      auto cfg = load_config_or_exit(opts);
      if (type == job_type::restic_sync && !cfg.restic_b2_repository)
        fail(exit_usage,
             cfg.file + ": /restic_b2_repository: not set; off-site sync is off");
      auto db = open_store_or_exit(cfg);
      return queue_job(cfg, db, type, 0, "a " + std::string{to_string(type)} + " job",
                       *wait, opts.json);
    };
  });
}

} // namespace

void add_prune_command(CLI::App& app, global_options& opts, command_runner& run) {
  add_repository_job_command(
      app, opts, run, "prune", job_type::retention,
      "queue a retention job: restic forget with the policy, then prune");
}

void add_sync_command(CLI::App& app, global_options& opts, command_runner& run) {
  add_repository_job_command(
      app, opts, run, "sync", job_type::restic_sync,
      "queue a copy of the local repository to restic_b2_repository");
}

} // namespace satoru::cli
