// Test helpers for the authorization tests: real key pairs made with OpenSSL, their public
// JWKs, and compact JWS signed the way a SMART client signs its assertions (RS384, and ES384
// with the raw 96-byte R||S signature of RFC 7518 section 3.4).

#ifndef FHIRBULK_TESTS_AUTH_TEST_KEYS_H_
#define FHIRBULK_TESTS_AUTH_TEST_KEYS_H_

#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "auth/jwk.h"
#include "util/base64url.h"

namespace fhirbulk {
namespace testkeys {

struct BnDeleter {
  void operator()(BIGNUM* b) const { BN_free(b); }
};
using BnPtr = std::unique_ptr<BIGNUM, BnDeleter>;

inline EvpPkeyPtr GenerateRsa(unsigned bits) {
  EvpPkeyPtr k(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(bits)));
  if (!k) std::abort();
  return k;
}

inline EvpPkeyPtr GenerateEc(const char* curve) {
  EvpPkeyPtr k(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve));
  if (!k) std::abort();
  return k;
}

// Keys are slow to make (RSA): one of each per process.
inline EVP_PKEY* Rsa2048() {
  static EvpPkeyPtr k = GenerateRsa(2048);
  return k.get();
}
inline EVP_PKEY* Rsa2048Other() {
  static EvpPkeyPtr k = GenerateRsa(2048);
  return k.get();
}
inline EVP_PKEY* Rsa1024() {
  static EvpPkeyPtr k = GenerateRsa(1024);
  return k.get();
}
inline EVP_PKEY* P384() {
  static EvpPkeyPtr k = GenerateEc("P-384");
  return k.get();
}
inline EVP_PKEY* P384Other() {
  static EvpPkeyPtr k = GenerateEc("P-384");
  return k.get();
}
inline EVP_PKEY* P256() {
  static EvpPkeyPtr k = GenerateEc("P-256");
  return k.get();
}

inline std::string BnParam(EVP_PKEY* k, const char* name, int pad_to = 0) {
  BIGNUM* raw = nullptr;
  if (EVP_PKEY_get_bn_param(k, name, &raw) != 1) std::abort();
  BnPtr bn(raw);
  int len = pad_to > 0 ? pad_to : BN_num_bytes(bn.get());
  std::string out(static_cast<size_t>(len), '\0');
  if (BN_bn2binpad(bn.get(), reinterpret_cast<unsigned char*>(out.data()), len) != len) {
    std::abort();
  }
  return out;
}

inline std::string B64(std::string_view bytes) { return Base64UrlEncode(bytes); }

// The public JWK of an RSA key; `extra` is inserted verbatim (e.g. ",\"alg\":\"RS384\"").
inline std::string RsaJwk(EVP_PKEY* k, const std::string& kid, const std::string& extra = "") {
  return "{\"kty\":\"RSA\",\"kid\":\"" + kid + "\",\"n\":\"" +
         B64(BnParam(k, OSSL_PKEY_PARAM_RSA_N)) + "\",\"e\":\"" +
         B64(BnParam(k, OSSL_PKEY_PARAM_RSA_E)) + "\"" + extra + "}";
}

// The public JWK of an EC key (coordinates padded to the curve size).
inline std::string EcJwk(EVP_PKEY* k, const std::string& kid, const std::string& crv = "P-384",
                         const std::string& extra = "", int coordinate_bytes = 48) {
  return "{\"kty\":\"EC\",\"kid\":\"" + kid + "\",\"crv\":\"" + crv + "\",\"x\":\"" +
         B64(BnParam(k, OSSL_PKEY_PARAM_EC_PUB_X, coordinate_bytes)) + "\",\"y\":\"" +
         B64(BnParam(k, OSSL_PKEY_PARAM_EC_PUB_Y, coordinate_bytes)) + "\"" + extra + "}";
}

inline std::string JwkSet(const std::string& keys) { return "{\"keys\":[" + keys + "]}"; }

// A signature over `input` with SHA-384 (RSASSA-PKCS1-v1_5 for RSA keys, DER ECDSA for EC).
inline std::string SignSha384(EVP_PKEY* k, std::string_view input) {
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  size_t len = 0;
  if (EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha384(), nullptr, k) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()),
                     input.size()) != 1) {
    std::abort();
  }
  std::string sig(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                     reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1) {
    std::abort();
  }
  sig.resize(len);
  return sig;
}

// DER ECDSA signature -> JWS R||S (each padded to `half` bytes).
inline std::string DerToRaw(const std::string& der, int half = 48) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
  if (sig == nullptr) std::abort();
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(sig, &r, &s);
  std::string out(static_cast<size_t>(2 * half), '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  if (BN_bn2binpad(r, o, half) != half || BN_bn2binpad(s, o + half, half) != half) std::abort();
  ECDSA_SIG_free(sig);
  return out;
}

// "<b64 header>.<b64 payload>" of two JSON texts.
inline std::string SigningInput(const std::string& header_json, const std::string& payload_json) {
  return B64(header_json) + "." + B64(payload_json);
}

// A compact JWS: RS384 for RSA keys, ES384 (R||S) for EC keys, whatever alg the header says.
inline std::string SignCompact(EVP_PKEY* k, const std::string& header_json,
                               const std::string& payload_json) {
  std::string input = SigningInput(header_json, payload_json);
  std::string sig = SignSha384(k, input);
  if (EVP_PKEY_get_base_id(k) == EVP_PKEY_EC) sig = DerToRaw(sig);
  return input + "." + B64(sig);
}

// The parsed key of a one-key JWK Set (the test fails when it does not parse).
inline Jwk OnlyKey(const std::string& jwk) {
  auto keys = ParseJwks(JwkSet(jwk));
  EXPECT_TRUE(keys.ok()) << keys.status().ToString();
  if (!keys.ok() || keys->size() != 1) return Jwk();
  return keys->front();
}

}  // namespace testkeys
}  // namespace fhirbulk

#endif  // FHIRBULK_TESTS_AUTH_TEST_KEYS_H_
