// Server: answers requests to the FHIR endpoint, independent of nginx.
//
// Each request is handled once, in two halves of one continuation, so the nginx event loop
// never waits on the database:
//   HandleFast()  in the event loop: routes, authenticates, parses and authorizes, and answers
//                 whatever needs no database. A request that needs it comes back as a
//                 PendingRequest: what the fast half learned (route, caller, parsed kick-off,
//                 decoded token form), owning its data;
//   Continue()    on a thread-pool thread: the database work of a PendingRequest. It never
//                 sees the raw request, so nothing is routed, authenticated or parsed twice.
//                 Each thread keeps its own connection (libpq connections are single-
//                 threaded), reconnects after a failure, and answers 503 + Retry-After while
//                 the database is down.
//
// Thread-safety: a Server is immutable after Create() (its caches lock themselves); both
// halves may run concurrently on any threads.

#ifndef FHIRBULK_SERVER_SERVER_H_
#define FHIRBULK_SERVER_SERVER_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "auth/access_token.h"
#include "auth/audit.h"
#include "auth/key_ring.h"
#include "auth/token_cache.h"
#include "auth/token_endpoint.h"
#include "db/pg.h"
#include "export/export_request.h"
#include "export/job_store.h"
#include "fhirbulk/defaults.h"
#include "fhirbulk/fhirbulk.h"
#include "http/http.h"
#include "server/group_api.h"
#include "server/ops_api.h"
#include "server/routes.h"
#include "server/status_cache.h"
#include "util/status.h"

namespace fhirbulk {

// Defaults: fhirbulk/defaults.h, shared with the nginx module's directives.
struct ServerOptions {
  std::string base_url;  // absolute http(s) URL; a trailing slash is dropped
  std::string conninfo;
  int retry_after_unavailable = FHIRBULK_DEFAULT_RETRY_AFTER;  // seconds
  // Where workers write export files (<export_dir>/<job id>/). A cancel writes the marker
  // <export_dir>/.cancels/<job id> before it commits, and every node's files module refuses
  // the job's files while it exists; the workers delete the directory later. Empty: the
  // server does not serve exports.
  std::string export_dir;
  // 0 = unlimited; beyond it a kick-off gets 429
  int max_active_exports_per_client = FHIRBULK_DEFAULT_MAX_ACTIVE_EXPORTS;
  // Retained exports per client (in progress, or completed and not expired): at this count or
  // this many bytes of files a kick-off gets 429 + Retry-After (CreateJobOptions); 0 = no limit.
  int max_retained_exports_per_client = FHIRBULK_DEFAULT_MAX_RETAINED_EXPORTS;
  int64_t max_retained_bytes_per_client = FHIRBULK_DEFAULT_MAX_RETAINED_BYTES;
  // Free space of the export directory's volume (statvfs) below which a kick-off gets 503 +
  // Retry-After: bytes and percent of the volume; 0 = no check.
  int64_t min_free_bytes = FHIRBULK_DEFAULT_MIN_FREE_BYTES;
  int min_free_percent = FHIRBULK_DEFAULT_MIN_FREE_PERCENT;
  // Require Accept: fhir+json and Prefer: respond-async.
  bool strict_kickoff_headers = FHIRBULK_DEFAULT_STRICT_HEADERS;
  int typefilter_max_terms = FHIRBULK_DEFAULT_TYPEFILTER_MAX_TERMS;  // KickoffLimits
  int poll_retry_after = FHIRBULK_DEFAULT_POLL_RETRY_AFTER;  // Retry-After (s) on 202 answers
  // Polls of a running job faster than this: 429.
  int min_poll_interval_ms = FHIRBULK_DEFAULT_MIN_POLL_INTERVAL_MS;

  // SMART Backend Services (core/auth/), on by default as in nginx. Off: every request acts as
  // client "anonymous" with read access to everything (tests and closed networks).
  bool auth_enabled = FHIRBULK_DEFAULT_AUTH;
  std::string token_key_file;  // KeyRing file signing access tokens; required when enabled
  int token_lifetime_seconds = FHIRBULK_DEFAULT_TOKEN_LIFETIME;  // capped at 300
  // Clients' jwks_url may be http:// on private addresses.
  bool jwks_allow_insecure = FHIRBULK_DEFAULT_JWKS_ALLOW_INSECURE;
  // Manifest file URLs carry an expiring signature (auth/signed_url.h) instead of needing the
  // bearer token (requiresAccessToken false).
  bool signed_urls = false;
  std::string signed_url_key_file;
  // Signed URLs are capability URLs: IG 3.0.0 has them expire like bearer tokens (default at
  // most 5 minutes); at most kMaxSignedUrlLifetimeSeconds.
  int signed_url_lifetime_seconds = FHIRBULK_DEFAULT_SIGNED_URL_LIFETIME;
  // Files per manifest page of allowPartialManifests exports (export/manifest_pages.h).
  int manifest_page_size = FHIRBULK_DEFAULT_MANIFEST_PAGE_SIZE;
  // The operator API (server/ops_api.h) at /_ops/api/; off: those routes are 404. Needs
  // auth_enabled.
  bool operator_api = false;
};

// A request the fast half accepted and the blocking half finishes: what HandleFast learned,
// owned (no view into the raw request or its buffers), so the two halves share no state
// but this object.
struct PendingRequest {
  enum class Kind {
    kHealth,   // GET /_health
    kToken,    // POST /auth/token
    kKickoff,  // $export
    kStatus,   // GET /$export-status/<id> that the status cache could not answer
    kCancel,   // DELETE /$export-status/<id>
    kGroup,    // the Group API (server/group_api.h)
    kOps,      // the operator API (server/ops_api.h)
  };
  Kind kind = Kind::kHealth;
  // kKickoff, kStatus, kCancel: the authenticated caller ("anonymous" when auth is off).
  Principal principal;
  // kKickoff: the parsed kick-off, already authorized and narrowed to what the token may read.
  ExportRequest export_request;
  // kStatus, kCancel: a valid job id.
  std::string job_id;
  // kStatus: the manifest page asked for ("?page=N" on the status URL; 1 without it).
  int manifest_page = 1;
  // kToken: the form that passed steps 1-3 (auth/token_endpoint.h).
  TokenForm token_form;
  // kGroup: the call, its body owned.
  GroupCall group;
  // kOps: the call, its parameters checked.
  OpsCall ops;
  // For the audit trail: the path below the base, and the peer address.
  std::string target;
  std::string remote_addr;
};

class Server {
 public:
  static Result<std::unique_ptr<Server>> Create(ServerOptions options);

  // The event-loop half. nullptr: *response is the complete answer. Otherwise the request
  // needs the database: the caller hands the result to Continue() on a thread-pool thread
  // (*response is untouched).
  // *metric (when given) says what the answer counts as (server/metrics.h), whichever way
  // this returns.
  std::unique_ptr<PendingRequest> HandleFast(const HttpRequest& request, HttpResponse* response,
                                             fhirbulk_metric_tag_t* metric = nullptr) const;
  // The blocking half: finishes a request HandleFast returned. Never fails: a database that
  // is down yields 503 with Retry-After.
  void Continue(const PendingRequest& pending, HttpResponse* response,
                fhirbulk_metric_tag_t* metric = nullptr) const;

  const std::string& base_url() const { return options_.base_url; }
  const std::string& token_url() const { return token_url_; }
  // The path part of base_url ("/fhir"), or "" for a base at the root.
  const std::string& base_path() const { return base_path_; }

 private:
  explicit Server(ServerOptions options);

  // Runs fn(conn) on this thread's connection. A connection-level failure on a reused
  // connection is retried once on a fresh one (the server may have restarted since).
  Status WithConnection(const std::function<Status(PgConnection*)>& fn) const;

  void HandleHealth(HttpResponse* response) const;
  // *oauth_error: the OAuth error the request was refused with, "" when granted.
  void HandleToken(const PendingRequest& pending, HttpResponse* response,
                   std::string* oauth_error) const;
  // The caller of a protected route: from the bearer token, or "anonymous" with every read
  // scope when authorization is off. On failure *response is the 401.
  std::optional<Principal> Authenticate(const HttpRequest& request, HttpResponse* response) const;
  void Audit(std::string_view remote_addr, const char* action, const std::string& client_id,
             std::string target, const HttpResponse& response, std::string detail) const;
  // The fast half of the routes that may need the database: nullptr when *response answers.
  std::unique_ptr<PendingRequest> FastKickoff(const HttpRequest& request, const Route& route,
                                              HttpResponse* response) const;
  std::unique_ptr<PendingRequest> FastStatus(const HttpRequest& request, const Route& route,
                                             HttpResponse* response) const;
  void HandleKickoff(const PendingRequest& pending, HttpResponse* response) const;
  void HandleStatus(const PendingRequest& pending, HttpResponse* response) const;
  // The manifest of `job` (its files, or a page's): file URLs signed when signed URLs are on.
  std::string ManifestBody(const JobInfo& job, const std::string& next_url) const;
  void HandleCancel(const PendingRequest& pending, HttpResponse* response) const;
  // The Group API (server/group_api.h; defined in group_api.cc).
  std::unique_ptr<PendingRequest> FastGroup(const HttpRequest& request, const Route& route,
                                            HttpResponse* response) const;
  void HandleGroup(const PendingRequest& pending, HttpResponse* response) const;
  Status WriteGroup(PgConnection* conn, const GroupViewer& viewer, const GroupCall& call,
                    HttpResponse* response) const;
  Status SearchGroups(PgConnection* conn, const GroupViewer& viewer, const std::string& query,
                      HttpResponse* response) const;
  // The operator API (server/ops_api.h; defined in ops_api.cc).
  std::unique_ptr<PendingRequest> FastOps(const HttpRequest& request, const Route& route,
                                          HttpResponse* response) const;
  void HandleOps(const PendingRequest& pending, HttpResponse* response) const;
  // A criteria-based write: queued for the workers (group_request, sql/0012), 202.
  Status QueueCohort(PgConnection* conn, const GroupViewer& viewer, const GroupCall& call,
                     const std::string& id, HttpResponse* response) const;
  void AcceptedGroupRequest(const std::string& request_id, HttpResponse* response) const;
  // The caller's job, when it is theirs (NotFound otherwise, as if it did not exist) and their
  // token still covers what it exports (PermissionDenied).
  Result<JobInfo> AccessibleJob(PgConnection* conn, const std::string& job_id,
                                const Principal& principal, ExportRequest* request) const;
  // A poll answered from status_cache_ (true), or false to ask the database.
  bool StatusFromCache(const std::string& job_id, const Principal& principal,
                       HttpResponse* resp) const;
  Result<ExportRequest> ParseKickoff(const HttpRequest& request, const Route& route) const;
  // False when the export directory's volume has less free space than min_free_bytes or
  // min_free_percent (statvfs; an unreadable volume counts as roomy: workers report errors).
  bool ExportVolumeHasRoom() const;
  // Checks what only the database knows: the Group exists (404), the `patient` references
  // exist and, at group level, are members (400).
  Status ValidateAgainstDatabase(PgConnection* conn, const ExportRequest& request) const;

  ServerOptions options_;
  std::string base_path_;
  std::string capability_json_;
  std::string token_url_;
  std::string smart_configuration_json_;
  std::shared_ptr<const KeyRing> token_keys_;
  std::unique_ptr<AccessTokenCache> token_cache_;  // with token_keys_
  std::shared_ptr<const KeyRing> url_keys_;
  AuditLog* audit_ = nullptr;
  std::unique_ptr<StatusCache> status_cache_;
  GroupLimits group_limits_;
};

}  // namespace fhirbulk

#endif  // FHIRBULK_SERVER_SERVER_H_
