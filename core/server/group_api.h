// The Group API (issue 14; IG 3.0.0 Group guidance and the Bulk Cohort API, spec digest §8):
// read and search Groups, member-based Groups managed by the client, and criteria-based
// Groups whose members the server computes from member-filter expressions.
//
//   GET    /Group/<id>                 read (scope Group "r")
//   GET    /Group?name=..&_count=..    search, a searchset Bundle (scope Group "s");
//                                      also _id, _offset (paging), _summary=count
//   POST   /Group                      create (Group "c"): `member` Patients, or
//                                      member-filter modifier extensions (a cohort)
//   PUT    /Group/<id>                 replace members or filters (Group "u")
//   DELETE /Group/<id>                 delete (Group "d")
//   GET    /$group-status/<request>    the outcome of a write sent with Prefer: respond-async
//
// Visibility: a client sees the Groups it created (group_owner, sql/0009) and the loaded
// Groups its registration allows (every loaded Group unless registered with --group). Any
// other Group answers 404, as if it did not exist, on every route including $export. Loaded
// Groups are read-only (PUT/DELETE: 403).
//
// Writes (POST, PUT):
//  - body: a Group (application/fhir+json or application/json), at most
//    FHIRBULK_DEFAULT_GROUP_MAX_BODY bytes (413), JSON nesting at most 32; parsed on the thread
//    pool (a 100,000-member body takes milliseconds to parse: not on nginx's event loop).
//  - type "person" (only patients are exported); `characteristic` is not supported (400).
//  - members: `member.entity` references "Patient/<id>" (or absolute under the base); at most
//    FHIRBULK_DEFAULT_GROUP_MAX_MEMBERS; every patient must exist (400 listing the missing).
//  - cohort: 1..FHIRBULK_DEFAULT_GROUP_MAX_FILTERS modifierExtension member-filter with a
//    valueExpression (language application/x-fhir-query), ANDed (export/cohort.h); `name`
//    required (bulk-cohort-group profile). With `member` too, only those patients are
//    candidates. Any other modifierExtension is refused (400): its meaning would change.
//  - a cohort (member-filters) is never evaluated here: with Prefer: respond-async the body is
//    validated and queued (group_request, sql/0012; NOTIFY fhir_bulk_jobs) and the answer is
//    202 + Content-Location; an export worker evaluates and stores it
//    (worker/cohort_runner.h), and exports evaluate it again as of their transactionTime
//    (worker/planner.h). Without Prefer: respond-async a cohort write is 400. The status URL
//    answers 202 while pending, then 201 (POST) / 200 (PUT) with the Group (Location), or
//    the evaluation's OperationOutcome (400 too-costly over the timeout or member limit).
//  - member-based writes are done in the request: 201 (POST) / 200 (PUT) with the Group; with
//    Prefer: respond-async their outcome is recorded for the status URL (202 first).
//  - stored like a loaded Group (resource row with index columns, group_member rows), so its
//    export behaves exactly like a loaded Group's.
//
// Thread-safety: as Server (functions of their arguments and a caller-owned connection).

#ifndef FHIRBULK_SERVER_GROUP_API_H_
#define FHIRBULK_SERVER_GROUP_API_H_

#include <string>
#include <vector>

#include "db/pg.h"
#include "export/export_request.h"
#include "export/group_store.h"
#include "fhirbulk/defaults.h"
#include "util/status.h"

namespace fhirbulk {

struct GroupCall {
  enum class Op { kRead, kSearch, kCreate, kUpdate, kDelete, kStatus };
  Op op = Op::kRead;
  std::string id;     // kRead, kUpdate, kDelete: the Group id; kStatus: the request id
  std::string body;   // kCreate, kUpdate
  std::string query;  // kSearch: raw query string
  bool respond_async = false;
};

inline constexpr std::string_view kGroupStatusPrefix = "/$group-status/";

// Who is asking, for visibility: the client, and its registration's Group restriction.
struct GroupViewer {
  std::string client_id;
  bool group_restricted = false;
  std::vector<std::string> allowed_groups;
};

// The $export gate for Group-level kick-offs: a Group another client created is NotFound; one
// this client created is allowed whatever its registration's Group list; a loaded Group goes
// through the registration's restriction (server/access.h AuthorizeGroupPolicy). Other levels:
// the restriction only.
Status AuthorizeGroupExport(PgConnection* conn, const GroupViewer& viewer,
                            const ExportRequest& request);

}  // namespace fhirbulk

#endif  // FHIRBULK_SERVER_GROUP_API_H_
