#include "worker/planner.h"
#include "export/job_dir.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <thread>

#include "export/type_filter_sql.h"
#include "fhir/resource_types.h"
#include "http/outcome.h"
#include "util/errno_text.h"
#include "util/fhir_time.h"
#include "util/log_escape.h"
#include "worker/cohort_runner.h"
#include "worker/ndjson_writer.h"
#include "worker/patient_blocks.h"
#include "worker/unit_runner.h"

namespace fhirbulk {

namespace {

// Lines quote PostgreSQL messages, which can carry client values (a _typeFilter's, say).
void Log(const PlannerOptions& o, const std::string& msg) {
  if (o.log) o.log(LogSanitize(msg));
}

bool Stopping(const PlannerOptions& o) { return o.stop != nullptr && o.stop->load(); }

std::string TimestampLiteral(PgConnection* conn, int64_t us) {
  return conn->QuoteLiteral(FormatInstant(us)) + "::timestamptz";
}

// Gives the planner lease back so another worker can plan at once (shutdown, lost database).
void ReleasePlannerLease(PgConnection* conn, const std::string& job_id,
                         const std::string& worker_id) {
  (void)conn->Exec(
      "UPDATE export_job SET planner = NULL, planner_lease = NULL "
      "WHERE job_id = $1::uuid AND planner = $2 AND state = 'accepted'",
      {job_id, worker_id});
}

// Renews the planner lease; false when it is no longer ours (or the job left `accepted`).
Result<bool> RenewPlannerLease(PgConnection* conn, const std::string& job_id,
                               const PlannerOptions& o) {
  auto r = conn->Exec(
      "UPDATE export_job SET planner_lease = now() + $3::int * interval '1 second' "
      "WHERE job_id = $1::uuid AND planner = $2 AND state = 'accepted' RETURNING 1",
      {job_id, o.worker_id, std::to_string(o.lease_seconds)});
  if (!r.ok()) return r.status();
  return r->rows() == 1;
}

// Waits until no transaction older than the kick-off is running. False when the lease was
// lost or the worker is stopping.
Result<bool> WaitForOlderTransactions(PgConnection* conn, const std::string& job_id,
                                      const std::string& xmax_at_kickoff, const PlannerOptions& o) {
  using Clock = std::chrono::steady_clock;
  auto started = Clock::now();
  auto last_renewal = started;
  bool warned = false;
  int sleep_ms = 10;
  while (true) {
    auto r =
        conn->Exec("SELECT pg_snapshot_xmin(pg_current_snapshot()) >= $1::xid8", {xmax_at_kickoff});
    if (!r.ok()) return r.status();
    if (r->get(0, 0) == "t") return true;
    if (Stopping(o)) return false;
    auto now = Clock::now();
    if (now - last_renewal > std::chrono::seconds(std::max(1, o.lease_seconds / 3))) {
      auto renewed = RenewPlannerLease(conn, job_id, o);
      if (!renewed.ok()) return renewed.status();
      if (!*renewed) return false;
      last_renewal = now;
    }
    if (!warned && now - started > std::chrono::seconds(10)) {
      Log(o, "job " + job_id +
                 ": waiting for transactions older than its kick-off to end (a long-running "
                 "transaction holds the export back)");
      warned = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms));
    sleep_ms = std::min(100, sleep_ms * 2);
  }
}

Status MakeDirectory(const std::string& path) {
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
    return Status::IOError("creating the job directory: " + ErrnoText(errno));
  }
  // The group of the export directory (the one shared with nginx), whatever this process's
  // primary group; then the mode, whatever the umask. setgid: files inherit the group.
  const std::string parent = path.substr(0, path.find_last_of('/'));
  struct stat pst;
  if (!parent.empty() && ::stat(parent.c_str(), &pst) == 0) {
    struct stat st;
    if (::stat(path.c_str(), &st) == 0 && st.st_gid != pst.st_gid &&
        ::chown(path.c_str(), static_cast<uid_t>(-1), pst.st_gid) != 0) {
      return Status::IOError(
          "giving the job directory the export directory's group: " + ErrnoText(errno) +
          " (the worker's user must be a member of that group)");
    }
  }
  if (::chmod(path.c_str(), kExportDirMode) != 0) {
    return Status::IOError("setting the job directory's mode: " + ErrnoText(errno));
  }
  return Status::OK();
}

// "<dir>/.owner" holds the client_id, so that whoever serves the files (any nginx with the
// directory, no database) can tell the owner. Written to a temporary name and renamed: a
// reader sees the whole id or no file.
Status WriteJobOwner(const std::string& dir, const std::string& client_id) {
  const std::string final_path = dir + "/" + std::string(kJobOwnerFile);
  const std::string tmp_path = dir + "/" + std::string(kJobOwnerTempFile);
  int fd = ::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, kExportFileMode);
  bool ok = fd >= 0 && ::fchmod(fd, kExportFileMode) == 0;
  size_t done = 0;
  while (ok && done < client_id.size()) {
    ssize_t n = ::write(fd, client_id.data() + done, client_id.size() - done);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) done += static_cast<size_t>(n);
  }
  int err = errno;
  if (fd >= 0 && ::close(fd) != 0 && ok) {
    ok = false;
    err = errno;
  }
  if (ok && std::rename(tmp_path.c_str(), final_path.c_str()) != 0) {
    ok = false;
    err = errno;
  }
  if (!ok) {
    std::remove(tmp_path.c_str());
    return Status::IOError("writing the job owner file: " + ErrnoText(err));
  }
  return Status::OK();
}

std::string OptionalInt(const std::optional<int64_t>& v) {
  return v ? std::to_string(*v) : std::string();
}

// Records the supporting units' resource ids (export_unit.res_ids): one query over the
// compartment rows the job's units select, kept in the database (never through the worker).
Status RecordSupportingIds(PgConnection* conn, const std::string& job_id,
                           const ExportRequest& request, int64_t transaction_time_us,
                           const std::vector<std::string>& types,
                           const std::vector<UnitPlan>& units) {
  std::vector<std::string> supporting;
  for (const UnitPlan& u : units) {
    if (u.res_ids) supporting.push_back(u.res_type);
  }
  if (supporting.empty()) return Status::OK();
  auto scope_size = PatientScopeSize(conn, job_id);
  if (!scope_size.ok()) return scope_size.status();
  auto refs = SupportingRefsSql(conn, request, transaction_time_us,
                                PatientScopeSql(conn, request, job_id, transaction_time_us),
                                *scope_size, types, supporting);
  if (!refs.ok()) return refs.status();
  // ORDER BY id: the unit then reads its rows in primary key order.
  auto r = conn->Exec("WITH refs AS MATERIALIZED (" + *refs +
                          ") "
                          "UPDATE export_unit u SET res_ids = coalesce((SELECT array_agg(substr("
                          "r.ref, length(u.res_type) + 2) ORDER BY r.ref) FROM refs r WHERE "
                          "split_part(r.ref, '/', 1) = u.res_type), '{}') "
                          "WHERE u.job_id = $1::uuid AND u.kind = 'output' "
                          "AND u.res_type = ANY($2::text[])",
                      {job_id, PgTextArrayLiteral(supporting)});
  return r.ok() ? Status::OK() : r.status();
}

// Inserts the units and marks the job running (or completed when there are none).
Status RecordPlan(PgConnection* conn, const std::string& job_id, const ExportRequest& request,
                  int64_t transaction_time_us, const std::vector<std::string>& types,
                  const std::vector<UnitPlan>& units, const PlannerOptions& o) {
  if (!units.empty()) {
    std::vector<std::string> nos, kinds, types_of, los, his;
    for (const UnitPlan& u : units) {
      nos.push_back(std::to_string(u.unit_no));
      kinds.push_back(UnitKindName(u.kind));
      types_of.push_back(u.res_type);
      los.push_back(OptionalInt(u.page_lo));
      his.push_back(OptionalInt(u.page_hi));
    }
    auto ins = conn->Exec(
        "INSERT INTO export_unit (job_id, unit_no, kind, res_type, page_lo, page_hi) "
        "SELECT $1::uuid, n::int, k, NULLIF(t, ''), NULLIF(lo, '')::bigint, "
        "NULLIF(hi, '')::bigint "
        "FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) "
        "AS u(n, k, t, lo, hi)",
        {job_id, PgTextArrayLiteral(nos), PgTextArrayLiteral(kinds), PgTextArrayLiteral(types_of),
         PgTextArrayLiteral(los), PgTextArrayLiteral(his)});
    if (!ins.ok()) return ins.status();
    FHIRBULK_RETURN_IF_ERROR(RecordBlockColumns(conn, job_id, units));  // STU3
    FHIRBULK_RETURN_IF_ERROR(
        RecordSupportingIds(conn, job_id, request, transaction_time_us, types, units));
    auto upd = conn->Exec(
        "UPDATE export_job SET state = 'running', started_at = now(), units_total = $2::int, "
        "planner = NULL, planner_lease = NULL WHERE job_id = $1::uuid",
        {job_id, std::to_string(units.size())});
    return upd.ok() ? Status::OK() : upd.status();
  }
  auto done = conn->Exec(
      "UPDATE export_job SET state = 'completed', started_at = now(), finished_at = now(), "
      "expires_at = now() + $2::bigint * interval '1 second', units_total = 0, "
      "planner = NULL, planner_lease = NULL WHERE job_id = $1::uuid",
      {job_id, std::to_string(o.retention_seconds)});
  return done.ok() ? Status::OK() : done.status();
}

}  // namespace

const char* UnitKindName(UnitKind kind) {
  switch (kind) {
    case UnitKind::kOutput:
      return "output";
    case UnitKind::kDeleted:
      return "deleted";
    case UnitKind::kError:
      return "error";
  }
  return "output";
}

TypeRole RoleOf(const ExportRequest& request, std::string_view type) {
  if (request.level == ExportLevel::kSystem) return TypeRole::kAll;
  return IsPatientCompartmentType(type) ? TypeRole::kCompartment : TypeRole::kSupporting;
}

Result<std::string> PartitionOf(PgConnection* conn, std::string_view type) {
  std::string name = "resource_";
  for (char c : type) name += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  auto r = conn->Exec("SELECT coalesce(to_regclass($1), 'resource_other'::regclass)::text", {name});
  if (!r.ok()) return r.status();
  return r->str(0, 0);
}

Result<std::vector<std::string>> ResolveExportTypes(PgConnection* conn,
                                                    const ExportRequest& request) {
  std::vector<std::string> types;
  if (!request.types.empty()) {
    types = request.types;
    std::sort(types.begin(), types.end());
    return types;
  }
  std::vector<std::string> candidates;
  if (request.level == ExportLevel::kSystem) {
    for (std::string_view t : R4ResourceTypes()) candidates.emplace_back(t);
  } else {
    for (std::string_view t : PatientCompartmentTypes()) {
      if (t != "Group") candidates.emplace_back(t);  // the Group itself only when named
    }
    for (std::string_view t : PatientExportSupportingTypes()) candidates.emplace_back(t);
  }
  // A type has rows when its own partition is not empty, or when resource_other holds it.
  // Both checks are cheap: a size lookup per partition and a skip scan over resource_other's
  // primary key (one index probe per distinct type), instead of a probe per type through
  // every partition. A partition whose rows were all vacuumed away yields an empty unit.
  auto r = conn->Exec(
      "WITH RECURSIVE other(t) AS ("
      "  SELECT min(res_type) FROM resource_other"
      "  UNION ALL SELECT (SELECT min(res_type) FROM resource_other WHERE res_type > other.t)"
      "  FROM other WHERE other.t IS NOT NULL) "
      "SELECT t FROM unnest($1::text[]) AS t "
      "WHERE t IN (SELECT other.t FROM other WHERE other.t IS NOT NULL) "
      "OR coalesce(pg_relation_size(to_regclass('resource_' || lower(t))), 0) > 0 "
      "ORDER BY t",
      {PgTextArrayLiteral(candidates)});
  if (!r.ok()) return r.status();
  for (int i = 0; i < r->rows(); i++) types.push_back(r->str(i, 0));
  return types;
}

std::string PatientFilterArraySql(PgConnection* conn, const ExportRequest& request,
                                  int64_t transaction_time_us) {
  std::string patients_literal;
  if (!request.patients.empty()) {
    patients_literal = conn->QuoteLiteral(PgTextArrayLiteral(request.patients)) + "::text[]";
  }
  if (request.level == ExportLevel::kGroup) {
    const std::string t = TimestampLiteral(conn, transaction_time_us);
    const std::string g = conn->QuoteLiteral(request.group_id);
    // The membership of the Group's version current at transactionTime (sql/0008): the
    // group_member rows when the Group has not changed since, else the kept membership of
    // the replaced version that was current then.
    std::string sql =
        "(SELECT coalesce(array_agg(DISTINCT m.patient_id), '{}'::text[]) FROM ("
        "SELECT patient_id, inactive, period_start, period_end FROM group_member "
        "WHERE group_id = " +
        g + " AND EXISTS (SELECT 1 FROM resource r WHERE r.res_type = 'Group' AND r.res_id = " + g +
        " AND r.last_updated <= " + t +
        ") UNION ALL SELECT gm.patient_id, gm.inactive, gm.period_start, gm.period_end "
        "FROM group_member_history gm JOIN resource_history h ON h.res_type = 'Group' "
        "AND h.res_id = gm.group_id AND h.version = gm.group_version WHERE gm.group_id = " +
        g + " AND h.last_updated <= " + t + " AND h.valid_to > " + t +
        ") m WHERE NOT m.inactive AND (m.period_start IS NULL OR m.period_start <= " + t +
        ") AND (m.period_end IS NULL OR m.period_end >= " + t + ")";
    if (!patients_literal.empty()) sql += " AND m.patient_id = ANY(" + patients_literal + ")";
    return sql + ")";
  }
  if (request.level == ExportLevel::kPatient && !patients_literal.empty()) {
    return patients_literal;
  }
  return "";
}

std::string PatientScopeSql(PgConnection* conn, const ExportRequest& request,
                            const std::string& job_id, int64_t transaction_time_us) {
  const std::string live = PatientFilterArraySql(conn, request, transaction_time_us);
  if (live.empty()) return "";
  // coalesce evaluates the fallback (an init plan) only when patient_scope is NULL.
  return "coalesce((SELECT s.patient_scope FROM export_job s WHERE s.job_id = " +
         conn->QuoteLiteral(job_id) + "::uuid), " + live + ")";
}

std::string InPatientScopeSql(const std::string& element, const std::string& scope_sql) {
  return "((" + element + ") IN (SELECT unnest(" + scope_sql + "))) IS TRUE";
}

std::string PatientsInScopeSql(const std::string& column, const std::string& scope_sql,
                               int64_t scope_size) {
  if (scope_size >= 0 && scope_size <= kGinScopeMaxPatients) {
    return column + " && " + scope_sql;
  }
  return "EXISTS (SELECT 1 FROM unnest(" + column + ") AS scope_p WHERE " +
         InPatientScopeSql("scope_p", scope_sql) + ")";
}

Result<int64_t> PatientScopeSize(PgConnection* conn, const std::string& job_id) {
  auto r = conn->Exec("SELECT cardinality(patient_scope) FROM export_job WHERE job_id = $1::uuid",
                      {job_id});
  if (!r.ok()) return r.status();
  if (r->rows() == 0 || r->is_null(0, 0)) return int64_t{-1};
  return r->int64(0, 0);
}

Result<std::vector<UnitPlan>> PlanUnits(PgConnection* conn, const ExportRequest& request,
                                        const std::vector<std::string>& types,
                                        int64_t target_unit_resources, int64_t target_unit_bytes) {
  const bool patient_list = request.level == ExportLevel::kGroup ||
                            (request.level == ExportLevel::kPatient && !request.patients.empty());
  target_unit_resources = std::max<int64_t>(1, target_unit_resources);
  target_unit_bytes = std::max<int64_t>(1, target_unit_bytes);
  // Sizes of every type's partition (rows, heap pages, heap + TOAST bytes), in one round trip.
  // resource_other holds several types; its size still bounds the work of each.
  struct Size {
    int64_t rows = -1, pages = 0, bytes = 0;
  };
  std::map<std::string, Size> sizes;
  if (!types.empty()) {
    auto stats = conn->Exec(
        "SELECT t, c.reltuples::bigint, pg_relation_size(c.oid) / "
        "current_setting('block_size')::bigint, pg_relation_size(c.oid) + "
        "CASE WHEN c.reltoastrelid <> 0 THEN pg_relation_size(c.reltoastrelid) ELSE 0 END "
        "FROM unnest($1::text[]) AS t JOIN pg_class c ON c.oid = "
        "coalesce(to_regclass('resource_' || lower(t)), 'resource_other'::regclass)",
        {PgTextArrayLiteral(types)});
    if (!stats.ok()) return stats.status();
    for (int i = 0; i < stats->rows(); i++) {
      sizes[stats->str(i, 0)] = {stats->int64(i, 1), stats->int64(i, 2), stats->int64(i, 3)};
    }
  }
  std::vector<UnitPlan> output, supporting, tail;
  for (const std::string& type : types) {
    const Size size = sizes.count(type) ? sizes[type] : Size();
    const TypeRole role = RoleOf(request, type);
    if (role == TypeRole::kSupporting || patient_list) {
      UnitPlan u;
      u.res_type = type;
      u.cost_bytes = size.bytes;  // an upper bound; what matters is the order
      if (role == TypeRole::kSupporting) {
        u.res_ids = true;
        supporting.push_back(u);
      } else {
        output.push_back(u);
      }
      continue;
    }
    const int64_t rows = size.rows >= 0 ? size.rows : size.pages * 8;  // never analyzed
    const int64_t by_rows = (rows + target_unit_resources - 1) / target_unit_resources;
    const int64_t by_bytes = (size.bytes + target_unit_bytes - 1) / target_unit_bytes;
    const int64_t n =
        std::min(std::max<int64_t>({1, by_rows, by_bytes}), std::max<int64_t>(1, size.pages));
    for (int64_t i = 0; i < n; i++) {
      UnitPlan u;
      u.res_type = type;
      if (i > 0) u.page_lo = size.pages * i / n;
      if (i < n - 1) u.page_hi = size.pages * (i + 1) / n;
      u.cost_bytes = size.bytes / n;  // equal within a type: the stable sort keeps page order
      output.push_back(u);
    }
  }
  std::stable_sort(output.begin(), output.end(), [](const UnitPlan& a, const UnitPlan& b) {
    return a.cost_bytes > b.cost_bytes;
  });
  if (request.allow_partial_manifests && !output.empty()) {
    // Partial manifests: the cheapest unit first, so that a first file is published early
    // (its manifest page is what the client waits for); the rest stays largest first.
    std::rotate(output.begin(), output.end() - 1, output.end());
  }
  if (request.since_us) {
    for (const std::string& type : types) {
      if (RoleOf(request, type) == TypeRole::kSupporting) continue;
      UnitPlan u;
      u.kind = UnitKind::kDeleted;
      u.res_type = type;
      tail.push_back(u);
    }
  }
  if (!request.ignored.empty()) {
    UnitPlan u;
    u.kind = UnitKind::kError;
    tail.push_back(u);
  }
  std::vector<UnitPlan> head;
  if (request.allow_partial_manifests && !tail.empty() && tail.back().kind == UnitKind::kError) {
    // Partial manifests wait for the error files (every page repeats `error`, see
    // export/manifest_pages.h): the cheap error unit goes first so they come early.
    head.push_back(std::move(tail.back()));
    tail.pop_back();
  }
  std::vector<UnitPlan> units;
  for (auto* part : {&head, &output, &supporting, &tail}) {
    for (UnitPlan& u : *part) {
      u.unit_no = static_cast<int>(units.size()) + 1;
      units.push_back(std::move(u));
    }
  }
  return units;
}

Result<bool> PlanNextJob(PgConnection* conn, const PlannerOptions& o) {
  auto claim = conn->Exec(
      "UPDATE export_job SET planner = $1, planner_lease = now() + $2::int * interval '1 second' "
      "WHERE job_id = (SELECT job_id FROM export_job WHERE state = 'accepted' "
      "AND (planner_lease IS NULL OR planner_lease < now()) ORDER BY created_at LIMIT 1 "
      "FOR UPDATE SKIP LOCKED) "
      "RETURNING job_id::text, request::text, "
      "(extract(epoch FROM transaction_time) * 1000000)::bigint, xmax_at_kickoff::text, "
      "client_id",
      {o.worker_id, std::to_string(o.lease_seconds)});
  if (!claim.ok()) return claim.status();
  if (claim->rows() == 0) return false;
  const std::string job_id = claim->str(0, 0);
  const std::string request_json = claim->str(0, 1);
  const int64_t transaction_time_us = claim->int64(0, 2);
  const std::string xmax_at_kickoff = claim->str(0, 3);
  const std::string client_id = claim->str(0, 4);

  auto request = ExportRequestFromJson(request_json);
  if (!request.ok()) {
    const std::string ref = ErrorReference();
    Log(o, "job " + job_id + ": the stored request cannot be read (reference " + ref +
               "): " + request.status().ToString());
    Status s = FailJob(conn, o.export_dir, job_id,
                       "the export failed on the server (reference " + ref + ")", false,
                       o.retention_seconds);
    if (!s.ok()) return s;
    return true;
  }

  const auto claimed_at = std::chrono::steady_clock::now();
  auto waited = WaitForOlderTransactions(conn, job_id, xmax_at_kickoff, o);
  const auto waited_until = std::chrono::steady_clock::now();
  if (!waited.ok()) return waited.status();
  if (!*waited) {
    if (Stopping(o)) ReleasePlannerLease(conn, job_id, o.worker_id);
    return true;
  }

  int units_planned = 0;
  bool history_pruned = false;
  Status s = PgTransaction(conn, [&]() -> Status {
    auto durable = conn->Exec("SET LOCAL synchronous_commit = on; SET LOCAL statement_timeout = " +
                              std::to_string(std::max<int64_t>(0, o.statement_timeout_ms)));
    if (!durable.ok()) return durable.status();
    auto mine = conn->Exec(
        "SELECT 1 FROM export_job WHERE job_id = $1::uuid AND planner = $2 "
        "AND state = 'accepted' FOR UPDATE",
        {job_id, o.worker_id});
    if (!mine.ok()) return mine.status();
    if (mine->rows() == 0) return Status::Aborted("planner lease lost");
    // The versions replaced after transactionTime must all still be kept (sql/0008): the
    // janitor may have pruned past it if this job's kick-off committed after the janitor
    // read the jobs. The share lock orders this check against a pruning pass.
    auto horizon = conn->Exec(
        "SELECT pruned_before > timestamptz 'epoch' + $1::bigint * interval '1 microsecond' "
        "FROM history_horizon WHERE id = 1 FOR SHARE",
        {std::to_string(transaction_time_us)});
    if (!horizon.ok()) return horizon.status();
    if (horizon->rows() == 1 && horizon->get(0, 0) == "t") {
      history_pruned = true;
      return Status::OK();
    }
    auto gone = conn->Exec("DELETE FROM export_unit WHERE job_id = $1::uuid", {job_id});
    if (!gone.ok()) return gone.status();

    auto types = ResolveExportTypes(conn, *request);
    if (!types.ok()) return types.status();
    // The patients covered, fixed for every unit (NULL: all of them).
    bool nobody = false;
    // A criteria-based Group: its filters evaluated as of transactionTime (cohort_runner.h).
    int64_t cohort_size = 0;
    auto cohort = FixCohortScope(conn, *request, job_id, transaction_time_us, o.cohort_max_members,
                                 &cohort_size);
    if (!cohort.ok()) return cohort.status();
    if (*cohort) {
      nobody = cohort_size == 0;
    } else {
      const std::string scope = PatientFilterArraySql(conn, *request, transaction_time_us);
      auto fixed = conn->Exec(
          "UPDATE export_job SET patient_scope = " + (scope.empty() ? std::string("NULL") : scope) +
              " WHERE job_id = $1::uuid RETURNING cardinality(patient_scope)",
          {job_id});
      if (!fixed.ok()) return fixed.status();
      if (request->level == ExportLevel::kGroup) nobody = fixed->int64(0, 0) == 0;
    }
    std::vector<UnitPlan> units;
    if (!nobody) {
      auto planned =
          OrganizedByPatient(*request)
              ? PlanPatientBlockUnits(conn, *request, *types, job_id, transaction_time_us,
                                      o.block_unit_patients)
              : PlanUnits(conn, *request, *types, o.target_unit_resources, o.target_unit_bytes);
      if (!planned.ok()) return planned.status();
      units = std::move(planned).value();
      if (!OrganizedByPatient(*request)) ApplyAssociatedData(*request, *types, &units);
    } else if (!request->ignored.empty()) {
      UnitPlan u;
      u.unit_no = 1;
      u.kind = UnitKind::kError;
      units.push_back(u);
    }
    if (!units.empty()) {
      FHIRBULK_RETURN_IF_ERROR(MakeDirectory(JobDirectory(o.export_dir, job_id)));
      FHIRBULK_RETURN_IF_ERROR(WriteJobOwner(JobDirectory(o.export_dir, job_id), client_id));
    }
    units_planned = static_cast<int>(units.size());
    return RecordPlan(conn, job_id, *request, transaction_time_us, *types, units, o);
  });
  if (s.code() == Status::Code::kAborted) return true;   // someone else has it now
  if (s.code() == Status::Code::kUnavailable) return s;  // lease runs out; replanned later
  if (s.ok() && history_pruned) {
    Log(o, "job " + job_id + ": versions replaced after its transactionTime were pruned");
    Status f = FailJob(conn, o.export_dir, job_id,
                       "the server no longer holds the data as of this export's "
                       "transactionTime; please start the export again",
                       /*transient=*/true, o.retention_seconds);
    if (!f.ok()) return f;
    return true;
  }
  if (s.code() == Status::Code::kResourceExhausted) {
    // A limit the request ran into (a cohort grown past the member limit): the message is
    // ours, and tells the client what to change.
    Log(o, "job " + job_id + ": " + s.message());
    Status f =
        FailJob(conn, o.export_dir, job_id, s.message(), false, o.retention_seconds, "too-costly");
    if (!f.ok()) return f;
    return true;
  }
  if (!s.ok()) {
    // Details (SQL errors, paths) go to the log only; the client gets a reference.
    const std::string ref = ErrorReference();
    Log(o, "job " + job_id + ": planning failed (reference " + ref + "): " + s.ToString());
    Status f =
        FailJob(conn, o.export_dir, job_id, FailureDiagnostics("planning the export", s, ref),
                false, o.retention_seconds);
    if (!f.ok()) return f;
    return true;
  }
  // The WAL position a standby must have replayed before it may serve this job's units
  // (read_replicas.h): after the plan's (synchronous) commit, so it covers the plan and every
  // row the export reads as of transactionTime. Not recorded (a failure here): the claim uses
  // the primary's position then, later still, so still safe.
  auto lsn = conn->Exec(
      "UPDATE export_job SET read_lsn = pg_current_wal_lsn() WHERE job_id = $1::uuid "
      "AND read_lsn IS NULL",
      {job_id});
  if (!lsn.ok()) Log(o, "job " + job_id + ": read_lsn not recorded: " + lsn.status().ToString());
  auto ms = [](auto a, auto b) {
    return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(b - a).count());
  };
  Log(o, "job " + job_id + ": planned " + std::to_string(units_planned) + " units in " +
             ms(claimed_at, std::chrono::steady_clock::now()) + " ms (" +
             ms(claimed_at, waited_until) + " ms waiting for older transactions)");
  return true;
}

Status FailJob(PgConnection* conn, const std::string& export_dir, const std::string& job_id,
               const std::string& diagnostics, bool transient, int64_t retention_seconds,
               const char* code) {
  OutcomeIssue issue;
  issue.severity = "error";
  issue.code = code != nullptr ? code : transient ? "transient" : "processing";
  issue.diagnostics = diagnostics;
  auto r = conn->Exec(
      "UPDATE export_job SET state = 'failed', error = $2::jsonb, error_transient = $3::bool, "
      "finished_at = now(), expires_at = now() + $4::bigint * interval '1 second', "
      "planner = NULL, planner_lease = NULL "
      "WHERE job_id = $1::uuid AND state IN ('accepted', 'running') RETURNING 1",
      {job_id, OperationOutcomeJson({issue}), transient ? "true" : "false",
       std::to_string(retention_seconds)});
  if (!r.ok()) return r.status();
  // A failed job has no manifest: none of its files will ever be served.
  if (r->rows() == 1) RemoveTree(JobDirectory(export_dir, job_id));
  return Status::OK();
}

std::string ErrorReference() {
  thread_local std::mt19937 gen(std::random_device{}());
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%08x", static_cast<unsigned>(gen()));
  return buf;
}

std::string FailureDiagnostics(const std::string& what, const Status& s, const std::string& ref) {
  std::string out = what + " failed on the server";
  const std::string no_space = ErrnoText(ENOSPC);
  if (s.code() == Status::Code::kIOError && s.message().find(no_space) != std::string::npos) {
    out += std::string(": ") + no_space;
  }
  return out + " (reference " + ref + ")";
}

bool RemoveTree(const std::string& path) {
  // Files may come and go meanwhile (a unit of the same job still writing, or removing its own
  // partial file): remove_all stops at an entry that vanished (ENOENT) or at a directory that
  // gained one (ENOTEMPTY), leaving the rest, so start over until nothing is left.
  // A writer that keeps creating files can win every attempt, so after a few the tree is
  // first moved aside (`<path>.removing`): files are created by path, and the old path no
  // longer leads into it.
  constexpr int kAttempts = 100;
  constexpr int kMoveAsideAfter = 5;
  const std::string aside = path + std::string(kRemovingSuffix);
  std::string target = path;
  for (int attempt = 0; attempt < kAttempts; attempt++) {
    if (attempt == kMoveAsideAfter && ::rename(path.c_str(), aside.c_str()) == 0) target = aside;
    std::error_code ec;
    std::filesystem::remove_all(target, ec);
    std::error_code gone;
    if (std::filesystem::symlink_status(target, gone).type() ==
        std::filesystem::file_type::not_found) {
      return true;
    }
    if (ec && ec != std::errc::no_such_file_or_directory && ec != std::errc::directory_not_empty) {
      return false;
    }
  }
  return false;
}

}  // namespace fhirbulk
