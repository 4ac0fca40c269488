#include "export/cohort.h"

#include <algorithm>
#include <limits>
#include <string_view>
#include <unordered_set>

#include "db/pg.h"
#include "export/kickoff_util.h"
#include "export/type_filter_parse.h"
#include "export/type_filter_sql.h"
#include "fhir/resource_types.h"
#include "fhir/search_params.h"
#include "util/fhir_time.h"

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

namespace {

// Types whose partition has the date hull index (sql/0012 resource_*_date_hull).
bool HasDateHullIndex(const std::string& type) {
  return type == "Encounter" || type == "Condition" || type == "Procedure";
}

// For each date criterion of `query` whose values all have a bounded prefix, a necessary
// condition over the row's date hull (sql/0012 fhirbulk_date_hull: the range from its
// earliest date value to its latest), which the hull index answers: a value T = [lo, hi]
// matching prefix p of the search range S = [slo, shi] lies in the hull and meets B(p):
// eq S; gt, sa [shi, inf]; ge [slo, inf]; lt, eb [-inf, slo]; le [-inf, shi]. Values are ORed:
// the hull of their B. ne and ap have no bound. The exact predicate still decides.
std::string DateHullConditions(const TypeFilterQuery& query, std::vector<std::string>* bound) {
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  std::string out;
  for (const FilterCriterion& c : query.criteria) {
    const SearchParamDef* def = FindSearchParam(query.type, c.param);
    if (def == nullptr || def->kind != SearchParamKind::kDate || !c.modifier.empty() ||
        c.values.empty() || c.prefixes.size() != c.values.size()) {
      continue;
    }
    int64_t lo = kMax, hi = kMin;
    bool usable = true;
    for (size_t i = 0; i < c.values.size() && usable; i++) {
      auto range = ParseDateTimeRange(c.values[i]);
      const std::string& p = c.prefixes[i];
      if (!range.ok() || !(p == "eq" || p.empty() || p == "gt" || p == "sa" || p == "ge" ||
                           p == "lt" || p == "eb" || p == "le")) {
        usable = false;  // ne, ap: no bound
      } else if (p == "eq" || p.empty()) {
        lo = std::min(lo, range->lo_us), hi = std::max(hi, range->hi_us);
      } else if (p == "gt" || p == "sa") {
        lo = std::min(lo, range->hi_us), hi = kMax;
      } else if (p == "ge") {
        lo = std::min(lo, range->lo_us), hi = kMax;
      } else if (p == "lt" || p == "eb") {
        lo = kMin, hi = std::max(hi, range->lo_us);
      } else {  // le
        lo = kMin, hi = std::max(hi, range->hi_us);
      }
    }
    if (!usable || (lo == kMin && hi == kMax)) continue;
    bound->push_back(PgTimestampParam(lo));
    const std::string a = "$" + std::to_string(bound->size()) + "::timestamptz";
    bound->push_back(PgTimestampParam(hi));
    const std::string b = "$" + std::to_string(bound->size()) + "::timestamptz";
    out += " AND fhirbulk_date_hull(r.date_lo, r.date_hi) && tstzrange(";
    out += a;
    out += ", ";
    out += b;
    out += ", '[]')";
  }
  return out;
}

}  // namespace

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
    if (HasDateHullIndex(query.type)) text += DateHullConditions(query, &bound);
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

Result<std::optional<CohortDefinition>> LoadCohortDefinition(PgConnection* conn,
                                                             const std::string& group_id,
                                                             std::optional<int64_t> as_of_us) {
  std::string sql =
      "SELECT o.candidates IS NOT NULL, coalesce(o.base_url, '') FROM group_owner o JOIN resource r"
      " ON r.res_type = 'Group' AND r.res_id = o.group_id WHERE o.group_id = $1"
      " AND o.criteria IS NOT NULL AND NOT r.deleted";
  std::vector<PgParam> params = {group_id};
  const std::string as_of = as_of_us ? std::to_string(*as_of_us) : std::string();
  if (as_of_us) {
    sql += " AND r.last_updated <= timestamptz 'epoch' + $2::int8 * interval '1 microsecond'";
    params.push_back(as_of);
  }
  auto g = conn->Exec(sql, params);
  if (!g.ok()) return g.status();
  if (g->rows() == 0) return std::optional<CohortDefinition>();
  const bool has_candidates = g->get(0, 0) == "t";
  const std::string base_url = g->str(0, 1);
  auto list = [&](const char* column) -> Result<std::vector<std::string>> {
    auto r = conn->Exec(std::string("SELECT x FROM group_owner, unnest(") + column +
                            ") WITH ORDINALITY AS u(x, n) WHERE group_id = $1 ORDER BY n",
                        {group_id});
    if (!r.ok()) return r.status();
    std::vector<std::string> out;
    out.reserve(static_cast<size_t>(r->rows()));
    for (int i = 0; i < r->rows(); i++) out.push_back(r->str(i, 0));
    return out;
  };
  auto criteria = list("criteria");
  if (!criteria.ok()) return criteria.status();
  CohortDefinition def;
  if (has_candidates) {
    auto c = list("candidates");
    if (!c.ok()) return c.status();
    def.candidates = std::move(c).value();
  }
  for (const std::string& expression : *criteria) {
    auto f = ParseMemberFilter(expression, base_url, KickoffLimits());
    if (!f.ok()) return f.status().WithContext("Group/" + group_id);
    def.filters.push_back(std::move(f).value());
  }
  if (def.filters.empty()) return std::optional<CohortDefinition>();
  return std::optional<CohortDefinition>(std::move(def));
}

Result<std::vector<std::string>> CohortNonMembers(PgConnection* conn,
                                                  const CohortDefinition& definition,
                                                  const std::vector<std::string>& patients) {
  std::vector<std::string> candidates;
  if (definition.candidates) {
    const std::unordered_set<std::string_view> allowed(definition.candidates->begin(),
                                                       definition.candidates->end());
    for (const std::string& p : patients) {
      if (allowed.count(p) > 0) candidates.push_back(p);
    }
  } else {
    candidates = patients;
  }
  std::string sql;
  std::vector<std::string> params;
  FHIRBULK_RETURN_IF_ERROR(CohortSql(definition.filters, &candidates, &sql, &params));
  params.push_back(PgTextArrayLiteral(patients));
  auto r = conn->Exec("SELECT p FROM unnest($" + std::to_string(params.size()) +
                          "::text[]) WITH ORDINALITY AS u(p, n) WHERE p NOT IN (SELECT m.p FROM (" +
                          sql + ") AS m(p)) ORDER BY n",
                      std::vector<PgParam>(params.begin(), params.end()));
  if (!r.ok()) return r.status();
  std::vector<std::string> out;
  out.reserve(static_cast<size_t>(r->rows()));
  for (int i = 0; i < r->rows(); i++) out.push_back(r->str(i, 0));
  return out;
}

}  // namespace fhirbulk
