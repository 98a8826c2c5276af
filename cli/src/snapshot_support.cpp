#include "snapshot_support.hpp"

#include "cli_context.hpp"
#include "satoru/time.hpp"

#include <fmt/format.h>

#include <algorithm>
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

std::string display_snapshot_time(const snapshot_info& snapshot) {
  auto ms = snapshot.unix_ms();
  return ms != 0 ? format_time(ms) : snapshot.time;
}

void sort_by_time(std::vector<snapshot_info>& list) {
  std::stable_sort(list.begin(), list.end(),
                   [](const snapshot_info& a, const snapshot_info& b) {
                     auto ta = a.unix_ms(), tb = b.unix_ms();
                     if (ta != 0 && tb != 0) return ta < tb;
                     return a.time < b.time;
                   });
}

} // namespace satoru::cli
