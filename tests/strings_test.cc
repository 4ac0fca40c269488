#include "util/strings.h"

#include <gtest/gtest.h>

#include <string>

namespace fhirbulk {
namespace {

TEST(StringsTest, TrimBlanksByDefault) {
  EXPECT_EQ(Trim("  a b\t "), "a b");
  EXPECT_EQ(Trim("\t\t"), "");
  EXPECT_EQ(Trim(""), "");
  EXPECT_EQ(Trim("x"), "x");
  // Only blanks: line ends and other whitespace stay.
  EXPECT_EQ(Trim(" a\r\n"), "a\r\n");
  EXPECT_EQ(Trim("\va\f"), "\va\f");
}

TEST(StringsTest, TrimWhitespaceOrAnySet) {
  EXPECT_EQ(Trim("\r\n\v\f a \t\r\n", kWhitespace), "a");
  EXPECT_EQ(Trim(" \r\n", kWhitespace), "");
  EXPECT_EQ(Trim("xxaxbxx", "x"), "axb");
  EXPECT_EQ(Trim(" a ", ""), " a ");
  // A NUL is an ordinary character.
  EXPECT_EQ(Trim(std::string_view("\0 a \0", 5)), std::string_view("\0 a \0", 5));
}

TEST(StringsTest, TrimReturnsAViewIntoTheInput) {
  const std::string s = "  abc  ";
  std::string_view t = Trim(s);
  EXPECT_EQ(t.data(), s.data() + 2);
  EXPECT_EQ(t.size(), 3u);
}

}  // namespace
}  // namespace fhirbulk
