#include "cli_context.hpp"
#include "snapshot_support.hpp"

#include "satoru/disk_headroom.hpp"
#include "satoru/host_restore.hpp"
#include "satoru/process.hpp"
#include "satoru/restic.hpp"
#include "satoru/sqlite_check.hpp"
#include "satoru/time.hpp"

#include <boost/json.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

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
  std::vector<std::string> paths; ///< --path: only these, relative to the target
  bool force = false;
  // Back to the edge host (--to-host) instead of a local folder.
  bool to_host = false;
  std::string dest;
  bool delete_extra = false, dry_run = false, yes = false, replace = false;
  int bwlimit = -1; ///< --bwlimit KiB/s; -1 = the target's bwlimit_kbps
};

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

/// The checks on `--to` that need nothing restored yet: it may be missing
/// (created later), else it must be a real folder (not a symlink) of the
/// user running the restore, and empty unless `force`. Exits 2 otherwise.
void check_restore_folder(const fs::path& to, bool force) {
  struct stat st {};
  if (::lstat(to.c_str(), &st) != 0) {
    if (errno == ENOENT) return;
    fail(exit_usage, fmt::format("cannot read --to {}: {}", to.string(),
                                 std::generic_category().message(errno)));
  }
  if (S_ISLNK(st.st_mode))
    fail(exit_usage,
         fmt::format("--to {} is a symlink; give the folder it points to, if that is "
                     "really where the files belong",
                     to.string()));
  if (!S_ISDIR(st.st_mode))
    fail(exit_usage, fmt::format("--to {} exists and is not a folder", to.string()));
  if (st.st_uid != ::geteuid())
    fail(exit_usage,
         fmt::format("--to {} belongs to uid {}, not to the user restoring (uid {}); "
                     "restore into a folder of your own and move the files from there",
                     to.string(), st.st_uid, ::geteuid()));
  std::error_code ec;
  bool empty = fs::directory_iterator(to, ec) == fs::directory_iterator{};
  if (ec)
    fail(exit_usage, fmt::format("cannot read --to {}: {}", to.string(), ec.message()));
  if (!empty && !force)
    fail(exit_usage, fmt::format("--to {} is not empty; use --force to restore into it "
                                 "anyway (files of the same name are replaced)",
                                 to.string()));
}

/// Creates a missing `--to` as a private folder (0700: restored files may be
/// secrets whatever their own modes say); its parents the usual way.
void create_restore_folder(const fs::path& to) {
  std::error_code ec;
  fs::create_directories(to.parent_path(), ec);
  if (::mkdir(to.c_str(), 0700) != 0 && errno != EEXIST)
    fail(exit_failed, fmt::format("restore failed: cannot create {}: {}", to.string(),
                                  std::generic_category().message(errno)));
  // Created meanwhile by someone else: the same checks again.
  check_restore_folder(to, true);
}

/// Every `--path` names something in the snapshot; else exit 2 naming the
/// first that does not.
void check_paths_in_snapshot(const std::vector<snapshot_node>& listed,
                             const std::vector<std::string>& paths,
                             const snapshot_info& snap, const target_config& target) {
  for (const auto& p : paths) {
    const auto wanted = relative_snapshot_path(p);
    bool found = std::any_of(listed.begin(), listed.end(), [&](const snapshot_node& n) {
      return !wanted.empty() && relative_snapshot_path(n.path) == wanted;
    });
    if (!found)
      fail(exit_usage,
           fmt::format("--path {}: snapshot {} of {} has no such file or folder (`satoru "
                       "ls` lists what it holds)",
                       p, snap.short_id, target.path));
  }
}

/// Every `--path` names something in the snapshot (checked before anything
/// is created, so a typo costs nothing; exits 2 naming the first that does
/// not), and what will be restored fits on the filesystem of `to` with
/// disk_min_free to spare (`copies`: 2 when it passes through a scratch
/// folder there; exits 1 otherwise). Returns the bytes restic will write.
std::int64_t check_restore_plan(const config& cfg, const restic_client& client,
                                const snapshot_info& snap, const target_config& target,
                                const std::vector<std::string>& paths, const fs::path& to,
                                int copies) {
  auto listed = client.ls(snap.id);
  if (!listed) fail(exit_failed, listed.err().message);
  const std::int64_t bytes = restore_bytes(*listed, paths);
  if (auto problem = headroom_problem(cfg, to.string(), "restore", bytes * copies);
      !problem.empty())
    fail(exit_failed, "restore refused: " + problem);
  check_paths_in_snapshot(*listed, paths, snap, target);
  return bytes;
}

/// `restore --to DIR`: into a local folder.
int restore_to_folder(const config& cfg, const site_config& site,
                      const target_config& target, const restore_args* args,
                      const global_options& opts) {

  std::error_code ec;
  const fs::path to = fs::absolute(args->to, ec).lexically_normal();
  check_restore_folder(to, args->force);
  auto client = local_restic(cfg);
  client.wait_for_locks(); // a retention running now delays the restore, never fails it
  auto snap = resolve_snapshot_or_exit(client, cfg, site, target, args->snapshot);
  // The folder that was backed up, as the snapshot recorded it (the
  // staging path at the time, which need not be today's).
  const std::string inner = snap.paths.size() == 1 ? snap.paths.front() : std::string{};
  // A folder staged by a daemon that is not root holds the edge's owners
  // and modes in xattrs; only root can set them, through a private
  // scratch folder beside `to` (same filesystem, so it supports the
  // xattrs `to` would get).
  const bool set_owners = target.mode == "directory" && ::geteuid() == 0;
  const auto bytes =
      check_restore_plan(cfg, client, snap, target, args->paths, to, set_owners ? 2 : 1);
  create_restore_folder(to);
  scratch_folder scratch;
  if (set_owners) {
    std::string tmpl = (to.parent_path() / ".satoru-restore-XXXXXX").string();
    if (ec || ::mkdtemp(tmpl.data()) == nullptr)
      fail(exit_failed,
           fmt::format("restore failed: cannot create a scratch folder beside {}: {}",
                       to.string(),
                       ec ? ec.message() : std::generic_category().message(errno)));
    scratch.path = tmpl;
  }
  {
    local_progress shown{opts.json, target.path};
    client.report_to(&shown, target.hash);
    auto r =
        client.restore(snap.id, inner, set_owners ? scratch.path.string() : to.string(),
                       snapshot_tags(site.uuid, target.hash), {}, args->paths, bytes);
    client.report_to(nullptr);
    if (!r) fail(exit_failed, "restore failed: " + r.err().message);
  }
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
  boost::json::object result{
      {"type", "result"},           {"site", site.name},
      {"target", target.path},      {"mode", target.mode},
      {"target_hash", target.hash}, {"snapshot_id", snap.id},
      {"short_id", snap.short_id},  {"time", display_snapshot_time(snap)},
      {"to", to.string()},          {"files", count.files},
      {"dirs", count.dirs},         {"symlinks", count.links},
      {"bytes", count.bytes}};
  boost::json::array paths;
  for (const auto& p : args->paths)
    paths.emplace_back(p);
  result["paths"] = std::move(paths);
  std::string summary = fmt::format(
      "restored {}snapshot {} ({}) of {} {} into {}: {} files, {} folders, {} "
      "symlinks, {}",
      args->paths.empty() ? "" : fmt::format("{} of ", fmt::join(args->paths, ", ")),
      snap.short_id, display_snapshot_time(snap), site.name, target.path, to.string(),
      count.files, count.dirs, count.links, format_bytes(count.bytes));

  int code = exit_ok;
  std::string check_line;
  const fs::path db = to / fs::path(target.path).filename();
  // A partial restore checks the database only when it restored it.
  if (target.mode == "sqlite_dump" &&
      (args->paths.empty() || fs::is_regular_file(db, ec))) {
    // The staged copy was checked before it was snapshotted; this proves
    // the restored bytes are still a sound database.
    std::string verdict = fs::is_regular_file(db, ec)
                              ? sqlite_integrity_check(db.string())
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
}

/// The flags of the two kinds of restore do not mix; exits 2 naming the
/// first that does not fit.
void check_restore_flags(const restore_args& a, const target_config& target) {
  if (a.to.empty() == !a.to_host)
    fail(exit_usage, "give either --to DIR (a folder here) or --to-host (back to the "
                     "edge host)");
  if (!a.to_host) {
    for (auto [given, flag] :
         {std::pair{!a.dest.empty(), "--dest"}, std::pair{a.delete_extra, "--delete"},
          std::pair{a.dry_run, "--dry-run"}, std::pair{a.yes, "--yes"},
          std::pair{a.replace, "--replace"}, std::pair{a.bwlimit >= 0, "--bwlimit"}})
      if (given) fail(exit_usage, std::string(flag) + " goes with --to-host");
    return;
  }
  if (a.force) fail(exit_usage, "--force goes with --to DIR, not --to-host");
  if (a.dry_run && a.yes) fail(exit_usage, "give --dry-run or --yes, not both");
  host_restore_request asked;
  asked.dest = a.dest;
  asked.paths = a.paths;
  asked.delete_extra = a.delete_extra;
  asked.replace = a.replace;
  if (auto problem = host_restore_request_problem(target, asked); !problem.empty())
    fail(exit_usage, problem);
}

/// The itemized list of a restore job's "restore.changes" event, one path a
/// line: "+ created", "M updated", "- deleted" (or, when nothing is
/// deleted, "? only on the host").
void print_changes(store& db, std::int64_t job_id) {
  auto events = db.list_events(job_id);
  if (!events) return;
  for (const auto& e : *events) {
    if (e.step != restore_changes_step || e.data.empty()) continue;
    boost::system::error_code ec;
    auto data = boost::json::parse(e.data, ec);
    if (ec || !data.is_object()) continue;
    const auto& o = data.as_object();
    const char* deleted_mark = o.at("delete").as_bool() ? "-" : "?";
    for (auto [key, mark] : {std::pair{"created", "+"}, std::pair{"updated", "M"},
                             std::pair{"deleted", deleted_mark}})
      for (const auto& p : o.at(key).as_array())
        std::cout << mark << " " << terminal_safe(p.as_string()) << "\n";
  }
}

/// `restore --to-host`: a queued restore job, followed like `run --wait`.
int restore_to_host(const config& cfg, const site_config& site,
                    const target_config& target, const restore_args& args,
                    const global_options& opts) {
  auto client = local_restic(cfg);
  auto snap = resolve_snapshot_or_exit(client, cfg, site, target, args.snapshot);
  if (!args.paths.empty()) {
    auto listed = client.ls(snap.id);
    if (!listed) fail(exit_failed, listed.err().message);
    check_paths_in_snapshot(*listed, args.paths, snap, target);
  }
  host_restore_request request;
  request.target_hash = target.hash;
  request.snapshot_id = snap.id;
  request.snapshot_path = snap.paths.size() == 1 ? snap.paths.front() : std::string{};
  for (const auto& p : args.paths)
    request.paths.push_back(relative_snapshot_path(p));
  request.dest = args.dest.empty()
                     ? std::string{}
                     : std::filesystem::path(args.dest).lexically_normal().string();
  request.delete_extra = args.delete_extra;
  request.replace = args.replace;
  request.apply = args.yes;
  request.bwlimit_kbps = args.bwlimit;
  auto db = open_store_or_exit(cfg);
  auto row = db.find_site(site.name);
  if (!row || !*row) fail(exit_failed, "site " + site.name + " is not in the database");
  std::int64_t job_id = 0;
  int code = queue_job(cfg, db, job_type::restore, (*row)->id,
                       fmt::format("a restore of {} to {}", target.path, site.name), true,
                       opts.json, request.to_json(), &job_id);
  if (opts.json) return code;
  print_changes(db, job_id);
  if (code == exit_ok && !args.yes)
    std::cout << fmt::format("dry run: nothing was changed on {}; run again with --yes "
                             "to restore{}\n",
                             site.name,
                             target.mode == "directory" && !args.delete_extra
                                 ? " (add --delete to remove the files marked ?)"
                                 : "");
  return code;
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
  cmd->add_option("--to", args->to, "folder to restore into (created when missing)");
  cmd->add_option("--path", args->paths,
                  "restore only this file or folder, relative to the target's root "
                  "(repeatable; `satoru ls` shows the names)");
  cmd->add_flag("--force", args->force,
                "restore into a folder that is not empty (same names are replaced)");
  cmd->add_flag("--to-host", args->to_host,
                "restore back to the site's edge host over its pinned SSH (a queued "
                "restore job; without --yes only shows what would change)");
  cmd->add_option("--dest", args->dest,
                  "with --to-host: restore to this absolute path on the edge host (a "
                  "folder, or for a database the new file) instead of the target's");
  cmd->add_flag("--delete", args->delete_extra,
                "with --to-host: remove files the snapshot does not hold");
  cmd->add_flag(
      "--dry-run", args->dry_run,
      "with --to-host: only show what would change (the default without --yes)");
  cmd->add_flag("--yes", args->yes, "with --to-host: make the changes");
  cmd->add_flag("--replace", args->replace,
                "with --to-host, for a database: rename the restored, checked file over "
                "the live one, keeping the old one aside (stop the application first)");
  cmd->add_option("--bwlimit", args->bwlimit,
                  "with --to-host: limit the transfer to KBPS KiB/s (0 = unlimited; "
                  "default: the target's bwlimit_kbps)")
      ->type_name("KBPS")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--json", opts.json, "print the result as JSON");
  cmd->callback([&, args] {
    run = [&, args]() -> int {
      const named_target named{opts, args->site, args->target};
      const auto& [cfg, site, target] = std::tie(named.cfg, named.site, named.target);
      check_restore_flags(*args, target);
      if (args->to_host) return restore_to_host(cfg, site, target, *args, opts);
      return restore_to_folder(cfg, site, target, args.get(), opts);
    };
  });
}

} // namespace satoru::cli
