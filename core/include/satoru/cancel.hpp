#pragma once

#include <atomic>
#include <chrono>
#include <memory>

namespace satoru {

/// Shared flag that lets an event-based actor stop blocking work running on
/// another thread (a detached actor cannot read its mailbox while it waits on
/// a child process or a socket). Copies share the same flag.
class cancel_token {
public:
  cancel_token() : flag_(std::make_shared<std::atomic<bool>>(false)) {}
  void cancel() const { flag_->store(true); }
  bool cancelled() const { return flag_->load(); }

private:
  std::shared_ptr<std::atomic<bool>> flag_;
};

/// A point in time after which blocking work gives up. Default: never.
class deadline {
public:
  using clock = std::chrono::steady_clock;
  deadline() : at_(clock::time_point::max()) {}
  explicit deadline(clock::time_point at) : at_(at) {}
  static deadline after(std::chrono::milliseconds d) {
    return d.count() <= 0 ? deadline{} : deadline{clock::now() + d};
  }
  bool expired() const { return clock::now() >= at_; }
  bool infinite() const { return at_ == clock::time_point::max(); }
  std::chrono::milliseconds remaining() const {
    if (infinite()) return std::chrono::milliseconds::max();
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(at_ - clock::now());
    return left.count() < 0 ? std::chrono::milliseconds{0} : left;
  }
  /// The earlier of two deadlines.
  deadline min(const deadline& other) const { return at_ < other.at_ ? *this : other; }

private:
  clock::time_point at_;
};

} // namespace satoru
