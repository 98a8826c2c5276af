#pragma once

/// A site's preflight in one remote command, for any plugin and without
/// asking plugins for anything new. Each round trip costs the link's latency
/// plus the edge user's shell start-up (seconds with real startup files), so
/// the remote checks of all targets run together:
///
///  1. record: each plugin's preflight() runs against a shell that only
///     notes the commands it is asked to run (answering "exit 0, no output",
///     which keeps every branch of a check going);
///  2. batch: the noted commands run on the edge in one script, each in its
///     own subshell, with stdout, stderr and exit status kept apart;
///  3. replay: each preflight() runs again against a shell that answers from
///     the batch. A command the batch does not hold (a plugin that took
///     another branch with the real answers) runs for real, so the result is
///     always the one an unbatched preflight would give; only the number of
///     round trips changes.

#include "satoru/plugin.hpp"
#include "satoru/ssh.hpp"

#include <chrono>
#include <deque>
#include <optional>
#include <string>
#include <vector>

namespace satoru {

struct recorded_command {
  std::string command;
  std::chrono::milliseconds timeout{0};
};

/// Plugin services whose shell records instead of running (pass 1). Events
/// are dropped and local processes refused; the rest is the real services'.
class recording_services final : public plugin_services {
public:
  explicit recording_services(plugin_services& real);
  ~recording_services() override;
  expected<remote_shell*> remote() override;
  const ssh_endpoint& endpoint() const override { return real_.endpoint(); }
  /// Local processes do not run while recording (they run in the replay):
  /// a check must not happen twice.
  expected<process_result> run(process_spec) override {
    return error{errc::invalid_argument, "not run while recording a preflight"};
  }
  void event(const std::string&, const std::string&, const std::string&,
             const boost::json::object&) override {}
  const cancel_token& cancel() const override { return real_.cancel(); }
  satoru::deadline target_deadline() const override { return real_.target_deadline(); }

  const std::vector<recorded_command>& commands() const;

private:
  class shell;
  plugin_services& real_;
  std::unique_ptr<shell> shell_;
};

/// Plugin services whose shell answers from the batch (pass 3), and runs
/// for real what the batch does not hold.
class replaying_services final : public plugin_services {
public:
  replaying_services(plugin_services& real, std::vector<recorded_command> commands,
                     std::vector<exec_result> results);
  ~replaying_services() override;
  expected<remote_shell*> remote() override;
  const ssh_endpoint& endpoint() const override { return real_.endpoint(); }
  expected<process_result> run(process_spec spec) override {
    return real_.run(std::move(spec));
  }
  void event(const std::string& level, const std::string& step,
             const std::string& message, const boost::json::object& data) override {
    real_.event(level, step, message, data);
  }
  const cancel_token& cancel() const override { return real_.cancel(); }
  satoru::deadline target_deadline() const override { return real_.target_deadline(); }

  /// Commands that were not in the batch and ran on their own.
  int unbatched() const;

private:
  class shell;
  plugin_services& real_;
  std::unique_ptr<shell> shell_;
};

/// The marker a clean login shell prints first: a startup file that prints
/// text puts its text before it.
inline constexpr const char* clean_shell_marker = "satoru-clean\n";

/// The one remote script: the marker, then every command in its own subshell
/// (stdin from /dev/null), each answered by "satoru-batch <i> <status>
/// <out bytes> <err bytes>" and the two outputs.
std::string batch_script(const std::vector<recorded_command>& commands);

/// The answers of batch_script's output after the marker, one per command,
/// or nothing when the output is not whole.
std::optional<std::vector<exec_result>> parse_batch(std::string_view output,
                                                    std::size_t count);

} // namespace satoru
