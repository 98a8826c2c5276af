#include "cli_context.hpp"

#include "satoru/actors/runtime_host.hpp"
#include "satoru/actors/store_actor.hpp"
#include "satoru/time.hpp"

#include <fmt/format.h>

#include <chrono>
#include <iostream>
#include <thread>

namespace satoru::cli {

namespace {

/// How long `satoru cancel` waits for the process running a job to stop it:
/// its heartbeat reads the request within 2 s, and a killed child gets 3 s
/// before SIGKILL; a step that ignores its token longer is reported.
constexpr std::int64_t cancel_wait_ms = 60'000;

/// A running job whose process cannot read the request (its lease ran out,
/// or its process is gone on this host) is ended by recovery, here.
void recover_if_orphaned(store& db, const job_row& job) {
  if (job.lease_until >= now_ms() && actors::owner_alive(job.owner)) return;
  if (auto ids =
          db.recover_jobs(actors::runtime_context{}.max_recoveries, actors::owner_alive);
      !ids)
    fail(exit_failed, ids.err().message);
}

/// Waits until the running job `id` ended; its last row.
job_row wait_for_end(store& db, std::int64_t id) {
  const auto deadline = now_ms() + cancel_wait_ms;
  for (;;) {
    auto job = db.get_job(id);
    if (!job) fail(exit_failed, job.err().message);
    if (!*job) fail(exit_failed, fmt::format("job {} is gone", id));
    if (is_terminal((*job)->status)) return **job;
    recover_if_orphaned(db, **job);
    if (now_ms() > deadline)
      fail(exit_failed,
           fmt::format("job {}: cancel requested, but it still runs after {} s (its "
                       "process, {}, stops it at its next heartbeat)",
                       id, cancel_wait_ms / 1000, (*job)->owner));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

int cancel_job(const config& cfg, std::int64_t id) {
  if (!open_read_only_or_exit(cfg))
    fail(exit_usage, fmt::format("no job {} (no database yet)", id));
  auto db = store::open(cfg.database_path);
  if (!db) fail(exit_failed, db.err().message);
  auto asked = db->request_cancel(id, cli_requester());
  if (!asked && asked.err().code == errc::not_found)
    fail(exit_usage, asked.err().message);
  if (!asked) fail(exit_failed, asked.err().message);
  auto status = asked->status;
  if (asked->already_ended)
    fail(exit_failed, fmt::format("job {} already ended ({}); nothing to cancel", id,
                                  to_string(status)));
  if (asked->asked) {
    std::cerr << fmt::format("satoru: job {} runs; asked its process to stop it\n", id);
    status = wait_for_end(*db, id).status;
  }
  if (status == job_status::cancelled) {
    std::cout << fmt::format("job {} cancelled\n", id);
    return exit_ok;
  }
  fail(exit_failed, fmt::format("job {} ended {} before it could be cancelled", id,
                                to_string(status)));
}

} // namespace

void add_cancel_command(CLI::App& app, global_options& opts, command_runner& run) {
  auto id = std::make_shared<std::string>();
  auto cmd = app.add_subcommand(
      "cancel", "stop a queued or running job of any type; it ends `cancelled`");
  cmd->add_option("id", *id, "job id")->required();
  cmd->callback([&, id] {
    run = [&, id]() -> int {
      auto job_id = parse_job_id_or_exit(*id);
      return cancel_job(load_config_or_exit(opts), job_id);
    };
  });
}

} // namespace satoru::cli
