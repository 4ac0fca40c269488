// fhir-bulk jobs: the operator's view of export jobs, any client's (list, show, cancel), and
// of their history (sql/0007_job_history.sql) once the janitor has removed them.
//
// cancel does what the API's DELETE does (core/server/server.cc, HandleCancel): with the job's
// row locked it writes the job's cancel marker (so that no nginx node serves its files any
// more), then commits the cancel (workers holding its units stop within about a second; the
// janitor deletes the files). Without --export-dir no marker is written: the files stay
// downloadable until the janitor removes them (--janitor-interval-seconds, 30 s by default).

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "db/pg.h"
#include "db/pg_table.h"
#include "export/job_dir.h"
#include "export/job_queries.h"
#include "export/job_store.h"
#include "tools/command.h"
#include "util/errno_text.h"
#include "util/flags.h"
#include "util/text_table.h"

namespace fhirbulk {
namespace {

constexpr const char* kUsage =
    "usage: fhir-bulk jobs <list|show|cancel> [options]\n"
    "  list [--client ID] [--state S] [--history] [--limit N] [--format table|csv|json]\n"
    "      export jobs of every client, newest first; --history: finished, failed and\n"
    "      cancelled jobs kept after their files were deleted (worker --history-days)\n"
    "  show JOB_ID [--format table|json]\n"
    "      a job's request, state, progress, units and files (or its history row)\n"
    "  cancel JOB_ID [--export-dir DIR]\n"
    "      cancels it as the API's DELETE does: workers stop, its files are deleted; with\n"
    "      --export-dir (nginx's fhir_bulk_export_dir) no node serves its files from now on\n"
    "Database: --db CONNINFO, else $PG_CONNINFO.\n";

int Fail(const std::string& msg, int code = kExitFailure) {
  std::fprintf(stderr, "fhir-bulk jobs: %s\n", msg.c_str());
  return code;
}

// The job's marker in <export_dir>/.cancels, written as the module writes it (O_NOFOLLOW on
// the directory and the file: never through a planted link).
Status WriteMarker(const std::string& export_dir, const std::string& job_id) {
  const std::string dir = CancelMarkerDirectory(export_dir);
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dfd < 0) return Status::IOError("cannot open " + dir + ": " + ErrnoText(errno));
  int fd = ::openat(dfd, job_id.c_str(), O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  int err = errno;
  ::close(dfd);
  if (fd < 0) return Status::IOError("cannot write " + dir + "/" + job_id + ": " + ErrnoText(err));
  ::close(fd);
  return Status::OK();
}

void RemoveMarker(const std::string& export_dir, const std::string& job_id) {
  const std::string path = CancelMarkerDirectory(export_dir) + "/" + job_id;
  (void)::unlink(path.c_str());
}

int List(PgConnection* c, const std::string& client, const std::string& state, bool history,
         long long limit, TableFormat format) {
  JobListQuery q;
  q.client = client;
  q.state = state;
  q.limit = limit;
  auto r = history ? ListJobHistory(c, q) : ListCurrentJobs(c, q);
  if (!r.ok()) return Fail(r.status().message());
  std::fputs(TableFromResult(*r, JobListNumericColumns()).Render(format).c_str(), stdout);
  return kExitOk;
}

int Show(PgConnection* c, const std::string& job_id, TableFormat format) {
  if (!IsValidJobId(job_id)) return Fail("'" + job_id + "' is not a job id", kExitUsage);
  auto job = c->Exec(
      "SELECT job_id::text AS job_id, client_id, state, request_url, request::text AS request, " +
          SqlUtc("transaction_time") + " AS transaction_time, " + SqlUtc("created_at") +
          " AS created, " + SqlUtc("started_at") + " AS started, " + SqlUtc("finished_at") +
          " AS finished, " + SqlUtc("expires_at") +
          " AS expires, units_total, units_done, CASE WHEN units_total > 0 THEN "
          "round(100.0 * units_done / units_total, 1) END AS progress_percent, "
          "resources_written AS resources, bytes_written AS bytes, planner, "
          "error::text AS error, error_transient FROM export_job WHERE job_id = $1::uuid",
      {job_id});
  if (!job.ok()) return Fail(job.status().message());
  const std::set<std::string> numbers = {
      "units_total", "units_done", "progress_percent", "resources",     "bytes",       "units",
      "attempts",    "files",      "duration_s",       "deleted_count", "error_count", "unit_no",
      "seq"};
  if (job->rows() == 0) {
    auto h = c->Exec(
        "SELECT job_id::text AS job_id, client_id, outcome AS state, request_url, "
        "request::text AS request, " +
            SqlUtc("transaction_time") + " AS transaction_time, " + SqlUtc("created_at") +
            " AS created, " + SqlUtc("started_at") + " AS started, " + SqlUtc("finished_at") +
            " AS finished, round(extract(epoch FROM finished_at - created_at)::numeric, 1) AS "
            "duration_s, units_total, units_done, resources, bytes, files, type_counts::text "
            "AS counts, deleted_count, error_count, error::text AS error, " +
            SqlUtc("cancelled_at") + " AS cancelled, " + SqlUtc("purged_at") +
            " AS purged FROM export_job_history WHERE job_id = $1::uuid",
        {job_id});
    if (!h.ok()) return Fail(h.status().message());
    if (h->rows() == 0) return Fail("no export job " + job_id);
    TextTable t = TableFromResult(*h, numbers);
    if (format == TableFormat::kJson) {
      std::printf("{\"history\": %s}\n", t.RenderJsonRow(0).c_str());
    } else {
      for (int col = 0; col < h->columns(); col++) {
        std::printf("%-17s %s\n", PQfname(h->raw(), col),
                    h->is_null(0, col) ? "-" : h->str(0, col).c_str());
      }
      std::printf("(history: the job and its files were removed%s)\n",
                  h->is_null(0, h->columns() - 1) ? " or are being removed" : "");
    }
    return kExitOk;
  }
  auto units = c->Exec(
      "SELECT kind, coalesce(res_type, '-') AS type, state, count(*) AS units, "
      "sum(resources) AS resources, max(attempts) AS attempts, "
      "string_agg(DISTINCT worker, ' ') AS workers FROM export_unit WHERE job_id = $1::uuid "
      "GROUP BY kind, res_type, state ORDER BY kind DESC, res_type, state",
      {job_id});
  if (!units.ok()) return Fail(units.status().message());
  auto files = c->Exec(
      "SELECT file_name, kind, res_type AS type, unit_no, seq, resources, bytes "
      "FROM export_file WHERE job_id = $1::uuid ORDER BY kind DESC, res_type, unit_no, seq",
      {job_id});
  if (!files.ok()) return Fail(files.status().message());
  TextTable jt = TableFromResult(*job, numbers);
  TextTable ut = TableFromResult(*units, numbers);
  TextTable ft = TableFromResult(*files, numbers);
  if (format == TableFormat::kJson) {
    std::string u = ut.RenderJson(), f = ft.RenderJson();
    u.pop_back();
    f.pop_back();
    std::printf("{\"job\": %s,\n\"units\": %s,\n\"files\": %s}\n", jt.RenderJsonRow(0).c_str(),
                u.c_str(), f.c_str());
    return kExitOk;
  }
  for (int col = 0; col < job->columns(); col++) {
    std::printf("%-17s %s\n", PQfname(job->raw(), col),
                job->is_null(0, col) ? "-" : job->str(0, col).c_str());
  }
  std::printf("\nunits:\n%s\nfiles:\n%s", ut.RenderTable().c_str(), ft.RenderTable().c_str());
  return kExitOk;
}

int Cancel(PgConnection* c, const std::string& job_id, const std::string& export_dir) {
  if (!IsValidJobId(job_id)) return Fail("'" + job_id + "' is not a job id", kExitUsage);
  auto owner = c->Exec("SELECT client_id, state FROM export_job WHERE job_id = $1::uuid", {job_id});
  if (!owner.ok()) return Fail(owner.status().message());
  if (owner->rows() == 0) return Fail("no export job " + job_id);
  if (owner->get(0, 1) == "cancelled")
    return Fail("export job " + job_id + " is already cancelled");
  const std::string client_id = owner->str(0, 0);
  bool marker_written = false;
  Status s = CancelJob(c, job_id, client_id, [&]() -> Status {
    if (export_dir.empty()) return Status::OK();
    Status m = WriteMarker(export_dir, job_id);
    marker_written = marker_written || m.ok();
    return m;
  });
  if (!s.ok()) {
    if (marker_written) RemoveMarker(export_dir, job_id);
    if (s.code() == Status::Code::kAborted) return Fail(s.message() + " (nothing changed)");
    return Fail("not cancelled: " + s.message());
  }
  // The trail shows who cancelled: the operator, on the owner's job.
  auto audit = c->Exec(
      "INSERT INTO audit_event (client_id, action, target, result, detail) "
      "VALUES ($1, 'cancel', $2, 202, 'by an operator (fhir-bulk jobs cancel)')",
      {client_id, job_id});
  if (!audit.ok())
    std::fprintf(stderr, "fhir-bulk jobs: audit: %s\n", audit.status().message().c_str());
  std::printf("%s cancelled (client %s)%s\n", job_id.c_str(), client_id.c_str(),
              export_dir.empty() ? "; its files are served until the janitor deletes them" : "");
  return kExitOk;
}

}  // namespace

int RunJobs(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? kExitUsage : kExitOk;
  }
  const std::string action = argv[1];
  std::string db, client, state, format_name = "table", export_dir;
  long long limit = 100;
  bool history = false;
  FlagParser flags("fhir-bulk jobs " + action + " [options]", "See fhir-bulk jobs --help.");
  flags.AddString("db", &db, "PostgreSQL connection string", "CONNINFO");
  flags.AddString("client", &client, "list: only this client's jobs", "ID");
  flags.AddString("state", &state,
                  "list: only jobs in this state (accepted, running, completed, failed, "
                  "cancelled; with --history: the outcome)",
                  "S");
  flags.AddBool("history", &history, "list: the job history instead of the current jobs");
  flags.AddInt("limit", &limit, "list: at most N rows (newest first)", "N");
  flags.AddString("format", &format_name, "table (default), csv or json", "F");
  flags.AddString("export-dir", &export_dir,
                  "cancel: the export directory, to write the job's cancel marker", "DIR");
  Status s = flags.Parse(argc - 1, argv + 1);
  if (flags.help_requested()) {
    std::fputs(kUsage, stdout);
    return kExitOk;
  }
  if (!s.ok()) return Fail(s.message(), kExitUsage);
  auto format = ParseTableFormat(format_name);
  if (!format.ok()) return Fail(format.status().message(), kExitUsage);
  const auto& args = flags.positionals();
  if (action != "list" && action != "show" && action != "cancel") {
    return Fail("unknown action '" + action + "'\n" + kUsage, kExitUsage);
  }
  if (action == "list" && !args.empty()) return Fail("list takes no arguments", kExitUsage);
  if (action != "list" && args.size() != 1) return Fail(action + " takes one job id", kExitUsage);
  if (!state.empty() && !ParseJobState(state).ok()) {
    return Fail("--state: unknown state '" + state + "'", kExitUsage);
  }
  if (limit < 1) return Fail("--limit must be >= 1", kExitUsage);
  if (action == "show" && *format == TableFormat::kCsv) {
    return Fail("show: --format table or json", kExitUsage);
  }
  auto conn = PgConnection::Connect(ResolveConninfo(db));
  if (!conn.ok()) return Fail(conn.status().message());
  if (action == "list") return List(conn->get(), client, state, history, limit, *format);
  if (action == "show") return Show(conn->get(), args[0], *format);
  return Cancel(conn->get(), args[0], export_dir);
}

}  // namespace fhirbulk
