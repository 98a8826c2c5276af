#include "satoru/web/job_events.hpp"

#include "satoru/progress_display.hpp"
#include "satoru/state_json.hpp"

#include <boost/json/serialize.hpp>

namespace satoru::web {

namespace {

/// One Server-Sent Event; JSON has no line breaks, so one data line holds it.
std::string sse(const char* type, const boost::json::object& data, std::int64_t id = 0) {
  std::string out;
  if (id > 0) out += "id: " + std::to_string(id) + "\n";
  return out + "event: " + type + "\ndata: " + boost::json::serialize(data) + "\n\n";
}

} // namespace

job_event_stream::job_event_stream(std::string database_path, std::int64_t job_id,
                                   std::int64_t after_event_id)
    : database_path_(std::move(database_path))
    , job_id_(job_id)
    , last_event_id_(after_event_id) {}

expected<stream_chunk> job_event_stream::poll() {
  if (!db_) {
    auto db = store::open_read_only(database_path_);
    if (!db) return db.err();
    db_.emplace(std::move(*db));
  }
  // The job first: the end of a job and its last event are written in one
  // transaction, so a job read as ended has all its events in place.
  auto job = db_->get_job(job_id_);
  if (!job) return job.err();
  if (!*job) return error{errc::not_found, "no job " + std::to_string(job_id_)};
  auto events = db_->list_events(job_id_, last_event_id_);
  if (!events) return events.err();
  stream_chunk chunk;
  for (const auto& e : *events) {
    chunk.text += sse("event", event_json(e), e.id);
    last_event_id_ = e.id;
  }
  auto progress = db_->list_progress(job_id_);
  if (!progress) return progress.err();
  chunk.text += changed_progress(*progress);
  if (is_terminal((*job)->status)) {
    chunk.text += sse("end", job_json(**job));
    chunk.done = true;
  }
  return chunk;
}

std::string job_event_stream::changed_progress(const std::vector<progress_row>& rows) {
  std::string text;
  for (const auto& row : rows) {
    auto data = progress_json(row);
    // The status line as `satoru job --follow` draws it, so the page shows
    // the same text without formatting bytes and rates a second time.
    data["line"] = progress_line(row.target.empty() ? "sync" : row.target, row.now);
    auto& sent = progress_sent_[row.target + "\n" + row.now.step];
    auto serialized = boost::json::serialize(data);
    if (serialized == sent) continue;
    sent = std::move(serialized);
    text += sse("progress", data);
  }
  return text;
}

} // namespace satoru::web
