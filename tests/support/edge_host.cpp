#include "edge_host.hpp"

#include <arpa/inet.h>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <netinet/in.h>
#include <pwd.h>
#include <random>
#include <sstream>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace satoru::testing {

namespace fs = std::filesystem;

namespace {

constexpr const char* sshd_path = "/usr/sbin/sshd";
constexpr const char* keygen_path = "/usr/bin/ssh-keygen";
/// How long sshd gets to start accepting, and to exit after SIGTERM.
constexpr auto sshd_start_timeout = std::chrono::seconds(5);
constexpr auto sshd_stop_timeout = std::chrono::seconds(5);
/// A port picked by free_port() can be taken by someone else before sshd binds
/// it (parallel tests); that many fresh ports are tried before giving up.
constexpr int sshd_bind_attempts = 8;

/// Local copy instead of satoru::shell_quote so the fixture does not depend on
/// the code under test being correct.
std::string quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  out += "'";
  return out;
}

/// Creates or replaces a file with mode 0600 (umask-independent).
bool write_private_file(const std::string& path, const std::string& content) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  bool ok = true;
  std::size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ok = false;
      break;
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fchmod(fd, 0600) != 0) ok = false;
  if (::close(fd) != 0) ok = false;
  return ok;
}

/// Undoes what a test runner may have changed in this process (blocked or
/// ignored signals survive exec) so the child reacts to SIGTERM normally.
/// Only async-signal-safe calls: it runs between fork and exec.
void reset_signals_in_child() {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGCHLD, SIGQUIT, SIGUSR1, SIGUSR2})
    sigaction(sig, &dfl, nullptr);
}

/// waitpid() with a deadline. True once the child is gone (reaped here, or
/// already reaped elsewhere, e.g. when SIGCHLD is ignored).
bool wait_for_exit(int pid, std::chrono::milliseconds timeout, int* status = nullptr) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int st = 0;
    pid_t r = ::waitpid(pid, &st, WNOHANG);
    if (r == pid) {
      if (status) *status = st;
      return true;
    }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && errno == ECHILD) return ::kill(pid, 0) != 0 && errno == ESRCH;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

/// Runs argv (no shell) with stdin from /dev/null and stdout+stderr captured.
int run_argv(const std::vector<std::string>& argv, std::string* out) {
  std::vector<char*> args;
  for (const auto& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return -1;
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return -1;
  }
  if (pid == 0) {
    reset_signals_in_child();
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    ::dup2(fds[1], 1);
    ::dup2(fds[1], 2);
    ::execv(args[0], args.data());
    _exit(127);
  }
  ::close(fds[1]);
  std::string text;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fds[0]);
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (out) *out = std::move(text);
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return -1;
}

/// Parent pid of a process from /proc/<pid>/stat, or -1.
int parent_of(int pid) {
  std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  // Format: "pid (comm) state ppid ..."; comm may contain spaces and ')'.
  auto close_paren = stat.rfind(')');
  if (close_paren == std::string::npos) return -1;
  std::istringstream rest(stat.substr(close_paren + 1));
  std::string state;
  int ppid = -1;
  rest >> state >> ppid;
  return ppid;
}

/// All processes descended from root (per-connection sshd processes and the
/// shells they run). sshd's connection children call setsid(), so a process
/// group kill would miss them; the parent links are the reliable way.
std::vector<int> descendants_of(int root) {
  std::vector<std::pair<int, int>> procs; // (pid, ppid)
  if (DIR* d = ::opendir("/proc")) {
    while (dirent* e = ::readdir(d)) {
      char* end = nullptr;
      long pid = std::strtol(e->d_name, &end, 10);
      if (pid <= 0 || *end != '\0') continue;
      procs.emplace_back(static_cast<int>(pid), parent_of(static_cast<int>(pid)));
    }
    ::closedir(d);
  }
  std::vector<int> result{root};
  for (std::size_t i = 0; i < result.size(); ++i)
    for (const auto& [pid, ppid] : procs)
      if (ppid == result[i]) result.push_back(pid);
  result.erase(result.begin());
  return result;
}

} // namespace

// ---------------------------------------------------------------------------

int run_shell(const std::string& command, std::string* out) {
  std::vector<char*> args{const_cast<char*>("/bin/sh"), const_cast<char*>("-c"),
                          const_cast<char*>(command.c_str()), nullptr};
  int fds[2] = {-1, -1};
  if (out && ::pipe2(fds, O_CLOEXEC) != 0) return -1;
  pid_t pid = ::fork();
  if (pid < 0) {
    if (out) {
      ::close(fds[0]);
      ::close(fds[1]);
    }
    return -1;
  }
  if (pid == 0) {
    reset_signals_in_child();
    if (out) ::dup2(fds[1], 1);
    ::execv(args[0], args.data());
    _exit(127);
  }
  std::string text;
  if (out) {
    ::close(fds[1]);
    char buf[4096];
    for (;;) {
      ssize_t n = ::read(fds[0], buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      text.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fds[0]);
  }
  int st = 0;
  pid_t r;
  while ((r = ::waitpid(pid, &st, 0)) < 0 && errno == EINTR) {
  }
  if (out) *out = std::move(text);
  if (r < 0) return -1;
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return -1;
}

namespace {

/// Whether `port` on 127.0.0.1 can be bound right now.
bool bindable(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

} // namespace

int free_port() {
  // Below the kernel's ephemeral range (32768-60999 by default): an outgoing
  // connection never takes such a port, so a server stopped and started
  // again on its port (an edge host's outage, a remote's) finds it free.
  constexpr int first = 20000;
  constexpr int last = 32767;
  std::mt19937 pick{std::random_device{}()};
  std::uniform_int_distribution<int> in_range(first, last);
  for (int attempt = 0; attempt < 100; ++attempt)
    if (int port = in_range(pick); bindable(port)) return port;
  return 0;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// ---------------------------------------------------------------------------

temp_dir::temp_dir(const std::string& prefix) {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl =
      std::string(base && *base ? base : "/tmp") + "/" + prefix + "-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) {
    ADD_FAILURE() << "mkdtemp(" << tmpl << ") failed: " << std::strerror(errno);
    return;
  }
  path_ = buf.data();
  ::chmod(path_.c_str(), 0700);
}

temp_dir::~temp_dir() {
  if (path_.empty()) return;
  if (std::getenv("SATORU_KEEP_TMP")) {
    std::fprintf(stderr, "SATORU_KEEP_TMP: keeping %s\n", path_.c_str());
    return;
  }
  std::error_code ec;
  fs::remove_all(path_, ec);
}

// ---------------------------------------------------------------------------

edge_host::edge_host(std::string dir)
    : edge_host(std::move(dir), options{}) {}

edge_host::edge_host(std::string dir, options opts)
    : dir_(std::move(dir))
    , opts_(std::move(opts)) {
  // Constructors cannot use ASSERT_*; start() is a void member and can.
  start();
}

edge_host::~edge_host() {
  stop();
}

std::string edge_host::user() const {
  if (!opts_.login_user.empty()) return opts_.login_user;
  if (const passwd* pw = ::getpwuid(::geteuid())) return pw->pw_name;
  return "root";
}

std::string edge_host::host() const {
  return opts_.ipv6 ? "::1" : "127.0.0.1";
}

std::string edge_host::identity_file() const {
  return dir_ + "/client_key";
}
std::string edge_host::known_hosts_file() const {
  return dir_ + "/known_hosts";
}
std::string edge_host::host_key_pub() const {
  return dir_ + "/host_key.pub";
}

std::string edge_host::known_hosts_line() const {
  // Only "type base64": the comment ssh-keygen appends is noise in known_hosts.
  std::istringstream pub(read_file(host_key_pub()));
  std::string type, key;
  pub >> type >> key;
  return "[" + host() + "]:" + std::to_string(port_) + " " + type + " " + key;
}

satoru::ssh_endpoint edge_host::endpoint(int connect_timeout_seconds) const {
  satoru::ssh_endpoint ep;
  ep.host = host();
  ep.port = port_;
  ep.user = user();
  ep.identity_file = identity_file();
  ep.known_hosts_file = known_hosts_file();
  ep.connect_timeout_seconds = connect_timeout_seconds;
  return ep;
}

std::string edge_host::home() const {
  if (opts_.login_user.empty()) return dir_ + "/home";
  const passwd* pw = ::getpwnam(opts_.login_user.c_str());
  return pw ? pw->pw_dir : std::string{};
}

std::string edge_host::remote_root() const {
  return dir_ + "/remote";
}

void edge_host::write_file(const std::string& path, const std::string& content) const {
  std::error_code ec;
  fs::path p(path);
  if (p.has_parent_path()) fs::create_directories(p.parent_path(), ec);
  ASSERT_FALSE(ec) << "create_directories(" << p.parent_path() << "): " << ec.message();
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  ASSERT_TRUE(f) << "cannot open " << path;
  f << content;
  f.close();
  ASSERT_TRUE(f) << "cannot write " << path;
}

void edge_host::make_sqlite_db(const std::string& path, const std::string& sql) const {
  std::error_code ec;
  fs::path p(path);
  if (p.has_parent_path()) fs::create_directories(p.parent_path(), ec);
  ASSERT_FALSE(ec) << "create_directories(" << p.parent_path() << "): " << ec.message();
  // The SQL goes through a file rather than a pipe so a large script plus a
  // chatty sqlite3 cannot deadlock on full pipes.
  std::string script = dir_ + "/.make_sqlite_db.sql";
  ASSERT_TRUE(write_private_file(script, sql)) << "cannot write " << script;
  std::string out;
  int rc =
      run_shell("sqlite3 -bail " + quote(path) + " < " + quote(script) + " 2>&1", &out);
  ::unlink(script.c_str());
  ASSERT_EQ(rc, 0) << "sqlite3 " << path << " failed:\n" << out << "\nSQL:\n" << sql;
}

int edge_host::sh(const std::string& command, std::string* out) const {
  return run_shell(command, out);
}

void edge_host::restart() {
  stop();
  start();
}

void edge_host::start() {
  if (pid_ > 0) return;

  std::error_code ec;
  fs::create_directories(dir_, ec);
  ASSERT_FALSE(ec) << "create_directories(" << dir_ << "): " << ec.message();
  // sshd re-execs itself and wants absolute paths in its config.
  dir_ = fs::absolute(dir_).lexically_normal().string();
  while (dir_.size() > 1 && dir_.back() == '/')
    dir_.pop_back();
  ::chmod(dir_.c_str(), 0700);
  fs::create_directories(remote_root(), ec);
  ASSERT_FALSE(ec) << "create_directories(" << remote_root() << "): " << ec.message();
  // Privilege separation directory; sshd refuses to start without it.
  fs::create_directories("/run/sshd", ec);

  // Keys are kept when they already exist so a restarted host (same dir)
  // keeps its identity: a pinned known_hosts line stays valid.
  for (const char* name : {"host_key", "client_key"}) {
    std::string key = dir_ + "/" + name;
    if (fs::exists(key) && fs::exists(key + ".pub")) continue;
    fs::remove(key, ec);
    fs::remove(key + ".pub", ec);
    std::string out;
    int rc = run_argv({keygen_path, "-q", "-t", "ed25519", "-N", "", "-C",
                       std::string("satoru-edge-host-") + name, "-f", key},
                      &out);
    ASSERT_EQ(rc, 0) << "ssh-keygen for " << key << " failed:\n" << out;
    ::chmod(key.c_str(), 0600);
    ::chmod((key + ".pub").c_str(), 0600);
  }

  std::string client_pub = read_file(dir_ + "/client_key.pub");
  while (!client_pub.empty() && (client_pub.back() == '\n' || client_pub.back() == '\r'))
    client_pub.pop_back();
  ASSERT_FALSE(client_pub.empty()) << "empty " << dir_ << "/client_key.pub";
  std::vector<std::string> environment;
  if (!opts_.remote_path.empty()) environment.push_back("PATH=" + opts_.remote_path);
  if (opts_.login_user.empty()) {
    fs::create_directories(home(), ec);
    ASSERT_FALSE(ec) << "create_directories(" << home() << "): " << ec.message();
    environment.push_back("HOME=" + home());
  }
  std::string auth_line;
  for (const auto& var : environment)
    auth_line += "environment=\"" + var + "\",";
  if (!auth_line.empty()) auth_line.back() = ' ';
  auth_line += client_pub;
  std::string authorized_keys = dir_ + "/authorized_keys";
  if (!opts_.login_user.empty()) {
    // sshd reads the file as the user: it lives in the user's home.
    const passwd* pw = ::getpwnam(opts_.login_user.c_str());
    ASSERT_NE(pw, nullptr) << "no user " << opts_.login_user;
    std::string ssh_dir = std::string(pw->pw_dir) + "/.ssh";
    fs::create_directories(ssh_dir, ec);
    authorized_keys = ssh_dir + "/authorized_keys";
    ASSERT_TRUE(write_private_file(authorized_keys, auth_line + "\n"));
    for (const auto& p : {ssh_dir, authorized_keys})
      ASSERT_EQ(::chown(p.c_str(), pw->pw_uid, pw->pw_gid), 0) << p;
    ::chmod(ssh_dir.c_str(), 0700);
  } else {
    ASSERT_TRUE(write_private_file(authorized_keys, auth_line + "\n"));
  }

  const std::string config_path = dir_ + "/sshd_config";
  const std::string pid_path = dir_ + "/sshd.pid";
  const std::string log_path = dir_ + "/sshd.log";
  std::string last_log;
  // A restart tries the previous port first so endpoints stay valid.
  int port = port_ > 0 ? port_ : free_port();
  for (int attempt = 0; attempt < sshd_bind_attempts; ++attempt, port = free_port()) {
    ASSERT_GT(port, 0) << "free_port() failed";
    std::ostringstream cfg;
    cfg << "ListenAddress " << host() << "\n"
        << "Port " << port << "\n"
        << "HostKey " << dir_ << "/host_key\n"
        << "PidFile " << pid_path << "\n"
        << "AuthorizedKeysFile " << authorized_keys << "\n"
        << "PermitRootLogin prohibit-password\n"
        << "PasswordAuthentication no\n"
        << "KbdInteractiveAuthentication no\n"
        << "UsePAM no\n"
        << "StrictModes no\n"
        << "Subsystem sftp internal-sftp\n"
        // VERBOSE: one "Starting session:" line per remote command, which
        // commands_started() counts.
        << "LogLevel VERBOSE\n";
    if (!environment.empty()) cfg << "PermitUserEnvironment yes\n";
    ASSERT_TRUE(write_private_file(config_path, cfg.str()))
        << "cannot write " << config_path;
    ::unlink(pid_path.c_str());

    // Everything the child needs is prepared before fork(): between fork and
    // exec only async-signal-safe calls are allowed (other threads may hold
    // the malloc lock).
    int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ASSERT_GE(log_fd, 0) << "cannot open " << log_path << ": " << std::strerror(errno);
    std::vector<char*> args{const_cast<char*>(sshd_path),
                            const_cast<char*>("-D"),
                            const_cast<char*>("-e"),
                            const_cast<char*>("-f"),
                            const_cast<char*>(config_path.c_str()),
                            nullptr};
    const pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0) {
      ::close(log_fd);
      FAIL() << "fork failed: " << std::strerror(errno);
    }
    if (pid == 0) {
      reset_signals_in_child();
      // If the test process dies hard (crash, SIGKILL) sshd goes with it
      // instead of lingering on the port. Fires when the forking *thread*
      // exits; the test thread outlives the fixture, so that is fine.
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (::getppid() != parent) _exit(1); // parent already gone
      int devnull = ::open("/dev/null", O_RDWR);
      if (devnull >= 0) {
        ::dup2(devnull, 0);
        ::dup2(devnull, 1);
      }
      ::dup2(log_fd, 2);
      ::execv(args[0], args.data());
      _exit(127);
    }
    ::close(log_fd);
    pid_ = pid;

    // Ready = sshd wrote its pid file (it does so only after binding) and the
    // port accepts. A successful connect() alone could reach another test's
    // sshd that won the race for this port.
    auto deadline = std::chrono::steady_clock::now() + sshd_start_timeout;
    bool ready = false, exited = false;
    while (std::chrono::steady_clock::now() < deadline) {
      int st = 0;
      if (::waitpid(pid, &st, WNOHANG) == pid) {
        exited = true;
        break;
      }
      std::string pid_text = read_file(pid_path);
      if (!pid_text.empty() && std::atoi(pid_text.c_str()) == pid &&
          port_accepts(port, opts_.ipv6)) {
        ready = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (ready) {
      port_ = port;
      ASSERT_TRUE(write_private_file(known_hosts_file(), known_hosts_line() + "\n"));
      return;
    }
    last_log = read_file(log_path);
    if (!exited) {
      stop(); // hung: give up on this one
      FAIL() << "sshd did not accept on " << host() << " port " << port
             << " within 5 s; sshd.log:\n"
             << last_log;
    }
    pid_ = 0;
    if (last_log.find("Address already in use") == std::string::npos) break;
  }
  FAIL() << "sshd failed to start (dir " << dir_ << "); sshd.log:\n" << last_log;
}

void edge_host::stop() {
  if (pid_ <= 0) return;
  const int pid = pid_;
  pid_ = 0;
  // Snapshot the connection children first: once the listener is gone they
  // are re-parented and can no longer be told apart from other sshds.
  std::vector<int> children = descendants_of(pid);
  ::kill(pid, SIGTERM);
  for (int child : children)
    ::kill(child, SIGTERM);
  if (!wait_for_exit(pid, sshd_stop_timeout)) {
    ::kill(pid, SIGKILL);
    wait_for_exit(pid, sshd_stop_timeout);
  }
  // sshd removes its pid file on SIGTERM but not on SIGKILL.
  ::unlink((dir_ + "/sshd.pid").c_str());
}

bool port_accepts(int port, bool ipv6) {
  int fd = ::socket(ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  bool ok = false;
  if (ipv6) {
    sockaddr_in6 addr{};
    addr.sin6_family = AF_INET6;
    addr.sin6_port = htons(static_cast<std::uint16_t>(port));
    addr.sin6_addr = in6addr_loopback;
    ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  } else {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ::close(fd);
  return ok;
}

// ---------------------------------------------------------------------------

test_user::test_user(const std::string& shell) {
  static std::atomic<int> counter{0};
  name_ = "st" + std::to_string(::getpid()) + "u" + std::to_string(counter++);
  std::string out;
  // useradd fails while another one holds the passwd lock: try again.
  int rc = -1;
  for (int attempt = 0; attempt < 50; ++attempt) {
    rc = run_argv({"/usr/sbin/useradd", "-m", "-s", shell, name_}, &out);
    if (rc != 1 && rc != 10) break; // 1: cannot update, 10: cannot lock
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (rc != 0) {
    ADD_FAILURE() << "useradd " << name_ << " failed (" << rc << "): " << out;
    return;
  }
  for (int attempt = 0; attempt < 50; ++attempt) {
    rc = run_argv({"/usr/sbin/usermod", "-p", "*", name_}, &out);
    if (rc == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  const passwd* pw = ::getpwnam(name_.c_str());
  if (rc != 0 || !pw) {
    ADD_FAILURE() << "usermod -p '*' " << name_ << " failed: " << out;
    return;
  }
  home_ = pw->pw_dir;
  uid_ = static_cast<int>(pw->pw_uid);
  gid_ = static_cast<int>(pw->pw_gid);
}

test_user::~test_user() {
  if (name_.empty() || ::getpwnam(name_.c_str()) == nullptr) return;
  std::string out;
  for (int attempt = 0; attempt < 50; ++attempt) {
    int rc = run_argv({"/usr/sbin/userdel", "-r", "-f", name_}, &out);
    if (rc == 0 || rc == 12 /* home not removed */ || rc == 6 /* no such user */) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ADD_FAILURE() << "userdel " << name_ << " failed: " << out;
}

namespace {

/// The lines of an sshd log that contain `marker`.
std::vector<std::string> log_lines_with(const std::string& log_path, const char* marker) {
  std::vector<std::string> out;
  std::ifstream log(log_path);
  for (std::string line; std::getline(log, line);)
    if (line.find(marker) != std::string::npos) out.push_back(line);
  return out;
}

} // namespace

std::vector<std::string> edge_host::commands_started() const {
  return log_lines_with(dir_ + "/sshd.log", "Starting session:");
}

std::vector<std::string> edge_host::connections_accepted() const {
  return log_lines_with(dir_ + "/sshd.log", "Accepted publickey");
}

std::string documented_sudoers_lines(const std::string& doc, const std::string& user,
                                     const std::string& helper) {
  std::istringstream text(read_file(std::string(SATORU_SOURCE_DIR) + "/" + doc));
  std::string lines;
  for (std::string line; std::getline(text, line);) {
    auto at = line.find("satoru-backup ALL=");
    if (at == std::string::npos || line.find("NOPASSWD:") == std::string::npos) continue;
    line = user + line.substr(at + std::string("satoru-backup").size());
    const std::string documented = "/usr/local/libexec/satoru-sqlite-copy";
    if (auto h = line.find(documented); h != std::string::npos && !helper.empty())
      line.replace(h, documented.size(), helper);
    lines += line + "\n";
  }
  return lines;
}

sudoers_file::sudoers_file(const std::string& lines)
    : path("/etc/sudoers.d/satoru-test-" + std::to_string(::getpid())) {
  {
    std::ofstream out(path, std::ios::trunc);
    out << lines;
  }
  ::chmod(path.c_str(), 0440);
  std::string out;
  EXPECT_EQ(run_shell("visudo -cf " + quote(path) + " 2>&1", &out), 0) << out;
}

sudoers_file::~sudoers_file() {
  ::unlink(path.c_str());
}

} // namespace satoru::testing
