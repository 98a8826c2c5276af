#include "satoru/process.hpp"

#include <sys/stat.h>

#include <map>
#include <mutex>
#include <tuple>

namespace satoru {
namespace {

std::string first_nonempty_line(const std::string& text) {
  std::size_t begin = 0;
  while (begin < text.size()) {
    std::size_t end = text.find_first_of("\r\n", begin);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(begin, end - begin);
    auto first = line.find_first_not_of(" \t");
    if (first != std::string::npos) {
      auto last = line.find_last_not_of(" \t");
      return line.substr(first, last - first + 1);
    }
    begin = end + 1;
  }
  return {};
}

expected<std::string> probe_version(const std::string& program,
                                    const std::vector<std::string>& args) {
  process_spec spec;
  spec.argv.push_back(program);
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  spec.timeout = std::chrono::seconds(10);
  spec.capture_limit = 64 * 1024;
  auto run = run_process(spec);
  if (!run) return run.err();
  const process_result& r = *run;
  if (r.timed_out) return error{errc::timeout, r.describe(program)};
  if (!r.ok()) return error{errc::tool, r.describe(program)};
  std::string line = first_nonempty_line(r.out);
  if (line.empty()) line = first_nonempty_line(r.err);
  if (line.empty()) return error{errc::tool, program + " printed no version"};
  return line;
}

/// Which file a probe ran: a tool replaced in place (an upgrade, a wrapper
/// put first in PATH) gets another identity and is probed again.
using file_identity = std::tuple<dev_t, ino_t, off_t, std::int64_t, std::int64_t>;

std::int64_t nanoseconds(const timespec& t) {
  return std::int64_t{t.tv_sec} * 1'000'000'000 + t.tv_nsec;
}

struct version_cache {
  std::mutex mutex;
  /// (resolved path, arguments) -> (identity of that file, version line)
  std::map<std::pair<std::string, std::vector<std::string>>,
           std::pair<file_identity, std::string>>
      entries;
};

version_cache& cache() {
  static version_cache instance;
  return instance;
}

} // namespace

expected<std::string> tool_version(const std::string& program,
                                   const std::vector<std::string>& args) {
  const std::string path = find_in_path(program);
  struct stat st {};
  if (path.empty() || ::stat(path.c_str(), &st) != 0)
    return probe_version(program, args); // its error names what is missing
  const file_identity identity{st.st_dev, st.st_ino, st.st_size, nanoseconds(st.st_mtim),
                               nanoseconds(st.st_ctim)};
  auto key = std::make_pair(path, args);
  {
    std::lock_guard lock{cache().mutex};
    auto it = cache().entries.find(key);
    if (it != cache().entries.end() && it->second.first == identity)
      return it->second.second;
  }
  auto version = probe_version(program, args);
  if (version) {
    std::lock_guard lock{cache().mutex};
    cache().entries[key] = {identity, *version};
  }
  return version;
}

} // namespace satoru
