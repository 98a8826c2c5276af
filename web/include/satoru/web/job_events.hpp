#pragma once

#include "satoru/error.hpp"
#include "satoru/store.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace satoru::web {

/// What an event stream has to send now.
struct stream_chunk {
  std::string text;  ///< Server-Sent Events text; empty = nothing new yet
  bool done = false; ///< the stream ends after `text`
};

/// The body of GET /api/v1/jobs/{id}/events: a job's events as
/// Server-Sent Events, polled from a read-only connection of its own on
/// the console's threads. Each event is `event: event` with the event's
/// JSON (as `satoru job ID --json` has it); each running step's progress,
/// when it changed, is `event: progress` with its `--json` progress line
/// plus "line", the status line the CLI draws; when the job has ended
/// (finished or interrupted) one `event: end` with the job's JSON follows
/// and the stream ends. Each event carries its id (`id:`), so a browser's
/// EventSource that reconnects resumes after the last one it got.
class job_event_stream {
public:
  /// Sends the events after `after_event_id` (a reconnect's Last-Event-ID;
  /// 0 = all of them).
  job_event_stream(std::string database_path, std::int64_t job_id,
                   std::int64_t after_event_id = 0);

  /// The events written since the last poll (all of them at first).
  expected<stream_chunk> poll();

private:
  /// The progress rows that changed since they were last sent, as events.
  std::string changed_progress(const std::vector<progress_row>& rows);

  std::string database_path_;
  std::int64_t job_id_;
  std::int64_t last_event_id_ = 0;
  std::optional<store> db_;
  /// What was sent last for each target and step.
  std::map<std::string, std::string> progress_sent_;
};

} // namespace satoru::web
