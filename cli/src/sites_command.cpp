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
        for (const auto& s : *sites) {
          // Each target's last scan: what an operator checks after a backup
          // (and what a dashboard without Prometheus can read).
          auto targets = db.list_targets(s.id);
          if (!targets) fail(exit_failed, targets.err().message);
          boost::json::array target_list;
          for (const auto& t : *targets)
            target_list.push_back({{"path", t.path},
                                   {"mode", t.mode},
                                   {"hash", t.target_hash},
                                   {"enabled", t.enabled},
                                   {"last_status", t.last_status},
                                   {"last_error", t.last_error},
                                   {"last_bytes", t.last_bytes},
                                   {"last_files", t.last_files},
                                   {"last_duration_ms", t.last_duration_ms},
                                   {"last_data_added", t.last_data_added},
                                   {"last_snapshot_id", t.last_snapshot_id},
                                   {"last_scan_at", format_time(t.last_scan_at)},
                                   {"last_success_at", format_time(t.last_success_at)}});
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
                         {"target_count", s.target_count},
                         {"targets", std::move(target_list)}});
        }
        print_json(out);
        return exit_ok;
      }
      std::cout << fmt::format("{:<20} {:<36} {:<22} {:<8} {:<20} {:<20} {}\n", "NAME",
                               "UUID", "HOST", "HEALTH", "LAST PREFLIGHT", "LAST BACKUP",
                               "TARGETS");
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
