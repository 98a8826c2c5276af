#include "satoru/disk_headroom.hpp"

#include "satoru/time.hpp"

#include <fmt/format.h>

#include <atomic>
#include <filesystem>
#include <system_error>

#include <sys/stat.h>
#include <sys/statvfs.h>

namespace satoru {

namespace fs = std::filesystem;

expected<fs_space> fs_space_of(const std::string& path) {
  fs::path p = fs::absolute(path);
  std::error_code ec;
  while (!fs::exists(p, ec) && p.has_parent_path() && p != p.parent_path())
    p = p.parent_path();
  struct statvfs st {};
  if (::statvfs(p.c_str(), &st) != 0)
    return error{errc::io, "cannot read the free space of " + p.string() + ": " +
                               std::generic_category().message(errno)};
  fs_space out;
  out.free =
      static_cast<std::int64_t>(st.f_bavail) * static_cast<std::int64_t>(st.f_frsize);
  out.total =
      static_cast<std::int64_t>(st.f_blocks) * static_cast<std::int64_t>(st.f_frsize);
  return out;
}

std::int64_t min_free_bytes(const config& cfg, std::int64_t total) {
  auto by_percent = static_cast<std::int64_t>(static_cast<double>(total) *
                                              cfg.disk_min_free_percent / 100.0);
  return std::max(by_percent, cfg.disk_min_free_bytes);
}

std::string headroom_problem(const config& cfg, const std::string& path,
                             const std::string& role, std::int64_t needed,
                             std::int64_t reserved) {
  auto space = fs_space_of(path);
  if (!space) return {}; // unknown: the work itself will say what fails
  const auto keep = min_free_bytes(cfg, space->total);
  if (space->free - needed - reserved >= keep) return {};
  auto b = [](std::int64_t n) {
    return format_bytes(static_cast<std::uint64_t>(std::max<std::int64_t>(n, 0)));
  };
  return fmt::format(
      "not enough space on the {} filesystem of {}: {} free, {} needed ({} for this "
      "work + {}{} that disk_min_free keeps free: percent {}, bytes {})",
      role, path, b(space->free), b(needed + reserved + keep), b(needed),
      reserved > 0 ? b(reserved) + " for work running now + " : std::string{}, b(keep),
      cfg.disk_min_free_percent, cfg.disk_min_free_bytes);
}

namespace {
std::atomic<std::int64_t> reserved_staging_bytes{0};
}

staging_reservation::staging_reservation(std::int64_t bytes)
    : bytes_(bytes) {
  reserved_staging_bytes += bytes_;
}

staging_reservation::~staging_reservation() {
  reserved_staging_bytes -= bytes_;
}

std::int64_t staging_reservation::reserved() {
  return reserved_staging_bytes.load();
}

std::int64_t pull_margin_bytes(std::int64_t remote_bytes) {
  return remote_bytes / 50 + (std::int64_t{1} << 20);
}

std::int64_t pull_needed_bytes(bool whole_copy, std::int64_t remote_bytes,
                               std::int64_t staged_bytes) {
  if (remote_bytes < 0) return whole_copy ? staged_bytes : 0;
  const std::int64_t written =
      whole_copy ? remote_bytes : std::max<std::int64_t>(remote_bytes - staged_bytes, 0);
  return written + pull_margin_bytes(remote_bytes);
}

std::int64_t tree_bytes(const std::string& path,
                        std::optional<std::int64_t> changed_since) {
  std::int64_t bytes = 0;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(path, ec), end; !ec && it != end;
       it.increment(ec)) {
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    const std::int64_t ctime_ms = static_cast<std::int64_t>(st.st_ctim.tv_sec) * 1000 +
                                  st.st_ctim.tv_nsec / 1'000'000;
    if (changed_since && ctime_ms < *changed_since) continue;
    bytes += static_cast<std::int64_t>(st.st_size);
  }
  return bytes;
}

} // namespace satoru
