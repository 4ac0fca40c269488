// CancelJob against a real PostgreSQL: a job whose row another transaction holds (the planner
// holds it for a whole planning) is refused at once (Aborted), without running before_update
// (the HTTP side writes its cancel marker there); a cancel whose before_update fails changes
// nothing.

#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "export/job_store.h"
#include "test_db.h"

namespace fhirbulk {
namespace {

class CancelJobDbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    FHIRBULK_REQUIRE_TEST_DB();
    Status s = schema_.Enter("cancel_job_test");
    ASSERT_TRUE(s.ok()) << s.ToString();
    conn_ = ConnectTestDb();
    ASSERT_NE(conn_, nullptr);
    ExportRequest r;
    r.level = ExportLevel::kSystem;
    r.types = {"Patient"};
    r.request_url = "http://fhir.test/fhir/$export";
    auto job = CreateJob(conn_.get(), "client-c", r, CreateJobOptions());
    ASSERT_TRUE(job.ok()) << job.status().ToString();
    job_id_ = job->job_id;
  }
  void TearDown() override {
    conn_.reset();
    schema_.Leave();
  }

  std::string State() {
    auto r = conn_->Exec("SELECT state FROM export_job WHERE job_id = $1::uuid", {job_id_});
    EXPECT_TRUE(r.ok());
    return r.ok() && r->rows() == 1 ? r->str(0, 0) : "";
  }

  TestSchema schema_;
  std::unique_ptr<PgConnection> conn_;
  std::string job_id_;
};

TEST_F(CancelJobDbTest, LockedJobIsRefusedAtOnceWithoutTheMarker) {
  auto planner = ConnectTestDb();
  ASSERT_NE(planner, nullptr);
  ASSERT_TRUE(planner->Exec("BEGIN").ok());
  ASSERT_TRUE(
      planner->Exec("SELECT 1 FROM export_job WHERE job_id = $1::uuid FOR UPDATE", {job_id_}).ok());

  bool marker = false;
  const auto start = std::chrono::steady_clock::now();
  Status s = CancelJob(conn_.get(), job_id_, "client-c", [&]() -> Status {
    marker = true;
    return Status::OK();
  });
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(s.code(), Status::Code::kAborted) << s.ToString();
  EXPECT_FALSE(marker) << "the marker must not be written while the row is held";
  EXPECT_LT(waited, std::chrono::milliseconds(kCancelLockTimeoutMs + 3000));

  ASSERT_TRUE(planner->Exec("COMMIT").ok());
  EXPECT_EQ(State(), "accepted");
  EXPECT_TRUE(CancelJob(conn_.get(), job_id_, "client-c", [&]() -> Status {
                marker = true;
                return Status::OK();
              }).ok());
  EXPECT_TRUE(marker);
  EXPECT_EQ(State(), "cancelled");
}

TEST_F(CancelJobDbTest, FailedBeforeUpdateChangesNothing) {
  Status s = CancelJob(conn_.get(), job_id_, "client-c",
                       []() -> Status { return Status::IOError("no marker"); });
  EXPECT_EQ(s.code(), Status::Code::kIOError);
  EXPECT_EQ(State(), "accepted");
}

TEST_F(CancelJobDbTest, AnotherClientsOrACancelledJobIsNotFoundWithoutTheMarker) {
  bool marker = false;
  auto mark = [&]() -> Status {
    marker = true;
    return Status::OK();
  };
  EXPECT_EQ(CancelJob(conn_.get(), job_id_, "client-x", mark).code(), Status::Code::kNotFound);
  EXPECT_FALSE(marker);
  ASSERT_TRUE(CancelJob(conn_.get(), job_id_, "client-c").ok());
  EXPECT_EQ(CancelJob(conn_.get(), job_id_, "client-c", mark).code(), Status::Code::kNotFound);
  EXPECT_FALSE(marker);
}

}  // namespace
}  // namespace fhirbulk
