#pragma once

#include "satoru/error.hpp"

#include <string>

namespace satoru {

/// Where a secret comes from: a file (mode 0600 or stricter) or an environment
/// variable. The value is read only when used and never kept in the config,
/// so that printing or logging a config can never leak it.
class secret_source {
public:
  enum class kind { none, file, env };

  secret_source() = default;
  static secret_source from_file(std::string path);
  static secret_source from_env(std::string variable);

  kind type() const { return kind_; }
  bool empty() const { return kind_ == kind::none; }
  /// The file path or variable name (never the secret itself).
  const std::string& location() const { return location_; }
  /// "file /etc/satoru/restic.pass" or "env RESTIC_PASSWORD"; safe to print.
  std::string describe() const;

  /// Reads the secret (trailing newline removed). Refuses files readable by
  /// group or others and empty values.
  expected<std::string> resolve() const;

  /// Checks that the source is usable without returning the value.
  expected<void> check() const;

  /// What the config loader checks: a file source exists, is a regular file
  /// and is not accessible by group or others. Never opens the file, and
  /// passes for env sources (the variable may be set only when the daemon
  /// starts).
  expected<void> check_permissions() const;

private:
  kind kind_ = kind::none;
  std::string location_;
};

} // namespace satoru
