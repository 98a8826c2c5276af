#include "cli_context.hpp"
#include "satoru/progress_display.hpp"
#include "satoru/time.hpp"

#include <boost/json.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <map>
#include <pthread.h>
#include <string_view>
#include <sys/ioctl.h>
#include <thread>
#include <unistd.h>

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

std::string event_line(const event_row& e, bool json) {
  if (json) return boost::json::serialize(event_json(e));
  return fmt::format("{} {:<5} {:<24} {}{}", format_time(e.ts), e.level, e.step,
                     e.target.empty() ? "" : "[" + e.target + "] ",
                     terminal_safe(e.message));
}

void print_event(const event_row& e, bool json) {
  std::cout << event_line(e, json) << std::endl;
}

bool waits_for_retry(const job_row& job) {
  return job.status == job_status::queued && job.next_attempt_at > now_ms();
}

int report_followed(const config& cfg, store& db, const job_row& row) {
  if (!waits_for_retry(row)) {
    std::cerr << fmt::format("job {} {}{}\n", row.id, to_string(row.status),
                             row.error.empty() ? "" : ": " + terminal_safe(row.error));
    return exit_code_of(row.status);
  }
  // The person has an answer: this attempt failed. The retry is the
  // daemon's business, not a reason to keep them waiting.
  auto next = fmt::format("at {} (attempt {} of {})", format_time(row.next_attempt_at),
                          row.failed_attempts + 1, cfg.retry_max_attempts);
  std::cerr << fmt::format(
      "job {} failed at attempt {}: {}; {}\n", row.id, row.attempts,
      terminal_safe(row.error),
      daemon_alive(db)
          ? "the daemon retries " + next
          : "no daemon is running, so nothing retries it (`satoru daemon` would " + next +
                "; or run it again)");
  return exit_failed;
}

std::string retry_note(const job_row& job, const config& cfg) {
  if (job.status != job_status::queued || job.next_attempt_at <= 0) return "";
  return fmt::format("retry {} of {} at {}", job.failed_attempts,
                     std::max(cfg.retry_max_attempts - 1, 0),
                     format_time(job.next_attempt_at));
}

namespace {

/// Set by SIGINT/SIGTERM while a job is followed.
volatile std::sig_atomic_t follow_stopped = 0;

extern "C" void on_follow_signal(int) {
  follow_stopped = 1;
}

/// Installs the follow's signal handlers for its lifetime, unless the
/// caller has blocked these signals to handle them itself.
class follow_signals {
public:
  follow_signals() {
    sigset_t blocked;
    pthread_sigmask(SIG_BLOCK, nullptr, &blocked);
    if (sigismember(&blocked, SIGINT) || sigismember(&blocked, SIGTERM)) return;
    installed_ = true;
    follow_stopped = 0;
    struct sigaction sa {};
    sa.sa_handler = on_follow_signal;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGINT, &sa, &old_int_);
    ::sigaction(SIGTERM, &sa, &old_term_);
  }
  ~follow_signals() {
    if (!installed_) return;
    ::sigaction(SIGINT, &old_int_, nullptr);
    ::sigaction(SIGTERM, &old_term_, nullptr);
  }
  follow_signals(const follow_signals&) = delete;
  follow_signals& operator=(const follow_signals&) = delete;

private:
  bool installed_ = false;
  struct sigaction old_int_ {
  }, old_term_{};
};

/// How the live progress shows on stdout: JSON lines with --json, redrawn
/// status lines on a terminal, plain lines otherwise.
progress_display::mode display_mode(bool json) {
  if (json) return progress_display::mode::json;
  const char* term = std::getenv("TERM");
  if (::isatty(STDOUT_FILENO) && !(term && std::string_view{term} == "dumb"))
    return progress_display::mode::terminal;
  return progress_display::mode::plain;
}

int terminal_width() {
  winsize ws{};
  if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 80;
}

/// Names a target by its path (the event lines use its hash); the targets
/// of the job's site are read when a hash is first seen.
class target_labels {
public:
  target_labels(store& db, std::int64_t site_id)
      : db_(db)
      , site_id_(site_id) {}
  std::string operator()(const std::string& hash) {
    if (hash.empty()) return "repository";
    if (!paths_.count(hash) && site_id_ > 0)
      if (auto targets = db_.list_targets(site_id_))
        for (const auto& t : *targets)
          paths_[t.target_hash] = t.path;
    auto it = paths_.find(hash);
    return it == paths_.end() ? hash : it->second;
  }

private:
  store& db_;
  std::int64_t site_id_;
  std::map<std::string, std::string> paths_;
};

} // namespace

local_progress::local_progress(bool json, std::string label)
    : display_{std::cout, display_mode(json),
               [label = std::move(label)](const std::string&) { return label; },
               terminal_width()} {}

void local_progress::emit(const std::string&, const std::string& step, const std::string&,
                          const std::string& message, const boost::json::object&) {
  if (step == "restic.lock") std::cerr << "satoru: " << message << "\n";
}

void local_progress::progress(const std::string& target, const satoru::progress& now) {
  show(target, now, false);
}

void local_progress::progress_ended(const std::string& target,
                                    const satoru::progress& last) {
  show(target, last, true);
}

void local_progress::show(const std::string& target, const satoru::progress& p,
                          bool ended) {
  const auto now = now_ms();
  display_.update({progress_row{0, target, p, now, ended ? now : 0}}, now);
}

job_row follow_job(store& db, std::int64_t job_id, bool json,
                   const std::function<bool()>& quit_early) {
  follow_signals signals;
  auto first = db.get_job(job_id);
  if (!first) fail(exit_failed, first.err().message);
  if (!*first) fail(exit_usage, fmt::format("no job {}", job_id));
  target_labels labels{db, (*first)->site_id};
  progress_display display{std::cout, display_mode(json), std::ref(labels),
                           terminal_width()};
  std::int64_t last_event = 0;
  auto print_new = [&] {
    if (auto events = db.list_events(job_id, last_event))
      for (const auto& e : *events) {
        display.line(event_line(e, json));
        last_event = e.id;
      }
  };
  for (;;) {
    print_new();
    if (auto rows = db.list_progress(job_id)) display.update(*rows, now_ms());
    auto job = db.get_job(job_id);
    if (!job) fail(exit_failed, job.err().message);
    if (!*job) fail(exit_usage, fmt::format("no job {}", job_id));
    if (is_terminal((*job)->status)) {
      // Where its last steps ended, then the events written after the
      // status change.
      if (auto rows = db.list_progress(job_id)) display.update(*rows, now_ms());
      display.clear();
      print_new();
      return **job;
    }
    // An attempt failed and the job waits for its retry: stop here.
    if (waits_for_retry(**job)) {
      display.clear();
      print_new();
      return **job;
    }
    if (follow_stopped) {
      display.clear();
      std::cerr << fmt::format(
          "satoru: stopped following job {} (it is {}); `satoru job {} "
          "--follow` picks it up again\n",
          job_id, to_string((*job)->status), job_id);
      throw exit_request{exit_failed};
    }
    if (quit_early && quit_early()) return **job;
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
  }
}

} // namespace satoru::cli
