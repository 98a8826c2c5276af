#pragma once

#include "satoru/actors/interfaces.hpp"
#include "satoru/actors/runtime.hpp"

#include <chrono>
#include <optional>

namespace satoru::actors {

/// Decides when the repository metrics are refreshed. Each refresh runs
/// three restic processes (`cat config`, `snapshots`, `stats`) whose cost
/// grows with the repository; after every job end, a fleet's steady stream
/// of finishing jobs kept them running back to back. So: at once when the
/// last refresh started at least `interval` ago (the first one, an idle
/// daemon), else one refresh when the interval is up, however many jobs
/// ended meanwhile. An urgent request (the end of an off-site copy, whose
/// lag the alerts read) skips the wait but still never runs two at once.
class refresh_gate {
public:
  using clock = std::chrono::steady_clock;
  enum class action { start, wait, none };
  struct decision {
    action what = action::none;
    clock::duration wait{}; ///< for action::wait: ask again after it
  };

  explicit refresh_gate(clock::duration interval)
      : interval_(interval) {}

  /// A refresh is wanted at `now`. On start, the caller starts one (and
  /// calls finished() at its end); on wait, it asks again (timer_fired())
  /// after `wait`; none: one already runs or is scheduled, it covers this.
  decision want(clock::time_point now, bool urgent = false);
  /// The scheduled wait is over: what to do now.
  decision timer_fired(clock::time_point now);
  /// The running refresh ended: what to do for the requests that came meanwhile.
  decision finished(clock::time_point now);

private:
  decision start(clock::time_point now);
  clock::duration interval_;
  std::optional<clock::time_point> last_start_;
  bool running_ = false;
  bool scheduled_ = false;
  bool again_ = false;
  bool again_urgent_ = false;
};

/// The least time between two repository metrics refreshes that are not
/// urgent (see refresh_gate).
inline constexpr std::chrono::seconds repository_metrics_interval{60};

struct sync_state {
  static inline const char* name = "sync";
  runtime_context ctx;
  store_actor store;
  restic_actor restic;
  std::string repository; ///< redacted off-site repository ("" = sync off)
  sync_state_row last;    ///< the sync_state row as we last wrote/read it
  refresh_gate refresh{repository_metrics_interval};
  bool adopted = false; ///< a context was taken (start-up)
  /// A reload's context, waiting for the running off-site copy to end.
  std::optional<runtime_context> pending;
};

/// The singleton that owns the off-site repository (see sync_actor).
sync_actor::behavior_type sync_behavior(sync_actor::stateful_pointer<sync_state> self,
                                        runtime_context first, store_actor store,
                                        restic_actor restic);

} // namespace satoru::actors
