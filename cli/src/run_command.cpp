#include "cli_context.hpp"

#include <fmt/format.h>

namespace satoru::cli {

namespace {

struct run_args {
  std::vector<std::string> sites;
  bool all = false;
  std::string job = "backup";
  bool wait = false;
};

/// The sites to queue, each checked against the config before anything is
/// queued: a misspelt name queues nothing.
std::vector<std::string> chosen_sites(const config& cfg, const run_args& args) {
  if (args.all == !args.sites.empty())
    fail(exit_usage, "run: name one or more sites, or --all");
  std::vector<std::string> names;
  if (args.all)
    for (const auto& site : cfg.sites)
      names.push_back(site.name);
  else
    for (const auto& name : args.sites)
      names.push_back(site_or_exit(cfg, name).name);
  if (names.empty())
    fail(exit_usage, fmt::format("run --all: {} has no sites", cfg.file));
  if (args.wait && names.size() > 1)
    fail(exit_usage,
         fmt::format("run: --wait follows one job; {} sites were named", names.size()));
  return names;
}

std::int64_t site_id_or_exit(store& db, const std::string& name) {
  auto site = db.find_site(name);
  if (!site || !*site) fail(exit_failed, "site " + name + " is not in the database");
  return (*site)->id;
}

} // namespace

void add_run_command(CLI::App& app, global_options& opts, command_runner& run) {
  auto args = std::make_shared<run_args>();
  auto cmd = app.add_subcommand(
      "run", "queue a job for one or more sites (or --all) and print each job's id");
  cmd->add_option("site", args->sites, "site names");
  cmd->add_flag("--all", args->all, "every configured site, in config order");
  cmd->add_option("--job", args->job, "job type")
      ->check(CLI::IsMember({"preflight", "backup"}));
  cmd->add_flag(
      "--wait", args->wait,
      "follow the job's events and exit with its status (0 success, 3 warning, "
      "1 failed, or at its first failed attempt, saying when it is retried); runs it "
      "in this process when no daemon is alive; one site only");
  cmd->add_flag("--json", opts.json, "print events as JSON lines");
  cmd->callback([&, args] {
    run = [&, args]() -> int {
      auto cfg = load_config_or_exit(opts);
      auto names = chosen_sites(cfg, *args);
      // One config sync and one database for all the sites.
      auto db = open_store_or_exit(cfg);
      const auto type = *parse_job_type(args->job);
      if (names.size() == 1)
        return queue_job(cfg, db, type, site_id_or_exit(db, names.front()),
                         fmt::format("a {} of {}", args->job, names.front()), args->wait,
                         opts.json);
      for (const auto& name : names)
        enqueue_or_exit(db, type, site_id_or_exit(db, name),
                        fmt::format("a {} of {}", args->job, name));
      if (!daemon_alive(db)) note_no_daemon();
      return exit_ok;
    };
  });
}

} // namespace satoru::cli
