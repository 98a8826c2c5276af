#pragma once

/// The console's snapshot pages and their API (docs/console.md, docs/api.md):
/// a target's snapshots, one folder level of a snapshot's tree, one file's
/// download, and restores back to the edge host (a dry run first, applied
/// only when confirmed on its preview). They read the repository with
/// restic's --no-lock reads on the console's pool (reads_repository()),
/// never its I/O threads or the actors'.

#include "satoru/config.hpp"
#include "satoru/error.hpp"
#include "satoru/restic.hpp"
#include "satoru/time.hpp"
#include "satoru/web/console.hpp"

#include <cstddef>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace satoru::web {

/// How the pages read the repository: restic by default; tests count the
/// calls through their own.
struct snapshot_source {
  /// `restic snapshots` with all of `tags` (none: every snapshot).
  std::function<expected<std::vector<snapshot_info>>(
      const config&, const std::vector<std::string>& tags)>
      snapshots;
  /// `restic ls` of one snapshot (full id).
  std::function<expected<std::vector<snapshot_node>>(const config&,
                                                     const std::string& id)>
      ls;
  /// `restic dump` of one file (absolute inside the snapshot), read as it
  /// is sent.
  std::function<expected<std::shared_ptr<body_source>>(
      const config&, const std::string& id, const std::string& path)>
      dump;

  /// The local repository through restic, reads without a lock, with a
  /// deadline of two minutes a call.
  static snapshot_source restic();
};

/// A path inside a snapshot as the browser sends it (`?path=`), relative to
/// the target's root: "" is the root, a trailing '/' is dropped. An
/// absolute path, "." or ".." or an empty part, a backslash, NUL or
/// another control character is an invalid_argument error naming the
/// parameter; nothing else is trusted either (it must then be in the
/// snapshot's listing).
expected<std::string> snapshot_path_parameter(std::string_view text);

/// The attachment header of a downloaded file: a plain ASCII `filename`
/// (anything else becomes '_') and, for a UTF-8 name, `filename*`.
std::string attachment_header(std::string_view name);

/// The listings of the snapshots browsed last, so that opening another
/// folder of one runs no restic: at most `max_snapshots` snapshots and
/// `max_entries` entries in all (least recently used go first; a listing
/// larger than that is used once and not kept). Thread-safe.
class tree_cache {
public:
  struct entry {
    snapshot_info snapshot;
    /// Paths relative to the target's root ("etc/app.conf"), restic's order.
    std::shared_ptr<const std::vector<snapshot_node>> nodes;
  };

  explicit tree_cache(std::size_t max_snapshots = 4, std::size_t max_entries = 2'000'000);

  /// The listing of the snapshot with this full id, if kept.
  std::optional<entry> find(const std::string& id);
  void put(entry e);
  std::size_t size() const;

private:
  mutable std::mutex mutex_;
  std::size_t max_snapshots_, max_entries_;
  std::size_t entries_ = 0;
  std::list<entry> kept_; ///< most recently used first
};

/// The routes under /sites/{site}/targets/{target_hash}/ and
/// /api/v1/sites/{site}/targets/{target_hash}/.
class snapshot_pages {
public:
  /// `clock` (Unix ms) tells when a dry run's confirmation expired.
  explicit snapshot_pages(snapshot_source source = snapshot_source::restic(),
                          std::function<std::int64_t()> clock = satoru::now_ms);

  /// The answer when `path` is one of these routes; nullopt otherwise.
  /// `who` is already authenticated; changes go through refuse_change().
  std::optional<console_answer> route(const http_request& req, std::string_view path,
                                      const principal& who, const config& cfg);

private:
  struct place;
  http_response list_snapshots(const http_request& req, const place& at,
                               const principal& who);
  http_response tree(const http_request& req, const place& at, const std::string& id,
                     const principal& who);
  console_answer download(const http_request& req, const place& at,
                          const std::string& id);
  http_response post_restore(const http_request& req, const place& at,
                             const principal& who);
  http_response restore_preview(const http_request& req, const place& at,
                                std::int64_t job_id, const principal& who);
  /// The snapshot `wanted` names and its listing, from the cache when it
  /// holds it (a full id), else through restic; an error response when
  /// there is none.
  std::variant<tree_cache::entry, http_response>
  listing(const http_request& req, const place& at, const std::string& wanted);

  snapshot_source source_;
  std::function<std::int64_t()> clock_;
  tree_cache cache_;
};

} // namespace satoru::web
