#pragma once

#include "satoru/cancel.hpp"
#include "satoru/config.hpp"
#include "satoru/error.hpp"
#include "satoru/process.hpp"
#include "satoru/secret.hpp"

#include <boost/json/object.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace satoru {

class event_sink;

/// A restic repository and how to open it. Secrets reach restic through the
/// child's environment only (RESTIC_PASSWORD_FILE for file sources,
/// RESTIC_PASSWORD for env sources, B2_ACCOUNT_ID/B2_ACCOUNT_KEY), never argv.
struct restic_repository {
  std::string location; ///< path or restic repository string
  secret_source password;
  secret_source b2_account_id; ///< only for remote repositories
  secret_source b2_account_key;
  std::string cache_dir; ///< RESTIC_CACHE_DIR; empty = restic's default
};

/// The `summary` line of `restic backup --json` (documented fields only).
struct backup_summary {
  std::string snapshot_id; ///< short id as restic prints it
  std::int64_t files_new = 0, files_changed = 0, files_unmodified = 0;
  std::int64_t dirs_new = 0, dirs_changed = 0;
  std::int64_t data_added = 0; ///< bytes added to the repository
  std::int64_t total_files_processed = 0;
  std::int64_t total_bytes_processed = 0;
  double total_duration = 0; ///< seconds
  bool warning = false;      ///< exit 3: saved, but some files were unreadable
  std::string warning_message;
};

struct snapshot_info {
  std::string id; ///< full id
  std::string short_id;
  std::string time; ///< RFC 3339 as restic prints it
  std::string hostname;
  std::vector<std::string> paths;
  std::vector<std::string> tags;
  std::string original; ///< id in the source repository for copied snapshots
  /// The value of a "key=value" tag, or "".
  std::string tag_value(const std::string& key) const;
  /// `time` in Unix milliseconds (0 when unparsable).
  std::int64_t unix_ms() const;
};

/// One entry of a snapshot's tree (`restic ls --json`, documented fields).
struct snapshot_node {
  std::string path; ///< relative to the snapshot's root, "/" first ("/etc/app.conf")
  std::string type; ///< "file", "dir", "symlink", "dev", "chardev", "fifo", "socket"
  std::int64_t size = 0;
  std::uint32_t mode = 0; ///< permission bits (07777)
  std::int64_t uid = 0, gid = 0;
  std::int64_t mtime_ms = 0; ///< Unix milliseconds (0 when unparsable)
};

/// Bytes of the files a restore of `paths` (relative to the snapshot's
/// root, "" or none = everything) writes, from the snapshot's listing.
std::int64_t restore_bytes(const std::vector<snapshot_node>& listed,
                           const std::vector<std::string>& paths = {});

/// One line of `restic diff --json`: a path and how it changed from the
/// first snapshot to the second ('+' added, '-' removed, 'M' content
/// changed, 'T' type changed, 'U' metadata changed).
struct snapshot_change {
  std::string path; ///< relative to the snapshots' root, "/" first
  char modifier = '?';
};

/// Per-group result of `forget --json`.
struct forget_group {
  std::vector<std::string> tags;
  std::int64_t kept = 0;
  std::int64_t removed = 0;
  std::vector<std::string> removed_ids;
};

struct repo_stats {
  std::int64_t total_size = 0; ///< bytes (raw-data mode)
  std::int64_t total_blob_count = 0;
  std::int64_t snapshots_count = 0;
};

/// One lock object of a repository (`restic cat lock ID`). restic 0.14 writes
/// the machine's real host name here (not the --host of snapshots) and its
/// own PID, and refreshes the lock (a new object, new time) every 5 minutes.
struct restic_lock {
  std::string id; ///< storage id (64 hex digits)
  std::string hostname;
  std::string username;
  std::int64_t pid = 0;
  std::int64_t uid = 0;
  bool exclusive = false;
  std::int64_t time_ms = 0; ///< created or last refreshed (holder's clock)
  /// "lock of PID 4711, uid 0, on host vm, held since 2026-12-08T03:12:00Z"
  /// ("exclusive lock ..."): who holds it, for events and logs (no secrets:
  /// a lock holds none). The time is the lock's last refresh.
  std::string holder() const;
};

/// What the kernel says about a PID of this host.
struct process_probe {
  /// kill(pid, 0) did not answer ESRCH: the PID exists (it may be another
  /// user's, hidden from our /proc by ProtectProc=invisible).
  bool exists = false;
  bool visible = false;        ///< /proc/PID could be read: the fields below hold
  bool zombie = false;         ///< exited, not reaped: it holds nothing
  std::int64_t uid = -1;       ///< real uid as our user namespace maps it; -1 = unknown
  std::int64_t started_ms = 0; ///< wall clock; 0 = unknown
  std::string name;            ///< /proc/PID/comm
};
/// kill(pid, 0), then /proc/<pid>/stat and status when readable.
process_probe probe_process(std::int64_t pid);

/// restic 0.14 refreshes a held lock every 5 minutes, and calls one older
/// than this stale (its `unlock` removes it, whoever holds it).
constexpr std::int64_t restic_stale_lock_ms = 30 * 60 * 1000;

/// Whose a lock is, from where we stand, and what that allows.
enum class lock_holder {
  other_host, ///< another machine's (or of no known host): waited for
  other_user, ///< this host, another uid's: waited for (its process may be hidden)
  live,       ///< this host, our uid, a process that may be its restic: waited for
  dead,       ///< this host, our uid, its process provably gone: removed at once
  stale,      ///< not refreshed for 30 minutes (restic's own rule): removed
};
/// A lock is removed early only when its holder is provably gone: the lock
/// is of this host and of `own_uid` (the uid satoru's restic runs as), and
/// its PID does not exist, is a zombie, or is a visible process of `own_uid`
/// that is not restic and started well after the lock was written (the PID
/// was reused). A visible live restic of ours is never removed, however old
/// its lock. Every other lock waits for restic's rule: stale once its time
/// is 30 minutes before `now_ms`. Unlike restic's own `unlock`, a PID that
/// cannot be signalled (another user's, EPERM) is never taken as gone.
lock_holder classify_lock(const restic_lock& lock, const std::string& this_host,
                          std::int64_t own_uid, const process_probe& process,
                          std::int64_t now_ms);
/// True for the holders whose locks clear_dead_locks() removes.
inline bool removable(lock_holder h) {
  return h == lock_holder::dead || h == lock_holder::stale;
}
/// The host name restic writes into its locks (the kernel's, as Go's
/// os.Hostname reads it).
std::string lock_host_name();

/// What a "repository is already locked" error says about the holder.
struct lock_conflict {
  bool exclusive = false;
  std::int64_t pid = 0;
  std::string hostname;
  std::int64_t age_ms = -1; ///< -1 = not given
  std::string storage_id;   ///< short id (8 hex)
  /// "exclusive lock of PID 12 on host vm, 3 s old"
  std::string describe() const;
};
/// Decodes restic 0.14's "unable to create lock in backend: repository is
/// already locked [exclusively] by PID N on HOST by USER (UID u, GID g)\nlock
/// was created at ... (DURATION ago)\nstorage ID xxxxxxxx" from its stderr.
std::optional<lock_conflict> parse_lock_conflict(std::string_view restic_stderr);

/// What clear_dead_locks() found and did.
struct lock_cleanup {
  std::vector<restic_lock>
      removed; ///< locks of our dead processes (or stale to restic), gone now
  /// Everyone else's (classify_lock: live, other_user, other_host): never
  /// touched, waited for.
  std::vector<restic_lock> kept;
  /// Dead locks that could not be removed on this backend (restic 0.14 has
  /// no command to remove one lock; see clear_dead_locks). restic's own
  /// unlock removes them once they are 30 minutes old.
  std::vector<restic_lock> left;
};

/// Calls of the restic CLI with deadlines and cancellation. Thread-compatible:
/// use one object per thread, or share a const one.
class restic_client {
public:
  restic_client(restic_repository repo, std::chrono::milliseconds timeout);

  const restic_repository& repository() const { return repo_; }

  /// True when `restic cat config` succeeds; false when the repository does
  /// not exist; an error for anything else (wrong password, unreachable).
  expected<bool> exists(const cancel_token& cancel = {}) const;
  /// `restic init`; with `copy_chunker_from`, init --copy-chunker-params
  /// --from-repo so that copies from that repository deduplicate.
  expected<void> init(const restic_repository* copy_chunker_from = nullptr,
                      const cancel_token& cancel = {}) const;
  /// Initialises when missing.
  expected<void> ensure(const restic_repository* copy_chunker_from = nullptr,
                        const cancel_token& cancel = {}) const;

  /// `restic backup --json --tag ... .` run from inside `dir`.
  expected<backup_summary> backup(const std::string& dir,
                                  const std::vector<std::string>& tags,
                                  const std::string& host,
                                  const cancel_token& cancel = {}) const;
  /// `restic snapshots --json` filtered by tags (all must match: one --tag
  /// with a comma list is AND in restic 0.14, repeated --tag flags are OR).
  expected<std::vector<snapshot_info>>
  snapshots(const std::vector<std::string>& tags = {},
            const cancel_token& cancel = {}) const;
  /// `restic forget --json --tag <all tags> --group-by <group_by> <policy>`
  /// (never --prune: run prune() after). Needs at least one tag and only
  /// accepts --keep-* flags.
  expected<std::vector<forget_group>> forget(const std::vector<std::string>& policy_flags,
                                             const std::vector<std::string>& tags,
                                             const std::string& group_by,
                                             const cancel_token& cancel = {}) const;
  expected<void> prune(const cancel_token& cancel = {}) const;
  /// `restic check`, with `--read-data-subset` when `read_data_subset` is
  /// not empty or "0%" ("2%", "1/7": also reads that share of the pack
  /// data); the error carries restic's complaint.
  expected<void> check(const cancel_token& cancel = {},
                       const std::string& read_data_subset = {}) const;
  /// Removes stale locks (`restic unlock`, which only removes stale ones).
  expected<void> unlock(const cancel_token& cancel = {}) const;
  /// The repository's locks (`list locks` and `cat lock` with --no-lock, so
  /// listing works beside an exclusive lock). A lock that vanishes while
  /// being read is skipped.
  expected<std::vector<restic_lock>> locks(const cancel_token& cancel = {}) const;
  /// Removes the locks classify_lock() calls dead or stale: those our own
  /// dead processes left, and those not refreshed for 30 minutes. Never
  /// touches anyone else's. restic 0.14 cannot remove one chosen lock, so a
  /// lock is deleted as the object `locks/<id>` itself: a file for local
  /// repositories, an HTTP DELETE (curl, credentials on its stdin) for
  /// `rest:` ones; on other backends (b2:, s3:, sftp:) it is left and
  /// reported, and `restic unlock` removes it once it is 30 minutes old. That
  /// unlock runs only when no kept lock is of this host: restic's own rule
  /// would also remove a live lock of another user (kill() answers EPERM).
  expected<lock_cleanup> clear_dead_locks(const cancel_token& cancel = {}) const;

  /// Where lock events go (waiting for a lock, dead locks removed) and the
  /// progress of backup (step "snapshot"), copy (step "copy") and restore
  /// (step "restore"), reported
  /// for `target` (a target hash, "" for repository work); none by default.
  /// The sink must outlive the client's calls.
  void report_to(event_sink* events, std::string target = {}) {
    events_ = events;
    target_ = std::move(target);
  }
  /// Reads (`cat config`, `snapshots`, `stats`, `ls`, `dump`) take no lock
  /// from now on.
  /// For background readers such as the metrics refresh: a reader killed
  /// with the daemon then leaves no lock behind, and it never makes an
  /// exclusive retention wait. Its numbers may be off while a prune runs,
  /// which the next read corrects.
  void read_without_lock() { no_lock_ = true; }
  /// Every command that meets a lock waits for it (see execute()), not only
  /// the exclusive ones: for a person's restore, which should not fail
  /// because a retention runs.
  void wait_for_locks() { wait_all_ = true; }
  /// Who restic runs as: when we are root and the repository is a local
  /// folder of another user, that user (with root's capabilities kept), so
  /// that no file in the repository is ever someone else's and the owner's
  /// restic can read every lock. Nothing otherwise.
  std::optional<process_user> repository_user() const;
  /// The uid restic's locks of this client carry (repository_user()'s, or ours).
  std::int64_t lock_uid() const;
  expected<repo_stats> stats(const cancel_token& cancel = {}) const;
  /// `restic copy --from-repo SRC` into this repository; returns the number
  /// of snapshots copied. restic 0.14's copy has no --json, so the count is
  /// the destination's snapshot ids after minus before (two `snapshots`
  /// calls); exact as long as nothing else writes the destination meanwhile
  /// (the sync actor owns it). Already copied snapshots are skipped by restic.
  expected<std::int64_t> copy_from(const restic_repository& source,
                                   const cancel_token& cancel = {}) const;
  /// Restores `snapshot` (id or "latest" = the newest with all `tags`)
  /// subfolder `path` into `target`, so that target holds exactly what
  /// `path` held. `path` is the folder that was backed up (the snapshot's
  /// path, as backup() records it), a folder below it, or "" / "/" for the
  /// whole snapshot. With an id and tags, the snapshot must carry the tags.
  /// restic 0.14 has no `ID:subfolder` syntax and restores a subfolder with
  /// its parents, so a subfolder goes through a private folder in `target`
  /// and is moved into place. With `only`, just those files or folders
  /// (relative to `path`, no "..") are restored, at their place below
  /// `target`; one that is not in the snapshot is a not_found error.
  /// Everything is restored into a fresh private folder inside `target` and
  /// renamed into place, so a symlink planted in `target` is replaced, never
  /// followed. Progress (step "restore"): the bytes restic has written of
  /// `bytes_total` (restore_bytes() of the snapshot's listing; 0 = unknown);
  /// a restore that writes nothing for 5 minutes is stopped as stalled.
  expected<void>
  restore(const std::string& snapshot, const std::string& path, const std::string& target,
          const std::vector<std::string>& tags = {}, const cancel_token& cancel = {},
          const std::vector<std::string>& only = {}, std::int64_t bytes_total = 0) const;

  /// Every entry of a snapshot's tree (`restic ls --json ID`), in restic's
  /// order (depth first, names sorted).
  expected<std::vector<snapshot_node>> ls(const std::string& snapshot,
                                          const cancel_token& cancel = {}) const;
  /// One file of a snapshot as it is read (`restic dump ID PATH`, `path`
  /// absolute inside the snapshot): the caller reads the child's stdout at
  /// its own pace and ends the call with finish(), whose result
  /// describe("restic dump") explains a failure. The client's deadline does
  /// not apply (a slow reader sets the pace).
  expected<std::unique_ptr<process_reader>> dump(const std::string& snapshot,
                                                 const std::string& path) const;
  /// What changed between two snapshots (`restic diff --json A B`).
  expected<std::vector<snapshot_change>> diff(const std::string& from,
                                              const std::string& to,
                                              const cancel_token& cancel = {}) const;

  /// The version line of the restic binary ("restic 0.14.0 ...").
  static expected<std::string> version();

  /// The child process of one restic call: argv, environment, deadline.
  /// `from` adds the RESTIC_FROM_* variables of a source repository (copy,
  /// init --copy-chunker-params). Public so that tests can check that no
  /// secret ever reaches argv; the environment does hold secrets of env
  /// sources, so never log it.
  expected<process_spec> command(std::vector<std::string> args,
                                 const std::string& cwd = {},
                                 const restic_repository* from = nullptr) const;

private:
  /// Runs restic with the repository's environment; the error message is
  /// restic's own (JSON errors on stderr are decoded).
  expected<process_result>
  run(std::vector<std::string> args, const cancel_token& cancel,
      const std::string& cwd = {},
      std::vector<std::pair<std::string, std::string>> extra_env = {},
      bool accept_exit_3 = false) const;
  expected<std::vector<std::pair<std::string, std::string>>> environment() const;
  /// Runs a prepared spec; turns anything but exit 0 (or 3 when accepted)
  /// into one line naming `what` ("restic backup"), with secrets scrubbed.
  /// A child ended by a signal, its deadline or a cancel has left its lock
  /// behind, and an exclusive command (forget, prune, check; any command
  /// after wait_for_locks()) that meets a lock waits for it with backoff
  /// within the client's deadline: the lock of a dead process of ours is
  /// removed at once, anyone else's waited for until restic calls it stale,
  /// with a "waiting for the lock of PID ..." event per retry.
  expected<process_result> execute(process_spec spec, const cancel_token& cancel,
                                   const std::string& what, bool accept_exit_3) const;
  /// One run of the child; the error as execute() describes it, and how the
  /// child ended in `ended` (when it ran and failed).
  expected<process_result> execute_once(const process_spec& spec,
                                        const cancel_token& cancel,
                                        const std::string& what, bool accept_exit_3,
                                        process_result* ended) const;
  /// clear_dead_locks() on a client that does not tidy up after itself
  /// (no recursion), with its own short deadline; errors are swallowed.
  lock_cleanup tidy_locks(std::chrono::milliseconds timeout) const;
  /// Says that `what` waits `backoff` for the lock restic named in `err`
  /// (found among `kept` by its storage id for uid and time).
  void report_wait(const std::string& what, const std::string& err,
                   const std::vector<restic_lock>& kept,
                   std::chrono::milliseconds backoff) const;
  /// Deletes one lock object (see clear_dead_locks); false if this backend
  /// cannot.
  expected<bool> remove_lock(const std::string& id, const cancel_token& cancel) const;
  void emit(const std::string& level, const std::string& message,
            const boost::json::object& data) const;
  /// Runs a long command whose meter restic prints in `format`, feeding it
  /// to the event sink as `step` (progress while it moves, then its end).
  expected<process_result> execute_metered(process_spec spec, progress_format format,
                                           const std::string& step,
                                           const cancel_token& cancel,
                                           const std::string& what,
                                           bool accept_exit_3) const;
  /// The snapshot that `restore` means: an id, or the newest with `tags`.
  expected<snapshot_info> resolve_snapshot(const std::string& snapshot,
                                           const std::vector<std::string>& tags,
                                           const cancel_token& cancel) const;

  restic_repository repo_;
  std::chrono::milliseconds timeout_;
  event_sink* events_ = nullptr;
  std::string target_; ///< what progress is reported for
  bool tidy_ = true;   ///< clean up after children that died (off for the cleaner itself)
  bool no_lock_ = false;  ///< reads pass --no-lock (read_without_lock)
  bool wait_all_ = false; ///< every command waits for locks (wait_for_locks)
};

/// restic's cache folder for a config: `<restic_repo_path>-cache`, a private
/// sibling of the local repository (restic creates it 0700). Not restic's
/// default (~/.cache/restic): the service user may have no home, and a
/// sibling stays on the repository's disk without being inside the repository.
/// One folder serves both repositories (restic keys caches by repository id).
std::string restic_cache_dir(const config& cfg);
/// The local repository of a config (cache: restic_cache_dir).
restic_repository local_repository(const config& cfg);
/// A client of the local repository with the config's restic deadline.
restic_client local_restic(const config& cfg);

/// The off-site repository of a config (restic_b2_repository), if any; same
/// password as the local one, B2 credentials from their sources.
std::optional<restic_repository> offsite_repository(const config& cfg);

/// Tags of a target's snapshots: satoru, site=<uuid>, target=<hash>.
std::vector<std::string> snapshot_tags(const std::string& site_uuid,
                                       const std::string& target_hash);

/// A repository string with any "user:password@" removed, for messages.
std::string redact_repository(const std::string& location);

} // namespace satoru
