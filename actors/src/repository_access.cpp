#include "satoru/actors/repository_access.hpp"

#include <algorithm>
#include <thread>

namespace satoru::actors {

repository_access::repository_access(int max_snapshots)
    : max_snapshots_(std::max(1, max_snapshots)) {}

int repository_access::default_max_snapshots() {
  return std::max(2, static_cast<int>(std::thread::hardware_concurrency()));
}

void repository_access::submit(access_kind kind, std::function<void()> start,
                               cancel_token token, std::function<void()> dropped) {
  queue_.push_back({kind, std::move(start), std::move(token), std::move(dropped)});
  pump();
}

void repository_access::done(access_kind kind) {
  if (kind == access_kind::exclusive) {
    exclusive_running_ = false;
  } else {
    if (shared_running_ > 0) --shared_running_;
    if (kind == access_kind::snapshot && snapshots_running_ > 0) --snapshots_running_;
  }
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
  while (start_next()) {
  }
}

bool repository_access::start_next() {
  if (exclusive_running_) return false;
  for (auto it = queue_.begin(); it != queue_.end(); ++it) {
    if (it->token.cancelled()) {
      auto dropped = std::move(it->dropped);
      queue_.erase(it);
      if (dropped) dropped();
      return true;
    }
    if (it->kind == access_kind::exclusive) {
      // Nothing queued behind it starts first; it starts once nothing runs
      // and everything queued before it has started and ended.
      if (it != queue_.begin() || shared_running_ > 0) return false;
      exclusive_running_ = true;
    } else if (it->kind == access_kind::snapshot) {
      if (snapshots_running_ >= max_snapshots_) continue;
      ++snapshots_running_;
      ++shared_running_;
    } else {
      ++shared_running_;
    }
    auto start = std::move(it->start);
    queue_.erase(it);
    start();
    return true;
  }
  return false;
}

} // namespace satoru::actors
