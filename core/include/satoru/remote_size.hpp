#pragma once

/// The size probe of a preflight: how many bytes a pull will read from the
/// edge host, measured in the site's one batched preflight command (no
/// round trip of its own), so that the staging filesystem's headroom is
/// checked against it before the pull instead of meeting ENOSPC halfway.

#include "satoru/plugin.hpp"

#include <chrono>
#include <string>
#include <vector>

namespace satoru {

/// The shell command that prints "bytes N", the apparent size of what
/// `paths` hold (a folder with everything below it; a path that does not
/// exist counts 0), or "unknown". Needs `du` on the edge host: `du -sb`
/// (GNU coreutils), else `du -sk` (POSIX, busybox) in whole KiB.
std::string remote_size_script(const std::vector<std::string>& paths);

/// The check "remote.size" from the probe's answer: ok either way (a host
/// without `du` is still backed up, against a rougher estimate), with
/// remote_bytes set when the size is known. `what` names the measured
/// thing in the message ("/srv/data").
check_result remote_size_check(const std::string& what,
                               const expected<exec_result>& answer);

/// Runs the probe over `shell` (in a preflight: recorded into the batch).
check_result probe_remote_size(remote_shell& shell, const std::string& what,
                               const std::vector<std::string>& paths,
                               std::chrono::milliseconds timeout);

} // namespace satoru
