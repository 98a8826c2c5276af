#include "cli_context.hpp"
#include "snapshot_support.hpp"

#include "satoru/restic.hpp"
#include "satoru/time.hpp"

#include <boost/json.hpp>
#include <fmt/format.h>

#include <iostream>
#include <map>

namespace satoru::cli {

namespace {

struct diff_args {
  std::string site;
  std::string target;
  std::string from;
  std::string to;
};

/// Type and size of every entry of a snapshot, by relative path.
using node_index = std::map<std::string, snapshot_node>;

node_index index_of(const restic_client& client, const snapshot_info& snap) {
  auto listed = client.ls(snap.id);
  if (!listed) fail(exit_failed, listed.err().message);
  node_index out;
  for (auto& n : *listed) {
    auto path = relative_snapshot_path(n.path);
    out[path] = std::move(n);
  }
  return out;
}

/// One changed path as the user reads it: what kind of change and sizes.
struct change_row {
  std::string kind; ///< "added", "removed", "changed"
  std::string path;
  std::string type;
  std::int64_t size_before = -1, size_after = -1; ///< -1 = absent
};

std::vector<change_row> describe_changes(const std::vector<snapshot_change>& changes,
                                         const node_index& before,
                                         const node_index& after) {
  std::vector<change_row> out;
  for (const auto& c : changes) {
    change_row row;
    row.path = relative_snapshot_path(c.path);
    row.kind = c.modifier == '+' ? "added" : c.modifier == '-' ? "removed" : "changed";
    auto b = before.find(row.path), a = after.find(row.path);
    if (b != before.end()) {
      row.type = b->second.type;
      row.size_before = b->second.size;
    }
    if (a != after.end()) {
      row.type = a->second.type;
      row.size_after = a->second.size;
    }
    out.push_back(std::move(row));
  }
  return out;
}

boost::json::object row_json(const change_row& r) {
  boost::json::object o{{"path", r.path}, {"type", r.type}};
  if (r.size_before >= 0) o["size_before"] = r.size_before;
  if (r.size_after >= 0) o["size_after"] = r.size_after;
  return o;
}

std::string size_text(std::int64_t size) {
  return size < 0 ? "-" : format_bytes(static_cast<std::uint64_t>(size));
}

} // namespace

void add_diff_command(CLI::App& app, global_options& opts, command_runner& run) {
  auto args = std::make_shared<diff_args>();
  auto cmd = app.add_subcommand(
      "diff", "what was added, removed and changed between two snapshots of a target");
  cmd->add_option("site", args->site, "site name")->required();
  cmd->add_option("target", args->target, "the target's path or target hash")->required();
  cmd->add_option("snap_a", args->from, "the older snapshot (id, prefix or \"latest\")")
      ->required();
  cmd->add_option("snap_b", args->to, "the newer snapshot (id, prefix or \"latest\")")
      ->required();
  cmd->add_flag("--json", opts.json, "print JSON");
  cmd->callback([&, args] {
    run = [&, args]() -> int {
      const named_target named{opts, args->site, args->target};
      const auto& [cfg, site, target] = std::tie(named.cfg, named.site, named.target);
      auto client = local_restic(cfg);
      auto from = resolve_snapshot_or_exit(client, cfg, site, target, args->from);
      auto to = resolve_snapshot_or_exit(client, cfg, site, target, args->to);
      auto changes = client.diff(from.id, to.id);
      if (!changes) fail(exit_failed, changes.err().message);
      auto rows =
          describe_changes(*changes, index_of(client, from), index_of(client, to));

      std::map<std::string, std::size_t> count;
      for (const auto& r : rows)
        ++count[r.kind];
      if (opts.json) {
        boost::json::object out{{"from", from.id}, {"to", to.id}};
        for (const char* kind : {"added", "removed", "changed"})
          out[kind] = boost::json::array{};
        for (const auto& r : rows)
          out[r.kind].as_array().push_back(row_json(r));
        print_json(out);
        return exit_ok;
      }
      for (const auto& r : rows) {
        const char sign = r.kind == "added" ? '+' : r.kind == "removed" ? '-' : 'M';
        std::string sizes =
            r.kind == "changed"
                ? size_text(r.size_before) + " -> " + size_text(r.size_after)
                : size_text(r.kind == "added" ? r.size_after : r.size_before);
        std::cout << fmt::format("{} {:<8} {:>22}  {}\n", sign, r.type, sizes,
                                 terminal_safe(r.path));
      }
      std::cout << fmt::format("{} -> {}: {} added, {} removed, {} changed\n",
                               from.short_id, to.short_id, count["added"],
                               count["removed"], count["changed"]);
      return exit_ok;
    };
  });
}

} // namespace satoru::cli
