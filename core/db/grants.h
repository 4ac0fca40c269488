// Least-privilege GRANTs for the two database roles a deployment runs with (`fhir-bulk
// grants`; README "Production deployment"): one for the nginx nodes (the module's thread-pool
// statements: core/server, core/export/job_store, core/auth) and one for the export workers
// (core/worker), each granted what its statements touch and nothing else. The schema owner
// runs the migrations; neither role owns anything, creates anything or is a superuser.
//
// The statements first revoke everything the roles hold on the schema's tables and sequences,
// so running them again (after every `fhir-bulk migrate`, which may add tables or resource
// partitions) leaves exactly these privileges. The job-history triggers (sql/0007) are
// SECURITY DEFINER: the roles need no privileges on export_job_history for them.
//
// Thread-safety: pure function.

#ifndef FHIRBULK_DB_GRANTS_H_
#define FHIRBULK_DB_GRANTS_H_

#include <string>
#include <string_view>

#include "util/status.h"

namespace fhirbulk {

struct GrantOptions {
  std::string nginx_role = "fhir_bulk_nginx";
  std::string worker_role = "fhir_bulk_worker";
  std::string schema = "public";
};

// True for a name usable unquoted: [a-z_][a-z0-9_]*, at most 63 bytes.
bool IsPlainSqlIdentifier(std::string_view name);

// The SQL script (GRANT/REVOKE statements and one DO block for the resource partitions);
// InvalidArgument for a role or schema name that is not a plain identifier, or equal roles.
Result<std::string> GrantStatements(const GrantOptions& options);

}  // namespace fhirbulk

#endif  // FHIRBULK_DB_GRANTS_H_
