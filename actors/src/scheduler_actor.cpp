#include "satoru/actors/scheduler_actor.hpp"

#include "satoru/time.hpp"

#include <caf/event_based_actor.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>

namespace satoru::actors {

namespace {

using scheduler_self_ptr = scheduler_actor::stateful_pointer<scheduler_state>;

constexpr std::int64_t hour_ms = 3600 * 1000;

/// The error handler of a request whose failure only needs a log line (the
/// next tick tries again).
auto logged(const char* what) {
  return [what](caf::error& err) {
    spdlog::warn("scheduler: {}: {}", what, caf::to_string(err));
  };
}

/// When this process started: checks, drills and off-site retention that
/// never ran wait one interval from here (not from the epoch), so that a new
/// installation does its first backups before them.
const std::int64_t process_started_ms = now_ms();

/// Queues a repository job when its interval has passed since the last one
/// (with `wait_first`, a type that never ran waits one interval from the
/// process start).
void schedule_repository_job(scheduler_self_ptr self, job_type type, int interval_hours,
                             bool wait_first = false) {
  if (interval_hours <= 0) return;
  auto& st = self->state;
  self->request(st.store, caf::infinite, last_atom::value, type, std::int64_t{0})
      .then(
          [=](std::int64_t last) {
            if (last == 0 && wait_first) last = process_started_ms;
            if (last + interval_hours * hour_ms > now_ms()) return;
            self->request(self->state.store, caf::infinite, enqueue_atom::value, type,
                          std::int64_t{0})
                .then(
                    [=](std::int64_t id) {
                      spdlog::info("scheduled {} job {}", to_string(type), id);
                      self->send(self->state.supervisor, poll_atom::value);
                    },
                    logged("queueing a repository job"));
          },
          logged("reading the last repository job"));
}

void tick(scheduler_self_ptr self) {
  auto& st = self->state;
  const auto& cfg = *st.ctx.cfg;
  if (cfg.site_scan_interval_hours > 0) {
    self->request(st.store, caf::infinite, due_atom::value,
                  cfg.site_scan_interval_hours * hour_ms)
        .then(
            [=](std::vector<std::int64_t>& due) {
              auto& s = self->state;
              due.erase(std::remove_if(
                            due.begin(), due.end(),
                            [&](std::int64_t id) { return s.waiting.count(id) > 0; }),
                        due.end());
              auto delays = jitter_delays(due.size(), std::chrono::seconds{60}, s.rng);
              for (std::size_t i = 0; i < due.size(); ++i) {
                s.waiting.insert(due[i]);
                self->delayed_send(self, delays[i], enqueue_atom::value, due[i]);
              }
            },
            logged("finding due sites"));
  }
  schedule_repository_job(self, job_type::retention, cfg.restic_retention_interval_hours);
  schedule_repository_job(self, job_type::check, cfg.check_interval_hours, true);
  schedule_repository_job(self, job_type::restore_drill, cfg.restore_drill_interval_hours,
                          true);
  if (cfg.restic_b2_repository) {
    schedule_repository_job(self, job_type::restic_sync, cfg.restic_sync_interval_hours);
    schedule_repository_job(self, job_type::offsite_retention,
                            cfg.restic_b2_retention_interval_hours, true);
    schedule_repository_job(self, job_type::offsite_check,
                            cfg.restic_b2_check_interval_hours, true);
  }
}

} // namespace

std::vector<std::chrono::milliseconds> jitter_delays(std::size_t count,
                                                     std::chrono::milliseconds max_window,
                                                     std::mt19937_64& rng) {
  auto window =
      std::min<std::int64_t>(static_cast<std::int64_t>(count) * 250, max_window.count());
  std::uniform_int_distribution<std::int64_t> pick{0,
                                                   std::max<std::int64_t>(window, 1) - 1};
  std::vector<std::chrono::milliseconds> out;
  out.reserve(count);
  for (std::size_t i = 0; i < count; ++i)
    out.emplace_back(pick(rng));
  return out;
}

scheduler_actor::behavior_type
scheduler_behavior(scheduler_actor::stateful_pointer<scheduler_state> self,
                   runtime_context ctx, store_actor store, supervisor_actor supervisor) {
  self->state.ctx = ctx;
  self->state.store = store;
  self->state.supervisor = supervisor;
  // The first look soon after start-up; then every scheduler_period.
  self->delayed_send(self, std::chrono::seconds{1}, tick_atom::value);
  return {
      [=](tick_atom) {
        tick(self);
        self->delayed_send(self, self->state.ctx.scheduler_period, tick_atom::value);
      },
      [=](enqueue_atom, std::int64_t site_id) {
        self->request(self->state.store, caf::infinite, enqueue_atom::value,
                      job_type::backup, site_id)
            .then(
                [=](std::int64_t id) {
                  self->state.waiting.erase(site_id);
                  spdlog::info("scheduled backup job {} for site id {}", id, site_id);
                  self->send(self->state.supervisor, poll_atom::value);
                },
                [=](caf::error& err) {
                  self->state.waiting.erase(site_id);
                  logged("queueing a backup")(err);
                });
      },
      [=](reload_atom, runtime_context next) {
        self->state.ctx = std::move(next);
        // Added sites and shorter intervals need not wait for the next tick
        // (which stays the one timer).
        tick(self);
      },
  };
}

} // namespace satoru::actors
