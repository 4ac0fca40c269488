// Server: answers requests to the FHIR endpoint, independent of nginx.
//
// Request handling has two halves, so the nginx event loop never waits on the database:
//   HandleFast()      routing, validation and documents that need no database; returns false
//                     when the request needs HandleBlocking();
//   HandleBlocking()  the database work, run on a thread-pool thread. Each thread keeps its
//                     own connection (libpq connections are single-threaded), reconnects after
//                     a failure, and answers 503 + Retry-After while the database is down.
//
// Thread-safety: a Server is immutable after Create(); both handlers may run concurrently.

#ifndef FHIRBULK_SERVER_SERVER_H_
#define FHIRBULK_SERVER_SERVER_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "auth/access_token.h"
#include "auth/audit.h"
#include "auth/key_ring.h"
#include "db/pg.h"
#include "export/export_request.h"
#include "export/job_store.h"
#include "http/http.h"
#include "server/routes.h"
#include "server/status_cache.h"
#include "util/status.h"

namespace fhirbulk {

struct ServerOptions {
  std::string base_url;  // absolute http(s) URL; a trailing slash is dropped
  std::string conninfo;
  int retry_after_unavailable = 5;  // seconds
  // Where workers write export files (<export_dir>/<job id>/); a cancelled job's directory is
  // renamed away at once so its files stop being served. Empty: the server does not serve
  // exports.
  std::string export_dir;
  int max_active_exports_per_client = 4;  // 0 = unlimited; beyond it a kick-off gets 429
  // Retained exports per client (in progress, or completed and not expired): at this count or
  // this many bytes of files a kick-off gets 429 + Retry-After (CreateJobOptions); 0 = no limit.
  int max_retained_exports_per_client = 20;
  int64_t max_retained_bytes_per_client = 10LL << 30;
  // Free space of the export directory's volume (statvfs) below which a kick-off gets 503 +
  // Retry-After: bytes and percent of the volume; 0 = no check.
  int64_t min_free_bytes = 1LL << 30;
  int min_free_percent = 5;
  bool strict_kickoff_headers = true;  // require Accept: fhir+json and Prefer: respond-async
  int typefilter_max_terms = 5000;     // KickoffLimits::max_type_filter_terms
  int poll_retry_after = 2;            // Retry-After (s) on 202 status answers
  int min_poll_interval_ms = 1000;     // polls of a running job faster than this: 429

  // SMART Backend Services (core/auth/). Off: every request acts as client "anonymous" with
  // read access to everything (for tests and closed networks; `make up` turns it on).
  bool auth_enabled = false;
  std::string token_key_file;        // KeyRing file signing access tokens; required when enabled
  int token_lifetime_seconds = 300;  // capped at 300
  bool jwks_allow_insecure = false;  // clients' jwks_url may be http:// on private addresses
  // Manifest file URLs carry an expiring signature (auth/signed_url.h) instead of needing the
  // bearer token (requiresAccessToken false).
  bool signed_urls = false;
  std::string signed_url_key_file;
  // Signed URLs are capability URLs: IG 3.0.0 has them expire like bearer tokens (default at
  // most 5 minutes); at most kMaxSignedUrlLifetimeSeconds.
  int signed_url_lifetime_seconds = 300;
};

class Server {
 public:
  static Result<std::unique_ptr<Server>> Create(ServerOptions options);

  bool HandleFast(const HttpRequest& request, HttpResponse* response) const;
  void HandleBlocking(const HttpRequest& request, HttpResponse* response) const;

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
  void HandleToken(const HttpRequest& request, HttpResponse* response) const;
  // The caller of a protected route: from the bearer token, or "anonymous" with every read
  // scope when authorization is off. On failure *response is the 401.
  std::optional<Principal> Authenticate(const HttpRequest& request, HttpResponse* response) const;
  void Audit(const HttpRequest& request, const char* action, const std::string& client_id,
             std::string target, const HttpResponse& response, std::string detail) const;
  void HandleKickoff(const HttpRequest& request, const Route& route, HttpResponse* response) const;
  void HandleStatus(const HttpRequest& request, const Route& route, HttpResponse* response) const;
  void HandleCancel(const HttpRequest& request, const Route& route, HttpResponse* response) const;
  // The caller's job, when it is theirs (NotFound otherwise, as if it did not exist) and their
  // token still covers what it exports (PermissionDenied).
  Result<JobInfo> AccessibleJob(PgConnection* conn, const std::string& job_id,
                                const Principal& principal, ExportRequest* request) const;
  // A poll answered from status_cache_ (true), or false to ask the database.
  bool StatusFromCache(const Route& route, const Principal& principal, HttpResponse* resp) const;
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
  std::shared_ptr<const KeyRing> url_keys_;
  AuditLog* audit_ = nullptr;
  std::unique_ptr<StatusCache> status_cache_;
};

}  // namespace fhirbulk

#endif  // FHIRBULK_SERVER_SERVER_H_
