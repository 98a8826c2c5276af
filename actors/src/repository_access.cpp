#include "satoru/actors/repository_access.hpp"

namespace satoru::actors {

void repository_access::submit(bool exclusive, std::function<void()> start,
                               cancel_token token, std::function<void()> dropped) {
  queue_.push_back({exclusive, std::move(start), std::move(token), std::move(dropped)});
  pump();
}

void repository_access::done(bool exclusive) {
  if (exclusive)
    exclusive_running_ = false;
  else if (shared_running_ > 0)
    --shared_running_;
  pump();
}

void repository_access::sweep() {
  std::deque<pending> kept;
  std::vector<std::function<void()>> dropped;
  for (auto& p : queue_) {
    if (p.token.cancelled())
      dropped.push_back(std::move(p.dropped));
    else
      kept.push_back(std::move(p));
  }
  queue_ = std::move(kept);
  for (auto& d : dropped)
    if (d) d();
  pump();
}

void repository_access::pump() {
  while (!queue_.empty() && !exclusive_running_) {
    auto& next = queue_.front();
    if (next.token.cancelled()) {
      auto dropped = std::move(next.dropped);
      queue_.pop_front();
      if (dropped) dropped();
      continue;
    }
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
