#pragma once

#include "satoru/error.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace satoru {

/// What a target's staging folder looked like when its last snapshot was
/// taken. Kept beside the folder in `<staging_dir>.snapshot` (0600), so a
/// backup whose pull left staging exactly as it was can skip `restic backup`.
struct snapshot_record {
  std::string fingerprint;   ///< staging_fingerprint() when the snapshot was taken
  std::string snapshot_id;   ///< restic's id of that snapshot
  std::int64_t taken_at = 0; ///< Unix ms
};

/// A SHA-256 over every entry of `dir` (itself included): relative path,
/// type, inode, size, mode, owner, mtime and ctime in nanoseconds, and a
/// symlink's target. Anything rsync or a plugin changes in staging moves a
/// ctime (a chmod that rsync's --stats does not count as a transfer too), so
/// an equal fingerprint means an untouched tree. (Times tick with the
/// kernel's coarse clock, a few ms: safe because the record is taken after
/// a pull has ended, under the staging lock, and the next change comes with
/// a later job.) Entries are hashed in directory order: a reordered folder
/// reads as changed, never the reverse.
expected<std::string> staging_fingerprint(const std::string& dir);

/// The record of `staging_dir`'s last snapshot; nothing when there is none
/// or it cannot be read (then a snapshot is taken).
std::optional<snapshot_record> read_snapshot_record(const std::string& staging_dir);

/// Writes the record atomically (0600).
expected<void> write_snapshot_record(const std::string& staging_dir,
                                     const snapshot_record& record);

/// Removes the record: the next backup takes a snapshot whatever staging holds.
void forget_snapshot_record(const std::string& staging_dir);

/// Whether the local repository at `repo_path` still holds the snapshot
/// whose (short or full) id is `snapshot_id`: a directory listing of its
/// `snapshots/` folder, no restic process.
bool local_repository_has_snapshot(const std::string& repo_path,
                                   const std::string& snapshot_id);

} // namespace satoru
