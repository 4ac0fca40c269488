// The operator's queries over export jobs, shared by `fhir-bulk jobs list` (tools/cmd_jobs.cc)
// and the operator API (server/ops_api.h): current jobs with their progress, the job history
// (sql/0007_job_history.sql), and daily figures for the console's charts. Results keep the
// columns' SQL names (db/pg_table.h renders them as a table, CSV or JSON); times are UTC ISO
// 8601 text.
//
// The callers bound limit and offset (the tool takes what the operator types; the API caps
// them). Thread-safety: functions over a caller-owned connection.

#ifndef FHIRBULK_EXPORT_JOB_QUERIES_H_
#define FHIRBULK_EXPORT_JOB_QUERIES_H_

#include <cstdint>
#include <set>
#include <string>

#include "db/pg.h"
#include "util/status.h"

namespace fhirbulk {

struct JobListQuery {
  std::string client;  // "" = every client
  // "" = any; a job state (current jobs) or an outcome (history)
  std::string state;
  bool in_progress = false;  // current jobs: only accepted and running ones
  // Current jobs: also units_done, units_total, progress_percent, started, client_name (the
  // console's progress bars; the tool's table keeps its columns).
  bool progress_columns = false;
  int64_t limit = 100;
  int64_t offset = 0;
};

// Current jobs (export_job), newest first: job_id, client_id, state, level, group_id, types,
// created, finished, units ("done/total"), resources, bytes, expires (and with
// progress_columns the ones it names).
Result<PgResult> ListCurrentJobs(PgConnection* conn, const JobListQuery& q);
// Finished jobs (export_job_history), newest first: job_id, client_id, outcome, level,
// group_id, types, created, finished, duration_s, resources, bytes, files, counts, purged.
Result<PgResult> ListJobHistory(PgConnection* conn, const JobListQuery& q);
// The numeric columns of both, for JSON.
const std::set<std::string>& JobListNumericColumns();

// One row per UTC day of the last `days` (oldest first, days without exports included): day,
// started (jobs created that day, current or history), completed, failed, cancelled (finished
// that day), resources (written by the exports completed that day), resources_per_second
// (those resources over the sum of those exports' durations; NULL without one), downloads
// (file downloads answered 200 or 206, from the audit trail).
Result<PgResult> DailyExportStats(PgConnection* conn, int days);
const std::set<std::string>& DailyStatsNumericColumns();

}  // namespace fhirbulk

#endif  // FHIRBULK_EXPORT_JOB_QUERIES_H_
