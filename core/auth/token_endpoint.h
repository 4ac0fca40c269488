// The OAuth 2.0 token endpoint of SMART Backend Services (client_credentials grant with a
// private_key_jwt client assertion), validating in the order of
// ../shared/spec/smart-backend-services.md section 6:
//   1 POST form (application/x-www-form-urlencoded), no repeated parameter, grant_type,
//     client_assertion_type, client_assertion and scope present ........ invalid_request
//   2 grant_type = client_credentials ................................... unsupported_grant_type
//   3 client_assertion_type = the jwt-bearer URN ........................ invalid_client
//   4 a compact JWS; alg RS384 or ES384; kid; typ "JWT" (case-insensitive) invalid_client
//   5 iss, sub, aud, exp, jti (iss and jti UTF-8 text); iss = sub; a registered, enabled
//     client; a form client_id equal to iss ............................. invalid_client
//   6 aud = the token URL (or an array containing it) .................. invalid_client
//   7 now - skew < exp <= now + 300 s + skew; nbf and iat not in the future invalid_client
//   8 key resolution: jku, when present, must equal the registered JWKS URL; the candidates
//     are the registered JWK Set or the one fetched from the URL (cached); exactly one key
//     with the kid and a kty that suits alg; an unknown kid re-fetches a cached URL set once
//     (at most every 10 s) ............................................... invalid_client
//   9 signature (auth/jws.h: algorithm allow-list per key type) ........ invalid_client
//  10 jti not seen for this client while it could be valid (auth_jti, shared by every node),
//     checked after the signature so forged assertions cannot burn ids .. invalid_client
//  11 scopes parse (auth/scopes.h) and intersect the client's allowed scopes to something
//     non-empty ......................................................... invalid_scope
//  12 a token (auth/access_token.h) with the granted scopes, expires_in <= 300.
// Errors are {"error","error_description"} with HTTP 400, Cache-Control: no-store; the
// description is short and never echoes the assertion. `detail` says precisely why, for the
// audit trail and the log; client-chosen text in it is LogEscape'd (util/log_escape.h).
// Exception: 503 {"error":"temporarily_unavailable"} + Retry-After when the client's JWKS
// must be fetched but the fetch limits (TokenEndpointOptions) do not allow it now.
//
// Limits on the untrusted input (over them: 400 invalid_request, or invalid_client for the
// assertion): form body kMaxTokenFormBytes, at most kMaxTokenFormFields fields, each name at
// most 64 bytes and each value at most kMaxTokenFieldBytes (the assertion: ParseCompactJws's
// 16 KiB, JSON nesting depth 16); JWK Sets 64 KiB and 32 keys (auth/jwk.h).
//
// Thread-safety: stateless; the caller provides the connection.

#ifndef FHIRBULK_AUTH_TOKEN_ENDPOINT_H_
#define FHIRBULK_AUTH_TOKEN_ENDPOINT_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "auth/key_ring.h"
#include "db/pg.h"
#include "http/http.h"
#include "util/status.h"

namespace fhirbulk {

constexpr size_t kMaxTokenFormBytes = size_t{32} * 1024;
constexpr size_t kMaxTokenFormFields = 16;
constexpr size_t kMaxTokenFieldNameBytes = 64;
constexpr size_t kMaxTokenFieldBytes = 16 * 1024 + 64;

struct TokenEndpointOptions {
  std::string token_url;  // absolute; the required assertion aud
  std::shared_ptr<const KeyRing> keys;
  int token_lifetime_seconds = 300;
  int clock_skew_seconds = 60;
  bool allow_insecure_jwks = false;  // jwks_url may be http:// and on private addresses
  // JWKS by URL (issue 11 row 13): a fetched set is cached at least this long whatever its
  // Cache-Control says; one client's set is fetched at most once per interval per process
  // (within it, the last fetch's set is reused or its failure repeated); and at most this many
  // pool threads of a process fetch at once (beyond: 503 temporarily_unavailable + Retry-After).
  int jwks_min_cache_seconds = 60;
  int jwks_min_fetch_interval_seconds = 10;
  int jwks_max_concurrent_fetches = 2;
};

struct TokenResult {
  HttpResponse response;
  std::string client_id;  // the client the assertion claimed, when it got that far
  std::string detail;     // why it failed, or the granted scopes
  std::string error;      // the OAuth error code of a refusal; empty when granted (metrics)
};

// The decoded form of a request that passed steps 1-3: each field once, none empty.
struct TokenForm {
  std::map<std::string, std::string> fields;
  std::string get(const char* name) const;  // "" when absent
};

// Steps 1-3 only (no database): an error response, or nullopt to go on with *form filled in.
std::optional<TokenResult> PrecheckTokenRequest(std::string_view content_type,
                                                std::string_view body, TokenForm* form);
std::optional<TokenResult> PrecheckTokenRequest(std::string_view content_type,
                                                std::string_view body);

// Steps 4-12 of a form that passed PrecheckTokenRequest (the server's thread-pool half
// continues from the form its event-loop half decoded). `now` is seconds since the epoch. A
// non-OK Status means the database failed (the caller answers 503); every verdict on the
// request itself is a TokenResult.
Result<TokenResult> HandleTokenForm(PgConnection* conn, const TokenEndpointOptions& options,
                                    const TokenForm& form, int64_t now);

// Every step: PrecheckTokenRequest, then HandleTokenForm.
Result<TokenResult> HandleTokenRequest(PgConnection* conn, const TokenEndpointOptions& options,
                                       std::string_view content_type, std::string_view body,
                                       int64_t now);

}  // namespace fhirbulk

#endif  // FHIRBULK_AUTH_TOKEN_ENDPOINT_H_
