#include "export/manifest.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include "export/export_request.h"

namespace fhirbulk {
namespace {

JobFile File(const std::string& name, const std::string& kind, const std::string& type,
             int64_t count) {
  JobFile f;
  f.file_name = name;
  f.kind = kind;
  f.res_type = type;
  f.resources = count;
  f.bytes = count * 100;
  return f;
}

JobInfo CompletedJob(bool with_since) {
  ExportRequest r;
  r.request_url = "https://ehr.example.org/fhir/$export?_type=Patient,Observation";
  if (with_since) r.since_us = 1700000000000000;
  JobInfo job;
  job.job_id = "9f2c41d0-0000-4000-8000-000000000001";
  job.state = JobState::kCompleted;
  job.request_json = ExportRequestToJson(r);
  job.request_url = r.request_url;
  job.transaction_time_us = 1717521129481000;  // 2024-06-04T17:12:09.481Z
  // Deliberately out of order; unit 10 must sort after unit 2.
  job.files = {File("Patient.10.1.ndjson", "output", "Patient", 3),
               File("Observation.2.2.ndjson", "output", "Observation", 5),
               File("OperationOutcome.12.1.ndjson", "error", "OperationOutcome", 1),
               File("Patient.2.1.ndjson", "output", "Patient", 7),
               File("Bundle.11.1.ndjson", "deleted", "Bundle", 2),
               File("Observation.2.1.ndjson", "output", "Observation", 100)};
  return job;
}

TEST(ManifestTest, FieldsUrlsAndOrder) {
  JobInfo job = CompletedJob(true);
  std::string json = ManifestJson(job, "https://ehr.example.org/fhir/", true);
  rapidjson::Document d;
  d.Parse(json.c_str());
  ASSERT_FALSE(d.HasParseError()) << json;
  EXPECT_STREQ(d["transactionTime"].GetString(), "2024-06-04T17:12:09.481Z");
  EXPECT_STREQ(d["request"].GetString(),
               "https://ehr.example.org/fhir/$export?_type=Patient,Observation");
  EXPECT_TRUE(d["requiresAccessToken"].GetBool());
  const auto& out = d["output"];
  ASSERT_EQ(out.Size(), 4u);
  const char* expected[] = {"Observation.2.1.ndjson", "Observation.2.2.ndjson",
                            "Patient.2.1.ndjson", "Patient.10.1.ndjson"};
  for (int i = 0; i < 4; i++) {
    EXPECT_EQ(std::string(out[i]["url"].GetString()),
              "https://ehr.example.org/fhir/$export-files/" + job.job_id + "/" + expected[i]);
  }
  EXPECT_STREQ(out[0]["type"].GetString(), "Observation");
  EXPECT_EQ(out[0]["count"].GetInt64(), 100);
  ASSERT_TRUE(d.HasMember("deleted"));
  ASSERT_EQ(d["deleted"].Size(), 1u);
  EXPECT_STREQ(d["deleted"][0]["type"].GetString(), "Bundle");
  EXPECT_EQ(d["deleted"][0]["count"].GetInt64(), 2);
  ASSERT_EQ(d["error"].Size(), 1u);
  EXPECT_STREQ(d["error"][0]["type"].GetString(), "OperationOutcome");
}

TEST(ManifestTest, DeletedOnlyWithSinceAndEmptyListsPresent) {
  JobInfo job = CompletedJob(false);
  job.files.clear();
  std::string json = ManifestJson(job, "http://h", false);
  rapidjson::Document d;
  d.Parse(json.c_str());
  ASSERT_FALSE(d.HasParseError());
  EXPECT_FALSE(d.HasMember("deleted"));
  ASSERT_TRUE(d["output"].IsArray());
  EXPECT_EQ(d["output"].Size(), 0u);
  ASSERT_TRUE(d["error"].IsArray());
  EXPECT_EQ(d["error"].Size(), 0u);
  EXPECT_FALSE(d["requiresAccessToken"].GetBool());

  JobInfo with_since = CompletedJob(true);
  with_since.files.clear();
  d.Parse(ManifestJson(with_since, "http://h", false).c_str());
  ASSERT_TRUE(d.HasMember("deleted"));
  EXPECT_EQ(d["deleted"].Size(), 0u);
}

TEST(ManifestTest, ProgressText) {
  JobInfo job;
  job.state = JobState::kAccepted;
  EXPECT_EQ(ProgressText(job), "queued");
  job.state = JobState::kRunning;
  job.units_total = 12;
  job.units_done = 5;
  job.resources_written = 120000;
  EXPECT_EQ(ProgressText(job), "41% (5/12 parts), 120,000 resources");
  job.units_done = 12;  // the last unit's commit also completes the job; never 100% running
  EXPECT_EQ(ProgressText(job).substr(0, 3), "99%");
  job.state = JobState::kCompleted;
  EXPECT_EQ(ProgressText(job), "100%, 120,000 resources");
  job.state = JobState::kRunning;
  job.units_total = 2147483647;
  job.units_done = 2147483646;
  job.resources_written = INT64_MAX;
  EXPECT_LT(ProgressText(job).size(), 100u);
}

}  // namespace
}  // namespace fhirbulk
