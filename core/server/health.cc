#include "server/health.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "fhirbulk/defaults.h"
#include "util/version.h"

namespace fhirbulk {

namespace {

// Everything in one statement: the schema version, live workers (the database's clock on
// both sides), and the unfinished jobs (export_job_client_active covers the states).
constexpr const char* kHealthSql =
    "SELECT (SELECT coalesce(max(version), 0) FROM schema_version),"
    " (SELECT count(*) FROM worker_heartbeat"
    "  WHERE last_seen > now() - make_interval(secs => $1)),"
    " q.n, extract(epoch FROM now() - q.oldest)::float8"
    " FROM (SELECT count(*) AS n, min(created_at) AS oldest FROM export_job"
    "       WHERE state IN ('accepted', 'running')) q";

std::string Seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.3f", s);
  return buf;
}

const char* Verdict(int v) { return v == 0 ? "pass" : v == 1 ? "warn" : "fail"; }

}  // namespace

Result<HealthReport> QueryHealth(PgConnection* conn) {
  HealthReport h;
  auto r = conn->Exec(kHealthSql, {std::to_string(FHIRBULK_WORKER_LIVE_SECONDS)});
  if (r.ok()) {
    h.schema_version = static_cast<int>(r->int64(0, 0));
    h.live_workers = r->int64(0, 1);
    h.queued_jobs = r->int64(0, 2);
    if (!r->is_null(0, 3)) h.oldest_queued_age_seconds = std::strtod(r->str(0, 3).c_str(), nullptr);
    return h;
  }
  if (r.status().code() == Status::Code::kUnavailable) return r.status();
  // Most likely a schema older than 0006 (an nginx upgraded before `fhir-bulk migrate`).
  auto v = conn->Exec(
      "SELECT CASE WHEN to_regclass('schema_version') IS NULL THEN 0 "
      "ELSE (SELECT coalesce(max(version), 0) FROM schema_version) END");
  if (!v.ok()) return v.status();
  h.schema_version = static_cast<int>(v->int64(0, 0));
  h.has_heartbeats = false;
  return h;
}

HttpResponse HealthResponse(const HealthReport& h, int fail_after_seconds) {
  int workers = 0;  // 0 pass, 1 warn, 2 fail
  int queue = 0;
  std::string output;
  if (!h.has_heartbeats) {
    workers = 1;
    output = "the database schema predates worker heartbeats: run fhir-bulk migrate";
  } else if (h.live_workers == 0) {
    bool stuck = h.queued_jobs > 0 && h.oldest_queued_age_seconds >= fail_after_seconds;
    workers = stuck ? 2 : 1;
    queue = stuck ? 2 : 0;
    output = stuck ? "no export worker is alive and exports have waited " +
                         Seconds(h.oldest_queued_age_seconds) + " s"
                   : "no export worker is alive";
  }
  int overall = std::max(workers, queue);

  std::string b = "{\"status\":\"";
  b += Verdict(overall);
  b += "\",\"releaseId\":\"" FHIRBULK_VERSION "\"";
  if (!output.empty()) b += ",\"output\":\"" + output + "\"";
  b += ",\"database\":\"up\",\"schemaVersion\":" + std::to_string(h.schema_version);
  if (h.has_heartbeats) {
    b += ",\"workers\":" + std::to_string(h.live_workers);
    b += ",\"queuedJobs\":" + std::to_string(h.queued_jobs);
    b += ",\"oldestQueuedJobAgeSeconds\":";
    b += h.oldest_queued_age_seconds >= 0 ? Seconds(h.oldest_queued_age_seconds) : "null";
  }
  b += ",\"checks\":{\"postgresql:connection\":[{\"status\":\"pass\"}]";
  if (h.has_heartbeats) {
    b += ",\"workers:live\":[{\"observedValue\":" + std::to_string(h.live_workers) +
         ",\"status\":\"" + Verdict(workers) + "\"}]";
    b += ",\"queue:oldestAge\":[{\"observedValue\":";
    b += h.oldest_queued_age_seconds >= 0 ? Seconds(h.oldest_queued_age_seconds) : "null";
    b += ",\"observedUnit\":\"s\",\"status\":\"";
    b += Verdict(queue);
    b += "\"}]";
  }
  b += "}}";

  HttpResponse resp;
  resp.status = overall == 2 ? 503 : 200;
  resp.content_type = "application/health+json";
  resp.body = std::move(b);
  resp.AddHeader("Cache-Control", "no-store");
  return resp;
}

}  // namespace fhirbulk
