#pragma once

/// Disk headroom: whether work that will write `needed` bytes on a
/// filesystem leaves the free space disk_min_free asks for, checked before
/// the work starts rather than found by ENOSPC halfway through.

#include "satoru/config.hpp"
#include "satoru/error.hpp"

#include <cstdint>
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
std::string headroom_problem(const config& cfg, const std::string& path,
                             const std::string& role, std::int64_t needed);

/// Bytes of the regular files below `path` (0 when it does not exist).
std::int64_t tree_bytes(const std::string& path);

} // namespace satoru
