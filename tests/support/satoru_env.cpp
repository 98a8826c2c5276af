#include "satoru_env.hpp"

#include "cheap_key_repository.hpp"

#include "satoru/process.hpp"

#include <arpa/inet.h>
#include <csignal>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace satoru::testing {

satoru_env::satoru_env(const std::string& name)
    : tmp_(name) {
  metrics_port_ = free_port();
  {
    std::ofstream pass(password_file());
    pass << "correct horse battery staple\n";
  }
  ::chmod(password_file().c_str(), 0600);
  // The repository exists before the first job, with a key that is cheap to
  // open (see the header); hand_to() leaves making it to the daemon.
  if (auto e = make_cheap_key_repository(path("repo"), password_file()); !e.empty())
    ADD_FAILURE() << "test repository: " << e;
  config = {
      {"staging_root", "staging"},
      {"restic_repo_path", "repo"},
      {"database_path", "state/satoru.db"},
      {"restic_password_file", "restic.pass"},
      {"metrics_listen", "127.0.0.1:" + std::to_string(metrics_port_)},
      {"plugin_dir", SATORU_PLUGIN_DIR},
      {"job_worker_concurrency", 4},
      // Tests ask for the jobs they want; a test of the scheduler turns it on.
      {"site_scan_interval_hours", 0},
      // A failure is the result a test looks at; the tests of retries ask
      // for them (with short waits).
      {"retry_max_attempts", 1},
      {"restic_retention_interval_hours", 0},
      {"restic_sync_interval_hours", 0},
      {"preflight_timeout_seconds", 30},
      {"target_timeout_seconds", 300},
      {"restic_timeout_seconds", 300},
      {"sites", boost::json::array{}},
  };
}

satoru_env::~satoru_env() = default;

std::size_t
satoru_env::add_site(const std::string& name, const edge_host& host,
                     const std::vector<std::pair<std::string, std::string>>& targets) {
  return add_site_at(name, host, host.port(), targets);
}

std::size_t
satoru_env::add_site_at(const std::string& name, const edge_host& host, int port,
                        const std::vector<std::pair<std::string, std::string>>& targets) {
  boost::json::array list;
  for (const auto& [mode, path] : targets)
    list.push_back({{"mode", mode}, {"path", path}});
  auto& sites = config["sites"].as_array();
  sites.push_back({{"name", name},
                   {"host", host.host()},
                   {"port", port},
                   {"user", host.user()},
                   {"ssh",
                    {{"identity_file", host.identity_file()},
                     {"known_hosts_file", host.known_hosts_file()},
                     {"connect_timeout_seconds", 3}}},
                   {"targets", list}});
  return sites.size() - 1;
}

void satoru_env::set_target_options(std::size_t site, std::size_t target,
                                    boost::json::object options) {
  config["sites"]
      .as_array()
      .at(site)
      .as_object()["targets"]
      .as_array()
      .at(target)
      .as_object()["options"] = std::move(options);
}

void satoru_env::write_config() const {
  std::ofstream out(config_path());
  out << boost::json::serialize(config);
}

void satoru_env::hand_to(const std::string& user, const edge_host* host) {
  const passwd* pw = ::getpwnam(user.c_str());
  ASSERT_NE(pw, nullptr) << "no local user " << user;
  for (const auto& path : {dir(), config_path(), password_file()})
    ASSERT_EQ(::chown(path.c_str(), pw->pw_uid, pw->pw_gid), 0) << path;
  if (host) {
    for (const auto& file : {host->identity_file(), host->known_hosts_file()})
      ASSERT_EQ(::chown(file.c_str(), pw->pw_uid, pw->pw_gid), 0) << file;
    ::chmod(host->dir().c_str(), 0711);
  }
  // The service user makes its own repository, as in the field.
  std::filesystem::remove_all(path("repo"));
  ::chmod(dir().c_str(), 0700);
  run_as_ = user;
}

cli_result satoru_env::run(const std::vector<std::string>& args,
                           std::chrono::seconds timeout) const {
  // runuser, as an operator would; the environment stays the test's.
  if (run_as_.empty()) return run_argv({}, args, timeout);
  return run_argv({"runuser", "-u", run_as_, "--"}, args, timeout);
}

cli_result satoru_env::run_as_root(const std::vector<std::string>& args,
                                   std::chrono::seconds timeout) const {
  return run_argv({}, args, timeout);
}

cli_result satoru_env::run_argv(const std::vector<std::string>& user_switch,
                                const std::vector<std::string>& args,
                                std::chrono::seconds timeout) const {
  process_spec spec;
  spec.argv = user_switch;
  spec.argv.insert(spec.argv.end(), {SATORU_BIN, "--config", config_path()});
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  spec.timeout = timeout;
  spec.inherit_environment = true; // the test's own satoru, run as a user would
  cli_result r;
  auto p = run_process(spec);
  if (!p) {
    r.err = p.err().message;
    return r;
  }
  r.exit_code = p->exit_code;
  r.out = p->out;
  r.err = p->err;
  return r;
}

daemon_process::daemon_process(const satoru_env& env)
    : env_(env) {}

daemon_process::~daemon_process() {
  if (pid_ > 0) stop();
}

std::string daemon_process::log() const {
  return read_file(env_.path("daemon.log"));
}

void daemon_process::start() {
  ++starts_;
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    int fd = ::open(env_.path("daemon.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    dup2(fd, 1);
    dup2(fd, 2);
    int null = ::open("/dev/null", O_RDONLY);
    dup2(null, 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    // Like systemd's User=: the daemon's own process, its groups and nothing
    // more (the pid stays the daemon's, so stop() signals it directly).
    if (!env_.run_as().empty()) {
      const passwd* pw = ::getpwnam(env_.run_as().c_str());
      if (pw == nullptr || ::initgroups(pw->pw_name, pw->pw_gid) != 0 ||
          ::setgid(pw->pw_gid) != 0 || ::setuid(pw->pw_uid) != 0)
        _exit(126);
    }
    execl(SATORU_BIN, SATORU_BIN, "--config", env_.config_path().c_str(), "daemon",
          static_cast<char*>(nullptr));
    _exit(127);
  }
  pid_ = pid;
  bool up = wait_until(
      [&] {
        int status = 0;
        if (waitpid(pid_, &status, WNOHANG) == pid_) {
          pid_ = 0;
          return true;
        }
        return !http_get(env_.metrics_port(), "/metrics").empty();
      },
      std::chrono::seconds{20});
  ASSERT_TRUE(up && pid_ > 0) << "daemon did not start:\n" << log();
}

int daemon_process::stop(std::chrono::milliseconds* took) {
  if (pid_ <= 0) return -1;
  auto started = std::chrono::steady_clock::now();
  ::kill(pid_, SIGTERM);
  int status = 0;
  bool exited = wait_until([&] { return waitpid(pid_, &status, WNOHANG) == pid_; },
                           std::chrono::seconds{20}, std::chrono::milliseconds{20});
  if (!exited) {
    ::kill(pid_, SIGKILL);
    waitpid(pid_, &status, 0);
  }
  if (took)
    *took = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - started);
  pid_ = 0;
  return exited && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void daemon_process::kill9() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = 0;
}

bool daemon_process::signal(int sig) const {
  return pid_ > 0 && ::kill(pid_, sig) == 0;
}

std::int64_t parse_id(const cli_result& r) {
  try {
    return std::stoll(r.out);
  } catch (...) {
    ADD_FAILURE() << "no job id in: " << r.out << r.err;
    return 0;
  }
}

boost::json::value parse_json(const cli_result& r) {
  boost::json::error_code ec;
  auto v = boost::json::parse(r.out, ec);
  EXPECT_FALSE(ec) << "not JSON: " << r.out << r.err;
  return v;
}

boost::json::object job_json(const satoru_env& env, std::int64_t id) {
  auto r = env.run({"job", std::to_string(id), "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto v = parse_json(r);
  return v.is_object() ? v.as_object() : boost::json::object{};
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::string status_of(const satoru_env& env, std::int64_t id) {
  auto job = job_json(env, id);
  return job.contains("status") ? std::string(job.at("status").as_string()) : "";
}

std::vector<boost::json::object> progress_lines(const std::string& out,
                                                const std::string& step) {
  std::vector<boost::json::object> lines;
  std::istringstream in{out};
  for (std::string line; std::getline(in, line);) {
    boost::system::error_code ec;
    auto v = boost::json::parse(line, ec);
    if (ec || !v.is_object()) continue;
    const auto& o = v.get_object();
    const auto* type = o.if_contains("type");
    const auto* s = o.if_contains("step");
    if (type && type->is_string() && type->get_string() == "progress" && s &&
        s->is_string() && s->get_string() == step)
      lines.push_back(o);
  }
  return lines;
}

std::string add_slow_site(satoru_env& env, const edge_host& host, int seconds) {
  auto dir = host.remote_root() + "/slow";
  EXPECT_EQ(host.sh("mkdir -p '" + dir + "' && head -c " +
                    std::to_string(seconds * 256 * 1024) + " /dev/urandom > '" + dir +
                    "/blob'"),
            0);
  auto i = env.add_site("edge", host, {{"directory", dir}});
  env.set_target_options(i, 0, {{"bwlimit_kbps", 256}, {"compress", false}});
  env.write_config();
  return dir;
}

std::string file_digest(const std::string& path) {
  std::string out;
  EXPECT_EQ(run_shell("sha256sum '" + path + "'", &out), 0);
  return out.substr(0, 64);
}

std::string string_of(const boost::json::value& v) {
  return v.is_string() ? std::string(v.as_string()) : std::string{};
}

void write_text(const std::string& path, const std::string& text, mode_t mode) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
  ::chmod(path.c_str(), mode);
}

mode_t mode_of(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

std::vector<std::string> not_owned_by(const std::string& root, unsigned uid) {
  std::vector<std::string> out;
  auto check = [&](const std::string& path) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0 && st.st_uid != uid)
      out.push_back(path + " (uid " + std::to_string(st.st_uid) + ")");
  };
  check(root);
  std::error_code ec;
  for (std::filesystem::recursive_directory_iterator it(root, ec), end; !ec && it != end;
       it.increment(ec))
    check(it->path().string());
  return out;
}

bool process_gone(int pid) {
  auto stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  auto paren = stat.rfind(") ");
  return stat.empty() || paren == std::string::npos || stat[paren + 2] == 'Z';
}

scoped_env::scoped_env(std::string name, const std::string& value)
    : name_(std::move(name)) {
  const char* old = std::getenv(name_.c_str());
  had_ = old != nullptr;
  if (had_) old_ = old;
  ::setenv(name_.c_str(), value.c_str(), 1);
}

void scoped_env::reset() {
  if (done_) return;
  done_ = true;
  if (had_)
    ::setenv(name_.c_str(), old_.c_str(), 1);
  else
    ::unsetenv(name_.c_str());
}

satoru::process_result restic(const satoru_env& env, const std::string& repo,
                              std::vector<std::string> args) {
  satoru::process_spec spec;
  spec.argv = {"restic", "-r", repo};
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  spec.env = {{"RESTIC_PASSWORD_FILE", env.password_file()},
              {"RESTIC_CACHE_DIR", env.path("test-cache")}};
  spec.timeout = std::chrono::seconds{300};
  auto r = satoru::run_process(spec);
  EXPECT_TRUE(r) << (r ? "" : r.err().message);
  return r ? *r : satoru::process_result{};
}

namespace {

/// Whether `resp` holds a whole response by its Content-Length: some servers
/// (chromedriver) keep the connection open despite `Connection: close`.
bool response_complete(const std::string& resp) {
  auto end = resp.find("\r\n\r\n");
  if (end == std::string::npos) return false;
  std::string head = resp.substr(0, end);
  std::transform(head.begin(), head.end(), head.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  auto at = head.find("\r\ncontent-length:");
  if (at == std::string::npos) return false;
  auto length = std::strtoull(head.c_str() + at + 17, nullptr, 10);
  return resp.size() - end - 4 >= length;
}

} // namespace

satoru::process_result add_web_user(const satoru_env& env, const std::string& name,
                                    const std::string& password,
                                    const std::string& role) {
  process_spec spec;
  spec.argv = {SATORU_BIN, "--config", env.config_path(), "web-user",
               "add",      name,       "--role",          role};
  spec.stdin_data = password + "\n";
  spec.inherit_environment = true;
  spec.timeout = std::chrono::seconds{60};
  auto r = run_process(spec);
  EXPECT_TRUE(r) << (r ? "" : r.err().message);
  return r ? *r : satoru::process_result{};
}

std::string http_exchange(int port, const std::string& request,
                          std::chrono::seconds timeout) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return {};
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{static_cast<time_t>(timeout.count()), 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return {};
  }
  if (::write(fd, request.data(), request.size()) < 0) {
    ::close(fd);
    return {};
  }
  std::string resp;
  char buf[65536];
  for (;;) {
    auto n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    resp.append(buf, static_cast<std::size_t>(n));
    if (response_complete(resp)) break;
  }
  ::close(fd);
  return resp;
}

std::string http_get(int port, const std::string& path) {
  auto resp = http_exchange(port, "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
  auto body = resp.find("\r\n\r\n");
  if (resp.rfind("HTTP/1.", 0) != 0 || body == std::string::npos) return {};
  return resp.substr(body + 4);
}

bool wait_until(const std::function<bool()>& ready, std::chrono::milliseconds timeout,
                std::chrono::milliseconds step) {
  auto end = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (ready()) return true;
    if (std::chrono::steady_clock::now() >= end) return false;
    std::this_thread::sleep_for(step);
  }
}

} // namespace satoru::testing
