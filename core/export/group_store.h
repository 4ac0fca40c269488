// Groups created through the FHIR API (server/group_api.h), below the API so that the export
// workers can build them too: the Group body parser, the stored form of a created Group, and
// the evaluation of a criteria-based Group (a cohort, export/cohort.h). Used by the nginx side
// (reads, member-based writes) and by the workers (cohort requests, worker/cohort_runner.h;
// a cohort's membership as of an export's transactionTime, worker/planner.h).
//
// Thread-safety: functions of their arguments and a caller-owned connection.

#ifndef FHIRBULK_EXPORT_GROUP_STORE_H_
#define FHIRBULK_EXPORT_GROUP_STORE_H_

#include <rapidjson/document.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "db/pg.h"
#include "export/cohort.h"
#include "fhirbulk/defaults.h"
#include "util/status.h"

namespace fhirbulk {

struct GroupLimits {
  size_t max_members = FHIRBULK_DEFAULT_GROUP_MAX_MEMBERS;
  size_t max_filters = FHIRBULK_DEFAULT_GROUP_MAX_FILTERS;
  size_t max_body_bytes = static_cast<size_t>(FHIRBULK_DEFAULT_GROUP_MAX_BODY);
  int cohort_timeout_ms = FHIRBULK_DEFAULT_COHORT_TIMEOUT_MS;
};

inline constexpr std::string_view kMemberFilterUrl =
    "http://hl7.org/fhir/uv/bulkdata/StructureDefinition/member-filter";
inline constexpr std::string_view kMembersRefreshedUrl =
    "http://hl7.org/fhir/uv/bulkdata/StructureDefinition/members-refreshed";
inline constexpr std::string_view kBulkCohortProfile =
    "http://hl7.org/fhir/uv/bulkdata/StructureDefinition/bulk-cohort-group";

// What a Group write body says, validated.
struct ParsedGroup {
  rapidjson::Document doc;               // the body, member references normalized
  std::vector<std::string> patient_ids;  // member entities, normalized ids, in order
  std::vector<CohortFilter> filters;     // member-filter modifier extensions, in order
};

// Parses and validates a POST/PUT /Group body (untrusted bytes; fuzz/group_body_fuzzer.cc):
// empty: InvalidArgument; over limits.max_body_bytes: TooLarge; JSON nesting over 32 levels,
// not a JSON object, resourceType not Group, an `id` different from *url_id (when given),
// `type` missing, `actual` not a boolean, `name` not a non-empty string: InvalidArgument;
// `type` not "person", `characteristic`, a modifierExtension other than member-filter, a
// filter language other than application/x-fhir-query: NotSupported. At most
// limits.max_filters member-filters (each at most 4 KiB, parsed by ParseMemberFilter) and
// limits.max_members members, each member.entity a "Patient/<id>" reference (absolute under
// base_url accepted, rewritten relative in out->doc); a cohort needs `name`. On error, *out
// is partly filled.
Status ParseGroupBody(std::string_view body, const std::string& base_url, const GroupLimits& limits,
                      const std::string* url_id, ParsedGroup* out);

// One stored Group (resource row, joined with group_owner).
struct GroupRow {
  int64_t version = 0;
  std::string body;
  std::optional<std::string> owner;  // nullopt: loaded
  bool criteria = false;
};

// The live Group `id` (FOR UPDATE of its resource row when for_update), or nullopt.
Result<std::optional<GroupRow>> FindGroup(PgConnection* conn, const std::string& id,
                                          bool for_update);

// Patients of `ids` without a live Patient resource, in order (at most 20 named; *total counts
// them all).
Result<std::vector<std::string>> MissingPatients(PgConnection* conn,
                                                 const std::vector<std::string>& ids,
                                                 int64_t* total);

// The writing transaction's clock (microseconds), taken after it holds its xid (as the loader
// does), so an export that picks a transactionTime and waits for older writers sees the write
// or not at all; never at or before `not_after_us` (a change must not move last_updated back).
Result<int64_t> WriteClock(PgConnection* conn, int64_t not_after_us);

// Writes a created or replaced Group inside the caller's transaction: the resource row (body:
// the client's Group with the server's id, meta, quantity, `member` = `computed` for a cohort,
// and the members-refreshed extension at refreshed_us), its index columns, group_member rows
// and the group_owner row (client, criteria, candidates = parsed.patient_ids of a cohort,
// base_url for re-parsing the criteria). version: 1 for a new Group; now_us: WriteClock.
Status StoreGroup(PgConnection* conn, const std::string& id, const std::string& client_id,
                  const std::string& base_url, const ParsedGroup& parsed,
                  const std::vector<std::string>* computed, std::optional<int64_t> refreshed_us,
                  int64_t version, int64_t now_us, std::string* body_out);

// A cohort (CohortSql) evaluated in the caller's transaction under a statement timeout of
// timeout_ms (inside a savepoint, so the transaction survives a timeout; the caller's timeout
// applies again afterwards): the members, sorted. The timeout: Aborted("... took longer than
// ..."); more than max_members: ResourceExhausted("... over the limit of ..."); both messages
// name the limit and are meant for the client. *evaluated_us: the database clock when the
// evaluation began (members-refreshed).
Result<std::vector<std::string>> EvaluateCohort(PgConnection* conn,
                                                const std::vector<CohortFilter>& filters,
                                                const std::vector<std::string>* candidates,
                                                int timeout_ms, size_t max_members,
                                                int64_t* evaluated_us);

// A PostgreSQL statement timeout ("canceling statement due to statement timeout").
bool IsStatementTimeout(const Status& s);

}  // namespace fhirbulk

#endif  // FHIRBULK_EXPORT_GROUP_STORE_H_
