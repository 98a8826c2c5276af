#pragma once

/// Putting a snapshot back on its edge host (`satoru restore --to-host`, a
/// `restore` job): the snapshot is restored into a private scratch folder on
/// the server and sent to the site over its pinned SSH with rsync. Blocking;
/// the restic actor runs it on its own thread, beside snapshots and never
/// during retention or a check, and the site actor only while the site runs
/// nothing else.

#include "satoru/cancel.hpp"
#include "satoru/config.hpp"
#include "satoru/error.hpp"
#include "satoru/job.hpp"
#include "satoru/plugin_host.hpp"
#include "satoru/rsync.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace satoru {

/// What a restore job is asked to do: the job's `params`.
struct host_restore_request {
  std::string target_hash;
  std::string snapshot_id; ///< full id, chosen when the job was queued
  /// The folder the snapshot holds (the staging path it was taken from), as
  /// `restic snapshots` listed it when the job was queued.
  std::string snapshot_path;
  std::vector<std::string> paths; ///< only these, relative to the target's root
  /// Another place on the edge host: a folder for a directory target, a file
  /// for a sqlite_dump one. "" = the target's own folder; for a database
  /// always beside it (`<path>.restored-<UTC time>`).
  std::string dest;
  bool delete_extra = false; ///< --delete: remove what the snapshot does not hold
  bool replace = false; ///< --replace: the restored database takes the live one's place
  bool apply = false;   ///< --yes; otherwise a dry run that changes nothing
  /// --bwlimit in KiB/s for the push: -1 = the target's bwlimit_kbps (the
  /// slow uplink it protects is the same both ways), 0 = unlimited.
  int bwlimit_kbps = -1;

  std::string to_json() const;
  /// The request in a job's params; invalid_argument naming the bad field.
  static expected<host_restore_request> from_json(const std::string& text);
};

/// rsync's itemized list (`-i`) sorted into what a transfer creates, updates
/// (content or attributes) and deletes, by path relative to the target.
struct itemized_changes {
  std::vector<std::string> created, updated, deleted;
  static itemized_changes parse(std::string_view rsync_stdout);
};

/// The step names of a restore's events; `satoru restore` prints the list
/// of the "restore.changes" event (data: created, updated, deleted, applied).
inline constexpr const char* restore_changes_step = "restore.changes";

/// Why `target` cannot be restored back to its edge host ("" when it can):
/// only directory and sqlite_dump targets can, and a database on a `sudo`
/// site cannot yet (its file would arrive as root's, 0600, where the edge
/// user's integrity check and rename cannot reach it). Checked by the CLI
/// before it queues a job and by the job itself.
std::string host_restore_refusal(const target_config& target);

/// What the options of a restore back to the edge host are called where
/// they were given (the CLI's flags, the API's fields), for the messages.
struct host_restore_option_names {
  const char* paths = "--path";
  const char* dest = "--dest";
  const char* delete_extra = "--delete";
  const char* replace = "--replace";
};

/// Why `request` cannot be queued for `target` ("" when it can):
/// host_restore_refusal(), a `dest` that is not absolute or holds `..`, a
/// `dest` of `/` or a top-level system folder (/etc, /usr, ...) with
/// `delete_extra`, `replace` for a folder, `delete_extra` or `paths` for a
/// database. Messages name the
/// options as `names` says. Checked by the CLI and the web console before
/// they queue the job.
std::string host_restore_request_problem(const target_config& target,
                                         const host_restore_request& request,
                                         const host_restore_option_names& names = {});

/// How the push to the edge host transfers: compressed, stopped after
/// silence, and limited to the request's bwlimit_kbps, else the target's.
rsync_transfer_options host_restore_transfer(const target_config& target,
                                             const host_restore_request& request);

/// Runs one attempt of a restore job of `site`: finds the snapshot, checks
/// disk_min_free for the scratch folder, restores into it, then for a
/// directory target pushes it with `rsync -aH --numeric-ids -i` (a dry run
/// without `apply`), and for a sqlite_dump target writes the database beside
/// the live one, checks it on the edge with `PRAGMA integrity_check` and,
/// with `replace`, keeps the old file aside and renames the new one over it.
/// Events under "restore"; the scratch folder is always removed.
job_outcome run_host_restore(const config& cfg, const site_config& site,
                             const host_restore_request& request, event_sink& events,
                             const cancel_token& cancel);

} // namespace satoru
