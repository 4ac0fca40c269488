#include "db/pg.h"

#include <poll.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace fhirbulk {

namespace {

// SQLSTATE classes where retrying on a fresh connection may succeed.
bool IsTransientSqlState(const char* state) {
  if (state == nullptr) return true;                   // no server answer at all: connection-level
  if (std::strncmp(state, "08", 2) == 0) return true;  // connection exception
  if (std::strcmp(state, "57P01") == 0) return true;   // admin_shutdown
  if (std::strcmp(state, "57P02") == 0) return true;   // crash_shutdown
  if (std::strcmp(state, "57P03") == 0) return true;   // cannot_connect_now
  if (std::strcmp(state, "53300") == 0) return true;   // too_many_connections
  if (std::strcmp(state, "40001") == 0) return true;   // serialization_failure
  if (std::strcmp(state, "40P01") == 0) return true;   // deadlock_detected
  return false;
}

std::string TrimMessage(const char* msg) {
  std::string s = msg ? msg : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

long long PgResult::int64(int row, int col) const {
  return std::strtoll(PQgetvalue(res_.get(), row, col), nullptr, 10);
}

Status PgStatusFromResult(PGconn* conn, const PGresult* res) {
  if (conn == nullptr || PQstatus(conn) != CONNECTION_OK) {
    return Status::Unavailable("database connection lost: " +
                               TrimMessage(conn ? PQerrorMessage(conn) : "no connection"));
  }
  const char* state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
  std::string msg = TrimMessage(res ? PQresultErrorMessage(res) : PQerrorMessage(conn));
  if (msg.empty()) msg = TrimMessage(PQerrorMessage(conn));
  if (state != nullptr) msg += " [SQLSTATE " + std::string(state) + "]";
  if (IsTransientSqlState(state)) return Status::Unavailable(msg);
  if (state != nullptr && std::strncmp(state, "22", 2) == 0) return Status::InvalidArgument(msg);
  return Status::Internal(msg);
}

bool IsLockNotAvailable(const Status& s) {
  return s.ToString().find("[SQLSTATE 55P03]") != std::string::npos;
}

Result<std::unique_ptr<PgConnection>> PgConnection::Connect(const std::string& conninfo) {
  std::string ci = conninfo;
  if (ci.find("connect_timeout") == std::string::npos) ci += " connect_timeout=5";
  if (ci.find("application_name") == std::string::npos) ci += " application_name=fhir-bulk";
  PGconn* c = PQconnectdb(ci.c_str());
  if (c == nullptr) return Status::Unavailable("out of memory creating a database connection");
  if (PQstatus(c) != CONNECTION_OK) {
    Status s =
        Status::Unavailable("cannot connect to the database: " + TrimMessage(PQerrorMessage(c)));
    PQfinish(c);
    return s;
  }
  return std::unique_ptr<PgConnection>(new PgConnection(c));
}

PgConnection::~PgConnection() { PQfinish(conn_); }

Result<PgResult> PgConnection::Check(PGresult* r) {
  PgResult res(r);
  ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_COPY_IN ||
      st == PGRES_COPY_OUT || st == PGRES_EMPTY_QUERY) {
    return res;
  }
  return PgStatusFromResult(conn_, r);
}

Result<PgResult> PgConnection::Exec(std::string_view sql) {
  std::string q(sql);
  return Check(PQexec(conn_, q.c_str()));
}

namespace {
struct ParamArrays {
  std::vector<std::string> storage;
  std::vector<const char*> values;
  std::vector<int> lengths;
  std::vector<int> formats;
  explicit ParamArrays(const std::vector<PgParam>& params) {
    storage.reserve(params.size());
    for (const auto& p : params) {
      if (p.has_value()) {
        storage.emplace_back(*p);
        values.push_back(storage.back().c_str());
        lengths.push_back(static_cast<int>(p->size()));
      } else {
        storage.emplace_back();
        values.push_back(nullptr);
        lengths.push_back(0);
      }
      formats.push_back(0);
    }
  }
};
}  // namespace

Result<PgResult> PgConnection::Exec(std::string_view sql, const std::vector<PgParam>& params) {
  std::string q(sql);
  ParamArrays a(params);
  return Check(PQexecParams(conn_, q.c_str(), static_cast<int>(params.size()), nullptr,
                            a.values.data(), a.lengths.data(), a.formats.data(), 0));
}

Status PgConnection::CopyInBegin(std::string_view copy_sql) {
  auto r = Exec(copy_sql);
  if (!r.ok()) return r.status();
  if (PQresultStatus(r->raw()) != PGRES_COPY_IN) return Status::Internal("not a COPY FROM STDIN");
  return Status::OK();
}

Status PgConnection::CopyInPut(std::string_view data) {
  if (PQputCopyData(conn_, data.data(), static_cast<int>(data.size())) != 1) {
    return PgStatusFromResult(conn_, nullptr);
  }
  return Status::OK();
}

Status PgConnection::CopyInEnd() {
  if (PQputCopyEnd(conn_, nullptr) != 1) return PgStatusFromResult(conn_, nullptr);
  Status s;
  while (PGresult* r = PQgetResult(conn_)) {
    auto checked = Check(r);
    if (!checked.ok() && s.ok()) s = checked.status();
  }
  return s;
}

void PgConnection::CopyInAbort(std::string_view reason) {
  std::string why(reason);
  PQputCopyEnd(conn_, why.c_str());
  while (PGresult* r = PQgetResult(conn_)) PQclear(r);
}

Result<int> PgConnection::WaitForNotifications(int timeout_ms) {
  struct pollfd pfd = {PQsocket(conn_), POLLIN, 0};
  int ready = ::poll(&pfd, 1, timeout_ms);
  if (ready < 0 && errno != EINTR) return Status::IOError("poll on the database socket");
  if (ready <= 0) return 0;
  if (PQconsumeInput(conn_) == 0) return PgStatusFromResult(conn_, nullptr);
  int n = 0;
  while (PGnotify* note = PQnotifies(conn_)) {
    ++n;
    PQfreemem(note);
  }
  return n;
}

Result<std::string> PgConnection::Literal(std::string_view s) {
  // PQescapeLiteral stops at a NUL: the literal would silently hold a prefix of the value.
  if (s.find('\0') != std::string_view::npos) {
    return Status::InvalidArgument("a SQL value holds a NUL byte");
  }
  char* q = PQescapeLiteral(conn_, s.data(), s.size());
  if (q == nullptr) {
    return Status::InvalidArgument("a SQL value cannot be quoted: " +
                                   TrimMessage(PQerrorMessage(conn_)));
  }
  std::string out(q);
  PQfreemem(q);
  return out;
}

std::string PgConnection::QuoteLiteral(std::string_view s) {
  auto q = Literal(s);
  return q.ok() ? std::move(q).value() : "''";
}

std::string PgConnection::QuoteIdentifier(std::string_view s) {
  char* q = PQescapeIdentifier(conn_, s.data(), s.size());
  if (q == nullptr) return "\"\"";
  std::string out(q);
  PQfreemem(q);
  return out;
}

}  // namespace fhirbulk
