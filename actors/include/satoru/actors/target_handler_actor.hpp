#pragma once

#include "satoru/actors/interfaces.hpp"
#include "satoru/actors/runtime.hpp"
#include "satoru/actors/task_actor.hpp"
#include "satoru/ssh_control.hpp"

namespace satoru::actors {

/// Pulls one target into its staging folder with the plugin that serves its
/// mode, on its own thread. Never throws; a plugin exception is a failed
/// target. The deadline and token bound the plugin's work. `remote_bytes`:
/// the target's size on the edge host as the preflight measured it (-1:
/// unknown), for the staging headroom check before the pull.
target_result pull_target(const runtime_context& ctx, const site_config& site,
                          const target_config& target, std::int64_t remote_bytes,
                          const store_actor& store, const job_row& job,
                          const cancel_token& cancel, satoru::deadline deadline,
                          std::shared_ptr<ssh_control_master> control = {});

/// Runs the site-level and per-target preflight checks on its own thread.
preflight_summary preflight_site(const runtime_context& ctx, const site_config& site,
                                 const store_actor& store, const job_row& job,
                                 const cancel_token& cancel, satoru::deadline deadline);

} // namespace satoru::actors
