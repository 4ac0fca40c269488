// AuditLog: who did what, when, with what result (sql/0003_auth.sql, audit_event).
//
// Submit() never waits on the database, so the nginx event loop can record downloads: events
// go to an in-memory queue that a background thread writes in batches (one binary COPY
// per batch) over its own connection. While the database is down the queue keeps
// up to 100,000 events and the thread retries every second; beyond that, events are written
// to stderr (nginx's error log) instead of being lost silently. Text fields are client-influenced:
// Submit passes each through LogSanitize (util/log_escape.h: control and non-ASCII bytes become
// \xNN, so no forged line and nothing PostgreSQL cannot store) and cuts it (ids 256 bytes,
// target 512, detail 2048); a batch the database still refuses for its data, not its state,
// goes to stderr too rather than blocking the queue. Events still
// queued when a process is killed with SIGKILL are lost; a normal exit flushes (at most 3 s).
// No event ever carries a token, an assertion or a key: callers pass identifiers and reasons.
//
// The thread starts with the first Submit in a process (nginx forks its workers after reading
// the configuration; a thread started in the master would not survive the fork).
//
// Thread-safety: Submit and Flush may be called from any thread.

#ifndef FHIRBULK_AUTH_AUDIT_H_
#define FHIRBULK_AUTH_AUDIT_H_

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <thread>

#include "util/mutex.h"

namespace fhirbulk {

struct AuditEvent {
  int64_t at_us = 0;      // 0: now
  std::string client_id;  // empty: unknown
  std::string action;     // token | kickoff | status | cancel | download
  std::string target;
  int result = 0;  // HTTP status
  std::string detail;
  std::string remote_addr;
};

class AuditLog {
 public:
  // The process-wide log writing to the database of `conninfo`.
  static AuditLog* ForConninfo(const std::string& conninfo);

  explicit AuditLog(std::string conninfo);
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  void Submit(AuditEvent event) EXCLUDES(mu_);
  // Waits until every event submitted so far is written; false on timeout.
  bool Flush(std::chrono::milliseconds timeout) EXCLUDES(mu_);

 private:
  void Run() EXCLUDES(mu_);
  void EnsureThread() REQUIRES(mu_);

  const std::string conninfo_;
  Mutex mu_;
  CondVar wake_, written_;
  std::deque<AuditEvent> queue_ GUARDED_BY(mu_);
  uint64_t submitted_ GUARDED_BY(mu_) = 0;
  uint64_t done_ GUARDED_BY(mu_) = 0;
  bool stop_ GUARDED_BY(mu_) = false;
  std::thread thread_ GUARDED_BY(mu_);
  int thread_pid_ GUARDED_BY(mu_) = 0;
};

}  // namespace fhirbulk

#endif  // FHIRBULK_AUTH_AUDIT_H_
