#include "cli_context.hpp"
#include "snapshot_support.hpp"

#include "satoru/process.hpp"
#include "satoru/restic.hpp"
#include "satoru/time.hpp"

#include <boost/json.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <iostream>

#include <sys/stat.h>
#include <unistd.h>

namespace satoru::cli {

namespace {

namespace fs = std::filesystem;

struct restore_args {
  std::string site;
  std::string target;
  std::string snapshot = "latest";
  std::string to;
  bool force = false;
};

bool is_hex(const std::string& text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  });
}

/// What a restore left in the folder: counted by walking it, because
/// restic 0.14's restore reports nothing machine-readable.
struct tree_count {
  std::uint64_t files = 0, dirs = 0, links = 0, bytes = 0;
};

tree_count count_tree(const fs::path& root) {
  tree_count c;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(root, ec), end; !ec && it != end;
       it.increment(ec)) {
    auto st = it->symlink_status(ec);
    if (ec) break;
    if (fs::is_symlink(st)) {
      ++c.links;
    } else if (fs::is_directory(st)) {
      ++c.dirs;
    } else if (fs::is_regular_file(st)) {
      ++c.files;
      c.bytes += it->file_size(ec);
    }
  }
  return c;
}

/// The snapshot the user means: the newest of the target, or the one whose
/// id starts with `wanted` — which must be one of this target's.
snapshot_info resolve_or_exit(const restic_client& client, const config& cfg,
                              const site_config& site, const target_config& target,
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

/// `PRAGMA integrity_check` of a restored database: "ok" or sqlite's complaint.
std::string integrity_check(const fs::path& db) {
  process_spec spec;
  spec.argv = {"sqlite3", "-init",  "/dev/null", "-readonly",
               "-bail",   "-batch", db.string(), "PRAGMA integrity_check"};
  spec.timeout = std::chrono::hours{1};
  auto r = run_process(spec);
  if (!r) return "cannot run sqlite3: " + r.err().message;
  std::string verdict = r->out;
  while (!verdict.empty() && (verdict.back() == '\n' || verdict.back() == '\r'))
    verdict.pop_back();
  if (!r->ok()) return r->describe("sqlite3") + (verdict.empty() ? "" : ": " + verdict);
  return verdict;
}

/// Removes a private scratch folder on every return path (fail() throws).
struct scratch_folder {
  fs::path path;
  ~scratch_folder() {
    std::error_code ec;
    if (!path.empty()) fs::remove_all(path, ec);
  }
};

/// Copies a restored folder tree into `to` as root, setting the owners,
/// groups, modes and device files that a daemon not running as root kept in
/// the staged files' "user.rsync.%stat" xattrs (rsync --fake-super; files
/// without that xattr keep their recorded attributes). rsync reads those
/// xattrs as the sender (--fake-super) and writes as a real superuser
/// receiver (-M--super), which is the format's own reader: no parsing here.
expected<void> apply_recorded_owners(const fs::path& from, const fs::path& to) {
  // `to` keeps its own owner and mode: give the scratch root the same, since
  // rsync copies the source folder's attributes onto the destination folder.
  struct stat st {};
  if (::stat(to.c_str(), &st) != 0 || ::chown(from.c_str(), st.st_uid, st.st_gid) != 0 ||
      ::chmod(from.c_str(), st.st_mode & 07777) != 0)
    return error{errc::io, "cannot prepare " + from.string() + ": " +
                               std::generic_category().message(errno)};
  process_spec spec;
  spec.argv = {"rsync",
               "-a",
               "-H",
               "--numeric-ids",
               "--fake-super",
               "-M--super",
               from.string() + "/",
               to.string() + "/"};
  spec.env = {{"LC_ALL", "C"}};
  auto r = run_process(spec);
  if (!r) return error{errc::io, "cannot run rsync: " + r.err().message};
  if (!r->ok()) return error{errc::io, r->describe("rsync")};
  return {};
}

} // namespace

void add_restore_command(CLI::App& app, global_options& opts, command_runner& run) {
  auto args = std::make_shared<restore_args>();
  auto cmd =
      app.add_subcommand("restore", "restore one target of a site from a snapshot");
  cmd->add_option("site", args->site, "site name")->required();
  cmd->add_option("target", args->target, "the target's path or target hash")->required();
  cmd->add_option("--snapshot", args->snapshot,
                  "snapshot id (or a unique prefix) of that target, or \"latest\"")
      ->capture_default_str();
  cmd->add_option("--to", args->to, "folder to restore into (created when missing)")
      ->required();
  cmd->add_flag("--force", args->force,
                "restore into a folder that is not empty (same names are replaced)");
  cmd->add_flag("--json", opts.json, "print the result as JSON");
  cmd->callback([&, args] {
    run = [&, args]() -> int {
      auto cfg = load_config_or_exit(opts);
      const auto& site = site_or_exit(cfg, args->site);
      const auto& target = target_or_exit(site, args->target);

      std::error_code ec;
      const fs::path to = fs::absolute(args->to, ec).lexically_normal();
      auto status = fs::status(to, ec);
      if (fs::exists(status)) {
        if (!fs::is_directory(status))
          fail(exit_usage,
               fmt::format("--to {} exists and is not a folder", to.string()));
        bool empty = fs::directory_iterator(to, ec) == fs::directory_iterator{};
        if (ec)
          fail(exit_usage,
               fmt::format("cannot read --to {}: {}", to.string(), ec.message()));
        if (!empty && !args->force)
          fail(exit_usage,
               fmt::format("--to {} is not empty; use --force to restore into it "
                           "anyway (files of the same name are replaced)",
                           to.string()));
      }

      auto client = local_restic(cfg);
      auto snap = resolve_or_exit(client, cfg, site, target, args->snapshot);
      // The folder that was backed up, as the snapshot recorded it (the
      // staging path at the time, which need not be today's).
      const std::string inner =
          snap.paths.size() == 1 ? snap.paths.front() : std::string{};
      // A folder staged by a daemon that is not root holds the edge's owners
      // and modes in xattrs; only root can set them, through a private
      // scratch folder beside `to` (same filesystem, so it supports the
      // xattrs `to` would get).
      const bool set_owners = target.mode == "directory" && ::geteuid() == 0;
      scratch_folder scratch;
      if (set_owners) {
        fs::create_directories(to, ec);
        std::string tmpl = (to.parent_path() / ".satoru-restore-XXXXXX").string();
        if (ec || ::mkdtemp(tmpl.data()) == nullptr)
          fail(exit_failed,
               fmt::format("restore failed: cannot create a scratch folder beside {}: {}",
                           to.string(),
                           ec ? ec.message() : std::generic_category().message(errno)));
        scratch.path = tmpl;
      }
      if (auto r = client.restore(snap.id, inner,
                                  set_owners ? scratch.path.string() : to.string(),
                                  snapshot_tags(site.uuid, target.hash));
          !r)
        fail(exit_failed, "restore failed: " + r.err().message);
      if (set_owners) {
        if (auto r = apply_recorded_owners(scratch.path, to); !r)
          fail(exit_failed,
               fmt::format("restore failed: cannot set the recorded owners and modes "
                           "in {}: {}",
                           to.string(), r.err().message));
        fs::remove_all(scratch.path, ec);
        scratch.path.clear();
      } else if (target.mode == "directory") {
        std::cerr << "satoru: note: not running as root, so the files are yours; the "
                     "edge's owners, groups and modes are in their user.rsync.%stat "
                     "xattrs (restore as root to set them)\n";
      }

      auto count = count_tree(to);
      boost::json::object result{{"site", site.name},
                                 {"target", target.path},
                                 {"mode", target.mode},
                                 {"target_hash", target.hash},
                                 {"snapshot_id", snap.id},
                                 {"short_id", snap.short_id},
                                 {"time", display_snapshot_time(snap)},
                                 {"to", to.string()},
                                 {"files", count.files},
                                 {"dirs", count.dirs},
                                 {"symlinks", count.links},
                                 {"bytes", count.bytes}};
      std::string summary = fmt::format(
          "restored snapshot {} ({}) of {} {} into {}: {} files, {} folders, {} "
          "symlinks, {}",
          snap.short_id, display_snapshot_time(snap), site.name, target.path, to.string(),
          count.files, count.dirs, count.links, format_bytes(count.bytes));

      int code = exit_ok;
      std::string check_line;
      if (target.mode == "sqlite_dump") {
        // The staged copy was checked before it was snapshotted; this proves
        // the restored bytes are still a sound database.
        const fs::path db = to / fs::path(target.path).filename();
        std::string verdict = fs::is_regular_file(db, ec)
                                  ? integrity_check(db)
                                  : "the snapshot holds no " + db.filename().string();
        result["database"] = db.string();
        result["integrity_check"] = verdict;
        if (verdict == "ok") {
          check_line = fmt::format("PRAGMA integrity_check of {}: ok", db.string());
        } else {
          check_line = fmt::format("PRAGMA integrity_check of {} failed: {}", db.string(),
                                   verdict.substr(0, verdict.find('\n')));
          code = exit_failed;
        }
      }
      if (opts.json) {
        print_json(result);
      } else {
        std::cout << summary << "\n";
        if (!check_line.empty()) std::cout << check_line << "\n";
      }
      if (code != exit_ok) std::cerr << "satoru: " << check_line << "\n";
      return code;
    };
  });
}

} // namespace satoru::cli
