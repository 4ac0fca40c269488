// JobStore: export jobs in PostgreSQL (sql/0002_export_jobs.sql), as the HTTP side sees them.
//
// The nginx module calls these from thread-pool threads (short statements only); the worker
// (worker/worker.h) drives the rest of a job's life. Jobs belong to the client that created
// them: every lookup takes the caller's client_id, and another client's job is NotFound, never
// PermissionDenied, so job ids cannot be probed.
//
// Thread-safety: stateless functions over a caller-owned connection.

#ifndef FHIRBULK_EXPORT_JOB_STORE_H_
#define FHIRBULK_EXPORT_JOB_STORE_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "db/pg.h"
#include "export/export_request.h"
#include "util/status.h"

namespace fhirbulk {

enum class JobState { kAccepted, kRunning, kCompleted, kFailed, kCancelled };

const char* JobStateName(JobState state);
Result<JobState> ParseJobState(std::string_view name);

struct JobFile {
  std::string file_name;
  std::string kind;      // output | deleted | error
  std::string res_type;  // manifest `type`
  int64_t resources = 0;
  int64_t bytes = 0;
  std::string continues_in;  // organizeOutputBy: the file its last block goes on in, or ""
};

struct JobInfo {
  std::string job_id;
  std::string client_id;
  JobState state = JobState::kAccepted;
  std::string request_json;
  std::string request_url;  // from the request
  int64_t transaction_time_us = 0;
  std::optional<int64_t> expires_at_us;
  int units_total = 0;
  int units_done = 0;
  int64_t resources_written = 0;
  std::string error_json;  // OperationOutcome, failed jobs only
  bool error_transient = false;
  std::vector<JobFile> files;  // LoadJobFiles (or a manifest page), in manifest order
};

struct CreateJobOptions {
  int max_active_per_client = 0;  // 0 = unlimited; otherwise ResourceExhausted beyond it
  // Retained exports: the client's jobs in progress, or completed and not yet expired (their
  // files are on disk). A kick-off is ResourceExhausted when the client already has
  // max_retained_per_client of them, or when their files (export_job.bytes_written, the NDJSON
  // bytes; gzip twins not counted) reach max_retained_bytes_per_client. 0 = unlimited.
  int max_retained_per_client = 0;
  int64_t max_retained_bytes_per_client = 0;
  // Set with a ResourceExhausted answer: seconds until a retained export expires (when one of
  // them is completed; at least 1), else 0. Cancelling (DELETE) one frees its share at once.
  int64_t* retry_after_seconds = nullptr;
};

// Inserts an accepted job and wakes the workers (NOTIFY fhir_bulk_jobs). The transaction time
// is the database clock at kick-off; xmax_at_kickoff is taken after it (see the schema).
Result<JobInfo> CreateJob(PgConnection* conn, const std::string& client_id,
                          const ExportRequest& request, const CreateJobOptions& options);

// The job's row; NotFound unless the job exists, belongs to client_id and is not cancelled;
// with require_enabled_client also unless the client is registered and enabled (auth_client).
// One row read whatever the job's size: its files are not loaded (job.files stays empty), so
// a paged manifest (export/manifest_pages.h) reads only its page's files.
Result<JobInfo> GetJob(PgConnection* conn, const std::string& job_id, const std::string& client_id,
                       bool require_enabled_client = false);

// Fills job->files with every file of a completed job, in manifest order (the unpaged
// manifest); leaves it empty for a job in any other state.
Status LoadJobFiles(PgConnection* conn, JobInfo* job);

// Cancels the job (any state but cancelled): marks it cancelled so workers stop, and deletes
// its rows of units and files. NotFound as GetJob. The files on disk are not touched here:
// the HTTP side writes the job's cancel marker (export/job_dir.h) before it answers, so no
// node serves them any more, and the workers' janitor deletes the directory later.
//
// The job's row is locked first, waiting at most kCancelLockTimeoutMs: a job being planned
// (the planner holds its row for the whole planning) gets Aborted ("retry later") at once
// instead of holding the caller behind the planner until a statement timeout. Once the row
// is held, before_update (if any) runs inside the transaction; its failure aborts the cancel.
constexpr int kCancelLockTimeoutMs = 1000;
Status CancelJob(PgConnection* conn, const std::string& job_id, const std::string& client_id,
                 const std::function<Status()>& before_update = nullptr);

// Records a status poll of a job in progress. When the previous poll was less than
// min_interval_ms ago it records nothing and returns the whole seconds the client should wait
// (at least 1); otherwise 0. Polls of one job from any node share this clock.
Result<int> RecordPoll(PgConnection* conn, const std::string& job_id, int min_interval_ms);

// True for a syntactically valid job id (a UUID), so malformed ids never reach SQL.
bool IsValidJobId(std::string_view job_id);

}  // namespace fhirbulk

#endif  // FHIRBULK_EXPORT_JOB_STORE_H_
