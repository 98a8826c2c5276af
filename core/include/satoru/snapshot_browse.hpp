#pragma once

/// Naming a target, finding one of its snapshots and reading its tree: what
/// `satoru snapshots`, `ls`, `diff` and `restore` and the web console's
/// snapshot pages share, so both answer alike (the console's JSON is the
/// CLI's `--json`).

#include "satoru/config.hpp"
#include "satoru/error.hpp"
#include "satoru/restic.hpp"

#include <boost/json/object.hpp>

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace satoru {

/// The target of `site` named by `text`: its target_hash, or its path
/// (compared lexically normal, so "/srv/data/" names "/srv/data"). nullptr
/// when none matches.
const target_config* find_target(const site_config& site, const std::string& text);

/// The snapshot's time as every listing shows it (UTC,
/// "2024-05-01T08:00:00Z"), or restic's own text when it does not parse.
std::string display_snapshot_time(const snapshot_info& snapshot);

/// A path inside a target's snapshot as the user sees it: relative to the
/// target's root, no leading or trailing '/' ("/etc/app/" -> "etc/app").
std::string relative_snapshot_path(const std::string& path);

/// Sorts oldest first (restic's order, but copied snapshots can interleave).
void sort_by_time(std::vector<snapshot_info>& list);

/// The snapshots of `target` of `site`, oldest first; none when the
/// repository does not exist yet (the first backup creates it).
expected<std::vector<snapshot_info>> target_snapshots(const restic_client& client,
                                                      const site_config& site,
                                                      const target_config& target);

/// The snapshot of `target` the user means: "latest" (its newest) or an id
/// or unique prefix of one of its snapshots. errc::not_found when the target
/// has no snapshot yet or no snapshot of the repository has that id;
/// errc::invalid_argument for a malformed or ambiguous id and for another
/// target's snapshot (the message says whose it is); restic's error when
/// the repository cannot be read.
expected<snapshot_info> resolve_snapshot(const restic_client& client, const config& cfg,
                                         const site_config& site,
                                         const target_config& target,
                                         const std::string& wanted);

/// resolve_snapshot() on listings made elsewhere: `list` holds the target's
/// snapshots oldest first; `everything` lists the whole repository and is
/// asked only when `wanted` is none of them, to say whose snapshot it is.
expected<snapshot_info>
choose_snapshot(const std::vector<snapshot_info>& list, const config& cfg,
                const site_config& site, const target_config& target,
                const std::string& wanted,
                const std::function<expected<std::vector<snapshot_info>>()>& everything);

/// The entries of `nodes` at or below `path` (relative to the target's
/// root; "" = all), with their paths made relative ("etc/app.conf").
std::vector<snapshot_node> nodes_below(std::vector<snapshot_node> nodes,
                                       const std::string& path);

/// One entry as `satoru ls --json` prints it: path, name, type, size, mode
/// ("0644"), uid, gid, mtime.
boost::json::object snapshot_node_json(const snapshot_node& node);

/// One snapshot as `satoru snapshots --json` prints it: id, short_id, time,
/// the site and target its tags name in `cfg` (null when none), their uuid
/// and hash, hostname, paths and tags.
boost::json::object snapshot_json(const config& cfg, const snapshot_info& snapshot);

} // namespace satoru
