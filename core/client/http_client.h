// HttpClient: the HTTP requests of the bulk data client, on libcurl.
//
// One HttpClient wraps one curl easy handle, which keeps its connections alive between
// requests (the export client's kick-off and polls share one; each download thread has its
// own, reused file after file). Failures that are the network's (refused, reset, timed out,
// truncated) are Unavailable, so callers know a retry may help (client/retry.h); a bad URL
// is InvalidArgument; a certificate the client cannot verify is NotSupported (no retry
// fixes it); an interrupt (HttpOptions::interrupt) is Aborted. HTTP error statuses are not
// failures here: they come back in Response for the caller to interpret.
//
// Never logs: requests carry bearer tokens and client assertions.
//
// Thread-safety: one thread at a time per HttpClient; use one per thread.

#ifndef FHIRBULK_CLIENT_HTTP_CLIENT_H_
#define FHIRBULK_CLIENT_HTTP_CLIENT_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/status.h"

namespace fhirbulk {
namespace client {

class Interrupt;

struct HttpOptions {
  long connect_timeout_seconds = 30;
  // A transfer slower than 1 byte/s for this long is abandoned (Unavailable).
  long stall_timeout_seconds = 60;
  // Whole request, for requests whose body is buffered (Fetch); streams have no limit.
  long request_timeout_seconds = 300;
  // Receive rate limit per transfer (bytes/s, 0 = none).
  int64_t max_recv_bytes_per_second = 0;
  std::string ca_file;  // PEM CA bundle instead of the system's
  const Interrupt* interrupt = nullptr;
};

struct Request {
  std::string method = "GET";  // GET, POST, DELETE, HEAD
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::string body;                  // sent with POST
  bool accept_gzip = false;          // Accept-Encoding: gzip (decoded transparently), else identity
  bool follow_redirects = false;     // curl drops Authorization when a redirect changes host
  // Fetch: the largest 2xx body kept in memory (0: HttpClient::kMaxFetchBody); a larger one
  // stops the transfer with ResourceExhausted. Bodies of other statuses are cut (not
  // refused) at kMaxErrorBody: their beginning says enough.
  size_t max_body = 0;
};

struct Response {
  long status = 0;
  // The final response's header fields in order, names lower-cased, values trimmed.
  std::vector<std::pair<std::string, std::string>> headers;
  // Fetch: the body (of a non-2xx response its first kMaxErrorBody). Stream: the body of a
  // non-2xx response only (its first kMaxErrorBody).
  std::string body;
  uint64_t wire_bytes = 0;  // body bytes as received (before gzip decoding)

  // The first value of a header field (name in lower case), or "".
  std::string Header(std::string_view lower_name) const;
  bool HasHeader(std::string_view lower_name) const;
};

class HttpClient {
 public:
  explicit HttpClient(HttpOptions options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // What a server's answer may make the client hold in memory. Kick-off, status, token and
  // SMART configuration answers are small; manifests ask for more (Request::max_body).
  static constexpr size_t kMaxFetchBody = 1u << 20;
  static constexpr size_t kMaxErrorBody = 1u << 20;

  // Sends the request and buffers the whole response body (up to Request::max_body).
  Result<Response> Fetch(const Request& request);

  // Sends the request and hands a 2xx body to `sink` as it arrives (decoded, when gzip),
  // with the response head (status and header fields) already filled in. A non-OK Status
  // from the sink stops the transfer and is returned.
  using Sink = std::function<Status(const Response& head, std::string_view chunk)>;
  Result<Response> Stream(const Request& request, const Sink& sink);

 private:
  Result<Response> Perform(const Request& request, const Sink* sink, size_t max_body);

  HttpOptions options_;
  void* curl_;  // CURL*
};

// RFC 3986 percent-encoding of everything but the unreserved characters (ALPHA DIGIT - . _ ~).
std::string PercentEncode(std::string_view text);

// `reference` resolved against `base` (RFC 3986 §5); absolute references come back as given.
Result<std::string> ResolveUrl(const std::string& base, const std::string& reference);

// True for an absolute http:// or https:// URL with a host.
bool IsHttpUrl(std::string_view url);

}  // namespace client
}  // namespace fhirbulk

#endif  // FHIRBULK_CLIENT_HTTP_CLIENT_H_
