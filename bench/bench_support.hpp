#pragma once

/// Helpers shared by the C++ benchmarks (satoru_queue_bench,
/// satoru_console_bench): fatal errors, medians, temporary folders, free
/// ports, raw HTTP on loopback and /proc/PID/status. Header-only: each
/// benchmark is one translation unit.

#include <fmt/format.h>

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <netinet/in.h>
#include <spawn.h>
#include <string>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <utility>
#include <vector>

namespace satoru::bench {

/// The program's name for messages ("satoru_queue_bench").
inline std::string program = "satoru_bench";

[[noreturn]] inline void die(const std::string& why) {
  std::cerr << program << ": " << why << "\n";
  std::exit(1);
}

inline double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  auto n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/// The nearest-rank percentile `p` (0 < p <= 100).
inline double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  auto rank =
      static_cast<std::size_t>(p / 100.0 * static_cast<double>(v.size()) + 0.999999);
  return v[std::min(v.size(), std::max<std::size_t>(rank, 1)) - 1];
}

/// Folders to remove when the process ends, also through die() (std::exit
/// skips the destructors of locals).
inline std::vector<std::string>& pending_removals() {
  static std::vector<std::string> paths;
  return paths;
}

inline void remove_pending() {
  if (std::getenv("SATORU_KEEP_TMP")) return;
  std::error_code ec;
  for (const auto& p : pending_removals())
    std::filesystem::remove_all(p, ec);
  pending_removals().clear();
}

/// A private temporary folder, removed at the end of its scope (or at exit;
/// SATORU_KEEP_TMP keeps it).
class temp_dir {
public:
  explicit temp_dir(const std::string& root, const std::string& prefix) {
    std::string templ = root + "/" + prefix + "-XXXXXX";
    std::vector<char> buf(templ.begin(), templ.end());
    buf.push_back('\0');
    if (!::mkdtemp(buf.data()))
      die("mkdtemp failed: " + std::string{std::strerror(errno)});
    path_ = buf.data();
    pending_removals().push_back(path_);
  }
  ~temp_dir() {
    auto& p = pending_removals();
    p.erase(std::remove(p.begin(), p.end(), path_), p.end());
    std::error_code ec;
    if (!std::getenv("SATORU_KEEP_TMP")) std::filesystem::remove_all(path_, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

private:
  std::string path_;
};

inline void write_file(const std::string& path, const std::string& text,
                       mode_t mode = 0600) {
  std::ofstream out{path};
  out << text;
  out.close();
  ::chmod(path.c_str(), mode);
}

inline int free_port() {
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  if (::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
    die("bind for a free port");
  socklen_t len = sizeof a;
  ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(s);
  return ntohs(a.sin_port);
}

/// Sends `request` to 127.0.0.1:port and returns the whole answer (the
/// server closes: HTTP/1.0 or Connection: close); "" when nothing answers.
inline std::string http_exchange(int port, const std::string& request) {
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  timeval tv{10, 0};
  ::setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::send(s, request.data(), request.size(), MSG_NOSIGNAL) < 0) {
    ::close(s);
    return {};
  }
  std::string resp;
  char buf[65536];
  for (;;) {
    auto n = ::recv(s, buf, sizeof buf, 0);
    if (n <= 0) break;
    resp.append(buf, static_cast<std::size_t>(n));
  }
  ::close(s);
  return resp;
}

/// Fields of /proc/PID/status in kB (VmRSS, RssAnon, RssFile, RssShmem,
/// VmHWM, VmSize) and Threads.
inline std::map<std::string, long> proc_status(pid_t pid) {
  std::map<std::string, long> out;
  std::ifstream in{fmt::format("/proc/{}/status", pid)};
  std::string line;
  while (std::getline(in, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    auto key = line.substr(0, colon);
    if (key == "VmRSS" || key == "RssAnon" || key == "RssFile" || key == "RssShmem" ||
        key == "VmHWM" || key == "Threads" || key == "VmSize")
      out[key] = std::strtol(line.c_str() + colon + 1, nullptr, 10);
  }
  return out;
}

/// Starts `satoru --config=CONFIG daemon` with stdin from /dev/null and its
/// output in `log`; returns its pid.
inline pid_t spawn_daemon(const std::string& satoru, const std::string& config,
                          const std::string& log) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  std::string config_flag = "--config=" + config;
  std::vector<char*> argv{const_cast<char*>(satoru.c_str()),
                          const_cast<char*>(config_flag.c_str()),
                          const_cast<char*>("daemon"), nullptr};
  pid_t pid = 0;
  if (int rc = posix_spawn(&pid, satoru.c_str(), &fa, nullptr, argv.data(), environ);
      rc != 0)
    die(fmt::format("cannot start {}: {}", satoru, std::strerror(rc)));
  posix_spawn_file_actions_destroy(&fa);
  return pid;
}

/// Whether the child `pid` has exited (it is reaped then).
inline bool exited(pid_t pid) {
  int status = 0;
  return ::waitpid(pid, &status, WNOHANG) == pid;
}

/// SIGTERM to the child `pid`, SIGKILL after 15 s; reaps it.
inline void stop_daemon(pid_t pid) {
  ::kill(pid, SIGTERM);
  for (int i = 0; i < 300; ++i) {
    if (exited(pid)) return;
    std::this_thread::sleep_for(std::chrono::milliseconds{50});
  }
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
}

/// The rows a benchmark appends for bench/run's summary table (TSV:
/// benchmark, measure, value, unit, target, verdict); no file, no rows.
struct summary_writer {
  std::string bench;
  std::ofstream out;
  summary_writer(std::string name, const std::string& path)
      : bench(std::move(name)) {
    if (!path.empty()) out.open(path, std::ios::app);
  }
  void row(const std::string& measure, const std::string& value, const std::string& unit,
           const std::string& target, const std::string& verdict) {
    if (out.is_open())
      out << bench << "\t" << measure << "\t" << value << "\t" << unit << "\t" << target
          << "\t" << verdict << "\n";
  }
};

} // namespace satoru::bench
