#pragma once

#include "satoru/actors/messages.hpp"
#include "satoru/error.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/typed_actor.hpp>

#include <chrono>
#include <functional>
#include <utility>

namespace satoru::actors {

/// A one-shot actor for blocking work (ssh, child processes, disk walks): it
/// is spawned detached (its own thread), answers one run_atom with the
/// function's result and quits. The caller bounds it with a request timeout
/// and stops it early through the cancel token the function watches.
template <class T>
using task_actor = caf::typed_actor<caf::replies_to<run_atom>::with<T>>;

template <class T>
typename task_actor<T>::behavior_type task_behavior(typename task_actor<T>::pointer self,
                                                    std::function<T()> work) {
  return {
      [=](run_atom) -> T {
        T result = work();
        self->quit();
        return result;
      },
  };
}

/// Spawns `work` on its own thread.
template <class T, class Spawner>
task_actor<T> spawn_task(Spawner* self, std::function<T()> work) {
  return self->template spawn<caf::detached>(task_behavior<T>, std::move(work));
}

/// Slack on top of a step's own deadline before its token is cancelled.
inline constexpr std::chrono::seconds task_grace{30};

/// Runs `work` on its own thread and calls `on_done` with its result when it
/// has really stopped: there is no request timeout, so nothing a step started
/// outlives the step. At `limit` + task_grace, `self` receives (expire_atom,
/// token) and cancels the token, which the work watches (its own deadline
/// normally ends it first). A task that dies without answering gives `on_done`
/// an error.
template <class T, class Self, class OnDone>
void run_task(Self* self, std::function<T()> work, cancel_token token,
              std::chrono::seconds limit, OnDone on_done) {
  auto worker = spawn_task<T>(self, std::move(work));
  self->delayed_send(self, limit + task_grace, expire_atom::value, token);
  self->request(worker, caf::infinite, run_atom::value)
      .then([=](T& result) mutable { on_done(expected<T>{std::move(result)}); },
            [=](caf::error& err) mutable {
              on_done(expected<T>{
                  error{errc::plugin, "its task died: " + self->system().render(err)}});
            });
}

} // namespace satoru::actors
