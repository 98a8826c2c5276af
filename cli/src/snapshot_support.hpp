#pragma once

/// Helpers shared by `satoru snapshots`, `ls`, `diff` and `restore`: naming a target
/// on the command line, exiting with the right code when it names nothing. The
/// lookups themselves are core's (satoru/snapshot_browse.hpp), shared with the
/// web console.

#include "cli_context.hpp"
#include "satoru/config.hpp"
#include "satoru/restic.hpp"
#include "satoru/snapshot_browse.hpp"

#include <string>
#include <tuple>
#include <vector>

namespace satoru::cli {

/// find_target or exit 2 with the site's targets listed.
const target_config& target_or_exit(const site_config& site, const std::string& text);

/// The config and the site and target a command names (`satoru ls|diff|restore
/// SITE TARGET`), or exit 2 naming what is wrong. Neither copied nor moved:
/// `site` and `target` point into its own `cfg`.
struct named_target {
  named_target(const global_options& opts, const std::string& site_name,
               const std::string& target_text)
      : cfg(load_config_or_exit(opts))
      , site(site_or_exit(cfg, site_name))
      , target(target_or_exit(site, target_text)) {}
  named_target(const named_target&) = delete;
  named_target& operator=(const named_target&) = delete;

  const config cfg;
  const site_config& site;
  const target_config& target;
};

/// resolve_snapshot() or exit: 2 naming what the id is not (whose snapshot
/// it is), 1 when the target has no snapshot yet or the repository cannot
/// be read.
snapshot_info resolve_snapshot_or_exit(const restic_client& client, const config& cfg,
                                       const site_config& site,
                                       const target_config& target,
                                       const std::string& wanted);

} // namespace satoru::cli
