#include "satoru/progress.hpp"

#include "satoru/text.hpp"
#include "satoru/time.hpp"

#include <boost/json.hpp>
#include <fmt/format.h>

#include <cmath>
#include <cstdlib>

namespace satoru {

namespace {

/// "20,676,608" → 20676608.
std::optional<std::uint64_t> grouped_number(std::string_view word) {
  std::uint64_t n = 0;
  bool digits = false;
  for (char c : word) {
    if (c == ',') continue;
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<std::uint64_t>(c - '0');
    digits = true;
  }
  return digits ? std::optional<std::uint64_t>(n) : std::nullopt;
}

std::string_view next_word(std::string_view& text) {
  text = trim(text);
  auto end = text.find_first_of(" \t");
  auto word = text.substr(0, end);
  text.remove_prefix(end == std::string_view::npos ? text.size() : end);
  return word;
}

std::optional<progress_sample> parse_rsync(std::string_view line) {
  // bytes, percent, rate, time, then optionally "(xfr#N, to-chk=R/T)" or
  // "ir-chk=R/T" while the file list is still growing.
  std::string_view rest = line;
  auto bytes = grouped_number(next_word(rest));
  auto percent = next_word(rest);
  if (!bytes || percent.size() < 2 || percent.back() != '%') return std::nullopt;
  char* end = nullptr;
  const std::string pct(percent.substr(0, percent.size() - 1));
  double p = std::strtod(pct.c_str(), &end);
  if (end == pct.c_str() || *end != '\0') return std::nullopt;
  progress_sample s;
  s.bytes_done = *bytes;
  s.fraction = p / 100.0;
  // The percentage is of the bytes to transfer, rounded: a total derived
  // from it is an estimate, good enough for a rate and an ETA.
  if (p >= 1)
    s.bytes_total = static_cast<std::uint64_t>(std::llround(*bytes * 100.0 / p));
  for (const char* key : {"to-chk=", "ir-chk="}) {
    auto at = line.find(key);
    if (at == std::string_view::npos) continue;
    std::string_view counts = line.substr(at + std::string_view(key).size());
    auto slash = counts.find('/');
    auto close = counts.find(')');
    if (slash == std::string_view::npos) break;
    auto remaining = grouped_number(counts.substr(0, slash));
    auto total = grouped_number(counts.substr(slash + 1, close == std::string_view::npos
                                                             ? std::string_view::npos
                                                             : close - slash - 1));
    if (remaining && total && *remaining <= *total) {
      s.files_total = *total;
      s.files_done = *total - *remaining;
    }
    break;
  }
  return s;
}

std::optional<progress_sample> parse_restic_json(std::string_view line) {
  // The summary is the last word: everything it counted was processed (a
  // short backup may print no status line after its first, empty one).
  const bool summary =
      line.find("\"message_type\":\"summary\"") != std::string_view::npos;
  if (!summary && line.find("\"message_type\":\"status\"") == std::string_view::npos)
    return std::nullopt;
  boost::system::error_code ec;
  auto value = boost::json::parse(line, ec);
  if (ec || !value.is_object()) return std::nullopt;
  const auto& o = value.get_object();
  auto number = [&](const char* key) -> std::optional<double> {
    auto* v = o.if_contains(key);
    if (!v) return std::nullopt;
    if (v->is_int64()) return static_cast<double>(v->get_int64());
    if (v->is_uint64()) return static_cast<double>(v->get_uint64());
    if (v->is_double()) return v->get_double();
    return std::nullopt;
  };
  auto count = [&](const char* key) -> std::optional<std::uint64_t> {
    auto n = number(key);
    if (!n || *n < 0) return std::nullopt;
    return static_cast<std::uint64_t>(*n);
  };
  progress_sample s;
  if (summary) {
    s.bytes_done = s.bytes_total = count("total_bytes_processed");
    s.files_done = s.files_total = count("total_files_processed");
    s.fraction = 1.0;
    return s;
  }
  s.fraction = number("percent_done");
  s.bytes_done = count("bytes_done").value_or(0); // absent in the first line: none yet
  s.bytes_total = count("total_bytes");
  s.files_done = count("files_done").value_or(0);
  s.files_total = count("total_files");
  return s;
}

std::optional<progress_sample> parse_restic_copy(std::string_view line) {
  // "[0:01] 42.00%  4 / 10 packs copied"
  line = trim(line);
  if (line.empty() || line.front() != '[') return std::nullopt;
  auto close = line.find(']');
  if (close == std::string_view::npos ||
      line.find("packs copied") == std::string_view::npos)
    return std::nullopt;
  std::string_view rest = line.substr(close + 1);
  auto percent = next_word(rest);
  if (percent.empty() || percent.back() != '%') return std::nullopt;
  const std::string pct(percent.substr(0, percent.size() - 1));
  char* end = nullptr;
  double p = std::strtod(pct.c_str(), &end);
  if (end == pct.c_str()) return std::nullopt;
  auto done = grouped_number(next_word(rest));
  auto slash = next_word(rest);
  auto total = grouped_number(next_word(rest));
  progress_sample s;
  s.fraction = p / 100.0;
  if (done && slash == "/" && total) {
    // restic 0.14 counts packs, not bytes: they stand in for files here.
    s.files_done = *done;
    s.files_total = *total;
  }
  return s;
}

std::string short_duration(std::int64_t seconds) {
  if (seconds < 60) return fmt::format("{}s", seconds);
  if (seconds < 3600) return fmt::format("{}m{:02}s", seconds / 60, seconds % 60);
  return fmt::format("{}h{:02}m", seconds / 3600, (seconds % 3600) / 60);
}

} // namespace

std::optional<progress_sample> parse_progress(progress_format format,
                                              std::string_view line) {
  switch (format) {
  case progress_format::rsync_progress2:
    return parse_rsync(line);
  case progress_format::restic_json:
    return parse_restic_json(line);
  case progress_format::restic_copy:
    return parse_restic_copy(line);
  case progress_format::none:
  case progress_format::written_bytes:
    break;
  }
  return std::nullopt;
}

std::optional<progress_sample> copy_bytes_estimate::operator()(std::string_view line) {
  // "copy started, this may take a while...": the next snapshot's meter;
  // the previous one is done. So is one that starts again without that
  // line (fewer packs done, or another count).
  const bool started = line.find("copy started") != std::string_view::npos;
  auto meter =
      started ? std::nullopt : parse_progress(progress_format::restic_copy, line);
  if (!started && (!meter || !meter->files_done || !meter->files_total)) return meter;
  if (started || *meter->files_total != total_ || *meter->files_done < done_) {
    ended_done_ += total_;
    ended_total_ += total_;
    done_ = total_ = 0;
  }
  if (started) return std::nullopt;
  done_ = *meter->files_done;
  total_ = *meter->files_total;
  progress_sample out;
  out.files_done = ended_done_ + done_;
  out.files_total = ended_total_ + total_;
  if (*out.files_total > 0)
    out.fraction =
        static_cast<double>(*out.files_done) / static_cast<double>(*out.files_total);
  if (mean_pack_bytes_ > 0) {
    out.bytes_done = *out.files_done * mean_pack_bytes_;
    out.bytes_total = *out.files_total * mean_pack_bytes_;
  }
  return out;
}

std::string progress::describe() const {
  std::string text;
  if (bytes_total > 0)
    text = format_bytes(bytes_done) + " / " + format_bytes(bytes_total);
  else if (bytes_done > 0)
    text = format_bytes(bytes_done);
  if (files_total > 0)
    text += (text.empty() ? "" : ", ") +
            fmt::format("{} / {} files", files_done, files_total);
  if (fraction >= 0) text += fmt::format(" ({:.0f}%)", fraction * 100);
  if (rate_bytes_per_s > 0)
    text += "  " + format_bytes(static_cast<std::uint64_t>(rate_bytes_per_s)) + "/s";
  if (eta_seconds >= 0) text += "  ETA " + short_duration(eta_seconds);
  return std::string(trim(text));
}

progress_meter::progress_meter(std::string step, std::int64_t started_ms)
    : rate_at_ms_(started_ms) {
  current_.step = std::move(step);
  current_.changed_at_ms = started_ms;
}

bool progress_meter::update(const progress_sample& s, std::int64_t now_ms) {
  progress& p = current_;
  const std::uint64_t bytes = s.bytes_done.value_or(p.bytes_done);
  const std::uint64_t files = s.files_done.value_or(p.files_done);
  const bool moved = bytes != p.bytes_done || files != p.files_done ||
                     (s.fraction && *s.fraction > p.fraction + 1e-9);
  if (s.bytes_total) p.bytes_total = *s.bytes_total;
  if (s.files_total) p.files_total = *s.files_total;
  if (s.fraction) p.fraction = std::min(1.0, std::max(0.0, *s.fraction));
  p.bytes_done = bytes;
  p.files_done = files;
  if (!s.fraction && p.bytes_total > 0)
    p.fraction =
        std::min(1.0, static_cast<double>(bytes) / static_cast<double>(p.bytes_total));
  if (moved) p.changed_at_ms = now_ms;

  // The rate over the last interval of at least a second, smoothed with a
  // time constant of about 10 s, so one burst or pause does not swing it.
  const std::int64_t elapsed = now_ms - rate_at_ms_;
  if (elapsed >= 1000) {
    const double instant =
        bytes >= rate_bytes_ ? (bytes - rate_bytes_) * 1000.0 / elapsed : 0.0;
    const double weight = 1.0 - std::exp(-elapsed / 10'000.0);
    p.rate_bytes_per_s =
        p.rate_bytes_per_s <= 0
            ? instant
            : p.rate_bytes_per_s + weight * (instant - p.rate_bytes_per_s);
    rate_at_ms_ = now_ms;
    rate_bytes_ = bytes;
  }
  if (p.bytes_total > p.bytes_done && p.rate_bytes_per_s > 0)
    p.eta_seconds = static_cast<std::int64_t>(
        (p.bytes_total - p.bytes_done) / p.rate_bytes_per_s + 0.5);
  else if (p.bytes_total > 0 && p.bytes_done >= p.bytes_total)
    p.eta_seconds = 0;
  else
    p.eta_seconds = -1;
  return moved;
}

} // namespace satoru
