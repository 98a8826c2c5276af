#include "satoru/ssh.hpp"

#include "satoru/files.hpp"

#include <libssh/libssh.h>
#include <libssh/sftp.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

// Inside namespace satoru the name ssh_session is our class; libssh's handle
// type is always spelled ::ssh_session below.

namespace satoru {
namespace {

using clock_type = std::chrono::steady_clock;
using std::chrono::milliseconds;

/// How often blocking loops look at their deadline and cancel token.
constexpr int slice_ms = 100;
/// A watchdog that backs up a loop which checks its own deadline fires this
/// much later, so the loop normally wins and the session stays usable.
constexpr milliseconds backstop_grace{3000};
/// exec() is for commands, not bulk data (that is what sftp_get is for).
constexpr std::size_t max_exec_output = 64u << 20;
/// SFTP read size and how many reads are in flight: 32 KiB is the size
/// every server accepts, 16 in flight keep a high-latency link busy.
constexpr std::uint32_t sftp_chunk = 32 * 1024;
constexpr std::size_t sftp_in_flight = 16;

struct channel_deleter {
  void operator()(ssh_channel c) const { ssh_channel_free(c); }
};
struct key_deleter {
  void operator()(ssh_key k) const { ssh_key_free(k); }
};
struct sftp_deleter {
  void operator()(sftp_session s) const { sftp_free(s); }
};
struct sftp_file_deleter {
  void operator()(sftp_file f) const { sftp_close(f); }
};
struct cstring_deleter {
  void operator()(char* s) const { ssh_string_free_char(s); }
};
struct hash_deleter {
  void operator()(unsigned char* h) const { ssh_clean_pubkey_hash(&h); }
};

using channel_ptr = std::unique_ptr<ssh_channel_struct, channel_deleter>;
using key_ptr = std::unique_ptr<ssh_key_struct, key_deleter>;
using sftp_ptr = std::unique_ptr<sftp_session_struct, sftp_deleter>;
using sftp_file_ptr = std::unique_ptr<sftp_file_struct, sftp_file_deleter>;
using cstring_ptr = std::unique_ptr<char, cstring_deleter>;
using hash_ptr = std::unique_ptr<unsigned char, hash_deleter>;

std::string seconds_text(milliseconds ms) {
  std::ostringstream out;
  out << static_cast<double>(ms.count()) / 1000.0 << " s";
  return out.str();
}

std::string libssh_error(::ssh_session s) {
  const char* msg = s ? ssh_get_error(s) : nullptr;
  return msg && *msg ? msg : "unknown libssh error";
}

/// Shuts the session's socket down when a deadline passes or a cancel token
/// fires, so that a libssh call blocked in poll() (a stalled server during a
/// handshake, an SFTP read, waiting for an exit status) returns with an error
/// instead of hanging. Only shutdown(2) is called from the watchdog thread;
/// libssh itself stays on the caller's thread. A fired watchdog leaves the
/// session unusable.
class socket_watchdog {
public:
  enum class reason { none, timeout, cancelled };

  socket_watchdog(int fd, deadline at, cancel_token cancel, milliseconds grace)
      : fd_(fd)
      , at_(at)
      , cancel_(std::move(cancel))
      , grace_(grace) {
    if (fd_ >= 0) thread_ = std::thread([this] { run(); });
  }
  ~socket_watchdog() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  socket_watchdog(const socket_watchdog&) = delete;
  socket_watchdog& operator=(const socket_watchdog&) = delete;

  reason fired() const { return fired_.load(); }

private:
  void run() {
    std::unique_lock<std::mutex> lock(mutex_);
    const bool bounded = !at_.infinite();
    const auto fire_at = bounded ? clock_type::now() + at_.remaining() + grace_
                                 : clock_type::time_point::max();
    clock_type::time_point cancel_at = clock_type::time_point::max();
    while (!stop_) {
      auto now = clock_type::now();
      if (cancel_at == clock_type::time_point::max() && cancel_.cancelled())
        cancel_at = now + grace_;
      if (now >= cancel_at) return fire(reason::cancelled);
      if (bounded && now >= fire_at) return fire(reason::timeout);
      auto wait = milliseconds(slice_ms);
      if (bounded)
        wait = std::min(wait, std::chrono::duration_cast<milliseconds>(fire_at - now) +
                                  milliseconds(1));
      wake_.wait_for(lock, wait);
    }
  }
  void fire(reason why) {
    fired_.store(why);
    ::shutdown(fd_, SHUT_RDWR);
  }

  int fd_;
  deadline at_;
  cancel_token cancel_;
  milliseconds grace_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::atomic<reason> fired_{reason::none};
  std::thread thread_;
};

/// TCP connect of our own (instead of libssh's) so that the cancel token is
/// watched while connecting; libssh then gets the socket via SSH_OPTIONS_FD.
expected<int> tcp_connect(const ssh_endpoint& ep, const deadline& until,
                          const cancel_token& cancel) {
  const std::string where = ep.display();
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_ADDRCONFIG;
  addrinfo* found = nullptr;
  std::string port = std::to_string(ep.port);
  int rc = ::getaddrinfo(ep.host.c_str(), port.c_str(), &hints, &found);
  if (rc != 0)
    return error{errc::ssh, where + ": cannot resolve host: " + ::gai_strerror(rc)};
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> list(found, &::freeaddrinfo);

  std::string last_error = "no address";
  for (addrinfo* ai = found; ai; ai = ai->ai_next) {
    int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                      ai->ai_protocol);
    if (fd < 0) {
      last_error = std::strerror(errno);
      continue;
    }
    int r = ::connect(fd, ai->ai_addr, ai->ai_addrlen);
    if (r != 0 && errno != EINPROGRESS) {
      last_error = std::strerror(errno);
      ::close(fd);
      continue;
    }
    while (r != 0) {
      if (cancel.cancelled()) {
        ::close(fd);
        return error{errc::cancelled, where + ": connect cancelled"};
      }
      if (until.expired()) {
        ::close(fd);
        return error{errc::timeout, where + ": connect timed out after " +
                                        std::to_string(ep.connect_timeout_seconds) +
                                        " s"};
      }
      pollfd p{fd, POLLOUT, 0};
      int wait = static_cast<int>(std::min<long long>(
          slice_ms, std::max<long long>(1, until.remaining().count())));
      int ready = ::poll(&p, 1, wait);
      if (ready < 0 && errno != EINTR) break;
      if (ready <= 0) continue;
      int so_error = 0;
      socklen_t len = sizeof so_error;
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len);
      if (so_error != 0) {
        last_error = std::strerror(so_error);
        break;
      }
      r = 0;
    }
    if (r == 0) {
      // SSH is request/response (channel open, exec, SFTP reads): without
      // TCP_NODELAY, Nagle + delayed ACKs add ~40 ms to every round trip.
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      return fd;
    }
    ::close(fd);
  }
  return error{errc::ssh, where + ": cannot connect: " + last_error};
}

/// A libssh session on a TCP socket that we opened and handed over with
/// SSH_OPTIONS_FD. libssh 0.10 is inconsistent about that socket: it closes
/// it when the connection fails, but ssh_disconnect() merely forgets it (the
/// fd leaks). So once libssh is done we close the fd ourselves, but only if it
/// still is the very socket we opened (same device and inode), never a number
/// that another thread got in the meantime.
class socket_session {
public:
  socket_session() = default;
  socket_session(::ssh_session s, int fd)
      : session_(s)
      , fd_(fd) {
    struct stat st {};
    if (fd_ >= 0 && ::fstat(fd_, &st) == 0) {
      dev_ = st.st_dev;
      ino_ = st.st_ino;
    }
  }
  ~socket_session() { reset(); }
  socket_session(const socket_session&) = delete;
  socket_session& operator=(const socket_session&) = delete;
  socket_session(socket_session&& o) noexcept { *this = std::move(o); }
  socket_session& operator=(socket_session&& o) noexcept {
    if (this != &o) {
      reset();
      session_ = std::exchange(o.session_, nullptr);
      fd_ = std::exchange(o.fd_, -1);
      dev_ = o.dev_;
      ino_ = o.ino_;
      polite_ = o.polite_;
    }
    return *this;
  }

  ::ssh_session get() const { return session_; }
  int fd() const { return fd_; }
  /// Skip the goodbye message at teardown: the socket is dead or shut down.
  void mark_broken() { polite_ = false; }

  void reset() {
    if (session_) {
      if (polite_ && ssh_is_connected(session_)) ssh_disconnect(session_);
      ssh_free(session_);
      session_ = nullptr;
    }
    if (fd_ >= 0) {
      struct stat st {};
      if (::fstat(fd_, &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_) ::close(fd_);
      fd_ = -1;
    }
  }

private:
  ::ssh_session session_ = nullptr;
  int fd_ = -1;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
  bool polite_ = true;
};

expected<socket_session> open_transport(const ssh_endpoint& ep, const deadline& until,
                                        const cancel_token& cancel) {
  const std::string where = ep.display();
  if (ep.host.empty()) return error{errc::invalid_argument, "ssh: no host given"};
  if (ep.port <= 0 || ep.port > 65535)
    return error{errc::invalid_argument, where + ": invalid port"};

  auto fd_or = tcp_connect(ep, until, cancel);
  if (!fd_or) return fd_or.err();
  int fd = *fd_or;

  ::ssh_session raw = ssh_new();
  if (!raw) {
    ::close(fd);
    return error{errc::ssh, where + ": cannot create an ssh session"};
  }
  socket_session s(raw, fd); // from here on s closes fd in every case
  int verbosity = SSH_LOG_NOLOG;
  // ~/.ssh/config and the system known_hosts files must not change what we
  // trust or where we connect: the endpoint says everything.
  bool process_config = false;
  long timeout_s = std::max<long>(1, ep.connect_timeout_seconds);
  const std::string known_hosts =
      ep.known_hosts_file.empty() ? "/dev/null" : ep.known_hosts_file;
  int port = ep.port;
  socket_t sock = fd;
  bool options_ok =
      ssh_options_set(s.get(), SSH_OPTIONS_LOG_VERBOSITY, &verbosity) == 0 &&
      ssh_options_set(s.get(), SSH_OPTIONS_PROCESS_CONFIG, &process_config) == 0 &&
      ssh_options_set(s.get(), SSH_OPTIONS_HOST, ep.host.c_str()) == 0 &&
      ssh_options_set(s.get(), SSH_OPTIONS_PORT, &port) == 0 &&
      (ep.user.empty() ||
       ssh_options_set(s.get(), SSH_OPTIONS_USER, ep.user.c_str()) == 0) &&
      ssh_options_set(s.get(), SSH_OPTIONS_KNOWNHOSTS, known_hosts.c_str()) == 0 &&
      ssh_options_set(s.get(), SSH_OPTIONS_GLOBAL_KNOWNHOSTS, "/dev/null") == 0 &&
      ssh_options_set(s.get(), SSH_OPTIONS_TIMEOUT, &timeout_s) == 0;
  if (!options_ok) {
    std::string msg = libssh_error(s.get());
    return error{errc::ssh, where + ": invalid ssh options: " + msg};
  }
  if (ssh_options_set(s.get(), SSH_OPTIONS_FD, &sock) != 0)
    return error{errc::ssh, where + ": cannot hand the socket to libssh"};

  socket_watchdog watchdog(fd, until, cancel, milliseconds(0));
  int rc = ssh_connect(s.get());
  auto fired = watchdog.fired();
  if (fired != socket_watchdog::reason::none || rc != SSH_OK) s.mark_broken();
  if (fired == socket_watchdog::reason::cancelled)
    return error{errc::cancelled, where + ": connect cancelled"};
  if (fired == socket_watchdog::reason::timeout)
    return error{errc::timeout, where + ": connect timed out after " +
                                    std::to_string(ep.connect_timeout_seconds) + " s"};
  if (rc != SSH_OK) {
    std::string msg = libssh_error(s.get());
    if (msg.find("Timeout") != std::string::npos ||
        msg.find("timed out") != std::string::npos)
      return error{errc::timeout, where + ": connect timed out after " +
                                      std::to_string(ep.connect_timeout_seconds) +
                                      " s (" + msg + ")"};
    return error{errc::ssh, where + ": ssh handshake failed: " + msg};
  }
  return expected<socket_session>(std::move(s));
}

expected<host_key_info> server_key_info(::ssh_session s, const std::string& where) {
  ssh_key raw = nullptr;
  if (ssh_get_server_publickey(s, &raw) != SSH_OK || !raw)
    return error{errc::ssh, where + ": server sent no host key"};
  key_ptr key(raw);
  unsigned char* raw_hash = nullptr;
  size_t hash_len = 0;
  if (ssh_get_publickey_hash(key.get(), SSH_PUBLICKEY_HASH_SHA256, &raw_hash,
                             &hash_len) != 0)
    return error{errc::ssh, where + ": cannot hash the host key"};
  hash_ptr hash(raw_hash);
  cstring_ptr fingerprint(
      ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash.get(), hash_len));
  if (!fingerprint) return error{errc::ssh, where + ": cannot format the host key hash"};
  const char* type = ssh_key_type_to_char(ssh_key_type(key.get()));
  host_key_info info;
  info.type = type ? type : "unknown";
  info.sha256_fingerprint = fingerprint.get();
  return info;
}

bool mkdir_parents(const std::string& dir, mode_t mode) {
  if (dir.empty()) return true;
  struct stat st {};
  if (::stat(dir.c_str(), &st) == 0) return S_ISDIR(st.st_mode);
  auto slash = dir.find_last_of('/');
  if (slash != std::string::npos && slash > 0 &&
      !mkdir_parents(dir.substr(0, slash), mode))
    return false;
  return ::mkdir(dir.c_str(), mode) == 0 || errno == EEXIST;
}

std::string parent_dir(const std::string& path) {
  auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

bool write_all(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

void fsync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

/// The known_hosts host pattern of an endpoint: "[host]:port", or "host" on 22.
std::string known_hosts_pattern(const ssh_endpoint& ep) {
  if (ep.port == 22) return ep.host;
  return "[" + ep.host + "]:" + std::to_string(ep.port);
}

/// Does a known_hosts line name exactly this host pattern (plain entries;
/// hashed and @marker lines are left alone)?
bool line_names_host(const std::string& line, const std::string& host_pattern) {
  if (line.empty() || line[0] == '#' || line[0] == '@' || line[0] == '|') return false;
  auto end = line.find_first_of(" \t");
  std::string hosts = line.substr(0, end);
  std::size_t begin = 0;
  while (begin <= hosts.size()) {
    auto comma = hosts.find(',', begin);
    if (comma == std::string::npos) comma = hosts.size();
    if (hosts.compare(begin, comma - begin, host_pattern) == 0) return true;
    begin = comma + 1;
  }
  return false;
}

} // namespace

std::string shell_quote(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 2);
  out.push_back('\'');
  for (char c : text) {
    if (c == '\'')
      out += "'\\''"; // close, escaped quote, reopen
    else
      out.push_back(c);
  }
  out.push_back('\'');
  return out;
}

std::string ssh_endpoint::display() const {
  if (host.find(':') != std::string::npos) // IPv6 literal
    return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

struct ssh_session::impl {
  ssh_endpoint endpoint;
  socket_session session;
  /// Set when a watchdog shut the socket down or the transport failed: the
  /// session cannot be used again and every call says so at once.
  bool broken = false;

  std::string where() const { return endpoint.display(); }

  expected<void> usable() const {
    if (!session.get() || broken)
      return error{errc::ssh, where() + ": the ssh session is closed (after an earlier "
                                        "timeout or failure); connect again"};
    return {};
  }

  void note_failure() {
    if (!session.get() || ssh_is_connected(session.get()) == 0) mark_broken();
  }
  void mark_broken() {
    broken = true;
    session.mark_broken();
  }
};

ssh_session::ssh_session(std::unique_ptr<impl> p)
    : impl_(std::move(p)) {}
ssh_session::~ssh_session() = default;
ssh_session::ssh_session(ssh_session&&) noexcept = default;
ssh_session& ssh_session::operator=(ssh_session&&) noexcept = default;

const ssh_endpoint& ssh_session::endpoint() const {
  static const ssh_endpoint empty;
  return impl_ ? impl_->endpoint : empty;
}

expected<ssh_session> ssh_session::connect(const ssh_endpoint& ep,
                                           const cancel_token& cancel) {
  const std::string where = ep.display();
  const deadline until =
      deadline::after(std::chrono::seconds(std::max(1, ep.connect_timeout_seconds)));
  auto t = open_transport(ep, until, cancel);
  if (!t) return t.err();
  ::ssh_session s = t->get();

  // Strict host key check: only an exact match in our known_hosts file passes.
  auto state = ssh_session_is_known_server(s);
  if (state != SSH_KNOWN_HOSTS_OK) {
    auto info = server_key_info(s, where);
    std::string key_text =
        info ? info->type + " " + info->sha256_fingerprint : "key unknown";
    if (state == SSH_KNOWN_HOSTS_CHANGED || state == SSH_KNOWN_HOSTS_OTHER) {
      auto pinned = pinned_host_key(ep);
      return error{errc::host_key,
                   where + ": HOST KEY CHANGED: the host presents " + key_text + " but " +
                       (pinned ? pinned->type + " " + pinned->sha256_fingerprint
                               : std::string("another key")) +
                       " is pinned; refusing to connect (a reinstalled host, or someone "
                       "in between)"};
    }
    return error{errc::host_key, where + ": host key is not trusted (" + key_text +
                                     "); check it and run \"satoru trust <site>\""};
  }

  if (ep.identity_file.empty())
    return error{errc::invalid_argument, where + ": no ssh identity_file configured"};
  ssh_key raw_key = nullptr;
  int rc = ssh_pki_import_privkey_file(ep.identity_file.c_str(), nullptr, nullptr,
                                       nullptr, &raw_key);
  if (rc != SSH_OK || !raw_key)
    return error{errc::auth,
                 "cannot load ssh identity file " + ep.identity_file +
                     " (missing, unreadable, not a private key or passphrase-protected)"};
  key_ptr key(raw_key);

  std::string user = ep.user;
  if (user.empty()) {
    char* name = nullptr;
    if (ssh_options_get(s, SSH_OPTIONS_USER, &name) == SSH_OK && name) {
      user = name;
      ssh_string_free_char(name);
    }
  }
  socket_watchdog watchdog(t->fd(), until, cancel, milliseconds(0));
  rc = ssh_userauth_publickey(s, nullptr, key.get());
  auto fired = watchdog.fired();
  if (fired != socket_watchdog::reason::none) t->mark_broken();
  if (fired == socket_watchdog::reason::cancelled)
    return error{errc::cancelled, where + ": connect cancelled"};
  if (fired == socket_watchdog::reason::timeout)
    return error{errc::timeout, where + ": authentication timed out after " +
                                    std::to_string(ep.connect_timeout_seconds) + " s"};
  if (rc == SSH_AUTH_ERROR)
    return error{errc::ssh, where + ": authentication failed: " + libssh_error(s)};
  if (rc != SSH_AUTH_SUCCESS)
    return error{errc::auth, where + ": authentication as " + user + " failed with key " +
                                 ep.identity_file};

  auto p = std::make_unique<impl>();
  p->endpoint = ep;
  p->session = std::move(*t);
  return ssh_session(std::move(p));
}

expected<exec_result> ssh_session::exec(const std::string& command, milliseconds timeout,
                                        const cancel_token& cancel) {
  if (!impl_) return error{errc::ssh, "ssh: session was moved from"};
  if (auto ok = impl_->usable(); !ok) return ok.err();
  const std::string where = impl_->where();
  ::ssh_session s = impl_->session.get();
  const deadline until = deadline::after(timeout);

  // The loop below watches deadline and cancel itself; the watchdog only
  // rescues calls that block inside libssh (open, exec request, exit status).
  socket_watchdog watchdog(impl_->session.fd(), until, cancel, backstop_grace);
  auto blocked_error = [&]() -> expected<exec_result> {
    impl_->mark_broken();
    if (watchdog.fired() == socket_watchdog::reason::cancelled)
      return error{errc::cancelled, where + ": remote command cancelled"};
    return error{errc::timeout, where + ": remote command timed out after " +
                                    seconds_text(timeout) +
                                    " (the server stopped answering)"};
  };
  auto channel_error = [&](const std::string& what) -> expected<exec_result> {
    if (watchdog.fired() != socket_watchdog::reason::none) return blocked_error();
    std::string msg = libssh_error(s);
    impl_->note_failure();
    return error{errc::ssh, where + ": " + what + ": " + msg};
  };

  channel_ptr channel(ssh_channel_new(s));
  if (!channel) return channel_error("cannot create a channel");
  if (ssh_channel_open_session(channel.get()) != SSH_OK)
    return channel_error("cannot open a channel");
  if (ssh_channel_request_exec(channel.get(), command.c_str()) != SSH_OK)
    return channel_error("cannot start the remote command");

  /// Stops the remote command and drops the channel; the session stays usable.
  auto abandon = [&] {
    ssh_channel_request_send_signal(channel.get(), "TERM");
    ssh_channel_send_eof(channel.get());
    ssh_channel_close(channel.get());
    channel.reset();
  };

  exec_result result;
  std::vector<char> buf(64 * 1024);
  auto drain_stderr = [&]() -> int {
    while (true) {
      int n = ssh_channel_read_nonblocking(channel.get(), buf.data(),
                                           static_cast<uint32_t>(buf.size()), 1);
      if (n <= 0) return n;
      result.err.append(buf.data(), static_cast<std::size_t>(n));
    }
  };
  bool stderr_busy = false;
  while (true) {
    if (cancel.cancelled()) {
      abandon();
      if (watchdog.fired() != socket_watchdog::reason::none) impl_->mark_broken();
      return error{errc::cancelled, where + ": remote command cancelled"};
    }
    if (until.expired()) {
      abandon();
      if (watchdog.fired() != socket_watchdog::reason::none) impl_->mark_broken();
      return error{errc::timeout,
                   where + ": remote command timed out after " + seconds_text(timeout)};
    }
    // Wait for stdout only while stderr is quiet too: the wait below
    // cannot wake up for stderr data.
    int wait = stderr_busy ? 0 : slice_ms;
    if (!until.infinite())
      wait = static_cast<int>(
          std::min<long long>(wait, std::max<long long>(1, until.remaining().count())));
    int n = ssh_channel_read_timeout(channel.get(), buf.data(),
                                     static_cast<uint32_t>(buf.size()), 0, wait);
    if (n == SSH_ERROR)
      return channel_error("reading the remote command's output failed");
    if (n > 0) result.out.append(buf.data(), static_cast<std::size_t>(n));
    const std::size_t err_before = result.err.size();
    if (drain_stderr() == SSH_ERROR)
      return channel_error("reading the remote command's errors failed");
    stderr_busy = result.err.size() > err_before;
    if (result.out.size() > max_exec_output || result.err.size() > max_exec_output) {
      abandon();
      return error{errc::remote, where + ": remote command printed more than " +
                                     std::to_string(max_exec_output >> 20) +
                                     " MiB; use sftp_get for data"};
    }
    if (ssh_channel_is_eof(channel.get())) break;
    if (ssh_channel_is_closed(channel.get())) {
      // Closed without EOF: take what is buffered and stop.
      drain_stderr();
      break;
    }
  }

  // After EOF the exit status follows at once from a sane server; the
  // watchdog bounds the wait for one that never sends it.
  result.exit_status = ssh_channel_get_exit_status(channel.get());
  if (watchdog.fired() != socket_watchdog::reason::none) return blocked_error();
  ssh_channel_send_eof(channel.get());
  ssh_channel_close(channel.get());
  channel.reset();
  return result;
}

expected<std::uint64_t>
ssh_session::sftp_get(const std::string& remote_path, const std::string& local_path,
                      milliseconds timeout, const cancel_token& cancel,
                      const std::function<void(std::uint64_t)>& on_progress) {
  if (!impl_) return error{errc::ssh, "ssh: session was moved from"};
  if (auto ok = impl_->usable(); !ok) return ok.err();
  const std::string where = impl_->where();
  ::ssh_session s = impl_->session.get();
  const deadline until = deadline::after(timeout);
  const std::string part_path = local_path + ".part";

  socket_watchdog watchdog(impl_->session.fd(), until, cancel, backstop_grace);
  auto sftp_error = [&](const std::string& what, sftp_session sftp) -> error {
    if (watchdog.fired() != socket_watchdog::reason::none) {
      impl_->mark_broken();
      if (watchdog.fired() == socket_watchdog::reason::cancelled)
        return error{errc::cancelled,
                     where + ": sftp download of " + remote_path + " cancelled"};
      return error{errc::timeout, where + ": sftp download of " + remote_path +
                                      " timed out after " + seconds_text(timeout)};
    }
    std::string msg = libssh_error(s);
    int code = sftp ? sftp_get_error(sftp) : SSH_FX_OK;
    impl_->note_failure();
    if (code == SSH_FX_NO_SUCH_FILE)
      return error{errc::not_found, where + ": " + remote_path + ": no such file"};
    if (code == SSH_FX_PERMISSION_DENIED)
      return error{errc::remote, where + ": " + remote_path + ": permission denied"};
    return error{errc::ssh, where + ": sftp " + what + " " + remote_path + ": " + msg};
  };

  sftp_ptr sftp(sftp_new(s));
  if (!sftp) return sftp_error("cannot start a session for", nullptr);
  if (sftp_init(sftp.get()) != SSH_OK)
    return sftp_error("cannot start a session for", sftp.get());
  sftp_file_ptr file(sftp_open(sftp.get(), remote_path.c_str(), O_RDONLY, 0));
  if (!file) return sftp_error("cannot open", sftp.get());

  int out = ::open(part_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (out < 0)
    return error{errc::io, "cannot create " + part_path + ": " + std::strerror(errno)};
  auto fail = [&](error e) -> expected<std::uint64_t> {
    ::close(out);
    ::unlink(part_path.c_str());
    return e;
  };

  // Pipelined reads, consumed in order. A short read that is not the end of
  // the file leaves a gap before the requests already sent, so their answers
  // are dropped and reading restarts right after the short one.
  std::deque<int> in_flight;
  std::vector<char> buf(sftp_chunk);
  std::uint64_t written = 0;
  auto drain = [&]() -> bool {
    while (!in_flight.empty()) {
      int id = in_flight.front();
      in_flight.pop_front();
      if (sftp_async_read(file.get(), buf.data(), sftp_chunk,
                          static_cast<uint32_t>(id)) == SSH_ERROR)
        return false;
    }
    return true;
  };
  bool at_end = false;
  while (!at_end) {
    if (cancel.cancelled())
      return fail(error{errc::cancelled,
                        where + ": sftp download of " + remote_path + " cancelled"});
    if (until.expired())
      return fail(error{errc::timeout, where + ": sftp download of " + remote_path +
                                           " timed out after " + seconds_text(timeout)});
    while (in_flight.size() < sftp_in_flight) {
      int id = sftp_async_read_begin(file.get(), sftp_chunk);
      if (id < 0) return fail(sftp_error("read request failed for", sftp.get()));
      in_flight.push_back(id);
    }
    int id = in_flight.front();
    in_flight.pop_front();
    int n =
        sftp_async_read(file.get(), buf.data(), sftp_chunk, static_cast<uint32_t>(id));
    if (n < 0) return fail(sftp_error("read failed for", sftp.get()));
    if (n == 0) {
      at_end = true;
      break;
    }
    if (!write_all(out, buf.data(), static_cast<std::size_t>(n)))
      return fail(
          error{errc::io, "cannot write " + part_path + ": " + std::strerror(errno)});
    written += static_cast<std::uint64_t>(n);
    if (on_progress) on_progress(written);
    if (static_cast<std::uint32_t>(n) < sftp_chunk) {
      if (!drain()) return fail(sftp_error("read failed for", sftp.get()));
      if (sftp_seek64(file.get(), written) != 0)
        return fail(sftp_error("seek failed in", sftp.get()));
    }
  }
  // Answers to reads past the end still arrive; collect them before closing.
  // (libssh answers later ids from its EOF flag without waiting; their
  // packets are freed with the sftp session.)
  drain();
  if (watchdog.fired() != socket_watchdog::reason::none)
    return fail(sftp_error("read failed for", sftp.get()));

  if (::fsync(out) != 0)
    return fail(
        error{errc::io, "cannot sync " + part_path + ": " + std::strerror(errno)});
  if (::close(out) != 0) {
    out = -1;
    ::unlink(part_path.c_str());
    return error{errc::io, "cannot write " + part_path + ": " + std::strerror(errno)};
  }
  if (::rename(part_path.c_str(), local_path.c_str()) != 0) {
    int e = errno;
    ::unlink(part_path.c_str());
    return error{errc::io, "cannot rename " + part_path + " to " + local_path + ": " +
                               std::strerror(e)};
  }
  fsync_dir(parent_dir(local_path));
  return written;
}

expected<host_key_info> fetch_host_key(const ssh_endpoint& ep) {
  const deadline until =
      deadline::after(std::chrono::seconds(std::max(1, ep.connect_timeout_seconds)));
  auto t = open_transport(ep, until, cancel_token{});
  if (!t) return t.err();
  return server_key_info(t->get(), ep.display());
}

expected<host_key_info> pinned_host_key(const ssh_endpoint& ep) {
  const std::string pattern = known_hosts_pattern(ep);
  std::ifstream in(ep.known_hosts_file);
  std::string line;
  while (std::getline(in, line)) {
    if (!line_names_host(line, pattern)) continue;
    std::istringstream fields(line);
    std::string hosts, type, blob;
    if (!(fields >> hosts >> type >> blob)) continue;
    ssh_key raw = nullptr;
    if (ssh_pki_import_pubkey_base64(blob.c_str(), ssh_key_type_from_name(type.c_str()),
                                     &raw) != SSH_OK ||
        !raw)
      continue;
    key_ptr key(raw);
    unsigned char* raw_hash = nullptr;
    size_t hash_len = 0;
    if (ssh_get_publickey_hash(key.get(), SSH_PUBLICKEY_HASH_SHA256, &raw_hash,
                               &hash_len) != 0)
      continue;
    hash_ptr hash(raw_hash);
    cstring_ptr fingerprint(
        ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash.get(), hash_len));
    if (!fingerprint) continue;
    return host_key_info{type, fingerprint.get()};
  }
  return error{errc::not_found,
               ep.display() + ": no key pinned in " + ep.known_hosts_file};
}

expected<host_key_info> trust_host_key(const ssh_endpoint& ep,
                                       const trust_request& request) {
  const std::string where = ep.display();
  if (ep.known_hosts_file.empty())
    return error{errc::invalid_argument, where + ": no known_hosts_file configured"};
  if (request.rotate && request.fingerprint.empty())
    return error{errc::invalid_argument,
                 where + ": replacing a pinned key needs the new key's --fingerprint"};
  const deadline until =
      deadline::after(std::chrono::seconds(std::max(1, ep.connect_timeout_seconds)));
  auto t = open_transport(ep, until, cancel_token{});
  if (!t) return t.err();
  auto info = server_key_info(t->get(), where);
  if (!info) return info.err();
  // The key checked is the key pinned: both come from this one connection.
  if (!request.fingerprint.empty() && request.fingerprint != info->sha256_fingerprint)
    return error{errc::host_key,
                 where + " presents " + info->type + " " + info->sha256_fingerprint +
                     ", not " + request.fingerprint +
                     " as given: nothing was pinned; check the key on the host again"};
  if (auto pinned = pinned_host_key(ep);
      pinned && pinned->sha256_fingerprint != info->sha256_fingerprint && !request.rotate)
    return error{errc::host_key,
                 where + " presents " + info->type + " " + info->sha256_fingerprint +
                     " but " + pinned->sha256_fingerprint + " is pinned in " +
                     ep.known_hosts_file +
                     ": nothing was changed; if the host's key was replaced on purpose, "
                     "verify the new key on the host and run: " +
                     (request.command.empty() ? std::string("satoru trust SITE")
                                              : request.command) +
                     " --rotate --fingerprint " + info->sha256_fingerprint};
  char* raw_entry = nullptr;
  if (ssh_session_export_known_hosts_entry(t->get(), &raw_entry) != SSH_OK || !raw_entry)
    return error{errc::ssh, where + ": cannot format a known_hosts entry"};
  cstring_ptr entry_holder(raw_entry);
  std::string entry = raw_entry;
  while (!entry.empty() && (entry.back() == '\n' || entry.back() == '\r'))
    entry.pop_back();
  const std::string host_pattern = entry.substr(0, entry.find(' '));

  const std::string& path = ep.known_hosts_file;
  const std::string dir = parent_dir(path);
  if (!mkdir_parents(dir, 0700))
    return error{errc::io, "cannot create folder " + dir + ": " + std::strerror(errno)};

  // Pinning replaces what we had for this host: a key that was replaced on
  // purpose must stop being trusted. Other hosts' lines are kept as they are.
  std::string kept;
  bool already = false;
  {
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
      if (line == entry) {
        already = true;
      } else if (line_names_host(line, host_pattern)) {
        continue;
      }
      kept += line + "\n";
    }
  }
  if (!already) kept += entry + "\n";

  if (auto written = write_file_atomically(path, kept); !written) return written.err();
  fsync_dir(dir);
  return info;
}

} // namespace satoru
