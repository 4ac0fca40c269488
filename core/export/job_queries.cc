#include "export/job_queries.h"

#include "db/pg_table.h"

namespace fhirbulk {
namespace {

constexpr const char* kTypesSql =
    "array_to_string(ARRAY(SELECT jsonb_array_elements_text(request->'types')), ',')";

}  // namespace

Result<PgResult> ListCurrentJobs(PgConnection* conn, const JobListQuery& q) {
  std::string sql =
      "SELECT job_id::text AS job_id, client_id, state, request->>'level' AS level, "
      "request->>'group_id' AS group_id, " +
      std::string(kTypesSql) + " AS types, " + SqlUtc("created_at") + " AS created, " +
      SqlUtc("finished_at") +
      " AS finished, units_done || '/' || units_total AS units, resources_written AS "
      "resources, bytes_written AS bytes, " +
      SqlUtc("expires_at") + " AS expires";
  if (q.progress_columns) {
    sql +=
        ", units_done, units_total, CASE WHEN units_total > 0 THEN "
        "round(100.0 * units_done / units_total, 1) ELSE 0 END AS progress_percent, " +
        SqlUtc("started_at") +
        " AS started, (SELECT name FROM auth_client a WHERE a.client_id = export_job.client_id)"
        " AS client_name";
  }
  sql +=
      " FROM export_job WHERE ($1 = '' OR client_id = $1) AND ($2 = '' OR state = $2) "
      "AND (NOT $4::bool OR state IN ('accepted', 'running')) "
      "ORDER BY created_at DESC, job_id LIMIT $3::bigint OFFSET $5::bigint";
  return conn->Exec(sql, {q.client, q.state, std::to_string(q.limit),
                          q.in_progress ? "true" : "false", std::to_string(q.offset)});
}

Result<PgResult> ListJobHistory(PgConnection* conn, const JobListQuery& q) {
  const std::string sql =
      "SELECT job_id::text AS job_id, client_id, outcome, request->>'level' AS level, "
      "request->>'group_id' AS group_id, " +
      std::string(kTypesSql) + " AS types, " + SqlUtc("created_at") + " AS created, " +
      SqlUtc("finished_at") +
      " AS finished, round(extract(epoch FROM finished_at - created_at)::numeric, 1) "
      "AS duration_s, resources, bytes, files, type_counts::text AS counts, " +
      SqlUtc("purged_at") +
      " AS purged FROM export_job_history WHERE ($1 = '' OR client_id = $1) "
      "AND ($2 = '' OR outcome = $2) ORDER BY finished_at DESC, job_id "
      "LIMIT $3::bigint OFFSET $4::bigint";
  return conn->Exec(sql, {q.client, q.state, std::to_string(q.limit), std::to_string(q.offset)});
}

const std::set<std::string>& JobListNumericColumns() {
  static const std::set<std::string>* columns = new std::set<std::string>{
      "resources", "bytes", "files", "duration_s", "units_done", "units_total", "progress_percent"};
  return *columns;
}

Result<PgResult> DailyExportStats(PgConnection* conn, int days) {
  // Jobs still in export_job that finished are in the history too (the trigger writes it in
  // the finishing transaction): started counts export_job rows not yet in the history.
  return conn->Exec(
      "WITH d AS (SELECT generate_series((now() AT TIME ZONE 'UTC')::date - ($1::int - 1), "
      "                                  (now() AT TIME ZONE 'UTC')::date, '1 day')::date AS day),"
      " lo AS (SELECT ((now() AT TIME ZONE 'UTC')::date - ($1::int - 1))::timestamp "
      "        AT TIME ZONE 'UTC' AS t),"
      " h AS (SELECT (finished_at AT TIME ZONE 'UTC')::date AS day, outcome, resources,"
      "       extract(epoch FROM finished_at - coalesce(started_at, created_at)) AS secs"
      "       FROM export_job_history, lo WHERE finished_at >= lo.t),"
      " s AS (SELECT (created_at AT TIME ZONE 'UTC')::date AS day FROM export_job_history, lo"
      "       WHERE created_at >= lo.t"
      "       UNION ALL SELECT (created_at AT TIME ZONE 'UTC')::date FROM export_job j, lo"
      "       WHERE j.created_at >= lo.t AND NOT EXISTS"
      "       (SELECT 1 FROM export_job_history x WHERE x.job_id = j.job_id)),"
      " dl AS (SELECT (at AT TIME ZONE 'UTC')::date AS day FROM audit_event, lo"
      "        WHERE action = 'download' AND at >= lo.t AND result IN (200, 206))"
      " SELECT to_char(d.day, 'YYYY-MM-DD') AS day,"
      "  (SELECT count(*) FROM s WHERE s.day = d.day) AS started,"
      "  (SELECT count(*) FROM h WHERE h.day = d.day AND outcome = 'completed') AS completed,"
      "  (SELECT count(*) FROM h WHERE h.day = d.day AND outcome = 'failed') AS failed,"
      "  (SELECT count(*) FROM h WHERE h.day = d.day AND outcome = 'cancelled') AS cancelled,"
      "  (SELECT coalesce(sum(resources), 0) FROM h WHERE h.day = d.day"
      "   AND outcome = 'completed') AS resources,"
      "  (SELECT round((sum(resources) / nullif(sum(secs), 0))::numeric, 1) FROM h"
      "   WHERE h.day = d.day AND outcome = 'completed') AS resources_per_second,"
      "  (SELECT count(*) FROM dl WHERE dl.day = d.day) AS downloads"
      " FROM d ORDER BY d.day",
      {std::to_string(days)});
}

const std::set<std::string>& DailyStatsNumericColumns() {
  static const std::set<std::string>* columns = new std::set<std::string>{
      "started",  "completed", "failed", "cancelled", "resources", "resources_per_second",
      "downloads"};
  return *columns;
}

}  // namespace fhirbulk
