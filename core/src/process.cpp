#include "satoru/process.hpp"

#include "satoru/time.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace satoru {
namespace {

using clock_type = std::chrono::steady_clock;
using std::chrono::milliseconds;

/// How often cancel, deadline and stall are checked while the child runs.
constexpr milliseconds poll_slice{100};
/// After SIGTERM the group gets this long to exit before SIGKILL.
constexpr milliseconds term_grace{3000};
/// After the child exits, how long we keep reading pipes that something it
/// left behind (a background grandchild) still holds open.
constexpr milliseconds exit_drain_grace{1000};
/// A line longer than this without a newline is handed to the callback as is,
/// so a tool that never prints '\n' cannot grow our memory without bound.
constexpr std::size_t max_partial_line = 1 << 20;

class unique_fd {
public:
  unique_fd() = default;
  explicit unique_fd(int fd)
      : fd_(fd) {}
  ~unique_fd() { reset(); }
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;
  unique_fd(unique_fd&& o) noexcept
      : fd_(o.release()) {}
  unique_fd& operator=(unique_fd&& o) noexcept {
    if (this != &o) reset(o.release());
    return *this;
  }
  int get() const { return fd_; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }
  explicit operator bool() const { return fd_ >= 0; }

private:
  int fd_ = -1;
};

/// Moves fd to a number >= 3 so that dup2() onto 0/1/2 in the child can never
/// clobber another pipe end (possible when our own stdio is closed).
int lift_fd(int fd) {
  if (fd < 0 || fd >= 3) return fd;
  int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
  int saved = errno;
  ::close(fd);
  errno = saved;
  return moved;
}

bool make_pipe(unique_fd& read_end, unique_fd& write_end) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return false;
  read_end.reset(lift_fd(p[0]));
  write_end.reset(lift_fd(p[1]));
  return read_end && write_end;
}

void set_nonblocking(int fd) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

bool is_executable_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
         ::access(path.c_str(), X_OK) == 0;
}

/// execvp's search, done in the parent so the child only calls execve (the
/// child of a multi-threaded parent may only use async-signal-safe calls).
std::string search_path(const std::string& program, const char* path_env) {
  if (program.empty()) return {};
  if (program.find('/') != std::string::npos)
    return is_executable_file(program) ? program : std::string{};
  std::string path = path_env ? path_env : "/bin:/usr/bin"; // glibc's default
  std::size_t begin = 0;
  while (begin <= path.size()) {
    std::size_t end = path.find(':', begin);
    if (end == std::string::npos) end = path.size();
    std::string dir = path.substr(begin, end - begin);
    if (dir.empty()) dir = "."; // POSIX: an empty entry means the current folder
    std::string candidate = dir + "/" + program;
    if (is_executable_file(candidate)) return candidate;
    begin = end + 1;
  }
  return {};
}

/// Variables every child gets from ours: where programs are, the language
/// of their messages, and the home folder (ssh and restic look there).
constexpr const char* kept_variables[] = {"PATH", "LANG", "HOME"};

/// The child's environment as "KEY=VALUE" strings: ours (all of it, or only
/// kept_variables) with the spec's variables applied on top.
std::vector<std::string>
child_environment(const std::vector<std::pair<std::string, std::string>>& overrides,
                  bool inherit) {
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string_view entry(*e);
    bool keep = inherit;
    for (const char* name : kept_variables)
      keep =
          keep || (entry.substr(0, std::strlen(name)) == name &&
                   entry.size() > std::strlen(name) && entry[std::strlen(name)] == '=');
    if (keep) env.emplace_back(entry);
  }
  for (const auto& [key, value] : overrides) {
    std::string prefix = key + "=";
    auto it = std::find_if(env.begin(), env.end(), [&](const std::string& entry) {
      return entry.compare(0, prefix.size(), prefix) == 0;
    });
    if (it != env.end())
      *it = prefix + value;
    else
      env.push_back(prefix + value);
  }
  return env;
}

std::vector<char*> c_strings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (auto& s : strings)
    out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

/// What the child reports through the CLOEXEC pipe when it cannot exec.
struct child_failure {
  int stage; ///< 1 = chdir, 2 = exec, 3 = stdio setup, 4 = becoming run_as
  int error;
};

/// The guardian's answer to its parent's death (PR_SET_PDEATHSIG): take the
/// whole process group down, itself included.
void kill_own_group(int) {
  ::kill(0, SIGKILL);
}

/// Runs in the forked child: async-signal-safe calls only, never returns.
///
/// The child is a small guardian, not the program: it leads the process
/// group, forks the program into it and waits. PR_SET_PDEATHSIG reaches only
/// the direct child of the thread that died, so without the guardian a
/// killed daemon would leave rsync's receiver and ssh (grandchildren) writing
/// into staging while the next daemon pulls the same target again. The
/// guardian turns its parent's death into SIGKILL for the whole group, and
/// otherwise passes the program's exit status (or signal) on unchanged.
[[noreturn]] void child_main(pid_t parent, int stdin_fd, int stdout_fd, int stderr_fd,
                             int report_fd, const char* cwd, const char* path,
                             char* const* argv, char* const* sh_argv, char* const* envp,
                             const process_user* user) {
  auto fail = [&report_fd](int stage, int err) {
    child_failure f{stage, err};
    ssize_t ignored = ::write(report_fd, &f, sizeof f);
    (void)ignored;
    ::_exit(127);
  };
  ::setpgid(0, 0);
  // A daemon may block or ignore signals (SIGTERM for a signal thread,
  // SIGPIPE); both survive exec, so undo them or our SIGTERM would be lost.
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    ::sigaction(sig, &dfl, nullptr);
  }
  if (::dup2(stdin_fd, 0) < 0 || ::dup2(stdout_fd, 1) < 0 || ::dup2(stderr_fd, 2) < 0)
    fail(3, errno);
  // Keep the report pipe at 3 (close-on-exec) and close everything else.
  if (report_fd != 3) {
    if (::dup2(report_fd, 3) < 0) fail(3, errno);
    report_fd = 3;
  }
  ::fcntl(3, F_SETFD, FD_CLOEXEC);
  if (::syscall(SYS_close_range, 4U, ~0U, 0U) != 0) {
    struct rlimit lim {};
    long max_fd = 65536;
    if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY)
      max_fd = std::min<long>(static_cast<long>(lim.rlim_cur), 1 << 20);
    for (long fd = 4; fd < max_fd; ++fd)
      ::close(static_cast<int>(fd));
  }

  // The guardian: die with the thread that started us, taking the group along.
  struct sigaction on_orphan {};
  on_orphan.sa_handler = kill_own_group;
  sigemptyset(&on_orphan.sa_mask);
  ::sigaction(SIGHUP, &on_orphan, nullptr);
  ::prctl(PR_SET_PDEATHSIG, SIGHUP);
  if (::getppid() != parent) kill_own_group(0); // it died before prctl

  const pid_t guardian = ::getpid();
  pid_t program = ::fork();
  if (program < 0) fail(3, errno);
  if (program == 0) {
    ::sigaction(SIGHUP, &dfl, nullptr);
    if (user != nullptr)
      if (int err = become_user(*user); err != 0) fail(4, err);
    // After the switch: changing credentials clears the death signal.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL); // the guardian was SIGKILLed: follow it
    if (::getppid() != guardian) ::_exit(127);
    if (cwd && ::chdir(cwd) != 0) fail(1, errno);
    ::execve(path, argv, envp);
    int err = errno;
    if (err == ENOEXEC) {
      // execvp semantics: a file without a #! line is run by the shell.
      ::execve("/bin/sh", sh_argv, envp);
    }
    fail(2, err);
  }

  // Only the program talks to the caller: its EOFs must not wait for us.
  int null_fd = ::open("/dev/null", O_RDWR);
  if (null_fd >= 0) {
    ::dup2(null_fd, 0);
    ::dup2(null_fd, 1);
    ::dup2(null_fd, 2);
    if (null_fd > 2) ::close(null_fd);
  }
  ::close(3);
  // The caller's SIGTERM to the group is for the program; we wait for it
  // (SIGKILL, the escalation, still ends us).
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  ::sigaction(SIGTERM, &ignore, nullptr);
  ::sigaction(SIGINT, &ignore, nullptr);
  int status = 0;
  while (::waitpid(program, &status, 0) < 0) {
    if (errno != EINTR) ::_exit(127);
  }
  if (WIFEXITED(status)) ::_exit(WEXITSTATUS(status));
  int sig = WIFSIGNALED(status) ? WTERMSIG(status) : SIGKILL;
  ::sigaction(sig, &dfl, nullptr);
  ::kill(::getpid(), sig);
  ::_exit(128 + sig);
}

/// write() that cannot kill us with SIGPIPE when the child closed its stdin:
/// SIGPIPE is blocked for this thread only, and a SIGPIPE that our write
/// raised is consumed before unblocking (other threads are unaffected).
ssize_t write_without_sigpipe(int fd, const char* data, std::size_t size) {
  sigset_t pipe_set, old_set, pending;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  sigemptyset(&pending);
  ::sigpending(&pending);
  bool was_pending = sigismember(&pending, SIGPIPE) == 1;
  ::pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
  ssize_t n;
  do {
    n = ::write(fd, data, size);
  } while (n < 0 && errno == EINTR);
  int saved = errno;
  if (n < 0 && saved == EPIPE && !was_pending) {
    struct timespec zero {};
    while (::sigtimedwait(&pipe_set, nullptr, &zero) < 0 && errno == EINTR) {
    }
  }
  ::pthread_sigmask(SIG_SETMASK, &old_set, nullptr);
  errno = saved;
  return n;
}

/// Keeps the last `limit` bytes; trims lazily (at 2x) so a chatty child does
/// not cost a memmove of the whole buffer per read.
void append_tail(std::string& buffer, const char* data, std::size_t size,
                 std::size_t limit) {
  if (limit == 0) return;
  if (size >= limit) {
    buffer.assign(data + size - limit, limit);
    return;
  }
  buffer.append(data, size);
  if (buffer.size() > 2 * limit) buffer.erase(0, buffer.size() - limit);
}

void trim_tail(std::string& buffer, std::size_t limit) {
  if (buffer.size() > limit) buffer.erase(0, buffer.size() - limit);
}

/// One output pipe of the child: capture plus line splitting.
struct output_stream {
  unique_fd fd;
  std::string* capture = nullptr;
  std::size_t capture_limit = 0;
  const std::function<void(std::string_view)>* on_line = nullptr;
  std::string partial;
  bool last_was_cr = false;

  bool open() const { return static_cast<bool>(fd); }

  void emit_lines(const char* data, std::size_t size) {
    if (!on_line || !*on_line) return;
    // '\r' ends a line too (progress meters redraw with it); "\r\n" is one end.
    std::size_t start = 0;
    for (std::size_t i = 0; i < size; ++i) {
      char c = data[i];
      if (c != '\n' && c != '\r') {
        last_was_cr = false;
        continue;
      }
      partial.append(data + start, i - start);
      start = i + 1;
      if (c == '\n' && last_was_cr) {
        last_was_cr = false;
        partial.clear();
        continue;
      }
      last_was_cr = (c == '\r');
      (*on_line)(partial);
      partial.clear();
    }
    partial.append(data + start, size - start);
    if (partial.size() > max_partial_line) {
      (*on_line)(partial);
      partial.clear();
    }
  }

  void finish() {
    if (on_line && *on_line && !partial.empty()) (*on_line)(partial);
    partial.clear();
    fd.reset();
  }

  /// Reads what is available; returns bytes read (0 also at EOF, which closes).
  std::size_t read_available() {
    std::size_t total = 0;
    char buf[65536];
    for (int rounds = 0; rounds < 16 && open(); ++rounds) {
      ssize_t n = ::read(fd.get(), buf, sizeof buf);
      if (n > 0) {
        append_tail(*capture, buf, static_cast<std::size_t>(n), capture_limit);
        total += static_cast<std::size_t>(n);
        emit_lines(buf, static_cast<std::size_t>(n));
        if (static_cast<std::size_t>(n) < sizeof buf) break;
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      finish(); // EOF or a real error: either way nothing more will come
    }
    return total;
  }
};

/// Owns the forked child until it is reaped: if anything (an exception from
/// a line callback) leaves run_process early, the group is killed and reaped
/// so no zombie or orphan outlives the call.
class child_guard {
public:
  explicit child_guard(pid_t pid)
      : pid_(pid) {}
  ~child_guard() {
    if (pid_ <= 0) return;
    ::killpg(pid_, SIGKILL);
    int status;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
  child_guard(const child_guard&) = delete;
  child_guard& operator=(const child_guard&) = delete;
  pid_t pid() const { return pid_; }
  /// Reaps the child (blocking) and returns its wait status, or -1.
  int reap() {
    int status = 0;
    pid_t r;
    do {
      r = ::waitpid(pid_, &status, 0);
    } while (r < 0 && errno == EINTR);
    pid_ = 0;
    return r < 0 ? -1 : status;
  }
  void forget() { pid_ = 0; }

private:
  pid_t pid_;
};

std::string format_seconds(milliseconds ms) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%g s", static_cast<double>(ms.count()) / 1000.0);
  return buf;
}

std::string last_nonempty_line(const std::string& text) {
  std::size_t end = text.size();
  while (end > 0) {
    std::size_t start = text.find_last_of("\r\n", end - 1);
    std::size_t begin = start == std::string::npos ? 0 : start + 1;
    std::string line = text.substr(begin, end - begin);
    auto first = line.find_first_not_of(" \t");
    if (first != std::string::npos) {
      auto last = line.find_last_not_of(" \t");
      return line.substr(first, last - first + 1);
    }
    if (start == std::string::npos) break;
    end = start;
  }
  return {};
}

/// How often the bytes a writer wrote are sampled (progress_format::written_bytes).
constexpr milliseconds write_sample_interval{1000};

/// The bytes a child program has written so far, from /proc/PID/io
/// ("wchar": every byte it handed to write(2) and its kin, whatever the
/// file). The program is the only child of its guardian, found in the
/// guardian's /proc/PID/task/PID/children.
class write_sampler {
public:
  write_sampler(pid_t guardian, std::uint64_t total)
      : guardian_(guardian)
      , total_(total) {}

  std::optional<progress_sample> sample() {
    if (program_ <= 0) program_ = first_child();
    if (program_ <= 0) return std::nullopt;
    auto written = wchar();
    if (!written) return std::nullopt;
    progress_sample s;
    s.bytes_done = *written;
    if (total_ > 0) s.bytes_total = total_;
    return s;
  }

private:
  pid_t first_child() const {
    const std::string path = "/proc/" + std::to_string(guardian_) + "/task/" +
                             std::to_string(guardian_) + "/children";
    std::FILE* f = std::fopen(path.c_str(), "r");
    if (!f) return 0;
    long pid = 0;
    if (std::fscanf(f, "%ld", &pid) != 1) pid = 0;
    std::fclose(f);
    return static_cast<pid_t>(pid);
  }

  std::optional<std::uint64_t> wchar() const {
    const std::string path = "/proc/" + std::to_string(program_) + "/io";
    std::FILE* f = std::fopen(path.c_str(), "r");
    if (!f) return std::nullopt;
    char key[32];
    unsigned long long value = 0;
    std::optional<std::uint64_t> out;
    while (std::fscanf(f, "%31s %llu", key, &value) == 2)
      if (std::string_view{key} == "wchar:") {
        out = value;
        break;
      }
    std::fclose(f);
    return out;
  }

  pid_t guardian_;
  std::uint64_t total_;
  pid_t program_ = 0;
};

/// Why the child could not exec, from the report pipe (EOF = exec
/// succeeded: the pipe was close-on-exec); nullopt when it did.
std::optional<error> exec_failure(unique_fd& report_read, const process_spec& spec,
                                  const std::string& program) {
  const std::string& name = spec.argv[0];
  child_failure failure{};
  std::size_t got = 0;
  while (got < sizeof failure) {
    ssize_t n = ::read(report_read.get(), reinterpret_cast<char*>(&failure) + got,
                       sizeof failure - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  report_read.reset();
  if (got != sizeof failure) return std::nullopt;
  std::string why = std::strerror(failure.error);
  switch (failure.stage) {
  case 1:
    return error{errc::io, name + ": cannot change to folder " + spec.cwd + ": " + why};
  case 2:
    return error{errc::tool, name + ": cannot execute " + program + ": " + why};
  case 4:
    return error{errc::io, name + ": cannot run as uid " +
                               std::to_string(spec.run_as ? spec.run_as->uid : 0) + ": " +
                               why};
  default:
    return error{errc::io, "cannot start " + name + ": " + why};
  }
}

/// How a reaped child ended (waitpid's status; negative: unknown), into
/// `result`: its exit code, or the signal that killed it.
void record_wait_status(process_result& result, int status) {
  if (status >= 0 && WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  } else if (status >= 0 && WIFSIGNALED(status)) {
    result.exit_code = -1;
    result.term_signal = WTERMSIG(status);
  }
}

/// A started child: its guardian's pid (the process group's leader) and our
/// ends of its pipes (in_write only when the spec feeds stdin).
struct spawned_child {
  pid_t pid = 0;
  unique_fd in_write, out_read, err_read;
};

/// Starts the spec's program under child_main's guardian, stdout and stderr
/// on pipes; an error when it could not be started at all (then no child
/// is left behind).
expected<spawned_child> spawn_child(const process_spec& spec) {
  if (spec.argv.empty() || spec.argv[0].empty())
    return error{errc::invalid_argument, "run_process: empty argv"};
  const std::string& name = spec.argv[0];

  // PATH lookup uses the child's PATH when the spec overrides it, like execvp
  // in the child would.
  const char* path_env = std::getenv("PATH");
  for (const auto& [key, value] : spec.env)
    if (key == "PATH") path_env = value.c_str();
  std::string program = search_path(name, path_env);
  if (program.empty()) {
    if (name.find('/') != std::string::npos)
      return error{errc::tool, name + ": not installed (no such executable file)"};
    return error{errc::tool, name + ": not installed (not found in PATH)"};
  }

  // Everything the child needs is built before fork (no allocation after).
  std::vector<std::string> argv_strings = spec.argv;
  std::vector<char*> argv = c_strings(argv_strings);
  std::vector<std::string> sh_strings{"/bin/sh", program};
  sh_strings.insert(sh_strings.end(), spec.argv.begin() + 1, spec.argv.end());
  std::vector<char*> sh_argv = c_strings(sh_strings);
  std::vector<std::string> env_strings =
      child_environment(spec.env, spec.inherit_environment);
  std::vector<char*> envp = c_strings(env_strings);

  unique_fd in_read, in_write, out_read, out_write, err_read, err_write, report_read,
      report_write;
  bool feed_stdin = !spec.stdin_data.empty();
  if (feed_stdin) {
    if (!make_pipe(in_read, in_write))
      return error{errc::io, "cannot start " + name + ": pipe: " + std::strerror(errno)};
  } else {
    in_read.reset(lift_fd(::open("/dev/null", O_RDONLY | O_CLOEXEC)));
    if (!in_read)
      return error{errc::io,
                   "cannot start " + name + ": /dev/null: " + std::strerror(errno)};
  }
  if (!make_pipe(out_read, out_write) || !make_pipe(err_read, err_write) ||
      !make_pipe(report_read, report_write))
    return error{errc::io, "cannot start " + name + ": pipe: " + std::strerror(errno)};

  const char* cwd = spec.cwd.empty() ? nullptr : spec.cwd.c_str();
  pid_t self_pid = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0)
    return error{errc::io, "cannot start " + name + ": fork: " + std::strerror(errno)};
  if (pid == 0)
    child_main(self_pid, in_read.get(), out_write.get(), err_write.get(),
               report_write.get(), cwd, program.c_str(), argv.data(), sh_argv.data(),
               envp.data(), spec.run_as ? &*spec.run_as : nullptr);

  child_guard child(pid);
  // Also from the parent: killpg must work even if we get there before the
  // child ran its own setpgid (EACCES after exec is harmless).
  ::setpgid(pid, pid);
  in_read.reset();
  out_write.reset();
  err_write.reset();
  report_write.reset();

  if (auto failed = exec_failure(report_read, spec, program)) {
    child.reap();
    return *failed;
  }
  child.forget();
  return spawned_child{pid, std::move(in_write), std::move(out_read),
                       std::move(err_read)};
}

} // namespace

int become_user(const process_user& user) {
  static_assert(sizeof(gid_t) == sizeof(unsigned), "gid_t is an unsigned int");
  // Raw system calls: glibc's wrappers broadcast to threads a forked child
  // does not have, taking locks another thread may have held at fork.
  if (user.keep_capabilities && ::prctl(PR_SET_KEEPCAPS, 1L, 0L, 0L, 0L) != 0)
    return errno;
  if (::syscall(SYS_setgroups, user.groups.size(), user.groups.data()) != 0) return errno;
  if (::syscall(SYS_setresgid, user.gid, user.gid, user.gid) != 0) return errno;
  if (::syscall(SYS_setresuid, user.uid, user.uid, user.uid) != 0) return errno;
  if (!user.keep_capabilities) return 0;
  // setresuid() emptied the effective set; the permitted one was kept. Raise
  // it as effective, inheritable and ambient: ambient capabilities are the
  // ones a program that is not root keeps across execve.
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (::syscall(SYS_capget, &header, data) != 0) return errno;
  for (auto& d : data) {
    d.effective = d.permitted;
    d.inheritable = d.permitted;
  }
  if (::syscall(SYS_capset, &header, data) != 0) return errno;
  for (unsigned long cap = 0; cap < 64; ++cap)
    if ((data[cap / 32].permitted & (1U << (cap % 32))) != 0 &&
        ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0L, 0L) != 0)
      return errno;
  return 0;
}

std::optional<process_user> owner_to_run_as(const std::string& path) {
  if (::geteuid() != 0 || path.empty()) return std::nullopt;
  std::string at = path;
  struct stat st {};
  while (::stat(at.c_str(), &st) != 0) {
    auto slash = at.find_last_of('/');
    if (slash == std::string::npos)
      at = ".";
    else if (slash == 0 && at.size() > 1)
      at = "/";
    else if (slash == 0)
      return std::nullopt;
    else
      at.resize(slash);
  }
  if (st.st_uid == 0) return std::nullopt;
  process_user user;
  user.uid = st.st_uid;
  user.gid = st.st_gid;
  std::vector<char> buf(16384);
  struct passwd pw {};
  struct passwd* found = nullptr;
  if (::getpwuid_r(st.st_uid, &pw, buf.data(), buf.size(), &found) == 0 && found) {
    user.gid = found->pw_gid;
    int count = 32;
    std::vector<gid_t> groups(static_cast<std::size_t>(count));
    if (::getgrouplist(found->pw_name, found->pw_gid, groups.data(), &count) < 0) {
      groups.resize(static_cast<std::size_t>(count));
      ::getgrouplist(found->pw_name, found->pw_gid, groups.data(), &count);
    }
    groups.resize(static_cast<std::size_t>(std::max(count, 0)));
    user.groups.assign(groups.begin(), groups.end());
  }
  if (user.groups.empty()) user.groups.push_back(user.gid);
  return user;
}

std::string process_result::describe(const std::string& name) const {
  if (cancelled) return name + " was cancelled";
  if (timed_out)
    return name + " timed out after " +
           format_seconds(timeout.count() > 0 ? timeout : duration);
  if (stalled)
    return name + (progress_step.empty() ? "" : " (" + progress_step + ")") +
           " made no progress for " +
           format_seconds(no_progress_timeout.count() > 0 ? no_progress_timeout
                                                          : duration) +
           " and was stopped";
  if (term_signal != 0)
    return name + " was killed by signal " + std::to_string(term_signal);
  std::string text = name + " exited with " + std::to_string(exit_code);
  if (exit_code != 0) {
    std::string line = last_nonempty_line(err);
    constexpr std::size_t max_line = 400; // one readable line, not a dump
    if (line.size() > max_line) line = line.substr(0, max_line) + "...";
    if (!line.empty()) text += ": " + line;
  }
  return text;
}

std::string find_in_path(const std::string& program) {
  return search_path(program, std::getenv("PATH"));
}

expected<process_result> run_process(const process_spec& spec,
                                     const cancel_token& cancel) {
  auto started = clock_type::now();
  auto spawned = spawn_child(spec);
  if (!spawned) return spawned.err();
  const pid_t pid = spawned->pid;
  child_guard child(pid);
  unique_fd in_write = std::move(spawned->in_write);
  unique_fd out_read = std::move(spawned->out_read);
  unique_fd err_read = std::move(spawned->err_read);

  process_result result;
  result.timeout = spec.timeout;
  result.no_progress_timeout = spec.no_progress_timeout;

  result.progress_step = spec.progress_step;

  // With a progress meter on stdout, only a line that moves it (or any other
  // line) counts as progress for the watchdog.
  std::optional<progress_meter> meter;
  auto feed_meter = [&](const progress_sample& sample) {
    if (!meter->update(sample, now_ms())) return false;
    if (spec.on_progress) spec.on_progress(meter->current());
    return true;
  };
  bool stdout_progressed = false;
  std::function<void(std::string_view)> stdout_line = spec.on_stdout_line;
  if (spec.progress_output != progress_format::none)
    meter.emplace(spec.progress_step, now_ms());
  std::optional<write_sampler> writes;
  if (spec.progress_output == progress_format::written_bytes)
    writes.emplace(pid, spec.progress_bytes_total);
  const bool meter_on_stdout = meter && !writes;
  if (meter_on_stdout) {
    stdout_line = [&](std::string_view line) {
      auto sample = spec.progress_parser ? spec.progress_parser(line)
                                         : parse_progress(spec.progress_output, line);
      if (sample) {
        if (feed_meter(*sample)) stdout_progressed = true;
      } else {
        stdout_progressed = true;
      }
      if (spec.on_stdout_line) spec.on_stdout_line(line);
    };
  }

  output_stream streams[2];
  streams[0].fd = std::move(out_read);
  streams[0].capture = &result.out;
  streams[0].capture_limit = spec.capture_limit;
  streams[0].on_line = &stdout_line;
  streams[1].fd = std::move(err_read);
  streams[1].capture = &result.err;
  streams[1].capture_limit = spec.capture_limit;
  streams[1].on_line = &spec.on_stderr_line;
  for (auto& s : streams)
    set_nonblocking(s.fd.get());
  if (in_write) set_nonblocking(in_write.get());
  std::size_t stdin_offset = 0;

  // A pidfd wakes poll() the moment the child exits (Linux 5.3+); without it
  // we fall back to checking waitid() every slice.
  unique_fd pid_fd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));

  const deadline hard_deadline = deadline::after(spec.timeout);
  auto last_progress = clock_type::now();
  auto last_write_sample = last_progress;
  bool exited = false; // the child is a zombie (not reaped: it pins the pgid)
  bool reaped_elsewhere = false;
  clock_type::time_point exited_at{};
  bool killing = false;
  bool first_round = true;
  clock_type::time_point term_sent_at{};

  auto start_kill = [&] {
    killing = true;
    term_sent_at = clock_type::now();
    ::killpg(pid, SIGTERM);
  };

  while (true) {
    pollfd fds[4];
    int nfds = 0;
    int stdin_index = -1, stream_index[2] = {-1, -1};
    if (pid_fd && !exited) fds[nfds++] = pollfd{pid_fd.get(), POLLIN, 0};
    if (in_write) {
      stdin_index = nfds;
      fds[nfds++] = pollfd{in_write.get(), POLLOUT, 0};
    }
    for (int i = 0; i < 2; ++i) {
      if (!streams[i].open()) continue;
      stream_index[i] = nfds;
      fds[nfds++] = pollfd{streams[i].fd.get(), POLLIN, 0};
    }

    // The first round does not wait, so a token cancelled beforehand stops
    // the child at once.
    int wait_ms = first_round ? 0 : static_cast<int>(poll_slice.count());
    first_round = false;
    if (!hard_deadline.infinite())
      wait_ms = static_cast<int>(
          std::min<long long>(wait_ms, hard_deadline.remaining().count()));
    if (wait_ms < 0) wait_ms = 0;
    int ready = nfds > 0 ? ::poll(fds, static_cast<nfds_t>(nfds), wait_ms) : 0;
    if (nfds == 0 && !exited && wait_ms > 0) {
      // No pidfd and both pipes closed while the child still runs: look
      // again soon, it is probably exiting.
      struct timespec ts {
        0, 5 * 1000000L
      };
      ::nanosleep(&ts, nullptr);
    }
    if (ready < 0 && errno != EINTR) {
      // Cannot happen with valid fds; never wait blindly for a child we
      // cannot watch: kill it and reap.
      killing = true;
      break;
    }

    if (ready > 0) {
      if (stdin_index >= 0 && fds[stdin_index].revents != 0) {
        if (fds[stdin_index].revents & POLLOUT) {
          std::size_t left = spec.stdin_data.size() - stdin_offset;
          ssize_t n =
              write_without_sigpipe(in_write.get(), spec.stdin_data.data() + stdin_offset,
                                    std::min<std::size_t>(left, 65536));
          if (n > 0)
            stdin_offset += static_cast<std::size_t>(n);
          else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            in_write.reset(); // EPIPE: the child does not want more input
          if (stdin_offset >= spec.stdin_data.size()) in_write.reset();
        } else {
          in_write.reset(); // POLLERR/POLLHUP: reader gone
        }
      }
      for (int i = 0; i < 2; ++i) {
        if (stream_index[i] < 0 || fds[stream_index[i]].revents == 0) continue;
        if (streams[i].read_available() > 0 &&
            (i == 1 || !meter_on_stdout || stdout_progressed))
          last_progress = clock_type::now();
        if (i == 0) stdout_progressed = false;
      }
    }

    if (!exited) {
      siginfo_t info{};
      int r = ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT);
      if (r == 0 && info.si_pid == pid) {
        exited = true;
        exited_at = clock_type::now();
      } else if (r < 0 && errno == ECHILD) {
        // Someone else reaped it (SIGCHLD ignored process-wide); the status is lost.
        exited = reaped_elsewhere = true;
        exited_at = clock_type::now();
      }
    }

    auto now = clock_type::now();
    if (writes && !exited && now - last_write_sample >= write_sample_interval) {
      last_write_sample = now;
      if (auto sample = writes->sample(); sample && feed_meter(*sample))
        last_progress = now;
    }
    bool pipes_open = streams[0].open() || streams[1].open();
    if (!killing && !exited) {
      if (cancel.cancelled()) {
        result.cancelled = true;
        start_kill();
      } else if (hard_deadline.expired()) {
        result.timed_out = true;
        start_kill();
      } else if (spec.no_progress_timeout.count() > 0 &&
                 now - last_progress >= spec.no_progress_timeout) {
        result.stalled = true;
        start_kill();
      }
    }
    if (killing) {
      if ((exited && !pipes_open) || now - term_sent_at >= term_grace) break;
    } else if (exited) {
      if (!pipes_open || now - exited_at >= exit_drain_grace) break;
    }
  }

  if (killing && !reaped_elsewhere) {
    // The leader is alive or a zombie, so the pgid cannot have been reused:
    // finish whatever ignored SIGTERM, including grandchildren.
    ::killpg(pid, SIGKILL);
  }
  // Take what is still buffered in the pipes, then stop listening.
  for (auto& s : streams) {
    if (s.open()) s.read_available();
    s.finish();
  }
  in_write.reset();

  if (reaped_elsewhere) {
    child.forget();
  } else {
    record_wait_status(result, child.reap());
  }
  result.duration = std::chrono::duration_cast<milliseconds>(clock_type::now() - started);
  trim_tail(result.out, spec.capture_limit);
  trim_tail(result.err, spec.capture_limit);
  // The program is gone (its /proc entry with it): one that succeeded wrote
  // everything it had to.
  if (writes && result.exit_code == 0 && spec.progress_bytes_total > 0) {
    progress_sample all;
    all.bytes_done = all.bytes_total = spec.progress_bytes_total;
    all.fraction = 1.0;
    feed_meter(all);
  }
  if (meter) result.last_progress = meter->current();
  return result;
}

process_reader::process_reader(int pid, int out_fd, int err_fd)
    : pid_(pid)
    , out_fd_(out_fd)
    , err_fd_(err_fd) {}

process_reader::~process_reader() {
  if (pid_ > 0) finish(true);
}

process_result process_reader::finish(bool stop) {
  process_result result;
  if (pid_ <= 0) return result;
  // A reader is only ever a read (restic dump --no-lock): killing it leaves
  // nothing half-done.
  if (stop) ::killpg(pid_, SIGKILL);
  if (out_fd_ >= 0) ::close(out_fd_);
  out_fd_ = -1;
  // stderr is read before the wait too, so a chatty child is not left
  // blocked on a full pipe; after it, what is left (non-blocking: a
  // grandchild may still hold the pipe).
  set_nonblocking(err_fd_);
  auto drain = [this] {
    char buffer[4096];
    ssize_t n;
    while (
        err_.size() < (64u << 10) &&
        ((n = ::read(err_fd_, buffer, sizeof buffer)) > 0 || (n < 0 && errno == EINTR)))
      if (n > 0) err_.append(buffer, static_cast<std::size_t>(n));
  };
  drain();
  child_guard child(pid_);
  pid_ = 0;
  int status = child.reap();
  drain();
  ::close(err_fd_);
  err_fd_ = -1;
  record_wait_status(result, status);
  result.cancelled = stop;
  result.err = std::move(err_);
  result.duration =
      std::chrono::duration_cast<milliseconds>(clock_type::now() - started_);
  return result;
}

expected<std::unique_ptr<process_reader>> start_process(const process_spec& spec) {
  process_spec plain = spec;
  plain.stdin_data.clear();
  auto spawned = spawn_child(plain);
  if (!spawned) return spawned.err();
  return std::unique_ptr<process_reader>(new process_reader(
      spawned->pid, spawned->out_read.release(), spawned->err_read.release()));
}

} // namespace satoru
