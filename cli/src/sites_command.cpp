#include "cli_context.hpp"

#include <boost/json.hpp>
#include <fmt/format.h>

#include <iostream>

namespace satoru::cli {

namespace {

/// A text field of a site's JSON; "-" for an empty one (never, none).
std::string field(const boost::json::object& site, const char* key) {
  const auto& v = site.at(key);
  if (v.is_string()) return v.get_string().empty() ? "-" : std::string(v.get_string());
  return boost::json::serialize(v);
}

} // namespace

void add_sites_command(CLI::App& app, global_options& opts, command_runner& run) {
  auto cmd = app.add_subcommand("sites", "list configured sites with their health");
  cmd->add_flag("--json", opts.json, "print JSON");
  cmd->callback([&] {
    run = [&]() -> int {
      auto cfg = load_config_or_exit(opts);
      auto db = open_read_only_or_exit(cfg);
      // The table shows what --json prints (and the console's API answers).
      auto sites = sites_json(cfg, db ? &*db : nullptr);
      if (!sites) fail(exit_failed, sites.err().message);
      if (opts.json) {
        print_json(*sites);
        return exit_ok;
      }
      const char* row =
          "{:<20} {:<36} {:<22} {:<8} {:<20} {:<20} {:<20} {:<20} {:<7} {}\n";
      std::cout << fmt::format(fmt::runtime(row), "NAME", "UUID", "HOST", "HEALTH",
                               "LAST PREFLIGHT", "LAST BACKUP", "LAST VERIFIED",
                               "NEXT RETRY", "TARGETS", "RUNNING");
      for (const auto& value : *sites) {
        const auto& s = value.as_object();
        const auto& running = s.at("running");
        std::cout << fmt::format(fmt::runtime(row), field(s, "name"), field(s, "uuid"),
                                 field(s, "host") + ":" + field(s, "port"),
                                 field(s, "health"), field(s, "last_preflight_at"),
                                 field(s, "last_backup_at"), field(s, "last_verified_at"),
                                 field(s, "next_retry_at"), field(s, "target_count"),
                                 running.is_null() ? std::string{"-"}
                                                   : field(running.as_object(), "step"));
      }
      return exit_ok;
    };
  });
}

} // namespace satoru::cli
