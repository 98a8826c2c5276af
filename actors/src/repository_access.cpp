#include "satoru/actors/repository_access.hpp"

namespace satoru::actors {

void repository_access::submit(bool exclusive, std::function<void()> start) {
  queue_.push_back({exclusive, std::move(start)});
  pump();
}

void repository_access::done(bool exclusive) {
  if (exclusive)
    exclusive_running_ = false;
  else if (shared_running_ > 0)
    --shared_running_;
  pump();
}

void repository_access::pump() {
  while (!queue_.empty() && !exclusive_running_) {
    auto& next = queue_.front();
    if (next.exclusive) {
      if (shared_running_ > 0) return;
      exclusive_running_ = true;
    } else {
      ++shared_running_;
    }
    auto start = std::move(next.start);
    queue_.pop_front();
    start();
  }
}

} // namespace satoru::actors
