#include "export/job_store.h"

#include <algorithm>
#include <cstdlib>

namespace fhirbulk {

namespace {

constexpr const char* kStateNames[] = {"accepted", "running", "completed", "failed", "cancelled"};

// Microseconds since the epoch, exactly (extract() returns numeric).
constexpr const char* kMicros = "(extract(epoch FROM %s) * 1000000)::bigint";

std::string Micros(const char* expr) {
  char buf[128];
  std::snprintf(buf, sizeof(buf), kMicros, expr);
  return buf;
}

}  // namespace

const char* JobStateName(JobState state) { return kStateNames[static_cast<int>(state)]; }

Result<JobState> ParseJobState(std::string_view name) {
  for (int i = 0; i < 5; i++) {
    if (name == kStateNames[i]) return static_cast<JobState>(i);
  }
  return Status::Corruption("unknown job state '" + std::string(name) + "'");
}

bool IsValidJobId(std::string_view id) {
  if (id.size() != 36) return false;
  for (size_t i = 0; i < id.size(); i++) {
    char c = id[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return true;
}

Result<JobInfo> CreateJob(PgConnection* conn, const std::string& client_id,
                          const ExportRequest& request, const CreateJobOptions& options) {
  JobInfo job;
  Status s = PgTransaction(conn, [&]() -> Status {
    // A 202 promises the job exists: this commit is durable even though the module's
    // connections otherwise commit asynchronously (polls only touch last_polled_at).
    auto durable = conn->Exec("SET LOCAL synchronous_commit = on");
    if (!durable.ok()) return durable.status();
    // Serializes kick-offs of one client so the active-job limit cannot be raced.
    auto lock =
        conn->Exec("SELECT pg_advisory_xact_lock(hashtext('fhirbulk-client:' || $1))", {client_id});
    if (!lock.ok()) return lock.status();
    if (options.max_active_per_client > 0) {
      auto active = conn->Exec(
          "SELECT count(*) FROM export_job WHERE client_id = $1 "
          "AND state IN ('accepted', 'running')",
          {client_id});
      if (!active.ok()) return active.status();
      if (active->int64(0, 0) >= options.max_active_per_client) {
        return Status::ResourceExhausted(
            "this client already has " + std::to_string(active->int64(0, 0)) +
            " exports in progress (the limit is " + std::to_string(options.max_active_per_client) +
            "); retry when one has finished");
      }
    }
    if (options.max_retained_per_client > 0 || options.max_retained_bytes_per_client > 0) {
      auto retained = conn->Exec(
          "SELECT count(*), coalesce(sum(bytes_written), 0)::bigint, "
          "coalesce(ceil(extract(epoch FROM min(expires_at) - now())), 0)::bigint "
          "FROM export_job WHERE client_id = $1 "
          "AND state IN ('accepted', 'running', 'completed') "
          "AND (expires_at IS NULL OR expires_at > now())",
          {client_id});
      if (!retained.ok()) return retained.status();
      const int64_t count = retained->int64(0, 0);
      const int64_t bytes = retained->int64(0, 1);
      std::string why;
      if (options.max_retained_per_client > 0 && count >= options.max_retained_per_client) {
        why = "this client already has " + std::to_string(count) +
              " exports in progress or kept for download (the limit is " +
              std::to_string(options.max_retained_per_client) + ")";
      } else if (options.max_retained_bytes_per_client > 0 &&
                 bytes >= options.max_retained_bytes_per_client) {
        why = "this client's exports kept for download hold " + std::to_string(bytes) +
              " bytes (the limit is " + std::to_string(options.max_retained_bytes_per_client) + ")";
      }
      if (!why.empty()) {
        if (options.retry_after_seconds != nullptr) {
          *options.retry_after_seconds = std::max<int64_t>(0, retained->int64(0, 2));
        }
        return Status::ResourceExhausted(
            why +
            "; delete exports no longer needed (DELETE on their status URL) or retry "
            "when one has expired");
      }
    }
    // transactionTime first, then (in a later statement) this transaction's xid: every writer
    // that can commit a row with last_updated <= transactionTime holds an older xid.
    auto now = conn->Exec("SELECT " + Micros("clock_timestamp()"));
    if (!now.ok()) return now.status();
    job.transaction_time_us = now->int64(0, 0);
    auto ins = conn->Exec(
        "INSERT INTO export_job (client_id, request, request_url, transaction_time, "
        "xmax_at_kickoff) VALUES ($1, $2::jsonb, $3, "
        "timestamptz 'epoch' + $4::bigint * interval '1 microsecond', pg_current_xact_id()) "
        "RETURNING job_id",
        {client_id, ExportRequestToJson(request), request.request_url,
         std::to_string(job.transaction_time_us)});
    if (!ins.ok()) return ins.status();
    job.job_id = ins->str(0, 0);
    auto notify = conn->Exec("SELECT pg_notify('fhir_bulk_jobs', $1)", {job.job_id});
    return notify.ok() ? Status::OK() : notify.status();
  });
  if (!s.ok()) return s;
  job.client_id = client_id;
  job.state = JobState::kAccepted;
  job.request_url = request.request_url;
  return job;
}

Result<JobInfo> GetJob(PgConnection* conn, const std::string& job_id, const std::string& client_id,
                       bool require_enabled_client) {
  if (!IsValidJobId(job_id)) return Status::NotFound("no export job " + job_id);
  auto r = conn->Exec(
      "SELECT state, request::text, request_url, " + Micros("transaction_time") + ", " +
          Micros("expires_at") +
          ", units_total, units_done, resources_written, error::text, error_transient "
          "FROM export_job WHERE job_id = $1::uuid AND client_id = $2 AND state <> 'cancelled' "
          "AND (NOT $3::bool OR EXISTS (SELECT 1 FROM auth_client a "
          "WHERE a.client_id = $2 AND a.enabled))",
      {job_id, client_id, require_enabled_client ? "true" : "false"});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return Status::NotFound("no export job " + job_id);
  JobInfo job;
  job.job_id = job_id;
  job.client_id = client_id;
  auto state = ParseJobState(r->get(0, 0));
  if (!state.ok()) return state.status();
  job.state = *state;
  job.request_json = r->str(0, 1);
  job.request_url = r->str(0, 2);
  job.transaction_time_us = r->int64(0, 3);
  if (!r->is_null(0, 4)) job.expires_at_us = r->int64(0, 4);
  job.units_total = static_cast<int>(r->int64(0, 5));
  job.units_done = static_cast<int>(r->int64(0, 6));
  job.resources_written = r->int64(0, 7);
  if (!r->is_null(0, 8)) job.error_json = r->str(0, 8);
  job.error_transient = r->get(0, 9) == "t";
  return job;
}

Status LoadJobFiles(PgConnection* conn, JobInfo* job) {
  job->files.clear();
  if (job->state != JobState::kCompleted) return Status::OK();
  auto files = conn->Exec(
      "SELECT file_name, kind, res_type, resources, bytes, coalesce(continues_in, '') "
      "FROM export_file WHERE job_id = $1::uuid "
      "ORDER BY kind DESC, res_type, unit_no, seq",  // output, error, deleted
      {job->job_id});
  if (!files.ok()) return files.status();
  job->files.reserve(static_cast<size_t>(files->rows()));
  for (int i = 0; i < files->rows(); i++) {
    JobFile f;
    f.file_name = files->str(i, 0);
    f.kind = files->str(i, 1);
    f.res_type = files->str(i, 2);
    f.resources = files->int64(i, 3);
    f.bytes = files->int64(i, 4);
    f.continues_in = files->str(i, 5);
    job->files.push_back(std::move(f));
  }
  return Status::OK();
}

Result<int> RecordPoll(PgConnection* conn, const std::string& job_id, int min_interval_ms) {
  if (min_interval_ms <= 0) return 0;
  // One statement: the row lock orders concurrent polls, so two fast polls cannot both pass.
  auto r = conn->Exec(
      "WITH prev AS (SELECT job_id, last_polled_at FROM export_job WHERE job_id = $1::uuid "
      "FOR UPDATE), "
      "upd AS (UPDATE export_job e SET last_polled_at = clock_timestamp() FROM prev "
      "WHERE e.job_id = prev.job_id AND (prev.last_polled_at IS NULL OR prev.last_polled_at <= "
      "clock_timestamp() - $2::int * interval '1 millisecond') RETURNING 1) "
      "SELECT (SELECT count(*) FROM upd), "
      "ceil(extract(epoch FROM (prev.last_polled_at + $2::int * interval '1 millisecond' - "
      "clock_timestamp())))::int FROM prev",
      {job_id, std::to_string(min_interval_ms)});
  if (!r.ok()) return r.status();
  if (r->rows() == 0 || r->int64(0, 0) == 1) return 0;
  long long wait = r->is_null(0, 1) ? 1 : r->int64(0, 1);
  return static_cast<int>(wait < 1 ? 1 : wait);
}

Status CancelJob(PgConnection* conn, const std::string& job_id, const std::string& client_id,
                 const std::function<Status()>& before_update) {
  if (!IsValidJobId(job_id)) return Status::NotFound("no export job " + job_id);
  return PgTransaction(conn, [&]() -> Status {
    auto durable = conn->Exec("SET LOCAL synchronous_commit = on; SET LOCAL lock_timeout = " +
                              std::to_string(kCancelLockTimeoutMs));
    if (!durable.ok()) return durable.status();
    auto lock = conn->Exec(
        "SELECT 1 FROM export_job WHERE job_id = $1::uuid AND client_id = $2 "
        "AND state <> 'cancelled' FOR UPDATE",
        {job_id, client_id});
    if (!lock.ok()) {
      // 55P03 lock_not_available: the planner (or another cancel) holds the row.
      if (lock.status().message().find("55P03") != std::string::npos) {
        return Status::Aborted("export job " + job_id + " is being planned; retry later");
      }
      return lock.status();
    }
    if (lock->rows() == 0) return Status::NotFound("no export job " + job_id);
    if (before_update) {
      Status b = before_update();
      if (!b.ok()) return b;
    }
    auto r = conn->Exec(
        "UPDATE export_job SET state = 'cancelled', finished_at = clock_timestamp() "
        "WHERE job_id = $1::uuid AND client_id = $2 AND state <> 'cancelled' RETURNING 1",
        {job_id, client_id});
    if (!r.ok()) return r.status();
    if (r->rows() == 0) return Status::NotFound("no export job " + job_id);
    for (const char* sql : {"DELETE FROM export_file WHERE job_id = $1::uuid",
                            "DELETE FROM export_unit WHERE job_id = $1::uuid"}) {
      auto d = conn->Exec(sql, {job_id});
      if (!d.ok()) return d.status();
    }
    return Status::OK();
  });
}

}  // namespace fhirbulk
