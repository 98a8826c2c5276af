#pragma once

/// The shell scripts the sqlite_dump plugin runs on the edge host, and the
/// parsing of their answers. Every value from the config goes in through
/// satoru::shell_quote; the scripts answer on stdout with "satoru-<key>
/// <value>" lines so that a chatty login shell cannot be mistaken for data.

#include <cstdint>
#include <optional>
#include <string>

namespace satoru::plugins::sqlite {

/// Name of the remote copy inside the private temp folder. Fixed and plain so
/// that no SQL string or dot-command argument ever holds a config value: the
/// commands run inside that folder and name the copy relatively.
inline constexpr const char* remote_copy_name = "snapshot.db";

/// "/tmp/satoru-<hash>." — every temp folder of a target starts with this.
std::string temp_prefix(const std::string& remote_tmp_dir,
                        const std::string& target_hash);

/// "/tmp/satoru-<hash>.<token>." — the temp folders of one pull. The token is
/// random per pull, so that two servers (or two sites) copying the same
/// database at once never take each other's folder for theirs.
std::string run_prefix(const std::string& remote_tmp_dir, const std::string& target_hash,
                       const std::string& token);

/// A fresh random token for run_prefix (16 hex digits).
std::string new_run_token();

/// A shell word list matching every folder that starts with `prefix`: the
/// quoted prefix followed by an unquoted '*'.
std::string glob_of(const std::string& prefix);

/// Leftovers younger than this may belong to a pull still running elsewhere
/// (another server, another site naming the same database): only older ones
/// are removed by a pull that did not create them.
inline constexpr int leftover_age_minutes = 24 * 60;

/// Removes the folders named by `folders` (a shell word list: one quoted path
/// or glob_of()), only those not modified for `older_than_minutes` when that
/// is above 0. A process still working in a folder (the sqlite3 or gzip of a
/// cancelled pull, recorded in its "pid" file) is stopped first, but only if
/// its working folder really is that folder, so a reused pid is left alone.
/// Exits 0 when none of the folders it should remove is left.
std::string cleanup_script(const std::string& folders, int older_than_minutes = 0);

/// "sudo -n '<helper>' probe '<db>'": the helper's checks of the database
/// (answers like copy_script: satoru-error / -version / -size lines).
std::string sudo_probe_command(const std::string& sudo_helper,
                               const std::string& db_path);

/// What one pull asks of the edge host in its first command.
struct copy_request {
  std::string db_path;
  std::string remote_tmp_dir;
  std::string target_hash;
  std::string token;        ///< new_run_token()
  std::string method;       ///< "auto" | "vacuum" | "backup"
  bool gzip = false;        ///< transfer "gzip": compress the copy on the edge too
  std::string sudo_helper;  ///< non-empty: check and copy as root through it
  std::string unchanged_if; ///< the last good copy's fingerprint ("" = copy anyway)
};

/// The first of a pull's two remote commands, all of the edge's work before
/// the transfer: removes this target's leftovers older than
/// leftover_age_minutes; checks the database file (with a `sudo_helper`, as
/// root through it) and the tools; prints the fingerprint and stops with
/// "satoru-unchanged" when it equals `unchanged_if`; creates the private temp
/// folder run_prefix(...)XXXXXXXXXX; picks the method (VACUUM INTO on sqlite3
/// 3.27+ unless "backup"); makes the consistent copy `remote_copy_name` in it
/// (recording the working process in its "pid" file for the cleanup); and
/// for gzip compresses it. Answers in "satoru-<key> <value>" lines (see
/// copy_answer); stderr carries the tools' own messages.
std::string copy_script(const copy_request& request);

/// Shell lines that set $fp to a fingerprint of "$db" and "$db-wal": for
/// each, size, inode, modification and change times with nanoseconds, and
/// its first 100 bytes (the database header holds the file change counter,
/// the WAL header its checkpoint sequence and salts). Every commit changes
/// one of these (rollback journal: the change counter and mtime; WAL: the
/// WAL's size, or its salts when it restarts), and a replaced file has a new
/// inode. $fp is empty — "unknown, copy" — when a file cannot be read or the
/// edge's stat has no sub-second times. plugins/sqlite_dump/edge/
/// satoru-sqlite-copy computes the same for targets with "sudo".
std::string fingerprint_script();

struct copy_answer {
  std::string error; ///< "missing", "notfile", "notsqlite", "nosqlite3", "sudo", ...
  std::string sqlite_version;  ///< "3.40.1 2022-12-28 ..."
  std::uint64_t size = 0;      ///< the database file's size
  std::int64_t copy_size = -1; ///< transfer "gzip": the copy's size before gzip
  std::string temp_dir;        ///< the private temp folder created
  std::string fingerprint;     ///< "" when it could not be taken
  bool unchanged = false;      ///< fingerprint == unchanged_if: no temp folder made
  std::string method;          ///< "vacuum_into" | "backup", once chosen
  std::string copy_failed;     ///< the failing step's exit status ("gzip 1"), if any
  bool copied = false;         ///< the copy (and its gzip) is complete
};
copy_answer parse_copy(const std::string& out);

/// rsync's --rsync-path for the transfer of the copy, the pull's second
/// remote command: the edge rsync, then the temp folder removed, in the same
/// command (rsync's exit status kept).
std::string rsync_path_removing(const std::string& temp_dir);

/// The checks of preflight's "remote.tmp": a private folder can be created,
/// written and removed in remote_tmp_dir; answers "ok" plus `df -Pk` output.
std::string tmp_probe_script(const std::string& remote_tmp_dir);

/// Available KiB from `df -Pk` output (second line, fourth column).
std::optional<std::uint64_t> df_available_kib(const std::string& df_output);

/// Parses "3.40.1 2022-12-28 ..." (or "3.40.1") into major, minor, patch.
struct version {
  int major = 0, minor = 0, patch = 0;
  bool valid = false;
};
version parse_version(const std::string& text);
bool at_least(const version& v, int major, int minor, int patch = 0);

/// The last path component ("app.db" of "/srv/app/app.db").
std::string base_name(const std::string& path);

} // namespace satoru::plugins::sqlite
