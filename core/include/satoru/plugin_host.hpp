#pragma once

#include "satoru/plugin.hpp"
#include "satoru/progress.hpp"

#include <boost/json/object.hpp>

#include <memory>
#include <optional>
#include <string>

namespace satoru {

/// Where job events go (the job_events table, through whatever owns it).
class event_sink {
public:
  virtual ~event_sink() = default;
  virtual void emit(const std::string& level, const std::string& step,
                    const std::string& target, const std::string& message,
                    const boost::json::object& data) = 0;
  /// A running step of `target` moved (often: every second or faster).
  virtual void progress(const std::string& /*target*/, const satoru::progress& /*now*/) {}
  /// The step ended where `last` stands (its last values): its progress is
  /// no longer current.
  virtual void progress_ended(const std::string& /*target*/,
                              const satoru::progress& /*last*/) {}
};

/// Feeds a child's progress meter (spec.progress_output) to an event sink
/// for one target: each move while it runs, then, when the feed goes away,
/// the step's end with its last values. Lives until the child has ended.
class progress_feed {
public:
  progress_feed(event_sink& events, std::string target, process_spec& spec);
  ~progress_feed() { events_.progress_ended(target_, last_); }
  progress_feed(const progress_feed&) = delete;
  progress_feed& operator=(const progress_feed&) = delete;

private:
  event_sink& events_;
  std::string target_;
  progress last_;
};

/// An event sink that drops everything (tools, tests).
class null_event_sink final : public event_sink {
public:
  void emit(const std::string&, const std::string&, const std::string&,
            const std::string&, const boost::json::object&) override {}
};

/// The core's implementation of plugin_services for one target (or for the
/// site-level part of preflight): a lazily connected, pinned SSH session, a
/// process runner bound to the job's cancel token and the target's deadline,
/// and events tagged with the target's hash.
class host_services final : public plugin_services {
public:
  host_services(ssh_endpoint endpoint, event_sink& events, cancel_token cancel,
                satoru::deadline deadline, std::string target_hash = {});
  ~host_services() override;

  /// Uses an already connected session instead of opening one.
  void adopt(ssh_session session);

  expected<remote_shell*> remote() override;
  const ssh_endpoint& endpoint() const override { return endpoint_; }
  expected<process_result> run(process_spec spec) override;
  void event(const std::string& level, const std::string& step,
             const std::string& message, const boost::json::object& data = {}) override;
  const cancel_token& cancel() const override { return cancel_; }
  satoru::deadline target_deadline() const override { return deadline_; }

private:
  class shell;
  ssh_endpoint endpoint_;
  event_sink& events_;
  cancel_token cancel_;
  satoru::deadline deadline_;
  std::string target_hash_;
  std::unique_ptr<shell> shell_;
};

} // namespace satoru
