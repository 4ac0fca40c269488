// The C ABI of fhirbulk.h over Server. Every entry point catches everything: no C++
// exception may unwind into nginx's C frames.

#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include "fhirbulk/fhirbulk.h"
#include "http/outcome.h"
#include "server/file_access.h"
#include "server/metrics.h"
#include "server/request_threads.h"
#include "server/server.h"
#include "util/log_escape.h"
#include "util/version.h"

struct fhirbulk_server_s {
  std::unique_ptr<fhirbulk::Server> server;
};

struct fhirbulk_files_s {
  std::unique_ptr<fhirbulk::FileAccess> access;
};

// The continuation between the two halves: the parsed request and the server to finish it.
struct fhirbulk_metrics_s {
  std::unique_ptr<fhirbulk::MetricsSource> source;
};

struct fhirbulk_pending_s {
  const fhirbulk::Server* server;
  std::unique_ptr<fhirbulk::PendingRequest> request;
};

namespace {

using fhirbulk::HttpMethod;
using fhirbulk::HttpRequest;
using fhirbulk::HttpResponse;

std::string ToString(fhirbulk_str_t s) {
  return s.data != nullptr ? std::string(s.data, s.len) : std::string();
}
std::string_view ToView(fhirbulk_str_t s) {
  return s.data != nullptr ? std::string_view(s.data, s.len) : std::string_view();
}

void WriteError(char* err, size_t err_len, const std::string& msg) {
  if (err == nullptr || err_len == 0) return;
  size_t n = msg.size() < err_len - 1 ? msg.size() : err_len - 1;
  std::memcpy(err, msg.data(), n);
  err[n] = '\0';
}

char* CopyString(const std::string& s) {
  char* p = static_cast<char*>(std::malloc(s.size() + 1));
  if (p == nullptr) return nullptr;
  std::memcpy(p, s.data(), s.size());
  p[s.size()] = '\0';
  return p;
}

HttpRequest FromC(const fhirbulk_request_t* r) {
  HttpRequest req;
  switch (r->method) {
    case FHIRBULK_METHOD_GET:
      req.method = HttpMethod::kGet;
      break;
    case FHIRBULK_METHOD_HEAD:
      req.method = HttpMethod::kHead;
      break;
    case FHIRBULK_METHOD_POST:
      req.method = HttpMethod::kPost;
      break;
    case FHIRBULK_METHOD_DELETE:
      req.method = HttpMethod::kDelete;
      break;
    case FHIRBULK_METHOD_PUT:
      req.method = HttpMethod::kPut;
      break;
    default:
      req.method = HttpMethod::kOther;
      break;
  }
  req.path = ToView(r->path);
  req.query = ToView(r->query);
  req.accept = ToView(r->accept);
  req.prefer = ToView(r->prefer);
  req.content_type = ToView(r->content_type);
  req.body = ToView(r->body);
  req.authorization = ToView(r->authorization);
  req.remote_addr = ToView(r->remote_addr);
  return req;
}

// A last-resort answer that needs no allocation beyond a static string.
void InternalError(fhirbulk_response_t* out) {
  static const char kBody[] =
      "{\"resourceType\":\"OperationOutcome\",\"issue\":[{\"severity\":\"error\","
      "\"code\":\"exception\",\"diagnostics\":\"internal error\"}]}";
  std::memset(out, 0, sizeof(*out));
  out->status = 500;
  out->content_type = CopyString(fhirbulk::kFhirJson);
  out->body = CopyString(kBody);
  out->body_len = out->body != nullptr ? sizeof(kBody) - 1 : 0;
}

void ToC(const HttpResponse& r, fhirbulk_response_t* out) {
  std::memset(out, 0, sizeof(*out));
  out->status = r.status;
  out->delay_ms = r.delay_ms;
  if (!r.content_type.empty()) {
    out->content_type = CopyString(r.content_type);
    out->body = CopyString(r.body);
    if (out->content_type == nullptr || out->body == nullptr) throw std::bad_alloc();
    out->body_len = r.body.size();
  }
  if (!r.log_message.empty()) {
    // Messages quote client input: no control byte reaches the error log (util/log_escape.h).
    out->log_message = CopyString(fhirbulk::LogSanitize(r.log_message));
    if (out->log_message == nullptr) throw std::bad_alloc();
  }
  for (const auto& h : r.headers) {
    if (out->nheaders == FHIRBULK_MAX_HEADERS) break;
    fhirbulk_header_t& dst = out->headers[out->nheaders++];
    dst.name = CopyString(h.first);
    dst.value = CopyString(h.second);
    if (dst.name == nullptr || dst.value == nullptr) throw std::bad_alloc();
  }
}

}  // namespace

extern "C" {

fhirbulk_server_t* fhirbulk_server_create(const fhirbulk_server_options_t* options, char* err,
                                          size_t err_len) {
  try {
    // Every field is the module's merged value (it fills in fhirbulk/defaults.h); zero where
    // the header says "0 = default" keeps ServerOptions' default, the same number.
    fhirbulk::ServerOptions o;
    o.base_url = ToString(options->base_url);
    o.conninfo = ToString(options->conninfo);
    o.retry_after_unavailable = options->retry_after_unavailable;
    o.export_dir = ToString(options->export_dir);
    o.max_active_exports_per_client = options->max_active_exports;
    o.max_retained_exports_per_client = options->max_retained_exports;
    o.max_retained_bytes_per_client = options->max_retained_bytes;
    o.min_free_bytes = options->min_free_bytes;
    o.min_free_percent = options->min_free_percent;
    o.strict_kickoff_headers = options->strict_kickoff_headers != 0;
    if (options->typefilter_max_terms > 0) o.typefilter_max_terms = options->typefilter_max_terms;
    o.poll_retry_after = options->poll_retry_after;
    o.min_poll_interval_ms = options->min_poll_interval_ms;
    if (options->manifest_page_size > 0) o.manifest_page_size = options->manifest_page_size;
    o.operator_api = options->operator_api != 0;
    o.auth_enabled = options->auth_enabled != 0;
    o.token_key_file = ToString(options->token_key_file);
    if (options->token_lifetime > 0) o.token_lifetime_seconds = options->token_lifetime;
    o.jwks_allow_insecure = options->jwks_allow_insecure != 0;
    o.signed_url_key_file = ToString(options->signed_url_key_file);
    o.signed_urls = !o.signed_url_key_file.empty();
    if (options->signed_url_lifetime > 0) {
      o.signed_url_lifetime_seconds = options->signed_url_lifetime;
    }
    auto server = fhirbulk::Server::Create(std::move(o));
    if (!server.ok()) {
      WriteError(err, err_len, server.status().message());
      return nullptr;
    }
    auto* handle = new fhirbulk_server_s;
    handle->server = std::move(server).value();
    return handle;
  } catch (const std::exception& e) {
    WriteError(err, err_len, e.what());
  } catch (...) {
    WriteError(err, err_len, "unknown error");
  }
  return nullptr;
}

void fhirbulk_server_destroy(fhirbulk_server_t* server) { delete server; }

fhirbulk_str_t fhirbulk_server_base_path(const fhirbulk_server_t* server) {
  const std::string& p = server->server->base_path();
  return fhirbulk_str_t{p.data(), p.size()};
}

fhirbulk_dispatch_e fhirbulk_handle_fast(const fhirbulk_server_t* server,
                                         const fhirbulk_request_t* request,
                                         fhirbulk_response_t* response,
                                         fhirbulk_pending_t** pending) {
  *pending = nullptr;
  try {
    HttpResponse r;
    fhirbulk_metric_tag_t metric{};
    std::unique_ptr<fhirbulk::PendingRequest> next =
        server->server->HandleFast(FromC(request), &r, &metric);
    if (next != nullptr) {
      *pending = new fhirbulk_pending_s{server->server.get(), std::move(next)};
      response->metric = metric;
      return FHIRBULK_NEEDS_BLOCKING;
    }
    ToC(r, response);
    response->metric = metric;
  } catch (...) {
    fhirbulk_response_free(response);
    InternalError(response);
  }
  return FHIRBULK_DONE;
}

void fhirbulk_pending_run(const fhirbulk_pending_t* pending, fhirbulk_response_t* response) {
  try {
    fhirbulk::NoteRequestThread();
    HttpResponse r;
    fhirbulk_metric_tag_t metric{};
    pending->server->Continue(*pending->request, &r, &metric);
    ToC(r, response);
    response->metric = metric;
  } catch (...) {
    fhirbulk_response_free(response);
    InternalError(response);
  }
}

void fhirbulk_pending_free(fhirbulk_pending_t* pending) { delete pending; }

void fhirbulk_error_response(int status, const char* issue_code, const char* diagnostics,
                             int retry_after, fhirbulk_response_t* response) {
  try {
    HttpResponse r = fhirbulk::OutcomeResponse(status, issue_code ? issue_code : "exception",
                                               diagnostics ? diagnostics : "");
    if (retry_after > 0) r.AddHeader("Retry-After", std::to_string(retry_after));
    ToC(r, response);
  } catch (...) {
    fhirbulk_response_free(response);
    InternalError(response);
  }
}

void fhirbulk_response_free(fhirbulk_response_t* response) {
  if (response == nullptr) return;
  std::free(response->content_type);
  std::free(response->body);
  std::free(response->log_message);
  for (int i = 0; i < response->nheaders; i++) {
    std::free(response->headers[i].name);
    std::free(response->headers[i].value);
  }
  std::memset(response, 0, sizeof(*response));
}

fhirbulk_files_t* fhirbulk_files_create(const fhirbulk_files_options_t* options, char* err,
                                        size_t err_len) {
  try {
    fhirbulk::FileAccessOptions o;
    o.auth_enabled = options->auth_enabled != 0;
    o.token_key_file = ToString(options->token_key_file);
    o.signed_url_key_file = ToString(options->signed_url_key_file);
    o.export_dir = ToString(options->export_dir);
    o.conninfo = ToString(options->conninfo);
    if (options->token_lifetime > 0) o.token_lifetime_seconds = options->token_lifetime;
    auto access = fhirbulk::FileAccess::Create(std::move(o));
    if (!access.ok()) {
      WriteError(err, err_len, access.status().message());
      return nullptr;
    }
    auto* handle = new fhirbulk_files_s;
    handle->access = std::move(access).value();
    return handle;
  } catch (const std::exception& e) {
    WriteError(err, err_len, e.what());
  } catch (...) {
    WriteError(err, err_len, "unknown error");
  }
  return nullptr;
}

void fhirbulk_files_destroy(fhirbulk_files_t* files) { delete files; }

int fhirbulk_files_split_path(fhirbulk_str_t rel, fhirbulk_str_t* job_id,
                              fhirbulk_str_t* file_name) {
  std::string_view job, file;
  if (!fhirbulk::SplitExportFilePath(ToView(rel), &job, &file)) return 0;
  *job_id = fhirbulk_str_t{job.data(), job.size()};
  *file_name = fhirbulk_str_t{file.data(), file.size()};
  return 1;
}

int fhirbulk_files_authorize(const fhirbulk_files_t* files, fhirbulk_str_t job_id,
                             fhirbulk_str_t file_name, fhirbulk_str_t authorization,
                             fhirbulk_str_t query, char* client, size_t client_len,
                             fhirbulk_response_t* response) {
  try {
    std::string who;
    HttpResponse denial;
    bool ok = files->access->Authorize(ToView(job_id), ToView(file_name), ToView(authorization),
                                       ToView(query), &who, &denial);
    WriteError(client, client_len, who);
    if (!ok) ToC(denial, response);
    return ok ? 1 : 0;
  } catch (...) {
    WriteError(client, client_len, "");
    fhirbulk_response_free(response);
    InternalError(response);
    return 0;
  }
}

void fhirbulk_files_audit(const fhirbulk_files_t* files, const char* client, fhirbulk_str_t target,
                          int status, fhirbulk_str_t remote_addr) {
  try {
    files->access->AuditDownload(client ? client : "", ToString(target), status,
                                 ToString(remote_addr), "");
  } catch (...) {
    // An audit event that cannot even be queued is not worth failing a download for.
  }
}

int fhirbulk_wait_for_request_threads(int timeout_ms) {
  try {
    return fhirbulk::WaitForRequestThreadsToExit(std::chrono::milliseconds(timeout_ms));
  } catch (...) {
    return -1;
  }
}

int fhirbulk_metric_code_index(int status) { return fhirbulk::MetricCodeIndex(status); }

fhirbulk_metrics_t* fhirbulk_metrics_create(fhirbulk_str_t conninfo, char* err, size_t err_len) {
  try {
    if (conninfo.len == 0) {
      WriteError(err, err_len, "a metrics location needs a database connection string");
      return nullptr;
    }
    auto* m = new fhirbulk_metrics_s;
    m->source = std::make_unique<fhirbulk::MetricsSource>(ToString(conninfo));
    return m;
  } catch (...) {
    WriteError(err, err_len, "out of memory");
    return nullptr;
  }
}

void fhirbulk_metrics_destroy(fhirbulk_metrics_t* metrics) { delete metrics; }

void fhirbulk_metrics_render(const fhirbulk_metrics_t* metrics, const fhirbulk_counters_t* counters,
                             fhirbulk_response_t* response) {
  try {
    fhirbulk::NoteRequestThread();
    ToC(metrics->source->Render(*counters), response);
  } catch (...) {
    fhirbulk_response_free(response);
    InternalError(response);
  }
}

const char* fhirbulk_version(void) { return FHIRBULK_VERSION; }

}  // extern "C"
