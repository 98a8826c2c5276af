#include "satoru/files.hpp"

#include <cerrno>
#include <cstring>
#include <sys/stat.h>

namespace satoru {

expected<void> make_dirs(const std::string& dir, mode_t mode) {
  if (dir.empty()) return {};
  struct stat st {};
  if (::stat(dir.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return {};
    return error{errc::io, dir + " exists and is not a folder"};
  }
  auto slash = dir.find_last_of('/');
  if (slash != std::string::npos && slash > 0) {
    auto parent = make_dirs(dir.substr(0, slash), mode);
    if (!parent) return parent;
  }
  if (::mkdir(dir.c_str(), mode) != 0 && errno != EEXIST)
    return error{errc::io, "cannot create folder " + dir + ": " + std::strerror(errno)};
  return {};
}

} // namespace satoru
