#include "satoru/host_restore.hpp"

#include "satoru/disk_headroom.hpp"
#include "satoru/files.hpp"
#include "satoru/preflight.hpp"
#include "satoru/process.hpp"
#include "satoru/restic.hpp"
#include "satoru/rsync.hpp"
#include "satoru/ssh.hpp"
#include "satoru/text.hpp"
#include "satoru/time.hpp"

#include <boost/json.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <optional>

#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

namespace satoru {

namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;

/// Remote checks are small commands; a host that cannot answer them in this
/// long will not take a restore either.
constexpr milliseconds remote_timeout{60'000};
/// A transfer silent for this long is stopped (as a pull's default).
constexpr seconds no_progress_timeout{300};
/// Paths of each kind an event carries; the rest are counted.
constexpr std::size_t listed_max = 1000;

/// Everything the steps of one attempt share.
struct restore_run {
  const config& cfg;
  const site_config& site;
  const target_config& target;
  const host_restore_request& req;
  event_sink& events;
  const cancel_token& cancel;
  ssh_endpoint endpoint;
  bool sudo = false;
};

job_outcome failure(restore_run& run, const std::string& message, failure_kind kind) {
  run.events.emit("fail", "restore", run.target.hash, message, {});
  return job_outcome{job_status::failed, message, kind, {}, std::nullopt};
}

job_outcome success() {
  return job_outcome{job_status::success, "", failure_kind::none, {}, std::nullopt};
}

/// "20261128T130501.123Z": a name part that sorts by time, needs no quoting
/// and differs between two restores of the same second.
std::string compact_utc_now() {
  const auto ms = now_ms();
  std::time_t now = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%S", &tm);
  return fmt::format("{}.{:03}Z", buf, ms % 1000);
}

const target_config* target_of(const site_config& site, const std::string& hash) {
  for (const auto& t : site.targets)
    if (t.hash == hash) return &t;
  return nullptr;
}

bool sudo_of(const target_config& target) {
  const auto* v = target.options.if_contains("sudo");
  return v && v->is_bool() && v->get_bool();
}

/// Bytes of the files the request restores (what the scratch folder needs).
expected<std::int64_t> bytes_to_restore(restore_run& run, const restic_client& client) {
  auto listed = client.ls(run.req.snapshot_id, run.cancel);
  if (!listed) return listed.err();
  return restore_bytes(*listed, run.req.paths);
}

/// One command over the site's pinned session; its stdout, or an error
/// naming what it was for.
expected<std::string> remote(restore_run& run, ssh_session& session,
                             const std::string& command, const std::string& what) {
  auto r = session.exec(command, remote_timeout, run.cancel);
  if (!r) return r.err();
  if (r->exit_status != 0)
    return error{errc::io, fmt::format("{} failed on {} (exit {}): {}", what,
                                       run.endpoint.display(), r->exit_status,
                                       capped_output(trim(r->err + r->out)))};
  return r->out;
}

/// The rsync that sends `source` to `remote_dest`: the site's pinned ssh,
/// the target's bandwidth limit, owners and modes as recorded
/// (--numeric-ids; the sender reads them from the user.rsync.%stat xattrs
/// with --fake-super, which a daemon that is not root wrote when it pulled,
/// also when root runs the restore; a file without that xattr sends its
/// own), the edge rsync as root with sudo, and an itemized list of every
/// change.
std::vector<std::string> push_argv(const restore_run& run, const std::string& source,
                                   const std::string& remote_dest) {
  auto argv = rsync_base_args(run.endpoint, host_restore_transfer(run.target, run.req));
  for (const char* flag : {"-a", "-H", "--numeric-ids", "-i", "--fake-super"})
    argv.emplace_back(flag);
  if (run.sudo) argv.push_back("--rsync-path=" + std::string(sudo_rsync_path));
  argv.push_back(source);
  argv.push_back(remote_dest);
  return argv;
}

/// Runs an rsync push; its stdout, or the failure in one line.
expected<std::string> run_push(restore_run& run, std::vector<std::string> argv) {
  process_spec spec;
  spec.argv = std::move(argv);
  spec.env = rsync_environment();
  spec.no_progress_timeout = no_progress_timeout;
  spec.progress_output = progress_format::rsync_progress2;
  spec.progress_step = "push";
  std::optional<progress_feed> feed;
  feed.emplace(run.events, run.target.hash, spec);
  auto r = run_process(spec, run.cancel);
  feed.reset(); // the step ended: its last values, before the result's events
  if (!r) return error{errc::io, "cannot run rsync: " + r.err().message};
  if (!r->ok()) return error{errc::io, rsync_failure_message(*r, no_progress_timeout)};
  return r->out;
}

/// An rsync filter pattern that matches `path` by name, then `tail` (meant
/// as wildcards). rsync reads a backslash as an escape only in a pattern
/// that holds a wildcard character (*, ? or [), and then literally
/// otherwise: so `path`'s *, ?, [, ] and \ are escaped exactly when the
/// whole pattern holds one.
std::string literal_pattern(const std::string& path, const std::string& tail) {
  if ((path + tail).find_first_of("*?[") == std::string::npos) return path + tail;
  std::string out;
  for (char c : path) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') out += '\\';
    out += c;
  }
  return out + tail;
}

/// rsync filter rules that limit a transfer (and its --delete) to the
/// requested paths: their parent folders, themselves and what is below
/// them; everything else is excluded, which also protects it from deletion.
std::vector<std::string> path_filters(const std::vector<std::string>& paths) {
  std::vector<std::string> out;
  for (const auto& p : paths) {
    for (auto slash = p.find('/'); slash != std::string::npos;
         slash = p.find('/', slash + 1))
      out.push_back("--include=" + literal_pattern("/" + p.substr(0, slash), "/"));
    out.push_back("--include=" + literal_pattern("/" + p, ""));
    out.push_back("--include=" + literal_pattern("/" + p, "/***"));
  }
  if (!out.empty()) out.emplace_back("--exclude=*");
  return out;
}

/// The folder the restore goes into keeps its own owner and mode: rsync
/// copies the source folder's attributes onto it, so the scratch root gets
/// them first (owner as root, and always as the xattr the sender reads).
expected<void> match_folder_attributes(const std::string& scratch,
                                       const std::string& probe) {
  unsigned mode = 0700;
  long uid = -1, gid = -1;
  char kind[16] = {0};
  if (std::sscanf(probe.c_str(), "%15s %ld %ld", kind, &uid, &gid) != 3)
    return error{errc::io,
                 "unexpected answer from the edge host: " + capped_output(probe)};
  if (std::string(kind) != "missing")
    mode = static_cast<unsigned>(std::strtoul(kind, nullptr, 8));
  if (::chmod(scratch.c_str(), mode & 07777) != 0)
    return error{errc::io, "cannot prepare " + scratch + ": " +
                               std::generic_category().message(errno)};
  if (::geteuid() == 0 &&
      ::chown(scratch.c_str(), static_cast<uid_t>(uid), static_cast<gid_t>(gid)) != 0)
    return error{errc::io, "cannot prepare " + scratch + ": " +
                               std::generic_category().message(errno)};
  // The sender reads attributes with --fake-super: this xattr wins over
  // the folder's own.
  const std::string stat_xattr =
      fmt::format("{:o} 0,0 {}:{}", S_IFDIR | (mode & 07777), uid, gid);
  (void)::setxattr(scratch.c_str(), "user.rsync.%stat", stat_xattr.data(),
                   stat_xattr.size(), 0);
  return {};
}

boost::json::array json_list(const std::vector<std::string>& items) {
  boost::json::array out;
  for (std::size_t i = 0; i < items.size() && i < listed_max; ++i)
    out.emplace_back(items[i]);
  return out;
}

/// The "restore.changes" event: `summary` and the itemized lists, which
/// `satoru restore` prints.
void emit_changes(restore_run& run, const itemized_changes& changes,
                  const std::string& where, const std::string& summary) {
  run.events.emit("ok", restore_changes_step, run.target.hash, summary,
                  {{"applied", run.req.apply},
                   {"delete", run.req.delete_extra},
                   {"destination", where},
                   {"created", json_list(changes.created)},
                   {"updated", json_list(changes.updated)},
                   {"deleted", json_list(changes.deleted)},
                   {"created_count", changes.created.size()},
                   {"updated_count", changes.updated.size()},
                   {"deleted_count", changes.deleted.size()}});
}

/// "restored into /srv/shop: created 1, updated 2, deleted 0" (or what a
/// dry run would do).
std::string folder_summary(const restore_run& run, const itemized_changes& changes,
                           const std::string& where) {
  const bool apply = run.req.apply;
  const std::string deleted =
      run.req.delete_extra
          ? fmt::format("{} {}", apply ? "deleted" : "would delete",
                        changes.deleted.size())
          : fmt::format("{} only on the host (kept; --delete removes them)",
                        changes.deleted.size());
  return fmt::format("{} {}: {} {}, {} {}, {}", apply ? "restored into" : "dry run for",
                     where, apply ? "created" : "would create", changes.created.size(),
                     apply ? "updated" : "would update", changes.updated.size(), deleted);
}

/// A directory target: the dry run always asks rsync what --delete would
/// remove (so the list shows files only the host has), the real run deletes
/// only with --delete.
job_outcome push_folder(restore_run& run, ssh_session& session,
                        const std::string& scratch) {
  const std::string dest = run.req.dest.empty() ? run.target.path : run.req.dest;
  auto probe = remote(
      run, session,
      "d=" + shell_quote(dest) +
          "; if [ -d \"$d\" ]; then stat -c '%a %u %g' -- \"$d\"; elif [ -e \"$d\" ]; "
          "then echo notdir 0 0; else echo missing $(id -u) $(id -g); fi",
      "looking at " + dest);
  if (!probe) return failure(run, probe.err().message, classify(probe.err().code));
  if (probe->rfind("notdir", 0) == 0)
    return failure(
        run,
        fmt::format("{} on {} exists and is not a folder", dest, run.endpoint.display()),
        failure_kind::permanent);
  if (auto r = match_folder_attributes(scratch, *probe); !r)
    return failure(run, r.err().message, failure_kind::permanent);
  auto remote_dest = rsync_remote_path(run.endpoint, dest, /*contents=*/true);
  if (!remote_dest)
    return failure(run, remote_dest.err().message, failure_kind::permanent);
  auto argv = push_argv(run, scratch + "/", *remote_dest);
  // Options go before the two paths.
  std::vector<std::string> extra = path_filters(run.req.paths);
  if (!run.req.apply || run.req.delete_extra) extra.emplace_back("--delete");
  if (!run.req.apply) extra.emplace_back("--dry-run");
  argv.insert(argv.end() - 2, extra.begin(), extra.end());
  run.events.emit("info", "restore.rsync", run.target.hash,
                  fmt::format("{} snapshot {} to {}:{}",
                              run.req.apply ? "sending" : "comparing (dry run)",
                              run.req.snapshot_id.substr(0, 8), run.endpoint.display(),
                              dest),
                  {});
  auto out = run_push(run, std::move(argv));
  if (!out)
    return failure(run, "restore to " + dest + " failed: " + out.err().message,
                   classify(out.err().code));
  const auto changes = itemized_changes::parse(*out);
  emit_changes(run, changes, dest, folder_summary(run, changes, dest));
  return success();
}

/// The live database's name for the file it is replaced by and for the
/// copy of the old one kept aside.
struct database_names {
  std::string restored, aside;
};

/// Moves the old database aside (a hard link, so the live name never goes
/// missing; its -wal, -shm and -journal files are moved with it, or the
/// restored database would be read with the old one's journal), gives the
/// restored file the live one's mode and, where the edge user may, owner
/// (the snapshot holds the copy, not the live file's attributes), and
/// renames it over the live one: one atomic rename.
std::string replace_script(const std::string& live, const database_names& names) {
  return "set -e; p=" + shell_quote(live) + "; n=" + shell_quote(names.restored) +
         "; a=" + shell_quote(names.aside) +
         "; [ -f \"$n\" ]; if [ -e \"$p\" ]; then chmod \"$(stat -c %a -- \"$p\")\" "
         "\"$n\"; chown \"$(stat -c %u:%g -- \"$p\")\" \"$n\" 2>/dev/null || true; ln -- "
         "\"$p\" \"$a\" 2>/dev/null || cp -p -- \"$p\" \"$a\"; fi; for s in -wal -shm "
         "-journal; do if [ -e \"$p$s\" ]; then mv -f -- \"$p$s\" \"$a$s\"; fi; done; mv "
         "-f -- \"$n\" \"$p\"";
}

/// A sqlite_dump target: never written over the live database. The
/// restored file goes beside it, is checked on the edge host, and only
/// `replace` swaps it in.
job_outcome push_database(restore_run& run, ssh_session& session,
                          const std::string& scratch) {
  const std::string name = fs::path(run.target.path).filename().string();
  const std::string local = scratch + "/" + name;
  std::error_code ec;
  const auto size = fs::file_size(local, ec);
  if (ec)
    return failure(run,
                   "snapshot " + run.req.snapshot_id.substr(0, 8) + " holds no " + name,
                   failure_kind::permanent);
  const std::string stamp = compact_utc_now();
  const database_names names{run.req.dest.empty() ? run.target.path + ".restored-" + stamp
                                                  : run.req.dest,
                             run.target.path + ".before-restore-" + stamp};
  auto probe = remote(run, session,
                      "if [ -e " + shell_quote(names.restored) +
                          " ]; then echo exists; else echo free; fi",
                      "looking at " + names.restored);
  if (!probe) return failure(run, probe.err().message, classify(probe.err().code));
  if (probe->rfind("exists", 0) == 0)
    return failure(run,
                   fmt::format("{} already exists on {}; give another --dest",
                               names.restored, run.endpoint.display()),
                   failure_kind::permanent);
  itemized_changes changes;
  changes.created.push_back(names.restored);
  if (!run.req.apply) {
    emit_changes(
        run, changes, names.restored,
        fmt::format("dry run: would write {} ({}) beside {} and check it with PRAGMA "
                    "integrity_check{}",
                    names.restored, format_bytes(size), run.target.path,
                    run.req.replace
                        ? fmt::format("; then keep {} as {} and rename the restored "
                                      "file over it",
                                      run.target.path, names.aside)
                        : std::string{"; the live database is not touched"}));
    return success();
  }
  auto remote_dest = rsync_remote_path(run.endpoint, names.restored, /*contents=*/false);
  if (!remote_dest)
    return failure(run, remote_dest.err().message, failure_kind::permanent);
  if (auto out = run_push(run, push_argv(run, local, *remote_dest)); !out)
    return failure(run,
                   "sending the database to " + names.restored +
                       " failed: " + out.err().message,
                   classify(out.err().code));
  emit_changes(run, changes, names.restored,
               fmt::format("wrote {} ({}) beside {}", names.restored, format_bytes(size),
                           run.target.path));
  auto verdict = remote(run, session,
                        "sqlite3 -readonly " + shell_quote(names.restored) +
                            " 'PRAGMA integrity_check'",
                        "PRAGMA integrity_check of " + names.restored);
  if (!verdict || trim(*verdict) != "ok")
    return failure(
        run,
        fmt::format("PRAGMA integrity_check of {} on the edge host failed: {}; "
                    "the file is left there, the live database is untouched",
                    names.restored,
                    verdict ? std::string(trim(*verdict).substr(0, 200))
                            : verdict.err().message),
        failure_kind::permanent);
  run.events.emit("ok", "restore.check", run.target.hash,
                  "PRAGMA integrity_check of " + names.restored + " on the edge host: ok",
                  {{"database", names.restored}});
  if (!run.req.replace) return success();
  if (auto r = remote(run, session, replace_script(run.target.path, names),
                      "replacing " + run.target.path);
      !r)
    return failure(run, r.err().message, classify(r.err().code));
  run.events.emit("ok", "restore.replace", run.target.hash,
                  fmt::format("{} replaced by the restored database; the old one is kept "
                              "as {}",
                              run.target.path, names.aside),
                  {{"database", run.target.path}, {"kept_aside", names.aside}});
  return success();
}

/// Top-level folders of the system, where a `--delete` into one of them
/// would remove what the snapshot does not hold from the whole system.
bool system_folder(const std::string& normal) {
  static const char* const folders[] = {
      "/",       "/bin",  "/boot", "/dev", "/etc",  "/lib", "/lib32", "/lib64",
      "/libx32", "/proc", "/root", "/run", "/sbin", "/sys", "/usr",   "/var"};
  return std::any_of(std::begin(folders), std::end(folders),
                     [&](const char* f) { return normal == f; });
}

/// Why `request.dest` is refused ("" when it is not): not absolute, holding
/// a `..` (the place it names is not the place it reads as), or `/` or a
/// top-level system folder together with `delete_extra`.
std::string dest_problem(const host_restore_request& request,
                         const host_restore_option_names& names) {
  const std::string& dest = request.dest;
  if (dest.empty()) return {};
  if (dest.front() != '/')
    return fmt::format("{} {}: give an absolute path on the edge host", names.dest, dest);
  std::string normal; // without repeated slashes, "." and a trailing slash
  for (const auto& part : fs::path(dest)) {
    const std::string name = part.string();
    if (name == "..")
      return fmt::format("{} {}: give a path without \"..\"", names.dest, dest);
    if (name != "." && name.find_first_not_of('/') != std::string::npos)
      normal += "/" + name;
  }
  if (normal.empty()) normal = "/";
  if (request.delete_extra && system_folder(normal))
    return fmt::format("{} {} with {}: refused, it would remove from a system folder "
                       "everything the snapshot does not hold; restore into a new "
                       "folder and copy from there",
                       names.dest, dest, names.delete_extra);
  return {};
}

} // namespace

rsync_transfer_options host_restore_transfer(const target_config& target,
                                             const host_restore_request& request) {
  rsync_transfer_options transfer;
  transfer.compress = true;
  transfer.io_timeout = no_progress_timeout;
  transfer.bwlimit_kbps = request.bwlimit_kbps;
  if (request.bwlimit_kbps < 0) {
    const auto* v = target.options.if_contains("bwlimit_kbps");
    transfer.bwlimit_kbps = v && v->is_int64() ? static_cast<int>(v->get_int64()) : 0;
  }
  return transfer;
}

std::string host_restore_request::to_json() const {
  boost::json::array p;
  for (const auto& x : paths)
    p.emplace_back(x);
  return boost::json::serialize(boost::json::object{{"target", target_hash},
                                                    {"snapshot", snapshot_id},
                                                    {"snapshot_path", snapshot_path},
                                                    {"paths", p},
                                                    {"dest", dest},
                                                    {"delete", delete_extra},
                                                    {"replace", replace},
                                                    {"apply", apply},
                                                    {"bwlimit_kbps", bwlimit_kbps}});
}

expected<host_restore_request> host_restore_request::from_json(const std::string& text) {
  boost::system::error_code ec;
  auto v = boost::json::parse(text, ec);
  if (ec || !v.is_object())
    return error{errc::invalid_argument,
                 "the restore job's params are not a JSON object"};
  const auto& o = v.as_object();
  host_restore_request out;
  auto string_of = [&](const char* key, std::string& into) {
    const auto* f = o.if_contains(key);
    if (f && f->is_string()) into = std::string(f->get_string());
    return f && f->is_string();
  };
  auto bool_of = [&](const char* key, bool& into) {
    const auto* f = o.if_contains(key);
    if (f && f->is_bool()) into = f->get_bool();
  };
  if (!string_of("target", out.target_hash) || !string_of("snapshot", out.snapshot_id))
    return error{errc::invalid_argument,
                 "the restore job's params name no target or snapshot"};
  string_of("snapshot_path", out.snapshot_path);
  string_of("dest", out.dest);
  bool_of("delete", out.delete_extra);
  bool_of("replace", out.replace);
  bool_of("apply", out.apply);
  if (const auto* b = o.if_contains("bwlimit_kbps"); b && b->is_int64())
    out.bwlimit_kbps = static_cast<int>(b->get_int64());
  if (const auto* p = o.if_contains("paths"); p && p->is_array())
    for (const auto& x : p->get_array())
      if (x.is_string()) out.paths.emplace_back(x.get_string());
  return out;
}

itemized_changes itemized_changes::parse(std::string_view text) {
  itemized_changes out;
  std::size_t start = 0;
  while (start < text.size()) {
    auto end = text.find_first_of("\r\n", start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    start = end + 1;
    if (line.rfind("*deleting ", 0) == 0) {
      auto name = line.substr(line.find_first_not_of(' ', 9));
      out.deleted.emplace_back(name);
      continue;
    }
    // "YXcstpoguax name": update type, file type, then the attribute flags.
    if (line.size() < 13 || line[11] != ' ' ||
        std::string_view("<>ch.").find(line[0]) == std::string_view::npos ||
        std::string_view("fdLDS").find(line[1]) == std::string_view::npos)
      continue;
    std::string name(line.substr(12));
    if (name == "./") continue; // the folder itself keeps its own attributes
    if (line.substr(2, 9).find('+') != std::string_view::npos)
      out.created.push_back(std::move(name));
    else
      out.updated.push_back(std::move(name));
  }
  return out;
}

std::string host_restore_refusal(const target_config& target) {
  if (target.mode != "directory" && target.mode != "sqlite_dump")
    return fmt::format("--to-host restores directory and sqlite_dump targets; {} is a {} "
                       "target (restore it with --to DIR)",
                       target.path, target.mode);
  if (target.mode == "sqlite_dump" && sudo_of(target))
    return fmt::format("--to-host cannot restore the database {} of a sudo site yet "
                       "(the edge user could not check or swap in a file root wrote); "
                       "restore it with --to DIR and copy it to the host "
                       "(docs/restore.md)",
                       target.path);
  return {};
}

std::string host_restore_request_problem(const target_config& target,
                                         const host_restore_request& request,
                                         const host_restore_option_names& names) {
  if (auto problem = dest_problem(request, names); !problem.empty()) return problem;
  if (auto refusal = host_restore_refusal(target); !refusal.empty()) return refusal;
  const bool database = target.mode == "sqlite_dump";
  if (request.replace && !database)
    return fmt::format("{} is for sqlite_dump targets ({} is a {} target)", names.replace,
                       target.path, target.mode);
  if (database && (request.delete_extra || !request.paths.empty()))
    return fmt::format("{} is for directory targets; {} is a database (it goes beside "
                       "the live one)",
                       request.delete_extra ? names.delete_extra : names.paths,
                       target.path);
  return {};
}

job_outcome run_host_restore(const config& cfg, const site_config& site,
                             const host_restore_request& request, event_sink& events,
                             const cancel_token& cancel) {
  const auto* target = target_of(site, request.target_hash);
  std::string refusal = target ? host_restore_refusal(*target)
                               : fmt::format("site {} has no target {} any more",
                                             site.name, request.target_hash);
  if (!refusal.empty()) {
    events.emit("fail", "restore", request.target_hash, refusal, {});
    return job_outcome{
        job_status::failed, refusal, failure_kind::permanent, {}, std::nullopt};
  }
  restore_run run{cfg,    site,   *target,           request,
                  events, cancel, endpoint_of(site), sudo_of(*target)};
  auto client = local_restic(cfg);
  client.report_to(&events, target->hash);
  const std::string short_id = request.snapshot_id.substr(0, 8);
  // The files go into scratch space first: refused up front when that
  // would break disk_min_free.
  auto needed = bytes_to_restore(run, client);
  if (!needed) return failure(run, needed.err().message, classify(needed.err().code));
  if (auto problem = headroom_problem(cfg, cfg.staging_root, "scratch", *needed);
      !problem.empty())
    return failure(run, "restore refused: " + problem, failure_kind::transient);
  auto scratch = scratch_folder::create(cfg.staging_root, ".satoru-restore-");
  if (!scratch) return failure(run, scratch.err().message, failure_kind::transient);
  events.emit("info", "restore", target->hash,
              fmt::format("restoring snapshot {} of {} into scratch space ({})", short_id,
                          target->path,
                          format_bytes(static_cast<std::uint64_t>(*needed))),
              {{"snapshot_id", request.snapshot_id}, {"bytes", *needed}});
  // The snapshot must still be the target's (its tags): restic checks them.
  if (auto r = client.restore(request.snapshot_id, request.snapshot_path, scratch->path(),
                              snapshot_tags(site.uuid, target->hash), cancel,
                              request.paths, *needed);
      !r)
    return failure(run, "restore of snapshot " + short_id + " failed: " + r.err().message,
                   classify(r.err().code));
  auto session = ssh_session::connect(run.endpoint, cancel);
  if (!session) return failure(run, session.err().message, classify(session.err().code));
  if (target->mode == "sqlite_dump") return push_database(run, *session, scratch->path());
  return push_folder(run, *session, scratch->path());
}

} // namespace satoru
