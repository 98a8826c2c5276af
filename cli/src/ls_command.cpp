#include "cli_context.hpp"
#include "snapshot_support.hpp"

#include "satoru/restic.hpp"
#include "satoru/time.hpp"

#include <boost/json.hpp>
#include <fmt/format.h>

#include <iostream>

namespace satoru::cli {

namespace {

struct ls_args {
  std::string site;
  std::string target;
  std::string snapshot = "latest";
  std::string path;
};

void print_table(const std::vector<snapshot_node>& nodes) {
  std::cout << fmt::format("{:<8} {:<5} {:<11} {:>12} {:<20} {}\n", "TYPE", "MODE",
                           "OWNER", "SIZE", "MTIME", "PATH");
  for (const auto& n : nodes)
    std::cout << fmt::format("{:<8} {:04o}  {:<11} {:>12} {:<20} {}\n", n.type, n.mode,
                             fmt::format("{}:{}", n.uid, n.gid),
                             n.type == "file" ? std::to_string(n.size) : "-",
                             format_time(n.mtime_ms), terminal_safe(n.path));
}

} // namespace

void add_ls_command(CLI::App& app, global_options& opts, command_runner& run) {
  auto args = std::make_shared<ls_args>();
  auto cmd = app.add_subcommand("ls", "list the files of a target's snapshot");
  cmd->add_option("site", args->site, "site name")->required();
  cmd->add_option("target", args->target, "the target's path or target hash")->required();
  cmd->add_option("path", args->path,
                  "only this file or folder (and what is below it), relative to the "
                  "target's root");
  cmd->add_option("--snapshot", args->snapshot,
                  "snapshot id (or a unique prefix) of that target, or \"latest\"")
      ->capture_default_str();
  cmd->add_flag("--json", opts.json, "print JSON");
  cmd->callback([&, args] {
    run = [&, args]() -> int {
      const named_target named{opts, args->site, args->target};
      const auto& [cfg, site, target] = std::tie(named.cfg, named.site, named.target);
      auto path = args->path.empty() ? std::string{} : relative_snapshot_path(args->path);
      auto client = local_restic(cfg);
      auto snap = resolve_snapshot_or_exit(client, cfg, site, target, args->snapshot);
      auto listed = client.ls(snap.id);
      if (!listed) fail(exit_failed, listed.err().message);
      auto nodes = nodes_below(std::move(*listed), path);
      if (!path.empty() && nodes.empty())
        fail(exit_usage, fmt::format("snapshot {} of {} has no \"{}\"", snap.short_id,
                                     target.path, path));
      if (opts.json) {
        boost::json::array out;
        for (const auto& n : nodes)
          out.push_back(snapshot_node_json(n));
        print_json(out);
      } else {
        print_table(nodes);
      }
      return exit_ok;
    };
  });
}

} // namespace satoru::cli
