#include "satoru/text.hpp"

#include <gtest/gtest.h>

using satoru::terminal_safe;

TEST(TerminalSafe, ControlCharactersAreShownEscaped) {
  EXPECT_EQ(terminal_safe("plain name.txt"), "plain name.txt");
  EXPECT_EQ(terminal_safe("\x1b[2J\x1b]0;owned\x07"), "\\x1b[2J\\x1b]0;owned\\x07");
  EXPECT_EQ(terminal_safe("a\nb\rc\td"), "a\\nb\\rc\\td");
  EXPECT_EQ(terminal_safe(std::string("nul\0del\x7f", 8)), "nul\\x00del\\x7f");
  // C1 controls (U+009B is a CSI on terminals that honour 8-bit controls).
  EXPECT_EQ(terminal_safe("\xc2\x9b"
                          "31m"),
            "\\u009b31m");
}

TEST(TerminalSafe, ValidUtf8StaysAndInvalidBytesAreShownAsHex) {
  EXPECT_EQ(terminal_safe("Grüße, 日本, 🙂"), "Grüße, 日本, 🙂");
  EXPECT_EQ(terminal_safe("latin1 \xe9t\xe9"), "latin1 \\xe9t\\xe9");
  EXPECT_EQ(terminal_safe("\xc0\xaf"), "\\xc0\\xaf");          // overlong '/'
  EXPECT_EQ(terminal_safe("\xed\xa0\x80"), "\\xed\\xa0\\x80"); // a surrogate
  EXPECT_EQ(terminal_safe("cut \xe6\x97"), "cut \\xe6\\x97");  // a sequence cut short
  EXPECT_EQ(terminal_safe("\xf4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80"); // past U+10FFFF
}
