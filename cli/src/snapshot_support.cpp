#include "snapshot_support.hpp"

#include "cli_context.hpp"

#include <fmt/format.h>

namespace satoru::cli {

const target_config& target_or_exit(const site_config& site, const std::string& text) {
  if (auto* t = find_target(site, text)) return *t;
  std::string list;
  for (const auto& t : site.targets)
    list +=
        fmt::format("{}{} ({}, {})", list.empty() ? "" : ", ", t.path, t.mode, t.hash);
  fail(exit_usage,
       fmt::format("site {} has no target \"{}\" (give its path or target hash; "
                   "targets: {})",
                   site.name, text, list.empty() ? "none" : list));
}

snapshot_info resolve_snapshot_or_exit(const restic_client& client, const config& cfg,
                                       const site_config& site,
                                       const target_config& target,
                                       const std::string& wanted) {
  auto found = resolve_snapshot(client, cfg, site, target, wanted);
  if (found) return std::move(*found);
  const auto code = found.err().code;
  // "latest" of a target without snapshots: nothing to correct in the command.
  const bool usage =
      (code == errc::invalid_argument || code == errc::not_found) && wanted != "latest";
  fail(usage ? exit_usage : exit_failed, found.err().message);
}

} // namespace satoru::cli
