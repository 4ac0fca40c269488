// The operator API (issue 16): what the operator console (app/console/) reads and its one
// write, below the FHIR base at /_ops/api/. JSON answers (application/json, no-store); errors
// are OperationOutcomes.
//
//   GET  /_ops/api/jobs      jobs in progress (accepted, running) of every client, with
//                            progress; ?client= &state= (any job state) &limit= &offset=
//   GET  /_ops/api/history   finished jobs (sql/0007), newest first; ?client= &outcome=
//                            &limit= &offset=
//   GET  /_ops/api/clients   the registered clients (no keys)
//   POST /_ops/api/clients/<client id>/enable | /disable
//                            enables or disables an export client (sql/0015: operator
//                            clients are refused, 403); audited in the same transaction
//   GET  /_ops/api/audit     the audit trail, newest first; ?client= &action= &target=
//                            &result= &since= &until= &limit= &offset=
//   GET  /_ops/api/stats     per UTC day: exports started and finished by outcome, resources
//                            and resources per second of completed exports, downloads;
//                            ?days= (default 30)
//
// Protection, in layers:
//  - the routes exist only in a location with `fhir_bulk_operator_api on` (ServerOptions::
//    operator_api), which needs SMART authorization on; everywhere else they are 404, so the
//    gateway's `allow`/`deny` (or auth_basic) on that one location bounds who reaches them;
//  - a bearer token (401 without a valid one) granting the operator/ scope of the route (403
//    otherwise): operator/<jobs|clients|audit|stats>.read, operator/clients.write for the
//    writes. The token endpoint grants operator/ scopes only to clients registered with
//    `fhir-bulk client add --operator` (auth/scopes.h, sql/0015);
//  - on the thread pool, before any query: the client must still be an enabled operator
//    client (a disabled operator is refused at once, not when its token expires).
// Refusals (401, 403) and every write are audited (action "ops", resp. "client").
//
// Parameters are checked in the event loop, before the database is asked: query string at
// most 4 KiB and 16 parameters, each at most once, only those the route names (400
// otherwise); limit 1..500 (default 50), offset 0..100000, days 1..366; client ids
// [A-Za-z0-9._~-]{1,128}; states, outcomes and actions from their fixed lists; result an HTTP
// status; target at most 512 bytes of printable ASCII; since and until FHIR dates or
// dateTimes (a date covers its whole day; until is inclusive), since <= until.
//
// Thread-safety: as Server.

#ifndef FHIRBULK_SERVER_OPS_API_H_
#define FHIRBULK_SERVER_OPS_API_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "auth/audit_query.h"
#include "http/http.h"
#include "util/status.h"

namespace fhirbulk {

inline constexpr std::string_view kOpsApiPrefix = "/_ops/api/";

struct OpsCall {
  enum class Op { kJobs, kHistory, kClients, kEnableClient, kDisableClient, kAudit, kStats };
  Op op = Op::kJobs;
  std::string client;  // a filter; kEnableClient/kDisableClient: the client changed
  std::string state;   // kJobs: a job state; kHistory: an outcome
  int64_t limit = 50;
  int64_t offset = 0;
  int days = 30;
  AuditQuery audit;  // kAudit
};

// The call a path below kOpsApiPrefix names (sets call->op, and call->client for a client's
// enable/disable); NotFound for any other path. *post: the route takes POST (the others GET).
Status MatchOpsPath(std::string_view path, OpsCall* call, bool* post);
// The query string's parameters for call->op, checked (InvalidArgument naming the problem).
Status ParseOpsQuery(std::string_view query, OpsCall* call);
// The operator scope bits (auth/scopes.h OperatorScope) a call needs.
uint8_t OpsScopeNeeded(OpsCall::Op op);

}  // namespace fhirbulk

#endif  // FHIRBULK_SERVER_OPS_API_H_
