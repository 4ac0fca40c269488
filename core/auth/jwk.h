// Public JSON Web Keys (RFC 7517) of SMART clients, as OpenSSL keys.
//
// ParseJwks accepts a JWK Set {"keys":[...]} and checks every key the way registration must
// (../shared/spec/smart-backend-services.md section 3.1):
//  - kty "RSA" with n and e, modulus of at least 2048 bits; or kty "EC" with crv "P-384",
//    x and y (48 bytes each) naming a point on the curve;
//  - a kid, unique within the set;
//  - no private members (d, p, q, dp, dq, qi, oth, k): a set that carries a private key is
//    refused, so a client never registers its secret by mistake;
//  - an optional alg, which must be RS384 (RSA) or ES384 (EC).
// Keys of another kty or curve are errors too (InvalidArgument): at registration a key the
// server cannot use is a mistake worth reporting.
// Limits (by value and fetched alike): 64 KiB of JSON, nesting depth 16, at most 32 keys.
//
// Thread-safety: a Jwk is immutable after parsing; EVP_PKEY verification with a shared key
// is safe from several threads (OpenSSL 3).

#ifndef FHIRBULK_AUTH_JWK_H_
#define FHIRBULK_AUTH_JWK_H_

#include <openssl/evp.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace fhirbulk {

struct EvpPkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, EvpPkeyFree>;

enum class KeyType { kRsa, kEc };

struct Jwk {
  KeyType kty = KeyType::kRsa;
  std::string kid;
  std::string alg;  // "" when the JWK has none
  std::shared_ptr<EVP_PKEY> key;
};

// skip_unusable_keys: for a set fetched from a client's URL, keys we cannot use (another kty
// or curve, an alg we do not verify, private members) and repeated kids are left out instead of
// refusing the set; key resolution then picks exactly one key by kid and kty (SMART v2). Only
// a set with no usable key at all is refused.
Result<std::vector<Jwk>> ParseJwks(std::string_view json, bool skip_unusable_keys = false);

}  // namespace fhirbulk

#endif  // FHIRBULK_AUTH_JWK_H_
