// fhir-bulk audit: the audit trail (audit_event, sql/0003_auth.sql) by client, time range and
// action, as a table, CSV or JSON. The trail holds no token, assertion or key; its text fields
// are plain ASCII (core/auth/audit.h), and the table escapes anything else anyway.

#include <cstdio>
#include <cstring>
#include <string>

#include "auth/audit_query.h"
#include "db/pg.h"
#include "db/pg_table.h"
#include "tools/command.h"
#include "util/flags.h"
#include "util/text_table.h"

namespace fhirbulk {
namespace {

constexpr const char* kDescription =
    "Prints audit events (tokens issued or refused, kick-offs, polls, cancels, downloads), "
    "oldest first within the newest --limit. Times are ISO 8601 (2026-01-31, "
    "2026-01-31T08:00:00Z) or anything PostgreSQL reads as a timestamptz; --since is "
    "inclusive, --until exclusive.";

int Fail(const std::string& msg, int code = kExitFailure) {
  std::fprintf(stderr, "fhir-bulk audit: %s\n", msg.c_str());
  return code;
}

}  // namespace

int RunAudit(int argc, char** argv) {
  std::string db, client, since, until, action, target, result, format_name = "table";
  long long limit = 1000;
  FlagParser flags(
      "fhir-bulk audit [--client ID] [--since T] [--until T] [--action A] "
      "[--format table|csv|json]",
      kDescription);
  flags.AddString("db", &db, "PostgreSQL connection string", "CONNINFO");
  flags.AddString("client", &client, "only this client's events", "ID");
  flags.AddString("since", &since, "events at or after T", "T");
  flags.AddString("until", &until, "events before T", "T");
  flags.AddString("action", &action, "only this action: token, kickoff, status, cancel or download",
                  "A");
  flags.AddString("target", &target, "only events about this target (a job id, job/file ...)", "S");
  flags.AddString("result", &result, "only events answered with this HTTP status", "N");
  flags.AddInt("limit", &limit, "at most N events (the newest)", "N");
  flags.AddString("format", &format_name, "table (default), csv or json", "F");
  Status s = flags.Parse(argc, argv);
  if (flags.help_requested()) {
    std::fputs(flags.Help().c_str(), stdout);
    return kExitOk;
  }
  if (!s.ok()) return Fail(s.message(), kExitUsage);
  if (!flags.positionals().empty()) return Fail("unexpected argument", kExitUsage);
  auto format = ParseTableFormat(format_name);
  if (!format.ok()) return Fail(format.status().message(), kExitUsage);
  if (limit < 1) return Fail("--limit must be >= 1", kExitUsage);
  if (!result.empty() && result.find_first_not_of("0123456789") != std::string::npos) {
    return Fail("--result must be an HTTP status", kExitUsage);
  }
  if (!result.empty() && result.size() > 3)
    return Fail("--result must be an HTTP status", kExitUsage);

  auto conn = PgConnection::Connect(ResolveConninfo(db));
  if (!conn.ok()) return Fail(conn.status().message());
  PgConnection* c = conn->get();
  // Times are checked by PostgreSQL itself: a value it cannot read is a usage error.
  for (const auto* t : {&since, &until}) {
    if (t->empty()) continue;
    auto ok = c->Exec("SELECT $1::timestamptz", {*t});
    if (!ok.ok()) return Fail("'" + *t + "' is not a time", kExitUsage);
  }
  AuditQuery q;
  q.client = client;
  q.since = since;
  q.until = until;
  q.action = action;
  q.target = target;
  q.result = result;
  q.limit = limit;
  auto r = SearchAudit(c, q);
  if (!r.ok()) return Fail(r.status().message());
  std::fputs(TableFromResult(*r, AuditNumericColumns()).Render(*format).c_str(), stdout);
  return kExitOk;
}

}  // namespace fhirbulk
