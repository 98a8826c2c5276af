#pragma once

#include "satoru/config.hpp"
#include "satoru/job.hpp"
#include "satoru/plugin_host.hpp"
#include "satoru/plugin_loader.hpp"

#include <string>
#include <vector>

namespace satoru {

/// The outcome of the checks that gate every backup.
struct preflight_report {
  /// Site-level checks passed (local tools, connect, host key, auth). When
  /// false nothing of the site can be backed up and the job fails at once.
  bool site_ok = false;
  std::string site_error;
  errc site_code = errc::ok; ///< what kind of error site_error is (for retries)
  /// The host answered with a key other than the pinned one. Permanent: no
  /// retry helps until an operator verifies the new key and pins it with
  /// `satoru trust SITE --rotate --fingerprint <presented_fingerprint>`.
  bool host_key_mismatch = false;
  std::string pinned_fingerprint;    ///< "SHA256:..." from known_hosts_file
  std::string presented_fingerprint; ///< "SHA256:..." the host presents now
  /// The ssh connection got as far as the host key check (so
  /// host_key_mismatch is known, either way).
  bool host_key_checked = false;
  struct target_report {
    std::string hash;
    std::string path;
    bool ok = false;   ///< no check of this target failed
    std::string error; ///< the first failed check's message
    /// What a pull reads from the edge host (the plugin's "remote.size"
    /// check), -1 when unknown: the pull's staging headroom estimate.
    std::int64_t remote_bytes = -1;
  };
  std::vector<target_report> targets;
  int warnings = 0;

  /// success: everything passed; warning: some targets failed or warned;
  /// failed: the site or every target failed.
  job_status status() const;
  /// One line for sites.health_reason.
  std::string reason() const;
};

/// Runs the local and remote preflight checks of a site. Each check becomes
/// one event (level ok / warn / fail). Never throws.
preflight_report run_preflight(const config& cfg, const site_config& site,
                               const plugin_registry& plugins, event_sink& events,
                               const cancel_token& cancel, satoru::deadline deadline);

/// The ssh endpoint of a site.
ssh_endpoint endpoint_of(const site_config& site);

/// The target_spec handed to plugins for a target of a site.
target_spec spec_of(const config& cfg, const site_config& site,
                    const target_config& target);

} // namespace satoru
