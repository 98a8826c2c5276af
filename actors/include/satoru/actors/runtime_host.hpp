#pragma once

#include "satoru/actors/interfaces.hpp"
#include "satoru/actors/runtime.hpp"
#include "satoru/store.hpp"

#include <caf/actor_system.hpp>

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace satoru::actors {

/// Starts and stops the actor runtime of one process: the store actor, the
/// restic and sync singletons, the supervisor with one actor per site and,
/// for a daemon, the scheduler.
class runtime_host {
public:
  struct options {
    bool daemon = true;        ///< scheduler + liveness row + recovery
    std::int64_t only_job = 0; ///< in-process mode: run this job, then stop
  };

  /// `db` must be opened by the caller; it moves to the store actor's thread.
  runtime_host(runtime_context ctx, std::unique_ptr<satoru::store> db, options opts);
  ~runtime_host();
  runtime_host(const runtime_host&) = delete;
  runtime_host& operator=(const runtime_host&) = delete;

  /// Asks the supervisor to stop (cancel running jobs, mark them
  /// interrupted) and waits up to `timeout` for it.
  void stop(std::chrono::milliseconds timeout = std::chrono::seconds{10});
  /// Hands a reloaded config to the running runtime (supervisor, site
  /// actors, scheduler, restic and sync singletons): running jobs finish
  /// with the config they started with, new ones use this one. The store
  /// keeps its database (a new database_path takes a restart).
  void reload(const runtime_context& ctx);
  /// Waits until the supervisor quits on its own (in-process mode) or the
  /// timeout passes; true if it quit.
  bool wait(std::chrono::milliseconds timeout);

  supervisor_actor supervisor() const { return supervisor_; }
  caf::actor_system& system() { return system_; }

  /// Why the supervisor or the store actor died on its own (not by stop()):
  /// the runtime cannot go on, and a daemon exits non-zero so that its
  /// service manager restarts it. Empty while both live.
  std::optional<std::string> failure() const;

private:
  runtime_config cfg_;
  caf::actor_system system_;
  store_actor store_;
  restic_actor restic_;
  sync_actor sync_;
  supervisor_actor supervisor_;
  scheduler_actor scheduler_;
  caf::actor watchdog_;
  struct failure_state {
    std::mutex mutex;
    bool stopping = false;
    std::optional<std::string> why;
  };
  std::shared_ptr<failure_state> failure_ = std::make_shared<failure_state>();
  bool stopped_ = false;
};

} // namespace satoru::actors
