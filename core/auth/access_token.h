// Access tokens: self-contained, signed by the server (HS256 with a KeyRing key), so any
// nginx worker or node holding the key file validates a bearer token with no database access.
//
//   header  {"alg":"HS256","typ":"at+jwt","kid":"<signing kid>"}
//   claims  {"sub":"<client_id>","scope":"<granted scopes>","iat":<s>,"exp":<s>,"jti":"<random>"}
//
// Verification accepts at most kMaxAccessTokenBytes (checked before any base64 or HMAC work),
// exactly alg HS256 (the header's alg is checked, never trusted), a kid of the ring, a
// constant-time MAC match, exp > now, iat not in the future beyond the clock skew, and
// exp - iat within the configured lifetime plus the skew: a token minted with a far expiry
// (a leaked key, a bug, an old configuration) is refused, not trusted for a year. Lifetimes
// are capped at 300 s (SMART: tokens SHALL be short-lived), which bounds how long a disabled
// client's token keeps working for downloads.
//
// Thread-safety: pure functions of their arguments.

#ifndef FHIRBULK_AUTH_ACCESS_TOKEN_H_
#define FHIRBULK_AUTH_ACCESS_TOKEN_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "auth/key_ring.h"
#include "auth/scopes.h"
#include "util/status.h"

#include "fhirbulk/defaults.h"

namespace fhirbulk {

constexpr int kMaxTokenLifetimeSeconds = FHIRBULK_MAX_TOKEN_LIFETIME;
// Tokens this server issues are ~300 bytes; 4 KiB leaves room for long client ids and scopes.
constexpr size_t kMaxAccessTokenBytes = 4096;
constexpr int64_t kAccessTokenClockSkewSeconds = 60;

struct Principal {
  std::string client_id;
  ScopeSet scopes;
  int64_t expires_at = 0;  // seconds since the epoch
  int64_t issued_at = 0;   // iat, seconds since the epoch (set by VerifyAccessToken)
};

std::string IssueAccessToken(const KeyRing& ring, const std::string& client_id,
                             const ScopeSet& scopes, int64_t now, int lifetime_seconds);

// Unauthenticated with a short reason ("expired", "bad signature", ...) on any failure.
// max_lifetime_seconds: the configured token lifetime (fhir_bulk_token_lifetime).
Result<Principal> VerifyAccessToken(const KeyRing& ring, std::string_view token, int64_t now,
                                    int max_lifetime_seconds = kMaxTokenLifetimeSeconds);

// The token of an "Authorization: Bearer <token>" header value (scheme case-insensitive);
// empty when the header is absent or of another scheme.
std::string_view BearerToken(std::string_view authorization);

// 16 random bytes, base64url: ids for tokens and clients.
std::string RandomId();

}  // namespace fhirbulk

#endif  // FHIRBULK_AUTH_ACCESS_TOKEN_H_
