// Fetches a client's JWK Set from its registered URL (SMART section 3.4).
//
// GET with Accept: application/json; https only unless allow_insecure (then http too); no
// redirects; 2 s to connect, 3 s in all; at most 64 KiB (ParseJwks then allows 32 keys). Unless
// allow_insecure, the address actually connected to must be public: loopback, private, link-local,
// CGNAT, multicast and unspecified addresses (v4 and v6, and IPv6 forms that embed such an IPv4
// address: NAT64, 6to4, v4-compatible) are refused, so a registered URL cannot make the server
// probe its own network (SSRF). The cache lifetime comes from Cache-Control (max-age, or 0 for
// no-store/no-cache), 300 s when absent, never more than 3600 s; the token endpoint keeps a
// set at least 60 s whatever this says (TokenEndpointOptions::jwks_min_cache_seconds).
//
// Thread-safety: each call uses its own curl handle; call curl_global_init() once first
// (FetchJwksGlobalInit) while the process is single-threaded.

#ifndef FHIRBULK_AUTH_JWKS_FETCHER_H_
#define FHIRBULK_AUTH_JWKS_FETCHER_H_

#include <string>
#include <string_view>

#include "util/status.h"

namespace fhirbulk {

struct FetchedJwks {
  std::string body;
  int max_age_seconds = 300;
};

void FetchJwksGlobalInit();

// Unavailable for network failures and non-200 answers, InvalidArgument for bad URLs.
Result<FetchedJwks> FetchJwks(const std::string& url, bool allow_insecure);

// The cache lifetime a Cache-Control value allows, bounded as above; exposed for tests.
int JwksMaxAge(std::string_view cache_control);

}  // namespace fhirbulk

#endif  // FHIRBULK_AUTH_JWKS_FETCHER_H_
