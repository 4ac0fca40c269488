#include "util/conf_template.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace fhirbulk {
namespace {

TEST(ConfTemplateTest, FindsPlaceholdersNotNamedLocations) {
  auto names = TemplatePlaceholders(
      "listen @LISTEN@;\nerror_page 429 = @fhir_bulk_throttled;\nlocation @BASE_PATH@/x {}\n"
      "a@b.org @ @1A@ @A_1@@B@\n");
  EXPECT_EQ(names, (std::set<std::string>{"A_1", "B", "BASE_PATH", "LISTEN"}));
}

TEST(ConfTemplateTest, RendersEveryOccurrence) {
  auto r = RenderTemplate("listen @L@;\nroot @D@/a @D@/b;\n", {{"L", "443 ssl"}, {"D", "/x"}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, "listen 443 ssl;\nroot /x/a /x/b;\n");
}

TEST(ConfTemplateTest, EmptyValueDropsItsLines) {
  auto r = RenderTemplate("a;\n    ssl_certificate @C@;\n    ssl_certificate_key @K@;\nb;",
                          {{"C", ""}, {"K", ""}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "a;\nb;");
}

TEST(ConfTemplateTest, CommentLinesAreCopiedAndDoNotCount) {
  const char* text = "# replace @L@ and @ONLY_IN_COMMENT@\n  # @C@: the certificate\nlisten @L@;\n";
  EXPECT_EQ(TemplatePlaceholders(text), (std::set<std::string>{"L"}));
  auto r = RenderTemplate(text, {{"L", "443 ssl"}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, "# replace @L@ and @ONLY_IN_COMMENT@\n  # @C@: the certificate\nlisten 443 ssl;\n");
}

TEST(ConfTemplateTest, MissingAndUnusedValuesAreErrors) {
  auto missing = RenderTemplate("@A@ @B@ @C@", {{"B", "x"}});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("no value for A, C"), std::string::npos);
  auto unused = RenderTemplate("@A@", {{"A", "x"}, {"LISTN", "80"}});
  ASSERT_FALSE(unused.ok());
  EXPECT_NE(unused.status().message().find("LISTN"), std::string::npos);
}

TEST(ConfTemplateTest, ValuesCannotAddDirectives) {
  for (const char* bad :
       {"80; include /etc/passwd", "x { }", "a\nb", "#", "\"q\"", "'q'", "a\rb", "a}"}) {
    EXPECT_FALSE(RenderTemplate("listen @L@;", {{"L", bad}}).ok()) << bad;
  }
  EXPECT_TRUE(RenderTemplate("access_log @A@;", {{"A", "/var/log/x.log fhir_bulk"}}).ok());
}

TEST(ConfTemplateTest, ParsesAssignments) {
  std::map<std::string, std::string> v;
  EXPECT_TRUE(ParseTemplateAssignment("BASE_URL=https://h/fhir?a=b", &v).ok());
  EXPECT_EQ(v["BASE_URL"], "https://h/fhir?a=b");
  EXPECT_TRUE(ParseTemplateAssignment("EMPTY=", &v).ok());
  EXPECT_EQ(v["EMPTY"], "");
  EXPECT_FALSE(ParseTemplateAssignment("EMPTY=again", &v).ok());  // twice
  EXPECT_FALSE(ParseTemplateAssignment("lower=x", &v).ok());
  EXPECT_FALSE(ParseTemplateAssignment("NOEQUALS", &v).ok());
  EXPECT_FALSE(ParseTemplateAssignment("=x", &v).ok());
  EXPECT_FALSE(ParseTemplateAssignment("1A=x", &v).ok());
}

}  // namespace
}  // namespace fhirbulk
