// Client assertions (SMART Backend Services) signed by client/signing_key.h, checked with
// OpenSSL directly: keys made here, signatures verified with EVP_DigestVerify (ES384's raw
// R||S converted back to DER by this test's own code), claims decoded and compared.

#include "client/signing_key.h"

#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <memory>
#include <string>
#include <vector>

#include "util/base64url.h"

namespace fhirbulk {
namespace client {
namespace {

using Pkey = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;

Pkey MakeRsa(int bits = 2048) {
  return Pkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", bits), EVP_PKEY_free);
}
Pkey MakeEc(const char* curve = "P-384") {
  return Pkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve), EVP_PKEY_free);
}

std::string Pem(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  std::string pem(data, len);
  BIO_free(bio);
  return pem;
}

std::string Bn(EVP_PKEY* key, const char* name, int pad = 0) {
  BIGNUM* bn = nullptr;
  EXPECT_EQ(EVP_PKEY_get_bn_param(key, name, &bn), 1) << name;
  std::string out(pad > 0 ? pad : BN_num_bytes(bn), '\0');
  BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(out.size()));
  BN_free(bn);
  return Base64UrlEncode(out);
}

// The private JWK of a key (RFC 7518 §6), as a client would store it.
std::string PrivateJwk(EVP_PKEY* key, const std::string& kid, bool crt = true) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  auto member = [&](const char* k, const std::string& v) {
    w.Key(k);
    w.String(v);
  };
  if (EVP_PKEY_is_a(key, "RSA")) {
    member("kty", "RSA");
    member("n", Bn(key, OSSL_PKEY_PARAM_RSA_N));
    member("e", Bn(key, OSSL_PKEY_PARAM_RSA_E));
    member("d", Bn(key, OSSL_PKEY_PARAM_RSA_D));
    if (crt) {
      member("p", Bn(key, OSSL_PKEY_PARAM_RSA_FACTOR1));
      member("q", Bn(key, OSSL_PKEY_PARAM_RSA_FACTOR2));
      member("dp", Bn(key, OSSL_PKEY_PARAM_RSA_EXPONENT1));
      member("dq", Bn(key, OSSL_PKEY_PARAM_RSA_EXPONENT2));
      member("qi", Bn(key, OSSL_PKEY_PARAM_RSA_COEFFICIENT1));
    }
  } else {
    member("kty", "EC");
    member("crv", "P-384");
    member("x", Bn(key, OSSL_PKEY_PARAM_EC_PUB_X, 48));
    member("y", Bn(key, OSSL_PKEY_PARAM_EC_PUB_Y, 48));
    member("d", Bn(key, OSSL_PKEY_PARAM_PRIV_KEY, 48));
  }
  if (!kid.empty()) member("kid", kid);
  w.EndObject();
  return buf.GetString();
}

// R||S (48 + 48 bytes) to the DER SEQUENCE OpenSSL verifies, written independently of the
// code under test.
std::string RawToDer(const std::string& raw) {
  EXPECT_EQ(raw.size(), 96u);
  ECDSA_SIG* sig = ECDSA_SIG_new();
  const auto* p = reinterpret_cast<const unsigned char*>(raw.data());
  ECDSA_SIG_set0(sig, BN_bin2bn(p, 48, nullptr), BN_bin2bn(p + 48, 48, nullptr));
  int len = i2d_ECDSA_SIG(sig, nullptr);
  std::string der(len, '\0');
  auto* out = reinterpret_cast<unsigned char*>(der.data());
  i2d_ECDSA_SIG(sig, &out);
  ECDSA_SIG_free(sig);
  return der;
}

bool OpenSslVerifies(EVP_PKEY* key, const std::string& input, std::string sig) {
  if (EVP_PKEY_is_a(key, "EC")) sig = RawToDer(sig);
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  bool ok =
      EVP_DigestVerifyInit(md, nullptr, EVP_sha384(), nullptr, key) == 1 &&
      EVP_DigestVerify(md, reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                       reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
  EVP_MD_CTX_free(md);
  return ok;
}

struct Jws {
  rapidjson::Document header, claims;
  std::string signing_input, signature;
};

Jws Split(const std::string& jwt) {
  Jws j;
  size_t a = jwt.find('.'), b = jwt.rfind('.');
  EXPECT_NE(a, b);
  std::string h, c;
  EXPECT_TRUE(Base64UrlDecode(jwt.substr(0, a), &h));
  EXPECT_TRUE(Base64UrlDecode(jwt.substr(a + 1, b - a - 1), &c));
  EXPECT_TRUE(Base64UrlDecode(jwt.substr(b + 1), &j.signature));
  j.header.Parse(h.c_str());
  j.claims.Parse(c.c_str());
  j.signing_input = jwt.substr(0, b);
  return j;
}

void CheckAssertion(EVP_PKEY* original, const SigningKey& key, const std::string& alg,
                    size_t sig_size) {
  auto jwt = MakeClientAssertion(key, "client-7", "https://ehr.example.org/auth/token", 1717520000);
  ASSERT_TRUE(jwt.ok()) << jwt.status().ToString();
  Jws j = Split(*jwt);
  EXPECT_STREQ(j.header["alg"].GetString(), alg.c_str());
  EXPECT_STREQ(j.header["typ"].GetString(), "JWT");
  EXPECT_EQ(j.header["kid"].GetString(), key.kid());
  EXPECT_STREQ(j.claims["iss"].GetString(), "client-7");
  EXPECT_STREQ(j.claims["sub"].GetString(), "client-7");
  EXPECT_STREQ(j.claims["aud"].GetString(), "https://ehr.example.org/auth/token");
  EXPECT_EQ(j.claims["exp"].GetInt64(), 1717520000 + 240);  // within the 5 minutes allowed
  EXPECT_GE(std::string(j.claims["jti"].GetString()).size(), 16u);
  EXPECT_EQ(j.signature.size(), sig_size);
  EXPECT_TRUE(OpenSslVerifies(original, j.signing_input, j.signature));
  // The signature covers the header and the claims.
  std::string tampered = j.signing_input;
  tampered[tampered.size() - 2] ^= 1;
  EXPECT_FALSE(OpenSslVerifies(original, tampered, j.signature));
}

TEST(ClientSigningTest, Rs384FromPemVerifiesWithOpenSsl) {
  Pkey rsa = MakeRsa();
  auto key = SigningKey::FromPem(Pem(rsa.get()));
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  EXPECT_EQ(key->alg(), "RS384");
  CheckAssertion(rsa.get(), *key, "RS384", 256);
}

TEST(ClientSigningTest, Es384FromPemIsRawRAndS) {
  Pkey ec = MakeEc();
  auto key = SigningKey::FromPem(Pem(ec.get()));
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  EXPECT_EQ(key->alg(), "ES384");
  // ECDSA signatures vary in DER length; the JWS form is always 96 bytes. Many signatures
  // make sure short R or S values (leading zero bytes) are padded too.
  for (int i = 0; i < 50; ++i) CheckAssertion(ec.get(), *key, "ES384", 96);
}

TEST(ClientSigningTest, KeysFromJwk) {
  Pkey rsa = MakeRsa();
  Pkey ec = MakeEc();
  for (EVP_PKEY* k : {rsa.get(), ec.get()}) {
    auto key = SigningKey::FromJwk(PrivateJwk(k, "my-kid"));
    ASSERT_TRUE(key.ok()) << key.status().ToString();
    EXPECT_EQ(key->kid(), "my-kid");
    CheckAssertion(k, *key, EVP_PKEY_is_a(k, "RSA") ? "RS384" : "ES384",
                   EVP_PKEY_is_a(k, "RSA") ? 256u : 96u);
  }
  // RSA without the CRT members (n, e, d only) still signs.
  auto bare = SigningKey::FromJwk(PrivateJwk(rsa.get(), "k", false));
  ASSERT_TRUE(bare.ok()) << bare.status().ToString();
  CheckAssertion(rsa.get(), *bare, "RS384", 256);
}

TEST(ClientSigningTest, JwkSetPicksThePrivateKey) {
  Pkey a = MakeEc();
  Pkey b = MakeEc();
  rapidjson::Document pub;
  std::string ja = PrivateJwk(a.get(), "a"), jb = PrivateJwk(b.get(), "b");
  pub.Parse(ja.c_str());
  pub.RemoveMember("d");  // a public key beside the private one
  rapidjson::StringBuffer pb;
  rapidjson::Writer<rapidjson::StringBuffer> pw(pb);
  pub.Accept(pw);
  std::string one_private = std::string("{\"keys\":[") + pb.GetString() + "," + jb + "]}";
  auto key = SigningKey::FromJwk(one_private);
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  EXPECT_EQ(key->kid(), "b");
  CheckAssertion(b.get(), *key, "ES384", 96);

  std::string two_private = "{\"keys\":[" + ja + "," + jb + "]}";
  EXPECT_FALSE(SigningKey::FromJwk(two_private).ok()) << "ambiguous without a kid";
  auto chosen = SigningKey::FromJwk(two_private, "a");
  ASSERT_TRUE(chosen.ok());
  CheckAssertion(a.get(), *chosen, "ES384", 96);
  EXPECT_FALSE(SigningKey::FromJwk(two_private, "c").ok());
}

TEST(ClientSigningTest, RefusesUnusableKeys) {
  Pkey rsa = MakeRsa();
  Pkey ec = MakeEc();
  Pkey other = MakeEc();
  Pkey p256 = MakeEc("P-256");
  Pkey small = MakeRsa(1024);
  auto fails = [](const Result<SigningKey>& k, const std::string& why) {
    EXPECT_FALSE(k.ok()) << why;
    if (!k.ok()) {
      EXPECT_EQ(k.status().code(), Status::Code::kInvalidArgument) << why;
    }
  };
  fails(SigningKey::FromPem(Pem(p256.get())), "ES384 needs P-384");
  fails(SigningKey::FromPem(Pem(small.get())), "RSA under 2048 bits");
  fails(SigningKey::FromPem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
        "garbage PEM");
  // a public JWK
  rapidjson::Document d;
  std::string jwk = PrivateJwk(ec.get(), "k");
  d.Parse(jwk.c_str());
  d.RemoveMember("d");
  rapidjson::StringBuffer b;
  rapidjson::Writer<rapidjson::StringBuffer> w(b);
  d.Accept(w);
  fails(SigningKey::FromJwk(b.GetString()), "no private key");
  // x/y of one key with d of another: caught by the self-test, not by the server
  rapidjson::Document mixed;
  mixed.Parse(jwk.c_str());
  rapidjson::Document o;
  std::string other_jwk = PrivateJwk(other.get(), "o");
  o.Parse(other_jwk.c_str());
  mixed["d"].SetString(o["d"].GetString(), mixed.GetAllocator());
  rapidjson::StringBuffer mb;
  rapidjson::Writer<rapidjson::StringBuffer> mw(mb);
  mixed.Accept(mw);
  fails(SigningKey::FromJwk(mb.GetString()), "mismatched halves");
  // alg the profile does not use for this key
  std::string rs256 = PrivateJwk(rsa.get(), "r");
  rs256.insert(1, "\"alg\":\"RS256\",");
  fails(SigningKey::FromJwk(rs256), "RS256");
  fails(SigningKey::FromJwk("{\"kty\":\"oct\",\"k\":\"AAAA\"}"), "symmetric key");
  fails(SigningKey::FromJwk("not json"), "not JSON");
}

TEST(ClientSigningTest, ThumbprintAndPublicJwk) {
  Pkey rsa = MakeRsa();
  auto key = SigningKey::FromPem(Pem(rsa.get()));
  ASSERT_TRUE(key.ok());
  // RFC 7638: SHA-256 over {"e":..,"kty":"RSA","n":..}, members in that order, no spaces.
  std::string canonical = "{\"e\":\"" + Bn(rsa.get(), OSSL_PKEY_PARAM_RSA_E) +
                          "\",\"kty\":\"RSA\",\"n\":\"" + Bn(rsa.get(), OSSL_PKEY_PARAM_RSA_N) +
                          "\"}";
  unsigned char digest[32];
  unsigned int len = 0;
  EVP_Digest(canonical.data(), canonical.size(), digest, &len, EVP_sha256(), nullptr);
  std::string expected = Base64UrlEncode(std::string(reinterpret_cast<char*>(digest), len));
  EXPECT_EQ(key->Thumbprint(), expected);
  EXPECT_EQ(key->kid(), expected) << "a PEM key's default kid is its thumbprint";

  rapidjson::Document jwk;
  std::string text = key->PublicJwk();
  jwk.Parse(text.c_str());
  ASSERT_TRUE(jwk.IsObject());
  EXPECT_STREQ(jwk["kty"].GetString(), "RSA");
  EXPECT_STREQ(jwk["alg"].GetString(), "RS384");
  EXPECT_EQ(jwk["kid"].GetString(), key->kid());
  EXPECT_EQ(jwk["n"].GetString(), Bn(rsa.get(), OSSL_PKEY_PARAM_RSA_N));
  EXPECT_FALSE(jwk.HasMember("d")) << "never the private part";

  Pkey ec = MakeEc();
  auto eckey = SigningKey::FromPem(Pem(ec.get()), "chosen");
  ASSERT_TRUE(eckey.ok());
  EXPECT_EQ(eckey->kid(), "chosen");
  text = eckey->PublicJwk();
  jwk.Parse(text.c_str());
  EXPECT_STREQ(jwk["crv"].GetString(), "P-384");
  EXPECT_EQ(jwk["x"].GetString(), Bn(ec.get(), OSSL_PKEY_PARAM_EC_PUB_X, 48));
  EXPECT_EQ(jwk["y"].GetString(), Bn(ec.get(), OSSL_PKEY_PARAM_EC_PUB_Y, 48));
  EXPECT_FALSE(jwk.HasMember("d"));
}

TEST(ClientSigningTest, EveryAssertionHasItsOwnJti) {
  Pkey ec = MakeEc();
  auto key = SigningKey::FromPem(Pem(ec.get()));
  ASSERT_TRUE(key.ok());
  std::vector<std::string> seen;
  for (int i = 0; i < 20; ++i) {
    auto jwt = MakeClientAssertion(*key, "c", "https://a/token", 1000);
    ASSERT_TRUE(jwt.ok());
    std::string jti = Split(*jwt).claims["jti"].GetString();
    for (const auto& s : seen) EXPECT_NE(s, jti);
    seen.push_back(jti);
  }
}

}  // namespace
}  // namespace client
}  // namespace fhirbulk
