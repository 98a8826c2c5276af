#include "satoru/preflight.hpp"

#include "batched_preflight.hpp"

#include "satoru/health.hpp"
#include "satoru/identity.hpp"
#include "satoru/text.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <set>

namespace satoru {

namespace {

const char* level_name(check_result::level l) {
  switch (l) {
  case check_result::level::ok:
    return "ok";
  case check_result::level::warn:
    return "warn";
  case check_result::level::fail:
    return "fail";
  }
  return "fail";
}

/// Local programs the site's targets need, plus restic for the snapshots.
std::vector<std::string> local_tools_for(const site_config& site,
                                         const plugin_registry& plugins) {
  std::set<std::string> tools{"restic"};
  for (const auto& t : site.targets)
    if (auto* h = plugins.find(t.mode)) {
      try {
        for (auto& tool : h->local_tools(t.mode))
          tools.insert(tool);
      } catch (...) {
      }
    }
  return {tools.begin(), tools.end()};
}

} // namespace

job_status preflight_report::status() const {
  if (!site_ok) return job_status::failed;
  std::size_t failed = 0;
  for (const auto& t : targets)
    failed += t.ok ? 0 : 1;
  if (!targets.empty() && failed == targets.size()) return job_status::failed;
  if (failed > 0 || warnings > 0) return job_status::warning;
  return job_status::success;
}

std::string preflight_report::reason() const {
  if (!site_ok) return site_error;
  std::vector<std::string> bad;
  for (const auto& t : targets)
    if (!t.ok) bad.push_back(t.path + ": " + t.error);
  if (bad.empty())
    return warnings ? fmt::format("preflight passed with {} warning(s)", warnings)
                    : "preflight passed";
  return capped_output(fmt::format("{} of {} targets failed preflight: {}", bad.size(),
                                   targets.size(), fmt::join(bad, "; ")));
}

ssh_endpoint endpoint_of(const site_config& site) {
  ssh_endpoint e;
  e.host = site.host;
  e.port = site.port;
  e.user = site.user;
  e.identity_file = site.ssh.identity_file;
  e.known_hosts_file = site.ssh.known_hosts_file;
  e.connect_timeout_seconds = site.ssh.connect_timeout_seconds;
  return e;
}

target_spec spec_of(const config& cfg, const site_config& site,
                    const target_config& target) {
  target_spec spec;
  spec.site_name = site.name;
  spec.site_uuid = site.uuid;
  spec.mode = target.mode;
  spec.path = target.path;
  spec.hash = target.hash;
  spec.options = target.options;
  spec.staging_dir = staging_path(cfg.staging_root, site.uuid, target.hash);
  spec.work_dir = staging_path(cfg.staging_root, site.uuid, ".work-" + target.hash);
  return spec;
}

preflight_report run_preflight(const config& cfg, const site_config& site,
                               const plugin_registry& plugins, event_sink& events,
                               const cancel_token& cancel, satoru::deadline deadline) {
  preflight_report report;
  auto emit = [&](const char* level, const std::string& step, const std::string& target,
                  const std::string& message, boost::json::object data = {}) {
    events.emit(level, step, target, capped_output(message), data);
  };

  // 1. Local tools.
  bool local_ok = true;
  for (const auto& tool : local_tools_for(site, plugins)) {
    // Not every tool spells "--version" the same way.
    auto version = tool == "ssh"      ? tool_version("ssh", {"-V"})
                   : tool == "restic" ? tool_version("restic", {"version"})
                                      : tool_version(tool);
    if (version) {
      emit("ok", "preflight.local." + tool, "",
           fmt::format("{} present: {}", tool, *version),
           {{"tool", tool}, {"version", *version}});
    } else {
      local_ok = false;
      report.site_error =
          fmt::format("local {} is missing: {}", tool, version.err().message);
      report.site_code = errc::invalid_argument; // an operator must install it
      emit("fail", "preflight.local." + tool, "", report.site_error);
    }
  }
  if (!local_ok) return report;

  // 2. Connect, host key, authentication.
  auto endpoint = endpoint_of(site);
  auto session = ssh_session::connect(endpoint, cancel);
  if (!session) {
    report.site_error = session.err().message;
    report.site_code = session.err().code;
    boost::json::object data{{"error", to_string(session.err().code)}};
    if (session.err().code == errc::host_key) {
      report.host_key_checked = true;
      // A key is pinned and the connection still failed its check: the host
      // presents another one.
      auto pinned = pinned_host_key(endpoint);
      auto presented = fetch_host_key(endpoint);
      if (pinned && presented &&
          pinned->sha256_fingerprint != presented->sha256_fingerprint) {
        report.host_key_mismatch = true;
        report.pinned_fingerprint = pinned->sha256_fingerprint;
        report.presented_fingerprint = presented->sha256_fingerprint;
        report.site_error = fmt::format(
            "site {}: host key mismatch: {} presents {} {} but {} is pinned; refusing to "
            "connect. If the host was reinstalled, verify the new key on it and run: "
            "satoru trust {} --rotate --fingerprint {}",
            site.name, endpoint.display(), presented->type, presented->sha256_fingerprint,
            pinned->sha256_fingerprint, site.name, presented->sha256_fingerprint);
        data["host_key_mismatch"] = true;
        data["pinned_fingerprint"] = report.pinned_fingerprint;
        data["presented_fingerprint"] = report.presented_fingerprint;
      }
    }
    emit("fail", "preflight.ssh", "", report.site_error, std::move(data));
    return report;
  }
  report.host_key_checked = true;
  emit("ok", "preflight.ssh", "",
       fmt::format("connected to {} as {} with a pinned host key", endpoint.display(),
                   endpoint.user));

  // The remote checks of every target, in one remote command (see
  // batched_preflight.hpp): 1. record what each plugin would run.
  host_services services{endpoint, events, cancel, deadline};
  std::vector<std::vector<recorded_command>> recorded(site.targets.size());
  std::vector<recorded_command> all;
  for (std::size_t i = 0; i < site.targets.size(); ++i) {
    auto* handler = plugins.find(site.targets[i].mode);
    if (!handler) continue;
    recording_services recording(services);
    try {
      handler->preflight(spec_of(cfg, site, site.targets[i]), recording);
    } catch (...) {
      // The replay below reports it.
    }
    recorded[i] = recording.commands();
    all.insert(all.end(), recorded[i].begin(), recorded[i].end());
  }

  // 2. Run them all. rsync talks its protocol over the remote shell's stdout:
  // a startup file that prints anything (a "Welcome" echo in ~/.bashrc)
  // breaks every transfer with a protocol error that names nothing. The
  // batch's first output is a marker, so such text shows before it; catch it
  // here, by name.
  std::chrono::milliseconds batch_timeout{30'000};
  for (const auto& c : all)
    batch_timeout += c.timeout;
  if (!deadline.infinite())
    batch_timeout = std::min(
        batch_timeout, std::max(deadline.remaining(), std::chrono::milliseconds{1}));
  auto batch = session->exec(batch_script(all), batch_timeout, cancel);
  const std::string marker = clean_shell_marker;
  if (!batch || batch->out.compare(0, marker.size(), marker) != 0) {
    report.site_error =
        !batch ? fmt::format("site {}: cannot run a command on {}: {}", site.name,
                             endpoint.display(), batch.err().message)
               : fmt::format("site {}: the login shell of {} on {} prints text; rsync "
                             "needs a clean shell",
                             site.name, endpoint.user, endpoint.host);
    boost::json::object data;
    if (batch)
      data["printed"] = capped_output(batch->out.substr(0, batch->out.find(marker)), 512);
    emit("fail", "preflight.shell", "", report.site_error, std::move(data));
    return report;
  }
  emit("ok", "preflight.shell", "", "the remote shell prints nothing of its own");
  report.site_ok = true;
  auto answers =
      parse_batch(std::string_view(batch->out).substr(marker.size()), all.size());
  services.adopt(std::move(*session));

  // 3. Per-target remote checks by each target's plugin, answered from the
  // batch (or, for what it does not hold, over this session).
  std::size_t offset = 0;
  int unbatched = 0;
  for (std::size_t i = 0; i < site.targets.size(); ++i) {
    const auto& target = site.targets[i];
    preflight_report::target_report tr;
    tr.hash = target.hash;
    tr.path = target.path;
    tr.ok = true;
    auto* handler = plugins.find(target.mode);
    std::vector<exec_result> results;
    if (answers)
      results.assign(answers->begin() + static_cast<std::ptrdiff_t>(offset),
                     answers->begin() +
                         static_cast<std::ptrdiff_t>(offset + recorded[i].size()));
    offset += recorded[i].size();
    replaying_services replaying(services, recorded[i], std::move(results));
    std::vector<check_result> checks;
    if (!handler) {
      checks.push_back({"plugin", check_result::level::fail,
                        fmt::format("no plugin serves mode \"{}\"", target.mode)});
    } else if (cancel.cancelled() || deadline.expired()) {
      checks.push_back({"preflight", check_result::level::fail,
                        cancel.cancelled() ? "cancelled" : "preflight deadline passed"});
    } else {
      try {
        checks = handler->preflight(spec_of(cfg, site, target), replaying);
      } catch (const std::exception& e) {
        checks.push_back(
            {"plugin", check_result::level::fail,
             fmt::format("plugin {} failed: {}", handler->name(), e.what())});
      } catch (...) {
        checks.push_back({"plugin", check_result::level::fail,
                          fmt::format("plugin {} failed", handler->name())});
      }
    }
    unbatched += replaying.unbatched();
    for (const auto& c : checks) {
      emit(level_name(c.status), "preflight." + c.name, target.hash, c.message,
           {{"path", target.path}, {"mode", target.mode}});
      if (c.status == check_result::level::fail && tr.ok) {
        tr.ok = false;
        tr.error = capped_output(c.message); // becomes the site's health reason
      }
      if (c.status == check_result::level::warn) ++report.warnings;
      if (c.remote_bytes >= 0) tr.remote_bytes = c.remote_bytes;
    }
    report.targets.push_back(std::move(tr));
  }
  // How many round trips the checks took: the batch, plus what it did not hold.
  emit("info", "preflight.remote", "",
       fmt::format("{} remote checks in {} remote command{}", all.size(), 1 + unbatched,
                   unbatched == 0 ? "" : "s"),
       {{"checks", static_cast<std::int64_t>(all.size())},
        {"remote_commands", 1 + unbatched},
        {"batched", answers.has_value()}});
  return report;
}

} // namespace satoru
