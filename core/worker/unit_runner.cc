#include "worker/unit_runner.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <optional>

#include "db/pg_copy_out.h"
#include "export/job_dir.h"
#include "export/type_filter_sql.h"
#include "http/outcome.h"
#include "util/errno_text.h"
#include "util/fhir_time.h"
#include "util/log_escape.h"
#include "worker/elements.h"
#include "worker/ndjson_writer.h"
#include "worker/patient_block_writer.h"
#include "worker/patient_blocks.h"

namespace fhirbulk {

namespace {

using Clock = std::chrono::steady_clock;

constexpr int64_t kServerTimeoutSlackMs = 10000;

constexpr char kCopySignature[11] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', '\377', '\r', '\n', '\0'};

uint32_t ReadU32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return ntohl(v);
}

uint16_t ReadU16(const char* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return ntohs(v);
}

// Lines quote PostgreSQL messages, which can carry client values (a _typeFilter's, say).
void Log(const UnitRunnerOptions& o, const std::string& msg) {
  if (o.log) o.log(LogSanitize(msg));
}

bool Stopping(const UnitRunnerOptions& o) { return o.stop != nullptr && o.stop->load(); }

std::string TimestampLiteral(PgConnection* conn, int64_t us) {
  return conn->QuoteLiteral(FormatInstant(us)) + "::timestamptz";
}

// Partition names come from the catalog (regclass text, schema-qualified when off the
// search_path): spliced as they are when plainly safe, else quoted.
std::string PartitionIdentifier(PgConnection* conn, const std::string& partition) {
  for (char c : partition) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.')) {
      return conn->QuoteIdentifier(partition);
    }
  }
  return partition;
}

void AppendJsonString(std::string_view s, std::string* out) {
  static const char kHex[] = "0123456789abcdef";
  out->push_back('"');
  for (char ch : s) {
    unsigned char c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(ch);
    } else if (c < 0x20) {
      out->append("\\u00");
      out->push_back(kHex[c >> 4]);
      out->push_back(kHex[c & 15]);
    } else {
      out->push_back(ch);
    }
  }
  out->push_back('"');
}

// The manifest `type` of a unit's files, which also starts their names.
std::string FileTypeOf(const UnitPlan& u) {
  switch (u.kind) {
    case UnitKind::kOutput:
      return u.res_type;
    case UnitKind::kDeleted:
      return "Bundle";
    case UnitKind::kError:
      return "OperationOutcome";
  }
  return u.res_type;
}

Result<UnitKind> ParseUnitKind(std::string_view s) {
  if (s == "output") return UnitKind::kOutput;
  if (s == "deleted") return UnitKind::kDeleted;
  if (s == "error") return UnitKind::kError;
  return Status::Corruption("unknown unit kind '" + std::string(s) + "'");
}

// What a finished unit reports in the log.
struct UnitStats {
  int64_t resources = 0;
  int64_t bytes = 0;
  int64_t files = 0;
  Clock::time_point started, read_done, sealed, committed;
};

std::string Millis(Clock::time_point a, Clock::time_point b) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(b - a).count());
}

struct ClaimedUnit {
  std::string job_id;
  UnitPlan plan;
  int attempts = 0;
  std::string request_json;
  int64_t transaction_time_us = 0;
  std::string partition;  // the table of res_type's rows
  std::string read_lsn;   // the WAL position a standby must have replayed (sql/0016)
  std::string read_from = "primary";
};

Result<std::optional<ClaimedUnit>> Claim(PgConnection* control, const UnitRunnerOptions& o) {
  auto r = control->Exec(
      "WITH busy AS (SELECT r.job_id, rj.client_id, count(*) AS n FROM export_unit r "
      "JOIN export_job rj ON rj.job_id = r.job_id WHERE rj.state = 'running' "
      "AND r.state = 'running' AND r.lease_until >= now() GROUP BY r.job_id, rj.client_id), "
      "c AS (SELECT eu.job_id, eu.unit_no FROM export_unit eu "
      "JOIN export_job j ON j.job_id = eu.job_id "
      "WHERE j.state = 'running' AND eu.state <> 'done' "
      "AND (eu.state = 'pending' OR eu.lease_until < now()) "
      "ORDER BY (SELECT coalesce(sum(b.n), 0) FROM busy b WHERE b.client_id = j.client_id), "
      "(SELECT coalesce(sum(b.n), 0) FROM busy b WHERE b.job_id = j.job_id), "
      "eu.unit_no, j.created_at LIMIT 1 FOR UPDATE OF eu SKIP LOCKED) "
      "UPDATE export_unit u SET state = 'running', worker = $1, "
      "lease_until = now() + $2::int * interval '1 second', attempts = u.attempts + 1 "
      "FROM c, export_job j WHERE u.job_id = c.job_id AND u.unit_no = c.unit_no "
      "AND j.job_id = u.job_id "
      "RETURNING u.job_id::text, u.unit_no, u.kind, coalesce(u.res_type, ''), u.page_lo, "
      "u.page_hi, u.attempts, j.request::text, "
      "(extract(epoch FROM j.transaction_time) * 1000000)::bigint, u.res_ids IS NOT NULL, "
      "coalesce(to_regclass('resource_' || lower(u.res_type)), "
      "'resource_other'::regclass)::text, coalesce(u.blocks, ''), u.block_lo, u.block_hi, "
      "array_to_string(u.block_types, ','), coalesce(u.assoc, ''), "
      "coalesce(j.read_lsn, pg_current_wal_lsn())::text",
      {o.worker_id, std::to_string(o.lease_seconds)});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return std::optional<ClaimedUnit>();
  ClaimedUnit u;
  u.job_id = r->str(0, 0);
  u.plan.unit_no = static_cast<int>(r->int64(0, 1));
  auto kind = ParseUnitKind(r->get(0, 2));
  if (!kind.ok()) return kind.status();
  u.plan.kind = *kind;
  u.plan.res_type = r->str(0, 3);
  if (!r->is_null(0, 4)) u.plan.page_lo = r->int64(0, 4);
  if (!r->is_null(0, 5)) u.plan.page_hi = r->int64(0, 5);
  u.attempts = static_cast<int>(r->int64(0, 6));
  u.request_json = r->str(0, 7);
  u.transaction_time_us = r->int64(0, 8);
  u.plan.res_ids = r->get(0, 9) == "t";
  u.partition = r->str(0, 10);  // as PartitionOf, without a round trip of its own
  // STU3 units (sql/0011, patient_blocks.h)
  u.plan.blocks = r->str(0, 11);
  if (!r->is_null(0, 12)) u.plan.block_lo = r->str(0, 12);
  if (!r->is_null(0, 13)) u.plan.block_hi = r->str(0, 13);
  if (!r->is_null(0, 14)) {
    const std::string types = r->str(0, 14);  // type names hold no comma
    for (size_t at = 0; at <= types.size() && !types.empty();) {
      const size_t comma = std::min(types.find(',', at), types.size());
      u.plan.block_types.push_back(types.substr(at, comma - at));
      at = comma + 1;
    }
  }
  u.plan.assoc = r->str(0, 15);
  u.read_lsn = r->str(0, 16);
  return std::optional<ClaimedUnit>(std::move(u));
}

// Hands a unit back. `uncount`: the attempt does not count (a clean shutdown).
void Release(PgConnection* control, const ClaimedUnit& u, const UnitRunnerOptions& o,
             bool uncount) {
  (void)control->Exec(
      "UPDATE export_unit SET state = 'pending', worker = NULL, lease_until = NULL, "
      "attempts = greatest(0, attempts - $4::int) "
      "WHERE job_id = $1::uuid AND unit_no = $2::int AND worker = $3 AND state = 'running'",
      {u.job_id, std::to_string(u.plan.unit_no), o.worker_id, uncount ? "1" : "0"});
}

// Deletes files an earlier attempt of the unit left behind (temp or renamed, gzip twins too).
Status DeleteEarlierAttemptFiles(const std::string& dir, int unit_no) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    return Status::IOError("opening the job directory: " + ErrnoText(errno));
  }
  while (struct dirent* e = ::readdir(d)) {
    auto parsed = ParseExportFileName(e->d_name);
    if (parsed && parsed->unit_no == unit_no) ::unlinkat(::dirfd(d), e->d_name, 0);
  }
  ::closedir(d);
  return Status::OK();
}

// Lease renewal plus "is the job still running?", on the control connection.
class Heartbeat {
 public:
  Heartbeat(PgConnection* control, const UnitRunnerOptions& o, const ClaimedUnit& u)
      : control_(control), o_(o), u_(u), last_(Clock::now()) {}

  // Cheap; beats when due. Aborted when the unit must stop.
  Status MaybeBeat(int64_t rows) {
    if (rows - last_rows_ < o_.check_every_rows &&
        Clock::now() - last_ < std::chrono::milliseconds(o_.check_every_ms)) {
      return Status::OK();
    }
    return Beat(rows);
  }

  // honor_stop: false once all rows are written (finishing is then quicker than redoing).
  Status Beat(int64_t rows, bool honor_stop = true) {
    last_rows_ = rows;
    last_ = Clock::now();
    if (honor_stop && Stopping(o_)) return Status::Aborted("the worker is stopping");
    auto r = control_->Exec(
        "UPDATE export_unit u SET lease_until = now() + $4::int * interval '1 second' "
        "WHERE u.job_id = $1::uuid AND u.unit_no = $2::int AND u.worker = $3 "
        "AND u.state = 'running' "
        "RETURNING (SELECT j.state FROM export_job j WHERE j.job_id = u.job_id)",
        {u_.job_id, std::to_string(u_.plan.unit_no), o_.worker_id,
         std::to_string(o_.lease_seconds)});
    if (!r.ok()) return r.status();
    if (r->rows() == 0) return Status::Aborted("the unit's lease was lost");
    if (r->get(0, 0) != "running") {
      return Status::Aborted("the job is " + std::string(r->get(0, 0)));
    }
    if (o_.on_heartbeat) o_.on_heartbeat(u_.job_id, u_.plan.unit_no, rows);
    return Status::OK();
  }

 private:
  PgConnection* control_;
  const UnitRunnerOptions& o_;
  const ClaimedUnit& u_;
  Clock::time_point last_;
  int64_t last_rows_ = 0;
};

// Streams the COPY's rows into `on_row`. The statement runs asynchronously: the thread waits
// on the socket at most until the next heartbeat is due, so the lease is renewed and the job's
// state read every check_every_ms even while the query returns no rows (a selective filter
// over a large table), and a cancelled or failed job stops the statement within about that
// time. A statement running longer than statement_timeout_ms is cancelled here too (besides
// the server's statement_timeout): ResourceExhausted, checked while rows flow as well.
Status StreamCopy(PgConnection* data, const std::string& sql, Heartbeat* heartbeat,
                  const CopyBinaryParser::RowFn& on_row, const UnitRunnerOptions& o) {
  // The server's own limit is a backstop for a worker that died mid-statement (a backend
  // sending no rows never notices its client is gone); the loop below cancels first.
  auto limit = data->Exec("SET statement_timeout = " +
                          std::to_string(o.statement_timeout_ms > 0
                                             ? o.statement_timeout_ms + kServerTimeoutSlackMs
                                             : 0));
  if (!limit.ok()) return limit.status();
  PgAsyncCopyOut copy(data);  // aborts the statement on every early return
  FHIRBULK_RETURN_IF_ERROR(copy.Start(sql));
  const auto started = Clock::now();
  const auto deadline = o.statement_timeout_ms > 0
                            ? started + std::chrono::milliseconds(o.statement_timeout_ms)
                            : Clock::time_point::max();
  const auto beat_every = std::chrono::milliseconds(std::max(1, o.check_every_ms));
  auto next_beat = started + beat_every;
  CopyBinaryParser parser;
  Status over_time =
      Status::ResourceExhausted("the unit's statement ran longer than " +
                                std::to_string(o.statement_timeout_ms / 1000) + " s");
  while (true) {
    std::string_view chunk;
    auto next = copy.Read(&chunk);
    if (!next.ok()) return next.status();
    if (*next == PgAsyncCopyOut::Next::kEnd) {
      if (!parser.finished()) return Status::Corruption("binary COPY ended without its trailer");
      return Status::OK();
    }
    if (*next == PgAsyncCopyOut::Next::kChunk) {
      FHIRBULK_RETURN_IF_ERROR(parser.Feed(chunk, on_row));
      FHIRBULK_RETURN_IF_ERROR(heartbeat->MaybeBeat(parser.rows()));
      if (Clock::now() >= deadline) return over_time;  // rows may flow without pause
      continue;
    }
    // Nothing buffered: beat when due, else wait on the socket until the next beat.
    auto now = Clock::now();
    if (now >= deadline) return over_time;
    if (now >= next_beat) {
      FHIRBULK_RETURN_IF_ERROR(heartbeat->Beat(parser.rows()));
      next_beat = Clock::now() + beat_every;
      continue;
    }
    auto wait = std::min(next_beat, deadline) - now;
    FHIRBULK_RETURN_IF_ERROR(copy.WaitReadable(
        static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(wait).count()) + 1));
  }
}

// The job's output types (for a supporting unit's reference selection).
Result<std::vector<std::string>> JobOutputTypes(PgConnection* control, const std::string& job_id) {
  auto r = control->Exec(
      "SELECT DISTINCT res_type FROM export_unit WHERE job_id = $1::uuid AND kind = 'output' "
      "AND res_type IS NOT NULL ORDER BY 1",
      {job_id});
  if (!r.ok()) return r.status();
  std::vector<std::string> types;
  types.reserve(static_cast<size_t>(r->rows()));
  for (int i = 0; i < r->rows(); i++) types.push_back(r->str(i, 0));
  return types;
}

// Records the unit's files and publishes them (see the header). Two statements between BEGIN
// and COMMIT: round trips are what a unit's end costs besides the syncs, and on a busy
// machine each one waits for the backend to be scheduled.
// `continues_in`: parallel to the files, the file a patient block goes on in, or "".
template <typename Writer>
Status Complete(PgConnection* control, const ClaimedUnit& u, Writer* writer,
                const UnitRunnerOptions& o, const std::vector<std::string>& continues_in = {}) {
  std::vector<std::string> names, seqs, counts, sizes, continues;
  for (size_t i = 0; i < writer->files().size(); i++) {
    const NdjsonFile& f = writer->files()[i];
    names.push_back(f.name);
    seqs.push_back(std::to_string(f.seq));
    counts.push_back(std::to_string(f.resources));
    sizes.push_back(std::to_string(f.bytes));
    continues.push_back(i < continues_in.size() ? continues_in[i] : std::string());
  }
  const std::string unit_no = std::to_string(u.plan.unit_no);
  const std::string resources = std::to_string(writer->total_resources());
  return PgTransaction(control, [&]() -> Status {
    // The job row first, then the unit's: the order of CancelJob, the planner and the
    // janitor, so that a cancel meeting completing units waits instead of deadlocking. The
    // row lock also makes concurrent completions count one after the other; the last unit
    // completes the job. A cancelled job fails the state check once the lock is ours.
    auto job = control->Exec(
        "UPDATE export_job SET units_done = units_done + 1, "
        "resources_written = resources_written + $4::bigint, "
        "bytes_written = bytes_written + $6::bigint, "
        "state = CASE WHEN units_done + 1 >= units_total THEN 'completed' ELSE state END, "
        "finished_at = CASE WHEN units_done + 1 >= units_total THEN now() "
        "ELSE finished_at END, "
        "expires_at = CASE WHEN units_done + 1 >= units_total "
        "THEN now() + $5::bigint * interval '1 second' ELSE expires_at END "
        "WHERE job_id = $1::uuid AND state = 'running' AND EXISTS (SELECT 1 FROM export_unit "
        "WHERE job_id = $1::uuid AND unit_no = $2::int AND worker = $3 AND state = 'running') "
        "RETURNING 1",
        {u.job_id, unit_no, o.worker_id, resources, std::to_string(o.retention_seconds),
         std::to_string(writer->total_bytes())});
    if (!job.ok()) return job.status();
    if (job->rows() == 0)
      return Status::Aborted("the job is no longer running or the lease was lost");
    // The unit is done if it is still ours, and its files are listed. synchronous_commit: the
    // files become visible with this commit, so it must be durable.
    auto r = control->Exec(
        "WITH done AS (UPDATE export_unit SET state = 'done', resources = $4::bigint, "
        "lease_until = NULL, read_from = $12 WHERE job_id = $1::uuid AND unit_no = $2::int AND "
        "worker = $3 "
        "AND state = 'running' RETURNING 1), "
        "files AS (INSERT INTO export_file (job_id, file_name, kind, res_type, unit_no, seq, "
        "resources, bytes, continues_in) SELECT $1::uuid, n, $5, $6, $2::int, s::int, "
        "c::bigint, b::bigint, NULLIF(ci, '') "
        "FROM unnest($7::text[], $8::text[], $9::text[], $10::text[], $11::text[]) "
        "AS f(n, s, c, b, ci) "
        "WHERE EXISTS (SELECT 1 FROM done)) "
        "SELECT (SELECT count(*) FROM done), set_config('synchronous_commit', 'on', true)",
        {u.job_id, unit_no, o.worker_id, resources, UnitKindName(u.plan.kind), FileTypeOf(u.plan),
         PgTextArrayLiteral(names), PgTextArrayLiteral(seqs), PgTextArrayLiteral(counts),
         PgTextArrayLiteral(sizes), PgTextArrayLiteral(continues), u.read_from});
    if (!r.ok()) return r.status();
    if (r->int64(0, 0) == 0) return Status::Aborted("the unit's lease was lost");
    // Last: the files become visible only if everything above holds; a failed COMMIT leaves
    // them for the unit's next attempt to delete.
    return writer->Publish();
  });
}

// The per-row callback of an output unit (the body as stored, or subset by _elements) or a
// deleted unit (a transaction Bundle deleting the id), appending to `writer`. The callback
// keeps references to `subsetter`, `line` and `writer`.
CopyBinaryParser::RowFn RowWriter(const ClaimedUnit& u, const TypeSubsetter* subsetter,
                                  std::string* line, NdjsonWriter* writer) {
  if (u.plan.kind == UnitKind::kOutput) {
    return [subsetter, line, writer](const std::vector<CopyBinaryParser::Field>& f) -> Status {
      if (f.size() != 1 || f[0].null) return Status::Corruption("unexpected COPY row shape");
      if (subsetter == nullptr) return writer->Append(f[0].bytes);  // the fast path
      FHIRBULK_RETURN_IF_ERROR(subsetter->Apply(f[0].bytes, line));
      return writer->Append(*line);
    };
  }
  const std::string url_prefix = u.plan.res_type + "/";  // "Type/" + id
  return [url_prefix, line, writer](const std::vector<CopyBinaryParser::Field>& f) -> Status {
    if (f.size() != 1 || f[0].null) return Status::Corruption("unexpected COPY row shape");
    line->assign(
        "{\"resourceType\":\"Bundle\",\"type\":\"transaction\",\"entry\":[{\"request\":"
        "{\"method\":\"DELETE\",\"url\":");
    AppendJsonString(url_prefix + std::string(f[0].bytes), line);
    line->append("}}]}");
    return writer->Append(*line);
  };
}

// Reads an output or deleted unit's rows (one COPY on `data`) into `writer`.
Status WriteUnitRows(PgConnection* control, PgConnection* data, const ClaimedUnit& u,
                     const ExportRequest& request, const UnitRunnerOptions& o, Heartbeat* heartbeat,
                     NdjsonWriter* writer) {
  std::vector<std::string> job_types;
  if (u.plan.kind == UnitKind::kOutput && !u.plan.res_ids &&
      RoleOf(request, u.plan.res_type) == TypeRole::kSupporting) {
    auto types = JobOutputTypes(control, u.job_id);  // planned before sql/0004
    if (!types.ok()) return types.status();
    job_types = std::move(types).value();
  }
  std::unique_ptr<TypeSubsetter> subsetter;
  if (u.plan.kind == UnitKind::kOutput) {
    subsetter = ElementsSelection(request.elements).ForType(u.plan.res_type);
  }
  std::string line;
  const CopyBinaryParser::RowFn on_row = RowWriter(u, subsetter.get(), &line, writer);

  if (u.plan.assoc.empty()) {
    auto sql = BuildUnitCopySql(data, request, u.job_id, u.transaction_time_us, u.plan, u.partition,
                                job_types);
    if (!sql.ok()) return sql.status();
    return StreamCopy(data, *sql, heartbeat, on_row, o);
  }
  // An assoc unit: as a blocks unit, one snapshot for "was anything replaced since
  // transactionTime?" and the read that relies on the answer.
  return PgTransaction(
      data,
      [&]() -> Status {
        auto with_history = BlockUnitNeedsHistory(data, u.transaction_time_us, u.plan);
        if (!with_history.ok()) return with_history.status();
        auto sql = BuildAssociatedProvenanceCopySql(data, request, u.job_id, u.transaction_time_us,
                                                    u.plan, *with_history);
        if (!sql.ok()) return sql.status();
        return StreamCopy(data, *sql, heartbeat, on_row, o);
      },
      "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
}

// A blocks unit (organizeOutputBy=Patient, patient_blocks.h): rows (block key, type, body)
// in block order into a PatientBlockWriter.
Status ExecuteBlocks(PgConnection* control, PgConnection* data, const ClaimedUnit& u,
                     const ExportRequest& request, const UnitRunnerOptions& o, UnitStats* stats) {
  NdjsonWriterOptions wo;
  wo.dir = JobDirectory(o.export_dir, u.job_id);
  wo.type = FileTypeOf(u.plan);
  wo.unit_no = u.plan.unit_no;
  wo.worker_id = o.worker_id;
  wo.max_resources = o.max_file_resources;
  wo.max_bytes = o.max_file_bytes;
  wo.buffer_bytes = o.write_buffer_bytes;
  wo.gzip_level = o.gzip_level;
  PatientBlockWriter writer(wo);  // its destructor deletes the temp files on early returns
  Heartbeat heartbeat(control, o, u);
  const ElementsSelection elements(request.elements);
  std::map<std::string, std::unique_ptr<TypeSubsetter>, std::less<>> subsetters;
  std::string line;
  const CopyBinaryParser::RowFn on_row =
      [&](const std::vector<CopyBinaryParser::Field>& f) -> Status {
    if (f.size() != 3 || f[1].null || f[2].null) {
      return Status::Corruption("unexpected COPY row shape");
    }
    const std::string_view key = f[0].null ? std::string_view() : f[0].bytes;
    if (elements.empty()) return writer.Append(key, f[2].bytes);
    auto it = subsetters.find(f[1].bytes);
    if (it == subsetters.end()) {
      it = subsetters.emplace(std::string(f[1].bytes), elements.ForType(f[1].bytes)).first;
    }
    if (it->second == nullptr) return writer.Append(key, f[2].bytes);
    FHIRBULK_RETURN_IF_ERROR(it->second->Apply(f[2].bytes, &line));
    return writer.Append(key, line);
  };
  // One snapshot for the question "were any of these versions replaced since
  // transactionTime?" and the read that relies on the answer (patient_blocks.h). The
  // transaction's end also ends the unit's SET LOCALs: the connection serves the next unit of
  // any kind with the defaults.
  FHIRBULK_RETURN_IF_ERROR(PgTransaction(
      data,
      [&]() -> Status {
        auto with_history = BlockUnitNeedsHistory(data, u.transaction_time_us, u.plan);
        if (!with_history.ok()) return with_history.status();
        bool index_order = false;
        auto sql = BuildBlockUnitCopySql(data, request, u.job_id, u.transaction_time_us, u.plan,
                                         *with_history, &index_order);
        if (!sql.ok()) return sql.status();
        if (index_order) FHIRBULK_RETURN_IF_ERROR(SetBlockIndexOrder(data));
        return StreamCopy(data, *sql, &heartbeat, on_row, o);
      },
      "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"));
  stats->read_done = Clock::now();
  FHIRBULK_RETURN_IF_ERROR(heartbeat.Beat(writer.total_resources(), /*honor_stop=*/false));
  FHIRBULK_RETURN_IF_ERROR(writer.Seal());
  stats->sealed = Clock::now();
  FHIRBULK_RETURN_IF_ERROR(Complete(control, u, &writer, o, writer.continues_in()));
  stats->committed = Clock::now();
  stats->resources = writer.total_resources();
  stats->bytes = writer.total_bytes();
  stats->files = static_cast<int64_t>(writer.files().size());
  return Status::OK();
}

// Runs a claimed unit to completion. Non-OK: see RunNextUnit for how each code is handled.
Status Execute(PgConnection* control, PgConnection* data, const ClaimedUnit& u,
               const UnitRunnerOptions& o, UnitStats* stats) {
  auto request = ExportRequestFromJson(u.request_json);
  if (!request.ok()) {
    return Status::Corruption("the stored export request cannot be read: " +
                              request.status().message());
  }
  const std::string dir = JobDirectory(o.export_dir, u.job_id);
  if (u.attempts > 1) FHIRBULK_RETURN_IF_ERROR(DeleteEarlierAttemptFiles(dir, u.plan.unit_no));
  if (!u.plan.blocks.empty()) return ExecuteBlocks(control, data, u, *request, o, stats);

  NdjsonWriterOptions wo;
  wo.dir = dir;
  wo.type = FileTypeOf(u.plan);
  wo.unit_no = u.plan.unit_no;
  wo.worker_id = o.worker_id;
  wo.max_resources = o.max_file_resources;
  wo.max_bytes = o.max_file_bytes;
  wo.buffer_bytes = o.write_buffer_bytes;
  wo.gzip_level = o.gzip_level;
  NdjsonWriter writer(wo);  // its destructor deletes the temp files on every early return
  Heartbeat heartbeat(control, o, u);

  if (u.plan.kind == UnitKind::kError) {
    for (const OutcomeIssue& issue : request->ignored) {
      FHIRBULK_RETURN_IF_ERROR(writer.Append(OperationOutcomeJson({issue})));
    }
  } else {
    FHIRBULK_RETURN_IF_ERROR(WriteUnitRows(control, data, u, *request, o, &heartbeat, &writer));
  }
  stats->read_done = Clock::now();
  // A last check before publishing: a job cancelled meanwhile gets no new files.
  FHIRBULK_RETURN_IF_ERROR(heartbeat.Beat(writer.total_resources(), /*honor_stop=*/false));
  FHIRBULK_RETURN_IF_ERROR(writer.Seal());
  stats->sealed = Clock::now();
  FHIRBULK_RETURN_IF_ERROR(Complete(control, u, &writer, o));
  stats->committed = Clock::now();
  stats->resources = writer.total_resources();
  stats->bytes = writer.total_bytes();
  stats->files = static_cast<int64_t>(writer.files().size());
  return Status::OK();
}

}  // namespace

Result<std::string> SupportingRefsSql(PgConnection* conn, const ExportRequest& request,
                                      int64_t transaction_time_us, const std::string& scope_sql,
                                      int64_t scope_size, const std::vector<std::string>& job_types,
                                      const std::vector<std::string>& ref_types) {
  // The referencing rows are selected as their own units select them.
  std::string referencing;
  std::vector<std::string> unfiltered;
  for (const std::string& ct : job_types) {
    if (RoleOf(request, ct) != TypeRole::kCompartment) continue;
    auto queries = TypeFilterQueriesFor(request.type_filters, ct);
    if (queries.empty()) {
      unfiltered.push_back(ct);
      continue;
    }
    std::string filter;
    FHIRBULK_RETURN_IF_ERROR(TypeFilterSqlLiteral(queries, conn, &filter));
    if (!referencing.empty()) referencing += " OR ";
    referencing += "(c.res_type = " + conn->QuoteLiteral(ct) + " AND (" + filter + "))";
  }
  if (!unfiltered.empty()) {
    if (!referencing.empty()) referencing += " OR ";
    referencing +=
        "c.res_type = ANY(" + conn->QuoteLiteral(PgTextArrayLiteral(unfiltered)) + "::text[])";
  }
  if (referencing.empty()) referencing = "false";  // no compartment type exported
  std::string c_changed;
  if (request.since_us) {
    c_changed += " AND c.last_updated > " + TimestampLiteral(conn, *request.since_us);
  }
  if (request.until_us) {
    c_changed += " AND c.last_updated < " + TimestampLiteral(conn, *request.until_us);
  }
  // The compartment rows as of transactionTime: current rows not changed since, plus the
  // versions current then that were replaced since (sql/0008).
  const std::string t = TimestampLiteral(conn, transaction_time_us);
  const std::string columns =
      "res_type, res_id, deleted, last_updated, patients, tokens, refs, date_params, date_lo, "
      "date_hi, outrefs";
  return "SELECT DISTINCT ref FROM (SELECT " + columns +
         " FROM resource WHERE last_updated <= " + t + " UNION ALL SELECT " + columns +
         " FROM resource_history WHERE valid_to > " + t + " AND last_updated <= " + t +
         ") c CROSS JOIN LATERAL unnest(c.outrefs) AS ref "
         "WHERE split_part(ref, '/', 1) = ANY(" +
         conn->QuoteLiteral(PgTextArrayLiteral(ref_types)) +
         "::text[]) AND NOT c.deleted AND c.last_updated <= " + t + c_changed +
         (scope_sql.empty() ? " AND cardinality(c.patients) > 0"
                            : " AND " + PatientsInScopeSql("c.patients", scope_sql, scope_size)) +
         " AND (" + referencing + ")";
}

Result<std::string> BuildUnitCopySql(PgConnection* conn, const ExportRequest& request,
                                     const std::string& job_id, int64_t transaction_time_us,
                                     const UnitPlan& unit, const std::string& partition,
                                     const std::vector<std::string>& job_types) {
  if (unit.kind == UnitKind::kError) return Status::InvalidArgument("the error unit reads no rows");
  const std::string& type = unit.res_type;
  const TypeRole role = RoleOf(request, type);
  const std::string t = TimestampLiteral(conn, transaction_time_us);
  const std::string patients = PatientScopeSql(conn, request, job_id, transaction_time_us);
  int64_t scope_size = -1;
  if (!patients.empty() && role != TypeRole::kAll) {
    auto size = PatientScopeSize(conn, job_id);
    if (!size.ok()) return size.status();
    scope_size = *size;
  }
  const std::string in_scope =
      patients.empty() ? "" : PatientsInScopeSql("patients", patients, scope_size);
  std::string changed;  // _since / _until
  if (request.since_us)
    changed += " AND last_updated > " + TimestampLiteral(conn, *request.since_us);
  if (request.until_us)
    changed += " AND last_updated < " + TimestampLiteral(conn, *request.until_us);

  // The rows as of transactionTime (sql/0008): the type's current rows with
  // last_updated <= T, plus (UNION ALL) the replaced versions that were current at T. For any
  // id at most one of the two qualifies. `sql` collects the conditions both branches share.
  // A unit of a type split into page ranges reads the history rows of its own range
  // (old_page, sql/0019) in the same statement, so one snapshot decides for each version
  // whether it is read live or as history; the first range also takes the rows kept before
  // old_page existed.
  const std::string column = unit.kind == UnitKind::kOutput ? "body" : "res_id";
  std::string current = "SELECT " + column + " FROM " + PartitionIdentifier(conn, partition) +
                        " WHERE res_type = " + conn->QuoteLiteral(type);
  if (unit.page_lo) current += " AND ctid >= '(" + std::to_string(*unit.page_lo) + ",0)'::tid";
  if (unit.page_hi) current += " AND ctid < '(" + std::to_string(*unit.page_hi) + ",0)'::tid";
  std::string replaced = "SELECT " + column +
                         " FROM resource_history WHERE res_type = " + conn->QuoteLiteral(type) +
                         " AND valid_to > " + t;
  if (unit.page_lo) replaced += " AND old_page >= " + std::to_string(*unit.page_lo);
  if (unit.page_hi) {
    replaced += std::string(unit.page_lo ? " AND" : " AND (old_page IS NULL OR") + " old_page < " +
                std::to_string(*unit.page_hi) + (unit.page_lo ? "" : ")");
  }
  auto assemble = [&](const std::string& conditions) {
    return "COPY (" + current + conditions + " UNION ALL " + replaced + conditions +
           ") TO STDOUT (FORMAT binary)";
  };

  std::string sql;
  if (unit.kind == UnitKind::kDeleted) {
    if (!request.since_us) return Status::InvalidArgument("a deleted unit needs _since");
    // _typeFilter cannot apply: tombstones keep no search values.
    sql += " AND deleted AND last_updated <= " + t + changed;
    if (role == TypeRole::kCompartment) {
      sql += patients.empty() ? " AND cardinality(patients) > 0" : " AND " + in_scope;
    }
    return assemble(sql);
  }

  sql += " AND NOT deleted AND last_updated <= " + t;
  if (role == TypeRole::kCompartment) {
    sql += changed;
    if (!patients.empty()) {
      sql += " AND " + in_scope;
    } else if (type != "Patient") {
      sql += " AND cardinality(patients) > 0";
    }
  } else if (role == TypeRole::kAll) {
    sql += changed;
  } else if (unit.res_ids) {
    // Supporting type: the rows the exported compartment resources reference, whatever their
    // own age, as recorded at planning (primary key lookups).
    // (The cast makes the subquery one array value, not a set to compare with.)
    sql += " AND res_id = ANY((SELECT s.res_ids FROM export_unit s WHERE s.job_id = " +
           conn->QuoteLiteral(job_id) + "::uuid AND s.unit_no = " + std::to_string(unit.unit_no) +
           ")::text[])";
  } else {
    auto refs = SupportingRefsSql(conn, request, transaction_time_us, patients, scope_size,
                                  job_types, {type});
    if (!refs.ok()) return refs.status();
    sql += " AND res_id IN (SELECT substr(r.ref, " + std::to_string(type.size() + 2) + ") FROM (" +
           *refs + ") r)";
  }
  auto queries = TypeFilterQueriesFor(request.type_filters, type);
  if (!queries.empty()) {
    std::string filter;
    FHIRBULK_RETURN_IF_ERROR(TypeFilterSqlLiteral(queries, conn, &filter));
    sql += " AND (" + filter + ")";
  }
  return assemble(sql);
}

Status CopyBinaryParser::ParseOne(std::string_view d, const RowFn& on_row, size_t* used) {
  *used = 0;
  if (!header_done_) {
    if (d.size() < 19) return Status::OK();
    if (std::memcmp(d.data(), kCopySignature, sizeof(kCopySignature)) != 0) {
      return Status::Corruption("not a binary COPY stream");
    }
    uint32_t flags = ReadU32(d.data() + 11);
    if (flags & (1u << 16)) return Status::Corruption("binary COPY with OIDs is not supported");
    uint32_t ext = ReadU32(d.data() + 15);
    if (d.size() < 19 + static_cast<size_t>(ext)) return Status::OK();
    header_done_ = true;
    *used = 19 + ext;
    return Status::OK();
  }
  if (d.size() < 2) return Status::OK();
  int16_t count = static_cast<int16_t>(ReadU16(d.data()));
  if (count == -1) {
    finished_ = true;
    *used = 2;
    return Status::OK();
  }
  if (count < 0) return Status::Corruption("bad binary COPY field count");
  size_t pos = 2;
  fields_.clear();
  for (int i = 0; i < count; i++) {
    if (d.size() < pos + 4) return Status::OK();
    int32_t len = static_cast<int32_t>(ReadU32(d.data() + pos));
    pos += 4;
    Field f;
    if (len == -1) {
      f.null = true;
    } else {
      if (len < 0) return Status::Corruption("bad binary COPY field length");
      if (d.size() < pos + static_cast<size_t>(len)) return Status::OK();
      f.bytes = d.substr(pos, static_cast<size_t>(len));
      pos += static_cast<size_t>(len);
    }
    fields_.push_back(f);
  }
  rows_++;
  FHIRBULK_RETURN_IF_ERROR(on_row(fields_));
  *used = pos;
  return Status::OK();
}

Status CopyBinaryParser::Feed(std::string_view chunk, const RowFn& on_row) {
  std::string joined;
  std::string_view data = chunk;
  if (!carry_.empty()) {  // a row split across chunks (rare: the server sends one per message)
    joined = std::move(carry_);
    carry_.clear();
    joined.append(chunk.data(), chunk.size());
    data = joined;
  }
  size_t pos = 0;
  while (pos < data.size()) {
    if (finished_) return Status::Corruption("data after the binary COPY trailer");
    size_t used = 0;
    FHIRBULK_RETURN_IF_ERROR(ParseOne(data.substr(pos), on_row, &used));
    if (used == 0) break;
    pos += used;
  }
  carry_.assign(data.data() + pos, data.size() - pos);
  return Status::OK();
}

Result<bool> RunNextUnit(PgConnection* control, PgConnection* data, const UnitRunnerOptions& o) {
  auto claimed = Claim(control, o);
  if (!claimed.ok()) return claimed.status();
  if (!claimed->has_value()) return false;
  ClaimedUnit& u = **claimed;
  const std::string what = "job " + u.job_id + " unit " + std::to_string(u.plan.unit_no) + " (" +
                           (u.plan.res_type.empty() ? "" : u.plan.res_type + " ") +
                           UnitKindName(u.plan.kind) + ")";
  if (u.attempts > o.max_attempts) {
    Log(o, what + ": gave up after " + std::to_string(u.attempts - 1) + " attempts");
    FHIRBULK_RETURN_IF_ERROR(
        FailJob(control, o.export_dir, u.job_id,
                "a part of the export failed " + std::to_string(u.attempts - 1) +
                    " times (database or worker failures); please start the export again",
                /*transient=*/true, o.retention_seconds));
    return true;
  }
  UnitStats st;
  Status s;
  std::vector<int> failed_replicas;  // standbys this unit failed on (each tried once)
  while (true) {
    st = UnitStats();
    st.started = Clock::now();
    PgConnection* reader = data;
    int replica = -1;
    u.read_from = "primary";
    if (o.replicas != nullptr && !o.replicas->empty() && u.plan.kind != UnitKind::kError) {
      Heartbeat waiting(control, o, u);  // renews the lease while a standby catches up
      auto picked = o.replicas->Pick(u.read_lsn, o.replica_wait_ms, failed_replicas,
                                     [&waiting] { return waiting.MaybeBeat(0); });
      if (!picked.ok()) {
        s = picked.status();
        break;
      }
      if (picked->index >= 0) {
        reader = picked->conn;
        replica = picked->index;
        u.read_from = picked->name;
      } else {
        Log(o, what + ": reading from the primary: " + picked->why_not);
      }
    }
    s = Execute(control, reader, u, o, &st);
    if (replica < 0 || s.code() != Status::Code::kUnavailable) break;
    // The standby or the primary? The unit is ours only while the control connection works.
    const bool broken = !reader->healthy();
    o.replicas->Failed(replica, broken);
    if (!control->idle() || !control->Exec("SELECT 1").ok()) break;
    Log(o, what + ": reading from " + u.read_from + " failed (" + s.message() +
               "); redoing the unit on the next server");
    failed_replicas.push_back(replica);
  }
  if (o.replicas != nullptr) o.replicas->Tidy();
  if (s.ok()) {
    Log(o, what + ": " + std::to_string(st.resources) + " resources, " + std::to_string(st.bytes) +
               " bytes, " + std::to_string(st.files) + " files in " +
               Millis(st.started, st.committed) + " ms (read " + Millis(st.started, st.read_done) +
               ", sync " + Millis(st.read_done, st.sealed) + ", commit " +
               Millis(st.sealed, st.committed) + "), read from " + u.read_from);
    return true;
  }
  switch (s.code()) {
    case Status::Code::kAborted:
      if (Stopping(o)) Release(control, u, o, /*uncount=*/true);
      Log(o, what + ": stopped: " + s.message());
      return true;
    case Status::Code::kUnavailable:
      Release(control, u, o, /*uncount=*/false);
      Log(o, what + ": will be retried: " + s.message());
      return s;
    default: {
      // The client gets a generic diagnostic and a reference; the details (SQL errors, paths)
      // go to the worker's log only.
      const std::string ref = ErrorReference();
      Log(o, what + ": failed (reference " + ref + "): " + s.ToString());
      std::string diagnostics;
      if (s.code() == Status::Code::kResourceExhausted) {
        diagnostics = "a part of the export ran longer than the server's limit of " +
                      std::to_string(o.statement_timeout_ms / 1000) +
                      " seconds; narrow the request (_type, _typeFilter, _since) and start it "
                      "again";
        diagnostics += " (reference " + ref + ")";
      } else if (s.code() == Status::Code::kIOError) {
        diagnostics = FailureDiagnostics("writing the export files", s, ref);
      } else {
        diagnostics = FailureDiagnostics("the export", s, ref);
      }
      Status f = FailJob(control, o.export_dir, u.job_id, diagnostics, /*transient=*/false,
                         o.retention_seconds);
      if (!f.ok()) return f;
      return true;
    }
  }
}

}  // namespace fhirbulk
