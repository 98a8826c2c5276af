#include "cli_context.hpp"
#include "satoru/time.hpp"

#include <boost/json.hpp>
#include <fmt/format.h>

#include <chrono>
#include <iostream>
#include <thread>

namespace satoru::cli {

std::int64_t parse_job_id_or_exit(const std::string& text) {
  std::size_t used = 0;
  long long id = 0;
  try {
    id = std::stoll(text, &used);
  } catch (...) {
    used = 0;
  }
  if (used != text.size() || id <= 0)
    fail(exit_usage, "\"" + text + "\" is not a job id (a positive integer)");
  return id;
}

int exit_code_of(job_status status) {
  switch (status) {
  case job_status::success:
    return exit_ok;
  case job_status::warning:
    return exit_warning;
  default:
    return exit_failed;
  }
}

boost::json::object event_json(const event_row& e) {
  boost::json::object o{
      {"id", e.id},          {"job_id", e.job_id}, {"time", format_time(e.ts)},
      {"level", e.level},    {"step", e.step},     {"target", e.target},
      {"message", e.message}};
  if (!e.data.empty()) {
    boost::json::error_code ec;
    auto data = boost::json::parse(e.data, ec);
    if (!ec) o["data"] = data;
  }
  return o;
}

void print_event(const event_row& e, bool json) {
  if (json)
    std::cout << boost::json::serialize(event_json(e)) << std::endl;
  else
    std::cout << fmt::format("{} {:<5} {:<24} {}{}", format_time(e.ts), e.level, e.step,
                             e.target.empty() ? "" : "[" + e.target + "] ", e.message)
              << std::endl;
}

job_row follow_job(store& db, std::int64_t job_id, bool json,
                   const std::function<bool()>& quit_early) {
  std::int64_t last_event = 0;
  for (;;) {
    auto events = db.list_events(job_id, last_event);
    if (events)
      for (const auto& e : *events) {
        print_event(e, json);
        last_event = e.id;
      }
    auto job = db.get_job(job_id);
    if (!job) fail(exit_failed, job.err().message);
    if (!*job) fail(exit_usage, fmt::format("no job {}", job_id));
    if (is_finished((*job)->status)) {
      // Events written after the status change (none today) would be lost
      // without this last read.
      if (auto tail = db.list_events(job_id, last_event))
        for (const auto& e : *tail)
          print_event(e, json);
      return **job;
    }
    if (quit_early && quit_early()) return **job;
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
  }
}

} // namespace satoru::cli
