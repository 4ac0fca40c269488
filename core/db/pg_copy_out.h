// PgAsyncCopyOut: a COPY ... TO STDOUT read without blocking, so the reading thread can do
// other work (renew a lease, notice a cancel) while a slow statement sends nothing.
//
// Contract:
//  - Start sends the statement (PQsendQuery) and returns at once.
//  - Next reads what has arrived and hands out one chunk at a time: kChunk (*chunk holds the
//    bytes: one row for text COPY, one message for binary COPY; valid until the next call),
//    kWouldBlock (nothing complete buffered: WaitReadable, then Next again) or kEnd (the COPY
//    completed). A statement error is the Status: the connection is then idle again.
//  - Abort ends a statement still in flight (PgAbortStatement); the destructor aborts one that
//    was neither finished nor aborted, so an early return never leaves the connection busy.
//
// Thread-safety: as PgConnection (one thread at a time).

#ifndef FHIRBULK_DB_PG_COPY_OUT_H_
#define FHIRBULK_DB_PG_COPY_OUT_H_

#include <string>
#include <string_view>

#include "db/pg.h"
#include "util/status.h"

namespace fhirbulk {

class PgAsyncCopyOut {
 public:
  enum class Next { kChunk, kWouldBlock, kEnd };

  explicit PgAsyncCopyOut(PgConnection* conn) : conn_(conn) {}
  ~PgAsyncCopyOut();
  PgAsyncCopyOut(const PgAsyncCopyOut&) = delete;
  PgAsyncCopyOut& operator=(const PgAsyncCopyOut&) = delete;

  // REQUIRES: the connection is idle; called once.
  Status Start(const std::string& copy_sql);
  Result<Next> Read(std::string_view* chunk);
  // Waits until the connection's socket is readable or timeout_ms passed (OK either way).
  // IOError when poll fails.
  Status WaitReadable(int timeout_ms);
  void Abort();

 private:
  // The final results after the data; the statement's error, if any.
  Status FinishResults(bool stream_broken);
  void FreeChunk();

  PgConnection* conn_;
  bool in_flight_ = false;  // started, and neither ended nor aborted
  bool copying_ = false;    // the COPY_OUT result arrived; data follows
  Status failed_;           // an error result before the COPY started
  char* chunk_ = nullptr;   // libpq's buffer of the last chunk
};

// Ends the statement in flight on `conn` (sent asynchronously; a COPY TO STDOUT may be under
// way, its start read or not) without leaving the thread blocked for long: asks the server to
// cancel it (PQcancel), then PgDrainAbortedStatement. Afterwards the connection is idle and
// usable, or (cancel failed) broken: callers check healthy() and reconnect (the worker does).
void PgAbortStatement(PgConnection* conn);

// The drain half of PgAbortStatement. cancel_sent: the statement ends within milliseconds, so
// its remaining results and COPY data are read and dropped. Otherwise the remaining data may
// be the whole result, read with no heartbeat: the connection is shut down instead (the
// server's statement_timeout ends the backend if it never writes again).
void PgDrainAbortedStatement(PgConnection* conn, bool cancel_sent);

}  // namespace fhirbulk

#endif  // FHIRBULK_DB_PG_COPY_OUT_H_
