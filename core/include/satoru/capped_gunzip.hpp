#pragma once

/// Inflating a gzip file that came over the network without trusting it: a
/// corrupt or hostile copy could expand far beyond what the edge host said
/// it sent and fill the staging filesystem. The output stops one byte past
/// `limit`, which tells "too big" apart from "exactly the limit".

#include "satoru/process.hpp"

#include <cstdint>
#include <string>

namespace satoru {

/// The local process that inflates `gz` into `out` (created or truncated),
/// writing at most limit + 1 bytes. Needs gzip and head.
process_spec capped_gunzip(const std::string& gz, const std::string& out,
                           std::uint64_t limit);

/// "" when the run of capped_gunzip() left the whole inflated file in `out`;
/// else one line: it would inflate past `limit` (stopped there), or gzip
/// or the write failed.
std::string capped_gunzip_problem(const process_result& run, const std::string& out,
                                  std::uint64_t limit);

} // namespace satoru
