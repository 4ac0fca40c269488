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
#include <string>

#include "db/pg.h"
#include "export/export_request.h"
#include "server/http.h"
#include "server/routes.h"
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
  bool strict_kickoff_headers = true;     // require Accept: fhir+json and Prefer: respond-async
  int poll_retry_after = 2;               // Retry-After (s) on 202 status answers
  bool requires_access_token = false;     // the manifest's requiresAccessToken
  int min_poll_interval_ms = 1000;        // polls of a running job faster than this: 429
};

class Server {
 public:
  static Result<std::unique_ptr<Server>> Create(ServerOptions options);

  bool HandleFast(const HttpRequest& request, HttpResponse* response) const;
  void HandleBlocking(const HttpRequest& request, HttpResponse* response) const;

  const std::string& base_url() const { return options_.base_url; }
  // The path part of base_url ("/fhir"), or "" for a base at the root.
  const std::string& base_path() const { return base_path_; }

 private:
  explicit Server(ServerOptions options);

  // Runs fn(conn) on this thread's connection. A connection-level failure on a reused
  // connection is retried once on a fresh one (the server may have restarted since).
  Status WithConnection(const std::function<Status(PgConnection*)>& fn) const;

  void HandleHealth(HttpResponse* response) const;
  void HandleKickoff(const HttpRequest& request, const Route& route, HttpResponse* response) const;
  void HandleStatus(const HttpRequest& request, const Route& route, HttpResponse* response) const;
  void HandleCancel(const HttpRequest& request, const Route& route, HttpResponse* response) const;
  Result<ExportRequest> ParseKickoff(const HttpRequest& request, const Route& route) const;
  // Checks what only the database knows: the Group exists (404), the `patient` references
  // exist and, at group level, are members (400).
  Status ValidateAgainstDatabase(PgConnection* conn, const ExportRequest& request) const;
  std::string ClientId(const HttpRequest& request) const;

  ServerOptions options_;
  std::string base_path_;
  std::string capability_json_;
};

}  // namespace fhirbulk

#endif  // FHIRBULK_SERVER_SERVER_H_
