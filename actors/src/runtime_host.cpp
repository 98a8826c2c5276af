#include "satoru/actors/runtime_host.hpp"

#include "satoru/actors/restic_actor.hpp"
#include "satoru/actors/scheduler_actor.hpp"
#include "satoru/actors/store_actor.hpp"
#include "satoru/actors/supervisor_actor.hpp"
#include "satoru/actors/sync_actor.hpp"
#include "satoru/plugin_crash.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

namespace satoru::actors {

runtime_host::runtime_host(runtime_context ctx, std::unique_ptr<satoru::store> db,
                           options opts)
    : system_(cfg_) {
  std::shared_ptr<satoru::store> shared{std::move(db)};
  // A plugin that crashed the last process: its note becomes an event of
  // the job it ran, before the recovery queues that job again.
  const auto crash_note = plugin_crash_note_path(ctx.cfg->database_path);
  record_plugin_crashes(*shared, crash_note);
  install_plugin_crash_report(crash_note);
  store_ = system_.spawn<caf::detached>(store_behavior, shared, ctx.owner,
                                        ctx.cfg->metrics_listen, ctx.max_recoveries,
                                        ctx.lease_ms);
  restic_ = system_.spawn(restic_behavior, ctx, store_);
  sync_ = system_.spawn(sync_behavior, ctx, store_, restic_);
  supervisor_ = system_.spawn(supervisor_behavior, ctx, store_, restic_, sync_,
                              default_site_factory(store_, restic_), opts.only_job);
  if (opts.daemon)
    scheduler_ = system_.spawn(scheduler_behavior, ctx, store_, supervisor_);
  // Watches the two actors the runtime cannot live without.
  // Its inputs are spawn arguments, not captures: CAF 0.17 dereferences an
  // empty argument tuple for an actor spawned without arguments (UBSan).
  auto watch = [](caf::event_based_actor* self, std::shared_ptr<failure_state> failure,
                  caf::actor supervisor, caf::actor store) -> caf::behavior {
    self->monitor(supervisor);
    self->monitor(store);
    self->set_down_handler([=](const caf::down_msg& msg) {
      std::lock_guard<std::mutex> guard{failure->mutex};
      if (failure->stopping || failure->why || msg.reason == caf::exit_reason::normal ||
          msg.reason == caf::exit_reason::user_shutdown)
        return;
      auto who =
          msg.source == supervisor.address() ? "the supervisor" : "the store actor";
      failure->why = std::string{who} + " stopped: " + caf::to_string(msg.reason);
    });
    return caf::behavior{[](tick_atom) {}};
  };
  watchdog_ = system_.spawn(watch, failure_, caf::actor_cast<caf::actor>(supervisor_),
                            caf::actor_cast<caf::actor>(store_));
}

std::optional<std::string> runtime_host::failure() const {
  std::lock_guard<std::mutex> guard{failure_->mutex};
  return failure_->why;
}

void runtime_host::reload(const runtime_context& ctx) {
  if (stopped_) return;
  // The repository actors first: work the supervisor claims under the new
  // config then meets their new settings.
  caf::anon_send(restic_, reload_atom::value, ctx);
  caf::anon_send(sync_, reload_atom::value, ctx);
  caf::anon_send(supervisor_, reload_atom::value, ctx);
  if (scheduler_) caf::anon_send(scheduler_, reload_atom::value, ctx);
}

bool runtime_host::wait(std::chrono::milliseconds timeout) {
  caf::scoped_actor self{system_};
  self->monitor(supervisor_);
  bool down = false;
  self->receive([&](const caf::down_msg&) { down = true; }, caf::after(timeout) >> [] {});
  return down;
}

void runtime_host::stop(std::chrono::milliseconds timeout) {
  if (stopped_) return;
  stopped_ = true;
  {
    std::lock_guard<std::mutex> guard{failure_->mutex};
    failure_->stopping = true;
  }
  caf::scoped_actor self{system_};
  self->monitor(supervisor_);
  self->send(supervisor_, shutdown_atom::value);
  self->receive([](const caf::down_msg&) {}, caf::after(timeout) >> [] {});
  // Whatever is left (timers, idle singletons) goes now.
  if (scheduler_) self->send_exit(scheduler_, caf::exit_reason::user_shutdown);
  self->send_exit(sync_, caf::exit_reason::user_shutdown);
  self->send_exit(restic_, caf::exit_reason::user_shutdown);
  self->send_exit(supervisor_, caf::exit_reason::kill);
  self->send_exit(store_, caf::exit_reason::user_shutdown);
  self->send_exit(watchdog_, caf::exit_reason::user_shutdown);
}

runtime_host::~runtime_host() {
  stop(std::chrono::seconds{10});
}

} // namespace satoru::actors
