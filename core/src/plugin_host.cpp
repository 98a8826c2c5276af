#include "satoru/plugin_host.hpp"

#include "satoru/text.hpp"

#include <algorithm>

namespace satoru {

namespace {

/// Clamps a requested timeout to what is left of the deadline.
std::chrono::milliseconds clamp(std::chrono::milliseconds wanted, const deadline& dl) {
  if (dl.infinite()) return wanted;
  auto left = std::max(dl.remaining(), std::chrono::milliseconds{1});
  if (wanted.count() <= 0) return left;
  return std::min(wanted, left);
}

} // namespace

/// remote_shell over one ssh_session, bounded by the target's deadline.
class host_services::shell final : public remote_shell {
public:
  shell(ssh_session session, cancel_token cancel, deadline dl)
      : session_(std::move(session))
      , cancel_(std::move(cancel))
      , deadline_(dl) {}

  expected<exec_result> exec(const std::string& command,
                             std::chrono::milliseconds timeout) override {
    if (deadline_.expired()) return error{errc::timeout, "the target's deadline passed"};
    return session_.exec(command, clamp(timeout, deadline_), cancel_);
  }

  expected<std::uint64_t> get_file(const std::string& remote_path,
                                   const std::string& local_path,
                                   std::chrono::milliseconds timeout) override {
    if (deadline_.expired()) return error{errc::timeout, "the target's deadline passed"};
    return session_.sftp_get(remote_path, local_path, clamp(timeout, deadline_), cancel_);
  }

private:
  ssh_session session_;
  cancel_token cancel_;
  deadline deadline_;
};

progress_feed::progress_feed(event_sink& events, std::string target, process_spec& spec)
    : events_(events)
    , target_(std::move(target)) {
  spec.on_progress = [this](const progress& now) {
    last_ = now;
    events_.progress(target_, now);
  };
}

host_services::host_services(ssh_endpoint endpoint, event_sink& events,
                             cancel_token cancel, satoru::deadline deadline,
                             std::string target_hash)
    : endpoint_(std::move(endpoint))
    , events_(events)
    , cancel_(std::move(cancel))
    , deadline_(deadline)
    , target_hash_(std::move(target_hash)) {}

host_services::~host_services() = default;

void host_services::adopt(ssh_session session) {
  shell_ = std::make_unique<shell>(std::move(session), cancel_, deadline_);
}

expected<remote_shell*> host_services::remote() {
  if (!shell_) {
    if (cancel_.cancelled()) return error{errc::cancelled, "cancelled"};
    auto session = ssh_session::connect(endpoint_, cancel_);
    if (!session) return session.err();
    adopt(std::move(*session));
  }
  return static_cast<remote_shell*>(shell_.get());
}

expected<process_result> host_services::run(process_spec spec) {
  spec.timeout = clamp(spec.timeout, deadline_);
  std::optional<progress_feed> feed;
  if (spec.progress_output != progress_format::none && !spec.on_progress)
    feed.emplace(events_, target_hash_, spec);
  return run_process(spec, cancel_);
}

void host_services::event(const std::string& level, const std::string& step,
                          const std::string& message, const boost::json::object& data) {
  // Plugins quote remote output in their messages; keep its end only.
  events_.emit(level, step, target_hash_, capped_output(message), data);
}

} // namespace satoru
