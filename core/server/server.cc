#include "server/server.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>

#include "auth/client_store.h"
#include "auth/jwks_fetcher.h"
#include "auth/signed_url.h"
#include "auth/token_endpoint.h"
#include "db/migrate.h"
#include "export/cohort.h"
#include "export/job_dir.h"
#include "export/job_store.h"
#include "export/manifest.h"
#include "export/manifest_pages.h"
#include "http/outcome.h"
#include "server/access.h"
#include "server/capability.h"
#include "server/health.h"
#include "server/metrics.h"
#include "util/errno_text.h"
#include "util/fhir_time.h"
#include "util/version.h"

namespace fhirbulk {

namespace {

// Jobs of requests without an authenticated client (authorization switched off).
constexpr const char* kAnonymousClient = "anonymous";

// "Patient/a, Patient/b ..." for an OperationOutcome: the first ten, then how many more.
std::string PatientList(const std::vector<std::string>& ids) {
  std::string names;
  for (size_t i = 0; i < ids.size() && i < 10; i++) {
    if (i > 0) names += ", ";
    names += "Patient/" + ids[i];
  }
  if (ids.size() > 10) names += " and " + std::to_string(ids.size() - 10) + " more";
  return names;
}

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
// Database failures on this thread (WithConnection), so that Continue can tag the answer.
thread_local uint64_t t_db_failures = 0;

// Kick-offs refused for lack of disk space retry after this; a retained-export quota answer
// waits until the client's next export expires, at most this long.
constexpr int kNoSpaceRetryAfterSeconds = 60;
constexpr int64_t kMaxQuotaRetryAfter = 3600;

bool IsUnavailable(const Status& s) { return s.code() == Status::Code::kUnavailable; }

HttpResponse MethodNotAllowed(const char* what, const char* allow) {
  HttpResponse r =
      OutcomeResponse(405, "not-supported", std::string(what) + " supports " + allow + " only");
  r.AddHeader("Allow", allow);
  return r;
}

// Every read scope, and managing Groups: what a caller has when authorization is off.
const ScopeSet& ReadEverything() {
  static const ScopeSet* all =
      new ScopeSet(ScopeSet::Parse("system/*.read system/Group.cud").value());
  return *all;
}

int64_t NowSeconds() { return NowMicros() / 1000000; }

// How stale a cached poll answer may be (see server/status_cache.h), and how many jobs.
constexpr int64_t kStatusCacheTtlUs = 1000000;
constexpr size_t kStatusCacheEntries = 10000;
// Verified access tokens remembered per process (auth/token_cache.h: exact, ~2 MB at most).
constexpr size_t kTokenCacheEntries = 4096;
// A running allowPartialManifests job's answer changes with every unit that commits, and the
// client is waiting for exactly that (IG 3.0.0: download files as they complete): cached for
// 100 ms instead, and its polls are told Retry-After: 1 (at most).
constexpr int64_t kPartialStatusCacheTtlUs = 100000;
constexpr int kPartialPollRetryAfter = 1;

HttpResponse Throttled(int wait_seconds) {
  HttpResponse r = OutcomeResponse(429, "throttled",
                                   "polling faster than the server allows; wait for Retry-After");
  r.AddHeader("Retry-After", std::to_string(wait_seconds));
  return r;
}

}  // namespace

// One definition of each default (fhirbulk/defaults.h); the lower layers that keep a copy of a
// bound must agree with it.

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
  if (options.retry_after_unavailable <= 0) {
    options.retry_after_unavailable = FHIRBULK_DEFAULT_RETRY_AFTER;
  }
  if (options.poll_retry_after <= 0) options.poll_retry_after = FHIRBULK_DEFAULT_POLL_RETRY_AFTER;
  if (options.max_retained_exports_per_client < 0 || options.max_retained_bytes_per_client < 0 ||
      options.min_free_bytes < 0 || options.min_free_percent < 0 || options.min_free_percent > 99) {
    return Status::InvalidArgument(
        "retained export limits and minimum free space must not be negative, and the minimum "
        "free percent at most 99");
  }
  while (options.export_dir.size() > 1 && options.export_dir.back() == '/') {
    options.export_dir.pop_back();
  }
  options.token_lifetime_seconds =
      std::clamp(options.token_lifetime_seconds, 1, kMaxTokenLifetimeSeconds);
  if (options.signed_url_lifetime_seconds <= 0) {
    options.signed_url_lifetime_seconds = kDefaultSignedUrlLifetimeSeconds;
  }
  if (options.signed_url_lifetime_seconds > kMaxSignedUrlLifetimeSeconds) {
    return Status::InvalidArgument("signed URL lifetime must be at most 1 hour");
  }
  if (options.operator_api && !options.auth_enabled) {
    return Status::InvalidArgument("the operator API needs authorization on (fhir_bulk_auth on)");
  }
  std::unique_ptr<Server> server(new Server(std::move(options)));
  const ServerOptions& o = server->options_;
  const std::string& u = o.base_url;
  server->base_path_ = path_start == std::string::npos ? "" : u.substr(path_start);
  if (o.auth_enabled) {
    if (o.token_key_file.empty()) {
      return Status::InvalidArgument(
          "authorization is on but no token key file is set (fhir_bulk_token_key_file)");
    }
    auto ring = KeyRing::LoadFile(o.token_key_file);
    if (!ring.ok()) return Status::InvalidArgument("token key file: " + ring.status().message());
    server->token_keys_ = std::make_shared<const KeyRing>(std::move(ring).value());
    server->token_cache_ = std::make_unique<AccessTokenCache>(
        server->token_keys_, o.token_lifetime_seconds, kTokenCacheEntries);
    server->token_url_ = u + std::string(kTokenPath);
    server->smart_configuration_json_ = SmartConfigurationJson(server->token_url_);
    FetchJwksGlobalInit();  // now, while the process has one thread
  }
  if (o.signed_urls) {
    if (o.signed_url_key_file.empty()) {
      return Status::InvalidArgument(
          "signed URLs are on but no URL key file is set (fhir_bulk_signed_url_key_file)");
    }
    auto ring = KeyRing::LoadFile(o.signed_url_key_file);
    if (!ring.ok()) return Status::InvalidArgument("URL key file: " + ring.status().message());
    server->url_keys_ = std::make_shared<const KeyRing>(std::move(ring).value());
  }
  if (!o.conninfo.empty()) server->audit_ = AuditLog::ForConninfo(o.conninfo);
  server->status_cache_ = std::make_unique<StatusCache>(kStatusCacheTtlUs, kStatusCacheEntries);
  CapabilityOptions cap;
  cap.base_url = u;
  cap.software_version = FHIRBULK_VERSION;
  cap.exports = !o.export_dir.empty();
  cap.token_url = server->token_url_;
  server->capability_json_ = CapabilityStatementJson(cap);
  return server;
}

std::optional<Principal> Server::Authenticate(const HttpRequest& req, HttpResponse* resp) const {
  if (!options_.auth_enabled) {
    Principal p;
    p.client_id = kAnonymousClient;
    p.scopes = ReadEverything();
    return p;
  }
  std::string_view token = BearerToken(req.authorization);
  if (token.empty()) {
    *resp = CredentialsRequiredResponse(
        "a bearer token is required (SMART Backend Services; token endpoint " + token_url_ + ")");
    return std::nullopt;
  }
  auto p = token_cache_->Verify(token, NowSeconds());
  if (!p.ok()) {
    *resp =
        StatusResponse(Status::Unauthenticated("invalid access token: " + p.status().message()), 0);
    return std::nullopt;
  }
  return **p;
}

void Server::Audit(std::string_view remote_addr, const char* action, const std::string& client_id,
                   std::string target, const HttpResponse& resp, std::string detail) const {
  if (audit_ == nullptr) return;
  AuditEvent e;
  e.client_id = client_id;
  e.action = action;
  e.target = std::move(target);
  e.result = resp.status;
  e.detail = std::move(detail);
  e.remote_addr = std::string(remote_addr);
  audit_->Submit(std::move(e));
}

std::unique_ptr<PendingRequest> Server::HandleFast(const HttpRequest& req, HttpResponse* resp,
                                                   fhirbulk_metric_tag_t* metric) const {
  Route route = MatchRoute(req.path);
  fhirbulk_metric_tag_t unused{};
  if (metric == nullptr) metric = &unused;
  *metric = fhirbulk_metric_tag_t{MetricRoute(route, req.method), FHIRBULK_TOKEN_NONE, 0};
  bool get_like = req.method == HttpMethod::kGet || req.method == HttpMethod::kHead;
  auto pending = [&](PendingRequest::Kind kind) {
    auto p = std::make_unique<PendingRequest>();
    p->kind = kind;
    p->target = std::string(req.path);
    p->remote_addr = std::string(req.remote_addr);
    return p;
  };
  switch (route.kind) {
    case Route::kMetadata:
      if (!get_like) {
        *resp = MethodNotAllowed("/metadata", "GET, HEAD");
        return nullptr;
      }
      resp->status = 200;
      resp->content_type = kFhirJson;
      resp->body = capability_json_;
      return nullptr;
    case Route::kHealth:
      if (!get_like) {
        *resp = MethodNotAllowed("/_health", "GET, HEAD");
        return nullptr;
      }
      return pending(PendingRequest::Kind::kHealth);
    case Route::kSmartConfiguration:
      if (token_url_.empty()) break;  // authorization off: nothing to discover
      if (!get_like) {
        *resp = MethodNotAllowed("smart-configuration", "GET, HEAD");
        return nullptr;
      }
      resp->status = 200;
      resp->content_type = "application/json";
      resp->body = smart_configuration_json_;
      resp->AddHeader("Cache-Control", "max-age=3600");
      return nullptr;
    case Route::kToken: {
      if (token_url_.empty()) break;
      if (req.method != HttpMethod::kPost) {
        *resp = MethodNotAllowed("the token endpoint", "POST");
        return nullptr;
      }
      auto p = pending(PendingRequest::Kind::kToken);
      auto early = PrecheckTokenRequest(req.content_type, req.body, &p->token_form);
      if (!early) return p;  // the rest needs the client registry
      *resp = std::move(early->response);
      metric->token = TokenOutcome(early->error);
      Audit(req.remote_addr, "token", "", "", *resp, early->detail);
      return nullptr;
    }
    case Route::kExportKickoff:
      if (options_.export_dir.empty()) break;  // exports not configured: unknown route
      return FastKickoff(req, route, resp);
    case Route::kExportStatus:
      if (options_.export_dir.empty()) break;
      return FastStatus(req, route, resp);
    case Route::kGroupType:
    case Route::kGroupInstance:
    case Route::kGroupStatus:
      return FastGroup(req, route, resp);
    case Route::kOps:
      if (!options_.operator_api) break;  // only where fhir_bulk_operator_api is on
      return FastOps(req, route, resp);
    case Route::kNotFound:
      break;
  }
  metric->route = FHIRBULK_METRIC_OTHER;  // a route switched off answers as unknown
  std::string diag = "no route for ";
  diag += req.path.empty() ? "/" : std::string(req.path);
  diag += " under the FHIR base";
  *resp = OutcomeResponse(404, "not-found", diag);
  return nullptr;
}

std::unique_ptr<PendingRequest> Server::FastKickoff(const HttpRequest& req, const Route& route,
                                                    HttpResponse* resp) const {
  if (req.method != HttpMethod::kGet && req.method != HttpMethod::kPost) {
    *resp = MethodNotAllowed("$export", "GET, POST");
    return nullptr;
  }
  auto principal = Authenticate(req, resp);
  if (!principal) {
    Audit(req.remote_addr, "kickoff", "", std::string(req.path), *resp, "no valid access token");
    return nullptr;
  }
  auto parsed = ParseKickoff(req, route);
  Status s = parsed.ok() ? AuthorizeKickoff(principal->scopes, &*parsed, true) : parsed.status();
  if (!s.ok()) {
    *resp = StatusResponse(s, 0);
    Audit(req.remote_addr, "kickoff", principal->client_id, std::string(req.path), *resp,
          s.message());
    return nullptr;
  }
  // Valid: the job is created in the blocking half, from this parse.
  auto p = std::make_unique<PendingRequest>();
  p->kind = PendingRequest::Kind::kKickoff;
  p->principal = std::move(*principal);
  p->export_request = std::move(parsed).value();
  p->target = std::string(req.path);
  p->remote_addr = std::string(req.remote_addr);
  return p;
}

std::unique_ptr<PendingRequest> Server::FastStatus(const HttpRequest& req, const Route& route,
                                                   HttpResponse* resp) const {
  const bool get_like = req.method == HttpMethod::kGet || req.method == HttpMethod::kHead;
  const bool cancel = req.method == HttpMethod::kDelete;
  if (!get_like && !cancel) {
    *resp = MethodNotAllowed("the status URL", "GET, DELETE");
    return nullptr;
  }
  if (!IsValidJobId(route.job_id)) {
    *resp = OutcomeResponse(404, "not-found", "no export job " + route.job_id);
    return nullptr;
  }
  auto principal = Authenticate(req, resp);
  if (!principal) {
    if (cancel) Audit(req.remote_addr, "cancel", "", route.job_id, *resp, "no valid access token");
    return nullptr;
  }
  int page = 1;
  if (get_like) {
    auto parsed = ParseManifestPageQuery(req.query);
    if (!parsed.ok()) {
      *resp = OutcomeResponse(404, "not-found", "no such manifest page of export " + route.job_id);
      return nullptr;
    }
    page = *parsed;
  }
  // The cache holds the status URL's own answer (page 1); other pages ask the database.
  if (get_like && page == 1 && StatusFromCache(route.job_id, *principal, resp)) return nullptr;
  auto p = std::make_unique<PendingRequest>();
  p->kind = cancel ? PendingRequest::Kind::kCancel : PendingRequest::Kind::kStatus;
  p->manifest_page = page;
  p->principal = std::move(*principal);
  p->job_id = route.job_id;
  p->target = std::string(req.path);
  p->remote_addr = std::string(req.remote_addr);
  return p;
}

void Server::Continue(const PendingRequest& pending, HttpResponse* resp,
                      fhirbulk_metric_tag_t* metric) const {
  fhirbulk_metric_tag_t tag{FHIRBULK_METRIC_OTHER, FHIRBULK_TOKEN_NONE, 0};
  const uint64_t failures_before = t_db_failures;
  std::string oauth_error;
  switch (pending.kind) {
    case PendingRequest::Kind::kHealth:
      tag.route = FHIRBULK_METRIC_HEALTH;
      HandleHealth(resp);
      break;
    case PendingRequest::Kind::kToken:
      tag.route = FHIRBULK_METRIC_TOKEN;
      HandleToken(pending, resp, &oauth_error);
      tag.token = TokenOutcome(oauth_error);
      break;
    case PendingRequest::Kind::kKickoff: {
      Route r;
      r.kind = Route::kExportKickoff;
      r.level = pending.export_request.level;
      tag.route = MetricRoute(r, HttpMethod::kGet);
      HandleKickoff(pending, resp);
      break;
    }
    case PendingRequest::Kind::kStatus:
      tag.route = FHIRBULK_METRIC_POLL;
      HandleStatus(pending, resp);
      break;
    case PendingRequest::Kind::kCancel:
      tag.route = FHIRBULK_METRIC_CANCEL;
      HandleCancel(pending, resp);
      break;
    case PendingRequest::Kind::kGroup:
      HandleGroup(pending, resp);
      break;
    case PendingRequest::Kind::kOps:
      HandleOps(pending, resp);
      break;
    default:
      *resp = OutcomeResponse(500, "exception", "request has no blocking handler");
      break;
  }
  tag.db_error = t_db_failures != failures_before ? 1 : 0;
  if (metric != nullptr) *metric = tag;
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
      if (now < tc.retry_not_before) {
        t_db_failures++;
        return tc.last_error;
      }
      auto c = PgConnection::Connect(tc.conninfo);
      if (!c.ok()) {
        tc.last_error = c.status();
        tc.retry_not_before = now + kReconnectBackoff;
        t_db_failures++;
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
    if (fresh) {
      t_db_failures++;
      return s;
    }
  }
  t_db_failures++;
  return Status::Unavailable("database unavailable");
}

void Server::HandleHealth(HttpResponse* resp) const {
  HealthReport report;
  Status s = WithConnection([&](PgConnection* c) -> Status {
    auto h = QueryHealth(c);
    if (!h.ok()) return h.status();
    report = *h;
    return Status::OK();
  });
  if (!s.ok()) {
    *resp = StatusResponse(s, options_.retry_after_unavailable);
    return;
  }
  *resp = HealthResponse(report, FHIRBULK_HEALTH_QUEUE_FAIL_SECONDS);
}

void Server::HandleToken(const PendingRequest& pending, HttpResponse* resp,
                         std::string* oauth_error) const {
  TokenEndpointOptions o;
  o.token_url = token_url_;
  o.keys = token_keys_;
  o.token_lifetime_seconds = options_.token_lifetime_seconds;
  o.allow_insecure_jwks = options_.jwks_allow_insecure;
  TokenResult result;
  Status s = WithConnection([&](PgConnection* c) -> Status {
    auto r = HandleTokenForm(c, o, pending.token_form, NowSeconds());
    if (!r.ok()) return r.status();
    result = std::move(r).value();
    return Status::OK();
  });
  if (!s.ok()) {
    *resp = StatusResponse(s, options_.retry_after_unavailable);
    Audit(pending.remote_addr, "token", "", "", *resp, "server error");
    *oauth_error = "temporarily_unavailable";
    return;
  }
  *oauth_error = result.error;
  *resp = std::move(result.response);
  if (resp->status != 200) resp->log_message = "token request refused: " + result.detail;
  Audit(pending.remote_addr, "token", result.client_id, "", *resp, result.detail);
}

Result<ExportRequest> Server::ParseKickoff(const HttpRequest& req, const Route& route) const {
  ExportParseOptions o;
  o.base_url = options_.base_url;
  o.require_prefer_async = options_.strict_kickoff_headers;
  o.require_accept_fhir_json = options_.strict_kickoff_headers;
  o.limits.max_type_filter_terms = static_cast<size_t>(options_.typefilter_max_terms);
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
    // A criteria-based Group's members are whoever meets its filters now (the export
    // evaluates them again as of its transactionTime), not the list stored at its creation.
    auto cohort = LoadCohortDefinition(conn, request.group_id);
    if (!cohort.ok()) return cohort.status();
    if (cohort->has_value()) {
      auto outside = CohortNonMembers(conn, **cohort, request.patients);
      if (!outside.ok()) return outside.status();
      if (outside->empty()) return Status::OK();
      return Status::InvalidArgument("patient: " + PatientList(*outside) +
                                     " not a member of Group/" + request.group_id +
                                     " (its member-filters, evaluated now)");
    }
  }
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
    std::vector<std::string> ids;
    ids.reserve(static_cast<size_t>(missing->rows()));
    for (int i = 0; i < missing->rows(); i++) ids.push_back(missing->str(i, 0));
    return Status::InvalidArgument("patient: " + PatientList(ids) +
                                   (request.level == ExportLevel::kGroup
                                        ? " not an active member of Group/" + request.group_id
                                        : std::string(" not found")));
  }
  return Status::OK();
}

void Server::HandleKickoff(const PendingRequest& pending, HttpResponse* resp) const {
  const Principal* principal = &pending.principal;
  const ExportRequest* parsed = &pending.export_request;
  const std::string& target = pending.target;
  // The export volume is shared (other sites, logs): below the minimum free space no export
  // starts. Checked before the database so a full disk costs no connection.
  if (!ExportVolumeHasRoom()) {
    *resp = OutcomeResponse(503, "transient",
                            "the server is short of space for export files; retry later");
    resp->AddHeader("Retry-After", std::to_string(kNoSpaceRetryAfterSeconds));
    Audit(pending.remote_addr, "kickoff", principal->client_id, target, *resp,
          "export volume short of space");
    return;
  }
  JobInfo job;
  CreateJobOptions create;
  create.max_active_per_client = options_.max_active_exports_per_client;
  create.max_retained_per_client = options_.max_retained_exports_per_client;
  create.max_retained_bytes_per_client = options_.max_retained_bytes_per_client;
  int64_t quota_retry_after = 0;
  create.retry_after_seconds = &quota_retry_after;
  Status s = WithConnection([&](PgConnection* c) -> Status {
    GroupViewer viewer;  // Groups created through the API belong to their creator
    viewer.client_id = principal->client_id;
    if (options_.auth_enabled) {
      auto policy = EnabledClientPolicy(c, principal->client_id);
      if (!policy.ok()) return policy.status();
      if (!policy->has_value()) return Status::Unauthenticated("the client is disabled");
      viewer.group_restricted = (*policy)->group_restricted;
      viewer.allowed_groups = (*policy)->allowed_groups;
    }
    FHIRBULK_RETURN_IF_ERROR(AuthorizeGroupExport(c, viewer, *parsed));
    FHIRBULK_RETURN_IF_ERROR(ValidateAgainstDatabase(c, *parsed));
    auto created = CreateJob(c, principal->client_id, *parsed, create);
    if (!created.ok()) return created.status();
    job = std::move(created).value();
    return Status::OK();
  });
  if (!s.ok()) {
    // Retained-export quota: retry when one expires (capped: a DELETE frees one sooner).
    *resp = StatusResponse(
        s, s.code() != Status::Code::kResourceExhausted ? options_.retry_after_unavailable
           : quota_retry_after > 0
               ? static_cast<int>(std::min<int64_t>(quota_retry_after, kMaxQuotaRetryAfter))
               : options_.poll_retry_after * 5);
    Audit(pending.remote_addr, "kickoff", principal->client_id, target, *resp,
          s.code() == Status::Code::kUnavailable ? "database unavailable" : s.message());
    return;
  }
  resp->status = 202;
  resp->AddHeader("Content-Location", options_.base_url + StatusPath(job.job_id));
  if (parsed->separate_export_status) {
    // IG 3.0.0: a supported separate-export-status SHALL be echoed, with respond-async.
    resp->AddHeader("Preference-Applied", "respond-async, separate-export-status");
  }
  // The body may be an OperationOutcome (spec §2.6): say what happens next.
  OutcomeIssue info;
  info.severity = "information";
  info.code = "informational";
  info.diagnostics = "export accepted; poll the Content-Location URL for its status";
  resp->content_type = kFhirJson;
  resp->body = OperationOutcomeJson({info});
  Audit(pending.remote_addr, "kickoff", principal->client_id, job.job_id, *resp, job.request_url);
}

bool Server::ExportVolumeHasRoom() const {
  if (options_.min_free_bytes <= 0 && options_.min_free_percent <= 0) return true;
  struct statvfs vfs;
  if (::statvfs(options_.export_dir.c_str(), &vfs) != 0) return true;  // the worker will tell
  const unsigned long long unit = vfs.f_frsize != 0 ? vfs.f_frsize : vfs.f_bsize;
  const unsigned long long avail = static_cast<unsigned long long>(vfs.f_bavail) * unit;
  const unsigned long long total = static_cast<unsigned long long>(vfs.f_blocks) * unit;
  if (avail < static_cast<unsigned long long>(options_.min_free_bytes)) return false;
  return avail * 100 >= total * static_cast<unsigned long long>(options_.min_free_percent);
}

Result<JobInfo> Server::AccessibleJob(PgConnection* conn, const std::string& job_id,
                                      const Principal& principal, ExportRequest* request) const {
  auto job = GetJob(conn, job_id, principal.client_id, options_.auth_enabled);
  if (!job.ok()) return job.status();
  // "Protected like the kick-off": the token must still cover what the job exports.
  auto parsed = ExportRequestFromJson(job->request_json);
  if (!parsed.ok()) return parsed.status();
  FHIRBULK_RETURN_IF_ERROR(AuthorizeJobAccess(principal.scopes, *parsed));
  *request = std::move(parsed).value();
  return job;
}

std::string Server::ManifestBody(const JobInfo& job, const std::string& next_url) const {
  if (url_keys_ == nullptr) {
    return ManifestJson(job, options_.base_url, options_.auth_enabled, {}, next_url);
  }
  // A link outlives neither the files nor its configured lifetime.
  int64_t expires = NowSeconds() + options_.signed_url_lifetime_seconds;
  if (job.expires_at_us) expires = std::min(expires, *job.expires_at_us / 1000000);
  return ManifestJson(
      job, options_.base_url, false,
      [&](const std::string& file) {
        return SignFileQuery(*url_keys_, job.job_id, file, job.client_id, expires);
      },
      next_url);
}

bool Server::StatusFromCache(const std::string& job_id, const Principal& principal,
                             HttpResponse* resp) const {
  std::shared_ptr<const StatusCache::Entry> entry;
  int wait = 0;
  switch (status_cache_->Get(job_id, principal.client_id, NowMicros(),
                             options_.min_poll_interval_ms, &entry, &wait)) {
    case StatusCache::Hit::kMiss:
      return false;
    case StatusCache::Hit::kThrottled:
      *resp = Throttled(wait);
      return true;
    case StatusCache::Hit::kAnswer:
      break;
  }
  Status s = AuthorizeJobAccess(principal.scopes, entry->request);
  *resp = s.ok() ? entry->response : StatusResponse(s, 0);
  return true;
}

void Server::HandleStatus(const PendingRequest& pending, HttpResponse* resp) const {
  const Principal* principal = &pending.principal;
  const std::string& job_id = pending.job_id;
  // The cached answer is dated from before the read: it expires no later than `ttl` after
  // any cancel this read may have missed (see HandleCancel).
  const int64_t read_started_us = NowMicros();
  JobInfo job;
  ExportRequest request;
  Status s = WithConnection([&](PgConnection* c) -> Status {
    auto got = AccessibleJob(c, job_id, *principal, &request);
    if (!got.ok()) return got.status();
    job = std::move(got).value();
    return Status::OK();
  });
  if (!s.ok()) {
    *resp = StatusResponse(s, options_.retry_after_unavailable);
    return;
  }
  // allowPartialManifests: the answer carries a manifest page (running or completed);
  // other jobs have one manifest, at the status URL itself.
  const bool paged = request.allow_partial_manifests && job.state != JobState::kFailed &&
                     job.state != JobState::kCancelled;
  if (pending.manifest_page != 1 && !paged) {
    *resp = OutcomeResponse(404, "not-found", "no such manifest page of export " + job.job_id);
    return;
  }
  if (job.state == JobState::kCompleted && !paged) {
    // The unpaged manifest lists every file; a paged one reads only its page's (below).
    s = WithConnection([&](PgConnection* c) { return LoadJobFiles(c, &job); });
    if (!s.ok()) {
      *resp = StatusResponse(s, options_.retry_after_unavailable);
      return;
    }
  }
  ManifestPage page;
  if (paged) {
    s = WithConnection([&](PgConnection* c) -> Status {
      auto got = GetManifestPage(c, job, pending.manifest_page, options_.manifest_page_size);
      if (!got.ok()) return got.status();
      page = std::move(got).value();
      return Status::OK();
    });
    if (!s.ok()) {
      *resp = StatusResponse(s, options_.retry_after_unavailable);
      return;
    }
    if (page.available) job.files = std::move(page.files);
  }
  const std::string next_url = page.has_next ? options_.base_url + StatusPath(job.job_id) +
                                                   "?page=" + std::to_string(page.page_no + 1)
                                             : std::string();
  switch (job.state) {
    case JobState::kAccepted:
    case JobState::kRunning: {
      int wait = 0;
      // A page that links further is navigation, not a poll for news: not throttled.
      if (!page.has_next) {
        s = WithConnection([&](PgConnection* c) -> Status {
          auto r = RecordPoll(c, job.job_id, options_.min_poll_interval_ms);
          if (!r.ok()) return r.status();
          wait = *r;
          return Status::OK();
        });
      }
      if (!s.ok()) {
        *resp = StatusResponse(s, options_.retry_after_unavailable);
        return;
      }
      if (wait > 0) {
        *resp = Throttled(wait);
        return;
      }
      resp->status = 202;
      if (page.available) {
        // IG 3.0.0: a partial manifest of the files complete so far, on the 202.
        resp->content_type = "application/json";
        resp->body = ManifestBody(job, next_url);
      }
      resp->AddHeader("X-Progress", ProgressText(job));
      resp->AddHeader("Retry-After", std::to_string(paged ? std::min(options_.poll_retry_after,
                                                                     kPartialPollRetryAfter)
                                                          : options_.poll_retry_after));
      resp->AddHeader("Cache-Control", "no-store");
      break;
    }
    case JobState::kCompleted:
      resp->status = 200;
      resp->content_type = "application/json";
      resp->body = ManifestBody(job, next_url);
      if (job.expires_at_us) resp->AddHeader("Expires", FormatHttpDate(*job.expires_at_us));
      resp->AddHeader("Cache-Control", "no-store");
      break;
    case JobState::kFailed:
      *resp = OutcomeResponse(500, job.error_transient ? "transient" : "processing",
                              "the export failed");
      if (!job.error_json.empty()) resp->body = job.error_json;
      break;
    case JobState::kCancelled:
      *resp = OutcomeResponse(404, "not-found", "no export job " + job.job_id);
      return;
  }
  if (request.separate_export_status) {
    // Prefer: separate-export-status (IG 3.0.0): the HTTP status is the status request's own
    // (200); the job's is in X-Export-Status, as "<code> <reason phrase>".
    const char* job_status = resp->status == 202   ? "202 Accepted"
                             : resp->status == 200 ? "200 OK"
                                                   : "500 Internal Server Error";
    resp->AddHeader("X-Export-Status", job_status);
    resp->status = 200;
  }
  if (pending.manifest_page != 1) return;  // the cache holds the status URL's answer only
  StatusCache::Entry entry;
  entry.client_id = principal->client_id;
  entry.request = std::move(request);
  entry.running = job.state == JobState::kAccepted || job.state == JobState::kRunning;
  entry.response = *resp;
  const int64_t ttl_us = paged && entry.running ? kPartialStatusCacheTtlUs : 0;
  status_cache_->Put(job.job_id, std::move(entry), read_started_us, ttl_us);
}

namespace {

// "<export dir>/.cancels/<job id>" (ngx_module: NGX_HTTP_FHIR_BULK_CANCELS): while it exists
// no node serves the job's files. The nginx master prepares the directory for nginx's user
// when it loads its configuration (or the operator creates it), so
// recording a cancel needs no write access to the export directory itself, which belongs to
// the export worker (nginx's user may only read it, through a shared group).
// (export/job_dir.h: CancelMarkerDirectory, kCancelMarkerKeepSeconds.)
constexpr int64_t kCancelMarkerSweepSeconds = 600;

// Opens "<export dir>/.cancels" for nginx's user, refusing anything but a real directory of
// this process's user (or root) that nobody else may write: the export directory belongs to
// the export worker's user, who could plant a link or a directory of its own there. -1 with
// errno set when refused.
int OpenCancelMarkerDir(const std::string& export_dir) {
  const std::string dir = CancelMarkerDirectory(export_dir);
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return -1;
  struct stat st;
  if (::fstat(fd, &st) != 0 || (st.st_uid != ::geteuid() && st.st_uid != 0) ||
      (st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    ::close(fd);
    errno = EPERM;
    return -1;
  }
  return fd;
}

Status WriteCancelMarker(const std::string& export_dir, const std::string& job_id) {
  const std::string path = CancelMarkerDirectory(export_dir) + "/" + job_id;
  int dfd = OpenCancelMarkerDir(export_dir);
  int fd = dfd < 0
               ? -1
               : ::openat(dfd, job_id.c_str(), O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  int err = errno;
  if (dfd >= 0) ::close(dfd);
  if (fd < 0) {
    return Status::IOError("cannot write the cancel marker " + path + ": " + ErrnoText(err) + " (" +
                           CancelMarkerDirectory(export_dir) +
                           " must be a directory of nginx's user, mode 0700)");
  }
  ::close(fd);
  return Status::OK();
}

// Undoes WriteCancelMarker when the cancel was not committed: a marker left behind would hide
// the files of a job that keeps running.
void RemoveCancelMarker(const std::string& export_dir, const std::string& job_id) {
  int dfd = OpenCancelMarkerDir(export_dir);
  if (dfd < 0) return;
  (void)::unlinkat(dfd, job_id.c_str(), 0);
  ::close(dfd);
}

// Removes markers older than kCancelMarkerKeepSeconds whose job directory is gone (the
// workers deleted it), at most once per kCancelMarkerSweepSeconds per process.
void SweepCancelMarkers(const std::string& export_dir) {
  static std::atomic<int64_t> last_sweep{0};
  const int64_t now = NowMicros() / 1000000;
  int64_t last = last_sweep.load();
  if (now - last < kCancelMarkerSweepSeconds || !last_sweep.compare_exchange_strong(last, now)) {
    return;
  }
  int dfd = OpenCancelMarkerDir(export_dir);
  if (dfd < 0) return;
  DIR* d = ::fdopendir(dfd);
  if (d == nullptr) {
    ::close(dfd);
    return;
  }
  while (struct dirent* e = ::readdir(d)) {
    const std::string name(e->d_name);
    if (!IsValidJobId(name)) continue;
    struct stat st;
    if (::fstatat(dfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 ||
        now - st.st_mtime < kCancelMarkerKeepSeconds) {
      continue;
    }
    if (::lstat(JobDirectory(export_dir, name).c_str(), &st) == 0 || errno != ENOENT) continue;
    ::unlinkat(dfd, name.c_str(), 0);
  }
  ::closedir(d);
}

}  // namespace

void Server::HandleCancel(const PendingRequest& pending, HttpResponse* resp) const {
  const Principal* principal = &pending.principal;
  const std::string& job_id = pending.job_id;
  // A cancel is acknowledged only once it holds on every node: the marker that makes every
  // node refuse the job's files is written after the ownership check, with the job's row
  // locked, and before the commit (no marker, no cancel). A cancel that then fails removes
  // it again, so a job that keeps running keeps its files.
  bool marker_failed = false;
  bool marker_written = false;
  Status s = WithConnection([&](PgConnection* c) -> Status {
    ExportRequest request;
    auto job = AccessibleJob(c, job_id, *principal, &request);
    if (!job.ok()) return job.status();
    return CancelJob(c, job_id, principal->client_id, [&]() -> Status {
      Status m = WriteCancelMarker(options_.export_dir, job_id);
      marker_failed = !m.ok();
      marker_written = marker_written || m.ok();
      return m;
    });
  });
  if (!s.ok() && marker_written) RemoveCancelMarker(options_.export_dir, job_id);
  if (marker_failed) {
    *resp = OutcomeResponse(500, "exception",
                            "the export could not be cancelled; it is unchanged, try again later");
    resp->log_message = "cancel refused: " + s.message();
    Audit(pending.remote_addr, "cancel", principal->client_id, job_id, *resp,
          "cancel marker not written");
    return;
  }
  if (s.code() == Status::Code::kAborted) {
    // The planner holds the job's row while it plans: answering at once frees the pool thread.
    *resp = OutcomeResponse(503, "transient",
                            "the export is being planned and cannot be cancelled right now; "
                            "it is unchanged, retry later");
    resp->AddHeader("Retry-After", std::to_string(std::max(1, options_.retry_after_unavailable)));
    Audit(pending.remote_addr, "cancel", principal->client_id, job_id, *resp, "job row locked");
    return;
  }
  if (!s.ok()) {
    // Another client's job (or none) ends here, before anything of the job is touched: its
    // owner's cached status stays (issue 11, row 12).
    *resp = StatusResponse(s, options_.retry_after_unavailable);
    Audit(pending.remote_addr, "cancel", principal->client_id, job_id, *resp,
          s.code() == Status::Code::kUnavailable ? "database unavailable" : s.message());
    return;
  }
  status_cache_->Erase(job_id);
  SweepCancelMarkers(options_.export_dir);
  resp->status = 202;
  OutcomeIssue info;
  info.severity = "information";
  info.code = "informational";
  info.diagnostics = "export cancelled; its files are deleted";
  resp->content_type = kFhirJson;
  resp->body = OperationOutcomeJson({info});
  // "Following the delete request, when subsequent requests are made to the polling location,
  // the server SHALL return a 404": every process on every node may hold this job's status
  // in its cache for up to the ttl, read before this commit. Answering after the ttl means
  // no poll the client makes after the answer can find one.
  resp->delay_ms = static_cast<int>(kStatusCacheTtlUs / 1000);
  Audit(pending.remote_addr, "cancel", principal->client_id, job_id, *resp, "");
}

}  // namespace fhirbulk
