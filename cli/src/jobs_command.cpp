#include "cli_context.hpp"
#include "satoru/progress_display.hpp"
#include "satoru/time.hpp"

#include <boost/json.hpp>
#include <fmt/format.h>

#include <cmath>
#include <iostream>

namespace satoru::cli {

namespace {

/// The status column: a waiting retry says when it runs.
std::string status_text(const job_row& j, const config& cfg) {
  auto note = retry_note(j, cfg);
  return note.empty() ? to_string(j.status) : fmt::format("queued ({})", note);
}

/// A running job's status with how far its running steps are ("running 43%").
std::string running_text(const job_row& j, const std::vector<progress_row>& progress) {
  auto fraction = running_fraction(progress, j.id);
  if (j.status != job_status::running || !fraction) return to_string(j.status);
  return fmt::format("running {:.0f}%", *fraction * 100);
}

/// The live progress of running jobs (none when nothing runs).
std::vector<progress_row> live_progress_or_exit(std::optional<store>& db,
                                                const std::vector<job_row>& jobs) {
  auto rows = live_progress(db ? &*db : nullptr, jobs);
  if (!rows) fail(exit_failed, rows.err().message);
  return std::move(*rows);
}

std::string duration_of(const job_row& j) {
  if (j.started_at == 0) return "-";
  auto end = j.finished_at ? j.finished_at : now_ms();
  return format_duration(end - j.started_at);
}

struct jobs_args {
  std::string site;
  int limit = 20;
};

struct job_args {
  std::string id;
  bool follow = false;
};

} // namespace

void add_jobs_command(CLI::App& app, global_options& opts, command_runner& run) {
  auto args = std::make_shared<jobs_args>();
  auto cmd = app.add_subcommand("jobs", "list recent jobs, newest first");
  cmd->add_option("--site", args->site, "only this site");
  cmd->add_option("--limit", args->limit, "at most this many")
      ->check(CLI::Range(1, 100000));
  cmd->add_flag("--json", opts.json, "print JSON");
  cmd->callback([&, args] {
    run = [&, args]() -> int {
      auto cfg = load_config_or_exit(opts);
      auto db = open_read_only_or_exit(cfg);
      job_filter filter;
      filter.limit = args->limit;
      std::vector<job_row> jobs;
      if (!args->site.empty())
        site_or_exit(cfg, args->site); // exits with the closest names
      if (db) {
        if (!args->site.empty()) {
          auto site = db->find_site(args->site);
          if (!site) fail(exit_failed, site.err().message);
          filter.site_id = *site ? (*site)->id : -1; // never backed up: no jobs
        }
        auto rows = db->list_jobs(filter);
        if (!rows) fail(exit_failed, rows.err().message);
        jobs = std::move(*rows);
      }
      if (opts.json) {
        auto out = jobs_json(db ? &*db : nullptr, filter);
        if (!out) fail(exit_failed, out.err().message);
        print_json(*out);
        return exit_ok;
      }
      auto progress = live_progress_or_exit(db, jobs);
      std::cout << fmt::format("{:>6} {:<20} {:<11} {:<11} {:>7} {:<20} {:>9} {}\n", "ID",
                               "SITE", "TYPE", "STATUS", "ATTEMPT", "CREATED", "DURATION",
                               "ERROR");
      for (const auto& j : jobs) {
        auto note = retry_note(j, cfg);
        auto error = terminal_safe(note.empty() ? j.error : note + "; " + j.error);
        std::cout << fmt::format("{:>6} {:<20} {:<11} {:<11} {:>7} {:<20} {:>9} {}\n",
                                 j.id, j.site_name.empty() ? "-" : j.site_name,
                                 to_string(j.type), running_text(j, progress), j.attempts,
                                 format_time(j.created_at), duration_of(j), error);
      }
      return exit_ok;
    };
  });
}

void add_job_command(CLI::App& app, global_options& opts, command_runner& run) {
  auto args = std::make_shared<job_args>();
  auto cmd = app.add_subcommand("job", "show one job with its events");
  cmd->add_option("id", args->id, "job id")->required();
  cmd->add_flag("--follow", args->follow,
                "keep printing events until the job ends or an attempt fails (exit 1, "
                "saying when the daemon retries it)");
  cmd->add_flag("--json", opts.json, "print JSON");
  cmd->callback([&, args] {
    run = [&, args]() -> int {
      auto id = parse_job_id_or_exit(args->id);
      auto cfg = load_config_or_exit(opts);
      auto db = open_read_only_or_exit(cfg);
      if (!db) fail(exit_usage, fmt::format("no job {} (no database yet)", id));
      auto job = db->get_job(id);
      if (!job) fail(exit_failed, job.err().message);
      if (!*job) fail(exit_usage, fmt::format("no job {}", id));
      if (args->follow) {
        auto row = follow_job(*db, id, opts.json);
        return report_followed(cfg, *db, row);
      }
      if (opts.json) {
        auto out = job_detail_json(&*db, id);
        if (!out) fail(exit_failed, out.err().message);
        print_json(**out);
        return exit_ok;
      }
      auto events = db->list_events(id);
      if (!events) fail(exit_failed, events.err().message);
      const auto& j = **job;
      std::cout << fmt::format("job {}: {} {} — {}{}\n", j.id, to_string(j.type),
                               j.site_name.empty() ? "(repository)" : "of " + j.site_name,
                               status_text(j, cfg),
                               j.error.empty() ? "" : ": " + terminal_safe(j.error));
      std::cout << fmt::format(
          "created {}  started {}  finished {}  attempts {} (failed {}, recovered {})\n",
          format_time(j.created_at), format_time(j.started_at),
          format_time(j.finished_at), j.attempts, j.failed_attempts, j.recoveries);
      for (const auto& e : *events)
        print_event(e, false);
      return exit_ok;
    };
  });
}

} // namespace satoru::cli
