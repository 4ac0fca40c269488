#include "db/migrate.h"

#include <string>

namespace fhirbulk {

namespace {
// Any constant; identifies our advisory lock in pg_locks.
constexpr const char* kLockKey = "4242001";
}  // namespace

Result<int> SchemaVersion(PgConnection* conn) {
  auto r = conn->Exec(
      "SELECT CASE WHEN to_regclass('schema_version') IS NULL THEN 0 "
      "ELSE (SELECT coalesce(max(version), 0) FROM schema_version) END");
  if (!r.ok()) return r.status();
  return static_cast<int>(r->int64(0, 0));
}

Status Migrate(PgConnection* conn, std::vector<std::string>* applied) {
  (void)conn->Exec("SET client_min_messages = warning");  // no NOTICEs for IF NOT EXISTS
  auto lock = conn->Exec(std::string("SELECT pg_advisory_lock(") + kLockKey + ")");
  if (!lock.ok()) return lock.status();
  Status s = [&]() -> Status {
    auto create = conn->Exec(
        "CREATE TABLE IF NOT EXISTS schema_version ("
        " version integer PRIMARY KEY,"
        " name text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())");
    if (!create.ok()) return create.status();
    auto current = SchemaVersion(conn);
    if (!current.ok()) return current.status();
    for (const Migration& m : BuiltinMigrations()) {
      if (m.version <= *current) continue;
      Status st = PgTransaction(conn, [&]() -> Status {
        auto r = conn->Exec(m.sql);
        if (!r.ok()) return r.status().WithContext(m.name);
        auto rec = conn->Exec("INSERT INTO schema_version (version, name) VALUES ($1, $2)",
                              {std::to_string(m.version), std::string_view(m.name)});
        return rec.ok() ? Status::OK() : rec.status();
      });
      if (!st.ok()) return st;
      if (applied != nullptr) applied->push_back(m.name);
    }
    return Status::OK();
  }();
  (void)conn->Exec(std::string("SELECT pg_advisory_unlock(") + kLockKey + ")");
  return s;
}

}  // namespace fhirbulk
