#include "satoru/capped_gunzip.hpp"

#include "satoru/text.hpp"
#include "satoru/time.hpp"

#include <fmt/format.h>

#include <sys/stat.h>

namespace satoru {

namespace {
constexpr const char* gzip_failed_marker = "satoru-gzip-failed ";
}

process_spec capped_gunzip(const std::string& gz, const std::string& out,
                           std::uint64_t limit) {
  process_spec spec;
  // A POSIX sh has no pipefail: gzip's own failure is reported on stderr.
  spec.argv = {"sh",
               "-c",
               std::string("{ gzip -dc -- \"$1\" || echo \"") + gzip_failed_marker +
                   "$?\" >&2; } | head -c \"$3\" > \"$2\"",
               "sh",
               gz,
               out,
               std::to_string(limit + 1)};
  return spec;
}

std::string capped_gunzip_problem(const process_result& run, const std::string& out,
                                  std::uint64_t limit) {
  struct stat st {};
  if (::stat(out.c_str(), &st) == 0 && static_cast<std::uint64_t>(st.st_size) > limit)
    return fmt::format("the compressed copy inflates to more than {} (what the edge host "
                       "reported, with slack); stopped there",
                       format_bytes(limit));
  if (!run.ok()) return run.describe("gzip -d");
  if (auto at = run.err.find(gzip_failed_marker); at != std::string::npos)
    return "gzip -d failed: " + capped_output(run.err, 300);
  return {};
}

} // namespace satoru
