#include "client/ndjson_validator.h"

#include <gtest/gtest.h>

#include <string>

namespace fhirbulk {
namespace client {
namespace {

const std::string kGood =
    "{\"resourceType\":\"Patient\",\"id\":\"a\",\"name\":[{\"family\":\"Zo\xC3\xAB\"}]}\n"
    "{\"id\":\"b\",\"contained\":[{\"resourceType\":\"Observation\"}],\"resourceType\":\"Patient\"}"
    "\n"
    "{\"resourceType\":\"Patient\",\"id\":\"c\"}\n";

NdjsonValidator Validate(const std::string& data, std::optional<int64_t> count = std::nullopt,
                         const std::string& type = "Patient", size_t chunk = 0) {
  NdjsonValidator v(type, count);
  if (chunk == 0) {
    v.Feed(data);
  } else {
    for (size_t i = 0; i < data.size(); i += chunk) v.Feed(std::string_view(data).substr(i, chunk));
  }
  v.Finish();
  return v;
}

std::string Issues(const NdjsonValidator& v) {
  std::string s;
  for (const auto& i : v.issues()) s += std::to_string(i.line) + ": " + i.message + "\n";
  return s;
}

TEST(ClientNdjsonValidatorTest, GoodFileInAnyChunking) {
  for (size_t chunk : {0, 1, 2, 3, 7, 64}) {
    NdjsonValidator v = Validate(kGood, 3, "Patient", chunk);
    EXPECT_EQ(v.lines(), 3) << chunk;
    EXPECT_EQ(v.good_lines(), 3) << chunk;
    EXPECT_EQ(v.error_count(), 0) << Issues(v);
  }
  // the last line may lack its '\n'; CRLF line ends are whitespace to JSON
  NdjsonValidator v = Validate(kGood.substr(0, kGood.size() - 1), 3);
  EXPECT_EQ(v.good_lines(), 3) << Issues(v);
  v = Validate("{\"resourceType\":\"Patient\"}\r\n{\"resourceType\":\"Patient\"}\r\n", 2);
  EXPECT_EQ(v.good_lines(), 2) << Issues(v);
  EXPECT_EQ(Validate("", 0).error_count(), 0) << "an empty file with count 0";
}

TEST(ClientNdjsonValidatorTest, FindsBadLines) {
  const std::string data =
      "{\"resourceType\":\"Patient\",\"id\":\"1\"}\n"                    // 1 ok
      "{\"resourceType\":\"Patient\",\"id\":\n"                          // 2 cut short
      "\n"                                                               // 3 empty
      "[{\"resourceType\":\"Patient\"}]\n"                               // 4 an array
      "{\"id\":\"5\",\"contained\":[{\"resourceType\":\"Patient\"}]}\n"  // 5 only nested
      "{\"resourceType\":7}\n"                                           // 6 not a string
      "{\"resourceType\":\"Observation\",\"id\":\"7\"}\n"                // 7 another type
      "{\"resourceType\":\"Patient\",\"id\":\"\xC3\x28\"}\n"             // 8 bad UTF-8
      "{\"resourceType\":\"Patient\"} {}\n"                              // 9 two values
      + std::string("{\"resourceType\":\"Patient\"}\0x\n", 29) +         // 10 a NUL byte
      "{\"resourceType\":\"Patient\",\"id\":\"11\"}\n";                  // 11 ok
  NdjsonValidator v = Validate(data, 11);
  EXPECT_EQ(v.lines(), 11);
  EXPECT_EQ(v.good_lines(), 2);
  EXPECT_EQ(v.error_count(), 9) << Issues(v);
  ASSERT_EQ(v.issues().size(), 9u);
  const std::pair<int64_t, const char*> expected[] = {
      {2, "invalid JSON"},
      {3, "empty line"},
      {4, "not a JSON object"},
      {5, "no resourceType"},
      {6, "resourceType is not a string"},
      {7, "resourceType 'Observation' in a file of Patient"},
      {8, "invalid JSON"},
      {9, "invalid JSON"},
      {10, "NUL byte"}};
  for (size_t i = 0; i < 9; ++i) {
    EXPECT_EQ(v.issues()[i].line, expected[i].first);
    EXPECT_NE(v.issues()[i].message.find(expected[i].second), std::string::npos)
        << v.issues()[i].message;
  }
}

TEST(ClientNdjsonValidatorTest, CountsAgainstTheManifest) {
  NdjsonValidator v = Validate(kGood, 4);
  ASSERT_EQ(v.error_count(), 1);
  EXPECT_EQ(v.issues()[0].line, 0);
  EXPECT_EQ(v.issues()[0].message, "3 lines, but the manifest's count is 4");
  EXPECT_EQ(Validate(kGood, 2).error_count(), 1);
  EXPECT_EQ(Validate(kGood).error_count(), 0) << "no count, no check";
}

TEST(ClientNdjsonValidatorTest, KeepsTheFirstIssuesCountsAll) {
  NdjsonValidator v("Patient", std::nullopt, 3);
  for (int i = 0; i < 10; ++i) v.Feed("garbage\n");
  v.Finish();
  EXPECT_EQ(v.error_count(), 10);
  EXPECT_EQ(v.issues().size(), 3u);
  v.Reset();
  v.Feed(kGood);
  v.Finish();
  EXPECT_EQ(v.error_count(), 0);
  EXPECT_EQ(v.lines(), 3);
}

TEST(ClientNdjsonValidatorTest, TalliesOperationOutcomes) {
  const std::string data =
      R"({"resourceType":"OperationOutcome","issue":[{"severity":"warning","code":"not-supported","diagnostics":"_type 'Foo' ignored"}]})"
      "\n"
      R"({"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"processing","details":{"text":"Patient/9 could not be read"}},{"severity":"warning","code":"informational"}]})"
      "\n";
  NdjsonValidator v = Validate(data, 2, "OperationOutcome");
  EXPECT_EQ(v.error_count(), 0) << Issues(v);
  EXPECT_EQ(v.outcome_severities().at("warning"), 2);
  EXPECT_EQ(v.outcome_severities().at("error"), 1);
  ASSERT_EQ(v.outcome_samples().size(), 3u);
  EXPECT_EQ(v.outcome_samples()[0], "warning not-supported: _type 'Foo' ignored");
  EXPECT_EQ(v.outcome_samples()[1], "error processing: Patient/9 could not be read");
}

}  // namespace
}  // namespace client
}  // namespace fhirbulk
