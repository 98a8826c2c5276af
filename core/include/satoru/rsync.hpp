#pragma once

/// Helpers for plugins that run the local rsync against an edge host over
/// ssh (directory_rsync, sqlite_dump): the pinned `-e` ssh command, the flags
/// every such transfer shares, the remote source argument, and the parsing of
/// `--stats` and of rsync's error output.

#include "satoru/error.hpp"
#include "satoru/plugin.hpp"
#include "satoru/process.hpp"
#include "satoru/ssh.hpp"

#include <boost/json/object.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace satoru {

/// Quotes one word for rsync's own `-e` parser. That parser is not a shell:
/// it splits on spaces only, knows '…' and "…", and inside a quote a doubled
/// quote character stands for itself (so shell_quote's '\'' idiom would break).
std::string rsync_rsh_quote(std::string_view word);

/// The ssh command line (argv, without host and remote command) that trusts
/// exactly what the site's libssh session trusts: its pinned key and
/// known_hosts, nothing from ~/.ssh/config (the options listed below).
/// Plugins that stream a remote command's output into a local file run it as
/// `ssh_command_args(e) + {"--", e.host, command}`.
/// With endpoint.control, the process rides on the job's master connection
/// (opened at the first call; `-o ControlMaster=no -o ControlPath=SOCKET`),
/// and ssh falls back to its own connection if the socket does not answer.
std::vector<std::string> ssh_command_args(const ssh_endpoint& endpoint);

/// `-o ControlMaster=MASTER -o ControlPath=SOCKET`, the path quoted for ssh.
std::vector<std::string> ssh_control_options(const std::string& socket_path,
                                             std::string_view master);

/// The `-e` value: ssh with the site's pinned key and known_hosts and nothing
/// from ~/.ssh/config, so the rsync data channel trusts exactly what the
/// libssh session trusts:
///   ssh -i KEY -p PORT -l USER -o StrictHostKeyChecking=yes -o BatchMode=yes
///       -o UserKnownHostsFile=KNOWN_HOSTS -o GlobalKnownHostsFile=/dev/null
///       -o IdentitiesOnly=yes -o ConnectTimeout=N -F /dev/null
/// Every path is quoted for rsync's parser and, where ssh reads it as a
/// config value, for ssh's too ('%' tokens, spaces).
std::string rsync_ssh_command(const ssh_endpoint& endpoint);

/// What varies between the rsync transfers of different plugins.
struct rsync_transfer_options {
  bool compress = false;              ///< -z
  std::chrono::seconds io_timeout{0}; ///< --timeout (0 = none)
  std::string temp_dir;               ///< --temp-dir (empty = rsync's default)
  int bwlimit_kbps = 0;               ///< --bwlimit in KiB/s (0 = unlimited)
};

/// The argv every plugin transfer starts with:
///   rsync -e <rsync_ssh_command> -s --stats --info=progress2 [--timeout=N] [-z]
///         [--temp-dir=DIR]
/// -s (--secluded-args) sends the remote path through the rsync protocol
/// instead of the remote shell's command line, so a hostile path is never
/// re-split or expanded by the shell (rsync 3.5's default backslash-escaping
/// breaks on a newline); --stats and --info=progress2 give the numbers we
/// report and the steady output that the no-progress watchdog needs.
std::vector<std::string> rsync_base_args(const ssh_endpoint& endpoint,
                                         const rsync_transfer_options& options);

/// The remote source argument "host:PATH" ("[v6addr]:PATH"). With -s the
/// remote rsync still glob-expands each path component that holds '*', '?'
/// or '[' (honouring backslash escapes there) and takes the others
/// literally, so only such components get '*', '?', '[', ']' and '\\'
/// escaped. `contents` appends a trailing slash (copy what is inside the
/// folder, not the folder itself). Fails for a host that ssh would read as
/// an option, and for a relative path.
expected<std::string> rsync_remote_path(const ssh_endpoint& endpoint,
                                        std::string_view path, bool contents);

/// Environment for rsync children: a C locale so `--stats` numbers have a
/// known format, and no RSYNC_OLD_ARGS / RSYNC_PROTECT_ARGS inherited from
/// the daemon's environment that could undo -s.
std::vector<std::pair<std::string, std::string>> rsync_environment();

/// The numbers of `rsync --stats` (absent lines stay 0).
struct rsync_stats {
  bool parsed = false;             ///< at least one known line was found
  std::uint64_t files = 0;         ///< "Number of files"
  std::uint64_t created_files = 0; ///< "Number of created files"
  std::uint64_t deleted_files = 0; ///< "Number of deleted files"
  std::uint64_t regular_files_transferred = 0;
  std::uint64_t total_file_size = 0;
  std::uint64_t transferred_file_size = 0;
  std::uint64_t literal_data = 0;
  std::uint64_t matched_data = 0;
  std::uint64_t bytes_sent = 0;
  std::uint64_t bytes_received = 0;

  boost::json::object to_json() const;
};

/// Parses the `--stats` block of rsync's stdout. Numbers may carry thousands
/// separators ("1,234,567"); progress lines in between are ignored.
rsync_stats parse_rsync_stats(std::string_view output);

/// What an rsync exit code means, e.g. 23 → "partial transfer due to error".
std::string rsync_exit_meaning(int code);

/// The most useful line of rsync's stderr for an operator: the first line
/// that names the cause (rsync's own "rsync: …" or ssh's complaint) rather
/// than an echo of it ("Broken pipe", "connection unexpectedly closed"); the
/// last line when there is no such line.
std::string rsync_error_summary(std::string_view stderr_text);

/// One-line failure message for an rsync run that did not succeed, naming a
/// stall ("made no progress for N s") whether our watchdog (`stalled`) or
/// rsync's own --timeout (exit 30) caught it.
std::string rsync_failure_message(const process_result& result,
                                  std::chrono::seconds no_progress_timeout);

/// What rsync's sender said about source files it could not copy (exit 23)
/// or that disappeared while it ran (exit 24), gathered line by line from its
/// stderr. The sender names the edge host's full paths.
struct rsync_partial_report {
  std::vector<std::string> unreadable; ///< files and folders it could not open or list
  std::vector<std::string> vanished;   ///< files gone before they were sent
  /// rsync's line when it could not enter the target folder itself
  /// ("change_dir ... failed"): nothing was pulled, so the target fails.
  std::string top_folder_error;

  void add_line(std::string_view line);
  /// "a, b, c and 4 more" for the first `shown` paths of `paths`.
  static std::string first_few(const std::vector<std::string>& paths,
                               std::size_t shown = 3);
};

/// The preflight check "remote.rsync" over the site's session: rsync is
/// installed on the edge host (its version in the message) and new enough
/// for -s (3.0.0).
check_result check_remote_rsync(remote_shell& shell, std::chrono::milliseconds timeout);

/// The --rsync-path of a target with "sudo": the edge rsync runs as root,
/// never asking for a password (-n).
inline constexpr const char* sudo_rsync_path = "sudo -n rsync";

/// What a directory target with "sudo" runs as root, for check_remote_sudo:
/// the arguments of a real pull's "rsync --server --sender ...", which the
/// sudoers line's wildcard must match.
inline constexpr const char* sudo_rsync_probe =
    "rsync --server --sender -logDtpre.iLsfxCIvu . /";

/// "3.2.7" from rsync's first --version line ("rsync  version 3.2.7  protocol
/// version 31"), or "" when it has no such word.
std::string rsync_version_of(std::string_view version_output);

} // namespace satoru
