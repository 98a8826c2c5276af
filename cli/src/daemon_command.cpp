#include "cli_context.hpp"

#include "satoru/actors/runtime_host.hpp"
#include "satoru/files.hpp"
#include "satoru/metrics.hpp"
#include "satoru/repository_ops.hpp"
#include "satoru/restic.hpp"

#include <fmt/format.h>
#include <prometheus/exposer.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <iostream>
#include <pthread.h>
#include <thread>

namespace satoru::cli {

namespace {

/// Blocks SIGTERM/SIGINT in every thread (the actor system's threads inherit
/// the mask) so that only sigwait() below sees them.
sigset_t block_stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

} // namespace

void add_daemon_command(CLI::App& app, global_options& opts, command_runner& run) {
  auto cmd = app.add_subcommand(
      "daemon",
      "run the service: scheduler, job workers, metrics; SIGTERM stops it cleanly");
  cmd->callback([&] {
    run = [&]() -> int {
      auto signals = block_stop_signals();
      auto cfg = load_config_or_exit(opts);
      auto plugins = plugins_or_exit(cfg);
      auto db = open_store_or_exit(cfg);

      actors::runtime_context ctx;
      ctx.cfg = std::make_shared<config>(cfg);
      ctx.plugins = plugins;
      ctx.metrics = std::make_shared<metrics>();
      ctx.owner = make_owner_id();
      auto restic = restic_client::version();
      ctx.metrics->set_build_info(SATORU_VERSION, restic ? *restic : "unknown");
      std::vector<std::pair<std::string, std::vector<std::string>>> sites;
      for (const auto& s : cfg.sites) {
        std::vector<std::string> hashes;
        for (const auto& t : s.targets)
          hashes.push_back(t.hash);
        sites.emplace_back(s.name, hashes);
      }
      ctx.metrics->set_sites(sites);
      // The gauges start where the database says, not at "never".
      if (auto rows = db.list_sites())
        for (const auto& s : *rows) {
          ctx.metrics->set_site_health(s.name, s.health);
          ctx.metrics->set_site_last_preflight(s.name, s.last_preflight_at);
          ctx.metrics->set_site_last_success(s.name, s.last_success_at);
          if (auto targets = db.list_targets(s.id))
            for (const auto& t : *targets)
              if (t.enabled)
                ctx.metrics->set_target_last_success(s.name, t.target_hash,
                                                     t.last_success_at);
        }
      // Staging exists from the start, so its free space is measurable (and
      // alertable) before the first backup.
      if (auto r = make_dirs(cfg.staging_root); !r) fail(exit_failed, r.err().message);

      std::unique_ptr<prometheus::Exposer> exposer;
      try {
        exposer = std::make_unique<prometheus::Exposer>(cfg.metrics_listen);
      } catch (const std::exception& e) {
        fail(exit_failed,
             fmt::format("cannot serve metrics on {}: {}", cfg.metrics_listen, e.what()));
      }
      exposer->RegisterCollectable(ctx.metrics->registry());

      spdlog::info("satoru {} daemon {} started: {} sites, metrics on http://{}/metrics",
                   SATORU_VERSION, ctx.owner, cfg.sites.size(), cfg.metrics_listen);
      actors::runtime_host host{ctx, std::make_unique<store>(std::move(db)), {true, 0}};
      // A restic killed with the previous daemon left its lock behind; ours
      // to remove, beside the first jobs (only dead processes' locks go).
      cancel_token unlocking;
      std::thread unlocker{[cfg = ctx.cfg, unlocking] {
        for (bool offsite : {false, true})
          for (const auto& line : clear_dead_locks_at_start(*cfg, offsite, unlocking))
            spdlog::warn("{}", line);
      }};
      int sig = 0;
      sigwait(&signals, &sig);
      spdlog::info("received {}; stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
      unlocking.cancel();
      unlocker.join();
      host.stop(std::chrono::seconds{9});
      spdlog::info("stopped");
      return exit_ok;
    };
  });
}

} // namespace satoru::cli
