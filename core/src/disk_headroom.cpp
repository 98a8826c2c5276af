#include "satoru/disk_headroom.hpp"

#include "satoru/time.hpp"

#include <fmt/format.h>

#include <filesystem>
#include <system_error>

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
                             const std::string& role, std::int64_t needed) {
  auto space = fs_space_of(path);
  if (!space) return {}; // unknown: the work itself will say what fails
  const auto keep = min_free_bytes(cfg, space->total);
  if (space->free - needed >= keep) return {};
  auto b = [](std::int64_t n) {
    return format_bytes(static_cast<std::uint64_t>(std::max<std::int64_t>(n, 0)));
  };
  return fmt::format(
      "not enough space on the {} filesystem of {}: {} free, {} needed ({} for this "
      "work + {} that disk_min_free keeps free: percent {}, bytes {})",
      role, path, b(space->free), b(needed + keep), b(needed), b(keep),
      cfg.disk_min_free_percent, cfg.disk_min_free_bytes);
}

std::int64_t tree_bytes(const std::string& path) {
  std::int64_t bytes = 0;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(path, ec), end; !ec && it != end;
       it.increment(ec)) {
    auto st = it->symlink_status(ec);
    if (!ec && fs::is_regular_file(st))
      bytes += static_cast<std::int64_t>(it->file_size(ec));
  }
  return bytes;
}

} // namespace satoru
