#pragma once

// Decoding of restic 0.14's --json output. Only fields documented for 0.14
// are read; unknown fields are ignored so that newer restic versions that add
// fields still parse.

#include "satoru/error.hpp"
#include "satoru/restic.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace satoru::restic_json {

/// The `summary` line of `backup --json`, if `line` is one.
std::optional<backup_summary> parse_backup_summary(std::string_view line);

/// A `{"message_type":"error",...}` line that `backup --json` writes to
/// stderr, as one readable line ("/path: open: permission denied"), if it is one.
std::optional<std::string> parse_error_line(std::string_view line);

/// The array printed by `snapshots --json`.
expected<std::vector<snapshot_info>> parse_snapshots(std::string_view text);

/// The node lines of `ls --json` (one JSON object per line; the snapshot
/// line and anything that is not a node are skipped).
expected<std::vector<snapshot_node>> parse_ls(std::string_view text);

/// The change lines of `diff --json` (statistics and other lines skipped).
expected<std::vector<snapshot_change>> parse_diff(std::string_view text);

/// The array of groups printed by `forget --json`; empty output (restic
/// prints nothing when no snapshot matched) is an empty list.
expected<std::vector<forget_group>> parse_forget(std::string_view text);

/// The object printed by `stats --json`.
expected<repo_stats> parse_stats(std::string_view text);

/// The object printed by `cat lock ID` (its id is not in it: the caller
/// sets `id`). Missing uid/gid mean 0: restic omits them when zero.
expected<restic_lock> parse_lock(std::string_view text);

/// Nanoseconds since the Unix epoch of an RFC 3339 time as restic prints it
/// ("2024-05-01T10:00:00.123456789+02:00"). Needed because restic varies the
/// number of fraction digits, so the strings do not sort as text.
std::optional<std::int64_t> parse_time(std::string_view text);

} // namespace satoru::restic_json
