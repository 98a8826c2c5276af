#include "satoru/actors/runtime.hpp"

namespace satoru::actors {

runtime_config::runtime_config() {
  add_message_type<job_type>("job_type");
  add_message_type<job_row>("job_row");
  add_message_type<std::vector<job_row>>("std::vector<job_row>");
  add_message_type<job_outcome>("job_outcome");
  add_message_type<job_event>("job_event");
  add_message_type<job_progress>("job_progress");
  add_message_type<target_result>("target_result");
  add_message_type<preflight_summary>("preflight_summary");
  add_message_type<snapshot_request>("snapshot_request");
  add_message_type<snapshot_outcome>("snapshot_outcome");
  add_message_type<queue_counts>("queue_counts");
  add_message_type<sync_outcome>("sync_outcome");
  add_message_type<sync_state_row>("sync_state_row");
  add_message_type<repository_counts>("repository_counts");
  add_message_type<std::vector<std::int64_t>>("std::vector<int64_t>");
  // Blocking work has its own threads; the scheduler threads only route.
  set("scheduler.max-threads", 2);
  // Work sharing: idle scheduler threads wait on a condition variable.
  // CAF's default work stealing polls with 50 us sleeps after every message,
  // and on a virtual machine each of those sleeps is a costly exit: it was
  // 39% of a fleet's CPU during a rerun (perf: the two workers in
  // clock_nanosleep), for message routing that needs no such latency.
  set("scheduler.policy", caf::atom("sharing"));
  set("logger.verbosity", caf::atom("quiet"));
}

} // namespace satoru::actors
