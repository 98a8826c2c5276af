#include "cli_context.hpp"

#include <fmt/format.h>

namespace satoru::cli {

namespace {

struct run_args {
  std::string site;
  std::string job = "backup";
  bool wait = false;
};

} // namespace

void add_run_command(CLI::App& app, global_options& opts, command_runner& run) {
  auto args = std::make_shared<run_args>();
  auto cmd = app.add_subcommand("run", "queue a job for a site and print its id");
  cmd->add_option("site", args->site, "site name")->required();
  cmd->add_option("--job", args->job, "job type")
      ->check(CLI::IsMember({"preflight", "backup"}));
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
      if (!site || !*site)
        fail(exit_failed, "site " + args->site + " is not in the database");
      return queue_job(cfg, db, *parse_job_type(args->job), (*site)->id,
                       fmt::format("a {} of {}", args->job, args->site), args->wait,
                       opts.json);
    };
  });
}

} // namespace satoru::cli
