#pragma once

/// Helpers shared by `satoru snapshots`, `ls`, `diff` and `restore`: naming a target
/// on the command line and showing restic's snapshot times.

#include "cli_context.hpp"
#include "satoru/config.hpp"
#include "satoru/restic.hpp"

#include <string>
#include <tuple>
#include <vector>

namespace satoru::cli {

/// The target of `site` named by `text`: its target_hash, or its path
/// (compared lexically normal, so "/srv/data/" names "/srv/data"). nullptr
/// when none matches.
const target_config* find_target(const site_config& site, const std::string& text);

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

/// The snapshot's time as every other listing prints it (UTC,
/// "2024-05-01T08:00:00Z"), or restic's own text when it does not parse.
std::string display_snapshot_time(const snapshot_info& snapshot);

/// The snapshot of `target` the user means: "latest" (its newest) or an id
/// or unique prefix of one of its snapshots; else exit 2 naming whose
/// snapshot that id is (exit 1 when the repository cannot be read).
snapshot_info resolve_snapshot_or_exit(const restic_client& client, const config& cfg,
                                       const site_config& site,
                                       const target_config& target,
                                       const std::string& wanted);

/// A path inside a target's snapshot as the user sees it: relative to the
/// target's root, no leading or trailing '/' ("/etc/app/" -> "etc/app").
std::string relative_snapshot_path(const std::string& path);

/// Sorts oldest first (restic's order, but copied snapshots can interleave).
void sort_by_time(std::vector<snapshot_info>& list);

} // namespace satoru::cli
