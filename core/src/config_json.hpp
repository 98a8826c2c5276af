#pragma once

// Private helpers of the config loader: JSON parsing that knows where a
// syntax error is, JSON pointers and "did you mean" hints. Kept apart from
// config.cpp so the loader reads as the list of rules it enforces.

#include <boost/json/value.hpp>

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace satoru::config_detail {

struct parsed_json {
  boost::json::value value;
  /// Empty on success, else e.g. "line 3, column 7: syntax error (unexpected '}')".
  std::string error;
  /// Keys that occur twice in one object: {pointer of the repeated key, key}.
  /// Boost.JSON keeps the last one silently, which hides typos in long files.
  std::vector<std::pair<std::string, std::string>> duplicate_keys;
};

/// Parses JSON with comments and trailing commas allowed.
parsed_json parse_json(std::string_view text);

/// 1-based line and column (in code points) of a byte offset.
std::pair<std::size_t, std::size_t> line_column(std::string_view text,
                                                std::size_t offset);

/// Escapes one reference token of a JSON pointer (RFC 6901: ~ -> ~0, / -> ~1).
std::string pointer_escape(std::string_view token);

/// Optimal string alignment distance: Levenshtein plus adjacent swaps, so
/// that "hots" is one edit away from "host".
std::size_t edit_distance(std::string_view a, std::string_view b);

/// The candidate closest to `word` if it is close enough to be a likely typo,
/// else an empty string.
std::string closest_match(std::string_view word,
                          const std::vector<std::string_view>& candidates);

} // namespace satoru::config_detail
