#include "batched_preflight.hpp"

#include <charconv>
#include <utility>

namespace satoru {

class recording_services::shell final : public remote_shell {
public:
  expected<exec_result> exec(const std::string& command,
                             std::chrono::milliseconds timeout) override {
    commands_.push_back({command, timeout});
    return exec_result{0, {}, {}};
  }
  expected<std::uint64_t> get_file(const std::string&, const std::string&,
                                   std::chrono::milliseconds) override {
    return error{errc::invalid_argument, "no file transfer while recording a preflight"};
  }
  std::vector<recorded_command> commands_;
};

recording_services::recording_services(plugin_services& real)
    : real_(real)
    , shell_(std::make_unique<shell>()) {}
recording_services::~recording_services() = default;

expected<remote_shell*> recording_services::remote() {
  return static_cast<remote_shell*>(shell_.get());
}

const std::vector<recorded_command>& recording_services::commands() const {
  return shell_->commands_;
}

class replaying_services::shell final : public remote_shell {
public:
  shell(plugin_services& real, std::vector<recorded_command> commands,
        std::vector<exec_result> results)
      : real_(real) {
    for (std::size_t i = 0; i < commands.size() && i < results.size(); ++i)
      answers_.emplace_back(std::move(commands[i].command), std::move(results[i]));
  }

  expected<exec_result> exec(const std::string& command,
                             std::chrono::milliseconds timeout) override {
    for (auto it = answers_.begin(); it != answers_.end(); ++it) {
      if (it->first != command) continue;
      exec_result answer = std::move(it->second);
      answers_.erase(it);
      return answer;
    }
    ++unbatched_;
    auto shell = real_.remote();
    if (!shell) return shell.err();
    return (*shell)->exec(command, timeout);
  }
  expected<std::uint64_t> get_file(const std::string& remote_path,
                                   const std::string& local_path,
                                   std::chrono::milliseconds timeout) override {
    auto shell = real_.remote();
    if (!shell) return shell.err();
    return (*shell)->get_file(remote_path, local_path, timeout);
  }

  int unbatched_ = 0;

private:
  plugin_services& real_;
  std::deque<std::pair<std::string, exec_result>> answers_;
};

replaying_services::replaying_services(plugin_services& real,
                                       std::vector<recorded_command> commands,
                                       std::vector<exec_result> results)
    : real_(real)
    , shell_(std::make_unique<shell>(real, std::move(commands), std::move(results))) {}
replaying_services::~replaying_services() = default;

expected<remote_shell*> replaying_services::remote() {
  return static_cast<remote_shell*>(shell_.get());
}

int replaying_services::unbatched() const {
  return shell_->unbatched_;
}

std::string batch_script(const std::vector<recorded_command>& commands) {
  // printf first: a login shell that prints text puts it before the marker.
  std::string s = std::string("printf '") + "satoru-clean\\n" + "'\n";
  if (commands.empty()) return s;
  // The outputs go through files so that stdout and stderr stay apart;
  // $(( )) strips the padding some wc print.
  s += "umask 077\n"
       "t=$(mktemp -d) || exit 97\n"
       "trap 'rm -rf -- \"$t\"' EXIT\n";
  for (std::size_t i = 0; i < commands.size(); ++i) {
    s += "(\n" + commands[i].command + "\n) >\"$t/o\" 2>\"$t/e\" </dev/null\n";
    s += "printf 'satoru-batch " + std::to_string(i) +
         " %s %s %s\\n' $? $(($(wc -c <\"$t/o\"))) $(($(wc -c <\"$t/e\")))\n"
         "cat \"$t/o\" \"$t/e\"\n";
  }
  return s;
}

namespace {

bool read_number(std::string_view& text, long long& n) {
  while (!text.empty() && text.front() == ' ')
    text.remove_prefix(1);
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc{}) return false;
  text.remove_prefix(static_cast<std::size_t>(end - text.data()));
  return true;
}

} // namespace

std::optional<std::vector<exec_result>> parse_batch(std::string_view output,
                                                    std::size_t count) {
  std::vector<exec_result> results;
  for (std::size_t i = 0; i < count; ++i) {
    const std::string header = "satoru-batch " + std::to_string(i) + " ";
    if (output.substr(0, header.size()) != header) return std::nullopt;
    output.remove_prefix(header.size());
    long long status = 0, out_bytes = 0, err_bytes = 0;
    if (!read_number(output, status) || !read_number(output, out_bytes) ||
        !read_number(output, err_bytes) || output.empty() || output.front() != '\n' ||
        out_bytes < 0 || err_bytes < 0)
      return std::nullopt;
    output.remove_prefix(1);
    const auto total = static_cast<std::size_t>(out_bytes + err_bytes);
    if (output.size() < total) return std::nullopt;
    exec_result r;
    r.exit_status = static_cast<int>(status);
    r.out = std::string(output.substr(0, static_cast<std::size_t>(out_bytes)));
    r.err = std::string(output.substr(static_cast<std::size_t>(out_bytes),
                                      static_cast<std::size_t>(err_bytes)));
    output.remove_prefix(total);
    results.push_back(std::move(r));
  }
  return results;
}

} // namespace satoru
