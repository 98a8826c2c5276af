#include "cli_context.hpp"
#include "satoru/progress_display.hpp"
#include "satoru/time.hpp"

#include <boost/json.hpp>
#include <fmt/format.h>

#include <cmath>
#include <iostream>

namespace satoru::cli {

namespace {

boost::json::object job_json(const job_row& j) {
  boost::json::array retry_targets;
  for (const auto& h : j.retry_targets)
    retry_targets.push_back(boost::json::value(h));
  return {{"id", j.id},
          {"site", j.site_name},
          {"type", to_string(j.type)},
          {"status", to_string(j.status)},
          {"created_at", format_time(j.created_at)},
          {"started_at", format_time(j.started_at)},
          {"finished_at", format_time(j.finished_at)},
          {"heartbeat_at", format_time(j.heartbeat_at)},
          {"attempts", j.attempts},
          {"failed_attempts", j.failed_attempts},
          {"recoveries", j.recoveries},
          {"next_attempt_at", j.next_attempt_at > 0 && j.status == job_status::queued
                                  ? format_time(j.next_attempt_at)
                                  : std::string{}},
          {"retry_targets", std::move(retry_targets)},
          {"error", j.error},
          {"owner", j.owner},
          {"epoch", j.epoch}};
}

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
std::vector<progress_row> live_progress(std::optional<store>& db,
                                        const std::vector<job_row>& jobs) {
  bool running = false;
  for (const auto& j : jobs)
    running = running || j.status == job_status::running;
  if (!db || !running) return {};
  auto rows = db->list_progress();
  if (!rows) fail(exit_failed, rows.err().message);
  return std::move(*rows);
}

/// "percent" and "progress" (the running steps) of a job in --json output.
void add_progress_json(boost::json::object& o, const job_row& j,
                       const std::vector<progress_row>& progress) {
  auto fraction = running_fraction(progress, j.id);
  if (fraction)
    o["percent"] = std::round(*fraction * 1000) / 10;
  else
    o["percent"] = nullptr;
  boost::json::array steps;
  for (const auto& row : progress)
    if (row.job_id == j.id && row.ended_at == 0) steps.push_back(progress_json(row));
  o["progress"] = std::move(steps);
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
      auto progress = live_progress(db, jobs);
      if (opts.json) {
        boost::json::array out;
        for (const auto& j : jobs) {
          auto o = job_json(j);
          add_progress_json(o, j, progress);
          out.push_back(std::move(o));
        }
        print_json(out);
        return exit_ok;
      }
      std::cout << fmt::format("{:>6} {:<20} {:<11} {:<11} {:>7} {:<20} {:>9} {}\n", "ID",
                               "SITE", "TYPE", "STATUS", "ATTEMPT", "CREATED", "DURATION",
                               "ERROR");
      for (const auto& j : jobs) {
        auto note = retry_note(j, cfg);
        std::cout << fmt::format("{:>6} {:<20} {:<11} {:<11} {:>7} {:<20} {:>9} {}\n",
                                 j.id, j.site_name.empty() ? "-" : j.site_name,
                                 to_string(j.type), running_text(j, progress), j.attempts,
                                 format_time(j.created_at), duration_of(j),
                                 note.empty() ? j.error
                                              : fmt::format("{}; {}", note, j.error));
      }
      return exit_ok;
    };
  });
}

void add_job_command(CLI::App& app, global_options& opts, command_runner& run) {
  auto args = std::make_shared<job_args>();
  auto cmd = app.add_subcommand("job", "show one job with its events");
  cmd->add_option("id", args->id, "job id")->required();
  cmd->add_flag("--follow", args->follow, "keep printing events until the job finishes");
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
        return exit_code_of(row.status);
      }
      auto events = db->list_events(id);
      if (!events) fail(exit_failed, events.err().message);
      if (opts.json) {
        auto out = job_json(**job);
        add_progress_json(out, **job, live_progress(db, {**job}));
        boost::json::array list;
        for (const auto& e : *events)
          list.push_back(event_json(e));
        out["events"] = std::move(list);
        print_json(out);
        return exit_ok;
      }
      const auto& j = **job;
      std::cout << fmt::format("job {}: {} {} — {}{}\n", j.id, to_string(j.type),
                               j.site_name.empty() ? "(repository)" : "of " + j.site_name,
                               status_text(j, cfg),
                               j.error.empty() ? "" : ": " + j.error);
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
