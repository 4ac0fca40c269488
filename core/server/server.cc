#include "server/server.h"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>

#include "db/migrate.h"
#include "export/job_store.h"
#include "export/manifest.h"
#include "server/capability.h"
#include "server/outcome.h"
#include "util/fhir_time.h"

namespace fhirbulk {

namespace {

constexpr const char* kVersion = "0.1.0";
// Jobs of requests without an authenticated client (authorization switched off).
constexpr const char* kAnonymousClient = "anonymous";

// One database connection per thread and conninfo. After a failed connect the thread does
// not try again for kReconnectBackoff, so a dead database costs a client no more than a
// fast 503.
struct ThreadConnection {
  std::string conninfo;
  std::unique_ptr<PgConnection> conn;
  std::chrono::steady_clock::time_point retry_not_before{};
  Status last_error;
};
constexpr auto kReconnectBackoff = std::chrono::milliseconds(500);
// The module's statements are short; a statement stuck longer (a lock, an overloaded server)
// must not hold a pool thread, and with it a queue of clients, indefinitely.
// Asynchronous commit: the only writes on these connections that need durability (job
// creation, cancel) turn it back on for their transaction.
constexpr const char* kSetStatementTimeout =
    "SET statement_timeout = 10000; SET synchronous_commit = off";

thread_local ThreadConnection t_conn;

bool IsUnavailable(const Status& s) { return s.code() == Status::Code::kUnavailable; }

HttpResponse MethodNotAllowed(const char* what, const char* allow) {
  HttpResponse r =
      OutcomeResponse(405, "not-supported", std::string(what) + " supports " + allow + " only");
  r.AddHeader("Allow", allow);
  return r;
}

// A 4xx for a kick-off that failed validation: the message names the parameter.
HttpResponse KickoffError(const Status& s) {
  HttpResponse r = StatusResponse(s, 0);
  // An Accept header the server cannot satisfy is "Not Acceptable".
  if (s.code() == Status::Code::kInvalidArgument && s.message().rfind("Accept", 0) == 0) {
    r.status = 406;
  }
  return r;
}

}  // namespace

Server::Server(ServerOptions options) : options_(std::move(options)) {}

Result<std::unique_ptr<Server>> Server::Create(ServerOptions options) {
  std::string& url = options.base_url;
  while (!url.empty() && url.back() == '/') url.pop_back();
  size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos ||
      (url.compare(0, scheme_end, "http") != 0 && url.compare(0, scheme_end, "https") != 0)) {
    return Status::InvalidArgument("base URL must be an absolute http(s) URL, got '" + url + "'");
  }
  size_t host_start = scheme_end + 3;
  size_t path_start = url.find('/', host_start);
  if (path_start == host_start || host_start >= url.size()) {
    return Status::InvalidArgument("base URL has no host: '" + url + "'");
  }
  if (url.find_first_of("?#", host_start) != std::string::npos) {
    return Status::InvalidArgument("base URL must not have a query or fragment: '" + url + "'");
  }
  if (options.retry_after_unavailable <= 0) options.retry_after_unavailable = 5;
  if (options.poll_retry_after <= 0) options.poll_retry_after = 2;
  while (options.export_dir.size() > 1 && options.export_dir.back() == '/') {
    options.export_dir.pop_back();
  }
  std::unique_ptr<Server> server(new Server(std::move(options)));
  const std::string& u = server->options_.base_url;
  server->base_path_ = path_start == std::string::npos ? "" : u.substr(path_start);
  CapabilityOptions cap;
  cap.base_url = u;
  cap.software_version = kVersion;
  cap.exports = !server->options_.export_dir.empty();
  server->capability_json_ = CapabilityStatementJson(cap);
  return server;
}

std::string Server::ClientId(const HttpRequest& req) const {
  return req.client_id.empty() ? kAnonymousClient : std::string(req.client_id);
}

bool Server::HandleFast(const HttpRequest& req, HttpResponse* resp) const {
  Route route = MatchRoute(req.path);
  bool get_like = req.method == HttpMethod::kGet || req.method == HttpMethod::kHead;
  switch (route.kind) {
    case Route::kMetadata:
      if (!get_like) {
        *resp = MethodNotAllowed("/metadata", "GET, HEAD");
        return true;
      }
      resp->status = 200;
      resp->content_type = kFhirJson;
      resp->body = capability_json_;
      return true;
    case Route::kHealth:
      if (!get_like) {
        *resp = MethodNotAllowed("/_health", "GET, HEAD");
        return true;
      }
      return false;  // needs the database
    case Route::kExportKickoff: {
      if (options_.export_dir.empty()) break;  // exports not configured: unknown route
      if (req.method != HttpMethod::kGet && req.method != HttpMethod::kPost) {
        *resp = MethodNotAllowed("$export", "GET, POST");
        return true;
      }
      auto parsed = ParseKickoff(req, route);
      if (!parsed.ok()) {
        *resp = KickoffError(parsed.status());
        return true;
      }
      return false;  // valid: the job is created in the blocking half
    }
    case Route::kExportStatus:
      if (options_.export_dir.empty()) break;
      if (!get_like && req.method != HttpMethod::kDelete) {
        *resp = MethodNotAllowed("the status URL", "GET, DELETE");
        return true;
      }
      if (!IsValidJobId(route.job_id)) {
        *resp = OutcomeResponse(404, "not-found", "no export job " + route.job_id);
        return true;
      }
      return false;
    case Route::kNotFound:
      break;
  }
  std::string diag = "no route for ";
  diag += req.path.empty() ? "/" : std::string(req.path);
  diag += " under the FHIR base";
  *resp = OutcomeResponse(404, "not-found", diag);
  return true;
}

void Server::HandleBlocking(const HttpRequest& req, HttpResponse* resp) const {
  Route route = MatchRoute(req.path);
  switch (route.kind) {
    case Route::kHealth:
      HandleHealth(resp);
      return;
    case Route::kExportKickoff:
      HandleKickoff(req, route, resp);
      return;
    case Route::kExportStatus:
      if (req.method == HttpMethod::kDelete) {
        HandleCancel(req, route, resp);
      } else {
        HandleStatus(req, route, resp);
      }
      return;
    default:
      *resp = OutcomeResponse(500, "exception", "request has no blocking handler");
  }
}

Status Server::WithConnection(const std::function<Status(PgConnection*)>& fn) const {
  ThreadConnection& tc = t_conn;
  if (tc.conninfo != options_.conninfo) {
    tc.conn.reset();
    tc.conninfo = options_.conninfo;
    tc.retry_not_before = {};
  }
  for (int attempt = 0; attempt < 2; attempt++) {
    bool fresh = false;
    if (tc.conn == nullptr || !tc.conn->healthy()) {
      tc.conn.reset();
      auto now = std::chrono::steady_clock::now();
      if (now < tc.retry_not_before) return tc.last_error;
      auto c = PgConnection::Connect(tc.conninfo);
      if (!c.ok()) {
        tc.last_error = c.status();
        tc.retry_not_before = now + kReconnectBackoff;
        return c.status();
      }
      tc.conn = std::move(c).value();
      auto set = tc.conn->Exec(kSetStatementTimeout);
      if (!set.ok()) {
        tc.conn.reset();
        return set.status();
      }
      fresh = true;
    }
    Status s = fn(tc.conn.get());
    if (!IsUnavailable(s)) return s;
    tc.conn.reset();  // never reuse a connection that failed at the connection level
    if (fresh) return s;
  }
  return Status::Unavailable("database unavailable");
}

void Server::HandleHealth(HttpResponse* resp) const {
  int version = 0;
  Status s = WithConnection([&](PgConnection* c) -> Status {
    auto v = SchemaVersion(c);
    if (!v.ok()) return v.status();
    version = *v;
    return Status::OK();
  });
  if (!s.ok()) {
    *resp = StatusResponse(s, options_.retry_after_unavailable);
    return;
  }
  resp->status = 200;
  resp->content_type = "application/json";
  resp->body =
      "{\"status\":\"pass\",\"database\":\"up\",\"schemaVersion\":" + std::to_string(version) + "}";
  resp->AddHeader("Cache-Control", "no-store");
}

Result<ExportRequest> Server::ParseKickoff(const HttpRequest& req, const Route& route) const {
  ExportParseOptions o;
  o.base_url = options_.base_url;
  o.require_prefer_async = options_.strict_kickoff_headers;
  o.require_accept_fhir_json = options_.strict_kickoff_headers;
  return ParseExportRequest(req, route.level, route.group_id, o);
}

Status Server::ValidateAgainstDatabase(PgConnection* conn, const ExportRequest& request) const {
  if (request.level == ExportLevel::kGroup) {
    auto g = conn->Exec(
        "SELECT body::jsonb ->> 'type' FROM resource "
        "WHERE res_type = 'Group' AND res_id = $1 AND NOT deleted",
        {request.group_id});
    if (!g.ok()) return g.status();
    if (g->rows() == 0) return Status::NotFound("Group/" + request.group_id + " does not exist");
    std::string type = g->str(0, 0);
    if (type != "person") {
      return Status::NotSupported("Group/" + request.group_id + " is of type '" + type +
                                  "'; only groups of patients (type person) can be exported");
    }
  }
  if (request.patients.empty()) return Status::OK();
  std::string list = PgTextArrayLiteral(request.patients);
  Result<PgResult> missing = Status::Internal("unset");
  if (request.level == ExportLevel::kGroup) {
    // active members as of now: not inactive, period (if any) covering now
    missing = conn->Exec(
        "SELECT p FROM unnest($1::text[]) AS p WHERE NOT EXISTS ("
        " SELECT 1 FROM group_member m WHERE m.group_id = $2 AND m.patient_id = p"
        " AND NOT m.inactive"
        " AND (m.period_start IS NULL OR m.period_start <= clock_timestamp())"
        " AND (m.period_end IS NULL OR m.period_end >= clock_timestamp()))"
        " OR NOT EXISTS (SELECT 1 FROM resource r WHERE r.res_type = 'Patient'"
        " AND r.res_id = p AND NOT r.deleted)",
        {list, request.group_id});
  } else {
    missing = conn->Exec(
        "SELECT p FROM unnest($1::text[]) AS p WHERE NOT EXISTS ("
        " SELECT 1 FROM resource r WHERE r.res_type = 'Patient' AND r.res_id = p"
        " AND NOT r.deleted)",
        {list});
  }
  if (!missing.ok()) return missing.status();
  if (missing->rows() > 0) {
    std::string names;
    for (int i = 0; i < missing->rows() && i < 10; i++) {
      if (i > 0) names += ", ";
      names += "Patient/" + missing->str(i, 0);
    }
    return Status::InvalidArgument("patient: " + names +
                                   (request.level == ExportLevel::kGroup
                                        ? " not an active member of Group/" + request.group_id
                                        : std::string(" not found")));
  }
  return Status::OK();
}

void Server::HandleKickoff(const HttpRequest& req, const Route& route, HttpResponse* resp) const {
  auto parsed = ParseKickoff(req, route);
  if (!parsed.ok()) {
    *resp = KickoffError(parsed.status());
    return;
  }
  JobInfo job;
  CreateJobOptions create;
  create.max_active_per_client = options_.max_active_exports_per_client;
  Status s = WithConnection([&](PgConnection* c) -> Status {
    FHIRBULK_RETURN_IF_ERROR(ValidateAgainstDatabase(c, *parsed));
    auto created = CreateJob(c, ClientId(req), *parsed, create);
    if (!created.ok()) return created.status();
    job = std::move(created).value();
    return Status::OK();
  });
  if (!s.ok()) {
    *resp = StatusResponse(s, s.code() == Status::Code::kResourceExhausted
                                  ? options_.poll_retry_after * 5
                                  : options_.retry_after_unavailable);
    return;
  }
  resp->status = 202;
  resp->AddHeader("Content-Location", options_.base_url + StatusPath(job.job_id));
  // The body may be an OperationOutcome (spec §2.6): say what happens next.
  OutcomeIssue info;
  info.severity = "information";
  info.code = "informational";
  info.diagnostics = "export accepted; poll the Content-Location URL for its status";
  resp->content_type = kFhirJson;
  resp->body = OperationOutcomeJson({info});
}

void Server::HandleStatus(const HttpRequest& req, const Route& route, HttpResponse* resp) const {
  JobInfo job;
  Status s = WithConnection([&](PgConnection* c) -> Status {
    auto got = GetJob(c, route.job_id, ClientId(req));
    if (!got.ok()) return got.status();
    job = std::move(got).value();
    return Status::OK();
  });
  if (!s.ok()) {
    *resp = StatusResponse(s, options_.retry_after_unavailable);
    return;
  }
  switch (job.state) {
    case JobState::kAccepted:
    case JobState::kRunning: {
      int wait = 0;
      s = WithConnection([&](PgConnection* c) -> Status {
        auto r = RecordPoll(c, job.job_id, options_.min_poll_interval_ms);
        if (!r.ok()) return r.status();
        wait = *r;
        return Status::OK();
      });
      if (!s.ok()) {
        *resp = StatusResponse(s, options_.retry_after_unavailable);
        return;
      }
      if (wait > 0) {
        *resp = OutcomeResponse(429, "throttled",
                                "polling faster than the server allows; wait for Retry-After");
        resp->AddHeader("Retry-After", std::to_string(wait));
        return;
      }
      resp->status = 202;
      resp->AddHeader("X-Progress", ProgressText(job));
      resp->AddHeader("Retry-After", std::to_string(options_.poll_retry_after));
      resp->AddHeader("Cache-Control", "no-store");
      return;
    }
    case JobState::kCompleted:
      resp->status = 200;
      resp->content_type = "application/json";
      resp->body = ManifestJson(job, options_.base_url, options_.requires_access_token);
      if (job.expires_at_us) resp->AddHeader("Expires", FormatHttpDate(*job.expires_at_us));
      resp->AddHeader("Cache-Control", "no-store");
      return;
    case JobState::kFailed:
      *resp = OutcomeResponse(500, job.error_transient ? "transient" : "exception",
                              "the export failed");
      if (!job.error_json.empty()) resp->body = job.error_json;
      return;
    case JobState::kCancelled:
      *resp = OutcomeResponse(404, "not-found", "no export job " + job.job_id);
      return;
  }
}

void Server::HandleCancel(const HttpRequest& req, const Route& route, HttpResponse* resp) const {
  Status s = WithConnection(
      [&](PgConnection* c) -> Status { return CancelJob(c, route.job_id, ClientId(req)); });
  if (!s.ok()) {
    *resp = StatusResponse(s, options_.retry_after_unavailable);
    return;
  }
  // Its files must stop being served now, not when a worker gets to it: move the directory
  // out of the served tree (a rename is atomic); workers delete it later.
  std::string from = options_.export_dir + "/" + route.job_id;
  std::string to = options_.export_dir + "/.cancelled-" + route.job_id;
  if (std::rename(from.c_str(), to.c_str()) != 0 && errno != ENOENT) {
    resp->log_message = "cannot move " + from + " away: " + std::strerror(errno);
  }
  resp->status = 202;
  OutcomeIssue info;
  info.severity = "information";
  info.code = "informational";
  info.diagnostics = "export cancelled; its files are deleted";
  resp->content_type = kFhirJson;
  resp->body = OperationOutcomeJson({info});
}

const char* SoftwareVersion() { return kVersion; }

}  // namespace fhirbulk
