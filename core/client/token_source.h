// TokenSource: access tokens from a SMART Backend Services token endpoint.
//
// Each token request carries a new client assertion (signing_key.h) in a client_credentials
// grant (SMART App Launch v2, backend services; RFC 7523). The token is cached and renewed
// before it expires: Get() hands out the cached token while more than RenewMargin() of its
// lifetime is left, so every request (kick-off, poll, each file and each resumed range of a
// file) starts with a token the server will still accept, however long the export runs.
// A request that gets 401 anyway (revoked, clock skew) calls Invalidate() and tries once more.
//
// Tokens and assertions are never logged or put in messages.
//
// Requests to the token endpoint are retried as RetryPolicy::ForOthers says (retry.h).
//
// Thread-safety: Get() and Invalidate() may be called from any thread; one token request is
// in flight at a time, and callers that waited for it use the token it got (after a
// failure, each tries again itself).

#ifndef FHIRBULK_CLIENT_TOKEN_SOURCE_H_
#define FHIRBULK_CLIENT_TOKEN_SOURCE_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "client/http_client.h"
#include "client/retry.h"
#include "client/signing_key.h"
#include "util/mutex.h"
#include "util/status.h"

namespace fhirbulk {
namespace client {

struct TokenSourceOptions {
  std::string client_id;
  std::string token_url;  // the token endpoint; also the assertion's aud
  std::string scope;      // space-separated, e.g. "system/*.read"
  int retries = 3;        // transient failures in a row (retry.h: RetryPolicy::ForOthers)
  HttpOptions http;
  std::function<void(const std::string&)> log;  // progress notes for the user
};

class TokenSource {
 public:
  TokenSource(SigningKey key, TokenSourceOptions options);

  // A bearer token to send now. Unauthenticated when the token endpoint refuses the client
  // (the OAuth error and its description in the message), Unavailable when it cannot be
  // reached (ResourceExhausted when it kept answering 429), Aborted when interrupted.
  Result<std::string> Get();

  // The server rejected `token` (401): the next Get() requests a new one.
  void Invalidate(const std::string& token);

  // How long before its expiry a token with this lifetime is replaced: a fifth of the
  // lifetime, at least 1 s and at most 60 s.
  static std::chrono::seconds RenewMargin(std::chrono::seconds lifetime);

 private:
  Status Fetch() REQUIRES(mu_);
  // A 200 from the token endpoint: keeps its token.
  Status Accept(const std::string& answer, std::chrono::steady_clock::time_point sent_at,
                bool renewal) REQUIRES(mu_);

  const SigningKey key_;
  const TokenSourceOptions options_;
  Mutex mu_;
  HttpClient http_ GUARDED_BY(mu_);
  std::string token_ GUARDED_BY(mu_);  // "" = none
  std::chrono::steady_clock::time_point renew_at_ GUARDED_BY(mu_){};
  int obtained_ GUARDED_BY(mu_) = 0;
};

// The token endpoint from GET <fhir_base>/.well-known/smart-configuration (an absolute URL,
// SMART App Launch v2 §2), the request retried by `retry` (note: as RetryLoop::Run). NotFound
// when the server publishes no configuration.
Result<std::string> DiscoverTokenEndpoint(HttpClient* http, const std::string& fhir_base,
                                          RetryLoop* retry,
                                          const RetryLoop::WaitNote& note = nullptr);

}  // namespace client
}  // namespace fhirbulk

#endif  // FHIRBULK_CLIENT_TOKEN_SOURCE_H_
