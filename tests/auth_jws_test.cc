// Base64url strictness, JWK Set parsing (the registration checks) and JWS verification with
// the RS384/ES384 allow-list, against signatures made here with OpenSSL.

#include <gtest/gtest.h>
#include <openssl/core_names.h>
#include <openssl/x509.h>

#include <string>
#include <vector>

#include "auth/jwk.h"
#include "auth/jws.h"
#include "auth_test_keys.h"
#include "util/base64url.h"

namespace fhirbulk {
namespace {

using testkeys::B64;
using testkeys::EcJwk;
using testkeys::JwkSet;
using testkeys::OnlyKey;
using testkeys::RsaJwk;
using testkeys::SignCompact;

// ---- base64url ----------------------------------------------------------------------------

TEST(AuthBase64UrlTest, KnownVectors) {
  EXPECT_EQ(Base64UrlEncode(""), "");
  EXPECT_EQ(Base64UrlEncode("f"), "Zg");
  EXPECT_EQ(Base64UrlEncode("fo"), "Zm8");
  EXPECT_EQ(Base64UrlEncode("foo"), "Zm9v");
  EXPECT_EQ(Base64UrlEncode("foob"), "Zm9vYg");
  EXPECT_EQ(Base64UrlEncode(std::string("\xfb\xff\xbf", 3)), "-_-_");
  std::string out;
  ASSERT_TRUE(Base64UrlDecode("-_-_", &out));
  EXPECT_EQ(out, std::string("\xfb\xff\xbf", 3));
  ASSERT_TRUE(Base64UrlDecode("", &out));
  EXPECT_EQ(out, "");
  ASSERT_TRUE(Base64UrlDecode("Zm9vYg", &out));
  EXPECT_EQ(out, "foob");
}

TEST(AuthBase64UrlTest, RoundTripsEveryLength) {
  std::string bytes;
  for (int n = 0; n < 70; n++) {
    std::string enc = Base64UrlEncode(bytes);
    EXPECT_EQ(enc.find_first_of("=+/"), std::string::npos) << enc;
    EXPECT_EQ(enc.size(), (bytes.size() * 4 + 2) / 3);
    std::string dec;
    ASSERT_TRUE(Base64UrlDecode(enc, &dec)) << enc;
    EXPECT_EQ(dec, bytes);
    bytes += static_cast<char>((n * 89 + 7) & 0xFF);
  }
}

TEST(AuthBase64UrlTest, RejectsPaddingWhitespaceAndForeignAlphabet) {
  std::string out;
  for (const char* bad : {"Zg==", "Zg=", "Zm8=", "Zm 9v", " Zm9v", "Zm9v\n", "Zm9v+", "Zm9v/",
                          "Zm+v", "Zm/v", "Z", "Zm9vY", "Zm9v\t", "Zm9v.", "%6Zg"}) {
    EXPECT_FALSE(Base64UrlDecode(bad, &out)) << bad;
  }
  std::string with_nul("Zm\0v", 4);
  EXPECT_FALSE(Base64UrlDecode(with_nul, &out));
}

TEST(AuthBase64UrlTest, RejectsNonCanonicalTrailingBits) {
  std::string out;
  // "f" is "Zg"; "Zh".."Zv" carry the same byte with non-zero leftover bits.
  EXPECT_FALSE(Base64UrlDecode("Zh", &out));
  EXPECT_FALSE(Base64UrlDecode("Zv", &out));
  // "fo" is "Zm8"; "Zm9" differs only in the two leftover bits.
  EXPECT_FALSE(Base64UrlDecode("Zm9", &out));
  EXPECT_FALSE(Base64UrlDecode("Zm_", &out));
}

// Exhaustively over every 2- and 3-character text: it decodes exactly when it is the
// canonical encoding of what it decodes to (one byte string, one encoding).
TEST(AuthBase64UrlTest, DecodesExactlyTheCanonicalEncodings) {
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  int accepted2 = 0, accepted3 = 0;
  std::string out;
  for (char a : alphabet) {
    for (char b : alphabet) {
      std::string t{a, b};
      bool ok = Base64UrlDecode(t, &out);
      if (ok) {
        accepted2++;
        EXPECT_EQ(out.size(), 1u);
        EXPECT_EQ(Base64UrlEncode(out), t);
      }
      for (char c : alphabet) {
        std::string u{a, b, c};
        if (Base64UrlDecode(u, &out)) {
          accepted3++;
          EXPECT_EQ(out.size(), 2u);
          EXPECT_EQ(Base64UrlEncode(out), u);
        }
      }
    }
  }
  EXPECT_EQ(accepted2, 256);    // one text per byte value
  EXPECT_EQ(accepted3, 65536);  // one text per two-byte value
}

// ---- JWK Sets -----------------------------------------------------------------------------

std::string GoodRsa(const std::string& kid = "rsa-1", const std::string& extra = "") {
  return RsaJwk(testkeys::Rsa2048(), kid, extra);
}
std::string GoodEc(const std::string& kid = "ec-1", const std::string& extra = "") {
  return EcJwk(testkeys::P384(), kid, "P-384", extra);
}

// The error message of a set that must be refused (empty when it was accepted).
std::string Refusal(const std::string& json) {
  auto keys = ParseJwks(json);
  if (keys.ok()) return "";
  EXPECT_EQ(keys.status().code(), Status::Code::kInvalidArgument) << keys.status().ToString();
  return keys.status().message();
}

TEST(AuthJwksTest, AcceptsRsa2048AndEcP384) {
  auto keys = ParseJwks(
      JwkSet(GoodRsa("rsa-1", ",\"alg\":\"RS384\",\"use\":\"sig\",\"key_ops\":[\"verify\"]") + "," +
             GoodEc("ec-1", ",\"alg\":\"ES384\"") + "," + GoodEc("ec-2")));
  ASSERT_TRUE(keys.ok()) << keys.status().ToString();
  ASSERT_EQ(keys->size(), 3u);
  EXPECT_EQ((*keys)[0].kid, "rsa-1");
  EXPECT_EQ((*keys)[0].kty, KeyType::kRsa);
  EXPECT_EQ((*keys)[0].alg, "RS384");
  EXPECT_EQ(EVP_PKEY_get_bits((*keys)[0].key.get()), 2048);
  EXPECT_EQ((*keys)[1].kid, "ec-1");
  EXPECT_EQ((*keys)[1].kty, KeyType::kEc);
  EXPECT_EQ((*keys)[1].alg, "ES384");
  EXPECT_EQ(EVP_PKEY_get_bits((*keys)[1].key.get()), 384);
  EXPECT_EQ((*keys)[2].kid, "ec-2");
  EXPECT_EQ((*keys)[2].alg, "");
  // The parsed keys are the test's keys: same public material.
  EXPECT_EQ(EVP_PKEY_eq((*keys)[0].key.get(), testkeys::Rsa2048()), 1);
  EXPECT_EQ(EVP_PKEY_eq((*keys)[1].key.get(), testkeys::P384()), 1);
}

TEST(AuthJwksTest, RefusesPrivateMembers) {
  for (const char* member : {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}) {
    std::string extra = std::string(",\"") + member + "\":\"AQAB\"";
    EXPECT_NE(
        Refusal(JwkSet(GoodRsa("r", extra))).find(std::string("private member \"") + member + "\""),
        std::string::npos)
        << member;
    EXPECT_NE(Refusal(JwkSet(GoodEc("e", extra))).find("private member"), std::string::npos)
        << member;
  }
  // Even in a later key of the set.
  EXPECT_EQ(Refusal(JwkSet(GoodEc("a") + "," + GoodRsa("b", ",\"d\":\"AQAB\""))),
            "JWK Set: key 2: has the private member \"d\"; register the public key only");
  // A symmetric key is a secret too.
  EXPECT_NE(Refusal(JwkSet("{\"kty\":\"oct\",\"kid\":\"s\",\"k\":\"c2VjcmV0\"}"))
                .find("private member \"k\""),
            std::string::npos);
}

TEST(AuthJwksTest, RefusesShortRsaKeys) {
  EXPECT_EQ(Refusal(JwkSet(RsaJwk(testkeys::Rsa1024(), "small"))),
            "JWK Set: key 1: RSA modulus has 1024 bits; at least 2048 are required");
  // A modulus padded with leading zero bytes is still 1024 bits.
  std::string n = testkeys::BnParam(testkeys::Rsa1024(), OSSL_PKEY_PARAM_RSA_N);
  std::string padded(std::string(128, '\0') + n);
  EXPECT_NE(Refusal(JwkSet("{\"kty\":\"RSA\",\"kid\":\"z\",\"n\":\"" + B64(padded) +
                           "\",\"e\":\"AQAB\"}"))
                .find("1024 bits"),
            std::string::npos);
}

TEST(AuthJwksTest, RefusesEcKeysOtherThanP384) {
  EXPECT_EQ(Refusal(JwkSet(EcJwk(testkeys::P256(), "p256", "P-256", "", 32))),
            "JWK Set: key 1: an EC key must have crv P-384 (ES384)");
  // P-256 coordinates labelled P-384: wrong size.
  EXPECT_EQ(Refusal(JwkSet(EcJwk(testkeys::P256(), "p256", "P-384", "", 32))),
            "JWK Set: key 1: an EC P-384 key needs x and y of 48 bytes each");
  EXPECT_NE(Refusal(JwkSet(EcJwk(testkeys::P384(), "k", "P-521"))).find("crv P-384"),
            std::string::npos);
  EXPECT_NE(
      Refusal(JwkSet("{\"kty\":\"EC\",\"kid\":\"k\",\"x\":\"AA\",\"y\":\"AA\"}")).find("crv P-384"),
      std::string::npos);
}

TEST(AuthJwksTest, RefusesPointsOffTheCurve) {
  std::string x = testkeys::BnParam(testkeys::P384(), OSSL_PKEY_PARAM_EC_PUB_X, 48);
  std::string y = testkeys::BnParam(testkeys::P384(), OSSL_PKEY_PARAM_EC_PUB_Y, 48);
  y[47] = static_cast<char>(y[47] ^ 1);
  std::string msg = Refusal(JwkSet("{\"kty\":\"EC\",\"kid\":\"k\",\"crv\":\"P-384\",\"x\":\"" +
                                   B64(x) + "\",\"y\":\"" + B64(y) + "\"}"));
  EXPECT_TRUE(msg == "JWK Set: key 1: key material rejected by OpenSSL" ||
              msg == "JWK Set: key 1: the public key is not valid")
      << msg;
}

TEST(AuthJwksTest, RefusesMissingOrBadMembers) {
  std::string n = B64(testkeys::BnParam(testkeys::Rsa2048(), OSSL_PKEY_PARAM_RSA_N));
  EXPECT_EQ(Refusal(JwkSet("{\"kty\":\"RSA\",\"n\":\"" + n + "\",\"e\":\"AQAB\"}")),
            "JWK Set: key 1: has no kid");
  EXPECT_EQ(Refusal(JwkSet("{\"kty\":\"RSA\",\"kid\":\"\",\"n\":\"" + n + "\",\"e\":\"AQAB\"}")),
            "JWK Set: key 1: has no kid");
  EXPECT_EQ(Refusal(JwkSet("{\"kty\":\"RSA\",\"kid\":7,\"n\":\"" + n + "\",\"e\":\"AQAB\"}")),
            "JWK Set: key 1: has no kid");
  EXPECT_EQ(Refusal(JwkSet("{\"kid\":\"a\",\"n\":\"" + n + "\",\"e\":\"AQAB\"}")),
            "JWK Set: key 1: has no kty");
  EXPECT_EQ(Refusal(JwkSet("{\"kty\":\"RSA\",\"kid\":\"a\",\"n\":\"" + n + "\"}")),
            "JWK Set: key 1: an RSA key needs base64url members n and e");
  EXPECT_EQ(Refusal(JwkSet("{\"kty\":\"RSA\",\"kid\":\"a\",\"n\":\"" + n + "=\",\"e\":\"AQAB\"}")),
            "JWK Set: key 1: an RSA key needs base64url members n and e");
  EXPECT_EQ(Refusal(JwkSet("{\"kty\":\"OKP\",\"kid\":\"a\",\"crv\":\"Ed25519\",\"x\":\"AA\"}")),
            "JWK Set: key 1: kty 'OKP' is not supported (RSA or EC)");
  EXPECT_EQ(Refusal(JwkSet("\"a string\"")), "JWK Set: key 1: not an object");
}

TEST(AuthJwksTest, RefusesDuplicateKids) {
  EXPECT_EQ(Refusal(JwkSet(GoodRsa("same") + "," + GoodEc("same"))),
            "JWK Set: key 2: kid 'same' repeated");
  EXPECT_EQ(Refusal(JwkSet(GoodEc("a") + "," + GoodEc("b") + "," + GoodEc("a"))),
            "JWK Set: key 3: kid 'a' repeated");
}

TEST(AuthJwksTest, RefusesAlgorithmsOtherThanRs384AndEs384) {
  EXPECT_EQ(Refusal(JwkSet(GoodRsa("r", ",\"alg\":\"RS256\""))),
            "JWK Set: key 1: alg 'RS256' is not supported for RSA (use RS384)");
  EXPECT_EQ(Refusal(JwkSet(GoodRsa("r", ",\"alg\":\"PS384\""))),
            "JWK Set: key 1: alg 'PS384' is not supported for RSA (use RS384)");
  EXPECT_EQ(Refusal(JwkSet(GoodRsa("r", ",\"alg\":\"ES384\""))),
            "JWK Set: key 1: alg 'ES384' is not supported for RSA (use RS384)");
  EXPECT_EQ(Refusal(JwkSet(GoodEc("e", ",\"alg\":\"ES256\""))),
            "JWK Set: key 1: alg 'ES256' is not supported for EC (use ES384)");
  EXPECT_EQ(Refusal(JwkSet(GoodEc("e", ",\"alg\":\"RS384\""))),
            "JWK Set: key 1: alg 'RS384' is not supported for EC (use ES384)");
  EXPECT_EQ(Refusal(JwkSet(GoodEc("e", ",\"alg\":\"none\""))),
            "JWK Set: key 1: alg 'none' is not supported for EC (use ES384)");
  EXPECT_EQ(Refusal(JwkSet(GoodEc("e", ",\"alg\":384"))), "JWK Set: key 1: alg is not a string");
}

TEST(AuthJwksTest, RefusesSetsThatAreNotSets) {
  EXPECT_EQ(Refusal("not json"), "JWK Set is not a JSON object");
  EXPECT_EQ(Refusal("[" + GoodEc() + "]"), "JWK Set is not a JSON object");
  EXPECT_EQ(Refusal(GoodEc()), "JWK Set has no \"keys\" array");
  EXPECT_EQ(Refusal("{\"keys\":" + GoodEc() + "}"), "JWK Set has no \"keys\" array");
  EXPECT_EQ(Refusal("{\"keys\":\"x\"}"), "JWK Set has no \"keys\" array");
  EXPECT_EQ(Refusal("{\"keys\":[]}"), "JWK Set has no keys");
  EXPECT_EQ(Refusal(JwkSet(GoodEc()) + "trailing"), "JWK Set is not a JSON object");
}

TEST(AuthJwksTest, SizeLimitIs64KiB) {
  std::string set = JwkSet(GoodEc());
  std::string at_limit = set + std::string(size_t{64} * 1024 - set.size(), ' ');
  ASSERT_EQ(at_limit.size(), 65536u);
  EXPECT_TRUE(ParseJwks(at_limit).ok());
  EXPECT_EQ(Refusal(at_limit + " "), "JWK Set larger than 64 KiB");
}

// An RSA public exponent of 1 makes every "signature" equal to its padded digest: anyone could
// forge. OpenSSL's public-key check must catch it (and an even exponent).
TEST(AuthJwksTest, RefusesDegenerateRsaExponents) {
  std::string n = B64(testkeys::BnParam(testkeys::Rsa2048(), OSSL_PKEY_PARAM_RSA_N));
  for (const char* e : {"AQ", "Ag", "AAE"}) {  // 1, 2, 1 with a leading zero
    std::string msg =
        Refusal(JwkSet("{\"kty\":\"RSA\",\"kid\":\"a\",\"n\":\"" + n + "\",\"e\":\"" + e + "\"}"));
    EXPECT_NE(msg, "") << "e=" << e << " accepted";
  }
}

// ---- JWS parsing ----------------------------------------------------------------------------

TEST(AuthJwsParseTest, ExtractsHeaderClaimsAndSigningInput) {
  std::string header = R"({"alg":"ES384","kid":"k1","typ":"JWT","jku":"https://x/jwks"})";
  std::string payload = R"({"iss":"c","n":1})";
  std::string token = testkeys::SigningInput(header, payload) + "." + B64("sig");
  auto jws = ParseCompactJws(token);
  ASSERT_TRUE(jws.ok()) << jws.status().ToString();
  EXPECT_EQ(jws->alg, "ES384");
  EXPECT_EQ(jws->kid, "k1");
  EXPECT_EQ(jws->typ, "JWT");
  EXPECT_TRUE(jws->has_typ);
  EXPECT_EQ(jws->jku, "https://x/jwks");
  EXPECT_EQ(jws->signing_input, testkeys::SigningInput(header, payload));
  EXPECT_EQ(jws->signature, "sig");
  EXPECT_STREQ(jws->claims["iss"].GetString(), "c");

  auto bare = ParseCompactJws(testkeys::SigningInput(R"({"alg":"RS384"})", "{}") + ".");
  ASSERT_TRUE(bare.ok());
  EXPECT_FALSE(bare->has_typ);
  EXPECT_EQ(bare->kid, "");
  EXPECT_EQ(bare->jku, "");
  EXPECT_EQ(bare->signature, "");
}

TEST(AuthJwsParseTest, RefusesMalformedTokens) {
  auto refusal = [](const std::string& token) {
    auto jws = ParseCompactJws(token);
    if (jws.ok()) return std::string("accepted");
    EXPECT_EQ(jws.status().code(), Status::Code::kInvalidArgument);
    return jws.status().message();
  };
  const std::string h = B64(R"({"alg":"RS384"})"), p = B64("{}");
  EXPECT_EQ(refusal(h + "." + p), "not a compact JWS (header.payload.signature)");
  EXPECT_EQ(refusal(h + "." + p + ".c2ln.x"), "not a compact JWS (header.payload.signature)");
  EXPECT_EQ(refusal(""), "not a compact JWS (header.payload.signature)");
  EXPECT_EQ(refusal(h + "=." + p + ".c2ln"), "a JWS part is not base64url");
  EXPECT_EQ(refusal(h + "." + p + ".c2ln="), "a JWS part is not base64url");
  EXPECT_EQ(refusal(h + "." + p + ".c2l+"), "a JWS part is not base64url");
  EXPECT_EQ(refusal(B64("[1]") + "." + p + ".c2ln"), "the JWS header is not a JSON object");
  EXPECT_EQ(refusal(B64("{") + "." + p + ".c2ln"), "the JWS header is not a JSON object");
  EXPECT_EQ(refusal(B64("{}") + "." + p + ".c2ln"), "the JWS header has no alg");
  EXPECT_EQ(refusal(B64(R"({"alg":""})") + "." + p + ".c2ln"), "the JWS header has no alg");
  EXPECT_EQ(refusal(B64(R"({"alg":5})") + "." + p + ".c2ln"), "the JWS header has no alg");
  EXPECT_EQ(refusal(B64(R"({"alg":"RS384","crit":["exp"]})") + "." + p + ".c2ln"),
            "unsupported JWS crit header");
  EXPECT_EQ(refusal(h + "." + B64("[]") + ".c2ln"), "the JWT claims are not a JSON object");
  EXPECT_EQ(refusal(h + "." + B64("{} x") + ".c2ln"), "the JWT claims are not a JSON object");
  std::string big = h + "." + B64("{\"x\":\"" + std::string(13000, 'a') + "\"}") + ".c2ln";
  ASSERT_GT(big.size(), 16u * 1024);
  EXPECT_EQ(refusal(big), "token too large");
}

// ---- signatures ----------------------------------------------------------------------------

const std::string kPayload = R"({"iss":"client","sub":"client","jti":"1"})";

std::string Hdr(const std::string& alg, const std::string& kid = "k") {
  return "{\"alg\":\"" + alg + "\",\"kid\":\"" + kid + "\",\"typ\":\"JWT\"}";
}

// The verdict's message, "OK" on success (Unauthenticated is the only failure code expected).
std::string Verdict(const std::string& token, const Jwk& key) {
  auto jws = ParseCompactJws(token);
  if (!jws.ok()) return "unparsable: " + jws.status().message();
  Status s = VerifyAsymmetric(*jws, key);
  if (s.ok()) return "OK";
  EXPECT_EQ(s.code(), Status::Code::kUnauthenticated) << s.ToString();
  return s.message();
}

std::string ReplaceSignature(const std::string& token, const std::string& sig_bytes) {
  return token.substr(0, token.rfind('.') + 1) + B64(sig_bytes);
}

std::string SignatureOf(const std::string& token) {
  std::string out;
  EXPECT_TRUE(Base64UrlDecode(token.substr(token.rfind('.') + 1), &out));
  return out;
}

class AuthVerifyTest : public ::testing::Test {
 protected:
  Jwk rsa_ = OnlyKey(RsaJwk(testkeys::Rsa2048(), "k"));
  Jwk ec_ = OnlyKey(EcJwk(testkeys::P384(), "k"));
  std::string rs384_ = SignCompact(testkeys::Rsa2048(), Hdr("RS384"), kPayload);
  std::string es384_ = SignCompact(testkeys::P384(), Hdr("ES384"), kPayload);
};

TEST_F(AuthVerifyTest, Rs384AndEs384Verify) {
  EXPECT_EQ(Verdict(rs384_, rsa_), "OK");
  EXPECT_EQ(Verdict(es384_, ec_), "OK");
  EXPECT_EQ(SignatureOf(es384_).size(), 96u);
  EXPECT_EQ(SignatureOf(rs384_).size(), 256u);
  // Keys that name their algorithm verify it too.
  EXPECT_EQ(Verdict(rs384_, OnlyKey(RsaJwk(testkeys::Rsa2048(), "k", ",\"alg\":\"RS384\""))), "OK");
  EXPECT_EQ(Verdict(es384_, OnlyKey(EcJwk(testkeys::P384(), "k", "P-384", ",\"alg\":\"ES384\""))),
            "OK");
}

TEST_F(AuthVerifyTest, TamperedSignatureFails) {
  for (const std::string* token : {&rs384_, &es384_}) {
    const Jwk& key = token == &rs384_ ? rsa_ : ec_;
    std::string sig = SignatureOf(*token);
    for (size_t pos : {size_t{0}, sig.size() / 2, sig.size() - 1}) {
      std::string bad = sig;
      bad[pos] = static_cast<char>(bad[pos] ^ 0x01);
      EXPECT_EQ(Verdict(ReplaceSignature(*token, bad), key), "signature does not verify")
          << "byte " << pos;
    }
  }
  // An all-zero ES384 signature (r = s = 0).
  EXPECT_EQ(Verdict(ReplaceSignature(es384_, std::string(96, '\0')), ec_),
            "signature does not verify");
}

TEST_F(AuthVerifyTest, TamperedPayloadOrHeaderFails) {
  const std::string other_payload = R"({"iss":"client","sub":"client","jti":"2"})";
  for (const std::string* token : {&rs384_, &es384_}) {
    const Jwk& key = token == &rs384_ ? rsa_ : ec_;
    std::string alg = token == &rs384_ ? "RS384" : "ES384";
    std::string sig = token->substr(token->rfind('.'));
    EXPECT_EQ(Verdict(testkeys::SigningInput(Hdr(alg), other_payload) + sig, key),
              "signature does not verify");
    EXPECT_EQ(Verdict(testkeys::SigningInput(Hdr(alg, "k2"), kPayload) + sig, key),
              "signature does not verify");
  }
}

TEST_F(AuthVerifyTest, SignatureOfAnotherKeyFails) {
  EXPECT_EQ(Verdict(SignCompact(testkeys::Rsa2048Other(), Hdr("RS384"), kPayload), rsa_),
            "signature does not verify");
  EXPECT_EQ(Verdict(SignCompact(testkeys::P384Other(), Hdr("ES384"), kPayload), ec_),
            "signature does not verify");
}

TEST_F(AuthVerifyTest, OnlyRs384AndEs384AreAllowed) {
  // The same (valid RS384 / ES384) signature bytes under another header alg. The header is
  // part of the signing input, so re-sign too: the refusal must come from the allow-list.
  for (const char* alg : {"none", "HS256", "HS384", "RS256", "RS512", "PS384", "PS256", "ES256",
                          "ES512", "EdDSA", "rs384", "es384", "RS384 "}) {
    std::string by_rsa = SignCompact(testkeys::Rsa2048(), Hdr(alg), kPayload);
    std::string by_ec = SignCompact(testkeys::P384(), Hdr(alg), kPayload);
    std::string expected = std::string("algorithm '") + alg + "' is not allowed";
    EXPECT_EQ(Verdict(by_rsa, rsa_), expected);
    EXPECT_EQ(Verdict(by_ec, ec_), expected);
  }
  // alg none with an empty signature.
  EXPECT_EQ(Verdict(testkeys::SigningInput(Hdr("none"), kPayload) + ".", rsa_),
            "algorithm 'none' is not allowed");
}

TEST_F(AuthVerifyTest, AlgorithmMustSuitTheKeyType) {
  // ES384 header with an RSA key (signed by the RSA key, so only the type check can refuse).
  std::string es_by_rsa = testkeys::SigningInput(Hdr("ES384"), kPayload);
  es_by_rsa += "." + B64(testkeys::SignSha384(testkeys::Rsa2048(), es_by_rsa));
  EXPECT_EQ(Verdict(es_by_rsa, rsa_), "algorithm ES384 does not match the key type");
  EXPECT_EQ(Verdict(es384_, rsa_), "algorithm ES384 does not match the key type");
  EXPECT_EQ(Verdict(rs384_, ec_), "algorithm RS384 does not match the key type");
}

TEST_F(AuthVerifyTest, KeyAlgMustMatchHeaderAlg) {
  Jwk rsa = rsa_;
  rsa.alg = "PS384";
  EXPECT_EQ(Verdict(rs384_, rsa), "the key is registered for PS384");
  Jwk ec = ec_;
  ec.alg = "ES512";
  EXPECT_EQ(Verdict(es384_, ec), "the key is registered for ES512");
}

TEST_F(AuthVerifyTest, DerEncodedEs384SignatureFails) {
  std::string input = testkeys::SigningInput(Hdr("ES384"), kPayload);
  std::string der = testkeys::SignSha384(testkeys::P384(), input);
  ASSERT_NE(der.size(), 96u);
  EXPECT_EQ(Verdict(input + "." + B64(der), ec_), "ES384 signature is not 96 bytes of R||S");
  std::string raw = SignatureOf(es384_);
  EXPECT_EQ(Verdict(ReplaceSignature(es384_, raw.substr(0, 95)), ec_),
            "ES384 signature is not 96 bytes of R||S");
  EXPECT_EQ(Verdict(ReplaceSignature(es384_, raw + '\0'), ec_),
            "ES384 signature is not 96 bytes of R||S");
  // A 96-byte DER-like blob: the right length but not R||S of this message.
  std::string padded_der = der.substr(0, 96);
  padded_der.resize(96, '\0');
  EXPECT_EQ(Verdict(input + "." + B64(padded_der), ec_), "signature does not verify");
}

// The classic confusion: the attacker knows the public key and MACs the token with it as an
// HS256 secret, hoping the verifier follows the header's alg.
TEST_F(AuthVerifyTest, Hs256WithThePublicKeyAsSecretFails) {
  std::string input = testkeys::SigningInput(Hdr("HS256"), kPayload);
  unsigned char* der = nullptr;
  int len = i2d_PUBKEY(testkeys::Rsa2048(), &der);
  ASSERT_GT(len, 0);
  std::string spki(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  std::string jwk = RsaJwk(testkeys::Rsa2048(), "k");
  for (const std::string& secret : {spki, jwk}) {
    std::string token = input + "." + B64(HmacSha256(secret, input));
    EXPECT_EQ(Verdict(token, rsa_), "algorithm 'HS256' is not allowed");
  }
}

TEST(AuthHmacTest, Rfc4231Vectors) {
  auto hex = [](const std::string& bytes) {
    static const char kHex[] = "0123456789abcdef";
    std::string out;
    for (unsigned char c : bytes) {
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
    return out;
  };
  EXPECT_EQ(hex(HmacSha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_EQ(hex(HmacSha256(std::string(20, '\x0b'), "Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}

TEST(AuthHmacTest, ConstantTimeEquals) {
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "ab"));
  EXPECT_FALSE(ConstantTimeEquals("", "a"));
  EXPECT_TRUE(ConstantTimeEquals(std::string("a\0b", 3), std::string("a\0b", 3)));
  EXPECT_FALSE(ConstantTimeEquals(std::string("a\0b", 3), std::string("a\0c", 3)));
}

}  // namespace
}  // namespace fhirbulk
