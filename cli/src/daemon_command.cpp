#include "cli_context.hpp"

#include "satoru/actors/runtime_host.hpp"
#include "satoru/files.hpp"
#include "satoru/freshness.hpp"
#include "satoru/metrics.hpp"
#include "satoru/repository_ops.hpp"
#include "satoru/restic.hpp"
#include "satoru/ssh_control.hpp"
#include "satoru/web/web_console.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <prometheus/exposer.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <ctime>
#include <iostream>
#include <pthread.h>
#include <thread>

namespace satoru::cli {

namespace {

/// Blocks SIGTERM, SIGINT and SIGHUP in every thread (the actor system's
/// threads inherit the mask) so that only the daemon's wait below sees them.
sigset_t block_daemon_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

/// Declares the configured sites' series and starts the gauges where the
/// database says, not at "never".
void publish_sites(metrics& m, const config& cfg, store& db) {
  std::vector<std::pair<std::string, std::vector<std::string>>> sites;
  for (const auto& s : cfg.sites) {
    std::vector<std::string> hashes;
    for (const auto& t : s.targets)
      hashes.push_back(t.hash);
    sites.emplace_back(s.name, hashes);
  }
  m.set_sites(sites);
  m.set_drill_max_age(static_cast<std::int64_t>(cfg.restore_drill_max_age_days) * 86400);
  for (const char* which : {"local", "offsite"})
    if (auto row = db.get_sync_state(check_state_key(which)); row && !row->status.empty())
      m.set_check_result(which, row->status == "success", row->last_success_at);
  for (const auto& s : cfg.sites)
    m.set_site_backup_interval(s.name, site_backup_interval_ms(cfg) / 1000);
  if (auto rows = db.list_sites())
    for (const auto& s : *rows) {
      m.set_site_health(s.name, s.health);
      m.set_site_last_preflight(s.name, s.last_preflight_at);
      m.set_site_last_success(s.name, s.last_success_at);
      if (auto targets = db.list_targets(s.id))
        for (const auto& t : *targets)
          if (t.enabled) {
            m.set_target_last_success(s.name, t.target_hash, t.last_success_at);
            m.set_target_last_verified(s.name, t.target_hash, t.last_verified_at);
          }
    }
}

/// One line saying what a reload changes in the sites.
std::string describe_reload(const config& before, const config& after) {
  auto same_site = [](const site_config& a, const site_config& b) {
    if (a.host != b.host || a.port != b.port || a.user != b.user ||
        a.targets.size() != b.targets.size())
      return false;
    for (std::size_t i = 0; i < a.targets.size(); ++i)
      if (a.targets[i].hash != b.targets[i].hash) return false;
    return true;
  };
  std::vector<std::string> added, removed, changed;
  for (const auto& s : after.sites) {
    auto* old = before.find_site(s.name);
    if (!old)
      added.push_back(s.name);
    else if (!same_site(*old, s))
      changed.push_back(s.name);
  }
  for (const auto& s : before.sites)
    if (!after.find_site(s.name)) removed.push_back(s.name);
  auto list = [](const std::vector<std::string>& v) {
    return v.empty() ? std::string{"none"} : fmt::format("{}", fmt::join(v, ", "));
  };
  return fmt::format("{} sites; added: {}; removed: {}; changed: {}", after.sites.size(),
                     list(added), list(removed), list(changed));
}

/// SIGHUP: the new config, with its sites written into the database and
/// published in the metrics; empty (with the reason logged) when it does
/// not load, so that the running config stays. The database stays the one
/// the daemon opened: a new database_path is logged and takes a restart.
std::optional<config> reloaded_config(const global_options& opts, const config& cfg,
                                      metrics& m) {
  spdlog::info("received SIGHUP; reloading {}", cfg.file);
  std::optional<config> next;
  try {
    next = load_config_or_exit(opts);
  } catch (const exit_request&) {
    spdlog::error("the new config is invalid (see above); keeping the running one");
    return std::nullopt;
  }
  if (next->database_path != cfg.database_path) {
    spdlog::warn("database_path changed to {}; the daemon keeps {} until it restarts "
                 "(systemctl restart satoru)",
                 next->database_path, cfg.database_path);
    next->database_path = cfg.database_path;
  }
  if (next->metrics_listen != cfg.metrics_listen)
    spdlog::warn("metrics_listen changed to {}; the metrics stay on {} until the daemon "
                 "restarts",
                 next->metrics_listen, cfg.metrics_listen);
  // The sites go into the database before a job is claimed under them.
  auto db = store::open(next->database_path);
  std::string problem;
  if (!db)
    problem = db.err().message;
  else if (auto r = db->sync_config(next->sites); !r)
    problem = r.err().message;
  if (!problem.empty()) {
    spdlog::error("cannot write the new config's sites into {}: {}; keeping the "
                  "running config",
                  next->database_path, problem);
    return std::nullopt;
  }
  publish_sites(m, *next, *db);
  if (auto r = make_dirs(next->staging_root); !r) spdlog::warn("{}", r.err().message);
  spdlog::info("config reloaded: {}; running jobs finish with the config they started "
               "with",
               describe_reload(cfg, *next));
  return next;
}

/// What ended the daemon's wait for its runtime.
enum class daemon_event { stop, reload, runtime_failed };

daemon_event wait_for_event(const sigset_t& signals, const actors::runtime_host& host) {
  const timespec second{1, 0};
  for (;;) {
    int sig = sigtimedwait(&signals, nullptr, &second);
    if (sig == SIGHUP) return daemon_event::reload;
    if (sig == SIGTERM || sig == SIGINT) {
      spdlog::info("received {}; stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
      return daemon_event::stop;
    }
    if (host.failure()) return daemon_event::runtime_failed;
  }
}

} // namespace

void add_daemon_command(CLI::App& app, global_options& opts, command_runner& run) {
  auto cmd = app.add_subcommand(
      "daemon", "run the service: scheduler, job workers, metrics; SIGTERM "
                "stops it cleanly, SIGHUP reloads the config");
  cmd->callback([&] {
    run = [&]() -> int {
      auto signals = block_daemon_signals();
      auto cfg = load_config_or_exit(opts);
      auto db = open_store_or_exit(cfg);

      auto m = std::make_shared<metrics>();
      auto restic = restic_client::version();
      m->set_build_info(SATORU_VERSION, restic ? *restic : "unknown");
      publish_sites(*m, cfg, db);
      // Staging exists from the start, so its free space is measurable (and
      // alertable) before the first backup.
      if (auto r = make_dirs(cfg.staging_root); !r) fail(exit_failed, r.err().message);

      // Masters a killed daemon left open go now, not after ControlPersist
      // (and before the metrics answer, which is what says "started").
      auto sockets = control_socket_dir(cfg.database_path);
      if (auto r = prepare_control_socket_dir(sockets); !r) {
        spdlog::warn("{}; one ssh connection per rsync", r.err().message);
        sockets.clear();
      } else {
        for (const auto& line : close_stale_control_masters(sockets))
          spdlog::warn("{}", line);
      }

      std::unique_ptr<prometheus::Exposer> exposer;
      try {
        exposer = std::make_unique<prometheus::Exposer>(cfg.metrics_listen);
      } catch (const std::exception& e) {
        fail(exit_failed,
             fmt::format("cannot serve metrics on {}: {}", cfg.metrics_listen, e.what()));
      }
      exposer->RegisterCollectable(m->registry());
      // The web console (docs/console.md) on its own threads, when configured.
      auto console = web::web_console::start(cfg, m);
      if (!console) fail(exit_failed, console.err().message);

      auto owner = make_owner_id();
      spdlog::info("satoru {} daemon {} started: {} sites, metrics on http://{}/metrics",
                   SATORU_VERSION, owner, cfg.sites.size(), cfg.metrics_listen);
      // A restic killed with the previous daemon left its lock behind; ours
      // to remove, beside the first jobs (only dead processes' locks go).
      cancel_token unlocking;
      std::thread unlocker{[first = cfg, unlocking] {
        for (bool offsite : {false, true})
          for (const auto& line : clear_dead_locks_at_start(first, offsite, unlocking))
            spdlog::warn("{}", line);
      }};
      auto stop_unlocker = [&] {
        unlocking.cancel();
        if (unlocker.joinable()) unlocker.join();
      };
      actors::runtime_context ctx;
      ctx.cfg = std::make_shared<config>(cfg);
      ctx.plugins = plugins_or_exit(cfg);
      ctx.metrics = m;
      ctx.owner = owner;
      ctx.control_socket_dir = sockets;
      actors::runtime_host host{ctx, std::make_unique<store>(std::move(db)), {true, 0}};
      for (;;) {
        auto event = wait_for_event(signals, host);
        if (event == daemon_event::runtime_failed) {
          auto why = *host.failure();
          spdlog::critical("the runtime failed ({}); exiting so that the service "
                           "manager restarts satoru",
                           why);
          stop_unlocker();
          host.stop(std::chrono::seconds{9});
          std::cerr << "satoru: the runtime failed: " << why << "\n";
          return exit_failed;
        }
        if (event == daemon_event::stop) {
          stop_unlocker();
          host.stop(std::chrono::seconds{9});
          spdlog::info("stopped");
          return exit_ok;
        }
        // SIGHUP: the running runtime takes the new config; nothing stops.
        auto next = reloaded_config(opts, cfg, *m);
        if (!next) continue;
        ctx.cfg = std::make_shared<config>(*next);
        ctx.plugins = plugins_or_exit(*next);
        host.reload(ctx);
        if (*console) (*console)->reload(*next);
        cfg = std::move(*next);
      }
    };
  });
}

} // namespace satoru::cli
