// UnitRunner: claims one export work unit (planner.h) and writes its files.
//
// RunNextUnit:
//  - Claim: the lowest unit_no of any running job (so concurrent jobs interleave) that is
//    pending or whose lease expired, FOR UPDATE SKIP LOCKED; sets worker, lease_until and
//    attempts + 1. A unit claimed more than max_attempts times fails its job with a transient
//    OperationOutcome. Files of earlier attempts of the unit (final or temp, gzip twins too, any
//    worker) are deleted before it starts again.
//  - Read: one `COPY (SELECT ...) TO STDOUT (FORMAT binary)` on the data connection
//    (BuildUnitCopySql), as of the job's transactionTime T: the type's rows with
//    last_updated <= T UNION ALL, in the unit whose page range starts the table (so once per
//    type), the replaced versions of resource_history current at T (sql/0008); a redone
//    unit reads the same versions. Its rows are parsed as they arrive (CopyBinaryParser) and
//    written through an NdjsonWriter: bodies byte for byte, or subset by _elements (elements.h);
//    deleted units write one transaction Bundle with a DELETE entry per tombstone; the error
//    unit writes one OperationOutcome per ignored request parameter. Memory stays bounded by
//    the largest row and the write buffer.
//  - Heartbeat: every check_every_rows rows or check_every_ms (whichever first) the control
//    connection renews the lease and reads the job's state, whether rows flow or not (the COPY
//    runs asynchronously and the thread waits on its socket only until the next beat is due);
//    a lost lease, a job no longer running (cancelled, failed, deleted) or a stop request
//    cancels the statement (PgAsyncCopyOut::Abort) and deletes the temp files, so a cancel stops a
//    job's statements on every worker within about check_every_ms. On stop the unit is handed back
//    at once (its attempt does not count).
//  - Time limit: a statement running longer than statement_timeout_ms is cancelled and fails
//    its job with a diagnostic naming the limit.
//  - Complete, in ONE transaction on the control connection: add resources_written /
//    units_done to the job if it is still running (row-locking the job first, as cancel, the
//    planner and the janitor do, so they wait for each other instead of deadlocking) and
//    complete it when this was its last unit (finished_at, expires_at = now + retention),
//    mark the unit done if it is still ours (worker = me AND state = 'running'), insert the
//    export_file rows, rename the temp files into place and fsync the directory, COMMIT.
//    Anything failing before COMMIT leaves the unit unfinished; its next attempt deletes what
//    this one renamed.
//  - Where it reads (issue 17): with `replicas`, the COPY runs on a hot standby that has
//    replayed the job's read_lsn (read_replicas.h), else on `data`. A standby failing
//    mid-unit with Unavailable (connection lost, shutdown, a recovery conflict cancelling the
//    statement: SQLSTATE 40001) while the control connection still answers redoes the unit
//    at once, within the same claim, on the next standby or the primary: the temp files of
//    the failed read are deleted, nothing was listed, so it is written exactly once. The unit's
//    log line and export_unit.read_from name the server the finished attempt read from.
//  - Errors: Unavailable (database gone) hands the unit back if possible and returns the
//    Status (the caller reconnects); any other failure (disk full, I/O error, corrupt data, a
//    failing statement) fails the job and returns OK (the worker goes on with other jobs). The
//    job's OperationOutcome carries a generic diagnostic and a reference (ErrorReference); the
//    details (PostgreSQL's message, paths) go to the log line with the same reference.
//
// Thread-safety: one thread per pair of connections.

#ifndef FHIRBULK_WORKER_UNIT_RUNNER_H_
#define FHIRBULK_WORKER_UNIT_RUNNER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "db/pg.h"
#include "export/export_request.h"
#include "util/status.h"
#include "worker/planner.h"
#include "worker/read_replicas.h"

namespace fhirbulk {

struct UnitRunnerOptions {
  std::string export_dir;
  std::string worker_id;  // this thread's id: export_unit.worker and the temp file suffix
  int lease_seconds = 30;
  int64_t max_file_resources = 100000;
  int64_t max_file_bytes = 256LL << 20;
  int64_t retention_seconds = 86400;
  int max_attempts = 5;
  int64_t check_every_rows = 10000;
  int check_every_ms = 1000;
  // A unit's statement running longer is cancelled and fails its job (0: no limit). The
  // server's statement_timeout is set a little above it, for a worker that dies mid-statement.
  int64_t statement_timeout_ms = int64_t{30} * 60 * 1000;
  size_t write_buffer_bytes = 1 << 20;
  int gzip_level = 1;  // gzip twins of the files (NdjsonWriterOptions::gzip_level); 0: none
  // Hot standbys to read units from (read_replicas.h); nullptr or empty: `data` (the
  // primary). A standby that has not replayed up to the job's read_lsn within
  // replica_wait_ms is passed over (another standby, else the primary).
  ReadReplicas* replicas = nullptr;
  int replica_wait_ms = 5000;
  const std::atomic<bool>* stop = nullptr;
  std::function<void(const std::string&)> log;
  // Called after every heartbeat with the unit's progress (tests use it to interfere).
  std::function<void(const std::string& job_id, int unit_no, int64_t rows)> on_heartbeat;
};

// Claims and runs one unit. `control` and `data` must be distinct connections.
// False when no unit was claimable.
Result<bool> RunNextUnit(PgConnection* control, PgConnection* data, const UnitRunnerOptions& o);

// The COPY statement of an output or deleted unit of job `job_id`. `partition` is the type's
// table (PartitionOf). Patients come from the job's patient_scope (PatientScopeSql), a
// supporting unit's ids from its res_ids (unit.res_ids); a supporting unit planned without
// them (before sql/0004) selects its references itself, which needs `job_types`, every type
// of the job's output units. COPY takes no parameters: every value is a literal quoted by
// `conn` (PgConnection::QuoteLiteral; the _typeFilter by TypeFilterSqlLiteral).
Result<std::string> BuildUnitCopySql(PgConnection* conn, const ExportRequest& request,
                                     const std::string& job_id, int64_t transaction_time_us,
                                     const UnitPlan& unit, const std::string& partition,
                                     const std::vector<std::string>& job_types = {});

// A query with one column `ref`: the distinct references "Type/id" to any of `ref_types`
// made by the compartment resources that a Patient or Group export's output units select
// (`job_types`: the job's output types; `scope_sql`: PatientScopeSql, `scope_size`:
// PatientScopeSize). The planner records its result in the supporting units' res_ids.
Result<std::string> SupportingRefsSql(PgConnection* conn, const ExportRequest& request,
                                      int64_t transaction_time_us, const std::string& scope_sql,
                                      int64_t scope_size, const std::vector<std::string>& job_types,
                                      const std::vector<std::string>& ref_types);

// Incremental parser of PostgreSQL's binary COPY format: signature, flags, header extension,
// then tuples (int16 field count; per field an int32 length, -1 for NULL, and the bytes), then
// the int16 -1 trailer. Chunks may split anything anywhere; a row whose bytes arrive in one
// chunk is handed over without copying.
class CopyBinaryParser {
 public:
  struct Field {
    std::string_view bytes;
    bool null = false;
  };
  using RowFn = std::function<Status(const std::vector<Field>& fields)>;

  Status Feed(std::string_view chunk, const RowFn& on_row);
  // True once the trailer was read (and nothing is left over).
  bool finished() const { return finished_ && carry_.empty(); }
  int64_t rows() const { return rows_; }

 private:
  // Parses one header or tuple at the start of `data`; *used = 0 when incomplete.
  Status ParseOne(std::string_view data, const RowFn& on_row, size_t* used);

  bool header_done_ = false;
  bool finished_ = false;
  int64_t rows_ = 0;
  std::string carry_;
  std::vector<Field> fields_;
};

}  // namespace fhirbulk

#endif  // FHIRBULK_WORKER_UNIT_RUNNER_H_
