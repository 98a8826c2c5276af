#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace satoru {

/// How much of a remote or child program's output a job event, a job error
/// or a site's health reason keeps: the end, where the cause usually is.
inline constexpr std::size_t output_cap_bytes = 4096;

/// `text` when it fits in `limit` bytes; otherwise its last `limit` bytes
/// after a note that says how much was cut, so that a tool printing megabytes
/// (a chatty login shell, a failing loop) cannot flood the database.
std::string capped_output(std::string_view text, std::size_t limit = output_cap_bytes);

/// `text` without leading and trailing white space.
std::string_view trim(std::string_view text);

/// Whether `text` begins with `prefix` (C++20's starts_with, for C++17).
inline bool starts_with(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

/// The last line of `text` that is not blank, trimmed: where a failing tool
/// (sudo, sqlite3, a shell) says why.
std::string last_line(std::string_view text);

/// `text` made safe to print on a terminal, for names and messages that an
/// edge host or a remote program controls (file names, stderr): control
/// characters shown as `\n`, `\r`, `\t` or `\xNN` (ESC is `\x1b`), C1
/// controls as `\u0080`…`\u009f`, and bytes that are not valid UTF-8 as
/// `\xNN`; everything else, other scripts included, as it is. For display
/// only (JSON output escapes by itself).
std::string terminal_safe(std::string_view text);

} // namespace satoru
