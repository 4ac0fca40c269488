#include "export/cohort.h"

#include <algorithm>

#include "db/pg.h"
#include "export/kickoff_util.h"
#include "export/type_filter_parse.h"
#include "export/type_filter_sql.h"
#include "fhir/resource_types.h"

namespace fhirbulk {

Result<CohortFilter> ParseMemberFilter(std::string_view expression, const std::string& base_url,
                                       const KickoffLimits& limits) {
  const std::string quoted = kickoff::Quoted(expression);
  auto fail = [&](const Status& s) {
    // Keep the code (400 either way; NotSupported reads "not-supported"); name the filter.
    std::string msg = "member-filter " + quoted + ": " + s.message();
    return s.code() == Status::Code::kNotSupported ? Status::NotSupported(std::move(msg))
                                                   : Status::InvalidArgument(std::move(msg));
  };
  const size_t q = expression.find('?');
  if (q == std::string_view::npos || !kickoff::LooksLikeTypeName(expression.substr(0, q))) {
    return fail(Status::InvalidArgument("not a search of the form Type?param=value"));
  }
  const std::string type(expression.substr(0, q));
  if (!IsR4ResourceType(type)) return fail(Status::NotSupported("unknown resource type " + type));
  const auto& compartment = PatientCompartmentTypes();
  if (type != "Patient" &&
      std::find(compartment.begin(), compartment.end(), type) == compartment.end()) {
    return fail(Status::InvalidArgument(type +
                                        " is not in the Patient compartment, so it cannot select "
                                        "patients"));
  }
  ExportRequest scratch;
  scratch.level = ExportLevel::kSystem;
  scratch.types = {type};
  kickoff::Leniency strict(false, limits.max_ignored_issues, &scratch.ignored);
  Status s =
      kickoff::ApplyTypeFilters({std::string(expression)}, base_url, limits, &strict, &scratch);
  if (!s.ok()) return fail(s);
  if (scratch.type_filters.size() != 1 || scratch.type_filters[0].type != type ||
      !scratch.ignored.empty()) {
    return fail(Status::InvalidArgument("one member-filter holds exactly one search, of one type"));
  }
  CohortFilter out;
  out.expression = std::string(expression);
  out.query = std::move(scratch.type_filters[0]);
  return out;
}

Status CohortSql(const std::vector<CohortFilter>& filters,
                 const std::vector<std::string>* candidates, std::string* sql,
                 std::vector<std::string>* params, std::optional<int64_t> as_of_us) {
  if (filters.empty()) return Status::InvalidArgument("a cohort needs at least one member-filter");
  std::vector<std::string> bound;
  std::string as_of;  // the placeholder of the instant
  if (as_of_us) {
    bound.push_back(std::to_string(*as_of_us));
    as_of = "(timestamptz 'epoch' + $1::int8 * interval '1 microsecond')";
  }
  // The rows of `type` the filters see, as `alias`. The type as a literal (a validated type
  // name) so the planner prunes to its partition.
  auto rows = [&](const std::string& type, const std::string& alias) {
    if (!as_of_us) return "resource " + alias + " WHERE " + alias + ".res_type = '" + type + "'";
    const std::string cols =
        "res_id, deleted, last_updated, patients, tokens, refs, date_params, date_lo, date_hi";
    return "(SELECT " + cols + " FROM resource WHERE res_type = '" + type +
           "' AND last_updated <= " + as_of + " UNION ALL SELECT " + cols +
           " FROM resource_history WHERE res_type = '" + type + "' AND valid_to > " + as_of +
           " AND last_updated <= " + as_of + ") " + alias + " WHERE true";
  };
  std::string text = "SELECT DISTINCT c.p FROM (";
  for (size_t i = 0; i < filters.size(); i++) {
    const TypeFilterQuery& query = filters[i].query;
    if (!IsR4ResourceType(query.type)) return Status::InvalidArgument("bad member-filter type");
    std::string predicate;
    FHIRBULK_RETURN_IF_ERROR(
        TypeFilterSql({query}, static_cast<int>(bound.size()) + 1, &predicate, &bound));
    if (i > 0) text += " INTERSECT ";
    text += query.type == "Patient"
                ? "(SELECT r.res_id AS p FROM " + rows("Patient", "r")
                : "(SELECT unnest(r.patients) AS p FROM " + rows(query.type, "r");
    text += " AND NOT r.deleted AND (" + predicate + "))";
  }
  text += ") AS c WHERE EXISTS (SELECT 1 FROM " + rows("Patient", "pt") +
          " AND pt.res_id = c.p AND NOT pt.deleted)";
  if (candidates != nullptr) {
    bound.push_back(PgTextArrayLiteral(*candidates));
    text += " AND c.p = ANY($" + std::to_string(bound.size()) + "::text[])";
  }
  text += " ORDER BY c.p";
  *sql = std::move(text);
  params->insert(params->end(), bound.begin(), bound.end());
  return Status::OK();
}

}  // namespace fhirbulk
