// HttpRequest and HttpResponse: the C++ view of one request to the FHIR endpoint and of its
// answer, independent of nginx (the C ABI in c_api.cc converts from and to the C structs).

#ifndef FHIRBULK_HTTP_HTTP_H_
#define FHIRBULK_HTTP_HTTP_H_

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fhirbulk {

enum class HttpMethod { kOther, kGet, kHead, kPost, kDelete, kPut };

struct HttpRequest {
  HttpMethod method = HttpMethod::kGet;
  std::string_view path;   // below the base: "" or "/..."
  std::string_view query;  // raw, undecoded, without '?'
  std::string_view accept;
  std::string_view prefer;
  std::string_view content_type;
  std::string_view body;
  // The Authorization header ("Bearer <token>"), empty when absent.
  std::string_view authorization;
  // The peer address, for the audit trail.
  std::string_view remote_addr;
};

struct HttpResponse {
  int status = 200;
  std::string content_type;  // empty: no body
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  // For the server's error log, never for the client: internal details such as database
  // errors (the client gets a generic diagnostics text instead).
  std::string log_message;
  // Hold the answer this long before sending it (the module arms a timer; no thread waits).
  int delay_ms = 0;

  void AddHeader(std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
  }
};

constexpr const char* kFhirJson = "application/fhir+json";

}  // namespace fhirbulk

#endif  // FHIRBULK_HTTP_HTTP_H_
