// AccessTokenCache: the verdicts of VerifyAccessToken, remembered per process, so that a client
// downloading or polling with the same bearer token again pays a hash lookup, not a base64
// decode, an HMAC, a JSON parse and a scope parse per request.
//
// Exactness: an access token is self-contained (auth/access_token.h): whether it verifies is a
// function of its bytes, the key ring, the configured lifetime and the time. The ring and the
// lifetime are fixed per cache (a key rotation is an nginx reload: new processes, new caches),
// and only tokens that verified are remembered, with their exp and iat, which are checked
// against the time on every hit. So a hit answers exactly what VerifyAccessToken would:
//  - an expired token is refused the second it expires (401), cached or not;
//  - a token with another key, a bad signature or a changed byte is a miss and verified;
//  - revocation: there is none for a token on either path (the token endpoint stops issuing
//    to a disabled client; what it issued lives at most its lifetime, <= 300 s), so the cache
//    adds no window. Who owns a job, scopes against the request, and cancel markers are
//    checked by the callers on every request, after the cache.
// Failures are not remembered (a flood of bad tokens costs what it cost before, and never
// evicts good ones beyond the bound below). Bounded: at most `max_entries` tokens; when full,
// expired ones are dropped, and if none has expired the cache starts over.
//
// Thread-safety: all methods may be called concurrently.

#ifndef FHIRBULK_AUTH_TOKEN_CACHE_H_
#define FHIRBULK_AUTH_TOKEN_CACHE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "auth/access_token.h"
#include "auth/key_ring.h"
#include "util/mutex.h"
#include "util/status.h"

namespace fhirbulk {

class AccessTokenCache {
 public:
  AccessTokenCache(std::shared_ptr<const KeyRing> ring, int max_lifetime_seconds,
                   size_t max_entries);

  // VerifyAccessToken(ring, token, now, max_lifetime_seconds), remembered: the principal is
  // shared (never copied on a hit). Unauthenticated on failure, as VerifyAccessToken.
  Result<std::shared_ptr<const Principal>> Verify(std::string_view token, int64_t now)
      EXCLUDES(mu_);

  size_t size() const EXCLUDES(mu_);

 private:
  struct Entry {
    std::string token;  // the key's bytes: a hash collision is a miss, not a match
    int64_t issued_at = 0;
    std::shared_ptr<const Principal> principal;
  };
  const std::shared_ptr<const KeyRing> ring_;
  const int max_lifetime_seconds_;
  const size_t max_entries_;
  mutable Mutex mu_;
  std::unordered_map<size_t, Entry> entries_ GUARDED_BY(mu_);  // hash of the token -> entry
};

}  // namespace fhirbulk

#endif  // FHIRBULK_AUTH_TOKEN_CACHE_H_
