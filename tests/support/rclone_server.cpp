#include "rclone_server.hpp"

#include "edge_host.hpp" // free_port, port_accepts, read_file

#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace satoru::testing {
namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

/// rclone needs a moment to start listening; a loaded CI box longer.
constexpr auto rclone_start_timeout = 15s;
/// A free port can be taken by someone else before rclone binds it.
constexpr int rclone_bind_attempts = 5;

/// Non-blocking reap: true once the child has exited.
bool reaped(int pid) {
  int status = 0;
  pid_t r = ::waitpid(pid, &status, WNOHANG);
  return r == pid || (r < 0 && errno == ECHILD);
}

void make_dirs(const std::string& path) {
  std::string part;
  for (std::size_t i = 0; i <= path.size(); ++i) {
    if (i == path.size() || (path[i] == '/' && i > 0)) {
      part = path.substr(0, i);
      ::mkdir(part.c_str(), 0700);
    }
  }
}

} // namespace

rclone_server::~rclone_server() {
  kill();
}

std::string rclone_server::url() const {
  return "rest:http://127.0.0.1:" + std::to_string(port_) + "/";
}

std::string rclone_server::log() const {
  return read_file(log_file_);
}

bool rclone_server::start(const std::string& dir, int port) {
  if (running()) {
    last_error_ = "rclone already running";
    return false;
  }
  dir_ = dir;
  while (dir_.size() > 1 && dir_.back() == '/')
    dir_.pop_back();
  make_dirs(dir_);
  log_file_ = dir_ + ".rclone.log";
  for (int attempt = 0; attempt < (port != 0 ? 1 : rclone_bind_attempts); ++attempt) {
    if (start_once(port != 0 ? port : free_port())) return true;
  }
  return false;
}

bool rclone_server::start_once(int port) {
  if (port <= 0) {
    last_error_ = "no free port";
    return false;
  }
  const std::string addr = "127.0.0.1:" + std::to_string(port);
  std::vector<std::string> args{"rclone", "serve", "restic", "--addr", addr, dir_};
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  int log_fd = ::open(log_file_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  pid_t pid = ::fork();
  if (pid < 0) {
    last_error_ = std::string("fork: ") + std::strerror(errno);
    if (log_fd >= 0) ::close(log_fd);
    if (null_fd >= 0) ::close(null_fd);
    return false;
  }
  if (pid == 0) {
    // Own process group: a terminal's Ctrl-C goes to the test, which then
    // stops the server itself by pid.
    ::setpgid(0, 0);
    if (null_fd >= 0) ::dup2(null_fd, 0);
    if (log_fd >= 0) {
      ::dup2(log_fd, 1);
      ::dup2(log_fd, 2);
    }
    ::execvp("rclone", argv.data());
    ::_exit(127);
  }
  if (log_fd >= 0) ::close(log_fd);
  if (null_fd >= 0) ::close(null_fd);
  pid_ = pid;
  port_ = port;
  const auto until = steady::now() + rclone_start_timeout;
  while (steady::now() < until) {
    if (reaped(pid_)) {
      pid_ = 0;
      last_error_ = "rclone exited at start: " + log();
      return false;
    }
    if (port_accepts(port_)) return true;
    std::this_thread::sleep_for(50ms);
  }
  last_error_ = "rclone did not listen on " + addr + " within 15 s: " + log();
  kill();
  return false;
}

void rclone_server::terminate(int signal, int grace_ms) {
  if (pid_ <= 0) return;
  ::kill(pid_, signal);
  const auto until = steady::now() + std::chrono::milliseconds(grace_ms);
  while (!reaped(pid_)) {
    if (steady::now() >= until) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(20ms);
  }
  pid_ = 0;
}

void rclone_server::stop() {
  terminate(SIGTERM, 5000);
}

void rclone_server::kill() {
  terminate(SIGKILL, 5000);
}

} // namespace satoru::testing
