// Paged and partial manifests (export/manifest_pages.h, sql/0010_manifest_pages.sql): files
// are numbered in commit order by the trigger, a page is recorded the first time it is asked
// for and then lists the same files whatever is added later, `error` is on every page, and a
// running job's first page waits for its error unit. The pure helpers without the database.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "export/manifest.h"
#include "export/manifest_pages.h"
#include "test_db.h"

namespace fhirbulk {
namespace {

TEST(ManifestPagesTest, ParsesThePageQuery) {
  EXPECT_EQ(*ParseManifestPageQuery(""), 1);
  EXPECT_EQ(*ParseManifestPageQuery("page=1"), 1);
  EXPECT_EQ(*ParseManifestPageQuery("page=17"), 17);
  EXPECT_EQ(*ParseManifestPageQuery("x=1&page=3"), 3);
  for (const char* bad : {"page=", "page=0", "page=-1", "page=abc", "page=1e3", "page=99999999",
                          "page=2000000", "page=%31"}) {
    EXPECT_FALSE(ParseManifestPageQuery(bad).ok()) << bad;
  }
}

TEST(ManifestPagesTest, NextPageBound) {
  EXPECT_EQ(NextPageBound({}, 3), 0);
  EXPECT_EQ(NextPageBound({4, 5}, 3), 5);
  EXPECT_EQ(NextPageBound({4, 5, 9, 10}, 3), 9);
  EXPECT_EQ(NextPageBound({4}, 1), 4);
}

TEST(ManifestPagesTest, ManifestLinksTheNextPage) {
  JobInfo job;
  job.job_id = "0b0e9f6c-0000-4000-8000-000000000001";
  job.request_url = "http://h/fhir/$export";
  job.request_json = "{}";
  std::string m = ManifestJson(job, "http://h/fhir", true, {}, "http://h/fhir/s?page=2");
  EXPECT_NE(m.find("\"link\":[{\"relation\":\"next\",\"url\":\"http://h/fhir/s?page=2\"}]"),
            std::string::npos)
      << m;
  EXPECT_EQ(ManifestJson(job, "http://h/fhir", true).find("link"), std::string::npos);
}

class ManifestPagesDbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    FHIRBULK_REQUIRE_TEST_DB();
    Status s = schema_.Enter("manifest_pages_test");
    ASSERT_TRUE(s.ok()) << s.ToString();
    conn_ = ConnectTestDb();
    ASSERT_NE(conn_, nullptr);
    ExportRequest r;
    r.level = ExportLevel::kSystem;
    r.request_url = "http://fhir.test/fhir/$export";
    r.allow_partial_manifests = true;
    auto job = CreateJob(conn_.get(), "client-p", r, CreateJobOptions());
    ASSERT_TRUE(job.ok()) << job.status().ToString();
    job_ = *job;
    Exec("UPDATE export_job SET state = 'running', units_total = 10 WHERE job_id = $1::uuid");
  }
  void TearDown() override {
    conn_.reset();
    schema_.Leave();
  }

  void Exec(const std::string& sql) {
    auto r = conn_->Exec(sql, {job_.job_id});
    ASSERT_TRUE(r.ok()) << r.status().ToString() << ": " << sql;
  }
  // A unit's files, as the worker records them (one transaction).
  void AddFiles(int unit, const std::string& type, int n, const std::string& kind = "output") {
    for (int seq = 1; seq <= n; seq++) {
      Exec(
          "INSERT INTO export_file (job_id, file_name, kind, res_type, unit_no, seq, resources, "
          "bytes) VALUES ($1::uuid, '" +
          type + "." + std::to_string(unit) + "." + std::to_string(seq) + ".ndjson', '" + kind +
          "', '" + type + "', " + std::to_string(unit) + ", " + std::to_string(seq) + ", 1, 10)");
    }
  }
  std::vector<std::string> Names(const ManifestPage& p, const std::string& kind = "output") {
    std::vector<std::string> out;
    for (const JobFile& f : p.files) {
      if (f.kind == kind) out.push_back(f.file_name);
    }
    return out;
  }
  ManifestPage Page(int n) {
    auto p = GetManifestPage(conn_.get(), job_, n, 2);
    EXPECT_TRUE(p.ok()) << p.status().ToString();
    return p.ok() ? *p : ManifestPage();
  }

  TestSchema schema_;
  std::unique_ptr<PgConnection> conn_;
  JobInfo job_;
};

TEST_F(ManifestPagesDbTest, PagesNeverChange) {
  ManifestPage p1 = Page(1);
  EXPECT_FALSE(p1.available) << "a running job without files has no page yet";
  EXPECT_EQ(GetManifestPage(conn_.get(), job_, 2, 2).status().code(), Status::Code::kNotFound);

  AddFiles(7, "Observation", 1);
  p1 = Page(1);
  ASSERT_TRUE(p1.available);
  EXPECT_EQ(Names(p1), (std::vector<std::string>{"Observation.7.1.ndjson"}));
  EXPECT_FALSE(p1.has_next);

  AddFiles(3, "Condition", 3);  // a later commit, a lower unit number
  p1 = Page(1);
  EXPECT_EQ(Names(p1), (std::vector<std::string>{"Observation.7.1.ndjson"}))
      << "page 1 keeps the one file it was returned with";
  EXPECT_TRUE(p1.has_next) << "and gains a link";
  ManifestPage p2 = Page(2);
  EXPECT_EQ(Names(p2), (std::vector<std::string>{"Condition.3.1.ndjson", "Condition.3.2.ndjson"}));
  EXPECT_TRUE(p2.has_next);
  ManifestPage p3 = Page(3);
  EXPECT_EQ(Names(p3), (std::vector<std::string>{"Condition.3.3.ndjson"}));
  EXPECT_FALSE(p3.has_next);
  AddFiles(9, "Encounter", 2);
  EXPECT_EQ(Names(Page(3)), (std::vector<std::string>{"Condition.3.3.ndjson"}));
  EXPECT_TRUE(Page(3).has_next);
  EXPECT_EQ(Names(Page(2)), Names(p2));

  // Completed: the rest is paged; beyond the last page, NotFound.
  Exec("UPDATE export_job SET state = 'completed' WHERE job_id = $1::uuid");
  EXPECT_EQ(Names(Page(4)),
            (std::vector<std::string>{"Encounter.9.1.ndjson", "Encounter.9.2.ndjson"}));
  EXPECT_FALSE(Page(4).has_next);
  EXPECT_EQ(GetManifestPage(conn_.get(), job_, 5, 2).status().code(), Status::Code::kNotFound);
  EXPECT_EQ(GetManifestPage(conn_.get(), job_, 7, 2).status().code(), Status::Code::kNotFound);
}

TEST_F(ManifestPagesDbTest, ErrorFilesOnEveryPageAndTheFirstPageWaitsForThem) {
  Exec("INSERT INTO export_unit (job_id, unit_no, kind) VALUES ($1::uuid, 1, 'error')");
  AddFiles(2, "Patient", 3);
  EXPECT_FALSE(Page(1).available) << "the error unit is not done: `error` is not final";
  Exec("UPDATE export_unit SET state = 'done' WHERE job_id = $1::uuid");
  AddFiles(1, "OperationOutcome", 1, "error");
  ManifestPage p1 = Page(1);
  ASSERT_TRUE(p1.available);
  EXPECT_EQ(Names(p1), (std::vector<std::string>{"Patient.2.1.ndjson", "Patient.2.2.ndjson"}));
  EXPECT_EQ(Names(p1, "error"), (std::vector<std::string>{"OperationOutcome.1.1.ndjson"}));
  ManifestPage p2 = Page(2);
  EXPECT_EQ(Names(p2), (std::vector<std::string>{"Patient.2.3.ndjson"}));
  EXPECT_EQ(Names(p2, "error"), Names(p1, "error"));
}

TEST_F(ManifestPagesDbTest, CompletedWithoutFilesHasOneEmptyPage) {
  Exec("UPDATE export_job SET state = 'completed' WHERE job_id = $1::uuid");
  ManifestPage p1 = Page(1);
  EXPECT_TRUE(p1.available);
  EXPECT_TRUE(p1.files.empty());
  EXPECT_FALSE(p1.has_next);
  EXPECT_EQ(GetManifestPage(conn_.get(), job_, 2, 2).status().code(), Status::Code::kNotFound);
}

// A page poll reads rows in proportion to its page, not to the job's files: counted by
// PostgreSQL's own statistics (tuples read from export_file by sequential and index scans),
// flushed on demand around the call.
TEST_F(ManifestPagesDbTest, APageReadsItsFilesNotTheJobs) {
  Exec(
      "INSERT INTO export_file (job_id, file_name, kind, res_type, unit_no, seq, resources, "
      "bytes) SELECT $1::uuid, 'Observation.' || i || '.1.ndjson', 'output', 'Observation', "
      "i, 1, 1, 10 FROM generate_series(2, 5001) i");
  AddFiles(1, "OperationOutcome", 1, "error");
  Exec("UPDATE export_job SET state = 'completed' WHERE job_id = $1::uuid");
  ASSERT_TRUE(conn_->Exec("ANALYZE export_file").ok());
  auto tuples_read = [&]() -> int64_t {
    auto f = conn_->Exec("SELECT pg_stat_force_next_flush()");
    EXPECT_TRUE(f.ok()) << f.status().ToString();
    auto r = conn_->Exec(
        "SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) FROM pg_stat_user_tables "
        "WHERE relid = 'export_file'::regclass");
    EXPECT_TRUE(r.ok() && r->rows() == 1) << r.status().ToString();
    return r.ok() && r->rows() == 1 ? r->int64(0, 0) : 0;
  };
  ASSERT_TRUE(Page(1).available);  // pages are recorded in order: walk to page 6
  for (int n = 2; n <= 6; n++) ASSERT_TRUE(Page(n).available);
  const int64_t before = tuples_read();
  ManifestPage p7 = Page(7);
  const int64_t read = tuples_read() - before;
  EXPECT_EQ(Names(p7),
            (std::vector<std::string>{"Observation.14.1.ndjson", "Observation.15.1.ndjson"}));
  EXPECT_EQ(Names(p7, "error"), (std::vector<std::string>{"OperationOutcome.1.1.ndjson"}));
  EXPECT_TRUE(p7.has_next);
  EXPECT_LT(read, 50) << "rows of export_file read for one page of 2 (the job has 5,001)";

  auto job = GetJob(conn_.get(), job_.job_id, "client-p");
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  EXPECT_TRUE(job->files.empty()) << "GetJob reads the job's row, not its files";
  ASSERT_TRUE(LoadJobFiles(conn_.get(), &*job).ok());
  EXPECT_EQ(job->files.size(), 5001u);
}

// organizeOutputBy=Patient with allowPartialManifests: a page keeps continuesInFile.
TEST_F(ManifestPagesDbTest, PagesKeepContinuesInFile) {
  Exec(
      "INSERT INTO export_file (job_id, file_name, kind, res_type, unit_no, seq, resources, "
      "bytes, continues_in) VALUES ($1::uuid, 'Patient.1.1.ndjson', 'output', 'Patient', 1, 1, "
      "5, 10, 'Patient.1.2.ndjson'), ($1::uuid, 'Patient.1.2.ndjson', 'output', 'Patient', 1, "
      "2, 3, 10, NULL)");
  ManifestPage p1 = Page(1);
  ASSERT_EQ(p1.files.size(), 2u);
  EXPECT_EQ(p1.files[0].continues_in, "Patient.1.2.ndjson");
  EXPECT_EQ(p1.files[1].continues_in, "");
}

}  // namespace
}  // namespace fhirbulk
