// Access tokens: self-contained, signed by the server (HS256 with a KeyRing key), so any
// nginx worker or node holding the key file validates a bearer token with no database access.
//
//   header  {"alg":"HS256","typ":"at+jwt","kid":"<signing kid>"}
//   claims  {"sub":"<client_id>","scope":"<granted scopes>","iat":<s>,"exp":<s>,"jti":"<random>"}
//
// Verification accepts exactly alg HS256 (the header's alg is checked, never trusted), a kid
// of the ring, a constant-time MAC match, exp > now and iat not in the future beyond the clock
// skew. Lifetimes are capped at 300 s (SMART: tokens SHALL be short-lived), which bounds how
// long a disabled client's token keeps working for downloads.
//
// Thread-safety: pure functions of their arguments.

#ifndef FHIRBULK_AUTH_ACCESS_TOKEN_H_
#define FHIRBULK_AUTH_ACCESS_TOKEN_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "auth/key_ring.h"
#include "auth/scopes.h"
#include "util/status.h"

namespace fhirbulk {

constexpr int kMaxTokenLifetimeSeconds = 300;

struct Principal {
  std::string client_id;
  ScopeSet scopes;
  int64_t expires_at = 0;  // seconds since the epoch
};

std::string IssueAccessToken(const KeyRing& ring, const std::string& client_id,
                             const ScopeSet& scopes, int64_t now, int lifetime_seconds);

// Unauthenticated with a short reason ("expired", "bad signature", ...) on any failure.
Result<Principal> VerifyAccessToken(const KeyRing& ring, std::string_view token, int64_t now);

// The token of an "Authorization: Bearer <token>" header value (scheme case-insensitive);
// empty when the header is absent or of another scheme.
std::string_view BearerToken(std::string_view authorization);

// 16 random bytes, base64url: ids for tokens and clients.
std::string RandomId();

}  // namespace fhirbulk

#endif  // FHIRBULK_AUTH_ACCESS_TOKEN_H_
