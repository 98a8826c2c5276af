#include "satoru/remote_size.hpp"

#include "satoru/text.hpp"
#include "satoru/time.hpp"

#include <fmt/format.h>

#include <charconv>

namespace satoru {

std::string remote_size_script(const std::vector<std::string>& paths) {
  std::string list;
  for (const auto& p : paths)
    list += " " + shell_quote(p);
  // `set --` splits du's "SIZE<tab>PATH" without cut or awk; du -sb still
  // prints the total of what it could read when some subfolder is not.
  // set -f: the path in du's answer is split, never globbed.
  return "set -f; n=0; for p in" + list +
         "; do [ -e \"$p\" ] || continue;"
         " set -- $(du -sb -- \"$p\" 2>/dev/null);"
         " if [ -n \"$1\" ]; then n=$((n + $1)); else"
         " set -- $(du -sk -- \"$p\" 2>/dev/null);"
         " [ -n \"$1\" ] || { echo unknown; exit 0; };"
         " n=$((n + $1 * 1024)); fi; done; echo \"bytes $n\"";
}

check_result remote_size_check(const std::string& what,
                               const expected<exec_result>& answer) {
  check_result c{"remote.size", check_result::level::ok, ""};
  std::string_view out = answer ? std::string_view(answer->out) : std::string_view{};
  std::int64_t bytes = -1;
  if (out.substr(0, 6) == "bytes ") {
    out.remove_prefix(6);
    std::int64_t n = 0;
    auto [end, ec] = std::from_chars(out.data(), out.data() + out.size(), n);
    if (ec == std::errc{} && n >= 0 && (end == out.data() + out.size() || *end == '\n'))
      bytes = n;
  }
  if (bytes >= 0) {
    c.remote_bytes = bytes;
    c.message = fmt::format("{} holds {} on the edge host", what,
                            format_bytes(static_cast<std::uint64_t>(bytes)));
  } else {
    c.message = fmt::format(
        "the size of {} on the edge host is unknown ({}); the staging headroom check "
        "counts only what is staged",
        what,
        !answer ? answer.err().message
                : capped_output(answer->out.empty()
                                    ? "no du on the edge host"
                                    : "du answered \"" +
                                          answer->out.substr(0, answer->out.find('\n')) +
                                          "\"",
                                200));
  }
  return c;
}

check_result probe_remote_size(remote_shell& shell, const std::string& what,
                               const std::vector<std::string>& paths,
                               std::chrono::milliseconds timeout) {
  return remote_size_check(what, shell.exec(remote_size_script(paths), timeout));
}

} // namespace satoru
