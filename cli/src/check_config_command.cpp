#include "cli_context.hpp"

#include <iostream>

namespace satoru::cli {

void add_check_config_command(CLI::App& app, global_options& opts, command_runner& run) {
  auto cmd =
      app.add_subcommand("check-config", "validate the config file; writes nothing");
  cmd->callback([&] {
    run = [&]() -> int {
      // Reads the config (and stats secret files) only: no database, no folders.
      auto cfg = load_config_or_exit(opts);
      std::size_t targets = 0;
      for (const auto& s : cfg.sites)
        targets += s.targets.size();
      std::cout << cfg.file << ": ok (" << cfg.sites.size() << " sites, " << targets
                << " targets)\n";
      return exit_ok;
    };
  });
}

} // namespace satoru::cli
