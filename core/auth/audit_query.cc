#include "auth/audit_query.h"

#include "db/pg_table.h"

namespace fhirbulk {

namespace {

// `prefix` before the statement: "" to run it, "EXPLAIN " for its plan.
Result<PgResult> RunSearch(PgConnection* conn, const AuditQuery& q, const char* prefix) {
  const auto opt = [](const std::string& v) { return v.empty() ? PgParam() : PgParam(v); };
  return conn->Exec(
      std::string(prefix) + "SELECT * FROM (SELECT event_id, " + SqlUtc("at") +
          " AS at, client_id, action, target, result, detail, remote_addr FROM audit_event "
          "WHERE ($1::text IS NULL OR client_id = $1) "
          "AND ($2::timestamptz IS NULL OR at >= $2::timestamptz) "
          "AND ($3::timestamptz IS NULL OR at < $3::timestamptz) "
          "AND ($4::text IS NULL OR action = $4) AND ($5::text IS NULL OR target = $5) "
          "AND ($6::int IS NULL OR result = $6::int) "
          "ORDER BY audit_event.at DESC, event_id DESC LIMIT $7::bigint OFFSET $8::bigint) e "
          "ORDER BY event_id" +
          (q.newest_first ? " DESC" : ""),
      {opt(q.client), opt(q.since), opt(q.until), opt(q.action), opt(q.target), opt(q.result),
       std::to_string(q.limit), std::to_string(q.offset)});
}

}  // namespace

Result<PgResult> SearchAudit(PgConnection* conn, const AuditQuery& q) {
  return RunSearch(conn, q, "");
}

Result<std::string> ExplainAuditSearch(PgConnection* conn, const AuditQuery& q) {
  auto r = RunSearch(conn, q, "EXPLAIN ");
  if (!r.ok()) return r.status();
  std::string plan;
  for (int i = 0; i < r->rows(); i++) plan += r->str(i, 0) + "\n";
  return plan;
}

const std::set<std::string>& AuditNumericColumns() {
  static const std::set<std::string>* columns = new std::set<std::string>{"event_id", "result"};
  return *columns;
}

}  // namespace fhirbulk
