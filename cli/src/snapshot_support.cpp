#include "snapshot_support.hpp"

#include "cli_context.hpp"
#include "satoru/time.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <filesystem>

namespace satoru::cli {

namespace {

/// The form config paths are stored in (lexically normal, no trailing '/').
std::string normal_path(const std::string& text) {
  std::string out = std::filesystem::path(text).lexically_normal().string();
  while (out.size() > 1 && out.back() == '/')
    out.pop_back();
  return out;
}

bool read_digits(const std::string& t, std::size_t pos, std::size_t count, int& out) {
  if (pos + count > t.size()) return false;
  out = 0;
  for (std::size_t i = pos; i < pos + count; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(t[i]))) return false;
    out = out * 10 + (t[i] - '0');
  }
  return true;
}

} // namespace

const target_config* find_target(const site_config& site, const std::string& text) {
  for (const auto& t : site.targets)
    if (t.hash == text) return &t;
  if (text.empty()) return nullptr;
  const std::string wanted = normal_path(text);
  for (const auto& t : site.targets)
    if (t.path == wanted || normal_path(t.path) == wanted) return &t;
  return nullptr;
}

const target_config& target_or_exit(const site_config& site, const std::string& text) {
  if (auto* t = find_target(site, text)) return *t;
  std::string list;
  for (const auto& t : site.targets)
    list +=
        fmt::format("{}{} ({}, {})", list.empty() ? "" : ", ", t.path, t.mode, t.hash);
  fail(exit_usage,
       fmt::format("site {} has no target \"{}\" (give its path or target hash; "
                   "targets: {})",
                   site.name, text, list.empty() ? "none" : list));
}

std::optional<std::int64_t> parse_snapshot_time(const std::string& t) {
  int y, mo, d, h, mi, s;
  if (!read_digits(t, 0, 4, y) || t.size() < 19 || t[4] != '-' ||
      !read_digits(t, 5, 2, mo) || t[7] != '-' || !read_digits(t, 8, 2, d) ||
      (t[10] != 'T' && t[10] != ' ') || !read_digits(t, 11, 2, h) || t[13] != ':' ||
      !read_digits(t, 14, 2, mi) || t[16] != ':' || !read_digits(t, 17, 2, s))
    return std::nullopt;
  std::size_t pos = 19;
  std::int64_t millis = 0;
  if (pos < t.size() && t[pos] == '.') {
    // restic prints up to nine fraction digits, a varying number of them.
    int count = 0;
    for (++pos; pos < t.size() && std::isdigit(static_cast<unsigned char>(t[pos])); ++pos)
      if (count < 3) {
        millis = millis * 10 + (t[pos] - '0');
        ++count;
      }
    for (; count < 3; ++count)
      millis *= 10;
  }
  std::int64_t offset = 0;
  if (pos < t.size() && (t[pos] == 'Z' || t[pos] == 'z')) {
    ++pos;
  } else if (pos < t.size() && (t[pos] == '+' || t[pos] == '-')) {
    int oh, om;
    if (!read_digits(t, pos + 1, 2, oh) || pos + 3 >= t.size() || t[pos + 3] != ':' ||
        !read_digits(t, pos + 4, 2, om))
      return std::nullopt;
    offset = (oh * 3600 + om * 60) * (t[pos] == '-' ? -1 : 1);
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != t.size()) return std::nullopt;
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  return (static_cast<std::int64_t>(::timegm(&tm)) - offset) * 1000 + millis;
}

std::string display_snapshot_time(const std::string& text) {
  auto ms = parse_snapshot_time(text);
  return ms ? format_time(*ms) : text;
}

void sort_by_time(std::vector<snapshot_info>& list) {
  std::stable_sort(
      list.begin(), list.end(), [](const snapshot_info& a, const snapshot_info& b) {
        auto ta = parse_snapshot_time(a.time), tb = parse_snapshot_time(b.time);
        if (ta && tb) return *ta < *tb;
        return a.time < b.time;
      });
}

restic_client local_restic(const config& cfg) {
  return restic_client{local_repository(cfg),
                       std::chrono::seconds{cfg.restic_timeout_seconds}};
}

} // namespace satoru::cli
