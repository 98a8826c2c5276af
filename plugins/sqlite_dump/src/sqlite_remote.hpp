#pragma once

/// The shell scripts the sqlite_dump plugin runs on the edge host, and the
/// parsing of their answers. Every value from the config goes in through
/// satoru::shell_quote; the scripts answer on stdout with "satoru-<key>
/// <value>" lines so that a chatty login shell cannot be mistaken for data.

#include <cstdint>
#include <optional>
#include <string>

namespace satoru::plugins::sqlite {

/// How the consistent copy is made on the edge host.
enum class snapshot_method {
  vacuum_into, ///< `VACUUM INTO`: a point-in-time copy even under a steady writer (3.27+)
  backup,      ///< `.timeout 10000` + `.backup`: older sqlite3; restarts on every write
};

const char* to_string(snapshot_method m);

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
/// (answers like prepare_script: satoru-error / -version / -size lines).
std::string sudo_probe_command(const std::string& sudo_helper,
                               const std::string& db_path);

/// Checks the database file and the remote tools, removes this target's
/// leftovers older than leftover_age_minutes, creates the private temp folder
/// run_prefix(...)XXXXXXXXXX, and reports (see prepare_answer). With a
/// `sudo_helper` (non-empty) the database is checked by that helper as root,
/// since the edge user may not be able to see it.
///
/// It also prints the database's fingerprint (fingerprint_script); when that
/// equals `unchanged_if` (the fingerprint taken before the last good copy),
/// it answers "satoru-unchanged" and creates no temp folder.
std::string prepare_script(const std::string& db_path, const std::string& remote_tmp_dir,
                           const std::string& target_hash, const std::string& token,
                           bool need_gzip, bool need_rsync,
                           const std::string& sudo_helper = {},
                           const std::string& unchanged_if = {});

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

struct prepare_answer {
  std::string error;          ///< "missing", "notfile", "notsqlite", "nosqlite3", ...
  std::string sqlite_version; ///< "3.40.1 2022-12-28 ..."
  std::uint64_t size = 0;     ///< the database file's size
  std::string temp_dir;       ///< the private temp folder created
  std::string fingerprint;    ///< "" when it could not be taken
  bool unchanged = false;     ///< fingerprint == unchanged_if: no temp folder made
};
prepare_answer parse_prepare(const std::string& out);

/// Makes the consistent copy `remote_copy_name` inside temp_dir: as the
/// edge user, or with a `sudo_helper` as root, the helper streaming its copy
/// into a file the edge user created.
std::string snapshot_script(const std::string& temp_dir, const std::string& db_path,
                            snapshot_method method, const std::string& sudo_helper = {});

/// `gzip -1 -c` of the copy into "<copy>.gz" inside temp_dir.
std::string gzip_script(const std::string& temp_dir);

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
