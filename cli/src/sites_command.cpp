#include "cli_context.hpp"
#include "satoru/time.hpp"

#include <boost/json.hpp>
#include <fmt/format.h>

#include <iostream>

namespace satoru::cli {

void add_sites_command(CLI::App& app, global_options& opts, command_runner& run) {
  auto cmd = app.add_subcommand("sites", "list configured sites with their health");
  cmd->add_flag("--json", opts.json, "print JSON");
  cmd->callback([&] {
    run = [&]() -> int {
      auto cfg = load_config_or_exit(opts);
      auto db = open_store_or_exit(cfg);
      auto sites = db.list_sites();
      if (!sites) fail(exit_failed, sites.err().message);
      if (opts.json) {
        boost::json::array out;
        for (const auto& s : *sites)
          out.push_back({{"name", s.name},
                         {"uuid", s.uuid},
                         {"host", s.host},
                         {"port", s.port},
                         {"user", s.user},
                         {"health", s.health},
                         {"health_reason", s.health_reason},
                         {"last_preflight_at", format_time(s.last_preflight_at)},
                         {"last_backup_at", format_time(s.last_backup_at)},
                         {"last_success_at", format_time(s.last_success_at)},
                         {"targets", s.target_count}});
        print_json(out);
        return exit_ok;
      }
      std::cout << fmt::format("{:<20} {:<36} {:<22} {:<8} {:<20} {:<20} {}\n", "NAME", "UUID",
                               "HOST", "HEALTH", "LAST PREFLIGHT", "LAST BACKUP", "TARGETS");
      for (const auto& s : *sites)
        std::cout << fmt::format("{:<20} {:<36} {:<22} {:<8} {:<20} {:<20} {}\n", s.name,
                                 s.uuid, fmt::format("{}:{}", s.host, s.port), s.health,
                                 format_time(s.last_preflight_at),
                                 format_time(s.last_backup_at), s.target_count);
      return exit_ok;
    };
  });
}

} // namespace satoru::cli
