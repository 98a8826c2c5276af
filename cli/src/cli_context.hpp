#pragma once

#include "satoru/config.hpp"
#include "satoru/plugin_host.hpp"
#include "satoru/plugin_loader.hpp"
#include "satoru/progress_display.hpp"
#include "satoru/state_json.hpp"
#include "satoru/store.hpp"
#include "satoru/text.hpp"

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <CLI/CLI.hpp>

#include <functional>
#include <optional>
#include <string>

namespace satoru::cli {

/// Exit codes of the contract (docs/reference.md "Exit codes").
enum exit_code : int { exit_ok = 0, exit_failed = 1, exit_usage = 2, exit_warning = 3 };

/// Options shared by every subcommand.
struct global_options {
  std::string config_path; ///< --config
  bool json = false;       ///< --json on listing commands
  bool verbose = false;
};

/// Thrown by helpers to end a command with an exit code after printing a
/// one-line message; caught in main() only, never crosses a library boundary.
struct exit_request {
  int code;
};

/// Prints "satoru: <message>" to stderr and ends the command with `code`.
[[noreturn]] void fail(int code, const std::string& message);

/// Loads and validates the config; prints every diagnostic and exits 2 when
/// it is invalid.
config load_config_or_exit(const global_options& opts);

/// Opens the state store and upserts the configured sites: only for the
/// commands that queue or run jobs (and the daemon).
store open_store_or_exit(const config& cfg);

/// Opens the state store for reading only (the commands that only look):
/// nothing in the database changes. Empty when no database exists yet.
std::optional<store> open_read_only_or_exit(const config& cfg);

/// The site named `name` or exit 2 with the closest configured names.
const site_config& site_or_exit(const config& cfg, const std::string& name);

/// Prints a JSON value on stdout (pretty enough for humans, one document).
void print_json(const boost::json::value& value);

/// The target modes served by the plugins in plugin_dir.
std::vector<std::string> available_modes(const std::string& plugin_dir);

/// The plugins of the config's plugin_dir; refused ones are reported on stderr.
std::shared_ptr<plugin_registry> plugins_or_exit(const config& cfg);

/// The job with this id (from a command-line argument) or exit 2.
std::int64_t parse_job_id_or_exit(const std::string& text);

/// Prints a job's events as they are written until it ends (finished or
/// interrupted) or an attempt failed and it waits for a retry, with the
/// live progress of its running steps (progress_display); returns the last
/// row read. `quit_early` is polled and stops the follow when true;
/// so do SIGINT and SIGTERM.
job_row follow_job(store& db, std::int64_t job_id, bool json,
                   const std::function<bool()>& quit_early = {});

/// Shows the progress of work this process runs itself, without a job
/// (`restore --to`), the way a followed job's shows (progress_display:
/// redrawn on a terminal, plain lines into a pipe, JSON lines with `json`,
/// job_id 0); of the other events only those about restic's locks are
/// printed, on stderr (a restore waiting for a retention's lock says whose).
/// `label` names the target.
class local_progress final : public event_sink {
public:
  local_progress(bool json, std::string label);
  void emit(const std::string& level, const std::string& step, const std::string& target,
            const std::string& message, const boost::json::object& data) override;
  void progress(const std::string& target, const satoru::progress& now) override;
  void progress_ended(const std::string& target, const satoru::progress& last) override;

private:
  void show(const std::string& target, const satoru::progress& p, bool ended);
  progress_display display_;
};

/// A job event as one line of text (its event_json() with `json`) / printed.
std::string event_line(const event_row& e, bool json);
void print_event(const event_row& e, bool json);

/// Whether a daemon wrote its heartbeat lately (it will run queued jobs).
bool daemon_alive(store& db);

/// Says on stderr that queued jobs wait for a daemon.
void note_no_daemon();

/// Queues a job (or finds the identical queued one; a job with `params` is
/// always new), prints its id and says so when it was already queued.
std::int64_t enqueue_or_exit(store& db, job_type type, std::int64_t site_id,
                             const std::string& what, const std::string& params = {});

/// Queues a job (or finds the identical queued one; a job with `params` is
/// always new), prints its id and, with `wait`, follows it to the end (in
/// this process when no daemon is alive); returns the exit code and, with
/// `job_id`, the job's id.
int queue_job(const config& cfg, store& db, job_type type, std::int64_t site_id,
              const std::string& what, bool wait, bool json,
              const std::string& params = {}, std::int64_t* job_id = nullptr);

/// Exit code of a finished job status (0 success, 3 warning, 1 otherwise:
/// failed, interrupted, cancelled).
int exit_code_of(job_status status);

/// A queued job waiting for its next attempt (next_attempt_at ahead).
bool waits_for_retry(const job_row& job);

/// Prints how a followed job ended ("job 7 success", or for one waiting
/// for a retry when the daemon retries it, or that nothing will when no
/// daemon runs) on stderr and returns the exit code: a job waiting for a
/// retry is 1.
int report_followed(const config& cfg, store& db, const job_row& row);

/// Who asks for a job from this command line: "cli:<user>" (the jobs'
/// requested_by).
std::string cli_requester();

/// "retry 2 of 4 at 2026-11-28T03:04:05Z" for a queued job waiting for its
/// next attempt, "" otherwise.
std::string retry_note(const job_row& job, const config& cfg);

/// Each subcommand registers itself with the app; `run` is set to the
/// function to call when it was chosen.
using command_runner = std::function<int()>;
void add_check_config_command(CLI::App& app, global_options& opts, command_runner& run);
void add_sites_command(CLI::App& app, global_options& opts, command_runner& run);
void add_run_command(CLI::App& app, global_options& opts, command_runner& run);
void add_jobs_command(CLI::App& app, global_options& opts, command_runner& run);
void add_job_command(CLI::App& app, global_options& opts, command_runner& run);
void add_daemon_command(CLI::App& app, global_options& opts, command_runner& run);
void add_trust_command(CLI::App& app, global_options& opts, command_runner& run);
void add_prune_command(CLI::App& app, global_options& opts, command_runner& run);
void add_sync_command(CLI::App& app, global_options& opts, command_runner& run);
void add_check_command(CLI::App& app, global_options& opts, command_runner& run);
void add_drill_command(CLI::App& app, global_options& opts, command_runner& run);
void add_snapshots_command(CLI::App& app, global_options& opts, command_runner& run);
void add_restore_command(CLI::App& app, global_options& opts, command_runner& run);
void add_ls_command(CLI::App& app, global_options& opts, command_runner& run);
void add_diff_command(CLI::App& app, global_options& opts, command_runner& run);
void add_plugins_command(CLI::App& app, global_options& opts, command_runner& run);
void add_web_user_command(CLI::App& app, global_options& opts, command_runner& run);
void add_web_token_command(CLI::App& app, global_options& opts, command_runner& run);
void add_cancel_command(CLI::App& app, global_options& opts, command_runner& run);

} // namespace satoru::cli
