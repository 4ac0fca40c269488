// Planner: turns an accepted export job into work units (sql/0002_export_jobs.sql).
//
// PlanNextJob claims one job, by lease (export_job.planner / planner_lease, FOR UPDATE SKIP
// LOCKED over `accepted` jobs whose planner lease is absent or expired), then:
//  1. waits until every transaction older than the job's xmax_at_kickoff has ended
//     (pg_snapshot_xmin(pg_current_snapshot()) >= xmax_at_kickoff), polling every 10-100 ms
//     and renewing the planner lease, so that no row with last_updated <= transactionTime
//     can still appear;
//  2. in ONE transaction that re-checks the lease under a row lock (and, under a share lock
//     of history_horizon, that the janitor has not pruned versions replaced after the job's
//     transactionTime, else the job fails as transient; sql/0008): resolves the type set,
//     fixes the patient scope (export_job.patient_scope, sql/0004), splits the work into
//     units, creates "<export_dir>/<job_id>/" with its ".owner" file (the client_id, for file
//     serving without the database), inserts the export_unit rows, records the supporting
//     units' resource ids (export_unit.res_ids) and marks the job running with units_total
//     (or completed at once when there is nothing to do, e.g. an empty Group). A crash before
//     COMMIT leaves the job accepted; once the lease runs out another worker plans it again
//     (mkdir is idempotent).
//  3. records the primary's WAL position after that commit (export_job.read_lsn, sql/0016):
//     the point a hot standby must have replayed to serve the job's units (read_replicas.h).
//
// Type set (ResolveExportTypes):
//  - _type given: those types. Otherwise: system level: every R4 type with rows (tombstones
//    count; judged by a non-empty partition or presence in resource_other, so a partition
//    whose rows were all vacuumed away costs an empty unit); Patient/Group level: the Patient
//    compartment types with rows, except Group (exported only when _type names it), plus the
//    supporting types (PatientExportSupportingTypes: Location, Medication, Organization,
//    Practitioner).
//  - Patient/Group level: a type outside the Patient compartment is a *supporting* type: only
//    its resources referenced (`outrefs`, sql/0001) by the exported compartment resources are
//    exported, whatever their age (the IG allows it), and it gets no deleted unit. The
//    referenced ids are collected at planning, by one query over the compartment rows the
//    job's units select (SupportingRefsSql), into each supporting unit's res_ids.
//  - Group level: members are those of the Group's version current at transactionTime
//    (group_member, or group_member_history when the Group changed since; sql/0008) that are
//    not inactive and whose period covers transactionTime; the `patient` parameter
//    intersects. A criteria-based Group (member-filters, sql/0012) not changed since
//    transactionTime has its filters evaluated again as of transactionTime instead
//    (cohort_runner.h FixCohortScope). They are fixed at planning in export_job.patient_scope (a
//    Patient export's `patient` list too), so every unit reads the same patients even when the
//    Group is rewritten during the export. No member left: the job completes with empty output (the
//    error unit still runs if there is one). _since applies to every member alike (older data of
//    members who joined after _since is not added).
// Units (PlanUnits):
//  - output, compartment or system type, no patient list: the type's partition, split into
//    heap page ranges only when it holds more than ~target_unit_resources rows
//    (pg_class.reltuples; 8 rows a page when the table was never analyzed) or more than
//    ~target_unit_bytes of table (heap plus TOAST: bodies over ~2 KB live in TOAST, so a
//    type of large resources has few heap pages but much to read). The first range starts
//    at page 0 and the last is open-ended (NULL), so rows on pages added later are still read.
//    The defaults are large on purpose: a whole table is a sequential scan, which PostgreSQL
//    reads through a small ring of buffers, while a page range is a TID range scan, which
//    (PostgreSQL 15) reads through the shared buffer pool: 3-5 times slower per page here
//    (benchmarks/RESULTS.md) and it evicts the database's working set. Splitting pays only
//    when one table would otherwise be most of a big export.
//  - output, Group or patient-list export, and supporting types: one unit per type (the GIN
//    index on `patients`, or the primary key for res_ids, narrows the read).
//  - deleted: one per non-supporting type when _since is given.
//  - error: one when the request carries `ignored` issues.
//  Unit numbers start at 1 and follow the estimated cost (cost_bytes), largest first:
//  workers claim the lowest number, so the long units start first and the short ones fill
//  in at the end, and parallel threads finish together (a 176 MB type as the 10th of 22
//  units left one thread working alone for seconds). Then supporting, deleted and error units.
//
// FailJob marks a job failed with an OperationOutcome and removes its directory.
//
// Thread-safety: functions over a caller-owned connection; one thread per connection.

#ifndef FHIRBULK_WORKER_PLANNER_H_
#define FHIRBULK_WORKER_PLANNER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "db/pg.h"
#include "export/export_request.h"
#include "fhirbulk/defaults.h"
#include "util/status.h"

namespace fhirbulk {

enum class UnitKind { kOutput, kDeleted, kError };
const char* UnitKindName(UnitKind kind);  // "output", "deleted", "error"

struct UnitPlan {
  int unit_no = 0;
  UnitKind kind = UnitKind::kOutput;
  std::string res_type;            // empty for the error unit
  std::optional<int64_t> page_lo;  // heap block range [page_lo, page_hi); nullopt = open
  std::optional<int64_t> page_hi;
  int64_t cost_bytes = 0;  // the planner's estimate of the table bytes the unit reads
  bool res_ids = false;    // a supporting unit whose ids were recorded at planning
  // STU3 (sql/0011, patient_blocks.h): "patients" / "unattached" block units over the key
  // range [block_lo, block_hi) of block_types; assoc "latest" / "relevant" for the
  // includeAssociatedData Provenance unit (block_types: the exported types it looks at).
  std::string blocks;
  std::optional<std::string> block_lo, block_hi;
  std::vector<std::string> block_types;
  std::string assoc;
};

// How a type is selected at Patient/Group level.
enum class TypeRole {
  kAll,          // system level: every row of the type
  kCompartment,  // rows in the compartment of the exported patients
  kSupporting,   // rows referenced by the exported compartment resources
};
TypeRole RoleOf(const ExportRequest& request, std::string_view type);

// How much of a table one unit reads at most, roughly (see "Units" above).
constexpr int64_t kDefaultTargetUnitResources = 10000000;
constexpr int64_t kDefaultTargetUnitBytes = 4LL << 30;

struct PlannerOptions {
  std::string export_dir;
  std::string worker_id;  // this thread's id (export_job.planner)
  int lease_seconds = 30;
  int64_t retention_seconds = 86400;
  int64_t target_unit_resources = kDefaultTargetUnitResources;
  int64_t target_unit_bytes = kDefaultTargetUnitBytes;
  // organizeOutputBy=Patient: patients per blocks unit (patient_blocks.h).
  int64_t block_unit_patients = 250;  // kDefaultBlockUnitPatients
  // Each statement of the planning transaction (e.g. a supporting type's reference query) is
  // cancelled by the server after this long, failing the job; 0: no limit.
  int64_t statement_timeout_ms = int64_t{30} * 60 * 1000;
  // A criteria-based Group re-evaluated at transactionTime with more members than this fails
  // the job (cohort_runner.h FixCohortScope).
  int64_t cohort_max_members = FHIRBULK_DEFAULT_GROUP_MAX_MEMBERS;
  const std::atomic<bool>* stop = nullptr;  // set: give the lease back and return
  std::function<void(const std::string&)> log;
};

// The partition holding `type`'s rows: resource_<lower(type)> when that table exists, else
// resource_other (sql/0001).
Result<std::string> PartitionOf(PgConnection* conn, std::string_view type);

// The types to export (see above), in alphabetical order.
Result<std::vector<std::string>> ResolveExportTypes(PgConnection* conn,
                                                    const ExportRequest& request);

// SQL text[] expression of the patients whose compartments a Group or patient-list export
// covers, worked out from group_member and the request (an uncorrelated subquery or an ARRAY
// literal; values quoted with QuoteLiteral), or "" when every patient is exported (system and
// plain Patient level). Planning fixes it in export_job.patient_scope.
std::string PatientFilterArraySql(PgConnection* conn, const ExportRequest& request,
                                  int64_t transaction_time_us);

// What units read instead: the job's patient_scope, or "" as above. A job planned before
// sql/0004 has no patient_scope; its units fall back to PatientFilterArraySql.
std::string PatientScopeSql(PgConnection* conn, const ExportRequest& request,
                            const std::string& job_id, int64_t transaction_time_us);

// The condition "an element of the text[] `column` is one of the patients of `scope_sql`"
// (PatientScopeSql / PatientFilterArraySql), for every unit and planning query that selects a
// Group's or patient list's compartment rows. `column && scope` would be O(rows x patients)
// (PostgreSQL compares arrays element by element, and the GIN index's consistent function
// loops over every key for every candidate item as well), so a 100,000-member Group never
// finished; instead each row's patients are probed in a hash table of the scope, built once
// per statement (a hashed SubPlan: the `IS TRUE` keeps the planner from pulling the IN into a
// per-row join), linear in rows + patients. A small scope (`scope_size` at most
// kGinScopeMaxPatients, known from export_job.patient_scope) keeps `&&`, which the GIN index on
// `patients` answers without reading the rest of the partition.
constexpr int64_t kGinScopeMaxPatients = 64;
std::string PatientsInScopeSql(const std::string& column, const std::string& scope_sql,
                               int64_t scope_size);
// One value (`element`, a text expression) is in the scope: the hashed probe above.
std::string InPatientScopeSql(const std::string& element, const std::string& scope_sql);
// cardinality(export_job.patient_scope), or -1 when it is NULL (not fixed, or every patient).
Result<int64_t> PatientScopeSize(PgConnection* conn, const std::string& job_id);

// The units for `types`, numbered as described above.
Result<std::vector<UnitPlan>> PlanUnits(PgConnection* conn, const ExportRequest& request,
                                        const std::vector<std::string>& types,
                                        int64_t target_unit_resources, int64_t target_unit_bytes);

// Claims and plans one job. False when no job was waiting.
Result<bool> PlanNextJob(PgConnection* conn, const PlannerOptions& options);

// Marks the job failed (unless it is already finished or cancelled) with an OperationOutcome
// holding one issue and the diagnostics, sets finished_at and expires_at (= now + retention),
// and removes the job directory. The issue code is `code` when given, else "transient" when
// transient, else "processing" (final; FHIR files "exception" under transient).
Status FailJob(PgConnection* conn, const std::string& export_dir, const std::string& job_id,
               const std::string& diagnostics, bool transient, int64_t retention_seconds,
               const char* code = nullptr);

// A random reference (8 hex digits) that ties a client's generic diagnostic to the worker log
// line holding the details (SQL errors and paths are never shown to clients).
std::string ErrorReference();

// What a client is told of an internal failure `s` while `what` ("writing the export files"):
// "<what> failed on the server (reference <ref>)"; a full export volume is named
// (": No space left on device"), other details never are.
std::string FailureDiagnostics(const std::string& what, const Status& s, const std::string& ref);

// Removes a directory tree (best effort; a missing path is fine). False if anything remains,
// at `path` or, when files kept appearing in it, at `<path>` + kRemovingSuffix (moved aside
// first; the janitor removes such leftovers).
bool RemoveTree(const std::string& path);
inline constexpr std::string_view kRemovingSuffix = ".removing";

}  // namespace fhirbulk

#endif  // FHIRBULK_WORKER_PLANNER_H_
