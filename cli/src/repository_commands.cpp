#include "cli_context.hpp"

#include "satoru/repository_ops.hpp"

#include <optional>

namespace satoru::cli {

namespace {

/// `satoru prune`, `sync` and `check`: queue a repository job, optionally
/// wait. With an `offsite_type`, `--offsite` queues that one instead (the
/// same work on restic_b2_repository).
void add_repository_job_command(CLI::App& app, global_options& opts, command_runner& run,
                                const std::string& name, job_type local_type,
                                const std::string& description,
                                std::optional<job_type> offsite_type = std::nullopt) {
  auto wait = std::make_shared<bool>(false);
  auto offsite = std::make_shared<bool>(false);
  auto cmd = app.add_subcommand(name, description);
  if (offsite_type)
    cmd->add_flag("--offsite", *offsite,
                  "the off-site repository (restic_b2_repository) instead of the local "
                  "one");
  cmd->add_flag(
      "--wait", *wait,
      "follow the job's events and exit with its status; runs it in this process "
      "when no daemon is alive");
  cmd->add_flag("--json", opts.json, "print events as JSON lines");
  cmd->callback([&, wait, offsite, local_type, offsite_type] {
    run = [&, wait, offsite, local_type, offsite_type]() -> int {
      auto cfg = load_config_or_exit(opts);
      const auto type = *offsite ? *offsite_type : local_type;
      if (auto ok = check_repository_job(cfg, type); !ok)
        fail(exit_usage, ok.err().message);
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
      "queue a retention job: restic forget with the policy, then prune",
      job_type::offsite_retention);
}

void add_check_command(CLI::App& app, global_options& opts, command_runner& run) {
  add_repository_job_command(
      app, opts, run, "check", job_type::check,
      "queue a restic check of the local repository (reading check_read_data_subset "
      "of its data)",
      job_type::offsite_check);
}

void add_drill_command(CLI::App& app, global_options& opts, command_runner& run) {
  add_repository_job_command(
      app, opts, run, "drill", job_type::restore_drill,
      "queue a restore drill: restore the least recently verified target's latest "
      "snapshot into scratch space and verify it");
}

void add_sync_command(CLI::App& app, global_options& opts, command_runner& run) {
  add_repository_job_command(
      app, opts, run, "sync", job_type::restic_sync,
      "queue a copy of the local repository to restic_b2_repository");
}

} // namespace satoru::cli
