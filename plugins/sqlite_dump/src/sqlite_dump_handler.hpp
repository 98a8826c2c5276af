#pragma once

#include "satoru/plugin.hpp"

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace satoru::plugins {

/// Where the edge helper is installed unless options.sudo_helper says.
inline constexpr const char* sqlite_default_sudo_helper =
    "/usr/local/libexec/satoru-sqlite-copy";

/// Options of a "sqlite_dump" target, after validation.
struct sqlite_options {
  std::string method = "auto";         ///< "auto" | "vacuum" | "backup"
  std::string transfer = "rsync";      ///< "rsync" | "gzip"
  std::string remote_tmp_dir = "/tmp"; ///< where the edge host's private copy is made
  std::chrono::seconds no_progress_timeout{300};
  /// The database is checked and copied as root, by `sudo_helper` under
  /// `sudo -n` (the site's "sudo" reaches every target).
  bool sudo = false;
  std::string sudo_helper = sqlite_default_sudo_helper;
};

/// Parses and checks a sqlite_dump target's options; one message per problem
/// ("key: problem"); unknown keys are problems.
std::vector<std::string> parse_sqlite_options(const boost::json::object& options,
                                              sqlite_options& out);

/// Mode "sqlite_dump": a consistent online copy of a SQLite database made on
/// the edge host (VACUUM INTO, or .backup on sqlite3 older than 3.27), pulled
/// with rsync's delta transfer against the last staged copy (or gzip + SFTP),
/// checked with PRAGMA integrity_check, then renamed over the staged copy.
/// The remote temp folder is removed whatever happens. Stateless.
class sqlite_dump_handler final : public target_handler {
public:
  std::string name() const override { return "sqlite_dump"; }
  std::string version() const override { return "1.0.0"; }
  std::vector<std::string> modes() const override { return {"sqlite_dump"}; }
  std::vector<std::string> local_tools(const std::string& mode) const override;
  std::vector<std::string>
  validate_options(const std::string& mode,
                   const boost::json::object& options) const override;
  std::vector<check_result> preflight(const target_spec& target,
                                      plugin_services& services) override;
  pull_result pull(const target_spec& target, plugin_services& services) override;

private:
  /// What one pull left on the edge host, for the cleanup that always runs.
  struct remote_state {
    bool touched = false; ///< a command that may create a temp folder ran
    std::string temp_dir; ///< the temp folder, once known
    std::string token;    ///< this pull's part of the temp folder's name
  };
  /// The result of a pull whose database is unchanged since the copy made
  /// at `copied_at_ms`.
  pull_result unchanged_result(const target_spec& target, plugin_services& services,
                               std::int64_t copied_at_ms, remote_state& remote);
  pull_result pull_unguarded(const target_spec& target, plugin_services& services,
                             const sqlite_options& options, remote_state& remote);
  void cleanup_remote(const target_spec& target, plugin_services& services,
                      const sqlite_options& options, const remote_state& remote,
                      pull_result& result);
};

} // namespace satoru::plugins
