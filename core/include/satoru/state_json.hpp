#pragma once

#include "satoru/config.hpp"
#include "satoru/error.hpp"
#include "satoru/progress.hpp"
#include "satoru/store.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <cstdint>
#include <optional>
#include <vector>

namespace satoru {

/// The JSON of sites, jobs and events, as `satoru sites|jobs|job --json`
/// print it and the web console's /api/v1 answers it (docs/reference.md):
/// one builder for both, so the two never drift apart. Everything is read
/// through `db`, which may be a read-only connection; a null `db` means
/// there is no database yet.

boost::json::object job_json(const job_row& j);
/// An event; `"type": "event"` tells it from progress lines in a follow.
boost::json::object event_json(const event_row& e);

/// "percent" (null when unknown) and "progress" (its running steps) of a job.
void add_progress_json(boost::json::object& o, const job_row& j,
                       const std::vector<progress_row>& progress);

/// The live progress rows when one of `jobs` runs (none otherwise).
expected<std::vector<progress_row>> live_progress(store* db,
                                                  const std::vector<job_row>& jobs);

/// `satoru jobs --json`: the jobs `filter` selects, newest first, with their progress.
expected<boost::json::array> jobs_json(store* db, const job_filter& filter);

/// `satoru job ID --json`: one job with its progress and events; nullopt
/// when there is no such job.
expected<std::optional<boost::json::object>> job_detail_json(store* db, std::int64_t id);

/// `satoru sites --json`: every configured site (config order) with what
/// the database knows of it, its targets and its running work.
expected<boost::json::array> sites_json(const config& cfg, store* db);

} // namespace satoru
