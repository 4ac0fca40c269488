#include "worker/worker.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <random>
#include <thread>

#include "export/job_dir.h"
#include "export/job_store.h"
#include "export/type_filter_sql.h"
#include "util/errno_text.h"
#include "util/fhir_time.h"
#include "worker/cohort_runner.h"
#include "worker/heartbeat.h"
#include "worker/ndjson_writer.h"
#include "worker/planner.h"
#include "worker/read_replicas.h"
#include "worker/unit_runner.h"

namespace fhirbulk {

namespace {

using Clock = std::chrono::steady_clock;

std::string DefaultWorkerId() {
  char host[256] = {0};
  if (::gethostname(host, sizeof(host) - 1) != 0) std::snprintf(host, sizeof(host), "host");
  std::string id;
  for (const char* p = host; *p != '\0' && id.size() < 40; p++) {
    char c = *p;
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    id.push_back(ok ? c : '-');  // '.' would confuse file name parsing
  }
  std::random_device rd;
  char suffix[32];
  std::snprintf(suffix, sizeof(suffix), "-%d-%04x", static_cast<int>(::getpid()), rd() & 0xffff);
  return id + suffix;
}

// A connection the engine can use: connected, idle, with settings for long COPYs.
Result<std::unique_ptr<PgConnection>> Connect(const std::string& conninfo) {
  auto c = PgConnection::Connect(conninfo);
  if (!c.ok()) return c.status();
  // JIT compilation costs more than it saves on these simple scans. Claims and heartbeats
  // need not wait for a WAL flush (a lost lease renewal is harmless, and the disk is busy
  // with our files); the transactions that must be durable say so with SET LOCAL.
  auto s = (*c)->Exec(
      "SET application_name = 'fhir-bulk-worker'; SET jit = off; "
      "SET synchronous_commit = off");
  if (!s.ok()) return s.status();
  return std::move(c).value();
}

bool Usable(const std::unique_ptr<PgConnection>& c) { return c != nullptr && c->idle(); }

bool OlderThan(const struct stat& st, int seconds) {
  return std::time(nullptr) - st.st_mtime > seconds;
}

}  // namespace

struct Worker::ThreadState {
  int index = 0;
  std::string id;  // this thread's worker id: <worker_id>-t<index>
  std::unique_ptr<PgConnection> control;
  std::unique_ptr<PgConnection> data;
  std::unique_ptr<ReadReplicas> replicas;  // --read-db: this thread's standby connections
};

Worker::Worker(WorkerOptions options) : options_(std::move(options)) {}

Worker::~Worker() { Stop(); }

Result<std::unique_ptr<Worker>> Worker::Create(WorkerOptions options) {
  if (options.export_dir.empty()) return Status::InvalidArgument("--export-dir is required");
  while (options.export_dir.size() > 1 && options.export_dir.back() == '/') {
    options.export_dir.pop_back();
  }
  struct stat st;
  if (::stat(options.export_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Status::InvalidArgument("export directory " + options.export_dir +
                                   " does not exist or is not a directory");
  }
  if (::access(options.export_dir.c_str(), W_OK | X_OK) != 0) {
    return Status::PermissionDenied("export directory " + options.export_dir + " is not writable");
  }
  if (options.threads < 1 || options.threads > 256) {
    return Status::InvalidArgument("--threads must be between 1 and 256");
  }
  if (options.lease_seconds < 2) return Status::InvalidArgument("--lease-seconds must be >= 2");
  if (options.max_file_resources < 1 || options.max_file_bytes < 1) {
    return Status::InvalidArgument("file size limits must be positive");
  }
  if (options.gzip_level < 0 || options.gzip_level > 9) {
    return Status::InvalidArgument("--gzip-level must be between 0 and 9");
  }
  if (options.target_unit_resources < 1) {
    return Status::InvalidArgument("--target-unit-resources must be positive");
  }
  if (options.target_unit_bytes < 1) {
    return Status::InvalidArgument("--target-unit-mb must be positive");
  }
  if (options.unit_timeout_seconds < 0) {
    return Status::InvalidArgument("--unit-timeout-seconds must be >= 0");
  }
  if (options.check_every_ms < 1) return Status::InvalidArgument("check_every_ms must be >= 1");
  if (options.max_attempts < 1) return Status::InvalidArgument("--max-attempts must be >= 1");
  if (options.history_days < 0) return Status::InvalidArgument("--history-days must be >= 0");
  if (options.history_retention_seconds < 0) {
    return Status::InvalidArgument("--history-retention-seconds must be >= 0");
  }
  if (options.janitor_interval_seconds < 1) {
    return Status::InvalidArgument("--janitor-interval-seconds must be >= 1");
  }
  if (options.replica_wait_ms < 0) {
    return Status::InvalidArgument("--read-db-wait-ms must be >= 0");
  }
  for (const std::string& ci : options.read_conninfos) {
    if (ci.empty()) return Status::InvalidArgument("--read-db must not be empty");
  }
  if (options.worker_id.empty()) options.worker_id = DefaultWorkerId();
  if (!options.log) {
    options.log = [](const std::string& msg) {
      std::fprintf(stderr, "%s fhir-bulk worker: %s\n", FormatInstant(NowMicros()).c_str(),
                   msg.c_str());
    };
  }
  std::unique_ptr<Worker> w(new Worker(std::move(options)));
  for (int i = 0; i < w->options_.threads; i++) {
    auto t = std::make_unique<ThreadState>();
    t->index = i;
    t->id = w->options_.worker_id + "-t" + std::to_string(i);
    if (!w->options_.read_conninfos.empty()) {
      Worker* self = w.get();
      t->replicas =
          std::make_unique<ReadReplicas>(w->options_.read_conninfos, i, Connect,
                                         [self, prefix = "thread " + t->id + ": "](
                                             const std::string& m) { self->Log(prefix + m); });
    }
    w->threads_.push_back(std::move(t));
  }
  return w;
}

void Worker::Log(const std::string& msg) const {
  if (options_.log) options_.log(msg);
}

void Worker::Stop() {
  stop_.store(true);
  Wake();
}

void Worker::Wake() {
  {
    MutexLock lock(&mu_);
    wake_seq_++;
  }
  cv_.SignalAll();
}

void Worker::WaitForWork(uint64_t seen, int milliseconds) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(milliseconds);
  MutexLock lock(&mu_);
  while (!stop_.load() && wake_seq_ == seen && cv_.WaitUntil(&mu_, deadline)) {
  }
}

void Worker::WaitForStop(Clock::time_point deadline) {
  MutexLock lock(&mu_);
  while (!stop_.load() && cv_.WaitUntil(&mu_, deadline)) {
  }
}

Status Worker::EnsureConnected(ThreadState* t) {
  for (auto* c : {&t->control, &t->data}) {
    if (Usable(*c)) continue;
    c->reset();
    auto conn = Connect(options_.conninfo);
    if (!conn.ok()) return conn.status();
    *c = std::move(conn).value();
  }
  return Status::OK();
}

Result<bool> Worker::Step(ThreadState* t, bool plan, bool run) {
  FHIRBULK_RETURN_IF_ERROR(EnsureConnected(t));
  Result<bool> did = false;
  if (plan) {
    // Cohort requests first: a client polls for each, and one takes at most its timeout.
    CohortRunnerOptions co;
    co.worker_id = t->id;
    co.log = options_.log;
    co.timeout_ms = options_.cohort_timeout_ms;
    co.max_members = options_.cohort_max_members;
    did = EvaluateNextCohort(t->control.get(), co);
    if (!did.ok() || *did) {
      if (!Usable(t->control)) t->control.reset();
      return did;
    }
    PlannerOptions po;
    po.export_dir = options_.export_dir;
    po.worker_id = t->id;
    po.lease_seconds = options_.lease_seconds;
    po.retention_seconds = options_.retention_seconds;
    po.target_unit_resources = options_.target_unit_resources;
    po.target_unit_bytes = options_.target_unit_bytes;
    po.block_unit_patients = options_.block_unit_patients;
    po.statement_timeout_ms = options_.unit_timeout_seconds * 1000;
    po.cohort_max_members = options_.cohort_max_members;
    po.stop = &stop_;
    po.log = options_.log;
    did = PlanNextJob(t->control.get(), po);
    if (did.ok() && *did) Wake();  // new units: let idle threads claim them
  }
  if (run && did.ok() && !*did) {
    UnitRunnerOptions uo;
    uo.export_dir = options_.export_dir;
    uo.worker_id = t->id;
    uo.lease_seconds = options_.lease_seconds;
    uo.max_file_resources = options_.max_file_resources;
    uo.max_file_bytes = options_.max_file_bytes;
    uo.retention_seconds = options_.retention_seconds;
    uo.max_attempts = options_.max_attempts;
    uo.check_every_rows = options_.check_every_rows;
    uo.check_every_ms = options_.check_every_ms;
    uo.statement_timeout_ms = options_.unit_timeout_seconds * 1000;
    uo.gzip_level = options_.gzip_level;
    uo.stop = &stop_;
    uo.log = options_.log;
    uo.on_heartbeat = options_.on_heartbeat;
    uo.replicas = t->replicas.get();
    uo.replica_wait_ms = options_.replica_wait_ms;
    did = RunNextUnit(t->control.get(), t->data.get(), uo);
  }
  // An aborted COPY or a failed transaction can leave a connection busy: start afresh.
  if (!Usable(t->control)) t->control.reset();
  if (!Usable(t->data)) t->data.reset();
  return did;
}

void Worker::ServeLoop(ThreadState* t) {
  int backoff_ms = 0;
  while (!stop_.load()) {
    uint64_t seen;
    {
      MutexLock lock(&mu_);
      seen = wake_seq_;
    }
    auto did = Step(t, true, true);
    if (!did.ok()) {
      backoff_ms = backoff_ms == 0 ? 500 : std::min(10000, backoff_ms * 2);
      Log("thread " + t->id + ": " + did.status().ToString() + "; retrying in " +
          std::to_string(backoff_ms) + " ms");
      t->control.reset();
      t->data.reset();
      WaitForWork(seen, backoff_ms);
      continue;
    }
    backoff_ms = 0;
    if (!*did) WaitForWork(seen, 1000);  // a NOTIFY, a peer's plan, or the 1 s poll
  }
}

Status Worker::Run() {
  std::vector<std::thread> pool;
  for (auto& t : threads_) pool.emplace_back([this, tp = t.get()] { ServeLoop(tp); });
  Log("worker " + options_.worker_id + " serving " + options_.export_dir + " with " +
      std::to_string(threads_.size()) + " threads");
  // The worker's row in worker_heartbeat (/_health, /metrics); deleted when Run() returns.
  HeartbeatOptions ho;
  ho.conninfo = options_.conninfo;
  ho.worker_id = options_.worker_id;
  ho.threads = static_cast<int>(threads_.size());
  ho.log = [this](const std::string& m) { Log(m); };
  Heartbeat heartbeat(std::move(ho));
  heartbeat.Start();

  std::thread janitor([this] {
    while (!stop_.load()) {
      Status s = RunJanitor();
      if (!s.ok()) Log("janitor: " + s.ToString());
      WaitForStop(Clock::now() + std::chrono::seconds(options_.janitor_interval_seconds));
    }
  });

  // This thread: LISTEN for kick-offs.
  std::unique_ptr<PgConnection> listener;
  int reconnect_ms = 0;
  auto next_connect = Clock::now();
  while (!stop_.load()) {
    auto now = Clock::now();
    if (!Usable(listener) && now >= next_connect) {
      listener.reset();
      auto c = Connect(options_.conninfo);
      if (c.ok() && (*c)->Exec("LISTEN fhir_bulk_jobs").ok()) {
        listener = std::move(c).value();
        reconnect_ms = 0;
        Wake();  // kick-offs may have arrived while we were not listening
      } else {
        reconnect_ms = reconnect_ms == 0 ? 500 : std::min(10000, reconnect_ms * 2);
        next_connect = now + std::chrono::milliseconds(reconnect_ms);
      }
    }
    if (listener == nullptr) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      continue;
    }
    auto notified = listener->WaitForNotifications(200);  // short, so Stop() is noticed quickly
    if (!notified.ok()) {
      listener.reset();
      continue;
    }
    if (*notified > 0) Wake();
  }
  Wake();
  for (auto& th : pool) th.join();
  janitor.join();
  heartbeat.Stop();
  Log("worker " + options_.worker_id + " stopped");
  return Status::OK();
}

Status Worker::RunUntilIdle() {
  std::atomic<int> busy{0};
  Mutex err_mu;
  Status first_error;  // guarded by err_mu while the threads run
  auto loop = [&](ThreadState* t) {
    while (!stop_.load()) {
      busy++;
      auto did = Step(t, true, true);
      busy--;
      if (!did.ok()) {
        MutexLock lock(&err_mu);
        if (first_error.ok()) first_error = did.status();
        return;
      }
      if (*did) continue;
      if (busy.load() == 0) return;  // nobody is planning or running: nothing left
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  };
  std::vector<std::thread> pool;
  for (size_t i = 1; i < threads_.size(); i++) pool.emplace_back(loop, threads_[i].get());
  loop(threads_[0].get());
  for (auto& th : pool) th.join();
  return first_error;
}

Result<bool> Worker::PlanOne() { return Step(threads_[0].get(), true, false); }

Result<bool> Worker::RunOneUnit() { return Step(threads_[0].get(), false, true); }

Status Worker::RunJanitor() {
  if (!Usable(janitor_conn_)) {
    janitor_conn_.reset();
    auto c = Connect(options_.conninfo);
    if (!c.ok()) return c.status();
    janitor_conn_ = std::move(c).value();
    // Housekeeping never queues behind a lock (a DDL, a VACUUM FULL, a long transaction):
    // waiting would hold what it already locked, and stall the next pass. It tries again then.
    auto t = janitor_conn_->Exec("SET lock_timeout = '1s'");
    if (!t.ok()) return t.status();
  }
  Status s = JanitorRows(janitor_conn_.get());
  if (s.ok()) s = JanitorFiles(janitor_conn_.get());
  if (s.ok()) s = JanitorCancelMarkers(janitor_conn_.get());
  if (s.ok()) s = JanitorJobHistory(janitor_conn_.get());
  if (s.ok()) s = JanitorResourceHistory(janitor_conn_.get());
  if (!Usable(janitor_conn_)) janitor_conn_.reset();
  return s;
}

Status Worker::JanitorRows(PgConnection* conn) {
  constexpr int kBatch = 100;
  while (!stop_.load()) {
    int found = 0;
    Status s = PgTransaction(conn, [&]() -> Status {
      auto r = conn->Exec(
          "SELECT job_id::text FROM export_job WHERE state = 'cancelled' "
          "OR (state IN ('completed', 'failed') AND expires_at + $1::bigint * interval "
          "'1 second' < now()) LIMIT " +
              std::to_string(kBatch) + " FOR UPDATE SKIP LOCKED",
          {std::to_string(options_.grace_seconds)});
      if (!r.ok()) return r.status();
      found = r->rows();
      if (found == 0) return Status::OK();
      std::vector<std::string> ids;
      for (int i = 0; i < found; i++) {
        ids.push_back(r->str(i, 0));
        // Directories first: a crash in between leaves rows, and the next pass retries.
        RemoveTree(JobDirectory(options_.export_dir, ids.back()));
        RemoveTree(CancelledJobDirectory(options_.export_dir, ids.back()));
      }
      auto d = conn->Exec("DELETE FROM export_job WHERE job_id = ANY($1::uuid[])",
                          {PgTextArrayLiteral(ids)});
      return d.ok() ? Status::OK() : d.status();
    });
    if (!s.ok()) return s;
    if (found > 0) Log("janitor: removed " + std::to_string(found) + " finished jobs");
    if (found < kBatch) return Status::OK();
  }
  return Status::OK();
}

// The job history (sql/0007): rows older than history_days; 0 keeps them.
Status Worker::JanitorJobHistory(PgConnection* conn) {
  if (options_.history_days <= 0) return Status::OK();
  auto r = conn->Exec(
      "DELETE FROM export_job_history WHERE finished_at < now() - $1::int * interval '1 day'",
      {std::to_string(options_.history_days)});
  if (!r.ok()) return r.status();
  const std::string pruned = r->affected();
  if (!pruned.empty() && pruned != "0") Log("janitor: pruned " + pruned + " job history rows");
  return Status::OK();
}

// Replaced resource versions (sql/0008) no export can need any more.
Status Worker::JanitorResourceHistory(PgConnection* conn) {
  constexpr int kHistoryPruneBatch = 2000;
  int64_t pruned = 0;
  while (!stop_.load()) {
    int64_t gone = 0;
    Status s = PgTransaction(conn, [&]() -> Status {
      // Every planner waits for this transaction (the horizon row below), so it must not wait
      // long for anything itself: the history tables locked by someone else (55P03) end the
      // pass at once.
      auto quick = conn->Exec("SET LOCAL lock_timeout = '100ms'");
      if (!quick.ok()) return quick.status();
      // The horizon row first (a planner checking it waits for this pass), then the jobs,
      // read by a later statement. Held by a planner (or another worker's janitor): this
      // pass skips pruning rather than wait for a planning transaction to end.
      auto lock = conn->Exec("SELECT 1 FROM history_horizon WHERE id = 1 FOR UPDATE SKIP LOCKED");
      if (!lock.ok()) return lock.status();
      if (lock->rows() == 0) return Status::OK();
      auto r = conn->Exec(
          "WITH horizon AS (SELECT least((SELECT min(transaction_time) FROM export_job "
          "WHERE state IN ('accepted', 'running') OR (state = 'completed' "
          "AND (expires_at IS NULL OR expires_at > now()))), "
          "now() - $1::bigint * interval '1 second') AS h), "
          "mark AS (UPDATE history_horizon SET pruned_before = greatest(pruned_before, "
          "(SELECT h FROM horizon)) WHERE id = 1), "
          "victims AS (SELECT ctid FROM resource_history "
          "WHERE valid_to < (SELECT h FROM horizon) LIMIT " +
              std::to_string(kHistoryPruneBatch) +
              "), "
              "gone AS (DELETE FROM resource_history WHERE ctid = ANY(ARRAY(SELECT ctid FROM "
              "victims)) "
              "RETURNING res_type, res_id, version), "
              "members AS (DELETE FROM group_member_history m USING gone "
              "WHERE gone.res_type = 'Group' AND m.group_id = gone.res_id "
              "AND m.group_version = gone.version) "
              "SELECT count(*) FROM gone",
          {std::to_string(std::max<int64_t>(0, options_.history_retention_seconds))});
      if (!r.ok()) return r.status();
      gone = r->int64(0, 0);
      return Status::OK();
    });
    if (IsLockNotAvailable(s)) {
      Log("janitor: replaced versions are locked by another session; pruning them next pass");
      break;
    }
    if (!s.ok()) return s;
    pruned += gone;
    if (gone < kHistoryPruneBatch) break;
  }
  if (pruned > 0) Log("janitor: pruned " + std::to_string(pruned) + " replaced versions");
  return Status::OK();
}

Status Worker::JanitorFiles(PgConnection* conn) {
  DIR* d = ::opendir(options_.export_dir.c_str());
  if (d == nullptr) return Status::IOError("cannot list the export directory");
  std::vector<std::string> job_dirs;
  std::vector<std::string> doomed_dirs;  // .cancelled-<job>, and what RemoveTree moved aside
  while (struct dirent* e = ::readdir(d)) {
    const std::string_view name(e->d_name);
    std::string_view base = name;
    bool aside = false;
    while (base.size() > kRemovingSuffix.size() &&
           base.substr(base.size() - kRemovingSuffix.size()) == kRemovingSuffix) {
      base.remove_suffix(kRemovingSuffix.size());
      aside = true;
    }
    if (auto id = CancelledDirJobId(base); id && IsValidJobId(*id)) {
      doomed_dirs.emplace_back(name);
    } else if (IsValidJobId(base)) {
      (aside ? doomed_dirs : job_dirs).emplace_back(name);
    }
  }
  ::closedir(d);
  for (const std::string& c : doomed_dirs) RemoveTree(options_.export_dir + "/" + c);
  if (job_dirs.empty()) return Status::OK();

  auto r = conn->Exec(
      "SELECT j::text, e.state FROM unnest($1::uuid[]) AS j "
      "LEFT JOIN export_job e ON e.job_id = j",
      {PgTextArrayLiteral(job_dirs)});
  if (!r.ok()) return r.status();
  for (int i = 0; i < r->rows(); i++) {
    const std::string dir = JobDirectory(options_.export_dir, r->str(i, 0));
    const bool gone = r->is_null(i, 1);
    const std::string state = gone ? "" : r->str(i, 1);
    struct stat st;
    if (::stat(dir.c_str(), &st) != 0) continue;
    if (state == "failed" || state == "cancelled" ||
        (gone && OlderThan(st, options_.lease_seconds))) {
      RemoveTree(dir);
      continue;
    }
    if (state == "running" || gone) continue;
    // Completed or accepted: no unit can be writing; temp files are leftovers.
    DIR* jd = ::opendir(dir.c_str());
    if (jd == nullptr) continue;
    while (struct dirent* e = ::readdir(jd)) {
      auto parsed = ParseExportFileName(e->d_name);
      if (!parsed || !parsed->temp) continue;
      struct stat fst;
      if (::fstatat(::dirfd(jd), e->d_name, &fst, AT_SYMLINK_NOFOLLOW) == 0 &&
          OlderThan(fst, options_.lease_seconds)) {
        ::unlinkat(::dirfd(jd), e->d_name, 0);
      }
    }
    ::closedir(jd);
  }
  return Status::OK();
}

Status Worker::JanitorCancelMarkers(PgConnection* conn) {
  const std::string dir = CancelMarkerDirectory(options_.export_dir);
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    // No cancel yet (nginx creates it at start), or only nginx's user may read it; the
    // HTTP side then sweeps its own markers.
    if (errno == ENOENT || errno == EACCES) return Status::OK();
    return Status::IOError("cannot list " + dir + ": " + ErrnoText(errno));
  }
  std::vector<std::string> markers;
  const time_t now = std::time(nullptr);
  while (struct dirent* e = ::readdir(d)) {
    if (!IsValidJobId(e->d_name)) continue;
    struct stat st;
    if (::fstatat(::dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        now - st.st_mtime >= kCancelMarkerKeepSeconds) {
      markers.emplace_back(e->d_name);
    }
  }
  ::closedir(d);
  if (markers.empty()) return Status::OK();
  // The row first, then the directories. Only the planner creates a job directory, holding
  // the job's row locked, and JanitorRows removes the directories before it deletes the row:
  // once the row is gone no directory of the job can appear again, so a marker whose row and
  // directories are both gone protects nothing, and one whose files are still on disk stays.
  auto r = conn->Exec(
      "SELECT j::text FROM unnest($1::uuid[]) AS j "
      "WHERE NOT EXISTS (SELECT 1 FROM export_job e WHERE e.job_id = j)",
      {PgTextArrayLiteral(markers)});
  if (!r.ok()) return r.status();
  int removed = 0;
  for (int i = 0; i < r->rows(); i++) {
    const std::string id = r->str(i, 0);
    struct stat st;
    if (::lstat(JobDirectory(options_.export_dir, id).c_str(), &st) == 0 || errno != ENOENT) {
      continue;
    }
    const std::string renamed = CancelledJobDirectory(options_.export_dir, id);
    if (::lstat(renamed.c_str(), &st) == 0 || errno != ENOENT) continue;
    std::string marker = dir;
    marker.append("/").append(id);
    if (::unlink(marker.c_str()) == 0) removed++;
  }
  if (removed > 0) Log("janitor: removed " + std::to_string(removed) + " cancel markers");
  return Status::OK();
}

}  // namespace fhirbulk
