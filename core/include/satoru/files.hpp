#pragma once

#include "satoru/error.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>

namespace satoru {

/// Creates `dir` and its missing parents with `mode` (mkdir -p). Folders
/// that exist keep their mode; a non-folder in the way is an error.
expected<void> make_dirs(const std::string& dir, mode_t mode = 0700);

/// Who a written file belongs to, when not the process writing it (root
/// writing a file the daemon's user must read).
struct file_owner {
  uid_t uid = 0;
  gid_t gid = 0;
};

/// Replaces `path` with `text` atomically: a reader sees the old content or
/// the new, never a half-written file. The text goes into a fresh 0600 temp
/// file beside it, created under a random name with O_CREAT|O_EXCL|O_NOFOLLOW
/// (so a symlink planted in that folder is never followed), given to
/// `owner` when set, synced, then renamed over `path` (a symlink at `path`
/// is replaced, its target never written).
expected<void> write_file_atomically(const std::string& path, std::string_view text,
                                     std::optional<file_owner> owner = std::nullopt);

/// The whole content of `path`, or an error naming it.
expected<std::string> read_whole_file(const std::string& path);

/// A fresh private folder (0700, mkdtemp) for one piece of work, removed
/// with everything in it when the object goes (restored snapshots may hold
/// secrets, and a failed step must leave no partial copy behind).
class scratch_folder {
public:
  /// `<parent>/<prefix>XXXXXX`; the parent is created when missing.
  static expected<scratch_folder> create(const std::string& parent,
                                         const std::string& prefix);
  scratch_folder() = default;
  ~scratch_folder();
  scratch_folder(scratch_folder&& other) noexcept;
  scratch_folder& operator=(scratch_folder&& other) noexcept;
  scratch_folder(const scratch_folder&) = delete;
  scratch_folder& operator=(const scratch_folder&) = delete;
  const std::string& path() const { return path_; }

private:
  std::string path_;
};

} // namespace satoru
