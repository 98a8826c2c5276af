#pragma once

#include "satoru/cancel.hpp"

#include <deque>
#include <functional>

namespace satoru::actors {

/// What a piece of repository work needs from the others.
enum class access_kind {
  shared,    ///< runs beside anything but exclusive work (copies, listings, restores)
  snapshot,  ///< shared, but at most max_snapshots() at once
  exclusive, ///< runs alone (initialisation, retention, check)
};

/// Orders the work on one restic repository. Shared work (snapshots, copies,
/// listings) runs side by side; exclusive work (initialisation, retention)
/// starts only when nothing runs and holds back everything queued after it,
/// so it is never starved and never overlaps. restic 0.14 has no lock retry:
/// without this our own locks would fail our own jobs.
///
/// Snapshots are also bounded. Every `restic backup` checks the other
/// processes' lock files as it starts, and restic 0.14 retries loading a lock
/// file that vanished meanwhile for about 42 s before going on: with a fleet's
/// 16 backups at once, one backup in about 200 met another's lock being
/// removed and stood still (seen in the fleet benchmark, both for satoru and
/// the script). Fewer at once make that rarer (it grows with the square of
/// the number), and on a CPU-bound host more would not finish sooner.
class repository_access {
public:
  /// max_snapshots < 1 is taken as 1.
  explicit repository_access(int max_snapshots = default_max_snapshots());

  /// Two, or the number of cores when that is more.
  static int default_max_snapshots();

  /// Queues work; `start` is called (now or later, from submit(), done() or
  /// sweep()) when the rules allow. The caller reports its end with done().
  /// Work whose `token` is cancelled before it starts never starts:
  /// `dropped` is called instead (by the pass that finds it).
  void submit(access_kind kind, std::function<void()> start, cancel_token token = {},
              std::function<void()> dropped = {});
  /// Drops waiting work whose token was cancelled (its job ended while it
  /// waited), then starts what the rules allow.
  void sweep();
  /// Work of this kind started by this object has ended.
  void done(access_kind kind);

  int shared_running() const { return shared_running_; }
  int snapshots_running() const { return snapshots_running_; }
  int max_snapshots() const { return max_snapshots_; }
  bool exclusive_running() const { return exclusive_running_; }
  std::size_t waiting() const { return queue_.size(); }

private:
  void pump();
  /// Starts the waiting work the rules allow, in order: a snapshot over
  /// the bound is passed over (later shared work may start), exclusive work
  /// stops the pass until it has run.
  bool start_next();

  struct pending {
    access_kind kind = access_kind::shared;
    std::function<void()> start;
    cancel_token token;
    std::function<void()> dropped;
  };
  std::deque<pending> queue_;
  int max_snapshots_;
  int shared_running_ = 0; ///< snapshots included
  int snapshots_running_ = 0;
  bool exclusive_running_ = false;
};

} // namespace satoru::actors
