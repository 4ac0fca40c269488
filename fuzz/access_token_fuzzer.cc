// Bearer tokens: the Authorization header as a request brings it (BearerToken) and the
// access token's verification with a fixed key ring (VerifyAccessToken: JWS split, base64url,
// header and claims JSON, MAC, times). Input: the Authorization header value.

#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "auth/access_token.h"
#include "auth/key_ring.h"

using namespace fhirbulk;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const KeyRing* ring = [] {
    auto r = KeyRing::Parse(
        "k1 0123456789abcdef0123456789abcdef0123456789abcdef\n"
        "k0 fedcba9876543210fedcba9876543210fedcba9876543210\n");
    if (!r.ok()) std::abort();
    return new KeyRing(std::move(*r));
  }();
  const std::string_view header(reinterpret_cast<const char*>(data), size);
  std::string_view token = BearerToken(header);
  if (token.empty()) token = header;
  (void)VerifyAccessToken(*ring, token, 1'700'000'000);
  return 0;
}
