#include "satoru/ssh_control.hpp"

#include "satoru/files.hpp"
#include "satoru/identity.hpp"
#include "satoru/process.hpp"
#include "satoru/rsync.hpp"

#include <fmt/format.h>

#include <cstdlib>
#include <filesystem>
#include <sys/stat.h>

namespace satoru {

namespace fs = std::filesystem;

namespace {

/// sun_path holds 108 bytes with its NUL, and ssh binds the master to
/// "<ControlPath>.<16 random characters>" before renaming it.
constexpr std::size_t max_control_path = 108 - 1 - 17;

/// `ssh -O exit` through a socket: no host is contacted, the name is a
/// placeholder; -F /dev/null keeps ~/.ssh/config out as everywhere else.
process_result ask_master_to_exit(const std::string& socket) {
  process_spec spec;
  spec.argv = {"ssh", "-F", "/dev/null", "-o", "BatchMode=yes"};
  for (auto& word : ssh_control_options(socket, "no"))
    spec.argv.push_back(std::move(word));
  spec.argv.insert(spec.argv.end(), {"-O", "exit", "satoru-control"});
  spec.timeout = std::chrono::seconds(10);
  auto r = run_process(spec);
  if (!r) return process_result{};
  return *r;
}

} // namespace

std::string control_socket_dir(const std::string& database_path) {
  if (const char* runtime = std::getenv("RUNTIME_DIRECTORY");
      runtime && *runtime == '/') {
    std::string first = runtime;
    return first.substr(0, first.find(':'));
  }
  auto parent = fs::path(database_path).parent_path();
  if (parent.empty()) parent = ".";
  return fs::absolute(parent).lexically_normal().string() + "/cm";
}

expected<void> prepare_control_socket_dir(const std::string& dir) {
  if (auto r = make_dirs(dir, 0700); !r) return r;
  if (::chmod(dir.c_str(), 0700) != 0)
    return error{errc::io, fmt::format("cannot make {} private (0700)", dir)};
  return {};
}

std::string control_socket_path(const std::string& dir, const std::string& site_uuid,
                                std::int64_t job_id) {
  auto name = sha256_hex(fmt::format("{}:{}", site_uuid, job_id)).substr(0, 16);
  auto path = dir + "/" + name;
  return path.size() <= max_control_path ? path : std::string{};
}

std::vector<std::string> close_stale_control_masters(const std::string& dir) {
  std::vector<std::string> lines;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    auto socket = entry.path().string();
    auto r = ask_master_to_exit(socket);
    lines.push_back(fmt::format("ssh master {} of an earlier run: {}", socket,
                                r.ok() ? "closed" : "not running, removed"));
    fs::remove(entry.path(), ec);
  }
  return lines;
}

ssh_control_master::ssh_control_master(
    std::string socket_path, std::function<void(const std::string&)> on_fallback)
    : path_(std::move(socket_path))
    , on_fallback_(std::move(on_fallback))
    , failed_(path_.empty()) {}

ssh_control_master::~ssh_control_master() {
  close();
}

std::string ssh_control_master::socket_for(const ssh_endpoint& endpoint) {
  std::lock_guard lock{mutex_};
  if (failed_) return {};
  std::error_code ec;
  // The socket goes when the master does (ControlPersist ran out between
  // two targets): open it again rather than fall back.
  if (opened_ && fs::exists(path_, ec)) return path_;
  if (!open(endpoint)) return {};
  return path_;
}

bool ssh_control_master::open(const ssh_endpoint& endpoint) {
  ssh_endpoint plain = endpoint;
  plain.control.reset();
  process_spec spec;
  spec.argv = ssh_command_args(plain);
  for (auto& word : ssh_control_options(path_, "yes"))
    spec.argv.push_back(std::move(word));
  // -f: back to us once authenticated, with the socket listening.
  spec.argv.insert(spec.argv.end(),
                   {"-o", fmt::format("ControlPersist={}", control_persist_seconds), "-N",
                    "-f", "--", endpoint.host});
  spec.timeout = std::chrono::seconds(std::max(1, endpoint.connect_timeout_seconds) + 10);
  auto r = run_process(spec);
  if (r && r->ok()) {
    opened_ = true;
    return true;
  }
  failed_ = true;
  if (on_fallback_)
    on_fallback_(fmt::format(
        "ssh master connection to {} failed ({}); one connection per transfer instead",
        endpoint.display(), r ? r->describe("ssh") : r.err().message));
  return false;
}

void ssh_control_master::close() {
  std::lock_guard lock{mutex_};
  if (!opened_) return;
  opened_ = false;
  ask_master_to_exit(path_);
  std::error_code ec;
  fs::remove(path_, ec);
}

} // namespace satoru
