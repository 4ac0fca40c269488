#include "auth/jwks_fetcher.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <memory>
#include <mutex>

namespace fhirbulk {
namespace {

constexpr size_t kMaxBody = size_t{64} * 1024;
constexpr int kDefaultMaxAge = 300;
constexpr int kMaxMaxAge = 3600;
// A fetch holds a pool thread: a slow host gets 3 s in all (the token endpoint also caps how
// many fetches run at once and how often one client's set is fetched).
constexpr long kFetchTimeoutMs = 3000;

struct CurlFree {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistFree {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

struct Transfer {
  std::string body;
  std::string cache_control;
  bool too_large = false;
  bool blocked_address = false;
  bool allow_insecure = false;
};

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  if (t->body.size() + size * n > kMaxBody) {
    t->too_large = true;
    return 0;  // aborts the transfer
  }
  t->body.append(data, size * n);
  return size * n;
}

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string_view line(data, size * n);
  constexpr std::string_view kName = "cache-control:";
  if (line.size() > kName.size()) {
    bool match = true;
    for (size_t i = 0; i < kName.size() && match; i++) {
      match = std::tolower(static_cast<unsigned char>(line[i])) == kName[i];
    }
    if (match) t->cache_control.assign(line.substr(kName.size()));
  }
  return size * n;
}

bool PublicV4(const in_addr& a) {
  uint32_t ip = ntohl(a.s_addr);
  auto in = [ip](uint32_t net, int bits) { return (ip >> (32 - bits)) == (net >> (32 - bits)); };
  return !(in(0x00000000, 8) || in(0x0A000000, 8) || in(0x7F000000, 8) || in(0xA9FE0000, 16) ||
           in(0xAC100000, 12) || in(0xC0A80000, 16) || in(0x64400000, 10) || in(0xE0000000, 4) ||
           in(0xF0000000, 4) || in(0xC0000000, 24) ||  // IETF protocol assignments
           in(0xC6120000, 15));                        // benchmarking, used inside networks
}

bool PublicAddress(const sockaddr* sa) {
  if (sa->sa_family == AF_INET) return PublicV4(reinterpret_cast<const sockaddr_in*>(sa)->sin_addr);
  if (sa->sa_family != AF_INET6) return false;
  const in6_addr& a = reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr;
  const unsigned char* b = a.s6_addr;
  // Addresses that embed an IPv4 address reach that address (NAT64 gateways translate
  // 64:ff9b::/96, 6to4 relays 2002::/16): judge the embedded one.
  static const unsigned char kNat64[12] = {0x00, 0x64, 0xff, 0x9b};
  in_addr v4;
  if (IN6_IS_ADDR_V4MAPPED(&a) || IN6_IS_ADDR_V4COMPAT(&a) || std::memcmp(b, kNat64, 12) == 0) {
    std::memcpy(&v4, b + 12, 4);
    return PublicV4(v4);
  }
  if (b[0] == 0x20 && b[1] == 0x02) {
    std::memcpy(&v4, b + 2, 4);
    return PublicV4(v4);
  }
  if (std::memcmp(b, kNat64, 4) == 0 && b[4] == 0 && b[5] == 1) return false;  // 64:ff9b:1::/48
  return !(IN6_IS_ADDR_LOOPBACK(&a) || IN6_IS_ADDR_UNSPECIFIED(&a) || IN6_IS_ADDR_LINKLOCAL(&a) ||
           IN6_IS_ADDR_SITELOCAL(&a) || IN6_IS_ADDR_MULTICAST(&a) ||
           (a.s6_addr[0] & 0xFE) == 0xFC);  // unique local fc00::/7
}

curl_socket_t OnOpenSocket(void* user, curlsocktype, curl_sockaddr* addr) {
  auto* t = static_cast<Transfer*>(user);
  if (!t->allow_insecure && !PublicAddress(&addr->addr)) {
    t->blocked_address = true;
    return CURL_SOCKET_BAD;
  }
  return ::socket(addr->family, addr->socktype, addr->protocol);
}

}  // namespace

void FetchJwksGlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

int JwksMaxAge(std::string_view cc) {
  std::string lower;
  for (char c : cc) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower.find("no-store") != std::string::npos || lower.find("no-cache") != std::string::npos) {
    return 0;
  }
  size_t p = lower.find("max-age=");
  if (p == std::string::npos) return kDefaultMaxAge;
  p += 8;
  long v = 0;
  size_t digits = 0;
  while (p < lower.size() && std::isdigit(static_cast<unsigned char>(lower[p])) && digits < 10) {
    v = v * 10 + (lower[p++] - '0');
    digits++;
  }
  if (digits == 0) return kDefaultMaxAge;
  return static_cast<int>(std::min<long>(v, kMaxMaxAge));
}

Result<FetchedJwks> FetchJwks(const std::string& url, bool allow_insecure) {
  FetchJwksGlobalInit();
  bool https = url.rfind("https://", 0) == 0;
  if (!https && !(allow_insecure && url.rfind("http://", 0) == 0)) {
    return Status::InvalidArgument("JWKS URL scheme not allowed");
  }
  std::unique_ptr<CURL, CurlFree> curl(curl_easy_init());
  if (!curl) return Status::Internal("curl_easy_init failed");
  Transfer t;
  t.allow_insecure = allow_insecure;
  std::unique_ptr<curl_slist, SlistFree> headers(
      curl_slist_append(nullptr, "Accept: application/json"));
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, allow_insecure ? "http,https" : "https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  // A proxy from the environment would make the address check judge the proxy, not the host.
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, kFetchTimeoutMs);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, OnOpenSocket);
  curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, &t);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "ngx_fhir_bulk");
  CURLcode rc = curl_easy_perform(c);
  if (t.blocked_address) return Status::PermissionDenied("JWKS URL resolves to a private address");
  if (t.too_large) return Status::Unavailable("JWKS larger than 64 KiB");
  if (rc != CURLE_OK)
    return Status::Unavailable(std::string("JWKS fetch: ") + curl_easy_strerror(rc));
  long code = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  if (code != 200) return Status::Unavailable("JWKS fetch: HTTP " + std::to_string(code));
  FetchedJwks out;
  out.body = std::move(t.body);
  out.max_age_seconds = JwksMaxAge(t.cache_control);
  return out;
}

}  // namespace fhirbulk
