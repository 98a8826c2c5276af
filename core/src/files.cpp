#include "satoru/files.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <sys/stat.h>
#include <unistd.h>
#include <utility>

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

expected<void> write_file_atomically(const std::string& path, std::string_view text,
                                     std::optional<file_owner> owner) {
  // mkostemp opens with O_CREAT|O_EXCL (0600) under a name no one could
  // plant anything at beforehand; O_NOFOLLOW says so twice.
  std::string tmp = path + ".tmp.XXXXXX";
  int fd = ::mkostemp(tmp.data(), O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    auto why =
        std::string{"cannot create a temp file in its folder: "} + std::strerror(errno);
    return error{errc::io, "cannot write " + path + ": " + why};
  }
  bool ok = ::fchmod(fd, 0600) == 0;
  if (ok && owner) ok = ::fchown(fd, owner->uid, owner->gid) == 0;
  for (std::size_t done = 0; ok && done < text.size();) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) done += static_cast<std::size_t>(n);
  }
  ok = ok && ::fsync(fd) == 0;
  int e = errno;
  ok = (::close(fd) == 0) && ok;
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    if (ok) e = errno;
    ::unlink(tmp.c_str());
    return error{errc::io, "cannot write " + path + ": " + std::strerror(e)};
  }
  return {};
}

expected<std::string> read_whole_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return error{errc::io, "cannot read " + path + ": " + std::strerror(errno)};
  std::string text;
  char buf[1 << 14];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      ::close(fd);
      return error{errc::io, "cannot read " + path + ": " + std::strerror(e)};
    }
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return text;
}

expected<scratch_folder> scratch_folder::create(const std::string& parent,
                                                const std::string& prefix) {
  if (auto made = make_dirs(parent); !made) return made.err();
  std::string tmpl = parent + "/" + prefix + "XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr)
    return error{errc::io, "cannot create a scratch folder in " + parent + ": " +
                               std::strerror(errno)};
  scratch_folder out;
  out.path_ = std::move(tmpl);
  return out;
}

scratch_folder::~scratch_folder() {
  std::error_code ec;
  if (!path_.empty()) std::filesystem::remove_all(path_, ec);
}

scratch_folder::scratch_folder(scratch_folder&& other) noexcept
    : path_(std::exchange(other.path_, {})) {}

scratch_folder& scratch_folder::operator=(scratch_folder&& other) noexcept {
  if (this != &other) {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
    path_ = std::exchange(other.path_, {});
  }
  return *this;
}

} // namespace satoru
