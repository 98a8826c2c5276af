#pragma once

/// Disk headroom: whether work that will write `needed` bytes on a
/// filesystem leaves the free space disk_min_free asks for, checked before
/// the work starts rather than found by ENOSPC halfway through.

#include "satoru/config.hpp"
#include "satoru/error.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace satoru {

struct fs_space {
  std::int64_t free = 0;  ///< bytes available to unprivileged users (f_bavail)
  std::int64_t total = 0; ///< size of the filesystem
};

/// The filesystem holding `path` (or, when it does not exist yet, its
/// nearest existing parent).
expected<fs_space> fs_space_of(const std::string& path);

/// The free space disk_min_free keeps on a filesystem of `total` bytes: the
/// larger of its percent and its bytes.
std::int64_t min_free_bytes(const config& cfg, std::int64_t total);

/// "" when writing `needed` more bytes on the filesystem of `path` leaves
/// at least min_free_bytes free; else one line naming the filesystem (as
/// `role`, e.g. "staging"), what is free, what is needed and the setting.
/// `reserved`: bytes other work running now was promised there (counted,
/// and named in the line when not 0).
std::string headroom_problem(const config& cfg, const std::string& path,
                             const std::string& role, std::int64_t needed,
                             std::int64_t reserved = 0);

/// The staging bytes a pull may write, estimated before it starts from
/// `remote_bytes` (what the edge host holds, from the preflight's size
/// probe; -1 when unknown) and `staged_bytes` (what staging holds now). A
/// whole copy (a database copied beside its staged copy, then renamed over
/// it) needs all of it; a folder mirrored in place by rsync needs what it
/// grew by. A known size gets a margin (pull_margin_bytes): rsync builds
/// each changed file in full before renaming it, and the edge's data may
/// grow between the probe and the pull. Unknown: the staged size for a whole
/// copy, 0 for a folder (disk_min_free itself is then the only floor).
std::int64_t pull_needed_bytes(bool whole_copy, std::int64_t remote_bytes,
                               std::int64_t staged_bytes);

/// Staging bytes promised to pulls that run now (in this process), so that
/// pulls starting at the same time do not each count the same free space:
/// a pull's check adds what the others reserved, and holds its own estimate
/// until it ends.
class staging_reservation {
public:
  explicit staging_reservation(std::int64_t bytes);
  ~staging_reservation();
  staging_reservation(const staging_reservation&) = delete;
  staging_reservation& operator=(const staging_reservation&) = delete;
  /// What the running pulls reserved in all.
  static std::int64_t reserved();

private:
  std::int64_t bytes_;
};

/// The margin pull_needed_bytes adds to a known size: 2% of it plus 1 MiB.
std::int64_t pull_margin_bytes(std::int64_t remote_bytes);

/// Bytes of the regular files below `path` (0 when it does not exist);
/// with `changed_since` (Unix ms), only of those whose inode changed then or
/// later (written, renamed into place or chmod-ed: what a pull touched).
std::int64_t tree_bytes(const std::string& path,
                        std::optional<std::int64_t> changed_since = std::nullopt);

} // namespace satoru
