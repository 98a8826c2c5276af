#include "cli_context.hpp"
#include "snapshot_support.hpp"

#include "satoru/restic.hpp"

#include <boost/json.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <iostream>
#include <set>

namespace satoru::cli {

namespace {

struct snapshots_args {
  std::string site;
  std::string target;
};

bool is_target_hash(const std::string& text) {
  return text.size() == 16 && std::all_of(text.begin(), text.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

} // namespace

void add_snapshots_command(CLI::App& app, global_options& opts, command_runner& run) {
  auto args = std::make_shared<snapshots_args>();
  auto cmd = app.add_subcommand("snapshots", "list restic snapshots of a site or target");
  cmd->add_option("--site", args->site, "only this site");
  cmd->add_option(
      "--target", args->target,
      "only this target: its path or target hash (with --site: of that site)");
  cmd->add_flag("--json", opts.json, "print JSON");
  cmd->callback([&, args] {
    run = [&, args]() -> int {
      auto cfg = load_config_or_exit(opts);
      const site_config* site =
          args->site.empty() ? nullptr : &site_or_exit(cfg, args->site);

      // (site uuid, target hash) pairs the listing is limited to; an empty
      // uuid matches any site.
      std::vector<std::pair<std::string, std::string>> wanted;
      if (!args->target.empty()) {
        if (site) {
          wanted.emplace_back(site->uuid, target_or_exit(*site, args->target).hash);
        } else {
          for (const auto& s : cfg.sites)
            if (auto* t = find_target(s, args->target))
              wanted.emplace_back(s.uuid, t->hash);
          // Snapshots outlive their config entry: a bare hash is taken as is.
          if (wanted.empty() && is_target_hash(args->target))
            wanted.emplace_back("", args->target);
          if (wanted.empty())
            fail(exit_usage,
                 fmt::format("no configured site has a target \"{}\" (give a "
                             "path or target hash; --site S lists S's targets)",
                             args->target));
        }
      }

      // restic filters by tags (all of them) when the selection is one
      // target; anything wider is filtered here.
      std::vector<std::string> tags{"satoru"};
      if (site) tags.push_back("site=" + site->uuid);
      if (wanted.size() == 1) {
        if (!site && !wanted[0].first.empty()) tags.push_back("site=" + wanted[0].first);
        tags.push_back("target=" + wanted[0].second);
      }
      auto client = local_restic(cfg);
      auto listed = client.snapshots(tags);
      std::vector<snapshot_info> list;
      if (listed) {
        list = std::move(*listed);
      } else if (listed.err().code == errc::not_found) {
        // No backup ran yet: the repository is created by the first snapshot.
        std::cerr << "satoru: no restic repository at " << cfg.restic_repo_path
                  << " yet (it is created by the first backup)\n";
      } else {
        fail(exit_failed, listed.err().message);
      }
      if (wanted.size() > 1) {
        list.erase(std::remove_if(list.begin(), list.end(),
                                  [&](const snapshot_info& s) {
                                    for (const auto& [uuid, hash] : wanted)
                                      if ((uuid.empty() || s.tag_value("site") == uuid) &&
                                          s.tag_value("target") == hash)
                                        return false;
                                    return true;
                                  }),
                   list.end());
      }
      sort_by_time(list);

      if (opts.json) {
        boost::json::array out;
        for (const auto& s : list)
          out.push_back(snapshot_json(cfg, s));
        print_json(out);
        return exit_ok;
      }
      std::cout << fmt::format("{:<10} {:<20} {:<20} {}\n", "ID", "TIME", "SITE",
                               "TARGET");
      for (const auto& s : list) {
        auto j = snapshot_json(cfg, s);
        auto site_text = j.at("site").is_null() ? "site=" + s.tag_value("site")
                                                : std::string(j.at("site").as_string());
        auto target_text = j.at("target").is_null()
                               ? "target=" + s.tag_value("target")
                               : std::string(j.at("target").as_string());
        std::cout << fmt::format("{:<10} {:<20} {:<20} {}\n", s.short_id,
                                 display_snapshot_time(s), site_text, target_text);
      }
      if (list.empty()) std::cerr << "satoru: no snapshots\n";
      return exit_ok;
    };
  });
}

} // namespace satoru::cli
