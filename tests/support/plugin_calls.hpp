#pragma once

// Calling a target handler the way the host does, for plugin tests: one
// preflight or one pull over a fresh host_services, work_dir emptied after.

#include "satoru/plugin.hpp"
#include "satoru/plugin_host.hpp"

#include <string>
#include <vector>

namespace satoru::testing {

/// One preflight of `spec` through `handler`, as the host runs it.
std::vector<check_result> preflight_once(target_handler& handler,
                                         const ssh_endpoint& endpoint, event_sink& events,
                                         const target_spec& spec);

/// One pull of `spec` through `handler`; then work_dir is removed, as the
/// host empties it after every pull.
pull_result pull_once(target_handler& handler, const ssh_endpoint& endpoint,
                      event_sink& events, const target_spec& spec,
                      cancel_token cancel = {}, satoru::deadline deadline = {});

/// The check named `name`, or nullptr.
const check_result* find_check(const std::vector<check_result>& checks,
                               const std::string& name);

} // namespace satoru::testing
