// Schema migrations: the SQL files of sql/ are compiled into the binary (see
// CMakeLists.txt) and applied in version order, each in its own transaction, under an
// advisory lock so that concurrent callers (several nodes starting at once) are safe.
// Applied versions are recorded in schema_version; running Migrate again is a no-op.

#ifndef FHIRBULK_DB_MIGRATE_H_
#define FHIRBULK_DB_MIGRATE_H_

#include <string>
#include <vector>

#include "db/pg.h"

namespace fhirbulk {

struct Migration {
  int version;
  const char* name;  // file name, e.g. "0001_resources.sql"
  const char* sql;
};

// All migrations known to this build, in version order.
const std::vector<Migration>& BuiltinMigrations();

// Applies the pending migrations. On success *applied (if given) lists the names applied now.
Status Migrate(PgConnection* conn, std::vector<std::string>* applied);

// The highest applied version, 0 for an empty database.
Result<int> SchemaVersion(PgConnection* conn);

}  // namespace fhirbulk

#endif  // FHIRBULK_DB_MIGRATE_H_
