#include "cli_context.hpp"

#include "satoru/plugin_loader.hpp"

#include <boost/json.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <iostream>

namespace satoru::cli {

namespace {

struct plugins_args {
  std::string plugin_dir;
};

boost::json::object build_json(const plugin_build& b) {
  return {{"satoru_version", b.satoru_version},
          {"compiler", b.compiler},
          {"cxx_abi", b.cxx_abi},
          {"stdlib_abi", b.stdlib_abi},
          {"boost_version", b.boost_version}};
}

} // namespace

void add_plugins_command(CLI::App& app, global_options& opts, command_runner& run) {
  auto args = std::make_shared<plugins_args>();
  auto cmd = app.add_subcommand(
      "plugins",
      "list the target plugins: loaded ones with their modes, refused ones with why");
  cmd->add_option(
      "--plugin-dir", args->plugin_dir,
      "look in this folder instead of the config's plugin_dir (no config needed)");
  cmd->add_flag("--json", opts.json, "print JSON");
  cmd->callback([&, args] {
    run = [&, args]() -> int {
      std::string dir = args->plugin_dir;
      if (dir.empty()) dir = load_config_or_exit(opts).plugin_dir;
      // Not plugins_or_exit: refused plugins are part of this listing, not
      // warnings on stderr.
      auto registry = plugin_registry::shared(dir);
      if (opts.json) {
        boost::json::array loaded, refused;
        for (const auto& p : registry->plugins()) {
          boost::json::array modes;
          for (const auto& m : p.modes)
            modes.emplace_back(m);
          loaded.push_back({{"name", p.name},
                            {"version", p.version},
                            {"file", p.file},
                            {"modes", std::move(modes)},
                            {"abi_version", p.abi_version},
                            {"build", build_json(p.build)}});
        }
        for (const auto& p : registry->problems())
          refused.push_back({{"file", p.file}, {"reason", p.message}});
        print_json(boost::json::object{{"plugin_dir", dir},
                                       {"abi_version", plugin_abi_version},
                                       {"build", build_json(host_build())},
                                       {"plugins", std::move(loaded)},
                                       {"refused", std::move(refused)}});
        return exit_ok;
      }
      const auto& host = host_build();
      std::cout << fmt::format("plugins in {} (satoru plugin ABI version {})\n", dir,
                               plugin_abi_version);
      // What every plugin here was built with: the loader refuses the others.
      std::cout << fmt::format("built for satoru {}, {}, {}, {} ({})\n\n",
                               host.satoru_version, host.cxx_abi, host.stdlib_abi,
                               host.boost_version, host.compiler);
      std::cout << fmt::format("{:<20} {:<10} {:<24} {:<4} {}\n", "NAME", "VERSION",
                               "MODES", "ABI", "FILE");
      for (const auto& p : registry->plugins())
        std::cout << fmt::format("{:<20} {:<10} {:<24} {:<4} {}\n", p.name, p.version,
                                 fmt::format("{}", fmt::join(p.modes, ",")),
                                 p.abi_version, p.file);
      if (registry->plugins().empty()) std::cout << "(no plugin loaded)\n";
      if (!registry->problems().empty()) {
        std::cout << "\nrefused:\n";
        for (const auto& p : registry->problems())
          std::cout << fmt::format("  {}: {}\n", p.file, p.message);
      }
      return exit_ok;
    };
  });
}

} // namespace satoru::cli
