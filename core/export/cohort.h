// Criteria-based cohorts (Bulk Cohort API, IG 3.0.0; spec digest §8): the member-filter
// expressions of a Group, compiled into one SQL query returning the ids of the patients that
// meet all of them.
//
// Contract:
//  - An expression is one FHIR search "Type?param=value&..." over a single R4 type that is
//    Patient or in the Patient compartment (the member-filter extension's
//    application/x-fhir-query). It is parsed by the _typeFilter grammar (export_request.h:
//    the same search parameters, modifiers, value syntax and limits), so a Group filter and
//    an export filter mean the same thing. A parameter or modifier the grammar does not
//    support is NotSupported naming it; malformed text, a type outside the compartment, or
//    more than one query in one expression ("A?x=1,B?y=2") are InvalidArgument.
//  - Semantics: a patient qualifies for a filter when its own Patient resource (type
//    Patient) or a resource in its compartment (any other type; via the precomputed
//    `patients` column, sql/0001) matches the query. Filters are ANDed (INTERSECT). Only
//    patients whose Patient resource exists (not deleted) are returned. Deleted resources
//    never match.
//  - CohortSql binds every value ($1, $2 ... as TypeFilterSql does; nothing client-given is
//    spliced into the text but the type names, which are validated R4 type names). Rows:
//    one text column, the patient id, sorted, unique.
//
// Thread-safety: pure functions.

#ifndef FHIRBULK_EXPORT_COHORT_H_
#define FHIRBULK_EXPORT_COHORT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "db/pg.h"
#include "export/export_request.h"
#include "util/status.h"

namespace fhirbulk {

struct CohortFilter {
  std::string expression;  // as the client wrote it
  TypeFilterQuery query;
};

// base_url: this server's base (absolute references under it are made relative).
Result<CohortFilter> ParseMemberFilter(std::string_view expression, const std::string& base_url,
                                       const KickoffLimits& limits);

// The patients meeting every filter (REQUIRES: filters not empty); when `candidates` is not
// null, only those among them (Group.member given with the filters). With `as_of_us`, over
// the data as of that instant (an export's transactionTime, sql/0008): the current rows with
// last_updated <= it plus the replaced versions current then (resource_history), Patients
// included; without it, over the current rows.
Status CohortSql(const std::vector<CohortFilter>& filters,
                 const std::vector<std::string>* candidates, std::string* sql,
                 std::vector<std::string>* params, std::optional<int64_t> as_of_us = std::nullopt);

// A criteria-based Group as created (group_owner, sql/0009): its member-filters, parsed, and
// the candidates it was limited to (Group.member given with the filters), if any.
struct CohortDefinition {
  std::vector<CohortFilter> filters;
  std::optional<std::vector<std::string>> candidates;
};

// The definition of Group `group_id` when it was created with member-filters and is not
// deleted (and, with as_of_us, its current version is not newer than that instant); nullopt
// for any other Group. A stored filter that no longer parses is an error naming the Group.
Result<std::optional<CohortDefinition>> LoadCohortDefinition(
    PgConnection* conn, const std::string& group_id,
    std::optional<int64_t> as_of_us = std::nullopt);

// The ids among `patients` that are not members of the cohort `definition` over the current
// rows: the patients a Group-level kick-off's `patient` parameter may not name. Evaluated for
// those patients only (they are the candidates), so its cost follows the list, not the Group.
Result<std::vector<std::string>> CohortNonMembers(PgConnection* conn,
                                                  const CohortDefinition& definition,
                                                  const std::vector<std::string>& patients);

}  // namespace fhirbulk

#endif  // FHIRBULK_EXPORT_COHORT_H_
