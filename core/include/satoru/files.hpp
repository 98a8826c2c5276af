#pragma once

#include "satoru/error.hpp"

#include <string>
#include <sys/types.h>

namespace satoru {

/// Creates `dir` and its missing parents with `mode` (mkdir -p). Folders
/// that exist keep their mode; a non-folder in the way is an error.
expected<void> make_dirs(const std::string& dir, mode_t mode = 0700);

} // namespace satoru
