#include "config_json.hpp"

#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/parse_options.hpp>
#include <boost/json/stream_parser.hpp>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <set>

namespace satoru::config_detail {
namespace {

namespace json = boost::json;

json::parse_options config_parse_options() {
  json::parse_options opts;
  opts.allow_comments = true;
  opts.allow_trailing_commas = true;
  return opts;
}

/// Describes the byte at which the parser stopped, because Boost.JSON's own
/// message for most mistakes is just "syntax error".
std::string describe_byte_at(std::string_view text, std::size_t offset) {
  if (offset >= text.size()) return "unexpected end of file";
  unsigned char c = static_cast<unsigned char>(text[offset]);
  char buf[32];
  if (c == '\n' || c == '\r') return "unexpected end of line";
  if (std::isprint(c))
    std::snprintf(buf, sizeof buf, "unexpected '%c'", c);
  else
    std::snprintf(buf, sizeof buf, "unexpected byte 0x%02x", c);
  return buf;
}

std::string syntax_error(std::string_view text, std::size_t offset,
                         const std::string& detail) {
  auto [line, column] = line_column(text, offset);
  return "line " + std::to_string(line) + ", column " + std::to_string(column) +
         ": syntax error (" + detail + ")";
}

/// A basic_parser handler that builds nothing and only remembers keys per
/// object, to find keys given twice. Runs after the real parse succeeded.
class duplicate_key_finder {
public:
  static constexpr std::size_t max_array_size = -1;
  static constexpr std::size_t max_object_size = -1;
  static constexpr std::size_t max_string_size = -1;
  static constexpr std::size_t max_key_size = -1;

  std::vector<std::pair<std::string, std::string>> found;

  bool on_document_begin(json::error_code&) { return true; }
  bool on_document_end(json::error_code&) { return true; }
  bool on_array_begin(json::error_code&) { return push(false); }
  bool on_array_end(std::size_t, json::error_code&) { return pop(); }
  bool on_object_begin(json::error_code&) { return push(true); }
  bool on_object_end(std::size_t, json::error_code&) { return pop(); }
  bool on_string_part(json::string_view, std::size_t, json::error_code&) { return true; }
  bool on_string(json::string_view, std::size_t, json::error_code&) { return scalar(); }
  bool on_key_part(json::string_view s, std::size_t, json::error_code&) {
    key_.append(s.data(), s.size());
    return true;
  }
  bool on_key(json::string_view s, std::size_t, json::error_code&) {
    key_.append(s.data(), s.size());
    frame& top = frames_.back();
    if (!top.keys.insert(key_).second) found.emplace_back(pointer_to(key_), key_);
    top.key = std::move(key_);
    key_.clear();
    return true;
  }
  bool on_number_part(json::string_view, json::error_code&) { return true; }
  bool on_int64(std::int64_t, json::string_view, json::error_code&) { return scalar(); }
  bool on_uint64(std::uint64_t, json::string_view, json::error_code&) { return scalar(); }
  bool on_double(double, json::string_view, json::error_code&) { return scalar(); }
  bool on_bool(bool, json::error_code&) { return scalar(); }
  bool on_null(json::error_code&) { return scalar(); }
  bool on_comment_part(json::string_view, json::error_code&) { return true; }
  bool on_comment(json::string_view, json::error_code&) { return true; }

private:
  struct frame {
    bool is_object = false;
    std::size_t index = 0; ///< arrays: index of the element being parsed
    std::string key;       ///< objects: key of the member being parsed
    std::set<std::string> keys;
  };

  bool push(bool is_object) {
    frames_.push_back(frame{is_object, 0, {}, {}});
    return true;
  }
  bool pop() {
    frames_.pop_back();
    return scalar();
  }
  /// A value ended: the enclosing array moves on to its next index.
  bool scalar() {
    if (!frames_.empty() && !frames_.back().is_object) ++frames_.back().index;
    return true;
  }
  std::string pointer_to(const std::string& key) const {
    std::string pointer;
    for (std::size_t i = 0; i + 1 < frames_.size(); ++i) {
      pointer += '/';
      pointer += frames_[i].is_object ? pointer_escape(frames_[i].key)
                                      : std::to_string(frames_[i].index);
    }
    return pointer + "/" + pointer_escape(key);
  }

  std::vector<frame> frames_;
  std::string key_;
};

} // namespace

std::pair<std::size_t, std::size_t> line_column(std::string_view text,
                                                std::size_t offset) {
  offset = std::min(offset, text.size());
  std::size_t line = 1, column = 1;
  for (std::size_t i = 0; i < offset; ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == '\n') {
      ++line;
      column = 1;
    } else if ((c & 0xC0) != 0x80) { // count code points, not UTF-8 continuation bytes
      ++column;
    }
  }
  return {line, column};
}

parsed_json parse_json(std::string_view text) {
  parsed_json result;
  if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    result.error = "the file is empty (expected a JSON object)";
    return result;
  }
  json::stream_parser parser(json::storage_ptr(), config_parse_options());
  json::error_code ec;
  // write_some (not write) so that the returned count is the offset at which
  // an error was detected.
  std::size_t used = parser.write_some(text.data(), text.size(), ec);
  if (ec) {
    std::string detail = ec.message();
    if (detail == "syntax error") detail = describe_byte_at(text, used);
    result.error = syntax_error(text, used, detail);
    return result;
  }
  if (!parser.done()) {
    parser.finish(ec);
    if (ec) {
      result.error = syntax_error(text, text.size(), ec.message());
      return result;
    }
  } else if (used < text.size()) {
    result.error = syntax_error(text, used, "unexpected text after the JSON value");
    return result;
  }
  result.value = parser.release();

  json::basic_parser<duplicate_key_finder> finder(config_parse_options());
  finder.write_some(false, text.data(), text.size(), ec);
  if (!ec) result.duplicate_keys = std::move(finder.handler().found);
  return result;
}

std::string pointer_escape(std::string_view token) {
  std::string out;
  out.reserve(token.size());
  for (char c : token) {
    if (c == '~')
      out += "~0";
    else if (c == '/')
      out += "~1";
    else
      out += c;
  }
  return out;
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  // Full matrix: keys are short and this runs only for unknown keys.
  std::vector<std::vector<std::size_t>> d(a.size() + 1,
                                          std::vector<std::size_t>(b.size() + 1));
  for (std::size_t i = 0; i <= a.size(); ++i)
    d[i][0] = i;
  for (std::size_t j = 0; j <= b.size(); ++j)
    d[0][j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.size()][b.size()];
}

std::string closest_match(std::string_view word,
                          const std::vector<std::string_view>& candidates) {
  std::string lowered(word);
  for (char& c : lowered)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  // Up to 2 edits for short keys, about a third of the key for long ones:
  // "restic_pasword_file" is a typo, "port" for "user" is not.
  std::size_t limit = std::max<std::size_t>(2, word.size() / 3);
  std::string best;
  std::size_t best_distance = limit + 1;
  for (std::string_view candidate : candidates) {
    std::size_t d = edit_distance(lowered, candidate);
    if (d < best_distance && d < std::max(word.size(), candidate.size())) {
      best_distance = d;
      best = std::string(candidate);
    }
  }
  return best;
}

} // namespace satoru::config_detail
