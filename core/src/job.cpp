#include "satoru/job.hpp"

#include "satoru/health.hpp"

#include <boost/json.hpp>

#include <algorithm>

namespace satoru {

const char* to_string(job_type t) {
  switch (t) {
  case job_type::preflight:
    return "preflight";
  case job_type::backup:
    return "backup";
  case job_type::retention:
    return "retention";
  case job_type::restic_sync:
    return "restic_sync";
  case job_type::offsite_retention:
    return "offsite_retention";
  case job_type::check:
    return "check";
  case job_type::offsite_check:
    return "offsite_check";
  case job_type::restore_drill:
    return "restore_drill";
  case job_type::restore:
    return "restore";
  }
  return "backup";
}

const char* to_string(job_status s) {
  switch (s) {
  case job_status::queued:
    return "queued";
  case job_status::running:
    return "running";
  case job_status::success:
    return "success";
  case job_status::warning:
    return "warning";
  case job_status::failed:
    return "failed";
  case job_status::interrupted:
    return "interrupted";
  case job_status::cancelled:
    return "cancelled";
  }
  return "queued";
}

const std::vector<job_status>& all_job_statuses() {
  static const std::vector<job_status> statuses = {
      job_status::queued,   job_status::running, job_status::success,
      job_status::warning,  job_status::failed,  job_status::interrupted,
      job_status::cancelled};
  return statuses;
}

const std::vector<job_type>& all_job_types() {
  static const std::vector<job_type> types = {job_type::preflight,
                                              job_type::backup,
                                              job_type::retention,
                                              job_type::restic_sync,
                                              job_type::offsite_retention,
                                              job_type::check,
                                              job_type::offsite_check,
                                              job_type::restore_drill,
                                              job_type::restore};
  return types;
}

std::optional<job_type> parse_job_type(const std::string& text) {
  for (auto t : all_job_types())
    if (text == to_string(t)) return t;
  return std::nullopt;
}

std::optional<job_status> parse_job_status(const std::string& text) {
  for (auto s : all_job_statuses())
    if (text == to_string(s)) return s;
  return std::nullopt;
}

bool is_finished(job_status s) {
  return s == job_status::success || s == job_status::warning ||
         s == job_status::failed || s == job_status::cancelled;
}

bool is_terminal(job_status s) {
  return is_finished(s) || s == job_status::interrupted;
}

bool is_site_job(job_type t) {
  return sets_site_health(t) || t == job_type::restore;
}

bool sets_site_health(job_type t) {
  return t == job_type::preflight || t == job_type::backup;
}

bool uses_offsite(job_type t) {
  return t == job_type::restic_sync || t == job_type::offsite_retention ||
         t == job_type::offsite_check;
}

bool changes_edge_host(const job_row& job) {
  if (job.type != job_type::restore) return false;
  boost::json::error_code ec;
  auto params = boost::json::parse(job.params, ec);
  const auto* obj = params.if_object();
  // Unreadable params: assume the worst, never run it twice.
  if (ec || obj == nullptr) return true;
  const auto* apply = obj->if_contains("apply");
  return apply != nullptr && apply->is_bool() && apply->get_bool();
}

bool asked_by_person(const job_row& job) {
  return !job.requested_by.empty();
}

std::string retry_refusal(const job_row& job) {
  if (changes_edge_host(job)) return not_applied_again;
  if (job.type == job_type::preflight && asked_by_person(job))
    return "a preflight asked for by a person is not retried; run it again";
  return "";
}

bool may_requeue(const job_row& job) {
  return !changes_edge_host(job);
}

job_status combine_parts(const std::vector<job_status>& parts) {
  if (parts.empty()) return job_status::failed;
  bool all_success = true, all_failed = true;
  for (auto p : parts) {
    all_success = all_success && p == job_status::success;
    all_failed = all_failed && p == job_status::failed;
  }
  if (all_success) return job_status::success;
  if (all_failed) return job_status::failed;
  return job_status::warning;
}

const char* health_of(job_status s) {
  switch (s) {
  case job_status::success:
    return health_ok;
  case job_status::warning:
    return health_warning;
  case job_status::failed:
    return health_failed;
  default:
    return health_unknown;
  }
}

const char* to_string(failure_kind k) {
  switch (k) {
  case failure_kind::none:
    return "none";
  case failure_kind::transient:
    return "transient";
  case failure_kind::permanent:
    return "permanent";
  }
  return "none";
}

failure_kind classify(errc code) {
  switch (code) {
  case errc::ok:
    return failure_kind::none;
  // An operator must act: trust the key, fix the key or account, the path,
  // the config; a damaged database copy does not heal by itself.
  case errc::host_key:
  case errc::auth:
  case errc::invalid_argument:
  case errc::not_found:
  case errc::plugin:
  case errc::integrity:
    return failure_kind::permanent;
  // The link, a deadline, a lock, a busy database, a tool that failed
  // mid-transfer: the next attempt may pass.
  default:
    return failure_kind::transient;
  }
}

failure_kind combine(failure_kind a, failure_kind b) {
  return static_cast<int>(a) >= static_cast<int>(b) ? a : b;
}

std::chrono::milliseconds retry_policy::bound(int retry) const {
  auto limit = std::max<std::int64_t>(max_delay.count(), 0);
  std::int64_t value = std::max<std::int64_t>(initial_delay.count(), 0);
  for (int i = 1; i < retry && value < limit; ++i)
    value *= 2;
  return std::chrono::milliseconds{std::min(value, limit)};
}

std::chrono::milliseconds retry_policy::delay(int retry, std::mt19937_64& rng) const {
  std::uniform_int_distribution<std::int64_t> pick{0, bound(retry).count()};
  return std::chrono::milliseconds{pick(rng)};
}

} // namespace satoru
