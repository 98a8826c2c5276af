#pragma once

/// How a `restic check` of a repository ended, kept where the daemon and the
/// operator find it: a sync_state row named check_state_key(which) (last
/// attempt, last pass, status, error) and the check metrics.

#include "satoru/actors/interfaces.hpp"
#include "satoru/actors/runtime.hpp"
#include "satoru/repository_ops.hpp"
#include "satoru/time.hpp"

#include <string>

namespace satoru::actors {

/// The outcome of a check job: a damaged repository does not heal by
/// itself (permanent); a lock or a dead link may pass next time.
inline job_outcome check_outcome(const expected<repository_check>& r, bool cancelled) {
  job_outcome out;
  out.status = cancelled    ? job_status::interrupted
               : r && r->ok ? job_status::success
                            : job_status::failed;
  out.error = !r ? r.err().message : r->error;
  if (out.status == job_status::failed)
    out.failure = r && r->damaged ? failure_kind::permanent : failure_kind::transient;
  return out;
}

/// Records a finished check of `which` ("local" or "offsite") that started at
/// `started`: the metrics at once, the state row after reading the last one
/// (a failure keeps the time of the last pass).
template <class Self>
void record_check(Self* self, const runtime_context& ctx, const store_actor& store,
                  const std::string& which, std::int64_t started,
                  const expected<repository_check>& r) {
  const bool ok = r && r->ok;
  const std::string error = !r ? r.err().message : r->error;
  const auto now = now_ms();
  if (ctx.metrics) ctx.metrics->set_check_result(which, ok, now);
  self->request(store, caf::infinite, sync_state_atom::value, check_state_key(which))
      .then(
          [=](sync_state_row& row) {
            row.repository = check_state_key(which);
            row.last_attempt_at = started;
            row.status = ok ? "success" : "failed";
            row.error = ok ? "" : error;
            if (ok) {
              row.last_success_at = now;
              row.last_success_started_at = started;
            }
            self->send(store, sync_state_atom::value, row);
          },
          [](caf::error&) {});
}

} // namespace satoru::actors
