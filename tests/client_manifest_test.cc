#include "client/manifest.h"

#include <gtest/gtest.h>

#include "client/http_status.h"

namespace fhirbulk {
namespace client {
namespace {

// The IG's example (spec digest §3.1).
constexpr const char* kExample = R"({"transactionTime":"2024-06-04T17:12:09.481Z",
 "request":"https://ehr.example.org/fhir/Group/cohort-7/$export?_type=Patient",
 "requiresAccessToken":true,
 "output":[{"type":"Patient","url":"https://ehr.example.org/bulk/9f2c41d0/Patient.1.ndjson","count":812},
  {"type":"Observation","url":"https://ehr.example.org/bulk/9f2c41d0/Observation.1.ndjson","count":100000}],
 "deleted":[{"type":"Bundle","url":"https://ehr.example.org/bulk/9f2c41d0/deleted.1.ndjson"}],
 "error":[],
 "extension":{"https://example.org/key":"abc"}})";

std::string With(const std::string& replace, const std::string& by) {
  std::string s = kExample;
  size_t at = s.find(replace);
  EXPECT_NE(at, std::string::npos) << replace;
  return s.replace(at, replace.size(), by);
}

TEST(ClientManifestTest, ReadsTheExample) {
  auto m = ParseManifest(kExample);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->transaction_time, "2024-06-04T17:12:09.481Z");
  EXPECT_EQ(m->request, "https://ehr.example.org/fhir/Group/cohort-7/$export?_type=Patient");
  EXPECT_TRUE(m->requires_access_token);
  ASSERT_EQ(m->output.size(), 2u);
  EXPECT_EQ(m->output[1].type, "Observation");
  EXPECT_EQ(m->output[1].url, "https://ehr.example.org/bulk/9f2c41d0/Observation.1.ndjson");
  EXPECT_EQ(m->output[1].count, 100000);
  ASSERT_EQ(m->deleted.size(), 1u);
  EXPECT_FALSE(m->deleted[0].count.has_value());
  EXPECT_TRUE(m->error.empty());
}

TEST(ClientManifestTest, Lenient) {
  // error missing ([] is only a SHOULD); v4's "outcome"; request missing (v4); count 812.0
  auto m = ParseManifest(
      R"({"transactionTime":"2024-06-04T17:12:09Z","requiresAccessToken":false,
          "output":[{"type":"Patient","url":"http://h/f?sig=1","count":812.0}],
          "outcome":[{"type":"OperationOutcome","url":"http://h/e"}]})");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_FALSE(m->requires_access_token);
  EXPECT_EQ(m->output[0].count, 812);
  EXPECT_EQ(m->output[0].url, "http://h/f?sig=1");
  ASSERT_EQ(m->error.size(), 1u);
  EXPECT_EQ(m->error[0].type, "OperationOutcome");
  EXPECT_TRUE(ParseManifest(With("\"error\":[],", "")).ok());
}

TEST(ClientManifestTest, RefusesWhatItCannotUse) {
  const std::pair<const char*, const char*> broken[] = {
      {"\"transactionTime\":\"2024-06-04T17:12:09.481Z\",", ""},
      {"2024-06-04T17:12:09.481Z", "yesterday"},
      {"\"requiresAccessToken\":true", "\"requiresAccessToken\":\"true\""},
      {"\"output\":[", "\"outputs\":["},
      {"\"count\":812", "\"count\":-1"},
      {"\"count\":812", "\"count\":8.5"},
      {"\"count\":812", "\"count\":\"812\""},
      {"\"type\":\"Patient\",", ""},
      {"https://ehr.example.org/bulk/9f2c41d0/Patient.1.ndjson", "/bulk/9f2c41d0/Patient.1.ndjson"},
      {"https://ehr.example.org/bulk/9f2c41d0/Patient.1.ndjson", "ftp://h/Patient.1.ndjson"},
      {"[{\"type\":\"Bundle\",\"url\":\"https://ehr.example.org/bulk/9f2c41d0/deleted.1.ndjson\"}]",
       "{}"},
      {"\"error\":[]", "\"error\":{}"},
  };
  for (const auto& [from, to] : broken) {
    auto m = ParseManifest(With(from, to));
    EXPECT_FALSE(m.ok()) << from << " -> " << to;
    if (!m.ok()) {
      EXPECT_EQ(m.status().code(), Status::Code::kCorruption);
    }
  }
  EXPECT_FALSE(ParseManifest("[]").ok());
  EXPECT_FALSE(ParseManifest("").ok());
}

TEST(ClientManifestTest, OperationOutcomes) {
  const std::string oo =
      R"({"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"not-supported",
          "diagnostics":"_type 'Foo' not exportable"},{"severity":"information","code":"informational"}]})";
  EXPECT_EQ(OutcomeText(oo),
            "error not-supported: _type 'Foo' not exportable; information informational");
  EXPECT_EQ(OutcomeText("Bad Gateway"), "Bad Gateway");
  EXPECT_EQ(OutcomeText("<html><body>502</body></html>"), "");
  EXPECT_FALSE(IsTransientOutcome(oo));
  EXPECT_TRUE(IsTransientOutcome(
      R"({"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"transient"},
          {"severity":"information","code":"informational"}]})"));
  EXPECT_TRUE(IsTransientOutcome(
      R"({"resourceType":"OperationOutcome","issue":[{"severity":"fatal","code":"timeout"}]})"));
  EXPECT_FALSE(IsTransientOutcome(
      R"({"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"transient"},
          {"severity":"error","code":"processing"}]})"));
  EXPECT_FALSE(IsTransientOutcome(R"({"resourceType":"OperationOutcome","issue":[]})"));
  EXPECT_FALSE(IsTransientOutcome("not json"));

  EXPECT_EQ(HttpStatusToStatus(401, "x", "").code(), Status::Code::kUnauthenticated);
  EXPECT_EQ(HttpStatusToStatus(403, "x", "").code(), Status::Code::kPermissionDenied);
  EXPECT_EQ(HttpStatusToStatus(410, "x", "").code(), Status::Code::kNotFound);
  EXPECT_EQ(HttpStatusToStatus(503, "x", "").code(), Status::Code::kUnavailable);
  EXPECT_EQ(HttpStatusToStatus(400, "kick-off", oo).message(),
            "kick-off: HTTP 400 (error not-supported: _type 'Foo' not exportable; information "
            "informational)");
}

}  // namespace
}  // namespace client
}  // namespace fhirbulk
