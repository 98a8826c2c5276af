#include "satoru/progress_display.hpp"

#include "satoru/time.hpp"

#include <boost/json/serialize.hpp>
#include <fmt/format.h>

namespace satoru {

namespace {

/// The rows of one job whose step still runs.
std::vector<const progress_row*> running_rows(const std::vector<progress_row>& rows,
                                              std::int64_t job_id) {
  std::vector<const progress_row*> out;
  for (const auto& r : rows)
    if (r.job_id == job_id && r.ended_at == 0) out.push_back(&r);
  return out;
}

} // namespace

std::string progress_line(const std::string& label, const progress& now) {
  auto text = now.describe();
  return fmt::format("[{}] {}{}{}", label, now.step, text.empty() ? "" : " ", text);
}

boost::json::object progress_json(const progress_row& row) {
  const auto& p = row.now;
  boost::json::object o{{"type", "progress"},
                        {"job_id", row.job_id},
                        {"target", row.target},
                        {"step", p.step},
                        {"bytes_done", p.bytes_done},
                        {"bytes_total", p.bytes_total},
                        {"files_done", p.files_done},
                        {"files_total", p.files_total},
                        {"rate_bytes_per_s", p.rate_bytes_per_s},
                        {"eta_seconds", p.eta_seconds},
                        {"ended", row.ended_at != 0},
                        {"time", format_time(row.updated_at)}};
  if (p.fraction >= 0)
    o["fraction"] = p.fraction;
  else
    o["fraction"] = nullptr;
  return o;
}

std::optional<double> running_fraction(const std::vector<progress_row>& rows,
                                       std::int64_t job_id) {
  auto running = running_rows(rows, job_id);
  std::uint64_t done = 0, total = 0;
  bool all_totals = !running.empty();
  double fractions = 0;
  int known = 0;
  for (const auto* r : running) {
    all_totals = all_totals && r->now.bytes_total > 0;
    done += std::min(r->now.bytes_done, r->now.bytes_total);
    total += r->now.bytes_total;
    if (r->now.fraction >= 0) {
      fractions += r->now.fraction;
      ++known;
    }
  }
  if (all_totals) return static_cast<double>(done) / static_cast<double>(total);
  if (known == 0) return std::nullopt;
  return fractions / known;
}

std::string running_steps(const std::vector<progress_row>& rows, std::int64_t job_id) {
  std::string out;
  for (const auto* r : running_rows(rows, job_id)) {
    if (!out.empty()) out += ", ";
    out += r->now.step;
    if (r->now.fraction >= 0) out += fmt::format(" {:.0f}%", r->now.fraction * 100);
  }
  return out;
}

progress_display::progress_display(std::ostream& out, mode how,
                                   std::function<std::string(const std::string&)> label,
                                   int width)
    : out_(out)
    , how_(how)
    , label_(std::move(label))
    , width_(width > 1 ? width : 80) {}

std::string progress_display::label_of(const progress_row& row) const {
  if (label_) return label_(row.target);
  return row.target.empty() ? "repository" : row.target;
}

void progress_display::line(const std::string& text) {
  if (how_ != mode::terminal || live_.empty()) {
    out_ << text << '\n' << std::flush;
    return;
  }
  auto live = live_;
  clear();
  out_ << text << '\n';
  live_ = std::move(live);
  draw();
}

void progress_display::update(const std::vector<progress_row>& rows,
                              std::int64_t now_ms) {
  std::vector<std::string> live;
  for (const auto& row : rows) {
    auto& s = seen_[key{row.job_id, row.target, row.now.step}];
    const bool changed = row.updated_at != s.updated_at || row.ended_at != s.ended_at;
    s.updated_at = row.updated_at;
    switch (how_) {
    case mode::json:
      // A step that ended is printed once, with its last values.
      if (changed && !(row.ended_at != 0 && s.ended_at != 0))
        out_ << boost::json::serialize(progress_json(row)) << '\n' << std::flush;
      break;
    case mode::plain:
      // Moved since the line printed last, which is 10 s old.
      if (row.ended_at == 0 && row.updated_at != s.printed_update &&
          (s.printed_ms < 0 || now_ms - s.printed_ms >= plain_interval_ms)) {
        s.printed_ms = now_ms;
        s.printed_update = row.updated_at;
        out_ << progress_line(label_of(row), row.now) << '\n' << std::flush;
      }
      break;
    case mode::terminal:
      if (row.ended_at == 0) live.push_back(progress_line(label_of(row), row.now));
      break;
    }
    s.ended_at = row.ended_at;
  }
  if (how_ != mode::terminal || live == live_) return;
  clear();
  live_ = std::move(live);
  draw();
}

void progress_display::draw() {
  // Status lines end without a newline: the cursor stays on the last one,
  // so that clear() can go back to the first with a carriage return and
  // "cursor up" and erase from there.
  const auto cut = static_cast<std::size_t>(width_ - 1);
  for (std::size_t i = 0; i < live_.size(); ++i)
    out_ << (i ? "\n" : "") << live_[i].substr(0, cut) << "\x1b[K";
  out_ << std::flush;
}

void progress_display::clear() {
  if (how_ != mode::terminal || live_.empty()) return;
  out_ << '\r';
  if (live_.size() > 1) out_ << "\x1b[" << live_.size() - 1 << 'A';
  out_ << "\x1b[J" << std::flush;
  live_.clear();
}

} // namespace satoru
