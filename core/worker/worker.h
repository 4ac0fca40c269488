// Worker: the export engine process (`fhir-bulk worker`). Any number of workers, on any number
// of hosts, share one database and one export directory; PostgreSQL is the only coordinator.
//
// Each of `threads` threads owns two connections (control: claims, leases, commits; data: the
// COPY streams) and loops: plan an accepted job (planner.h), else run a unit (unit_runner.h),
// else sleep until a kick-off NOTIFY on fhir_bulk_jobs or at most one second. Run()'s own
// thread LISTENs (waking the others within milliseconds of a kick-off); a thread of its own
// runs the janitor every janitor_interval_seconds, so a long pass (a large export's files, a
// prune) never delays that wake-up.
//
// Janitor (idempotent, safe in every worker at once):
//  - jobs cancelled, or completed/failed and past expires_at + grace: their directories
//    (<export_dir>/<job_id>, and <export_dir>/.cancelled-<job_id> where servers before the
//    cancel markers moved a cancelled job's files; export/job_dir.h) are removed and their
//    rows deleted (units and files cascade), FOR UPDATE SKIP LOCKED in batches;
//  - in the export directory: .cancelled-* directories; trees a removal moved aside
//    (<job_id>.removing, planner.h: RemoveTree); directories of failed jobs; of jobs that no
//    longer exist (once older than the lease); and, in directories of jobs that are not
//    running, "*.tmp.*" files older than the lease. Names that are not job ids are left alone;
//  - replaced resource versions (resource_history, sql/0008) that no export in progress or
//    kept (accepted, running, completed and not expired) can need: valid_to before the oldest
//    such transactionTime and before now - history_retention_seconds; in batches of
//    kHistoryPruneBatch rows, each its own short transaction (loads never wait for it), the
//    horizon recorded in history_horizon;
//  - the HTTP side's cancel markers (<export_dir>/.cancels/<job_id>) older than
//    kCancelMarkerKeepSeconds of jobs whose row and directories are gone; a marker never goes
//    before its job's files do;
//  - job history rows (export_job_history, written by triggers when a job reaches a final
//    state, so whichever node finishes it) finished more than history_days ago.
//
// Run() also keeps the worker's row in worker_heartbeat (worker/heartbeat.h) while it serves.
//
// Stop() (e.g. from SIGTERM) makes Run() return after the threads finished or handed back
// their units (see unit_runner.h); a planner waiting for old transactions gives its job back.
// Memory per thread is bounded (streaming COPY, fixed write buffer), whatever the export size.
//
// Thread-safety: Stop() may be called from any thread. Run, RunUntilIdle, PlanOne, RunOneUnit
// and RunJanitor must not run concurrently with each other.

#ifndef FHIRBULK_WORKER_WORKER_H_
#define FHIRBULK_WORKER_WORKER_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "db/pg.h"
#include "fhirbulk/defaults.h"
#include "util/mutex.h"
#include "util/status.h"
#include "worker/planner.h"

namespace fhirbulk {

struct WorkerOptions {
  std::string conninfo;
  // Hot standbys of `conninfo`'s server that export units read from (--read-db; each may be
  // a libpq multi-host string); every thread keeps its own connections (read_replicas.h).
  // Jobs, units, leases and files stay on `conninfo`.
  std::vector<std::string> read_conninfos;
  // How long a unit waits for a standby to replay its job's plan, then reads elsewhere.
  int replica_wait_ms = 5000;
  std::string export_dir;  // must exist (shared by every worker and the HTTP side)
  int threads = 2;
  int lease_seconds = 30;
  int64_t max_file_resources = 100000;
  int64_t max_file_bytes = 256LL << 20;
  int64_t retention_seconds = 86400;  // completed files stay this long
  int64_t grace_seconds = 3600;       // ... plus this, for downloads in flight
  int janitor_interval_seconds = 30;
  // Job history (sql/0007_job_history.sql) older than this is pruned by the janitor; 0: kept.
  int history_days = 90;
  // Replaced versions are kept at least this long (beyond what exports need); a floor of a
  // minute keeps a kick-off that commits while the janitor runs from finding its versions
  // pruned (which fails it as transient).
  int64_t history_retention_seconds = 60;
  int max_attempts = 5;  // per unit, then the job fails (transient)
  // A unit reads at most ~this much of a table (rows; heap + TOAST bytes; planner.h).
  int64_t target_unit_resources = kDefaultTargetUnitResources;
  int64_t target_unit_bytes = kDefaultTargetUnitBytes;
  int64_t block_unit_patients = 250;  // organizeOutputBy=Patient (patient_blocks.h)
  // Heartbeat / cancellation check: every check_every_rows rows or check_every_ms, whichever
  // first, also while a unit's query returns no rows (unit_runner.h).
  int64_t check_every_rows = 10000;
  int check_every_ms = 1000;
  // A unit's (or planning) statement running longer is cancelled and fails its job; 0: none.
  int64_t unit_timeout_seconds = 1800;
  // Criteria-based Groups (cohort_runner.h): an evaluation's statement timeout and member
  // limit, at most; the node that accepted the request may ask for less.
  int64_t cohort_timeout_ms = FHIRBULK_DEFAULT_COHORT_TIMEOUT_MS;
  int64_t cohort_max_members = FHIRBULK_DEFAULT_GROUP_MAX_MEMBERS;
  int gzip_level = 1;     // gzip twin "<file>.gz" of every file; 0: none, 1..9
  std::string worker_id;  // default: <host>-<pid>-<random>
  // Log lines; default: stderr, prefixed with the time.
  std::function<void(const std::string&)> log;
  // Test hook, see UnitRunnerOptions::on_heartbeat.
  std::function<void(const std::string& job_id, int unit_no, int64_t rows)> on_heartbeat;
};

class Worker {
 public:
  // Checks the options and the export directory; connects lazily.
  static Result<std::unique_ptr<Worker>> Create(WorkerOptions options);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Serves until Stop(). Connection failures are retried with backoff, never returned.
  Status Run();
  // Plans and runs whatever is claimable on `threads` threads until nothing is left (units
  // leased by another live worker are not waited for). Returns the first database error.
  Status RunUntilIdle();
  void Stop();
  bool stopping() const { return stop_.load(); }

  // One step on thread 0's connections: plan one job / run one unit. False: nothing to do.
  Result<bool> PlanOne();
  Result<bool> RunOneUnit();
  // One janitor pass.
  Status RunJanitor();

  const std::string& worker_id() const { return options_.worker_id; }

 private:
  struct ThreadState;

  explicit Worker(WorkerOptions options);
  Status EnsureConnected(ThreadState* t);
  Result<bool> Step(ThreadState* t, bool plan, bool run);
  void ServeLoop(ThreadState* t);
  void WaitForWork(uint64_t seen, int milliseconds) EXCLUDES(mu_);
  // Until `deadline` or Stop(), whichever comes first.
  void WaitForStop(std::chrono::steady_clock::time_point deadline) EXCLUDES(mu_);
  void Wake() EXCLUDES(mu_);
  void Log(const std::string& msg) const;
  Status JanitorRows(PgConnection* conn);
  Status JanitorFiles(PgConnection* conn);
  Status JanitorCancelMarkers(PgConnection* conn);
  Status JanitorJobHistory(PgConnection* conn);
  Status JanitorResourceHistory(PgConnection* conn);

  WorkerOptions options_;
  std::atomic<bool> stop_{false};
  std::vector<std::unique_ptr<ThreadState>> threads_;
  std::unique_ptr<PgConnection> janitor_conn_;
  Mutex mu_;
  CondVar cv_;
  uint64_t wake_seq_ GUARDED_BY(mu_) = 0;
};

}  // namespace fhirbulk

#endif  // FHIRBULK_WORKER_WORKER_H_
