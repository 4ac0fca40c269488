#include "auth/audit.h"

#include <unistd.h>

#include <cstdio>
#include <map>
#include <string_view>
#include <vector>

#include "db/pg.h"
#include "db/pg_copy.h"
#include "util/current_pid.h"
#include "util/fhir_time.h"
#include "util/log_escape.h"

namespace fhirbulk {
namespace {

constexpr size_t kMaxQueued = 100000;
constexpr size_t kMaxBatch = 2000;
constexpr auto kRetryDelay = std::chrono::seconds(1);
constexpr auto kGatherDelay = std::chrono::milliseconds(50);
constexpr size_t kGatherEvents = 1024;
constexpr size_t kKeptCopyBuffer = 1 << 20;
constexpr auto kExitFlush = std::chrono::seconds(3);

void WriteToStderr(const AuditEvent& e) {
  std::fprintf(stderr,
               "fhir_bulk: audit event not stored: at_us=%lld client=%s action=%s target=%s "
               "result=%d detail=%s remote=%s\n",
               static_cast<long long>(e.at_us), e.client_id.c_str(), e.action.c_str(),
               e.target.c_str(), e.result, e.detail.c_str(), e.remote_addr.c_str());
}

// Every text field is client-influenced (a token request's detail quotes the assertion's alg,
// kid or iss; a kick-off's is its URL) and is written here as LogSanitize makes it: control
// and non-ASCII bytes as \xNN, so the trail holds no forged line, no NUL PostgreSQL refuses
// and no byte sequence that is not UTF-8; each field is cut to a bound, so the trail cannot be
// made to grow by megabytes per request.
constexpr size_t kMaxIdBytes = 256;
constexpr size_t kMaxTargetBytes = 512;
constexpr size_t kMaxDetailBytes = 2048;

void Sanitize(AuditEvent* e) {
  e->client_id = LogSanitize(e->client_id, kMaxIdBytes);
  e->action = LogSanitize(e->action, kMaxIdBytes);
  e->target = LogSanitize(e->target, kMaxTargetBytes);
  e->detail = LogSanitize(e->detail, kMaxDetailBytes);
  e->remote_addr = LogSanitize(e->remote_addr, kMaxIdBytes);
}

// Binary COPY: the server parses no array or timestamp literal and the thread builds none,
// which under a stream of small downloads is most of what an INSERT from unnest cost.
void EncodeOptionalText(PgCopyEncoder* enc, const std::string& s) {
  if (s.empty()) {
    enc->Null();
  } else {
    enc->Text(s);
  }
}

Status WriteBatch(PgConnection* conn, const std::vector<AuditEvent>& batch, std::string* buf) {
  buf->clear();
  PgCopyEncoder enc(buf);
  enc.Header();
  for (const AuditEvent& e : batch) {
    enc.BeginRow(7);
    enc.TimestampTz(e.at_us);
    EncodeOptionalText(&enc, e.client_id);
    enc.Text(e.action);
    EncodeOptionalText(&enc, e.target);
    enc.Int4(e.result);
    EncodeOptionalText(&enc, e.detail);
    EncodeOptionalText(&enc, e.remote_addr);
  }
  enc.Trailer();
  FHIRBULK_RETURN_IF_ERROR(conn->CopyInBegin(
      "COPY audit_event (at, client_id, action, target, result, detail, remote_addr) "
      "FROM STDIN (FORMAT binary)"));
  Status s = conn->CopyInPut(*buf);
  if (!s.ok()) {
    conn->CopyInAbort("audit: send failed");
    return s;
  }
  return conn->CopyInEnd();
}

}  // namespace

AuditLog* AuditLog::ForConninfo(const std::string& conninfo) {
  static Mutex mu;
  static std::map<std::string, std::unique_ptr<AuditLog>> logs GUARDED_BY(mu);
  MutexLock lock(&mu);
  auto& slot = logs[conninfo];
  if (!slot) slot = std::make_unique<AuditLog>(conninfo);
  return slot.get();
}

AuditLog::AuditLog(std::string conninfo) : conninfo_(std::move(conninfo)) {}

AuditLog::~AuditLog() {
  {
    MutexLock lock(&mu_);
    if (thread_.joinable() && thread_pid_ == CurrentPid()) {
      const auto deadline = std::chrono::steady_clock::now() + kExitFlush;
      while (done_ != submitted_ && written_.WaitUntil(&mu_, deadline)) {
      }
    }
    stop_ = true;
  }
  wake_.SignalAll();
  if (thread_.joinable()) {
    if (thread_pid_ == CurrentPid()) {
      thread_.join();
    } else {
      thread_.detach();  // inherited across fork: that thread does not exist here
    }
  }
  for (const AuditEvent& e : queue_) WriteToStderr(e);
}

void AuditLog::EnsureThread() {
  if (thread_pid_ == CurrentPid()) return;
  if (thread_.joinable()) thread_.detach();
  thread_pid_ = CurrentPid();
  thread_ = std::thread([this] { Run(); });
}

void AuditLog::Submit(AuditEvent event) {
  Sanitize(&event);
  if (event.at_us == 0) event.at_us = NowMicros();
  bool wake = false;
  {
    MutexLock lock(&mu_);
    if (queue_.size() >= kMaxQueued) {
      WriteToStderr(event);
      return;
    }
    EnsureThread();
    queue_.push_back(std::move(event));
    submitted_++;
    // The writer waits only for a first event or for a full gather (Run): waking it for every
    // event in between cost a futex call and a context switch per download.
    wake = queue_.size() == 1 || queue_.size() == kGatherEvents;
  }
  if (wake) wake_.Signal();
}

bool AuditLog::Flush(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  MutexLock lock(&mu_);
  const uint64_t target = submitted_;
  while (done_ < target && written_.WaitUntil(&mu_, deadline)) {
  }
  return done_ >= target;
}

void AuditLog::Run() {
  std::unique_ptr<PgConnection> conn;
  std::string copy_buf;  // kept across batches
  MutexLock lock(&mu_);
  while (true) {
    while (!stop_ && queue_.empty()) wake_.Wait(&mu_);
    // Gather a batch: under a stream of downloads one COPY per up to a thousand events costs
    // the database far less than one per wake-up (each COPY is also a parse, a transaction
    // and the backend's memory for it); an event waits at most kGatherDelay for it.
    const auto gathered = std::chrono::steady_clock::now() + kGatherDelay;
    while (!stop_ && queue_.size() < kGatherEvents && wake_.WaitUntil(&mu_, gathered)) {
    }
    if (queue_.empty()) return;            // stopping with nothing left
    if (stop_ && conn == nullptr) return;  // no database to flush to; the destructor logs them
    std::vector<AuditEvent> batch;
    while (!queue_.empty() && batch.size() < kMaxBatch) {
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    mu_.Unlock();
    Status s;
    if (conn == nullptr || !conn->healthy()) {
      auto c = PgConnection::Connect(conninfo_);
      if (!c.ok()) {
        s = c.status();
      } else {
        conn = std::move(c).value();
        auto set = conn->Exec("SET statement_timeout = 10000; SET synchronous_commit = off");
        if (!set.ok()) {
          conn.reset();
          s = Status::Unavailable("setup failed");
        }
      }
    }
    if (conn != nullptr) s = WriteBatch(conn.get(), batch, &copy_buf);
    if (s.code() == Status::Code::kInvalidArgument) {
      // The database refused the data itself (SQLSTATE class 22), not for its state: trying
      // the batch again would block the trail behind it forever.
      for (const AuditEvent& e : batch) WriteToStderr(e);
      s = Status::OK();
    }
    // A batch of events cut to their bounds can take megabytes: not kept for the next one.
    if (copy_buf.capacity() > kKeptCopyBuffer) std::string().swap(copy_buf);
    mu_.Lock();
    if (s.ok()) {
      done_ += batch.size();
      written_.SignalAll();
      continue;
    }
    conn.reset();
    // Put the batch back in front, in order, and wait before trying again.
    for (auto it = batch.rbegin(); it != batch.rend(); ++it) queue_.push_front(std::move(*it));
    if (stop_) return;
    const auto retry = std::chrono::steady_clock::now() + kRetryDelay;
    while (!stop_ && wake_.WaitUntil(&mu_, retry)) {
    }
  }
}

}  // namespace fhirbulk
