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

/// restic's snapshot ids and their prefixes: lower-case hex digits.
bool is_hex(const std::string& text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  });
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

std::string relative_snapshot_path(const std::string& path) {
  std::string out = normal_path(path);
  while (!out.empty() && out.front() == '/')
    out.erase(0, 1);
  return out == "." ? std::string{} : out;
}

void sort_by_time(std::vector<snapshot_info>& list) {
  std::stable_sort(list.begin(), list.end(),
                   [](const snapshot_info& a, const snapshot_info& b) {
                     auto ta = a.unix_ms(), tb = b.unix_ms();
                     if (ta != 0 && tb != 0) return ta < tb;
                     return a.time < b.time;
                   });
}

snapshot_info resolve_snapshot_or_exit(const restic_client& client, const config& cfg,
                                       const site_config& site,
                                       const target_config& target,
                                       const std::string& wanted) {
  const auto tags = snapshot_tags(site.uuid, target.hash);
  auto listed = client.snapshots(tags);
  if (!listed && listed.err().code != errc::not_found)
    fail(exit_failed, listed.err().message);
  std::vector<snapshot_info> list =
      listed ? std::move(*listed) : std::vector<snapshot_info>{};
  sort_by_time(list);
  const std::string what = fmt::format("target {} of site {}", target.path, site.name);
  if (wanted == "latest") {
    if (list.empty())
      fail(exit_failed, fmt::format("{} has no snapshot yet (run `satoru run {} --wait`)",
                                    what, site.name));
    return list.back();
  }
  if (!is_hex(wanted) || wanted.size() < 4 || wanted.size() > 64)
    fail(exit_usage,
         fmt::format("\"{}\" is not a snapshot id (hex digits, at least 4) or "
                     "\"latest\"",
                     wanted));
  std::vector<const snapshot_info*> matches;
  for (const auto& s : list)
    if (s.id.rfind(wanted, 0) == 0) matches.push_back(&s);
  if (matches.size() == 1) return *matches.front();
  if (matches.size() > 1)
    fail(exit_usage,
         fmt::format("snapshot id {} is ambiguous: {} snapshots of {} start with "
                     "it; give more digits",
                     wanted, matches.size(), what));
  // Not one of the target's: say whose it is, so a mix-up is obvious.
  auto all = client.snapshots({});
  if (all)
    for (const auto& s : *all)
      if (s.id.rfind(wanted, 0) == 0) {
        std::string owner = "not made by satoru";
        if (!s.tag_value("target").empty()) {
          std::string site_name = "site=" + s.tag_value("site");
          std::string target_name = "target=" + s.tag_value("target");
          for (const auto& other : cfg.sites) {
            if (other.uuid != s.tag_value("site")) continue;
            site_name = "site " + other.name;
            for (const auto& t : other.targets)
              if (t.hash == s.tag_value("target")) target_name = "target " + t.path;
          }
          owner = "a snapshot of " + target_name + " of " + site_name;
        }
        fail(exit_usage,
             fmt::format("snapshot {} is not a snapshot of {} (it is {}); `satoru "
                         "snapshots --site {} --target {}` lists that target's",
                         wanted, what, owner, site.name, target.hash));
      }
  fail(exit_usage,
       fmt::format("no snapshot {} in the repository; `satoru snapshots --site {} "
                   "--target {}` lists that target's",
                   wanted, site.name, target.hash));
}

} // namespace satoru::cli
