#include "satoru/staging_lock.hpp"

#include "satoru/files.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <sys/file.h>
#include <unistd.h>

namespace satoru {

expected<staging_lock> staging_lock::try_acquire(const std::string& staging_dir) {
  auto path = staging_dir + ".lock";
  auto parent = std::filesystem::path(staging_dir).parent_path().string();
  if (auto r = make_dirs(parent); !r) return r.err();
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0)
    return error{errc::io, fmt::format("cannot open the staging lock {}: {}", path,
                                       std::strerror(errno))};
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    auto why = errno;
    ::close(fd);
    if (why == EWOULDBLOCK)
      return error{errc::busy,
                   fmt::format("staging folder {} is in use by another job (its lock "
                               "{} is held); it goes on when that job's worker stops",
                               staging_dir, path)};
    return error{errc::io, fmt::format("cannot lock the staging lock {}: {}", path,
                                       std::strerror(why))};
  }
  return staging_lock{fd};
}

staging_lock::staging_lock(staging_lock&& other) noexcept
    : fd_(other.fd_) {
  other.fd_ = -1;
}

staging_lock& staging_lock::operator=(staging_lock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

staging_lock::~staging_lock() {
  if (fd_ >= 0) ::close(fd_); // closing the last descriptor drops the flock
}

} // namespace satoru
