#pragma once

#include "edge_host.hpp"

#include "satoru/process.hpp"

#include <boost/json.hpp>

#include <chrono>
#include <string>
#include <sys/types.h>
#include <vector>

namespace satoru::testing {

/// What a run of the `satoru` binary printed and returned.
struct cli_result {
  int exit_code = -1;
  std::string out;
  std::string err;
};

/// A throwaway deployment for integration tests: a temp folder with a config
/// file, a restic password file, staging, repository (made up front with a
/// cheap key: cheap_key_repository.hpp) and database, and helpers to run the
/// real `satoru` binary against it.
class satoru_env {
public:
  explicit satoru_env(const std::string& name = "satoru-it");
  ~satoru_env();

  const std::string& dir() const { return tmp_.path(); }
  std::string path(const std::string& name) const { return tmp_ / name; }
  std::string config_path() const { return tmp_ / "satoru.json"; }

  /// The config as JSON; change it, then call write_config().
  boost::json::object config;

  /// Adds a site reached through `host` with the given targets
  /// ({mode, path} pairs); returns its index in config["sites"].
  std::size_t add_site(const std::string& name, const edge_host& host,
                       const std::vector<std::pair<std::string, std::string>>& targets);
  /// Adds a site on a given port with the client key and known_hosts of `host`.
  std::size_t
  add_site_at(const std::string& name, const edge_host& host, int port,
              const std::vector<std::pair<std::string, std::string>>& targets);
  /// Sets the "options" object of a site's target (indexes as added).
  void set_target_options(std::size_t site, std::size_t target,
                          boost::json::object options);
  void write_config() const;

  /// Runs `satoru --config <config> args...` (as run_as, when set).
  cli_result run(const std::vector<std::string>& args,
                 std::chrono::seconds timeout = std::chrono::seconds{180}) const;
  /// The same as root, whatever run_as says (e.g. `satoru restore`).
  cli_result run_as_root(const std::vector<std::string>& args,
                         std::chrono::seconds timeout = std::chrono::seconds{180}) const;

  /// The local user the daemon and run() act as ("" = the test's own user,
  /// root in CI), the way config/satoru.service runs it. Set it with
  /// hand_to(), which also gives that user the env's folder and files.
  const std::string& run_as() const { return run_as_; }
  /// Makes `user` own the env's folder (0700), config and password file;
  /// later folders (staging, repository, database) are created by satoru
  /// itself as that user. With `host`, also the client key and known_hosts
  /// the daemon is given for it, and a way through its folder (0711).
  void hand_to(const std::string& user, const edge_host* host = nullptr);

  /// The metrics port chosen for this env (config metrics_listen).
  int metrics_port() const { return metrics_port_; }

  /// The restic repository password (for running restic directly in tests).
  std::string password_file() const { return tmp_ / "restic.pass"; }

private:
  cli_result run_argv(const std::vector<std::string>& user_switch,
                      const std::vector<std::string>& args,
                      std::chrono::seconds timeout) const;
  temp_dir tmp_;
  int metrics_port_ = 0;
  std::string run_as_;
};

/// `satoru daemon` as a child process of the test.
class daemon_process {
public:
  explicit daemon_process(const satoru_env& env);
  ~daemon_process();
  /// Starts the daemon; waits until it serves metrics (or fails the test).
  void start();
  /// SIGTERM and wait; returns its exit status and how long it took.
  int stop(std::chrono::milliseconds* took = nullptr);
  /// SIGKILL, like a crash.
  void kill9();
  /// Sends `sig` to the daemon; false (and nothing sent) when it does not
  /// run: kill(0, …) would signal the test's whole process group, ctest
  /// included.
  bool signal(int sig) const;
  bool running() const { return pid_ > 0; }
  int pid() const { return pid_; }
  std::string log() const;

private:
  const satoru_env& env_;
  int pid_ = 0;
  int starts_ = 0;
};

/// `satoru web-user add NAME --role ROLE` with the password typed on stdin.
satoru::process_result add_web_user(const satoru_env& env, const std::string& name,
                                    const std::string& password,
                                    const std::string& role = "viewer");

/// The job id `satoru run` printed (0 and a test failure when none).
std::int64_t parse_id(const cli_result& r);
/// The JSON a `--json` command printed (a test failure when it is not JSON).
boost::json::value parse_json(const cli_result& r);
/// `satoru job ID --json`: the job with its events.
boost::json::object job_json(const satoru_env& env, std::int64_t id);

/// The `{"type":"progress",…}` lines of a `--json` follow's output for one
/// step ("pull", "snapshot", "copy"), in order.
std::vector<boost::json::object> progress_lines(const std::string& out,
                                                const std::string& step);

/// Whether `text` contains `part`.
bool contains(const std::string& text, const std::string& part);

/// The SHA-256 of a file, in hex (sha256sum).
std::string file_digest(const std::string& path);

/// The string in `v`, or "" when it holds something else.
std::string string_of(const boost::json::value& v);

/// Writes `text` to `path` (making its folder) with `mode`.
void write_text(const std::string& path, const std::string& text, mode_t mode = 0644);

/// The permission bits of `path` (0 when it cannot be read).
mode_t mode_of(const std::string& path);

/// `root` and everything below it whose owner is not `uid`, each as
/// "path (uid N)": what `find ROOT ! -user U` prints.
std::vector<std::string> not_owned_by(const std::string& root, unsigned uid);

/// True when the process is gone or a zombie (an orphan is reaped by
/// whoever adopted it, maybe later).
bool process_gone(int pid);

/// Sets an environment variable until reset() or the end of the scope,
/// then gives back what was there before.
class scoped_env {
public:
  scoped_env(std::string name, const std::string& value);
  ~scoped_env() { reset(); }
  scoped_env(const scoped_env&) = delete;
  scoped_env& operator=(const scoped_env&) = delete;
  void reset();

private:
  std::string name_, old_;
  bool had_ = false;
  bool done_ = false;
};

/// A job's status as `satoru job ID --json` prints it ("" when unreadable).
std::string status_of(const satoru_env& env, std::int64_t id);

/// Adds a site "edge" whose one directory target takes about `seconds` to
/// pull (256 KiB/s bandwidth limit); writes the config, returns the folder.
std::string add_slow_site(satoru_env& env, const edge_host& host, int seconds);

/// restic run directly against a repository with the env's password.
satoru::process_result restic(const satoru_env& env, const std::string& repo,
                              std::vector<std::string> args);

/// Sends a raw HTTP request to 127.0.0.1:port; the whole raw response
/// ("" when it fails), read until the server closes or the Content-Length
/// is complete, or until no byte came for `timeout`.
std::string http_exchange(int port, const std::string& request,
                          std::chrono::seconds timeout = std::chrono::seconds{5});

/// HTTP GET on 127.0.0.1:port path; "" when it fails.
std::string http_get(int port, const std::string& path);

/// Waits until `ready()` or the timeout; true if ready.
bool wait_until(const std::function<bool()>& ready, std::chrono::milliseconds timeout,
                std::chrono::milliseconds step = std::chrono::milliseconds{100});

} // namespace satoru::testing
