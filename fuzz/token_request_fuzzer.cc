// The token endpoint's parsing of untrusted bytes, before any database access: the form body
// (PrecheckTokenRequest, steps 1-3 of auth/token_endpoint.h), the client assertion as a
// compact JWS (ParseCompactJws: base64url, header and claims JSON) and the signature check
// with fixed RS384 and ES384 keys (VerifyAsymmetric decodes the attacker's signature bytes).
//
// Input: selector byte (bit 0: the rest is the assertion itself, not a form body), then bytes.

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include <cstdint>
#include <memory>
#include <string>

#include "auth/jwk.h"
#include "auth/jws.h"
#include "auth/token_endpoint.h"
#include "fuzz_util.h"
#include "http/query_string.h"

using namespace fhirbulk;

namespace {

Jwk MakeKey(KeyType kty, EVP_PKEY* key, const char* kid) {
  Jwk jwk;
  jwk.kty = kty;
  jwk.kid = kid;
  jwk.key.reset(key, EVP_PKEY_free);
  return jwk;
}

void CheckAssertion(std::string_view assertion) {
  static const Jwk* rsa = new Jwk(MakeKey(KeyType::kRsa, EVP_RSA_gen(2048), "rsa"));
  static const Jwk* ec = new Jwk(MakeKey(KeyType::kEc, EVP_EC_gen("P-384"), "ec"));
  auto jws = ParseCompactJws(assertion);
  if (!jws.ok()) return;
  (void)VerifyAsymmetric(*jws, *rsa);
  (void)VerifyAsymmetric(*jws, *ec);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::FuzzInput in(data, size);
  const uint8_t sel = in.Selector();
  if (sel & 1) {
    CheckAssertion(in.Rest());
    return 0;
  }
  const std::string_view body = in.Rest();
  auto verdict = PrecheckTokenRequest("application/x-www-form-urlencoded", body);
  if (verdict) return 0;  // refused at steps 1-3
  auto params = SplitQueryString(body);
  if (!params.ok()) return 0;
  for (const auto& p : *params) {
    if (p.name != "client_assertion") continue;
    auto value = PercentDecode(p.raw_value, true);
    if (value.ok()) CheckAssertion(*value);
  }
  return 0;
}
