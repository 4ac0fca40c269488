// A small RAII layer over libpq.
//
// PgConnection owns one PGconn; PgResult owns one PGresult. Every call returns a Status whose
// code says whether retrying can help: connection-level failures (server down, connection lost,
// admin shutdown, too many connections) are kUnavailable; anything else the server rejects is
// kInternal (or kInvalidArgument for data errors), with the server's message and SQLSTATE.
//
// Thread-safety: a PgConnection must be used by one thread at a time (libpq's rule).
// Values are sent as parameters ($1, $2 ...) wherever a statement takes them. Statements that
// cannot (COPY, SET, LISTEN) splice values quoted by Literal / QuoteLiteral, never raw text.
// Everything libpq is reached through this folder; raw() is the escape hatch for tests that
// must put a connection into a state no method produces.

#ifndef FHIRBULK_DB_PG_H_
#define FHIRBULK_DB_PG_H_

#include <libpq-fe.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace fhirbulk {

class PgResult {
 public:
  PgResult() = default;
  explicit PgResult(PGresult* r) : res_(r) {}
  PgResult(PgResult&&) = default;
  PgResult& operator=(PgResult&&) = default;

  int rows() const { return res_ ? PQntuples(res_.get()) : 0; }
  int columns() const { return res_ ? PQnfields(res_.get()) : 0; }
  bool is_null(int row, int col) const { return PQgetisnull(res_.get(), row, col) != 0; }
  // The value as text (or raw bytes for binary results); valid while this PgResult lives.
  std::string_view get(int row, int col) const {
    return std::string_view(PQgetvalue(res_.get(), row, col),
                            static_cast<size_t>(PQgetlength(res_.get(), row, col)));
  }
  std::string str(int row, int col) const { return std::string(get(row, col)); }
  long long int64(int row, int col) const;
  const char* affected() const { return res_ ? PQcmdTuples(res_.get()) : ""; }
  PGresult* raw() const { return res_.get(); }

 private:
  struct Deleter {
    void operator()(PGresult* r) const { PQclear(r); }
  };
  std::unique_ptr<PGresult, Deleter> res_;
};

// A query parameter: text form, or SQL NULL.
using PgParam = std::optional<std::string_view>;

class PgConnection {
 public:
  // Connects synchronously. Adds connect_timeout=5 unless the conninfo sets one, and
  // application_name=fhir-bulk unless set, so a dead server fails fast and is visible in
  // pg_stat_activity.
  static Result<std::unique_ptr<PgConnection>> Connect(const std::string& conninfo);

  ~PgConnection();
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  // True when libpq still believes the connection is usable.
  bool healthy() const { return PQstatus(conn_) == CONNECTION_OK; }
  // healthy() and outside any transaction or statement: ready for the next unit of work.
  bool idle() const { return healthy() && PQtransactionStatus(conn_) == PQTRANS_IDLE; }

  // For a connection that ran LISTEN: waits up to timeout_ms for input, reads it and returns
  // how many notifications arrived (0 on timeout). Unavailable when the connection broke.
  Result<int> WaitForNotifications(int timeout_ms);

  // Runs one or more statements without parameters; returns the last result.
  Result<PgResult> Exec(std::string_view sql);
  // Runs one statement with text parameters.
  Result<PgResult> Exec(std::string_view sql, const std::vector<PgParam>& params);
  // COPY ... FROM STDIN: Begin, then Put as often as needed, then End (or Abort). COPY ... TO
  // STDOUT: db/pg_copy_out.h.
  Status CopyInBegin(std::string_view copy_sql);
  Status CopyInPut(std::string_view data);
  Status CopyInEnd();
  void CopyInAbort(std::string_view reason);

  // `s` as a SQL string literal, quoted by libpq (PQescapeLiteral: quotes and backslashes
  // escaped for this connection's encoding and standard_conforming_strings), for statements
  // that cannot take parameters. InvalidArgument for a value holding a NUL byte (libpq would
  // cut it there) or not valid in the connection's encoding.
  Result<std::string> Literal(std::string_view s);
  // As Literal, for values the program made itself (ids, type names, timestamps, array
  // literals of those): a value Literal rejects becomes '' (never raw text).
  std::string QuoteLiteral(std::string_view s);
  std::string QuoteIdentifier(std::string_view s);

  PGconn* raw() const { return conn_; }

 private:
  explicit PgConnection(PGconn* c) : conn_(c) {}
  Result<PgResult> Check(PGresult* r);
  PGconn* conn_;
};

// Maps a libpq error (result may be null) to a Status with a useful message.
Status PgStatusFromResult(PGconn* conn, const PGresult* res);

// True for a statement refused because a lock was not granted within lock_timeout (SQLSTATE
// 55P03, lock_not_available): housekeeping that must never queue behind a lock skips its pass.
bool IsLockNotAvailable(const Status& s);

// A PostgreSQL array literal ({"a","b\"c"}) for a text[] parameter; any container of
// string-like values.
template <typename Strings = std::vector<std::string>>
std::string PgTextArrayLiteral(const Strings& values) {
  std::string out = "{";
  bool first = true;
  for (const auto& v : values) {
    if (!first) out.push_back(',');
    first = false;
    out.push_back('"');
    for (char ch : std::string_view(v)) {
      if (ch == '"' || ch == '\\') out.push_back('\\');
      out.push_back(ch);
    }
    out.push_back('"');
  }
  out.push_back('}');
  return out;
}

// Runs body() inside BEGIN/COMMIT; rolls back on a non-OK Status.
template <typename F>
Status PgTransaction(PgConnection* conn, F&& body, std::string_view begin = "BEGIN") {
  auto b = conn->Exec(begin);
  if (!b.ok()) return b.status();
  Status s = body();
  if (!s.ok()) {
    (void)conn->Exec("ROLLBACK");
    return s;
  }
  auto c = conn->Exec("COMMIT");
  return c.ok() ? Status::OK() : c.status();
}

}  // namespace fhirbulk

#endif  // FHIRBULK_DB_PG_H_
