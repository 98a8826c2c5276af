#include "satoru/text.hpp"

#include <cctype>

namespace satoru {

std::string capped_output(std::string_view text, std::size_t limit) {
  if (text.size() <= limit) return std::string(text);
  std::size_t begin = text.size() - limit;
  // Do not start in the middle of a UTF-8 sequence.
  while (begin < text.size() && (static_cast<unsigned char>(text[begin]) & 0xC0) == 0x80)
    ++begin;
  return "[cut: the first " + std::to_string(begin) + " of " +
         std::to_string(text.size()) + " bytes are not shown] " +
         std::string(text.substr(begin));
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front())))
    text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())))
    text.remove_suffix(1);
  return text;
}

std::string last_line(std::string_view text) {
  text = trim(text);
  auto newline = text.find_last_of('\n');
  return std::string(
      trim(newline == std::string_view::npos ? text : text.substr(newline + 1)));
}

namespace {

/// The length of the valid UTF-8 sequence at the start of `text` (with its
/// code point in `cp`), or 0 when it is not one: overlong forms, surrogates
/// and values past U+10FFFF are not.
std::size_t utf8_sequence(std::string_view text, char32_t& cp) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = byte(0);
  std::size_t n = lead >= 0xF0 && lead <= 0xF4   ? 4
                  : lead >= 0xE0 && lead <= 0xEF ? 3
                  : lead >= 0xC2 && lead <= 0xDF ? 2
                                                 : 0;
  if (n == 0 || text.size() < n) return 0;
  cp = lead & (0x7F >> n);
  for (std::size_t i = 1; i < n; ++i) {
    if ((byte(i) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i) & 0x3F);
  }
  const char32_t least[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < least[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

} // namespace

std::string terminal_safe(std::string_view text) {
  static const char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(text.size());
  const auto escaped = [&](const char* prefix, unsigned value) {
    out += prefix;
    out += hex[(value >> 4) & 0xF];
    out += hex[value & 0xF];
  };
  for (std::size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7F) {
      out += static_cast<char>(c);
      ++i;
      continue;
    }
    if (c < 0x80) {
      if (c == '\n')
        out += "\\n";
      else if (c == '\r')
        out += "\\r";
      else if (c == '\t')
        out += "\\t";
      else
        escaped("\\x", c); // ESC, BEL, DEL, ...
      ++i;
      continue;
    }
    char32_t cp = 0;
    const std::size_t n = utf8_sequence(text.substr(i), cp);
    if (n == 0) {
      escaped("\\x", c);
      ++i;
    } else if (cp <= 0x9F) {
      escaped("\\u00", static_cast<unsigned>(cp));
      i += n;
    } else {
      out.append(text.substr(i, n));
      i += n;
    }
  }
  return out;
}

} // namespace satoru
