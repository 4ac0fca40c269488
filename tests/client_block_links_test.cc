// CheckBlockLinks (client/block_links.h): patient blocks across the files of an
// organizeOutputBy export, with the validator's first and last block of each file.

#include "client/block_links.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "client/ndjson_validator.h"

namespace fhirbulk {
namespace client {
namespace {

const char* kBase = "https://h/fhir/$export-files/j/";

BlockFile File(const std::string& name, const std::string& first, const std::string& last,
               const std::string& next = "") {
  BlockFile f;
  f.url = kBase + name + "?sig=1";
  if (!next.empty()) f.continues_in_file = kBase + next + "?sig=2";  // another signature
  f.first_block = first;
  f.last_block = last;
  return f;
}

std::vector<std::string> Messages(const std::vector<BlockLinkIssue>& issues) {
  std::vector<std::string> out;
  out.reserve(issues.size());
  for (const auto& i : issues) out.push_back(std::to_string(i.file) + ": " + i.message);
  return out;
}

TEST(BlockLinksTest, AContinuationThatLinksUpIsFine) {
  EXPECT_TRUE(CheckBlockLinks({File("a", "p1", "p3", "b"), File("b", "p3", "p3", "c"),
                               File("c", "p3", "p5"), File("d", "p6", "p9"), File("e", "", "")})
                  .empty());
}

TEST(BlockLinksTest, TheContinuedFileMustStartWithTheBlock) {
  auto issues = CheckBlockLinks({File("a", "p1", "p3", "b"), File("b", "p4", "p5")});
  ASSERT_EQ(issues.size(), 1u) << ::testing::PrintToString(Messages(issues));
  EXPECT_EQ(issues[0].file, 0u);
  EXPECT_NE(issues[0].message.find("Patient/p3 goes on in a file that starts with the block of "
                                   "Patient/p4"),
            std::string::npos)
      << issues[0].message;
  issues = CheckBlockLinks({File("a", "p1", "p3", "b"), File("b", "", "")});
  ASSERT_EQ(issues.size(), 1u);
  EXPECT_NE(issues[0].message.find("no block header"), std::string::npos);
}

TEST(BlockLinksTest, TheLinkMustNameAnotherFileOfTheManifest) {
  auto issues = CheckBlockLinks({File("a", "p1", "p3", "zzz")});
  ASSERT_EQ(issues.size(), 1u);
  EXPECT_NE(issues[0].message.find("names no output file"), std::string::npos);
  issues = CheckBlockLinks({File("a", "p1", "p3", "a")});
  ASSERT_EQ(issues.size(), 1u);
  EXPECT_NE(issues[0].message.find("the file itself"), std::string::npos);
  issues = CheckBlockLinks(
      {File("a", "p1", "p3", "c"), File("b", "p2", "p3", "c"), File("c", "p3", "p4")});
  ASSERT_EQ(issues.size(), 1u) << ::testing::PrintToString(Messages(issues));
  EXPECT_EQ(issues[0].file, 1u);
  EXPECT_NE(issues[0].message.find("another file continues in already"), std::string::npos);
  issues = CheckBlockLinks({File("a", "", "", "b"), File("b", "p1", "p1")});
  ASSERT_EQ(issues.size(), 1u);
  EXPECT_NE(issues[0].message.find("without patient blocks"), std::string::npos);
}

TEST(BlockLinksTest, ASplitWithoutALinkIsFound) {
  auto issues = CheckBlockLinks({File("a", "p1", "p3"), File("b", "p3", "p5")});
  ASSERT_EQ(issues.size(), 1u) << ::testing::PrintToString(Messages(issues));
  EXPECT_EQ(issues[0].file, 1u);
  EXPECT_NE(issues[0].message.find("Patient/p3 is split across files without continuesInFile"),
            std::string::npos)
      << issues[0].message;
}

TEST(BlockLinksTest, FilesNotDownloadedAreNotJudged) {
  BlockFile b = File("b", "", "");
  b.checked = false;
  EXPECT_TRUE(CheckBlockLinks({File("a", "p1", "p3", "b"), b}).empty());
}

TEST(BlockLinksTest, TheValidatorReportsTheFirstAndLastBlock) {
  auto header = [](const std::string& id) {
    return "{\"resourceType\":\"Parameters\",\"parameter\":[{\"name\":\"header\","
           "\"valueReference\":{\"reference\":\"Patient/" +
           id + "\"}}]}\n";
  };
  NdjsonValidator v("", std::nullopt);
  v.Feed(header("p1") + "{\"resourceType\":\"Patient\",\"id\":\"p1\"}\n" + header("p2") +
         "{\"resourceType\":\"Observation\",\"id\":\"o\"}\n");
  v.Finish();
  EXPECT_EQ(v.error_count(), 0);
  EXPECT_EQ(v.first_block(), "p1");
  EXPECT_EQ(v.last_block(), "p2");
  v.Reset();
  v.Feed("{\"resourceType\":\"Practitioner\",\"id\":\"x\"}\n");
  v.Finish();
  EXPECT_EQ(v.first_block(), "");
  EXPECT_EQ(v.last_block(), "");
}

}  // namespace
}  // namespace client
}  // namespace fhirbulk
