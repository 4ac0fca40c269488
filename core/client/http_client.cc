#include "client/http_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <mutex>

#include "client/interrupt.h"
#include "util/strings.h"
#include "util/version.h"

namespace fhirbulk {
namespace client {

namespace {

struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using Slist = std::unique_ptr<curl_slist, SlistDeleter>;

struct UrlDeleter {
  void operator()(CURLU* u) const { curl_url_cleanup(u); }
};

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// What one transfer's callbacks share.
struct Transfer {
  CURL* curl = nullptr;
  Response* response = nullptr;
  const HttpClient::Sink* sink = nullptr;
  size_t max_body = 0;
  bool status_known = false;
  bool to_sink = false;
  bool body_too_large = false;
  Status sink_status;
  const Interrupt* interrupt = nullptr;
};

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string_view line(data, size * n);
  if (line.rfind("HTTP/", 0) == 0) {
    // A new response (after a redirect or 100 Continue): only the last one counts.
    t->response->headers.clear();
    return size * n;
  }
  size_t colon = line.find(':');
  if (colon != std::string_view::npos && colon > 0) {
    std::string name(line.substr(0, colon));
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    t->response->headers.emplace_back(std::move(name),
                                      std::string(Trim(line.substr(colon + 1), " \t\r\n")));
  }
  return size * n;
}

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t len = size * n;
  if (!t->status_known) {
    long code = 0;
    curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &code);
    t->status_known = true;
    t->response->status = code;
    t->to_sink = t->sink != nullptr && code >= 200 && code < 300;
  }
  if (t->to_sink) {
    t->sink_status = (*t->sink)(*t->response, std::string_view(data, len));
    return t->sink_status.ok() ? len : 0;  // 0 stops the transfer (CURLE_WRITE_ERROR)
  }
  std::string& body = t->response->body;
  const bool success = t->response->status >= 200 && t->response->status < 300;
  const size_t limit = success ? t->max_body : std::min(t->max_body, HttpClient::kMaxErrorBody);
  if (body.size() + len > limit) {
    if (t->sink != nullptr || !success) {  // an error body: its beginning says enough
      body.append(data, limit - body.size());
      return len;
    }
    t->body_too_large = true;
    return 0;
  }
  body.append(data, len);
  return len;
}

int OnProgress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(user);
  return t->interrupt != nullptr && t->interrupt->triggered() ? 1 : 0;
}

Status CurlFailure(CURLcode rc, const char* errbuf, const std::string& url) {
  std::string msg = std::string(url) + ": " + (errbuf[0] ? errbuf : curl_easy_strerror(rc));
  switch (rc) {
    case CURLE_ABORTED_BY_CALLBACK:
      return Status::Aborted("interrupted");
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
      return Status::InvalidArgument(msg);
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ENGINE_NOTFOUND:
      // retrying will not fix a certificate
      return Status::NotSupported(msg);
    default:
      return Status::Unavailable(msg);
  }
}

}  // namespace

std::string Response::Header(std::string_view lower_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lower_name) return value;
  }
  return "";
}

bool Response::HasHeader(std::string_view lower_name) const {
  for (const auto& h : headers) {
    if (h.first == lower_name) return true;
  }
  return false;
}

HttpClient::HttpClient(HttpOptions options) : options_(std::move(options)) {
  GlobalInit();
  curl_ = curl_easy_init();
}

HttpClient::~HttpClient() {
  if (curl_ != nullptr) curl_easy_cleanup(static_cast<CURL*>(curl_));
}

Result<Response> HttpClient::Fetch(const Request& request) {
  return Perform(request, nullptr, request.max_body != 0 ? request.max_body : kMaxFetchBody);
}

Result<Response> HttpClient::Stream(const Request& request, const Sink& sink) {
  return Perform(request, &sink, kMaxErrorBody);
}

Result<Response> HttpClient::Perform(const Request& request, const Sink* sink, size_t max_body) {
  CURL* curl = static_cast<CURL*>(curl_);
  if (curl == nullptr) return Status::Internal("curl_easy_init failed");
  if (!IsHttpUrl(request.url)) {
    return Status::InvalidArgument("not an http(s) URL: '" + request.url + "'");
  }
  // Reset clears the previous request's options but keeps the connection cache.
  curl_easy_reset(curl);

  Response response;
  Transfer t;
  t.curl = curl;
  t.response = &response;
  t.sink = sink;
  t.max_body = max_body;
  t.interrupt = options_.interrupt;
  char errbuf[CURL_ERROR_SIZE] = {0};

  Slist headers;
  for (const std::string& h : request.headers) {
    headers.reset(curl_slist_append(headers.release(), h.c_str()));
  }
  // No "Expect: 100-continue" round trip for small POST bodies.
  headers.reset(curl_slist_append(headers.release(), "Expect:"));

  static const std::string kUserAgent = std::string("fhir-bulk/") + FHIRBULK_VERSION;
  curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(curl, CURLOPT_USERAGENT, kUserAgent.c_str());
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, options_.connect_timeout_seconds);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, options_.stall_timeout_seconds);
  if (sink == nullptr) curl_easy_setopt(curl, CURLOPT_TIMEOUT, options_.request_timeout_seconds);
  if (sink != nullptr && options_.max_recv_bytes_per_second > 0) {
    curl_easy_setopt(curl, CURLOPT_MAX_RECV_SPEED_LARGE,
                     static_cast<curl_off_t>(options_.max_recv_bytes_per_second));
  }
  if (!options_.ca_file.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, options_.ca_file.c_str());
  // "identity" still enables decoding, should a server compress anyway.
  curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, request.accept_gzip ? "gzip" : "identity");
  if (request.follow_redirects) {
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 5L);
  }
  if (request.method == "POST") {
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request.body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(request.body.size()));
  } else if (request.method == "HEAD") {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else if (request.method != "GET") {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, OnProgress);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &t);

  CURLcode rc = curl_easy_perform(curl);
  // The header list must outlive the transfer; detach it before `headers` goes.
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, nullptr);
  if (rc == CURLE_WRITE_ERROR && !t.sink_status.ok()) return t.sink_status;
  if (rc == CURLE_WRITE_ERROR && t.body_too_large) {
    return Status::ResourceExhausted(request.url + ": response larger than " +
                                     std::to_string(max_body) + " bytes");
  }
  if (rc != CURLE_OK) return CurlFailure(rc, errbuf, request.url);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response.status);
  curl_off_t wire = 0;
  curl_easy_getinfo(curl, CURLINFO_SIZE_DOWNLOAD_T, &wire);
  response.wire_bytes = static_cast<uint64_t>(wire);
  return response;
}

std::string PercentEncode(std::string_view text) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

Result<std::string> ResolveUrl(const std::string& base, const std::string& reference) {
  GlobalInit();
  std::unique_ptr<CURLU, UrlDeleter> u(curl_url());
  if (!u) return Status::Internal("curl_url failed");
  if (curl_url_set(u.get(), CURLUPART_URL, base.c_str(), 0) != CURLUE_OK ||
      curl_url_set(u.get(), CURLUPART_URL, reference.c_str(), 0) != CURLUE_OK) {
    return Status::InvalidArgument("cannot resolve '" + reference + "' against '" + base + "'");
  }
  char* out = nullptr;
  if (curl_url_get(u.get(), CURLUPART_URL, &out, 0) != CURLUE_OK) {
    return Status::InvalidArgument("cannot resolve '" + reference + "'");
  }
  std::string resolved(out);
  curl_free(out);
  return resolved;
}

bool IsHttpUrl(std::string_view url) {
  size_t rest;
  if (url.rfind("http://", 0) == 0) {
    rest = 7;
  } else if (url.rfind("https://", 0) == 0) {
    rest = 8;
  } else {
    return false;
  }
  return url.size() > rest && url[rest] != '/' && url[rest] != '?' && url[rest] != '#';
}

}  // namespace client
}  // namespace fhirbulk
