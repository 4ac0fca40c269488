// Test helpers for tests that need PostgreSQL. `make test` (scripts/run-tests.sh) runs ctest
// inside a throw-away cluster and sets FHIRBULK_TEST_PG to its conninfo; run by hand without
// it, these tests skip with a message saying so.

#ifndef FHIRBULK_TESTS_TEST_DB_H_
#define FHIRBULK_TESTS_TEST_DB_H_

#include <gtest/gtest.h>

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

}  // namespace fhirbulk

#define FHIRBULK_REQUIRE_TEST_DB()                                                    \
  do {                                                                                \
    if (::fhirbulk::TestConninfo().empty()) {                                         \
      GTEST_SKIP() << "FHIRBULK_TEST_PG is not set (make test sets it)";              \
    }                                                                                 \
  } while (0)

#endif  // FHIRBULK_TESTS_TEST_DB_H_
