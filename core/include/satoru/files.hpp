#pragma once

#include "satoru/error.hpp"

#include <string>
#include <string_view>
#include <sys/types.h>

namespace satoru {

/// Creates `dir` and its missing parents with `mode` (mkdir -p). Folders
/// that exist keep their mode; a non-folder in the way is an error.
expected<void> make_dirs(const std::string& dir, mode_t mode = 0700);

/// Replaces `path` with `text` atomically (a 0600 temp file beside it,
/// synced, then renamed over it): a reader sees the old content or the new,
/// never a half-written file.
expected<void> write_file_atomically(const std::string& path, std::string_view text);

/// The whole content of `path`, or an error naming it.
expected<std::string> read_whole_file(const std::string& path);

} // namespace satoru
