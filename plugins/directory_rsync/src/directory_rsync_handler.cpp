#include "directory_rsync_handler.hpp"

#include "satoru/files.hpp"
#include "satoru/remote_size.hpp"
#include "satoru/remote_sudo.hpp"
#include "satoru/rsync.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <exception>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace satoru::plugins {

namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

/// Remote checks are small commands; a site that cannot answer them in this
/// long will not manage a backup either.
constexpr milliseconds check_timeout{30'000};

std::string known_keys_hint() {
  return "known options: bwlimit_kbps, compress, exclude, no_progress_timeout_seconds, "
         "sudo";
}

/// How many unreadable paths the pull event and message name; the rest are
/// in the list file beside the staging folder.
constexpr std::size_t paths_shown = 5;

/// Writes one path per line to `path` (0600, replaced atomically), so that
/// a long list never goes into the database.
expected<void> write_path_list(const std::string& path,
                               const std::vector<std::string>& paths) {
  std::string text;
  for (const auto& p : paths)
    text += p + "\n";
  return write_file_atomically(path, text);
}

boost::json::array json_strings(const std::vector<std::string>& items, std::size_t n) {
  boost::json::array out;
  for (std::size_t i = 0; i < items.size() && i < n; ++i)
    out.emplace_back(items[i]);
  return out;
}

} // namespace

std::vector<std::string> parse_directory_options(const boost::json::object& options,
                                                 directory_options& out) {
  std::vector<std::string> problems;
  for (const auto& [key, value] : options) {
    if (key == "compress") {
      if (value.is_bool())
        out.compress = value.get_bool();
      else
        problems.push_back("compress: must be true or false");
    } else if (key == "sudo") {
      if (value.is_bool())
        out.sudo = value.get_bool();
      else
        problems.push_back("sudo: must be true or false");
    } else if (key == "no_progress_timeout_seconds") {
      // Whole seconds only; JSON numbers arrive as int64, uint64 or double.
      std::int64_t n = value.is_int64() ? value.get_int64() : -1;
      if (n <= 0)
        problems.push_back(
            "no_progress_timeout_seconds: must be a positive whole number");
      else
        out.no_progress_timeout = seconds(n);
    } else if (key == "bwlimit_kbps") {
      std::int64_t n = value.is_int64() ? value.get_int64() : -1;
      if (n <= 0 || n > 100'000'000)
        problems.push_back("bwlimit_kbps: must be a positive whole number (KiB/s)");
      else
        out.bwlimit_kbps = static_cast<int>(n);
    } else if (key == "exclude") {
      if (!value.is_array()) {
        problems.push_back("exclude: must be an array of rsync patterns (strings)");
        continue;
      }
      out.exclude.clear();
      std::size_t i = 0;
      for (const auto& item : value.get_array()) {
        if (!item.is_string() || item.get_string().empty()) {
          problems.push_back(fmt::format("exclude/{}: must be a non-empty string", i));
        } else {
          std::string pattern(item.get_string());
          // rsync reads a pattern up to the end of the argument; a newline
          // would be taken literally and never match what was meant.
          if (pattern.find_first_of("\r\n") != std::string::npos)
            problems.push_back(
                fmt::format("exclude/{}: must not contain a line break", i));
          else
            out.exclude.push_back(std::move(pattern));
        }
        ++i;
      }
    } else {
      problems.push_back(std::string(key) + ": unknown option (" + known_keys_hint() +
                         ")");
    }
  }
  return problems;
}

std::vector<std::string> directory_rsync_handler::local_tools(const std::string&) const {
  return {"rsync", "ssh"};
}

std::vector<std::string>
directory_rsync_handler::validate_options(const std::string&,
                                          const boost::json::object& options) const {
  return checked_options([&] {
    directory_options parsed;
    return parse_directory_options(options, parsed);
  });
}

std::vector<check_result> directory_rsync_handler::preflight(const target_spec& target,
                                                             plugin_services& services) {
  std::vector<check_result> checks;
  try {
    directory_options options;
    remote_shell* shell = start_preflight(
        parse_directory_options(target.options, options), services, checks);
    if (shell == nullptr) return checks;

    // One word for the shell, whatever the path holds: quotes, `$(...)`,
    // ';', newlines. Only builtins run, so the answer does not depend on
    // the remote PATH.
    const std::string script =
        "p=" + shell_quote(target.path) +
        "; if [ ! -e \"$p\" ]; then echo missing;"
        " elif [ ! -d \"$p\" ]; then echo notdir;"
        " elif [ ! -r \"$p\" ] || [ ! -x \"$p\" ]; then echo unreadable;"
        " else echo ok; fi";
    check_result path{"remote.path", check_result::level::fail, ""};
    auto run = shell->exec(script, check_timeout);
    const std::string user = services.endpoint().user;
    if (!run) {
      path.message = "cannot check " + target.path + ": " + run.err().message;
    } else {
      std::string answer = run->out.substr(0, run->out.find('\n'));
      if (answer == "ok") {
        path.status = check_result::level::ok;
        path.message = target.path + " exists and is a readable folder";
      } else if (answer == "missing") {
        path.message = target.path + " does not exist on the edge host";
      } else if (answer == "notdir") {
        path.message = target.path + " is not a folder (mode \"directory\" needs one)";
      } else if (answer == "unreadable") {
        path.message = target.path + " is not readable by " + user + " on the edge host";
      } else {
        path.message = fmt::format("cannot check {}: the remote shell answered \"{}\"{}",
                                   target.path, answer,
                                   run->err.empty() ? "" : " (" + run->err + ")");
      }
    }
    checks.push_back(std::move(path));
    // What the pull reads (exclude patterns not applied: an upper bound; with
    // sudo, only what the edge user may read).
    checks.push_back(
        probe_remote_size(*shell, target.path, {target.path}, check_timeout));
    checks.push_back(check_remote_rsync(*shell, check_timeout));
    if (options.sudo)
      checks.push_back(check_remote_sudo(*shell, target.site_name, services.endpoint(),
                                         {"rsync", sudo_rsync_probe}, check_timeout));
  } catch (const std::exception& e) {
    checks.push_back({"plugin", check_result::level::fail,
                      std::string("directory_rsync preflight failed: ") + e.what()});
  } catch (...) {
    checks.push_back(
        {"plugin", check_result::level::fail, "directory_rsync preflight failed"});
  }
  return checks;
}

expected<std::vector<std::string>>
directory_rsync_handler::rsync_argv(const target_spec& target,
                                    const ssh_endpoint& endpoint,
                                    const directory_options& options) {
  auto source = rsync_remote_path(endpoint, target.path, /*contents=*/true);
  if (!source) return source.err();

  rsync_transfer_options transfer;
  // -z: edge links are usually slower than compression (option "compress").
  transfer.compress = options.compress;
  // --timeout: rsync's own I/O timeout, the same limit as our watchdog, so a
  // dead link is noticed by whichever side sees it first.
  transfer.io_timeout = options.no_progress_timeout;
  // --temp-dir inside work_dir: rsync builds every new or changed file there
  // and renames it into staging when complete, so no half-written file ever
  // sits in staging (work_dir is on the same filesystem, so it is a rename).
  transfer.temp_dir = target.work_dir + "/rsync-tmp";
  transfer.bwlimit_kbps = options.bwlimit_kbps;
  auto argv = rsync_base_args(endpoint, transfer);

  // -a: recursive; symlinks as symlinks, permissions, times, owner, group,
  //     devices and specials: what a restore must give back.
  argv.push_back("-a");
  // --delete: staging is a mirror; a file deleted on the edge host must not
  //           live on in every later snapshot. (rsync skips deletions after
  //           an I/O error, so a failing source never empties staging.)
  argv.push_back("--delete");
  // --delete-excluded: a newly excluded file leaves staging as well.
  argv.push_back("--delete-excluded");
  // --numeric-ids: keep the edge host's uid/gid numbers; its user names mean
  //                nothing on the backup server.
  argv.push_back("--numeric-ids");
  // -H: keep hard links as hard links (no duplicated data, faithful restore).
  argv.push_back("-H");
  // --fake-super: a receiver that is not root cannot chown, keep setuid bits
  //     or make devices, and would stage every file as the daemon's user
  //     (and a 0000 file as unreadable to restic). With it, rsync stores each
  //     file's edge owner, group, mode and device numbers in the staged
  //     file's "user.rsync.%stat" xattr (restic records xattrs), creates
  //     staged files with owner read/write, and stages devices and specials
  //     as plain files. `satoru restore` as root sets the real values again.
  if (::geteuid() != 0) argv.push_back("--fake-super");
  // --rsync-path: the edge rsync runs as root through sudo, non-interactive
  //     (-n: fail at once rather than wait for a password nobody types). The
  //     command it runs is "rsync --server --sender ...", which is all the
  //     sudoers line of docs/operations.md allows.
  if (options.sudo) argv.push_back("--rsync-path=" + std::string(sudo_rsync_path));
  for (const auto& pattern : options.exclude)
    argv.push_back("--exclude=" + pattern);
  argv.push_back(*source);
  // Trailing slash: the source folder's contents land directly in staging.
  argv.push_back(target.staging_dir + "/");
  return argv;
}

pull_result directory_rsync_handler::pull(const target_spec& target,
                                          plugin_services& services) {
  return guarded([&] { return pull_unguarded(target, services); },
                 [](const std::string& what) {
                   pull_result r;
                   r.message = "directory_rsync failed: " + what;
                   return r;
                 });
}

pull_result directory_rsync_handler::pull_unguarded(const target_spec& target,
                                                    plugin_services& services) {
  pull_result result;
  directory_options options;
  auto problems = parse_directory_options(target.options, options);
  if (!problems.empty()) {
    result.message = "invalid options: " + problems.front();
    return result;
  }
  if (services.cancel().cancelled()) {
    result.message = "cancelled";
    return result;
  }
  for (const auto& dir : {target.staging_dir, target.work_dir + "/rsync-tmp"}) {
    auto made = make_dirs(dir, 0700);
    if (!made) {
      result.message = made.err().message;
      return result;
    }
  }

  auto argv = rsync_argv(target, services.endpoint(), options);
  if (!argv) {
    result.message = argv.err().message;
    return result;
  }
  process_spec spec;
  spec.argv = std::move(*argv);
  spec.env = rsync_environment();
  spec.no_progress_timeout = options.no_progress_timeout;
  // --info=progress2: the transfer's progress for the CLI and metrics, and
  // the watchdog's measure of a stall.
  spec.progress_output = progress_format::rsync_progress2;
  spec.progress_step = "pull";
  // The --stats block is at the end of stdout; progress lines before it
  // are only needed by the stall watchdog.
  spec.capture_limit = 1 << 20;
  // Every line, not only the captured tail: a folder with many unreadable
  // files must be counted in full.
  rsync_partial_report partial;
  spec.on_stderr_line = [&partial](std::string_view line) { partial.add_line(line); };

  services.event("info", "pull.rsync",
                 "rsync from " + services.endpoint().display() + ":" + target.path,
                 {{"path", target.path}, {"compress", options.compress}});
  auto run = services.run(std::move(spec));
  if (!run) {
    result.message = "cannot run rsync: " + run.err().message;
    return result;
  }
  const process_result& r = *run;
  const rsync_stats stats = parse_rsync_stats(r.out);
  result.bytes = stats.bytes_received;
  result.files = stats.regular_files_transferred;
  result.data = stats.to_json();
  result.data["exit_code"] = r.exit_code;
  result.data["duration_ms"] = r.duration.count();

  // Exit 23 (some source files could not be read) and 24 (some vanished)
  // still copied everything else: that is worth a snapshot. Not when the
  // target folder itself could not be entered (nothing was copied), nor when
  // 23 came from something other than the source (staging could not be
  // written).
  const bool ended = !r.cancelled && !r.timed_out && !r.stalled;
  const bool partial_ok =
      ended && partial.top_folder_error.empty() &&
      ((r.exit_code == 23 && !partial.unreadable.empty()) || r.exit_code == 24);
  if (!r.ok() && !partial_ok) {
    result.outcome = pull_result::status::failed;
    result.message = rsync_failure_message(r, options.no_progress_timeout);
    return result;
  }

  result.outcome = pull_result::status::success;
  std::string summary =
      fmt::format("rsync received {} bytes: {} of {} files transferred, {} deleted",
                  stats.bytes_received, stats.regular_files_transferred, stats.files,
                  stats.deleted_files);
  services.event("ok", "pull.stats", summary, result.data);

  const std::string list_file = target.staging_dir + ".unreadable";
  result.data["unreadable_files"] = partial.unreadable.size();
  std::vector<std::string> notes;
  if (partial.unreadable.empty()) {
    ::unlink(list_file.c_str()); // the last pull's list no longer holds
  } else {
    result.outcome = pull_result::status::warning;
    auto written = write_path_list(list_file, partial.unreadable);
    std::string note = fmt::format(
        "{} file(s) or folder(s) could not be read by {} on the edge host and are not "
        "in this snapshot: {}{}",
        partial.unreadable.size(), services.endpoint().user,
        rsync_partial_report::first_few(partial.unreadable, paths_shown),
        written ? "; full list in " + list_file
                : " (the full list could not be written: " + written.err().message + ")");
    services.event("warn", "pull.unreadable", note,
                   {{"count", partial.unreadable.size()},
                    {"paths", json_strings(partial.unreadable, paths_shown)},
                    {"list_file", written ? list_file : std::string{}}});
    notes.push_back(std::move(note));
  }
  if (r.exit_code == 24 || !partial.vanished.empty()) {
    // Files that disappear while rsync walks a live folder (logs rotated,
    // temp files) are normal, but the snapshot lacks them: a warning.
    result.outcome = pull_result::status::warning;
    std::string note =
        "some files vanished during the transfer (normal on a live host)" +
        (partial.vanished.empty()
             ? std::string{}
             : ": " + rsync_partial_report::first_few(partial.vanished, paths_shown));
    services.event("warn", "pull.vanished", note,
                   {{"exit_code", r.exit_code}, {"count", partial.vanished.size()}});
    notes.push_back(std::move(note));
  }
  for (const auto& note : notes)
    result.message += (result.message.empty() ? "" : "; ") + note;
  return result;
}

} // namespace satoru::plugins

SATORU_PLUGIN(satoru::plugins::directory_rsync_handler)
