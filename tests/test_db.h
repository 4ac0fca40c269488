// Test helpers for tests that need PostgreSQL. `make test` (scripts/run-tests.sh) runs ctest
// inside a throw-away cluster and sets FHIRBULK_TEST_PG to its conninfo; run by hand without
// it, these tests skip with a message saying so.

#ifndef FHIRBULK_TESTS_TEST_DB_H_
#define FHIRBULK_TESTS_TEST_DB_H_

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <string>

#include "db/migrate.h"
#include "db/pg.h"

namespace fhirbulk {

inline std::string TestConninfo() {
  const char* c = std::getenv("FHIRBULK_TEST_PG");
  return c != nullptr ? c : "";
}

// Connects to the test database and brings the schema up to date.
inline std::unique_ptr<PgConnection> ConnectTestDb() {
  auto conn = PgConnection::Connect(TestConninfo());
  EXPECT_TRUE(conn.ok()) << conn.status().ToString();
  if (!conn.ok()) return nullptr;
  Status s = Migrate(conn->get(), nullptr);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return std::move(conn).value();
}

// A private schema for one test, so that tests (ctest runs them in parallel processes) never
// see each other's rows: Enter() creates it and points every connection this process opens
// afterwards (libpq reads PGOPTIONS) at it; Leave() drops it.
class TestSchema {
 public:
  // prefix: e.g. "worker_test"; the schema is "<prefix>_<pid>_<n>".
  Status Enter(const std::string& prefix) {
    static int counter = 0;
    name_ = prefix + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
    // setenv is not thread-safe: this runs between tests, when their threads have stopped.
    // NOLINTNEXTLINE(concurrency-mt-unsafe)
    ::setenv("PGOPTIONS", ("-c search_path=" + name_).c_str(), 1);
    auto admin = PgConnection::Connect(TestConninfo());
    if (!admin.ok()) return admin.status();
    auto r = (*admin)->Exec("CREATE SCHEMA " + name_);
    return r.ok() ? Status::OK() : r.status();
  }
  void Leave() {
    if (name_.empty()) return;
    auto admin = PgConnection::Connect(TestConninfo());
    if (admin.ok()) {
      (void)(*admin)->Exec("SET client_min_messages = warning");
      (void)(*admin)->Exec("DROP SCHEMA " + name_ + " CASCADE");
    }
    ::unsetenv("PGOPTIONS");  // NOLINT(concurrency-mt-unsafe): as in Enter
    name_.clear();
  }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
};

}  // namespace fhirbulk

#define FHIRBULK_REQUIRE_TEST_DB()                                       \
  do {                                                                   \
    if (::fhirbulk::TestConninfo().empty()) {                            \
      GTEST_SKIP() << "FHIRBULK_TEST_PG is not set (make test sets it)"; \
    }                                                                    \
  } while (0)

#endif  // FHIRBULK_TESTS_TEST_DB_H_
