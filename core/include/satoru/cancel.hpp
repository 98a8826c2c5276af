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
  cancel_token() : state_(std::make_shared<state>()) {}
  void cancel() const { state_->flag.store(true); }
  bool cancelled() const {
    for (auto* s = state_.get(); s; s = s->parent.get())
      if (s->flag.load()) return true;
    return false;
  }
  /// A token that is cancelled with this one, and can also be cancelled
  /// alone (one step of a job hitting its deadline, say).
  cancel_token child() const {
    cancel_token c;
    c.state_->parent = state_;
    return c;
  }

private:
  struct state {
    std::atomic<bool> flag{false};
    std::shared_ptr<state> parent;
  };
  std::shared_ptr<state> state_;
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
