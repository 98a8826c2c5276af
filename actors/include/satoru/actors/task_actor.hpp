#pragma once

#include "satoru/actors/messages.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/typed_actor.hpp>

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

} // namespace satoru::actors
