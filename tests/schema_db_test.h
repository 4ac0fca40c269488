// A GoogleTest fixture for tests against the real test database: each test gets a private
// schema (TestSchema: ctest runs tests in parallel processes, and workers see every job), a
// migrated connection, and a temporary directory; all three are gone after the test.

#ifndef FHIRBULK_TESTS_SCHEMA_DB_TEST_H_
#define FHIRBULK_TESTS_SCHEMA_DB_TEST_H_

#include <gtest/gtest.h>

#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "test_db.h"

namespace fhirbulk {

class SchemaDbTest : public ::testing::Test {
 protected:
  // prefix names the schema ("<prefix>_<pid>_<n>") and the directory (/tmp/fhirbulk-<prefix>-*).
  explicit SchemaDbTest(std::string prefix) : prefix_(std::move(prefix)) {}

  // Skips when FHIRBULK_TEST_PG is unset. A derived SetUp calls this first and returns when
  // IsSkipped() or HasFatalFailure().
  void SetUp() override {
    FHIRBULK_REQUIRE_TEST_DB();
    Status s = schema_.Enter(prefix_);
    ASSERT_TRUE(s.ok()) << s.ToString();
    conn_ = ConnectTestDb();
    ASSERT_NE(conn_, nullptr);
    std::string tmpl = "/tmp/fhirbulk-" + prefix_ + "-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    conn_.reset();
    schema_.Leave();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  // Runs sql; a failure fails the test and gives an empty result.
  PgResult Exec(const std::string& sql, const std::vector<PgParam>& params = {}) {
    auto r = conn_->Exec(sql, params);
    EXPECT_TRUE(r.ok()) << sql << ": " << r.status().ToString();
    return r.ok() ? std::move(r).value() : PgResult();
  }
  // The first column of the first row; "" for no row or NULL.
  std::string Scalar(const std::string& sql, const std::vector<PgParam>& params = {}) {
    PgResult r = Exec(sql, params);
    return r.rows() > 0 && !r.is_null(0, 0) ? r.str(0, 0) : "";
  }

  TestSchema schema_;
  std::unique_ptr<PgConnection> conn_;
  std::string dir_;

 private:
  std::string prefix_;
};

}  // namespace fhirbulk

#endif  // FHIRBULK_TESTS_SCHEMA_DB_TEST_H_
