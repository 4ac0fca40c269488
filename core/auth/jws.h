// Compact JWS (RFC 7515) parsing and verification, with an algorithm allow-list.
//
// Why not libjwt: libjwt 1.10 verifies with whatever algorithm the token's header names, so a
// token that says HS256 is checked as an HMAC keyed with the (public) verification key — the
// classic algorithm-confusion forgery. Here the caller says which algorithm each key may be
// used with, and only RS384 (RSASSA-PKCS1-v1_5 + SHA-384) and ES384 (ECDSA P-384 + SHA-384,
// signature = raw 96-byte R||S, RFC 7518 section 3.4) verify client assertions; HS256 is used
// only for the server's own tokens, with the server's secret.
//
// Thread-safety: pure functions.

#ifndef FHIRBULK_AUTH_JWS_H_
#define FHIRBULK_AUTH_JWS_H_

#include <rapidjson/document.h>

#include <string>
#include <string_view>

#include "auth/jwk.h"
#include "util/status.h"

namespace fhirbulk {

struct ParsedJws {
  std::string alg, kid, typ, jku;  // header members ("" when absent)
  bool has_typ = false;
  rapidjson::Document claims;  // the payload, a JSON object
  std::string signing_input;   // "<b64 header>.<b64 payload>"
  std::string signature;       // decoded bytes
};

// Three base64url parts, a JSON-object header with a string alg, a JSON-object payload.
// Nothing is verified. InvalidArgument with a short reason otherwise. Tokens larger than
// 16 KiB are refused before decoding; header or payload JSON nested deeper than 16 levels
// before parsing (the parse itself is iterative).
Result<ParsedJws> ParseCompactJws(std::string_view token);

// Verifies jws.signature over jws.signing_input with `key`. The algorithm is jws.alg and must
// be RS384 with an RSA key or ES384 with an EC P-384 key; a JWK that names an alg must name
// the same one. Anything else (none, HS*, PS*, RS256, a key of the other type) fails.
Status VerifyAsymmetric(const ParsedJws& jws, const Jwk& key);

// HS256 over `signing_input` with `secret` (raw bytes). The HMAC algorithm is fetched once
// per process and a keyed context kept per thread and secret (at most 8), so a call costs the
// MAC itself, not OpenSSL's algorithm lookup. Thread-safe.
std::string HmacSha256(std::string_view secret, std::string_view data);

// Constant-time equality of two byte strings (the length is not secret).
bool ConstantTimeEquals(std::string_view a, std::string_view b);

}  // namespace fhirbulk

#endif  // FHIRBULK_AUTH_JWS_H_
