// SigningKey: the client's private key for SMART Backend Services client assertions
// (client-confidential-asymmetric profile): an RSA key signs RS384 (RSASSA-PKCS1-v1_5 with
// SHA-384), an EC P-384 key signs ES384 (ECDSA with SHA-384, JWS form: raw R||S, 96 bytes).
//
// Keys come from a JWK (a private JWK object, or a JWK Set holding private keys) or from a
// PEM file (PKCS#8 "PRIVATE KEY", or the traditional RSA/EC forms; unencrypted). The `kid`
// sent in the JWS header is, in order: the one asked for, the JWK's own, else the key's
// RFC 7638 thumbprint (which PublicJwk() also carries, so a PEM user can register it).
// A loaded key has passed a sign-and-verify self-test, so a JWK whose public and private
// halves disagree is refused at load time rather than by the server.
//
// Thread-safety: a loaded key is immutable; Sign() may run concurrently.

#ifndef FHIRBULK_CLIENT_SIGNING_KEY_H_
#define FHIRBULK_CLIENT_SIGNING_KEY_H_

#include <memory>
#include <string>
#include <string_view>

#include "util/status.h"

struct evp_pkey_st;  // OpenSSL's EVP_PKEY

namespace fhirbulk {
namespace client {

class SigningKey {
 public:
  // A .jwk/.json file is read as JWK, anything else as PEM (content starting with '{' is JWK
  // whatever the name). In a JWK Set, `kid` picks the key; without it there must be exactly
  // one private key. InvalidArgument for anything unusable (public-only key, RSA under 2048
  // bits, an EC curve other than P-384, alg other than RS384/ES384, bad encoding).
  static Result<SigningKey> LoadFile(const std::string& path, const std::string& kid = "");
  static Result<SigningKey> FromJwk(std::string_view json, const std::string& kid = "");
  static Result<SigningKey> FromPem(std::string_view pem, const std::string& kid = "");

  SigningKey(SigningKey&&) noexcept;
  SigningKey& operator=(SigningKey&&) noexcept;
  ~SigningKey();

  const std::string& alg() const { return alg_; }  // "RS384" or "ES384"
  const std::string& kid() const { return kid_; }

  // The JWS signature over `signing_input` (the ASCII "header.payload"), as raw bytes.
  Result<std::string> Sign(std::string_view signing_input) const;

  // The public half as a JWK: {"kty","kid","alg","use":"sig", n/e or crv/x/y}.
  std::string PublicJwk() const;
  // RFC 7638 JWK thumbprint (SHA-256, base64url) of the public key.
  std::string Thumbprint() const;

 private:
  struct PkeyDeleter {
    void operator()(evp_pkey_st* p) const;
  };
  using Pkey = std::unique_ptr<evp_pkey_st, PkeyDeleter>;

  SigningKey(Pkey pkey, std::string alg);
  static Result<SigningKey> Finish(Pkey pkey, const std::string& jwk_alg,
                                   const std::string& jwk_kid, const std::string& want_kid);
  // The members RFC 7638 hashes, in its order: e,kty,n or crv,kty,x,y (base64url values).
  std::string ThumbprintInput() const;

  Pkey pkey_;
  std::string alg_;
  std::string kid_;
};

// A SMART Backend Services authentication JWT, signed: header {alg, kid, typ:"JWT"}, claims
// iss = sub = client_id, aud = token_url, exp = now_seconds + lifetime_seconds (the profile
// allows at most 300), jti = `jti` (a fresh random value when empty).
Result<std::string> MakeClientAssertion(const SigningKey& key, const std::string& client_id,
                                        const std::string& token_url, int64_t now_seconds,
                                        int lifetime_seconds = 240, const std::string& jti = "");

// 128 random bits from OpenSSL's CSPRNG, base64url.
std::string RandomJti();

}  // namespace client
}  // namespace fhirbulk

#endif  // FHIRBULK_CLIENT_SIGNING_KEY_H_
