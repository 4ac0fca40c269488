#include "worker/patient_blocks.h"

#include <algorithm>

#include "export/type_filter_sql.h"
#include "fhir/resource_types.h"
#include "util/fhir_time.h"

namespace fhirbulk {

namespace {

std::string TimestampLiteral(PgConnection* conn, int64_t us) {
  return conn->QuoteLiteral(FormatInstant(us)) + "::timestamptz";
}

std::string ArrayLiteral(PgConnection* conn, const std::vector<std::string>& values) {
  return conn->QuoteLiteral(PgTextArrayLiteral(values)) + "::text[]";
}

bool Named(const ExportRequest& request, std::string_view type) {
  return std::find(request.types.begin(), request.types.end(), type) != request.types.end();
}

// Whether the default Provenance rule gives way to the assoc unit.
bool ProvenanceReplaced(const ExportRequest& request) {
  return !AssociatedProvenanceMode(request).empty() && !Named(request, "Provenance");
}

// The types whose rows are exported for themselves (not supporting), without the Provenance
// an assoc unit replaces.
std::vector<std::string> ExportedTypes(const ExportRequest& request,
                                       const std::vector<std::string>& types) {
  std::vector<std::string> out;
  for (const std::string& t : types) {
    if (RoleOf(request, t) == TypeRole::kSupporting) continue;
    if (t == "Provenance" && ProvenanceReplaced(request)) continue;
    out.push_back(t);
  }
  return out;
}

// " AND last_updated > since AND last_updated < until" on `alias` ("" or "c.").
std::string ChangedSql(PgConnection* conn, const ExportRequest& request, const std::string& alias) {
  std::string s;
  if (request.since_us) {
    s += " AND " + alias + "last_updated > " + TimestampLiteral(conn, *request.since_us);
  }
  if (request.until_us) {
    s += " AND " + alias + "last_updated < " + TimestampLiteral(conn, *request.until_us);
  }
  return s;
}

// The _typeFilter of `types` as one condition on the row's own (unqualified) columns: a type
// without filters passes, a filtered type must match one of its queries. "" when none.
Result<std::string> TypeFiltersSql(PgConnection* conn, const ExportRequest& request,
                                   const std::vector<std::string>& types,
                                   const std::string& type_column) {
  std::vector<std::string> filtered;
  std::string ors;
  for (const std::string& t : types) {
    auto queries = TypeFilterQueriesFor(request.type_filters, t);
    if (queries.empty()) continue;
    std::string filter;
    FHIRBULK_RETURN_IF_ERROR(TypeFilterSqlLiteral(queries, conn, &filter));
    filtered.push_back(t);
    ors.append(" OR (").append(type_column).append(" = ").append(conn->QuoteLiteral(t));
    ors.append(" AND (").append(filter).append("))");
  }
  if (filtered.empty()) return std::string();
  return " AND (" + type_column + " <> ALL(" + ArrayLiteral(conn, filtered) + ")" + ors + ")";
}

UnitPlan OutputUnit(const std::string& type) {
  UnitPlan u;
  u.res_type = type;
  return u;
}

}  // namespace

bool OrganizedByPatient(const ExportRequest& request) {
  return request.organize_output_by == kOrganizeByPatient;
}

std::string AssociatedProvenanceMode(const ExportRequest& request) {
  const auto& codes = request.include_associated_data;
  auto has = [&](std::string_view c) {
    return std::find(codes.begin(), codes.end(), c) != codes.end();
  };
  if (has(kRelevantProvenanceResources)) return "relevant";  // the least restrictive wins
  if (has(kLatestProvenanceResources)) return "latest";
  return "";
}

Result<std::vector<UnitPlan>> PlanPatientBlockUnits(
    PgConnection* conn, const ExportRequest& request, const std::vector<std::string>& types,
    const std::string& job_id, int64_t transaction_time_us, int64_t target_patients) {
  target_patients = std::max<int64_t>(1, target_patients);
  const bool system = request.level == ExportLevel::kSystem;
  const std::string scope = PatientScopeSql(conn, request, job_id, transaction_time_us);
  std::vector<std::string> block_types;
  for (const std::string& t : ExportedTypes(request, types)) {
    if (IsPatientCompartmentType(t)) block_types.push_back(t);
  }
  std::vector<UnitPlan> output, supporting, tail;
  if (!block_types.empty()) {
    // Range boundaries: every target_patients-th patient id, in the database's order.
    const std::string ids = scope.empty()
                                ? "SELECT res_id AS id FROM resource WHERE res_type = 'Patient'"
                                : "SELECT x AS id FROM unnest(" + scope + ") AS x";
    auto r = conn->Exec("SELECT id FROM (SELECT id, row_number() OVER (ORDER BY id) AS rn FROM (" +
                        ids + ") i) s WHERE rn > 1 AND (rn - 1) % " +
                        std::to_string(target_patients) + " = 0 ORDER BY id");
    if (!r.ok()) return r.status();
    std::optional<std::string> lo;
    for (int i = 0; i <= r->rows(); i++) {
      UnitPlan u = OutputUnit("Patient");
      u.blocks = "patients";
      u.block_types = block_types;
      u.block_lo = lo;
      if (i < r->rows()) u.block_hi = r->str(i, 0);
      lo = u.block_hi;
      output.push_back(std::move(u));
    }
  }
  if (system) {
    UnitPlan u = OutputUnit("Patient");
    u.blocks = "unattached";
    u.block_types = ExportedTypes(request, types);
    if (!u.block_types.empty()) output.push_back(std::move(u));
  }
  for (const std::string& t : types) {
    if (RoleOf(request, t) != TypeRole::kSupporting) continue;
    UnitPlan u = OutputUnit(t);
    u.res_ids = true;
    supporting.push_back(std::move(u));
  }
  if (request.since_us) {
    for (const std::string& t : types) {
      if (RoleOf(request, t) == TypeRole::kSupporting) continue;
      UnitPlan u = OutputUnit(t);
      u.kind = UnitKind::kDeleted;
      tail.push_back(std::move(u));
    }
  }
  if (!request.ignored.empty()) {
    UnitPlan u;
    u.kind = UnitKind::kError;
    tail.push_back(std::move(u));
  }
  std::vector<UnitPlan> units;
  for (auto* part : {&output, &supporting, &tail}) {
    for (UnitPlan& u : *part) units.push_back(std::move(u));
  }
  ApplyAssociatedData(request, types, &units);
  return units;
}

void ApplyAssociatedData(const ExportRequest& request, const std::vector<std::string>& types,
                         std::vector<UnitPlan>* units) {
  const std::string mode = AssociatedProvenanceMode(request);
  if (!mode.empty() && !Named(request, "Provenance")) {
    std::vector<UnitPlan> kept;
    size_t insert_at = 0;
    for (UnitPlan& u : *units) {
      if (u.kind == UnitKind::kOutput && u.res_type == "Provenance" && u.blocks.empty()) continue;
      if (u.kind == UnitKind::kOutput && u.res_ids == false) insert_at = kept.size() + 1;
      kept.push_back(std::move(u));
    }
    UnitPlan a = OutputUnit("Provenance");
    a.assoc = mode;
    a.block_types = ExportedTypes(request, types);
    kept.insert(kept.begin() + static_cast<std::ptrdiff_t>(insert_at), std::move(a));
    *units = std::move(kept);
  }
  for (size_t i = 0; i < units->size(); i++) (*units)[i].unit_no = static_cast<int>(i) + 1;
}

Status RecordBlockColumns(PgConnection* conn, const std::string& job_id,
                          const std::vector<UnitPlan>& units) {
  std::vector<std::string> nos, blocks, los, his, types, assocs;
  for (const UnitPlan& u : units) {
    if (u.blocks.empty() && u.assoc.empty()) continue;
    nos.push_back(std::to_string(u.unit_no));
    blocks.push_back(u.blocks);
    los.push_back(u.block_lo ? "v" + *u.block_lo : "");  // "" = NULL; a prefix keeps ""
    his.push_back(u.block_hi ? "v" + *u.block_hi : "");
    types.push_back(PgTextArrayLiteral(u.block_types));
    assocs.push_back(u.assoc);
  }
  if (nos.empty()) return Status::OK();
  auto r = conn->Exec(
      "UPDATE export_unit e SET blocks = NULLIF(x.b, ''), block_lo = substr(NULLIF(x.lo, ''), 2), "
      "block_hi = substr(NULLIF(x.hi, ''), 2), block_types = x.t::text[], "
      "assoc = NULLIF(x.a, '') "
      "FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[]) "
      "AS x(n, b, lo, hi, t, a) WHERE e.job_id = $1::uuid AND e.unit_no = x.n::int",
      {job_id, PgTextArrayLiteral(nos), PgTextArrayLiteral(blocks), PgTextArrayLiteral(los),
       PgTextArrayLiteral(his), PgTextArrayLiteral(types), PgTextArrayLiteral(assocs)});
  return r.ok() ? Status::OK() : r.status();
}

namespace {
// The rows as of transactionTime (sql/0008) under the name `alias`: the current rows with
// last_updated <= t and the replaced versions that were current at t (for any id at most one
// of the two), with every column of `resource`. One statement reads both in one snapshot, so
// a version replaced while the unit runs is read exactly once, live or kept. Without
// with_history (the caller saw, in the same snapshot, that no kept version is current at t):
// `resource` itself, whose indexes then serve the query.
std::string RowsAsOfSql(const std::string& t, const std::string& alias, bool with_history = true) {
  if (!with_history) return "resource AS " + alias;
  const std::string columns =
      "res_type, res_id, version, last_updated, deleted, content_hash, body, patients, tokens, "
      "refs, date_params, date_lo, date_hi, outrefs";
  return "(SELECT " + columns + " FROM resource WHERE last_updated <= " + t + " UNION ALL SELECT " +
         columns + " FROM resource_history WHERE valid_to > " + t + " AND last_updated <= " + t +
         ") AS " + alias;
}
}  // namespace

Status SetBlockIndexOrder(PgConnection* conn) {
  auto r = conn->Exec(
      "SET LOCAL enable_sort = off; SET LOCAL enable_bitmapscan = off; "
      "SET LOCAL max_parallel_workers_per_gather = 0");
  return r.ok() ? Status::OK() : r.status();
}

Result<bool> BlockUnitNeedsHistory(PgConnection* conn, int64_t transaction_time_us,
                                   const UnitPlan& unit) {
  const std::string t = TimestampLiteral(conn, transaction_time_us);
  std::vector<std::string> types = unit.block_types;
  if (!unit.assoc.empty()) types.push_back("Provenance");  // the targets' types and its own
  auto r = conn->Exec("SELECT EXISTS (SELECT 1 FROM resource_history WHERE valid_to > " + t +
                      " AND last_updated <= " + t + " AND res_type = ANY(" +
                      ArrayLiteral(conn, types) + "))");
  if (!r.ok()) return r.status();
  return r->get(0, 0) == "t";
}

Result<std::string> BuildBlockUnitCopySql(PgConnection* conn, const ExportRequest& request,
                                          const std::string& job_id, int64_t transaction_time_us,
                                          const UnitPlan& unit, bool with_history,
                                          bool* index_order) {
  if (index_order != nullptr) *index_order = false;
  const std::string t = TimestampLiteral(conn, transaction_time_us);
  const std::string types = ArrayLiteral(conn, unit.block_types);
  auto filters = TypeFiltersSql(conn, request, unit.block_types, "res_type");
  if (!filters.ok()) return filters.status();
  const std::string common =
      " AND NOT deleted AND last_updated <= " + t + ChangedSql(conn, request, "") + *filters;
  if (unit.blocks == "unattached") {
    return "COPY (SELECT NULL::text, res_type, body FROM " +
           RowsAsOfSql(t, "resource", with_history) + " WHERE res_type = ANY(" + types +
           ") AND patients[1] IS NULL" + common + ") TO STDOUT (FORMAT binary)";
  }
  if (unit.blocks != "patients") return Status::InvalidArgument("not a blocks unit");
  const std::string scope = PatientScopeSql(conn, request, job_id, transaction_time_us);
  std::string range;
  auto bound = [&](const std::string& key) {
    if (unit.block_lo) range += " AND " + key + " >= " + conn->QuoteLiteral(*unit.block_lo);
    if (unit.block_hi) range += " AND " + key + " < " + conn->QuoteLiteral(*unit.block_hi);
  };
  if (scope.empty()) {
    // The expressions of the index resource_block, so it delivers the rows in order (kept
    // versions, when there are any, are sorted in).
    if (index_order != nullptr) *index_order = !with_history;
    bound("patients[1]");
    return "COPY (SELECT patients[1], res_type, body FROM " +
           RowsAsOfSql(t, "resource", with_history) + " WHERE res_type = ANY(" + types +
           ") AND patients[1] IS NOT NULL" + range + common +
           " ORDER BY patients[1], (res_type <> 'Patient'), res_type) TO STDOUT (FORMAT binary)";
  }
  // A patient list: the block is the least listed patient of the row; the GIN index on
  // `patients` finds the rows of the range's patients.
  std::string slice_cond;
  if (unit.block_lo) slice_cond += " AND x >= " + conn->QuoteLiteral(*unit.block_lo);
  if (unit.block_hi) slice_cond += " AND x < " + conn->QuoteLiteral(*unit.block_hi);
  const std::string slice = "(SELECT coalesce(array_agg(x), '{}'::text[]) FROM unnest(" + scope +
                            ") AS x WHERE true" + slice_cond + ")";
  bound("b.p");
  return "COPY (SELECT b.p, res_type, body FROM " + RowsAsOfSql(t, "r", with_history) +
         " CROSS JOIN LATERAL (SELECT min(x) AS p FROM unnest(r.patients) AS x WHERE " +
         InPatientScopeSql("x", scope) + ") b WHERE res_type = ANY(" + types +
         ") AND patients && " + slice + range + common +
         " ORDER BY b.p, (res_type <> 'Patient'), res_type) TO STDOUT (FORMAT binary)";
}

Result<std::string> BuildAssociatedProvenanceCopySql(PgConnection* conn,
                                                     const ExportRequest& request,
                                                     const std::string& job_id,
                                                     int64_t transaction_time_us,
                                                     const UnitPlan& unit, bool with_history) {
  if (unit.assoc != "latest" && unit.assoc != "relevant") {
    return Status::InvalidArgument("not an associated-data unit");
  }
  const std::string t = TimestampLiteral(conn, transaction_time_us);
  // Both the Provenance and their targets as of transactionTime (with_history: as for a
  // blocks unit), so a Provenance or target replaced or deleted since counts as it was then.
  // Is target row c exported? As the job's output units select it (the column names of the
  // filters resolve to c: the innermost FROM).
  std::vector<std::string> types;
  for (const std::string& type : unit.block_types) {
    if (type != "Provenance") types.push_back(type);
  }
  auto filters = TypeFiltersSql(conn, request, types, "c.res_type");
  if (!filters.ok()) return filters.status();
  std::string exported = "c.res_type = ANY(" + ArrayLiteral(conn, types) +
                         ") AND NOT c.deleted AND c.last_updated <= " + t +
                         ChangedSql(conn, request, "c.") + *filters;
  if (request.level != ExportLevel::kSystem) {
    const std::string scope = PatientScopeSql(conn, request, job_id, transaction_time_us);
    if (scope.empty()) {
      exported += " AND cardinality(c.patients) > 0";
    } else {
      auto size = PatientScopeSize(conn, job_id);
      if (!size.ok()) return size.status();
      exported += " AND " + PatientsInScopeSql("c.patients", scope, *size);
    }
  }
  auto target_exported = [&](const std::string& ref) {
    return "EXISTS (SELECT 1 FROM " + RowsAsOfSql(t, "c", with_history) +
           " WHERE c.res_type = split_part(substr(" + ref +
           ", 8), '/', 1) AND c.res_id = split_part(substr(" + ref + ", 8), '/', 2) AND " +
           exported + ")";
  };
  const std::string live = "p.res_type = 'Provenance' AND NOT p.deleted AND p.last_updated <= " + t;
  if (unit.assoc == "relevant") {
    return "COPY (SELECT p.body FROM " + RowsAsOfSql(t, "p", with_history) + " WHERE " + live +
           " AND EXISTS (SELECT 1 FROM unnest(p.refs) AS ref WHERE ref LIKE 'target=%' AND " +
           target_exported("ref") + ")) TO STDOUT (FORMAT binary)";
  }
  // latest: per exported target, its most recent Provenance (recorded, else lastUpdated).
  const std::string recency =
      "coalesce((SELECT max(d.lo) FROM unnest(p.date_params, p.date_lo) AS d(param, lo) "
      "WHERE d.param = 'recorded'), p.last_updated)";
  return "COPY (WITH latest AS (SELECT DISTINCT ON (ref) ref, p.res_id FROM " +
         RowsAsOfSql(t, "p", with_history) + " CROSS JOIN LATERAL unnest(p.refs) AS ref WHERE " +
         live + " AND ref LIKE 'target=%' ORDER BY ref, " + recency +
         " DESC, p.res_id DESC) SELECT p.body FROM " + RowsAsOfSql(t, "p", with_history) +
         " WHERE " + live + " AND p.res_id IN (SELECT l.res_id FROM latest l WHERE " +
         target_exported("l.ref") + ")) TO STDOUT (FORMAT binary)";
}

}  // namespace fhirbulk
