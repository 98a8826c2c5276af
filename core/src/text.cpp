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

} // namespace satoru
