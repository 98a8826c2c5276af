#pragma once

#include "satoru/error.hpp"

#include <string>

namespace satoru {

/// The lock of one target's staging folder, held from the start of its pull
/// until its snapshot ends. It is an flock(2) on `<staging_dir>.lock`: the
/// kernel drops it when its holder dies, so a crashed worker never leaves it
/// behind, and a worker whose lease lapsed but still runs keeps every other
/// job (in this process or another) out of the folder until it has stopped.
class staging_lock {
public:
  /// Takes the lock without waiting; errc::busy when another holder has it.
  static expected<staging_lock> try_acquire(const std::string& staging_dir);

  staging_lock(staging_lock&& other) noexcept;
  staging_lock& operator=(staging_lock&& other) noexcept;
  staging_lock(const staging_lock&) = delete;
  staging_lock& operator=(const staging_lock&) = delete;
  ~staging_lock();

private:
  explicit staging_lock(int fd)
      : fd_(fd) {}
  int fd_ = -1;
};

} // namespace satoru
