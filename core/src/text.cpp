#include "satoru/text.hpp"

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

} // namespace satoru
