#include <cstdio>

#include "db/migrate.h"
#include "db/pg.h"
#include "tools/command.h"
#include "util/flags.h"

namespace fhirbulk {

int RunMigrate(int argc, char** argv) {
  std::string db;
  bool quiet = false;
  FlagParser flags("fhir-bulk migrate [--db CONNINFO]",
                   "Creates or upgrades the schema to the version this build knows. Safe to run "
                   "any number of times, and from several hosts at once.");
  flags.AddString("db", &db, "PostgreSQL connection string", "CONNINFO");
  flags.AddBool("quiet", &quiet, "print nothing when there is nothing to do");
  Status s = flags.Parse(argc, argv);
  if (flags.help_requested()) {
    std::fputs(flags.Help().c_str(), stdout);
    return kExitOk;
  }
  if (!s.ok() || !flags.positionals().empty()) {
    std::fprintf(stderr, "fhir-bulk migrate: %s\n",
                 s.ok() ? "unexpected argument" : s.message().c_str());
    return kExitUsage;
  }
  auto conn = PgConnection::Connect(ResolveConninfo(db));
  if (!conn.ok()) {
    std::fprintf(stderr, "fhir-bulk migrate: %s\n", conn.status().message().c_str());
    return kExitFailure;
  }
  std::vector<std::string> applied;
  s = Migrate(conn->get(), &applied);
  if (!s.ok()) {
    std::fprintf(stderr, "fhir-bulk migrate: %s\n", s.ToString().c_str());
    return kExitFailure;
  }
  auto version = SchemaVersion(conn->get());
  for (const auto& name : applied) std::printf("applied %s\n", name.c_str());
  if (!quiet || !applied.empty()) {
    std::printf("schema version %d\n", version.ok() ? *version : -1);
  }
  return kExitOk;
}

}  // namespace fhirbulk
