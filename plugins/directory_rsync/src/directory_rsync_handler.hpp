#pragma once

#include "satoru/plugin.hpp"

#include <chrono>
#include <string>
#include <vector>

namespace satoru::plugins {

/// Options of a "directory" target, after validation.
struct directory_options {
  bool compress = true;                          ///< rsync -z
  std::chrono::seconds no_progress_timeout{300}; ///< stall limit
  std::vector<std::string> exclude;              ///< rsync --exclude patterns
  int bwlimit_kbps = 0;                          ///< rsync --bwlimit (0 = unlimited)
  bool sudo = false;                             ///< edge rsync under `sudo -n`
};

/// Parses and checks a directory target's options; one message per problem
/// ("key: problem"). Unknown keys are problems: a typo must not silently
/// back up what the operator meant to exclude.
std::vector<std::string> parse_directory_options(const boost::json::object& options,
                                                 directory_options& out);

/// Mode "directory": mirrors a folder of the edge host into the target's
/// staging folder with rsync over ssh (the site's pinned key and known_hosts).
/// Stateless: every call works on its arguments only.
class directory_rsync_handler final : public target_handler {
public:
  std::string name() const override { return "directory_rsync"; }
  std::string version() const override { return "1.0.0"; }
  std::vector<std::string> modes() const override { return {"directory"}; }
  std::vector<std::string> local_tools(const std::string& mode) const override;
  std::vector<std::string>
  validate_options(const std::string& mode,
                   const boost::json::object& options) const override;
  std::vector<check_result> preflight(const target_spec& target,
                                      plugin_services& services) override;
  pull_result pull(const target_spec& target, plugin_services& services) override;

  /// The rsync argv of a pull (exposed for tests and docs).
  static expected<std::vector<std::string>> rsync_argv(const target_spec& target,
                                                       const ssh_endpoint& endpoint,
                                                       const directory_options& options);

private:
  pull_result pull_unguarded(const target_spec& target, plugin_services& services);
};

} // namespace satoru::plugins
