// The audit trail search (audit_event, sql/0003_auth.sql), shared by `fhir-bulk audit`
// (tools/cmd_audit.cc) and the operator API (server/ops_api.h). Filters left empty match
// everything; since is inclusive, until exclusive, both text PostgreSQL reads as a
// timestamptz (the API passes ISO 8601 instants it has checked; the tool passes what the
// operator typed, checked by PostgreSQL). The newest events first are picked (limit, after
// skipping offset) and returned oldest first, or newest first with newest_first.
//
// Columns: event_id, at (UTC ISO 8601), client_id, action, target, result, detail,
// remote_addr. Thread-safety: a function over a caller-owned connection.

#ifndef FHIRBULK_AUTH_AUDIT_QUERY_H_
#define FHIRBULK_AUTH_AUDIT_QUERY_H_

#include <cstdint>
#include <set>
#include <string>

#include "db/pg.h"
#include "util/status.h"

namespace fhirbulk {

struct AuditQuery {
  std::string client;
  std::string since;
  std::string until;
  std::string action;
  std::string target;
  std::string result;  // an HTTP status, as digits
  int64_t limit = 1000;
  int64_t offset = 0;
  bool newest_first = false;
};

Result<PgResult> SearchAudit(PgConnection* conn, const AuditQuery& q);
// The plan PostgreSQL picks for that search, one line per plan line (tests check that a
// search reads the index meant for it: sql/0020_audit_download_volume.sql).
Result<std::string> ExplainAuditSearch(PgConnection* conn, const AuditQuery& q);
const std::set<std::string>& AuditNumericColumns();

}  // namespace fhirbulk

#endif  // FHIRBULK_AUTH_AUDIT_QUERY_H_
