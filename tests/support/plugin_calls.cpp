#include "plugin_calls.hpp"

#include <filesystem>

namespace satoru::testing {

std::vector<check_result> preflight_once(target_handler& handler,
                                         const ssh_endpoint& endpoint, event_sink& events,
                                         const target_spec& spec) {
  host_services services(endpoint, events, cancel_token{}, satoru::deadline{}, spec.hash);
  return handler.preflight(spec, services);
}

pull_result pull_once(target_handler& handler, const ssh_endpoint& endpoint,
                      event_sink& events, const target_spec& spec, cancel_token cancel,
                      satoru::deadline deadline) {
  host_services services(endpoint, events, std::move(cancel), deadline, spec.hash);
  auto r = handler.pull(spec, services);
  std::error_code ec;
  std::filesystem::remove_all(spec.work_dir, ec);
  return r;
}

const check_result* find_check(const std::vector<check_result>& checks,
                               const std::string& name) {
  for (const auto& c : checks)
    if (c.name == name) return &c;
  return nullptr;
}

} // namespace satoru::testing
