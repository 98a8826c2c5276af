#include "sqlite_dump_handler.hpp"

#include "sqlite_remote.hpp"

#include "satoru/capped_gunzip.hpp"
#include "satoru/files.hpp"
#include "satoru/remote_size.hpp"
#include "satoru/remote_sudo.hpp"
#include "satoru/rsync.hpp"
#include "satoru/text.hpp"
#include "satoru/time.hpp"

#include <boost/json.hpp>

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
using namespace satoru::plugins::sqlite;

/// Small remote commands (checks, mktemp); the copy and the transfer are
/// bounded by the target's deadline instead.
constexpr milliseconds check_timeout{30'000};
/// The cleanup gets a fresh, short deadline of its own: it also runs after
/// the job's deadline passed or the job was cancelled.
constexpr milliseconds cleanup_timeout{15'000};
/// VACUUM INTO appeared in SQLite 3.27.0.
constexpr int vacuum_into_major = 3, vacuum_into_minor = 27;

/// What transfer "gzip" may inflate beyond the copy size the edge reported
/// (which is exact: the slack only absorbs a miscount, never a second copy).
constexpr std::uint64_t inflate_slack_bytes = 64 * 1024;

bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

void remove_file(const std::string& path) {
  ::unlink(path.c_str());
}

/// Copies a file (when a hard link is not possible).
expected<void> copy_file(const std::string& from, const std::string& to) {
  int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return error{errc::io, "cannot read " + from + ": " + std::strerror(errno)};
  int out = ::open(to.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (out < 0) {
    int e = errno;
    ::close(in);
    return error{errc::io, "cannot create " + to + ": " + std::strerror(e)};
  }
  char buf[1 << 16];
  bool ok = true;
  for (;;) {
    ssize_t n = ::read(in, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) ok = false;
    if (n <= 0) break;
    for (ssize_t done = 0; done < n;) {
      ssize_t w = ::write(out, buf + done, static_cast<std::size_t>(n - done));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        ok = false;
        break;
      }
      done += w;
    }
    if (!ok) break;
  }
  int e = errno;
  ::close(in);
  if (::close(out) != 0) ok = false;
  if (!ok) {
    ::unlink(to.c_str());
    return error{errc::io, "cannot copy " + from + " to " + to + ": " + std::strerror(e)};
  }
  return {};
}

expected<void> fsync_path(const std::string& path, bool directory) {
  int fd =
      ::open(path.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) return error{errc::io, "cannot open " + path + ": " + std::strerror(errno)};
  int rc = ::fsync(fd);
  int e = errno;
  ::close(fd);
  if (rc != 0 && !directory)
    return error{errc::io, "cannot sync " + path + ": " + std::strerror(e)};
  return {};
}

std::string first_line(const std::string& text) {
  auto begin = text.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos) return {};
  auto end = text.find_first_of("\r\n", begin);
  return text.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
}

/// Why `value` is not usable as an absolute path on the edge host, or "".
std::string remote_path_problem(const boost::json::value& value) {
  std::string path = value.is_string() ? std::string(value.get_string()) : std::string{};
  if (path.empty() || path.front() != '/')
    return "must be an absolute path on the edge host";
  for (unsigned char c : path)
    // Paths come back as one line of output (the temp folder's name).
    if (c < 0x20 || c == 0x7f) return "must not contain control characters";
  return {};
}

std::string known_keys_hint() {
  return "known options: method, no_progress_timeout_seconds, remote_tmp_dir, sudo, "
         "sudo_helper, transfer";
}

std::string human_bytes(std::uint64_t n) {
  if (n >= (1u << 20))
    return fmt::format("{:.1f} MiB", static_cast<double>(n) / (1 << 20));
  if (n >= (1u << 10))
    return fmt::format("{:.1f} KiB", static_cast<double>(n) / (1 << 10));
  return fmt::format("{} bytes", n);
}

/// The message for a remote command that could not run or failed.
std::string remote_failure(const std::string& what, const expected<exec_result>& run) {
  if (!run) return what + ": " + run.err().message;
  std::string why = last_line(run->err);
  if (why.empty()) why = last_line(run->out);
  return fmt::format("{}: exit status {}{}", what, run->exit_status,
                     why.empty() ? "" : ": " + why);
}

/// Remote tool check ("remote.sqlite3", "remote.gzip"): present, with version.
struct tool_answer {
  bool present = false;
  std::string version_line;
  std::string error; ///< set when the check itself could not run
};
tool_answer remote_tool(remote_shell& shell, const std::string& tool) {
  tool_answer a;
  auto run = shell.exec("command -v " + tool + " >/dev/null 2>&1 || exit 127; " + tool +
                            " --version </dev/null 2>&1",
                        check_timeout);
  if (!run) {
    a.error = run.err().message;
    return a;
  }
  if (run->exit_status == 127) return a;
  a.present = true;
  a.version_line = first_line(run->out);
  return a;
}

/// A copy at least this old is made again even when the database looks
/// unchanged: the fingerprint is a strong hint, not a proof (a writer that
/// bypasses SQLite could change a page within one timestamp tick).
constexpr std::int64_t unchanged_max_age_ms = 24LL * 3600 * 1000;

/// What was copied last, kept beside the staging folder (not in it: it is
/// not data of the site): the edge fingerprint taken before the copy, when,
/// and the staged file it produced (size and mtime), so that a staged copy
/// changed or removed since is never taken for current.
struct last_copy {
  std::string fingerprint;
  std::int64_t copied_at_ms = 0;
  std::uint64_t staged_size = 0;
  std::int64_t staged_mtime_ns = 0;
};

std::string last_copy_path(const target_spec& target) {
  return target.staging_dir + ".sqlite-copy";
}

bool staged_stat(const std::string& staged, std::uint64_t& size, std::int64_t& mtime_ns) {
  struct stat st {};
  if (::stat(staged.c_str(), &st) != 0) return false;
  size = static_cast<std::uint64_t>(st.st_size);
  mtime_ns =
      static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
  return true;
}

/// The fingerprint to compare on the edge host ("" = copy in any case):
/// only when the record is whole, young enough, and the staged copy is still
/// the one it describes.
std::string unchanged_if(const target_spec& target, const std::string& staged,
                         last_copy& record) {
  auto text = read_whole_file(last_copy_path(target));
  if (!text) return {};
  boost::system::error_code ec;
  auto parsed = boost::json::parse(*text, ec);
  if (ec || !parsed.is_object()) return {};
  const auto& o = parsed.get_object();
  auto str = [&](const char* k) {
    auto* v = o.if_contains(k);
    return v && v->is_string() ? std::string(v->get_string()) : std::string{};
  };
  auto num = [&](const char* k) {
    auto* v = o.if_contains(k);
    return v && v->is_int64() ? v->get_int64() : std::int64_t{-1};
  };
  record.fingerprint = str("fingerprint");
  record.copied_at_ms = num("copied_at_ms");
  record.staged_size = static_cast<std::uint64_t>(num("staged_size"));
  record.staged_mtime_ns = num("staged_mtime_ns");
  std::uint64_t size = 0;
  std::int64_t mtime_ns = 0;
  if (record.fingerprint.empty() || record.copied_at_ms <= 0 ||
      now_ms() - record.copied_at_ms > unchanged_max_age_ms ||
      !staged_stat(staged, size, mtime_ns) || size != record.staged_size ||
      mtime_ns != record.staged_mtime_ns)
    return {};
  return record.fingerprint;
}

/// Records the copy just swapped into staging (or forgets the last one when
/// the edge gave no fingerprint).
void remember_copy(const target_spec& target, const std::string& staged,
                   const std::string& fingerprint) {
  last_copy record{fingerprint, now_ms(), 0, 0};
  if (fingerprint.empty() ||
      !staged_stat(staged, record.staged_size, record.staged_mtime_ns)) {
    ::unlink(last_copy_path(target).c_str());
    return;
  }
  boost::json::object o{{"fingerprint", record.fingerprint},
                        {"copied_at_ms", record.copied_at_ms},
                        {"staged_size", static_cast<std::int64_t>(record.staged_size)},
                        {"staged_mtime_ns", record.staged_mtime_ns}};
  // Best effort: without the record the next pull simply copies.
  if (!write_file_atomically(last_copy_path(target), boost::json::serialize(o)))
    ::unlink(last_copy_path(target).c_str());
}

/// The one-line message for a "satoru-error" answer of the copy command.
std::string copy_error_message(const std::string& error, const target_spec& target,
                               const sqlite_options& options, const std::string& user,
                               const std::string& helper, const exec_result& run) {
  if (error == "missing") return target.path + " does not exist on the edge host";
  if (error == "notfile") return target.path + " is not a regular file";
  if (error == "unreadable")
    return target.path + " is not readable by " + user + " on the edge host";
  if (error == "notsqlite")
    return target.path + " is not a SQLite database (no SQLite 3 header)";
  if (error == "nosqlite3") return "sqlite3 is not installed on the edge host";
  if (error == "novacuum")
    return "sqlite3 on the edge host has no VACUUM INTO (needs 3.27+; options.method is "
           "\"vacuum\")";
  if (error == "nogzip")
    return "gzip is not installed on the edge host (transfer \"gzip\")";
  if (error == "norsync")
    return "rsync is not installed on the edge host (transfer \"rsync\")";
  if (error == "sudo")
    return user + " may not run the SQLite copy helper " + helper +
           " under sudo without a password (sudo: \"" + last_line(run.err) + "\")";
  if (error == "mktemp")
    return "cannot create a temp folder in " + options.remote_tmp_dir +
           " on the edge host: " + last_line(run.err);
  return "cannot make the copy on the edge host: " + error;
}

} // namespace

std::vector<std::string> parse_sqlite_options(const boost::json::object& options,
                                              sqlite_options& out) {
  std::vector<std::string> problems;
  for (const auto& [key, value] : options) {
    if (key == "method") {
      if (value.is_string() &&
          (value.get_string() == "auto" || value.get_string() == "vacuum" ||
           value.get_string() == "backup"))
        out.method = std::string(value.get_string());
      else
        problems.push_back("method: must be \"auto\", \"vacuum\" or \"backup\"");
    } else if (key == "transfer") {
      if (value.is_string() &&
          (value.get_string() == "rsync" || value.get_string() == "gzip"))
        out.transfer = std::string(value.get_string());
      else
        problems.push_back("transfer: must be \"rsync\" or \"gzip\"");
    } else if (key == "remote_tmp_dir") {
      if (auto problem = remote_path_problem(value); !problem.empty())
        problems.push_back("remote_tmp_dir: " + problem);
      else
        out.remote_tmp_dir = std::string(value.get_string());
    } else if (key == "sudo") {
      if (value.is_bool())
        out.sudo = value.get_bool();
      else
        problems.push_back("sudo: must be true or false");
    } else if (key == "sudo_helper") {
      if (auto problem = remote_path_problem(value); !problem.empty())
        problems.push_back("sudo_helper: " + problem);
      else
        out.sudo_helper = std::string(value.get_string());
    } else if (key == "no_progress_timeout_seconds") {
      // Whole seconds only; JSON numbers arrive as int64, uint64 or double.
      std::int64_t n = value.is_int64() ? value.get_int64() : -1;
      if (n <= 0)
        problems.push_back(
            "no_progress_timeout_seconds: must be a positive whole number");
      else
        out.no_progress_timeout = seconds(n);
    } else {
      problems.push_back(std::string(key) + ": unknown option (" + known_keys_hint() +
                         ")");
    }
  }
  return problems;
}

std::vector<std::string> sqlite_dump_handler::local_tools(const std::string&) const {
  // ssh + rsync for the delta transfer, gzip for transfer "gzip", sqlite3
  // for the integrity check of every new copy.
  return {"gzip", "rsync", "sqlite3", "ssh"};
}

std::vector<std::string>
sqlite_dump_handler::validate_options(const std::string&,
                                      const boost::json::object& options) const {
  return checked_options([&] {
    sqlite_options parsed;
    return parse_sqlite_options(options, parsed);
  });
}

std::vector<check_result> sqlite_dump_handler::preflight(const target_spec& target,
                                                         plugin_services& services) {
  using level = check_result::level;
  std::vector<check_result> checks;
  try {
    sqlite_options options;
    remote_shell* shell =
        start_preflight(parse_sqlite_options(target.options, options), services, checks);
    if (shell == nullptr) return checks;
    remote_shell& sh = *shell;
    const std::string user = services.endpoint().user;
    const std::string helper = options.sudo ? options.sudo_helper : std::string{};
    if (options.sudo) {
      auto allowed =
          check_remote_sudo(sh, target.site_name, services.endpoint(),
                            {"the SQLite copy helper " + helper,
                             shell_quote(helper) + " probe " + shell_quote(target.path)},
                            check_timeout);
      const bool denied = allowed.status == level::fail;
      checks.push_back(std::move(allowed));
      if (denied) return checks;
    }

    // 1. The database file: exists, regular, readable, has a SQLite header
    //    (with sudo, as the helper sees it as root).
    std::uint64_t db_size = 0;
    tool_answer root_sqlite3; ///< with sudo: the sqlite3 the helper runs
    {
      const std::string script =
          options.sudo
              // The helper's answer, reduced to the one line the branch below
              // reads; sudo's own complaint (on stderr) is kept for the message.
              ? "out=$(" + sudo_probe_command(helper, target.path) +
                    " </dev/null) || [ $? -eq 3 ] || exit 1\n"
                    "printf '%s\\n' \"$out\" | sed -n 's/^satoru-error //p; "
                    "s/^satoru-size /ok /p'\n"
                    "printf '%s\\n' \"$out\" | sed -n 's/^satoru-version /version /p'\n"
              : "p=" + shell_quote(target.path) +
                    "\nif [ ! -e \"$p\" ]; then echo missing\n"
                    "elif [ ! -f \"$p\" ]; then echo notfile\n"
                    "elif [ ! -r \"$p\" ]; then echo unreadable\n"
                    "elif [ ! -s \"$p\" ] || ! command -v dd >/dev/null 2>&1; then"
                    " echo \"ok $(wc -c < \"$p\")\"\n"
                    "elif [ \"$(dd if=\"$p\" bs=15 count=1 2>/dev/null)\" = 'SQLite "
                    "format 3' ]; "
                    "then"
                    " echo \"ok $(wc -c < \"$p\")\"\n"
                    "else echo notsqlite; fi\n";
      check_result c{"remote.path", level::fail, ""};
      auto run = sh.exec(script, check_timeout);
      if (!run) {
        c.message = "cannot check " + target.path + ": " + run.err().message;
      } else {
        std::string answer = first_line(run->out);
        if (auto at = run->out.find("\nversion "); at != std::string::npos) {
          root_sqlite3.present = true;
          root_sqlite3.version_line = first_line(run->out.substr(at + 9));
        }
        if (answer.rfind("ok", 0) == 0) {
          db_size = std::strtoull(answer.c_str() + 2, nullptr, 10);
          c.status = level::ok;
          c.message = fmt::format(
              "{} exists and is a SQLite database readable by {} ({})", target.path,
              options.sudo ? "root through sudo" : user, human_bytes(db_size));
        } else if (answer == "missing") {
          c.message = target.path + " does not exist on the edge host";
        } else if (answer == "notfile") {
          c.message = target.path + " is not a regular file";
        } else if (answer == "unreadable") {
          c.message = target.path + " is not readable by " + user + " on the edge host";
        } else if (answer == "notsqlite") {
          c.message = target.path + " is not a SQLite database (no SQLite 3 header)";
        } else if (answer == "nosqlite3") {
          c.message = "sqlite3 is not installed on the edge host (the SQLite copy helper "
                      "runs it as root; Debian: apt-get install sqlite3)";
        } else {
          c.message = remote_failure("cannot check " + target.path, run);
        }
      }
      checks.push_back(std::move(c));
    }

    // 1b. What the pull reads: the database and its WAL (the copy holds the
    //     WAL's pages too). With sudo the edge user may not see them; the
    //     helper's answer gives the database's size.
    if (!options.sudo) {
      checks.push_back(probe_remote_size(
          sh, target.path, {target.path, target.path + "-wal"}, check_timeout));
    } else if (db_size > 0) {
      check_result size{"remote.size", level::ok,
                        fmt::format("{} holds {} on the edge host (its WAL not counted)",
                                    target.path, human_bytes(db_size))};
      size.remote_bytes = static_cast<std::int64_t>(db_size);
      checks.push_back(std::move(size));
    }

    // 2. sqlite3 on the edge host, new enough for the chosen method.
    {
      check_result c{"remote.sqlite3", level::fail, ""};
      auto a = options.sudo ? root_sqlite3 : remote_tool(sh, "sqlite3");
      if (!a.error.empty()) {
        c.message = "cannot look for sqlite3 on the edge host: " + a.error;
      } else if (!a.present) {
        c.message = "sqlite3 is not installed on the edge host (needed for a consistent "
                    "copy; Debian: apt-get install sqlite3)";
      } else {
        auto v = parse_version(a.version_line);
        std::string shown = a.version_line.substr(0, a.version_line.find(' '));
        bool vacuum = v.valid && at_least(v, vacuum_into_major, vacuum_into_minor);
        if (options.method == "vacuum" && !vacuum) {
          c.message = "sqlite3 " + shown +
                      " on the edge host is older than 3.27 and has no VACUUM INTO "
                      "(options.method is \"vacuum\")";
        } else {
          c.status = level::ok;
          bool use_vacuum = vacuum && options.method != "backup";
          c.message = "sqlite3 " + shown + " present on the edge host (copy with " +
                      (use_vacuum ? "VACUUM INTO)" : ".backup)");
        }
      }
      checks.push_back(std::move(c));
    }

    // 3. gzip: needed on the edge host only for transfer "gzip".
    {
      const bool needed = options.transfer == "gzip";
      check_result c{"remote.gzip", level::fail, ""};
      auto a = remote_tool(sh, "gzip");
      if (!a.error.empty()) {
        c.message = "cannot look for gzip on the edge host: " + a.error;
      } else if (!a.present) {
        c.status = needed ? level::fail : level::ok;
        c.message = needed
                        ? "gzip is not installed on the edge host (needed for transfer "
                          "\"gzip\")"
                        : "gzip is not installed on the edge host (not needed: transfer "
                          "is \"rsync\")";
      } else {
        c.status = level::ok;
        c.message = "gzip present on the edge host (" + a.version_line + ")";
      }
      checks.push_back(std::move(c));
    }

    // 4. rsync on the edge host for the delta transfer.
    if (options.transfer == "rsync")
      checks.push_back(check_remote_rsync(sh, check_timeout));

    // 5. A private temp folder can be created, written and removed, with
    //    room for the copy.
    {
      check_result c{"remote.tmp", level::fail, ""};
      const std::string& dir = options.remote_tmp_dir;
      auto run = sh.exec(tmp_probe_script(dir), check_timeout);
      if (!run) {
        c.message = "cannot check " + dir + " on the edge host: " + run.err().message;
      } else {
        auto a = parse_copy(run->out);
        if (a.error == "nodir")
          c.message = dir + " (remote_tmp_dir) does not exist on the edge host";
        else if (a.error == "mktemp")
          c.message = "cannot create a private temp folder in " + dir +
                      " on the edge host: " + last_line(run->err);
        else if (a.error == "nowrite")
          c.message =
              "cannot write a file in a temp folder in " + dir + " on the edge host";
        else if (a.error == "norm")
          c.message = "cannot remove a temp folder in " + dir + " on the edge host";
        else if (run->out.find("satoru-ok") == std::string::npos)
          c.message = remote_failure("cannot check " + dir + " on the edge host", run);
        else {
          c.status = level::ok;
          c.message =
              "a private temp folder can be created, written and removed in " + dir;
          auto avail = df_available_kib(run->out.substr(run->out.find("satoru-ok")));
          if (avail && db_size > 0) {
            std::uint64_t free_bytes = *avail * 1024;
            // The copy is at most the database's size (plus its gzip copy;
            // with sudo, plus the helper's own copy in /tmp while it streams).
            std::uint64_t needed =
                (options.transfer == "gzip" ? db_size + db_size / 2 : db_size) +
                (options.sudo ? db_size : 0);
            if (free_bytes < needed) {
              c.status = level::fail;
              c.message = fmt::format("only {} free in {} on the edge host; the copy of "
                                      "the database needs up to {}",
                                      human_bytes(free_bytes), dir, human_bytes(needed));
            } else {
              c.message += fmt::format(" ({} free)", human_bytes(free_bytes));
            }
          }
        }
      }
      checks.push_back(std::move(c));
    }
  } catch (const std::exception& e) {
    checks.push_back({"plugin", check_result::level::fail,
                      std::string("sqlite_dump preflight failed: ") + e.what()});
  } catch (...) {
    checks.push_back(
        {"plugin", check_result::level::fail, "sqlite_dump preflight failed"});
  }
  return checks;
}

pull_result sqlite_dump_handler::pull(const target_spec& target,
                                      plugin_services& services) {
  pull_result result;
  sqlite_options options;
  remote_state remote;
  auto problems = guarded([&] { return parse_sqlite_options(target.options, options); },
                          [](const std::string& what) {
                            return std::vector<std::string>{"cannot be checked: " + what};
                          });
  if (!problems.empty()) {
    result.message = "invalid options: " + problems.front();
    return result;
  }
  result = guarded([&] { return pull_unguarded(target, services, options, remote); },
                   [](const std::string& what) {
                     pull_result failed;
                     failed.message = "sqlite_dump failed: " + what;
                     return failed;
                   });
  // Whatever happened above, the edge host keeps no copy of the database.
  try {
    cleanup_remote(target, services, options, remote, result);
  } catch (...) {
  }
  return result;
}

void sqlite_dump_handler::cleanup_remote(const target_spec& target,
                                         plugin_services& services,
                                         const sqlite_options& options,
                                         const remote_state& remote,
                                         pull_result& result) {
  if (!remote.touched) return;
  // The exact folder when we know it; otherwise (the command that creates it
  // was interrupted) every folder with this pull's token, and no one else's.
  const std::string prefix =
      run_prefix(options.remote_tmp_dir, target.hash, remote.token);
  const std::string folders =
      remote.temp_dir.empty() ? glob_of(prefix) : shell_quote(remote.temp_dir);
  const std::string script = cleanup_script(folders);
  const std::string shown = remote.temp_dir.empty() ? prefix + "*" : remote.temp_dir;
  std::string why;
  auto done = [&](const expected<exec_result>& run) {
    if (run && run->exit_status == 0) return true;
    why = run ? fmt::format("the cleanup exited with {}: {}", run->exit_status,
                            last_line(run->err))
              : run.err().message;
    return false;
  };

  // The job's session while it is usable: no second login.
  if (!services.cancel().cancelled() &&
      services.target_deadline().remaining() > 2 * cleanup_timeout) {
    auto shell = services.remote();
    if (shell && done((*shell)->exec(script, cleanup_timeout))) {
      services.event("info", "pull.cleanup",
                     "removed the temp folder " + shown + " on the edge host",
                     {{"temp_dir", shown}, {"session", "job"}});
      return;
    }
  }
  // A cancelled token or a passed deadline stops everything that uses the
  // job's session, so the cleanup opens its own, with a fresh token and a
  // short deadline of its own.
  cancel_token fresh;
  auto session = ssh_session::connect(services.endpoint(), fresh);
  if (session && done(session->exec(script, cleanup_timeout, fresh))) {
    services.event("info", "pull.cleanup",
                   "removed the temp folder " + shown + " on the edge host",
                   {{"temp_dir", shown}, {"session", "fresh"}});
    return;
  }
  if (!session) why = session.err().message;
  std::string message = "could not remove the temp folder " + shown +
                        " on the edge host (" + why +
                        "); a pull of this target removes it once it is a day old";
  services.event("warn", "pull.cleanup", message, {{"temp_dir", shown}});
  if (result.outcome != pull_result::status::failed)
    result.message += (result.message.empty() ? "" : "; ") + message;
}

pull_result sqlite_dump_handler::unchanged_result(const target_spec& target,
                                                  plugin_services& services,
                                                  std::int64_t copied_at_ms,
                                                  remote_state& remote) {
  // The edge made no temp folder: nothing to clean up there.
  remote.touched = false;
  const std::string since = format_time(copied_at_ms);
  services.event("info", "pull.unchanged",
                 target.path + " is unchanged since the copy of " + since +
                     " (same size, inode, times and header on the edge host); copy "
                     "skipped",
                 {{"copied_at", since}});
  pull_result result;
  result.outcome = pull_result::status::success;
  result.files = 1;
  result.data = {{"unchanged", true}, {"copied_at", since}};
  result.message = "unchanged since " + since + ", copy skipped";
  return result;
}

pull_result sqlite_dump_handler::pull_unguarded(const target_spec& target,
                                                plugin_services& services,
                                                const sqlite_options& options,
                                                remote_state& remote) {
  pull_result result;
  const std::string name = base_name(target.path);
  if (name.empty() || name == "/" || name == "." || name == "..") {
    result.message = "invalid database path " + target.path;
    return result;
  }
  const std::string staged = target.staging_dir + "/" + name;
  const std::string incoming_dir = target.work_dir + "/incoming";
  const std::string incoming = incoming_dir + "/" + name;
  for (const auto& dir : {target.staging_dir, incoming_dir}) {
    auto made = make_dirs(dir, 0700);
    if (!made) {
      result.message = made.err().message;
      return result;
    }
  }
  for (const char* suffix : {"", ".gz", "-wal", "-shm", "-journal"})
    remove_file(incoming + suffix);
  if (services.cancel().cancelled()) {
    result.message = "cancelled";
    return result;
  }

  auto shell_or = services.remote();
  if (!shell_or) {
    result.message = "cannot reach the edge host: " + shell_or.err().message;
    return result;
  }
  remote_shell& shell = **shell_or;
  const bool use_rsync = options.transfer == "rsync";

  // 1. One command does all the edge's work before the transfer: leftovers,
  //    checks, fingerprint, temp folder, the consistent copy (and its gzip).
  remote.touched = true;
  remote.token = new_run_token();
  const std::string helper = options.sudo ? options.sudo_helper : std::string{};
  last_copy previous;
  copy_request request;
  request.db_path = target.path;
  request.remote_tmp_dir = options.remote_tmp_dir;
  request.target_hash = target.hash;
  request.token = remote.token;
  request.method = options.method;
  request.gzip = !use_rsync;
  request.sudo_helper = helper;
  request.unchanged_if = unchanged_if(target, staged, previous);
  const auto copy_started = std::chrono::steady_clock::now();
  auto copy_run = shell.exec(copy_script(request), milliseconds{0});
  if (!copy_run) {
    result.message = remote_failure("cannot make the copy on the edge host", copy_run);
    return result;
  }
  auto copy = parse_copy(copy_run->out);
  remote.temp_dir = copy.temp_dir;
  if (!copy.error.empty()) {
    result.message = copy_error_message(copy.error, target, options,
                                        services.endpoint().user, helper, *copy_run);
    return result;
  }
  if (copy.unchanged)
    return unchanged_result(target, services, previous.copied_at_ms, remote);
  const std::string version_text =
      copy.sqlite_version.substr(0, copy.sqlite_version.find(' '));
  const std::string method_text =
      copy.method == "vacuum_into" ? "VACUUM INTO" : ".timeout 10000 + .backup";
  if (!copy.copied &&
      copy_run->err.find("attempt to write a readonly database") != std::string::npos) {
    // Opened read-only, sqlite3 cannot roll back a hot journal: we leave the
    // crashed application's recovery to the application.
    result.message = target.path +
                     " has a hot journal (an application stopped in the middle of a "
                     "transaction); satoru opens it read-only and does not roll it "
                     "back: restart the application (or open the database once) to "
                     "recover it, then back up again";
    return result;
  }
  if (!copy.copied) {
    const std::string what =
        copy.copy_failed.rfind("gzip", 0) == 0
            ? "gzip of the copy failed on the edge host"
            : "the consistent copy with " + method_text + " failed on the edge host";
    result.message = remote_failure(what, copy_run);
    return result;
  }
  const auto copy_ms = std::chrono::duration_cast<milliseconds>(
                           std::chrono::steady_clock::now() - copy_started)
                           .count();
  services.event(
      "info", "pull.snapshot",
      fmt::format("consistent copy made with {} (sqlite3 {} on the edge host) in "
                  "{:.1f} s",
                  method_text, version_text, static_cast<double>(copy_ms) / 1000),
      {{"method", copy.method},
       {"sqlite_version", version_text},
       {"database_bytes", copy.size},
       {"duration_ms", copy_ms}});

  // 3. The transfer into work_dir/incoming/<name>.
  const std::string remote_copy = copy.temp_dir + "/" + remote_copy_name;
  std::uint64_t wire_bytes = 0;
  boost::json::object transfer_data{{"transfer", options.transfer}};
  if (use_rsync) {
    // The basis for the delta: the staged copy, hard-linked (or copied) in.
    // No --inplace: rsync writes a new temp file and renames it over the
    // link, so the staged copy is only ever read.
    bool have_basis = false;
    if (exists(staged)) {
      if (::link(staged.c_str(), incoming.c_str()) == 0) {
        have_basis = true;
      } else {
        auto copied = copy_file(staged, incoming);
        have_basis = static_cast<bool>(copied);
      }
    }
    auto source = rsync_remote_path(services.endpoint(), remote_copy, false);
    if (!source) {
      result.message = source.err().message;
      return result;
    }
    rsync_transfer_options transfer;
    transfer.compress = true;
    transfer.io_timeout = options.no_progress_timeout;
    process_spec spec;
    spec.argv = rsync_base_args(services.endpoint(), transfer);
    // --no-whole-file: always the delta algorithm; -I: compare contents even
    // if size and time happen to match.
    // --rsync-path: the edge removes the temp folder as soon as its rsync
    // ends, in the same command (no separate cleanup on success).
    spec.argv.insert(spec.argv.end(),
                     {"--no-whole-file", "-I",
                      "--rsync-path=" + rsync_path_removing(copy.temp_dir), *source,
                      incoming});
    spec.env = rsync_environment();
    spec.no_progress_timeout = options.no_progress_timeout;
    // --info=progress2: the transfer's progress for the CLI and metrics, and
    // the watchdog's measure of a stall.
    spec.progress_output = progress_format::rsync_progress2;
    spec.progress_step = "pull";
    spec.capture_limit = 1 << 20;
    auto run = services.run(std::move(spec));
    if (!run) {
      result.message = "cannot run rsync: " + run.err().message;
      return result;
    }
    if (!run->ok()) {
      result.message = rsync_failure_message(*run, options.no_progress_timeout);
      return result;
    }
    remote.touched = false; // the edge removed the temp folder itself
    auto stats = parse_rsync_stats(run->out);
    wire_bytes = stats.bytes_received;
    transfer_data["basis"] = have_basis;
    transfer_data["rsync"] = stats.to_json();
  } else {
    const std::string gz = incoming + ".gz";
    auto got = shell.get_file(remote_copy + ".gz", gz, milliseconds{0});
    if (!got) {
      result.message = "cannot download the compressed copy: " + got.err().message;
      return result;
    }
    wire_bytes = *got;
    // Never more than the edge said it compressed (a corrupt or hostile
    // file must not fill staging); the last good staged copy stays.
    const std::uint64_t limit =
        (copy.copy_size >= 0 ? static_cast<std::uint64_t>(copy.copy_size) : copy.size) +
        inflate_slack_bytes;
    auto run = services.run(capped_gunzip(gz, incoming, limit));
    remove_file(gz);
    if (!run) {
      result.message = "cannot run gzip: " + run.err().message;
      return result;
    }
    if (auto problem = capped_gunzip_problem(*run, incoming, limit); !problem.empty()) {
      result.message = "cannot decompress the copy: " + problem +
                       "; the last good copy in staging was kept";
      return result;
    }
  }
  struct stat st {};
  if (::stat(incoming.c_str(), &st) != 0) {
    result.message = "the transfer left no file at " + incoming;
    return result;
  }
  const auto copy_size = static_cast<std::uint64_t>(st.st_size);
  transfer_data["bytes"] = wire_bytes;
  transfer_data["copy_bytes"] = copy_size;
  services.event("info", "pull.transfer",
                 fmt::format("{} moved {} over the wire for a {} copy",
                             use_rsync ? "rsync delta transfer" : "gzip + SFTP",
                             human_bytes(wire_bytes), human_bytes(copy_size)),
                 transfer_data);

  // 4. The new copy must be sound before it replaces the last good one.
  ::chmod(incoming.c_str(), 0600);
  process_spec check;
  check.argv = {"sqlite3", "-init",  "/dev/null", "-readonly",
                "-bail",   "-batch", incoming,    "PRAGMA integrity_check"};
  auto checked = services.run(std::move(check));
  if (!checked) {
    result.message =
        "cannot run the local sqlite3 for the integrity check: " + checked.err().message;
    return result;
  }
  std::string verdict = checked->out;
  while (!verdict.empty() && (verdict.back() == '\n' || verdict.back() == '\r'))
    verdict.pop_back();
  if (!checked->ok() || verdict != "ok") {
    std::string why = first_line(verdict);
    if (why.empty()) why = checked->describe("sqlite3");
    result.message = "integrity check of the new copy failed (" + why +
                     "); the last good copy in staging was kept";
    result.failure = failure_kind::permanent;
    services.event("fail", "pull.integrity", result.message);
    return result;
  }
  services.event("ok", "pull.integrity", "PRAGMA integrity_check: ok");

  // 5. Atomic swap: a reader of staging sees the old copy or the new one.
  if (auto synced = fsync_path(incoming, false); !synced) {
    result.message = synced.err().message;
    return result;
  }
  if (::rename(incoming.c_str(), staged.c_str()) != 0) {
    result.message =
        "cannot move the new copy into staging (" + staged + "): " + std::strerror(errno);
    return result;
  }
  // A journal beside the staged copy would be applied to the new copy by
  // whoever opens a restored file; we never create one, so it is stale.
  for (const char* suffix : {"-wal", "-shm", "-journal"})
    remove_file(staged + suffix);
  fsync_path(target.staging_dir, true);
  remember_copy(target, staged, copy.fingerprint);

  result.outcome = pull_result::status::success;
  result.bytes = wire_bytes;
  result.files = 1;
  result.data = {{"method", copy.method},
                 {"transfer", options.transfer},
                 {"bytes", wire_bytes},
                 {"copy_bytes", copy_size},
                 {"sqlite_version", version_text}};
  result.message = fmt::format("copied with {}, {} moved by {}", method_text,
                               human_bytes(wire_bytes), options.transfer);
  return result;
}

} // namespace satoru::plugins

SATORU_PLUGIN(satoru::plugins::sqlite_dump_handler)
