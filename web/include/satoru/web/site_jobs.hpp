#pragma once

#include "satoru/config.hpp"
#include "satoru/error.hpp"
#include "satoru/job.hpp"
#include "satoru/store.hpp"

#include <string>

namespace satoru::web {

/// Queues a `type` job of the configured site called `site`, as `satoru
/// run SITE --job TYPE` does (an identical queued job is returned instead),
/// or with `params` (a restore's request) always a new one, as `satoru
/// restore --to-host` does.
/// Opens a connection of its own on the console's thread, never the
/// actors'. An unknown site is errc::not_found.
expected<enqueue_result> queue_site_job(const config& cfg, const std::string& site,
                                        job_type type, const std::string& params = {});

} // namespace satoru::web
