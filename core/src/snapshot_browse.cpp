#include "satoru/snapshot_browse.hpp"

#include "satoru/time.hpp"

#include <boost/json/array.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

namespace satoru {

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

/// What a snapshot's tags mean in terms of the config.
struct snapshot_owner {
  const site_config* site = nullptr;
  const target_config* target = nullptr;
};

snapshot_owner owner_of(const config& cfg, const snapshot_info& s) {
  snapshot_owner o;
  const auto uuid = s.tag_value("site");
  const auto hash = s.tag_value("target");
  for (const auto& site : cfg.sites)
    if (site.uuid == uuid) o.site = &site;
  if (o.site)
    for (const auto& t : o.site->targets)
      if (t.hash == hash) o.target = &t;
  // The hash depends on mode and path only, so another site's target with
  // the same hash names the same path (a site renamed without a fixed uuid).
  if (!o.target)
    for (const auto& site : cfg.sites)
      for (const auto& t : site.targets)
        if (t.hash == hash && !o.target) o.target = &t;
  return o;
}

boost::json::value string_or_null(const std::string* text) {
  if (!text) return nullptr;
  return boost::json::string(*text);
}

boost::json::array to_array(const std::vector<std::string>& items) {
  boost::json::array out;
  for (const auto& i : items)
    out.emplace_back(i);
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

expected<std::vector<snapshot_info>> target_snapshots(const restic_client& client,
                                                      const site_config& site,
                                                      const target_config& target) {
  auto listed = client.snapshots(snapshot_tags(site.uuid, target.hash));
  if (!listed && listed.err().code != errc::not_found) return listed.err();
  std::vector<snapshot_info> list =
      listed ? std::move(*listed) : std::vector<snapshot_info>{};
  sort_by_time(list);
  return list;
}

expected<snapshot_info> resolve_snapshot(const restic_client& client, const config& cfg,
                                         const site_config& site,
                                         const target_config& target,
                                         const std::string& wanted) {
  auto listed = target_snapshots(client, site, target);
  if (!listed) return listed.err();
  return choose_snapshot(*listed, cfg, site, target, wanted,
                         [&] { return client.snapshots({}); });
}

expected<snapshot_info>
choose_snapshot(const std::vector<snapshot_info>& list, const config& cfg,
                const site_config& site, const target_config& target,
                const std::string& wanted,
                const std::function<expected<std::vector<snapshot_info>>()>& everything) {
  const std::string what = fmt::format("target {} of site {}", target.path, site.name);
  if (wanted == "latest") {
    if (list.empty())
      return error{errc::not_found,
                   fmt::format("{} has no snapshot yet (run `satoru run {} --wait`)",
                               what, site.name)};
    return list.back();
  }
  if (!is_hex(wanted) || wanted.size() < 4 || wanted.size() > 64)
    return error{errc::invalid_argument,
                 fmt::format("\"{}\" is not a snapshot id (hex digits, at least 4) or "
                             "\"latest\"",
                             wanted)};
  std::vector<const snapshot_info*> matches;
  for (const auto& s : list)
    if (s.id.rfind(wanted, 0) == 0) matches.push_back(&s);
  if (matches.size() == 1) return *matches.front();
  if (matches.size() > 1)
    return error{errc::invalid_argument,
                 fmt::format("snapshot id {} is ambiguous: {} snapshots of {} start with "
                             "it; give more digits",
                             wanted, matches.size(), what)};
  // Not one of the target's: say whose it is, so a mix-up is obvious.
  auto all = everything();
  if (all)
    for (const auto& s : *all)
      if (s.id.rfind(wanted, 0) == 0) {
        std::string owner = "not made by satoru";
        auto o = owner_of(cfg, s);
        if (!s.tag_value("target").empty())
          owner = fmt::format(
              "a snapshot of {} of {}",
              o.target ? "target " + o.target->path : "target=" + s.tag_value("target"),
              o.site ? "site " + o.site->name : "site=" + s.tag_value("site"));
        return error{errc::invalid_argument,
                     fmt::format("snapshot {} is not a snapshot of {} (it is {}); "
                                 "`satoru snapshots --site {} --target {}` lists that "
                                 "target's",
                                 wanted, what, owner, site.name, target.hash)};
      }
  return error{
      errc::not_found,
      fmt::format("no snapshot {} in the repository; `satoru snapshots --site {} "
                  "--target {}` lists that target's",
                  wanted, site.name, target.hash)};
}

std::vector<snapshot_node> nodes_below(std::vector<snapshot_node> nodes,
                                       const std::string& path) {
  std::vector<snapshot_node> out;
  for (auto& n : nodes) {
    n.path = relative_snapshot_path(n.path);
    if (path.empty() || n.path == path || n.path.rfind(path + "/", 0) == 0)
      out.push_back(std::move(n));
  }
  return out;
}

boost::json::object snapshot_node_json(const snapshot_node& n) {
  return {{"path", n.path},
          {"name", n.path.substr(n.path.rfind('/') + 1)},
          {"type", n.type},
          {"size", n.size},
          {"mode", fmt::format("{:04o}", n.mode)},
          {"uid", n.uid},
          {"gid", n.gid},
          {"mtime", format_time(n.mtime_ms)}};
}

boost::json::object snapshot_json(const config& cfg, const snapshot_info& s) {
  auto owner = owner_of(cfg, s);
  return {{"id", s.id},
          {"short_id", s.short_id},
          {"time", display_snapshot_time(s)},
          {"site", string_or_null(owner.site ? &owner.site->name : nullptr)},
          {"site_uuid", s.tag_value("site")},
          {"target", string_or_null(owner.target ? &owner.target->path : nullptr)},
          {"mode", string_or_null(owner.target ? &owner.target->mode : nullptr)},
          {"target_hash", s.tag_value("target")},
          {"hostname", s.hostname},
          {"paths", to_array(s.paths)},
          {"tags", to_array(s.tags)}};
}

} // namespace satoru
