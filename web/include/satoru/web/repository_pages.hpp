#pragma once

#include "satoru/config.hpp"
#include "satoru/error.hpp"
#include "satoru/job.hpp"
#include "satoru/metrics.hpp"
#include "satoru/store.hpp"

#include <boost/json/object.hpp>

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace satoru::web {

/// The local repository's size and snapshot count for the repository page.
/// The daemon's metrics refresh (the sync actor, at most once a minute and
/// after each job) already measures them: those figures are used when the
/// console runs in the daemon and they exist. Otherwise (no metrics, or
/// not measured yet) one `restic --no-lock` read (inspect_repository),
/// kept for a minute, so that page views never queue restic runs.
class repository_figures_source {
public:
  explicit repository_figures_source(std::shared_ptr<const metrics> m);

  struct reading {
    repository_figures figures;
    std::string measured_by; ///< "metrics" or "restic"
    std::string error;       ///< restic's, when its read failed
  };
  reading read(const config& cfg, std::int64_t now_ms);

private:
  std::shared_ptr<const metrics> metrics_;
  std::mutex mutex_; ///< one restic read at a time; guards cached_
  std::optional<reading> cached_;
};

/// How long a restic read of the figures is reused.
inline constexpr std::int64_t repository_figures_cache_ms = 60 * 1000;

/// GET /repository?format=json and GET /api/v1/repository: the local
/// repository (redacted location, size, snapshots and where those come
/// from), its last retention and check jobs, and the off-site copy's
/// sync_state with its last job. `db` null: no database yet.
expected<boost::json::object> repository_json(const config& cfg, store* db,
                                              const repository_figures_source::reading& r,
                                              std::int64_t now_ms);

/// The repository page from repository_json(); for operators (`csrf` not
/// empty) the "Sync now", "Prune now" and "Check now" buttons, forms that
/// POST to /repository/jobs with the session's CSRF token.
std::string repository_html(const boost::json::object& repo, const std::string& user,
                            const std::string& csrf);

/// The job a "type" of POST /repository/jobs names: sync (restic_sync),
/// prune (retention) or check; nullopt for anything else.
std::optional<job_type> repository_job_type(std::string_view name);

/// Queues that job through a connection of its own, as `satoru sync`,
/// `prune` and `check` do (queue_repository_job). A sync without an
/// off-site repository is an errc::invalid_argument naming the key.
expected<enqueue_result> enqueue_repository_job(const config& cfg, job_type type);

} // namespace satoru::web
