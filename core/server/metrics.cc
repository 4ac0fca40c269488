#include "server/metrics.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "fhirbulk/defaults.h"

namespace fhirbulk {

namespace {

constexpr const char* kCodeLabels[FHIRBULK_METRIC_CODES] = {
    "200", "202", "2xx", "304", "3xx", "400", "401", "403", "404", "429", "4xx", "503", "5xx"};

// route label, level label ("" = none) of each fhirbulk_metric_route_e
struct RouteLabel {
  const char* route;
  const char* level;
};
constexpr RouteLabel kRouteLabels[FHIRBULK_METRIC_ROUTES] = {
    {"other", ""},          {"health", ""},       {"kickoff", "system"},
    {"kickoff", "patient"}, {"kickoff", "group"}, {"poll", ""},
    {"cancel", ""},         {"token", ""},        {"download", ""}};

constexpr const char* kTokenLabels[FHIRBULK_TOKEN_OUTCOMES] = {
    "",  // FHIRBULK_TOKEN_NONE: not exposed
    "granted",
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "invalid_scope",
    "unauthorized_client",
    "unsupported_grant_type",
    "temporarily_unavailable"};

constexpr const char* kJobStates[] = {"accepted", "running", "completed", "failed", "cancelled"};

// How long a database reading is reused, and how long a failed connect is not retried.
constexpr auto kCacheFor = std::chrono::seconds(1);
constexpr auto kReconnectBackoff = std::chrono::seconds(1);

// Every gauge in one statement, as rows (kind, label, label2, a, b, c).
constexpr const char* kGaugesSql =
    "SELECT 'schema', '', '', (SELECT coalesce(max(version), 0) FROM schema_version)::float8,"
    "  0::float8, 0::float8"
    " UNION ALL SELECT 'job', state, '', count(*)::float8, 0, 0 FROM export_job GROUP BY state"
    " UNION ALL SELECT 'unit', state, '', count(*)::float8, 0, 0 FROM export_unit"
    "  WHERE state <> 'done' GROUP BY state"
    " UNION ALL SELECT 'oldest', '', '',"
    "  coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8, 0, 0"
    "  FROM export_job WHERE state IN ('accepted', 'running')"
    " UNION ALL SELECT 'resources', '', '', coalesce(sum(resources_written), 0)::float8, 0, 0"
    "  FROM export_job"
    " UNION ALL SELECT 'duration', width_bucket(d, $1::float8[])::text, '', count(*)::float8,"
    "  sum(d), 0"
    "  FROM (SELECT extract(epoch FROM finished_at - created_at)::float8 AS d FROM export_job"
    "        WHERE state = 'completed' AND finished_at IS NOT NULL) j GROUP BY 2"
    " UNION ALL (SELECT 'worker', worker_id, host,"
    "  extract(epoch FROM now() - last_seen)::float8, threads::float8, units_in_flight::float8"
    "  FROM worker_heartbeat WHERE last_seen > now() - make_interval(secs => $2)"
    "  ORDER BY worker_id LIMIT 1000)";

std::string Number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[40];
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    std::snprintf(buf, sizeof(buf), "%.0f", v);
  } else {
    std::snprintf(buf, sizeof(buf), "%.6g", v);
  }
  return buf;
}

void AppendEscaped(std::string_view v, std::string* out) {
  for (char c : v) {
    if (c == '\\') {
      *out += "\\\\";
    } else if (c == '"') {
      *out += "\\\"";
    } else if (c == '\n') {
      *out += "\\n";
    } else {
      out->push_back(c);
    }
  }
}

double ToDouble(const PgResult& r, int row, int col) {
  return std::strtod(r.str(row, col).c_str(), nullptr);
}

}  // namespace

fhirbulk_metric_route_e MetricRoute(const Route& route, HttpMethod method) {
  switch (route.kind) {
    case Route::kHealth:
      return FHIRBULK_METRIC_HEALTH;
    case Route::kToken:
      return FHIRBULK_METRIC_TOKEN;
    case Route::kExportKickoff:
      switch (route.level) {
        case ExportLevel::kSystem:
          return FHIRBULK_METRIC_KICKOFF_SYSTEM;
        case ExportLevel::kPatient:
          return FHIRBULK_METRIC_KICKOFF_PATIENT;
        case ExportLevel::kGroup:
          return FHIRBULK_METRIC_KICKOFF_GROUP;
      }
      return FHIRBULK_METRIC_OTHER;
    case Route::kExportStatus:
      return method == HttpMethod::kDelete ? FHIRBULK_METRIC_CANCEL : FHIRBULK_METRIC_POLL;
    case Route::kNotFound:
    case Route::kMetadata:
    case Route::kSmartConfiguration:
    case Route::kGroupType:  // the Group API: counted under "other" for now
    case Route::kGroupInstance:
    case Route::kGroupStatus:
    case Route::kOps:  // the operator API
      break;
  }
  return FHIRBULK_METRIC_OTHER;
}

fhirbulk_token_outcome_e TokenOutcome(std::string_view e) {
  if (e.empty()) return FHIRBULK_TOKEN_GRANTED;
  for (int i = FHIRBULK_TOKEN_INVALID_REQUEST; i < FHIRBULK_TOKEN_OUTCOMES; i++) {
    if (e == kTokenLabels[i]) return static_cast<fhirbulk_token_outcome_e>(i);
  }
  return FHIRBULK_TOKEN_INVALID_REQUEST;  // no other error is ever sent
}

int MetricCodeIndex(int s) {
  switch (s) {
    case 200:
      return 0;
    case 202:
      return 1;
    case 304:
      return 3;
    case 400:
      return 5;
    case 401:
      return 6;
    case 403:
      return 7;
    case 404:
      return 8;
    case 429:
      return 9;
    case 503:
      return 11;
    default:
      break;
  }
  if (s >= 200 && s < 300) return 2;
  if (s >= 300 && s < 400) return 4;
  if (s >= 400 && s < 500) return 10;
  return 12;  // 5xx, and anything out of range
}

const char* MetricCodeLabel(int index) {
  return index >= 0 && index < FHIRBULK_METRIC_CODES ? kCodeLabels[index] : "5xx";
}

void PromWriter::Family(std::string_view name, std::string_view type, std::string_view help) {
  *out_ += "# HELP ";
  *out_ += name;
  out_->push_back(' ');
  *out_ += help;  // ours: no backslash or newline
  *out_ += "\n# TYPE ";
  *out_ += name;
  out_->push_back(' ');
  *out_ += type;
  out_->push_back('\n');
}

void PromWriter::Sample(std::string_view name,
                        const std::vector<std::pair<std::string_view, std::string_view>>& labels,
                        double value) {
  *out_ += name;
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (v.empty()) continue;  // an empty label is the same as no label
    out_->push_back(first ? '{' : ',');
    first = false;
    *out_ += k;
    *out_ += "=\"";
    AppendEscaped(v, out_);
    out_->push_back('"');
  }
  if (!first) out_->push_back('}');
  out_->push_back(' ');
  *out_ += Number(value);
  out_->push_back('\n');
}

void FormatCounters(const fhirbulk_counters_t& c, std::string* out) {
  PromWriter w(out);
  w.Family("fhir_bulk_requests_total", "counter",
           "Responses of this nginx node by route, kick-off level and status class.");
  for (int r = 0; r < FHIRBULK_METRIC_ROUTES; r++) {
    for (int k = 0; k < FHIRBULK_METRIC_CODES; k++) {
      w.Sample("fhir_bulk_requests_total",
               {{"route", kRouteLabels[r].route},
                {"level", kRouteLabels[r].level},
                {"code", kCodeLabels[k]}},
               static_cast<double>(c.responses[r][k]));
    }
  }
  w.Family("fhir_bulk_token_requests_total", "counter",
           "Token endpoint answers of this node: granted, or the OAuth error refusing them.");
  for (int t = FHIRBULK_TOKEN_GRANTED; t < FHIRBULK_TOKEN_OUTCOMES; t++) {
    w.Sample("fhir_bulk_token_requests_total", {{"outcome", kTokenLabels[t]}},
             static_cast<double>(c.tokens[t]));
  }
  w.Family("fhir_bulk_download_bytes_total", "counter",
           "Body bytes of export files this node sent.");
  w.Sample("fhir_bulk_download_bytes_total", static_cast<double>(c.download_bytes));
  w.Family("fhir_bulk_database_errors_total", "counter",
           "Requests of this node answered 503 because the database failed.");
  w.Sample("fhir_bulk_database_errors_total", static_cast<double>(c.database_errors));
  w.Family("fhir_bulk_thread_pool_tasks_total", "counter",
           "Database tasks this node posted to its thread pool.");
  w.Sample("fhir_bulk_thread_pool_tasks_total", static_cast<double>(c.pool_tasks));
  w.Family("fhir_bulk_thread_pool_rejected_total", "counter",
           "Requests this node refused with 503 because the thread pool queue was full.");
  w.Sample("fhir_bulk_thread_pool_rejected_total", static_cast<double>(c.pool_rejected));
  w.Family("fhir_bulk_thread_pool_queued", "gauge",
           "Database tasks of this node waiting in the thread pool queue.");
  w.Sample("fhir_bulk_thread_pool_queued", static_cast<double>(c.pool_queued));
  w.Family("fhir_bulk_thread_pool_running", "gauge",
           "Database tasks of this node running on pool threads.");
  w.Sample("fhir_bulk_thread_pool_running", static_cast<double>(c.pool_running));
}

Result<DbGauges> QueryDbGauges(PgConnection* conn) {
  std::string buckets = "{";
  for (size_t i = 0; i < DbGauges::kDurationBuckets.size(); i++) {
    if (i > 0) buckets.push_back(',');
    buckets += Number(DbGauges::kDurationBuckets[i]);
  }
  buckets.push_back('}');
  auto r = conn->Exec(kGaugesSql, {buckets, std::to_string(FHIRBULK_WORKER_LIVE_SECONDS)});
  if (!r.ok()) return r.status();
  DbGauges g;
  for (const char* s : kJobStates) g.jobs.emplace_back(s, 0);
  std::array<int64_t, DbGauges::kDurationBuckets.size() + 1> per_bucket{};
  for (int i = 0; i < r->rows(); i++) {
    std::string_view kind = r->get(i, 0);
    std::string label = r->str(i, 1);
    double a = ToDouble(*r, i, 3);
    if (kind == "schema") {
      g.schema_version = static_cast<int>(a);
    } else if (kind == "job") {
      for (auto& [state, n] : g.jobs) {
        if (state == label) n = static_cast<int64_t>(a);
      }
    } else if (kind == "unit") {
      (label == "running" ? g.units_running : g.units_pending) += static_cast<int64_t>(a);
    } else if (kind == "oldest") {
      g.oldest_queued_age_seconds = a;
    } else if (kind == "resources") {
      g.resources_exported = static_cast<int64_t>(a);
    } else if (kind == "duration") {
      // width_bucket: 0 below the first bound, i for [b(i-1), b(i)), n past the last
      long idx = std::strtol(label.c_str(), nullptr, 10);
      if (idx < 0) idx = 0;
      if (idx >= static_cast<long>(per_bucket.size()))
        idx = static_cast<long>(per_bucket.size()) - 1;
      per_bucket[static_cast<size_t>(idx)] += static_cast<int64_t>(a);
      g.duration_count += static_cast<int64_t>(a);
      g.duration_sum += ToDouble(*r, i, 4);
    } else if (kind == "worker") {
      DbGauges::Worker w;
      w.id = label;
      w.host = r->str(i, 2);
      w.age_seconds = a;
      w.threads = static_cast<int64_t>(ToDouble(*r, i, 4));
      w.units_in_flight = static_cast<int64_t>(ToDouble(*r, i, 5));
      g.workers.push_back(std::move(w));
    }
  }
  // width_bucket's bucket i holds b(i-1) <= d < b(i); Prometheus' le is d <= b. The bounds
  // are whole seconds and durations are microseconds, so the difference is one microsecond.
  int64_t cumulative = 0;
  for (size_t i = 0; i < g.duration_le.size(); i++) {
    cumulative += per_bucket[i];
    g.duration_le[i] = cumulative;
  }
  return g;
}

void FormatDbGauges(const DbGauges* g, std::string* out) {
  PromWriter w(out);
  w.Family("fhir_bulk_database_up", "gauge",
           "1 when this node could read the database for these metrics.");
  w.Sample("fhir_bulk_database_up", g != nullptr ? 1 : 0);
  if (g == nullptr) return;
  w.Family("fhir_bulk_schema_version", "gauge", "The database schema version (sql/).");
  w.Sample("fhir_bulk_schema_version", g->schema_version);
  w.Family("fhir_bulk_jobs", "gauge", "Export jobs in the database by state (global).");
  for (const auto& [state, n] : g->jobs) {
    w.Sample("fhir_bulk_jobs", {{"state", state}}, static_cast<double>(n));
  }
  w.Family("fhir_bulk_units", "gauge",
           "Export units not yet done by state; running = in flight (global).");
  w.Sample("fhir_bulk_units", {{"state", "pending"}}, static_cast<double>(g->units_pending));
  w.Sample("fhir_bulk_units", {{"state", "running"}}, static_cast<double>(g->units_running));
  w.Family("fhir_bulk_oldest_queued_job_age_seconds", "gauge",
           "Age of the oldest accepted or running export job; 0 when none (global).");
  w.Sample("fhir_bulk_oldest_queued_job_age_seconds", g->oldest_queued_age_seconds);
  w.Family("fhir_bulk_export_duration_seconds", "histogram",
           "Kick-off to completion of the completed jobs still retained (global).");
  for (size_t i = 0; i < g->duration_le.size(); i++) {
    std::string le = Number(DbGauges::kDurationBuckets[i]);
    w.Sample("fhir_bulk_export_duration_seconds_bucket", {{"le", le}},
             static_cast<double>(g->duration_le[i]));
  }
  w.Sample("fhir_bulk_export_duration_seconds_bucket", {{"le", "+Inf"}},
           static_cast<double>(g->duration_count));
  w.Sample("fhir_bulk_export_duration_seconds_sum", g->duration_sum);
  w.Sample("fhir_bulk_export_duration_seconds_count", static_cast<double>(g->duration_count));
  w.Family("fhir_bulk_exported_resources", "gauge",
           "Resources written by the export jobs still retained (global).");
  w.Sample("fhir_bulk_exported_resources", static_cast<double>(g->resources_exported));
  w.Family("fhir_bulk_workers_live", "gauge",
           "Export workers whose heartbeat is younger than " +
               std::to_string(FHIRBULK_WORKER_LIVE_SECONDS) + " s (global).");
  w.Sample("fhir_bulk_workers_live", static_cast<double>(g->workers.size()));
  w.Family("fhir_bulk_worker_heartbeat_age_seconds", "gauge",
           "Seconds since each live worker's last heartbeat.");
  for (const auto& wk : g->workers) {
    w.Sample("fhir_bulk_worker_heartbeat_age_seconds", {{"worker", wk.id}, {"host", wk.host}},
             wk.age_seconds);
  }
  w.Family("fhir_bulk_worker_units_in_flight", "gauge",
           "Units each live worker was running at its last heartbeat.");
  for (const auto& wk : g->workers) {
    w.Sample("fhir_bulk_worker_units_in_flight", {{"worker", wk.id}, {"host", wk.host}},
             static_cast<double>(wk.units_in_flight));
  }
  w.Family("fhir_bulk_worker_threads", "gauge", "Export threads of each live worker.");
  for (const auto& wk : g->workers) {
    w.Sample("fhir_bulk_worker_threads", {{"worker", wk.id}, {"host", wk.host}},
             static_cast<double>(wk.threads));
  }
}

HttpResponse MetricsSource::Render(const fhirbulk_counters_t& counters) const {
  std::string body;
  FormatCounters(counters, &body);
  {
    MutexLock lock(&mu_);
    auto now = std::chrono::steady_clock::now();
    if (cached_.empty() || now - cached_at_ >= kCacheFor) {
      Result<DbGauges> g = Status::Unavailable("not connected");
      if (conn_ == nullptr || !conn_->idle()) {
        conn_.reset();
        if (now >= retry_not_before_) {
          auto c = PgConnection::Connect(conninfo_);
          if (c.ok() && (*c)->Exec("SET statement_timeout = 5000").ok()) {
            conn_ = std::move(c).value();
          } else {
            retry_not_before_ = now + kReconnectBackoff;
          }
        }
      }
      if (conn_ != nullptr) g = QueryDbGauges(conn_.get());
      if (!g.ok()) conn_.reset();
      cached_.clear();
      FormatDbGauges(g.ok() ? &*g : nullptr, &cached_);
      cached_at_ = std::chrono::steady_clock::now();
    }
    body += cached_;
  }
  HttpResponse resp;
  resp.status = 200;
  resp.content_type = "text/plain; version=0.0.4; charset=utf-8";
  resp.body = std::move(body);
  resp.AddHeader("Cache-Control", "no-store");
  return resp;
}

}  // namespace fhirbulk
