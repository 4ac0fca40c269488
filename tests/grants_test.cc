#include "db/grants.h"

#include <gtest/gtest.h>

#include <string>

#include "test_db.h"

namespace fhirbulk {
namespace {

TEST(GrantsTest, RefusesNamesThatAreNotPlainIdentifiers) {
  for (const char* bad : {"", "Nginx", "a-b", "x; DROP TABLE resource", "1a", "a b", "\"q\""}) {
    GrantOptions o;
    o.nginx_role = bad;
    EXPECT_FALSE(GrantStatements(o).ok()) << bad;
    o = GrantOptions();
    o.schema = bad;
    EXPECT_FALSE(GrantStatements(o).ok()) << bad;
  }
  GrantOptions same;
  same.worker_role = same.nginx_role;
  EXPECT_FALSE(GrantStatements(same).ok());
  EXPECT_FALSE(IsPlainSqlIdentifier(std::string(64, 'a')));
  EXPECT_TRUE(IsPlainSqlIdentifier(std::string(63, 'a')));
}

TEST(GrantsTest, NginxRoleCannotWriteResourcesOrReadHistory) {
  auto sql = GrantStatements(GrantOptions());
  ASSERT_TRUE(sql.ok());
  EXPECT_NE(sql->find("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM fhir_bulk_nginx, "
                      "fhir_bulk_worker;"),
            std::string::npos);
  // Every statement naming the nginx role: none touches the job history or updates resources.
  size_t pos = 0;
  while ((pos = sql->find("GRANT ", pos)) != std::string::npos) {
    size_t end = sql->find(';', pos);
    std::string stmt = sql->substr(pos, end - pos);
    pos = end;
    if (stmt.find("fhir_bulk_nginx") == std::string::npos) continue;
    // The operator API reads the job history and the audit trail; it never writes them.
    if (stmt.find("export_job_history") != std::string::npos ||
        stmt.find("audit_event,") != std::string::npos) {
      EXPECT_EQ(stmt.rfind("GRANT SELECT ON ", 0), 0u) << stmt;
      EXPECT_EQ(stmt.find("INSERT"), std::string::npos) << stmt;
      EXPECT_EQ(stmt.find("UPDATE"), std::string::npos) << stmt;
      EXPECT_EQ(stmt.find("DELETE"), std::string::npos) << stmt;
    }
    // The Group API writes Group rows in their partition only; `resource` itself is read-only.
    if (stmt.find(".resource ") != std::string::npos) {
      EXPECT_EQ(stmt.rfind("GRANT SELECT ON ", 0), 0u) << stmt;
    }
  }
}

// Applied to a real schema: the roles get what the statements say and no more.
TEST(GrantsDbTest, AppliesToTheMigratedSchema) {
  if (TestConninfo().empty()) GTEST_SKIP() << "FHIRBULK_TEST_PG not set";
  TestSchema schema;
  ASSERT_TRUE(schema.Enter("grants_test").ok());
  auto conn = ConnectTestDb();
  ASSERT_NE(conn, nullptr);
  GrantOptions o;
  o.schema = schema.name();
  o.nginx_role = "gt_nginx" + std::to_string(::getpid());
  o.worker_role = "gt_worker" + std::to_string(::getpid());
  (void)conn->Exec("DROP ROLE IF EXISTS " + o.nginx_role);
  (void)conn->Exec("DROP ROLE IF EXISTS " + o.worker_role);
  ASSERT_TRUE(conn->Exec("CREATE ROLE " + o.nginx_role + " NOLOGIN").ok());
  ASSERT_TRUE(conn->Exec("CREATE ROLE " + o.worker_role + " NOLOGIN").ok());
  auto sql = GrantStatements(o);
  ASSERT_TRUE(sql.ok());
  auto applied = conn->Exec(*sql);
  EXPECT_TRUE(applied.ok()) << applied.status().ToString();
  auto check = [&](const std::string& role, const std::string& table, const std::string& priv) {
    auto r = conn->Exec("SELECT has_table_privilege($1, $2, $3)",
                        {role, schema.name() + "." + table, priv});
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() && r->get(0, 0) == "t";
  };
  EXPECT_TRUE(check(o.worker_role, "resource_patient", "SELECT"));
  EXPECT_FALSE(check(o.worker_role, "resource", "UPDATE"));
  EXPECT_FALSE(check(o.worker_role, "auth_client", "SELECT"));
  EXPECT_TRUE(check(o.worker_role, "export_job_history", "DELETE"));
  EXPECT_FALSE(check(o.nginx_role, "resource_patient", "SELECT"));
  // Both write Groups, in the Group partition only (a grant on the partitioned table would
  // cover every type).
  for (const std::string& role : {o.nginx_role, o.worker_role}) {
    for (const char* priv : {"INSERT", "UPDATE", "DELETE"}) {
      EXPECT_FALSE(check(role, "resource", priv)) << role << " " << priv;
      EXPECT_FALSE(check(role, "resource_patient", priv)) << role << " " << priv;
      EXPECT_TRUE(check(role, "resource_group", priv)) << role << " " << priv;
    }
  }
  // The operator API (sql/0015) reads the history and the audit trail, never writes them.
  EXPECT_TRUE(check(o.nginx_role, "export_job_history", "SELECT"));
  EXPECT_FALSE(check(o.nginx_role, "export_job_history", "DELETE"));
  EXPECT_TRUE(check(o.nginx_role, "audit_event", "INSERT"));
  EXPECT_TRUE(check(o.nginx_role, "audit_event", "SELECT"));
  EXPECT_FALSE(check(o.nginx_role, "audit_event", "UPDATE"));
  EXPECT_FALSE(check(o.nginx_role, "audit_event", "DELETE"));
  EXPECT_FALSE(check(o.nginx_role, "auth_client", "UPDATE"));
  EXPECT_FALSE(check(o.nginx_role, "auth_client", "INSERT"));
  // Applying twice is harmless (the REVOKE first).
  EXPECT_TRUE(conn->Exec(*sql).ok());
  (void)conn->Exec("DROP OWNED BY " + o.nginx_role + ", " + o.worker_role);
  (void)conn->Exec("DROP ROLE " + o.nginx_role);
  (void)conn->Exec("DROP ROLE " + o.worker_role);
  schema.Leave();
}

}  // namespace
}  // namespace fhirbulk
