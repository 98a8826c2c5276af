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
/// `requested_by`: who asked (requester_of()).
expected<enqueue_result> queue_site_job(const config& cfg, const std::string& site,
                                        job_type type, const std::string& params,
                                        const std::string& requested_by);

/// How long a restore dry run's confirmation stays valid after the dry run
/// ended.
inline constexpr std::int64_t confirmation_valid_ms = 3'600'000;

/// Queues the applying restore (`params`) that confirms the dry run
/// `dry_run_id` of `site`: once per dry run (errc::busy after that), and
/// only within confirmation_valid_ms of the dry run's end at `now`
/// (errc::timeout after that); store::enqueue_confirmed.
expected<enqueue_result>
queue_confirmed_restore(const config& cfg, const std::string& site,
                        std::int64_t dry_run_id, const std::string& params,
                        const std::string& requested_by, std::int64_t now);

} // namespace satoru::web
