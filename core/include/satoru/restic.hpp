#pragma once

#include "satoru/cancel.hpp"
#include "satoru/config.hpp"
#include "satoru/error.hpp"
#include "satoru/process.hpp"
#include "satoru/secret.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace satoru {

/// A restic repository and how to open it. Secrets reach restic through the
/// child's environment only (RESTIC_PASSWORD_FILE for file sources,
/// RESTIC_PASSWORD for env sources, B2_ACCOUNT_ID/B2_ACCOUNT_KEY), never argv.
struct restic_repository {
  std::string location;               ///< path or restic repository string
  secret_source password;
  secret_source b2_account_id;        ///< only for remote repositories
  secret_source b2_account_key;
  std::string cache_dir;              ///< RESTIC_CACHE_DIR; empty = restic's default
};

/// The `summary` line of `restic backup --json` (documented fields only).
struct backup_summary {
  std::string snapshot_id;            ///< short id as restic prints it
  std::int64_t files_new = 0, files_changed = 0, files_unmodified = 0;
  std::int64_t dirs_new = 0, dirs_changed = 0;
  std::int64_t data_added = 0;        ///< bytes added to the repository
  std::int64_t total_files_processed = 0;
  std::int64_t total_bytes_processed = 0;
  double total_duration = 0;          ///< seconds
  bool warning = false;               ///< exit 3: saved, but some files were unreadable
  std::string warning_message;
};

struct snapshot_info {
  std::string id;                     ///< full id
  std::string short_id;
  std::string time;                   ///< RFC 3339 as restic prints it
  std::string hostname;
  std::vector<std::string> paths;
  std::vector<std::string> tags;
  std::string original;               ///< id in the source repository for copied snapshots
  /// The value of a "key=value" tag, or "".
  std::string tag_value(const std::string& key) const;
  /// `time` in Unix milliseconds (0 when unparsable).
  std::int64_t unix_ms() const;
};

/// Per-group result of `forget --json`.
struct forget_group {
  std::vector<std::string> tags;
  std::int64_t kept = 0;
  std::int64_t removed = 0;
  std::vector<std::string> removed_ids;
};

struct repo_stats {
  std::int64_t total_size = 0;        ///< bytes (raw-data mode)
  std::int64_t total_blob_count = 0;
  std::int64_t snapshots_count = 0;
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
  expected<backup_summary> backup(const std::string& dir, const std::vector<std::string>& tags,
                                  const std::string& host, const cancel_token& cancel = {}) const;
  /// `restic snapshots --json` filtered by tags (all must match: one --tag
  /// with a comma list is AND in restic 0.14, repeated --tag flags are OR).
  expected<std::vector<snapshot_info>> snapshots(const std::vector<std::string>& tags = {},
                                                 const cancel_token& cancel = {}) const;
  /// `restic forget --json --tag <all tags> --group-by <group_by> <policy>`
  /// (never --prune: run prune() after). Needs at least one tag and only
  /// accepts --keep-* flags.
  expected<std::vector<forget_group>> forget(const std::vector<std::string>& policy_flags,
                                             const std::vector<std::string>& tags,
                                             const std::string& group_by,
                                             const cancel_token& cancel = {}) const;
  expected<void> prune(const cancel_token& cancel = {}) const;
  /// `restic check`; the error carries restic's complaint.
  expected<void> check(const cancel_token& cancel = {}) const;
  /// Removes stale locks (`restic unlock`, which only removes stale ones).
  expected<void> unlock(const cancel_token& cancel = {}) const;
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
  /// and is moved into place.
  expected<void> restore(const std::string& snapshot, const std::string& path,
                         const std::string& target, const std::vector<std::string>& tags = {},
                         const cancel_token& cancel = {}) const;

  /// The version line of the restic binary ("restic 0.14.0 ...").
  static expected<std::string> version();

  /// The child process of one restic call: argv, environment, deadline.
  /// `from` adds the RESTIC_FROM_* variables of a source repository (copy,
  /// init --copy-chunker-params). Public so that tests can check that no
  /// secret ever reaches argv; the environment does hold secrets of env
  /// sources, so never log it.
  expected<process_spec> command(std::vector<std::string> args, const std::string& cwd = {},
                                 const restic_repository* from = nullptr) const;

private:
  /// Runs restic with the repository's environment; the error message is
  /// restic's own (JSON errors on stderr are decoded).
  expected<process_result> run(std::vector<std::string> args, const cancel_token& cancel,
                               const std::string& cwd = {},
                               std::vector<std::pair<std::string, std::string>> extra_env = {},
                               bool accept_exit_3 = false) const;
  expected<std::vector<std::pair<std::string, std::string>>> environment() const;
  /// Runs a prepared spec; turns anything but exit 0 (or 3 when accepted)
  /// into one line naming `what` ("restic backup"), with secrets scrubbed.
  expected<process_result> execute(process_spec spec, const cancel_token& cancel,
                                   const std::string& what, bool accept_exit_3) const;
  /// The snapshot that `restore` means: an id, or the newest with `tags`.
  expected<snapshot_info> resolve_snapshot(const std::string& snapshot,
                                           const std::vector<std::string>& tags,
                                           const cancel_token& cancel) const;

  restic_repository repo_;
  std::chrono::milliseconds timeout_;
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
