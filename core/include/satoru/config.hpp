#pragma once

#include "satoru/error.hpp"
#include "satoru/secret.hpp"

#include <boost/json/object.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace satoru {

/// SSH settings; a site's own `ssh` object overrides the top-level one key by key.
struct ssh_config {
  std::string identity_file;
  std::string known_hosts_file;
  int connect_timeout_seconds = 10;
};

struct target_config {
  std::string mode;
  std::string path;            ///< absolute path on the edge host, lexically normal
  boost::json::object options; ///< mode specific, validated by its plugin
  std::string hash;            ///< target_hash(mode, path)
};

struct site_config {
  std::string name;
  std::string uuid; ///< configured or derived (UUIDv5 of the name)
  std::string host;
  int port = 22;
  std::string user;
  ssh_config ssh; ///< effective settings after merging
  std::vector<target_config> targets;
};

struct retention_policy {
  std::optional<int> keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly,
      keep_yearly;
  std::optional<std::string> keep_within; ///< restic duration, e.g. "30d"
  /// The restic `forget` flags for this policy, e.g. {"--keep-daily", "7"}.
  std::vector<std::string> restic_flags() const;
};

struct config {
  std::string file; ///< the config file as given
  std::string staging_root;
  std::string restic_repo_path;
  secret_source restic_password;
  retention_policy retention;
  int restic_retention_interval_hours = 24;
  int restic_sync_interval_hours = 24;
  /// Retention of the off-site repository (restic_b2_retention_policy, else
  /// the local policy) and how often it runs (0 = never).
  retention_policy b2_retention;
  int restic_b2_retention_interval_hours = 168;
  /// `restic check` of the local repository (0 = never), reading this much
  /// of the data ("2%", "1/7"; "0%" = structure only), and of the off-site one.
  int check_interval_hours = 24;
  std::string check_read_data_subset = "2%";
  int restic_b2_check_interval_hours = 168;
  /// Restore drills: one target every interval (0 = never), round-robin; a
  /// target not verified for max_age days raises an alert.
  int restore_drill_interval_hours = 24;
  int restore_drill_max_age_days = 7;
  /// Free space every pull, snapshot and restore must leave on its
  /// filesystem (disk_min_free): both bounds apply; 0 = no bound.
  double disk_min_free_percent = 10;
  std::int64_t disk_min_free_bytes = 0;
  std::optional<std::string> restic_b2_repository;
  secret_source restic_b2_account_id;
  secret_source restic_b2_account_key;
  int job_worker_concurrency = 4;
  int target_concurrency = 2; ///< targets of one site pulled at once
  int site_scan_interval_hours = 24;
  std::string database_path;
  std::string metrics_listen = "127.0.0.1:9464";
  /// The web console (docs/console.md): served only when web_listen is set.
  std::string web_listen;
  std::string web_users_file;       ///< 0600 file written by `satoru web-user add`
  std::string web_tokens_file;      ///< 0600 file written by `satoru web-token add`
  bool web_allow_plaintext = false; ///< plain HTTP beyond loopback (behind a TLS proxy)
  std::string web_tls_certificate, web_tls_key; ///< both set = HTTPS (key 0600)
  /// Host names (lower case, no port) the console answers to beside its
  /// listen address, localhost and IP literals: anything else is DNS
  /// rebinding or a misdirected request (421).
  std::vector<std::string> web_allowed_hosts;
  std::string plugin_dir;
  ssh_config ssh;
  /// Deadlines (seconds) for the steps of a job.
  int preflight_timeout_seconds = 60;
  int target_timeout_seconds = 6 * 3600;
  int restic_timeout_seconds = 6 * 3600;
  int sync_timeout_seconds = 12 * 3600;
  /// Transient failures are retried with exponential backoff and full jitter.
  int retry_max_attempts = 4; ///< attempts in all, the first included
  int retry_initial_delay_seconds = 60;
  int retry_max_delay_seconds = 3600;
  /// Finished jobs and their events older than this are deleted (0 = never).
  int job_history_days = 90;
  std::vector<site_config> sites;

  const site_config* find_site(const std::string& name) const;
};

/// One problem found in a config file, located by JSON pointer.
struct config_diagnostic {
  std::string file;
  std::string pointer; ///< e.g. "/sites/2/targets/0/path"; empty for file-level errors
  std::string message;
  /// "satoru.json: /sites/2/targets/0/path: must be an absolute path"
  std::string to_string() const;
};

struct config_result {
  std::optional<config> value; ///< set only when diagnostics is empty
  std::vector<config_diagnostic> diagnostics;
};

struct load_options {
  /// Returns the target modes that are available given the (resolved)
  /// plugin_dir. Empty function = every mode is accepted.
  std::function<std::vector<std::string>(const std::string& plugin_dir)> known_modes;
  /// Checks a target's options with the plugin serving its mode; one
  /// message per problem. Empty function = options are not checked.
  std::function<std::vector<std::string>(const std::string& plugin_dir,
                                         const std::string& mode,
                                         const boost::json::object& options)>
      check_options;
  /// Default plugin_dir when the config does not set one.
  std::string default_plugin_dir;
};

/// Reads, parses and validates a config file; reports every problem, not
/// only the first. Reads nothing but the config file and secret files' modes.
config_result load_config(const std::string& path, const load_options& opts = {});

/// Parses config text (for tests); `path` is used for messages and for
/// resolving relative paths.
config_result parse_config(const std::string& text, const std::string& path,
                           const load_options& opts = {});

/// The config path: --config, else $SATORU_CONFIG, else /etc/satoru/satoru.json.
std::string default_config_path(const std::string& from_flag);

} // namespace satoru
