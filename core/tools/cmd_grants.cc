// fhir-bulk grants: the least-privilege GRANTs for the nginx nodes' and the workers' database
// roles (db/grants.h), printed for psql: fhir-bulk grants | psql "$OWNER_CONNINFO".

#include <cstdio>
#include <string>

#include "db/grants.h"
#include "tools/command.h"
#include "util/flags.h"

namespace fhirbulk {

int RunGrants(int argc, char** argv) {
  GrantOptions o;
  FlagParser flags(
      "fhir-bulk grants [--nginx-role R] [--worker-role R] [--schema S]",
      "Prints the SQL that gives the nginx nodes' role and the export workers' role exactly "
      "the privileges their statements need (and revokes the rest on the schema's tables). "
      "Run it as the schema owner after `fhir-bulk migrate` and after every later migrate: "
      "fhir-bulk grants | psql \"$OWNER_CONNINFO\". The roles must exist (CREATE ROLE ... "
      "LOGIN PASSWORD ...); they own nothing and need no other privilege.");
  flags.AddString("nginx-role", &o.nginx_role, "the role of fhir_bulk_pg_conninfo_file", "R");
  flags.AddString("worker-role", &o.worker_role, "the role of the workers' connection", "R");
  flags.AddString("schema", &o.schema, "the schema fhir-bulk migrate created the tables in", "S");
  Status s = flags.Parse(argc, argv);
  if (flags.help_requested()) {
    std::fputs(flags.Help().c_str(), stdout);
    return kExitOk;
  }
  if (s.ok() && !flags.positionals().empty()) s = Status::InvalidArgument("unexpected argument");
  auto sql = s.ok() ? GrantStatements(o) : Result<std::string>(s);
  if (!sql.ok()) {
    std::fprintf(stderr, "fhir-bulk grants: %s\n", sql.status().message().c_str());
    return kExitUsage;
  }
  std::fputs(sql->c_str(), stdout);
  return kExitOk;
}

}  // namespace fhirbulk
