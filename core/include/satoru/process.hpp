#pragma once

#include "satoru/cancel.hpp"
#include "satoru/error.hpp"
#include "satoru/progress.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace satoru {

/// Another user a child runs as (see process_spec::run_as).
struct process_user {
  unsigned uid = 0;
  unsigned gid = 0;
  std::vector<unsigned> groups; ///< supplementary groups (getgrouplist)
  /// Keep the capabilities we have (as ambient ones, so that they survive
  /// exec): the child then creates files as `uid` but may still do what
  /// root could (set any owner, read any file).
  bool keep_capabilities = false;
};

/// The user owning `path` (or, when it does not exist yet, its nearest
/// existing parent), with that user's primary group and supplementary
/// groups from the passwd/group database (the folder's group when the uid
/// has no passwd entry). Nothing when we are not root, or the owner is root.
std::optional<process_user> owner_to_run_as(const std::string& path);

/// In a forked child, before exec: becomes `user` (setgroups, setresgid,
/// setresuid; with keep_capabilities the permitted capabilities are raised
/// as ambient ones). Async-signal-safe; returns 0 or an errno value.
int become_user(const process_user& user);

/// A child process to run. The child gets its own process group so that a
/// timeout or cancel kills it together with whatever it started (ssh under
/// rsync, for example).
struct process_spec {
  std::vector<std::string> argv; ///< argv[0] is looked up in PATH
  /// The child's variables on top of PATH, LANG and HOME (the only ones it
  /// takes from ours): a tool gets what it needs and nothing else, so the
  /// daemon's secrets (restic's password, B2 keys) reach only restic.
  std::vector<std::pair<std::string, std::string>> env;
  /// Pass our whole environment on instead (tests start `satoru` this way).
  bool inherit_environment = false;
  std::string cwd;                      ///< empty = inherit
  std::string stdin_data;               ///< written, then stdin closed
  std::chrono::milliseconds timeout{0}; ///< 0 = no deadline
  /// Kill the child when it makes no progress for this long (0 = off):
  /// with progress_output, when its progress lines stop moving (a tool that
  /// redraws a stalled meter every second is stalled all the same); other
  /// output, and any output without progress_output, counts as progress.
  std::chrono::milliseconds no_progress_timeout{0};
  /// The progress meter the child prints on stdout, parsed into a
  /// progress_meter named progress_step ("pull", "snapshot", "copy").
  progress_format progress_output = progress_format::none;
  std::string progress_step;
  /// With progress_format::written_bytes: the bytes the program has to
  /// write in all (0 = unknown).
  std::uint64_t progress_bytes_total = 0;
  /// Reads the meter's lines instead of parse_progress(progress_output):
  /// for a meter that needs to remember (copy_bytes_estimate).
  std::function<std::optional<progress_sample>(std::string_view)> progress_parser;
  /// Called (on the calling thread) whenever the progress moved.
  std::function<void(const progress&)> on_progress;
  /// Called for each complete line (without the newline), on the calling thread.
  std::function<void(std::string_view)> on_stdout_line;
  std::function<void(std::string_view)> on_stderr_line;
  /// At most this many bytes of stdout/stderr are kept (the tail).
  std::size_t capture_limit = 4 << 20;
  /// Run the program as this user (only root can): switched after fork,
  /// before exec, in the program's own process (the guardian stays ours).
  std::optional<process_user> run_as;
};

struct process_result {
  int exit_code = -1; ///< -1 when killed by a signal
  int term_signal = 0;
  bool timed_out = false;
  bool stalled = false; ///< killed by no_progress_timeout
  bool cancelled = false;
  std::string out;
  std::string err;
  std::chrono::milliseconds duration{0};
  /// The limits that applied (copied from the spec) so describe() can name them.
  std::chrono::milliseconds timeout{0};
  std::chrono::milliseconds no_progress_timeout{0};
  std::string progress_step; ///< the spec's, so that a stall names its step
  progress last_progress;    ///< where the meter stood at the end

  bool ok() const { return exit_code == 0; }
  /// One line explaining how it ended, e.g. "exited with 23: rsync: change_dir ...".
  std::string describe(const std::string& name) const;
};

/// Runs a process to completion (or deadline/cancel). An error only when it
/// could not be started at all (e.g. the program is not installed).
expected<process_result> run_process(const process_spec& spec,
                                     const cancel_token& cancel = {});

/// A child whose stdout the caller reads as it comes, at its own pace (the
/// console streams a `restic dump` to a socket this way: it reads the next
/// chunk only once the last one is sent, so memory stays bounded whatever
/// the file's size). stdin is /dev/null; stderr's first 64 KiB are kept
/// for finish(). The spec's timeouts, progress and callbacks do not apply.
/// Not thread-safe; dropping it kills the child's group and reaps it.
class process_reader {
public:
  ~process_reader();
  process_reader(const process_reader&) = delete;
  process_reader& operator=(const process_reader&) = delete;

  /// The read end of the child's stdout (close-on-exec; the caller may make
  /// it non-blocking). Owned by this object.
  int stdout_fd() const { return out_fd_; }
  /// Ends the call: with `stop`, kills the child's group first (the reader
  /// went away); then closes the pipes, reaps the child and says how it
  /// ended (stderr's start in `err`).
  process_result finish(bool stop = false);

private:
  friend expected<std::unique_ptr<process_reader>> start_process(const process_spec&);
  process_reader(int pid, int out_fd, int err_fd);
  int pid_ = 0;
  int out_fd_ = -1, err_fd_ = -1;
  std::string err_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

/// Starts `spec`'s program for a process_reader; an error when it could not
/// be started at all.
expected<std::unique_ptr<process_reader>> start_process(const process_spec& spec);

/// The first line of `--version`-style output of a tool, or an error if it is
/// missing. Used by preflight for "rsync present, version X". A version is
/// kept per process for the file PATH resolves to (device, inode, size,
/// mtime, ctime): every job's preflight checks that the tools are still
/// there without starting them again (a fork per tool per job is seconds on
/// a loaded server), and a tool replaced or removed is probed again.
expected<std::string> tool_version(const std::string& program,
                                   const std::vector<std::string>& args = {"--version"});

/// Absolute path of `program` found in PATH, or empty.
std::string find_in_path(const std::string& program);

} // namespace satoru
