#pragma once

#include "satoru/cancel.hpp"

#include <deque>
#include <functional>

namespace satoru::actors {

/// Orders the work on one restic repository. Shared work (snapshots, copies,
/// listings) runs side by side; exclusive work (initialisation, retention)
/// starts only when nothing runs and holds back everything queued after it,
/// so it is never starved and never overlaps. restic 0.14 has no lock retry:
/// without this our own locks would fail our own jobs.
class repository_access {
public:
  /// Queues work; `start` is called (now or later, from submit(), done() or
  /// sweep()) when the rules allow. The caller reports its end with done().
  /// Work whose `token` is cancelled before it starts never starts:
  /// `dropped` is called instead (by the pass that finds it).
  void submit(bool exclusive, std::function<void()> start, cancel_token token = {},
              std::function<void()> dropped = {});
  /// Drops waiting work whose token was cancelled (its job ended while it
  /// waited), then starts what the rules allow.
  void sweep();
  /// Work started by this object has ended.
  void done(bool exclusive);

  int shared_running() const { return shared_running_; }
  bool exclusive_running() const { return exclusive_running_; }
  std::size_t waiting() const { return queue_.size(); }

private:
  void pump();

  struct pending {
    bool exclusive = false;
    std::function<void()> start;
    cancel_token token;
    std::function<void()> dropped;
  };
  std::deque<pending> queue_;
  int shared_running_ = 0;
  bool exclusive_running_ = false;
};

} // namespace satoru::actors
