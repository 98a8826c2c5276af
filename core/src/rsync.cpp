#include "satoru/rsync.hpp"

#include "satoru/ssh_control.hpp"
#include "satoru/text.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>

namespace satoru {

namespace {

/// Quotes a value that ssh parses as a config option (-o Key=VALUE): ssh
/// splits such values on whitespace (UserKnownHostsFile takes a list) unless
/// they are in double quotes, where '\\' escapes; '%' starts a token.
std::string ssh_config_value(std::string_view value) {
  std::string out = "\"";
  for (char c : value) {
    if (c == '"' || c == '\\') out.push_back('\\');
    if (c == '%') out.push_back('%');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

/// The first number after "Label:", ignoring thousands separators.
std::uint64_t number_after_colon(std::string_view line) {
  auto colon = line.find(':');
  if (colon == std::string_view::npos) return 0;
  std::uint64_t value = 0;
  bool any = false;
  for (std::size_t i = colon + 1; i < line.size(); ++i) {
    char c = line[i];
    if (c >= '0' && c <= '9') {
      value = value * 10 + static_cast<std::uint64_t>(c - '0');
      any = true;
    } else if (any && (c == ',' || c == '.' || c == '\'')) {
      // thousands separator (',' in the C locale; '.' or '\'' in others)
      if (i + 1 < line.size() && line[i + 1] >= '0' && line[i + 1] <= '9') continue;
      break;
    } else if (any) {
      break;
    } else if (c != ' ' && c != '\t') {
      break;
    }
  }
  return value;
}

/// Splits on '\n' and '\r' (progress lines are redrawn with '\r').
template <class F> void for_each_line(std::string_view text, F&& f) {
  std::size_t begin = 0;
  while (begin <= text.size()) {
    auto end = text.find_first_of("\r\n", begin);
    if (end == std::string_view::npos) end = text.size();
    f(text.substr(begin, end - begin));
    begin = end + 1;
  }
}

/// Lines that only echo the real cause (the pipe broke because the other
/// side already failed) and so make poor error messages.
bool is_consequence_line(std::string_view line) {
  return line.find("Broken pipe") != std::string_view::npos ||
         line.find("connection unexpectedly closed") != std::string_view::npos ||
         line.find("error in rsync protocol data stream") != std::string_view::npos;
}

/// Drops rsync's "at main.c(1956) [Receiver=3.5.0]" source location.
std::string without_location(std::string_view line) {
  auto at = line.rfind(" at ");
  if (at != std::string_view::npos && line.find(".c(", at) != std::string_view::npos)
    line = line.substr(0, at);
  return std::string(trim(line));
}

} // namespace

std::string rsync_rsh_quote(std::string_view word) {
  std::string out = "'";
  for (char c : word) {
    if (c == '\'') out.push_back('\'');
    out.push_back(c);
  }
  out.push_back('\'');
  return out;
}

std::vector<std::string> ssh_command_args(const ssh_endpoint& endpoint) {
  std::vector<std::string> args{"ssh"};
  // ssh checks -i's file under its literal name but later expands '%'
  // tokens in it; a path with '%' therefore goes through IdentityFile, where
  // "%%" stands for '%'.
  if (endpoint.identity_file.find('%') == std::string::npos) {
    args.insert(args.end(), {"-i", endpoint.identity_file});
  } else {
    args.insert(args.end(),
                {"-o", "IdentityFile=" + ssh_config_value(endpoint.identity_file)});
  }
  args.insert(args.end(), {"-p", std::to_string(endpoint.port)});
  // -l rather than user@host: a user name can contain '@'.
  if (!endpoint.user.empty()) args.insert(args.end(), {"-l", endpoint.user});
  args.insert(
      args.end(),
      {"-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o",
       "UserKnownHostsFile=" + ssh_config_value(endpoint.known_hosts_file.empty()
                                                    ? std::string("/dev/null")
                                                    : endpoint.known_hosts_file),
       "-o", "GlobalKnownHostsFile=/dev/null", "-o", "IdentitiesOnly=yes", "-o",
       "ConnectTimeout=" + std::to_string(std::max(1, endpoint.connect_timeout_seconds)),
       "-F", "/dev/null"});
  if (endpoint.control)
    if (auto socket = endpoint.control->socket_for(endpoint); !socket.empty())
      for (auto& word : ssh_control_options(socket, "no"))
        args.push_back(std::move(word));
  return args;
}

std::vector<std::string> ssh_control_options(const std::string& socket_path,
                                             std::string_view master) {
  return {"-o", "ControlMaster=" + std::string(master), "-o",
          "ControlPath=" + ssh_config_value(socket_path)};
}

std::string rsync_ssh_command(const ssh_endpoint& endpoint) {
  std::string cmd;
  for (const auto& word : ssh_command_args(endpoint)) {
    if (!cmd.empty()) cmd.push_back(' ');
    // "ssh" itself needs no quoting; every other word goes through rsync's parser.
    cmd += cmd.empty() ? word : rsync_rsh_quote(word);
  }
  return cmd;
}

std::vector<std::string> rsync_base_args(const ssh_endpoint& endpoint,
                                         const rsync_transfer_options& options) {
  std::vector<std::string> args{"rsync", "-e",      rsync_ssh_command(endpoint),
                                "-s",    "--stats", "--info=progress2"};
  if (options.io_timeout.count() > 0)
    args.push_back("--timeout=" + std::to_string(options.io_timeout.count()));
  if (options.compress) args.push_back("-z");
  if (!options.temp_dir.empty()) args.push_back("--temp-dir=" + options.temp_dir);
  // --bwlimit: leave room on a slow uplink for the site's own traffic.
  if (options.bwlimit_kbps > 0)
    args.push_back("--bwlimit=" + std::to_string(options.bwlimit_kbps));
  return args;
}

expected<std::string> rsync_remote_path(const ssh_endpoint& endpoint,
                                        std::string_view path, bool contents) {
  const std::string& host = endpoint.host;
  if (host.empty()) return error{errc::invalid_argument, "rsync: no host given"};
  if (host.front() == '-' || host.find_first_of(" \t\r\n/") != std::string::npos)
    return error{errc::invalid_argument, "rsync: invalid host name \"" + host + "\""};
  if (path.empty() || path.front() != '/')
    return error{errc::invalid_argument,
                 "rsync: remote path must be absolute: " + std::string(path)};
  std::string out = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  out.push_back(':');
  // The remote rsync globs each path component that holds a wildcard
  // character (and then honours backslash escapes in it) and copies the
  // others literally, backslashes included: escape only where it globs.
  std::size_t begin = 0;
  while (begin <= path.size()) {
    auto end = path.find('/', begin);
    if (end == std::string_view::npos) end = path.size();
    auto part = path.substr(begin, end - begin);
    const bool globbed = part.find_first_of("*?[") != std::string_view::npos;
    for (char c : part) {
      if (globbed && (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\'))
        out.push_back('\\');
      out.push_back(c);
    }
    if (end < path.size()) out.push_back('/');
    begin = end + 1;
  }
  if (contents && out.back() != '/') out.push_back('/');
  return out;
}

std::vector<std::pair<std::string, std::string>> rsync_environment() {
  return {{"LC_ALL", "C"}, {"RSYNC_OLD_ARGS", "0"}, {"RSYNC_PROTECT_ARGS", "1"}};
}

boost::json::object rsync_stats::to_json() const {
  return {{"files", files},
          {"created_files", created_files},
          {"deleted_files", deleted_files},
          {"regular_files_transferred", regular_files_transferred},
          {"total_file_size", total_file_size},
          {"transferred_file_size", transferred_file_size},
          {"literal_data", literal_data},
          {"matched_data", matched_data},
          {"bytes_sent", bytes_sent},
          {"bytes_received", bytes_received}};
}

rsync_stats parse_rsync_stats(std::string_view output) {
  rsync_stats stats;
  struct field {
    std::string_view label;
    std::uint64_t rsync_stats::*member;
  };
  static const field fields[] = {
      {"Number of files:", &rsync_stats::files},
      {"Number of created files:", &rsync_stats::created_files},
      {"Number of deleted files:", &rsync_stats::deleted_files},
      {"Number of regular files transferred:", &rsync_stats::regular_files_transferred},
      {"Total file size:", &rsync_stats::total_file_size},
      {"Total transferred file size:", &rsync_stats::transferred_file_size},
      {"Literal data:", &rsync_stats::literal_data},
      {"Matched data:", &rsync_stats::matched_data},
      {"Total bytes sent:", &rsync_stats::bytes_sent},
      {"Total bytes received:", &rsync_stats::bytes_received},
  };
  for_each_line(output, [&](std::string_view raw) {
    auto line = trim(raw);
    for (const auto& f : fields)
      if (starts_with(line, f.label)) {
        stats.*(f.member) = number_after_colon(line);
        stats.parsed = true;
        break;
      }
  });
  return stats;
}

std::string rsync_exit_meaning(int code) {
  switch (code) {
  case 0:
    return "success";
  case 1:
    return "syntax or usage error";
  case 2:
    return "protocol incompatibility";
  case 3:
    return "errors selecting input/output files or folders";
  case 4:
    return "requested action not supported";
  case 5:
    return "error starting the client-server protocol";
  case 10:
    return "error in socket I/O";
  case 11:
    return "error in file I/O";
  case 12:
    return "error in the rsync protocol data stream";
  case 13:
    return "errors with program diagnostics";
  case 14:
    return "error in IPC code";
  case 20:
    return "received SIGUSR1 or SIGINT";
  case 21:
    return "waitpid() failed";
  case 22:
    return "cannot allocate memory";
  case 23:
    return "partial transfer due to error";
  case 24:
    return "some source files vanished during the transfer";
  case 25:
    return "the --max-delete limit stopped deletions";
  case 30:
    return "timeout in data send/receive";
  case 35:
    return "timeout waiting for a daemon connection";
  case 255:
    return "ssh failed";
  default:
    return "exit code " + std::to_string(code);
  }
}

std::string rsync_error_summary(std::string_view stderr_text) {
  std::string cause, fallback_cause, last;
  bool host_key_failed = false;
  for_each_line(stderr_text, [&](std::string_view raw) {
    auto line = trim(raw);
    // ssh frames its host key warning in '@' lines; keep the words.
    while (!line.empty() && line.front() == '@')
      line = trim(line.substr(1));
    while (!line.empty() && line.back() == '@')
      line = trim(line.substr(0, line.size() - 1));
    if (line.empty()) return;
    if (line == "Host key verification failed.") host_key_failed = true;
    last = without_location(line);
    if (starts_with(line, "rsync error:")) return; // the summary, kept as `last`
    if (is_consequence_line(line)) {
      if (fallback_cause.empty()) fallback_cause = std::string(line);
      return;
    }
    if (cause.empty()) cause = std::string(line);
  });
  if (cause.empty()) cause = fallback_cause;
  // The exit code's meaning already says what the "rsync error:" summary
  // says; the cause line is the part only stderr knows.
  std::string text = cause.empty() ? last : cause;
  if (host_key_failed && text != "Host key verification failed.")
    text += " (Host key verification failed.)";
  constexpr std::size_t max_len = 600; // one readable line, not a dump
  if (text.size() > max_len) text = text.substr(0, max_len) + "...";
  return text;
}

std::string rsync_failure_message(const process_result& result,
                                  std::chrono::seconds no_progress_timeout) {
  if (result.cancelled) return "rsync was cancelled";
  if (result.timed_out) return result.describe("rsync") + " (the target's deadline)";
  if (result.stalled || result.exit_code == 30) {
    std::string text = "transfer stalled: rsync made no progress for " +
                       std::to_string(no_progress_timeout.count()) + " s and was stopped";
    if (!result.stalled) {
      auto summary = rsync_error_summary(result.err);
      if (!summary.empty()) text += " (" + summary + ")";
    }
    return text;
  }
  if (result.term_signal != 0) return result.describe("rsync");
  std::string text = "rsync failed with exit code " + std::to_string(result.exit_code) +
                     " (" + rsync_exit_meaning(result.exit_code) + ")";
  auto summary = rsync_error_summary(result.err);
  if (!summary.empty()) text += ": " + summary;
  return text;
}

namespace {

/// The text between the first and the last '"' of a line ("" when none):
/// rsync quotes the path it names, which may itself hold quotes.
std::string quoted_path(std::string_view line) {
  auto first = line.find('"');
  auto last = line.rfind('"');
  if (first == std::string_view::npos || last <= first) return {};
  return std::string(line.substr(first + 1, last - first - 1));
}

} // namespace

void rsync_partial_report::add_line(std::string_view raw) {
  auto line = trim(raw);
  if (auto at = line.find("file has vanished: "); at != std::string_view::npos) {
    if (auto path = quoted_path(line.substr(at)); !path.empty())
      vanished.push_back(std::move(path));
    return;
  }
  // Only the sender's complaints are about the source; the receiver's
  // ("failed to set times") are about staging and stay failures.
  if (!starts_with(line, "rsync: [sender] ") ||
      line.find(" failed") == std::string_view::npos)
    return;
  if (line.find("change_dir \"") != std::string_view::npos) {
    if (top_folder_error.empty()) top_folder_error = without_location(line);
    return;
  }
  if (auto path = quoted_path(line); !path.empty()) unreadable.push_back(std::move(path));
}

std::string rsync_partial_report::first_few(const std::vector<std::string>& paths,
                                            std::size_t shown) {
  std::string text;
  for (std::size_t i = 0; i < paths.size() && i < shown; ++i)
    text += (i == 0 ? "" : ", ") + paths[i];
  if (paths.size() > shown)
    text += " and " + std::to_string(paths.size() - shown) + " more";
  return text;
}

std::string rsync_version_of(std::string_view version_output) {
  auto line = version_output.substr(0, version_output.find('\n'));
  auto at = line.find("version ");
  if (at == std::string_view::npos) return {};
  auto rest = trim(line.substr(at + 8));
  auto end = rest.find_first_of(" \t");
  return std::string(rest.substr(0, end));
}

check_result check_remote_rsync(remote_shell& shell, std::chrono::milliseconds timeout) {
  check_result check{"remote.rsync", check_result::level::fail, ""};
  // `command -v` is a shell builtin: a missing rsync is told apart from a
  // broken one by its exit status alone, in any POSIX shell.
  auto run = shell.exec(
      "command -v rsync >/dev/null 2>&1 || exit 127; rsync --version </dev/null",
      timeout);
  if (!run) {
    check.message = "cannot look for rsync on the edge host: " + run.err().message;
    return check;
  }
  if (run->exit_status == 127) {
    check.message = "rsync is not installed on the edge host (not found in the remote "
                    "user's PATH); install it there (Debian: apt-get install rsync)";
    return check;
  }
  std::string version = rsync_version_of(run->out);
  if (run->exit_status != 0 || version.empty()) {
    auto why = std::string(trim(run->err.empty() ? run->out : run->err));
    check.message = "rsync on the edge host does not work (rsync --version exited with " +
                    std::to_string(run->exit_status) + (why.empty() ? ")" : "): " + why);
    return check;
  }
  int major = std::atoi(version.c_str());
  if (major < 3) {
    check.message = "rsync " + version +
                    " on the edge host is too old: satoru needs 3.0.0 or newer (-s)";
    return check;
  }
  check.status = check_result::level::ok;
  check.message = "rsync " + version + " present on the edge host";
  return check;
}

} // namespace satoru
