#include "db/migrate.h"

#include <gtest/gtest.h>

#include <thread>

#include "test_db.h"

namespace fhirbulk {

TEST(MigrationsTest, EmbeddedInVersionOrder) {
  const auto& m = BuiltinMigrations();
  ASSERT_FALSE(m.empty());
  // Strictly increasing from 1; numbers are assigned per change, so gaps are allowed.
  EXPECT_EQ(m[0].version, 1);
  for (size_t i = 0; i < m.size(); i++) {
    if (i > 0) {
      EXPECT_GT(m[i].version, m[i - 1].version) << m[i].name;
    }
    const std::string sql(m[i].sql);
    EXPECT_TRUE(sql.find("CREATE") != std::string::npos || sql.find("ALTER") != std::string::npos)
        << m[i].name;
  }
}

TEST(MigrateDbTest, IdempotentAndVersioned) {
  FHIRBULK_REQUIRE_TEST_DB();
  auto conn = ConnectTestDb();
  ASSERT_NE(conn, nullptr);
  std::vector<std::string> applied;
  ASSERT_TRUE(Migrate(conn.get(), &applied).ok());
  EXPECT_TRUE(applied.empty()) << "second run applied " << applied.size();
  auto v = SchemaVersion(conn.get());
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, BuiltinMigrations().back().version);
  auto rows = conn->Exec("SELECT count(*) FROM schema_version");
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(rows->int64(0, 0), static_cast<long long>(BuiltinMigrations().size()));
}

TEST(MigrateDbTest, ConcurrentCallersAreSafe) {
  FHIRBULK_REQUIRE_TEST_DB();
  Status results[4];
  std::vector<std::thread> threads;
  threads.reserve(4);
  for (int i = 0; i < 4; i++) {
    threads.emplace_back([&results, i] {
      auto conn = PgConnection::Connect(TestConninfo());
      results[i] = conn.ok() ? Migrate(conn->get(), nullptr) : conn.status();
    });
  }
  for (auto& t : threads) t.join();
  for (const Status& s : results) EXPECT_TRUE(s.ok()) << s.ToString();
}

// A SECURITY DEFINER function runs with its owner's rights: its search_path must be pinned,
// with pg_temp last, or a caller could shadow the tables and operators it uses.
TEST(MigrateDbTest, DefinerFunctionsPinTheirSearchPath) {
  FHIRBULK_REQUIRE_TEST_DB();
  auto conn = ConnectTestDb();
  ASSERT_NE(conn, nullptr);
  auto rows = conn->Exec(
      "SELECT p.oid::regprocedure::text, coalesce(array_to_string(p.proconfig, ';'), '') "
      "FROM pg_proc p WHERE p.prosecdef AND p.pronamespace = current_schema()::regnamespace");
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  EXPECT_GT(rows->rows(), 0) << "no SECURITY DEFINER function found: is the query right?";
  for (int i = 0; i < rows->rows(); i++) {
    const std::string config = rows->str(i, 1);
    const std::string pinned = "search_path=pg_catalog, ";
    const std::string last = ", pg_temp";
    EXPECT_NE(config.find(pinned), std::string::npos) << rows->str(i, 0) << ": " << config;
    EXPECT_TRUE(config.size() >= last.size() &&
                config.compare(config.size() - last.size(), last.size(), last) == 0)
        << rows->str(i, 0) << ": " << config;
  }
}

TEST(PgConnectionTest, UnreachableServerIsUnavailable) {
  auto conn = PgConnection::Connect("host=127.0.0.1 port=1 dbname=x connect_timeout=2");
  ASSERT_FALSE(conn.ok());
  EXPECT_EQ(conn.status().code(), Status::Code::kUnavailable);
}

TEST(PgConnectionTest, ParametersAndErrors) {
  FHIRBULK_REQUIRE_TEST_DB();
  auto conn = ConnectTestDb();
  ASSERT_NE(conn, nullptr);
  auto r = conn->Exec("SELECT $1::text || $2::text, $3::text IS NULL", {"a'b", "c", std::nullopt});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->str(0, 0), "a'bc");
  EXPECT_EQ(r->str(0, 1), "t");
  auto bad = conn->Exec("SELECT 1/0");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("22012"), std::string::npos);
  auto syntax = conn->Exec("SELEC 1");
  EXPECT_EQ(syntax.status().code(), Status::Code::kInternal);
  EXPECT_TRUE(conn->healthy());
}

}  // namespace fhirbulk
