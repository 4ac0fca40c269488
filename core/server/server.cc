#include "server/server.h"

#include <chrono>
#include <functional>

#include "db/migrate.h"
#include "server/capability.h"
#include "server/outcome.h"

namespace fhirbulk {

namespace {

constexpr const char* kVersion = "0.1.0";

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
constexpr const char* kSetStatementTimeout = "SET statement_timeout = 10000";

thread_local ThreadConnection t_conn;

bool IsUnavailable(const Status& s) { return s.code() == Status::Code::kUnavailable; }

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
  std::unique_ptr<Server> server(new Server(std::move(options)));
  const std::string& u = server->options_.base_url;
  server->base_path_ = path_start == std::string::npos ? "" : u.substr(path_start);
  CapabilityOptions cap;
  cap.base_url = u;
  cap.software_version = kVersion;
  server->capability_json_ = CapabilityStatementJson(cap);
  return server;
}

bool Server::HandleFast(const HttpRequest& req, HttpResponse* resp) const {
  if (req.path == "/metadata") {
    if (req.method != HttpMethod::kGet && req.method != HttpMethod::kHead) {
      *resp = OutcomeResponse(405, "not-supported", "/metadata supports GET and HEAD only");
      resp->AddHeader("Allow", "GET, HEAD");
      return true;
    }
    resp->status = 200;
    resp->content_type = kFhirJson;
    resp->body = capability_json_;
    return true;
  }
  if (req.path == "/_health") {
    if (req.method != HttpMethod::kGet && req.method != HttpMethod::kHead) {
      *resp = OutcomeResponse(405, "not-supported", "/_health supports GET and HEAD only");
      resp->AddHeader("Allow", "GET, HEAD");
      return true;
    }
    return false;  // needs the database
  }
  std::string diag = "no route for ";
  diag += req.path.empty() ? "/" : std::string(req.path);
  diag += " under the FHIR base";
  *resp = OutcomeResponse(404, "not-found", diag);
  return true;
}

void Server::HandleBlocking(const HttpRequest& req, HttpResponse* resp) const {
  if (req.path == "/_health") {
    HandleHealth(resp);
    return;
  }
  *resp = OutcomeResponse(500, "exception", "request has no blocking handler");
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
  resp->body = "{\"status\":\"pass\",\"database\":\"up\",\"schemaVersion\":" +
               std::to_string(version) + "}";
  resp->AddHeader("Cache-Control", "no-store");
}

const char* SoftwareVersion() { return kVersion; }

}  // namespace fhirbulk
