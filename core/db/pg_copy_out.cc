#include "db/pg_copy_out.h"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>

namespace fhirbulk {

PgAsyncCopyOut::~PgAsyncCopyOut() {
  FreeChunk();
  if (in_flight_) Abort();
}

void PgAsyncCopyOut::FreeChunk() {
  if (chunk_ != nullptr) PQfreemem(chunk_);
  chunk_ = nullptr;
}

Status PgAsyncCopyOut::Start(const std::string& copy_sql) {
  PGconn* c = conn_->raw();
  if (PQsendQuery(c, copy_sql.c_str()) == 0) return PgStatusFromResult(c, nullptr);
  in_flight_ = true;
  return Status::OK();
}

Status PgAsyncCopyOut::FinishResults(bool stream_broken) {
  PGconn* c = conn_->raw();
  in_flight_ = false;
  Status s;
  while (PGresult* r = PQgetResult(c)) {
    if (PQresultStatus(r) != PGRES_COMMAND_OK && s.ok()) s = PgStatusFromResult(c, r);
    PQclear(r);
  }
  if (stream_broken && s.ok()) s = PgStatusFromResult(c, nullptr);
  return s;
}

Result<PgAsyncCopyOut::Next> PgAsyncCopyOut::Read(std::string_view* chunk) {
  PGconn* c = conn_->raw();
  FreeChunk();
  // What is buffered first; only when that is used up, read the socket (once per call). Reading
  // before waiting matters with TLS: bytes OpenSSL already decrypted leave the socket quiet.
  for (bool consumed = false;; consumed = true) {
    if (!copying_) {
      while (PQisBusy(c) == 0) {
        PGresult* r = PQgetResult(c);
        if (r == nullptr) {
          in_flight_ = false;
          return failed_.ok() ? Status::Internal("COPY returned no result") : failed_;
        }
        const bool copy_out = PQresultStatus(r) == PGRES_COPY_OUT;
        if (!copy_out && failed_.ok()) failed_ = PgStatusFromResult(c, r);
        PQclear(r);
        if (copy_out) {
          copying_ = true;
          break;
        }
      }
    }
    if (copying_) {
      int n = PQgetCopyData(c, &chunk_, /*async=*/1);
      if (n > 0) {
        *chunk = std::string_view(chunk_, static_cast<size_t>(n));
        return Next::kChunk;
      }
      if (n < 0) {  // -1: end of data; -2: error. Either way the final result(s) follow.
        FHIRBULK_RETURN_IF_ERROR(FinishResults(/*stream_broken=*/n == -2));
        return Next::kEnd;
      }
    }
    if (consumed) return Next::kWouldBlock;
    if (PQconsumeInput(c) == 0) {
      in_flight_ = false;
      return PgStatusFromResult(c, nullptr);
    }
  }
}

Status PgAsyncCopyOut::WaitReadable(int timeout_ms) {
  struct pollfd pfd = {PQsocket(conn_->raw()), POLLIN, 0};
  if (::poll(&pfd, 1, timeout_ms) < 0 && errno != EINTR) {
    return Status::IOError("poll on the database socket");
  }
  return Status::OK();
}

void PgAsyncCopyOut::Abort() {
  FreeChunk();
  in_flight_ = false;
  PgAbortStatement(conn_);
}

void PgDrainAbortedStatement(PgConnection* conn, bool cancel_sent) {
  PGconn* c = conn->raw();
  // Without a cancel the rest may be the whole result, read with no heartbeat: end the
  // connection instead (reads then fail at once; its owner sees it unhealthy and reconnects).
  auto cut = [c] {
    if (PQsocket(c) >= 0) ::shutdown(PQsocket(c), SHUT_RDWR);
  };
  if (!cancel_sent) cut();
  // A COPY_OUT result (again, while in COPY state; or first, when the COPY's start was still
  // unread) must be followed by reading its data: PQgetResult alone would return it forever.
  while (PGresult* r = PQgetResult(c)) {
    const bool copy_out = PQresultStatus(r) == PGRES_COPY_OUT;
    PQclear(r);
    if (!copy_out) continue;
    char* buf = nullptr;
    int n;
    while ((n = PQgetCopyData(c, &buf, 0)) > 0) {
      PQfreemem(buf);
      buf = nullptr;
    }
    if (n == -2) cut();  // a broken stream: the next read fails and ends the loop
  }
}

void PgAbortStatement(PgConnection* conn) {
  bool cancel_sent = false;
  if (PGcancel* cancel = PQgetCancel(conn->raw())) {
    char err[256];
    cancel_sent = PQcancel(cancel, err, sizeof(err)) == 1;
    PQfreeCancel(cancel);
  }
  PgDrainAbortedStatement(conn, cancel_sent);
}

}  // namespace fhirbulk
