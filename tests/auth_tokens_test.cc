// The server's own credentials: the key ring, access tokens (HS256 JWTs), Bearer header
// parsing and signed file URLs.

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <set>
#include <string>

#include "auth/access_token.h"
#include "auth/jws.h"
#include "auth/key_ring.h"
#include "auth/scopes.h"
#include "auth/signed_url.h"
#include "util/base64url.h"

namespace fhirbulk {
namespace {

const std::string kSecretA(40, 'a');
const std::string kSecretB = "0123456789abcdef0123456789abcdef";  // exactly 32
const std::string kSecretC(32, 'c');

KeyRing MustRing(const std::string& text) {
  auto r = KeyRing::Parse(text);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? std::move(r).value() : KeyRing();
}

std::string RingRefusal(const std::string& text) {
  auto r = KeyRing::Parse(text);
  if (r.ok()) return "accepted";
  EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
  return r.status().message();
}

ScopeSet Scopes(const std::string& text) {
  auto s = ScopeSet::Parse(text);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? std::move(s).value() : ScopeSet();
}

// ---- KeyRing --------------------------------------------------------------------------------

TEST(AuthKeyRingTest, ParsesKeysCommentsAndBlankLines) {
  KeyRing ring = MustRing("# server keys\n\n   \nk1 " + kSecretA + "\n  # indented comment\n" +
                          "\tk_2-B\t  " + kSecretB + "  \r\n\n");
  ASSERT_FALSE(ring.empty());
  EXPECT_EQ(ring.signing_kid(), "k1");
  EXPECT_EQ(ring.signing_secret(), kSecretA);
  ASSERT_NE(ring.Find("k1"), nullptr);
  EXPECT_EQ(*ring.Find("k1"), kSecretA);
  ASSERT_NE(ring.Find("k_2-B"), nullptr);
  EXPECT_EQ(*ring.Find("k_2-B"), kSecretB);
  EXPECT_EQ(ring.Find("k2"), nullptr);
  EXPECT_EQ(ring.Find(""), nullptr);
  // No final newline, 32-character kid.
  KeyRing last = MustRing(std::string(32, 'K') + " " + kSecretC);
  EXPECT_EQ(last.signing_kid(), std::string(32, 'K'));
}

TEST(AuthKeyRingTest, RefusesBadLines) {
  EXPECT_EQ(RingRefusal("k1 " + kSecretA.substr(0, 31)),
            "line 1: the secret must be at least 32 characters, no blanks");
  EXPECT_EQ(RingRefusal("# c\nk1 " + kSecretA.substr(0, 20) + " " + kSecretA.substr(0, 20)),
            "line 2: the secret must be at least 32 characters, no blanks");
  EXPECT_EQ(RingRefusal("k1"), "line 1: expected '<kid> <secret>'");
  EXPECT_EQ(RingRefusal("\n\n" + kSecretA), "line 3: expected '<kid> <secret>'");
  for (const std::string& kid : {std::string("k.1"), std::string("k/1"), std::string("k:1"),
                                 std::string(33, 'k'), std::string("kä")}) {
    EXPECT_EQ(RingRefusal(std::string(kid).append(" ").append(kSecretA)),
              "line 1: bad key id (1-32 of A-Za-z0-9_-)")
        << kid;
  }
  EXPECT_EQ(RingRefusal("k1 " + kSecretA + "\nk2 " + kSecretB + "\nk1 " + kSecretC),
            "line 3: key id repeated");
  EXPECT_EQ(RingRefusal(""), "no key");
  EXPECT_EQ(RingRefusal("# only a comment\n\n"), "no key");
}

TEST(AuthKeyRingTest, LoadFile) {
  char path[] = "/tmp/fhirbulk_keyring_XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::close(fd);
  {
    std::ofstream out(path);
    out << "# test\nfile-key " << kSecretA << "\n";
  }
  auto ring = KeyRing::LoadFile(path);
  ASSERT_TRUE(ring.ok()) << ring.status().ToString();
  EXPECT_EQ(ring->signing_kid(), "file-key");
  {
    std::ofstream out(path);
    out << "bad.kid " << kSecretA << "\n";
  }
  auto bad = KeyRing::LoadFile(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(bad.status().message(),
            std::string(path) + ": line 1: bad key id (1-32 of A-Za-z0-9_-)");
  std::remove(path);
  auto missing = KeyRing::LoadFile(path);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), Status::Code::kIOError);
}

// ---- access tokens --------------------------------------------------------------------------

constexpr int64_t kNow = 1717520400;

struct TokenParts {
  rapidjson::Document header, claims;
};

TokenParts Decode(const std::string& token) {
  TokenParts out;
  size_t d1 = token.find('.'), d2 = token.rfind('.');
  std::string h, c;
  EXPECT_TRUE(Base64UrlDecode(token.substr(0, d1), &h));
  EXPECT_TRUE(Base64UrlDecode(token.substr(d1 + 1, d2 - d1 - 1), &c));
  out.header.Parse(h.c_str());
  out.claims.Parse(c.c_str());
  EXPECT_TRUE(out.header.IsObject() && out.claims.IsObject()) << h << " " << c;
  return out;
}

// A token with the given header and claims, MACed with `secret`: lets a test change one thing
// and keep the signature valid, so that the check under test is the one that refuses.
std::string Forge(const std::string& header, const std::string& claims, const std::string& secret) {
  std::string input = Base64UrlEncode(header) + "." + Base64UrlEncode(claims);
  return input + "." + Base64UrlEncode(HmacSha256(secret, input));
}

std::string ClaimsJson(int64_t iat, int64_t exp, const std::string& scope = "system/*.rs") {
  return "{\"sub\":\"client-1\",\"scope\":\"" + scope + "\",\"iat\":" + std::to_string(iat) +
         ",\"exp\":" + std::to_string(exp) + ",\"jti\":\"j\"}";
}

const std::string kGoodHeader = R"({"alg":"HS256","typ":"at+jwt","kid":"k1"})";

std::string TokenRefusal(const KeyRing& ring, const std::string& token, int64_t now = kNow) {
  auto p = VerifyAccessToken(ring, token, now);
  if (p.ok()) return "accepted";
  EXPECT_EQ(p.status().code(), Status::Code::kUnauthenticated);
  return p.status().message();
}

class AuthAccessTokenTest : public ::testing::Test {
 protected:
  KeyRing ring_ = MustRing("k1 " + kSecretA + "\nk0 " + kSecretB);
};

TEST_F(AuthAccessTokenTest, IssueThenVerify) {
  ScopeSet scopes = Scopes("system/Patient.rs system/*.r");
  std::string token = IssueAccessToken(ring_, "client-1", scopes, kNow, 300);
  TokenParts parts = Decode(token);
  EXPECT_STREQ(parts.header["alg"].GetString(), "HS256");
  EXPECT_STREQ(parts.header["typ"].GetString(), "at+jwt");
  EXPECT_STREQ(parts.header["kid"].GetString(), "k1");
  EXPECT_STREQ(parts.claims["sub"].GetString(), "client-1");
  EXPECT_STREQ(parts.claims["scope"].GetString(), "system/*.r system/Patient.rs");
  EXPECT_EQ(parts.claims["iat"].GetInt64(), kNow);
  EXPECT_EQ(parts.claims["exp"].GetInt64(), kNow + 300);
  ASSERT_TRUE(parts.claims["jti"].IsString());
  EXPECT_EQ(parts.claims["jti"].GetStringLength(), 22u);  // 16 bytes, base64url

  auto p = VerifyAccessToken(ring_, token, kNow);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->client_id, "client-1");
  EXPECT_EQ(p->expires_at, kNow + 300);
  EXPECT_EQ(p->scopes.ToString(), "system/*.r system/Patient.rs");
  EXPECT_TRUE(p->scopes.CanRead("Observation"));

  // Two tokens for the same grant differ (jti).
  EXPECT_NE(IssueAccessToken(ring_, "client-1", scopes, kNow, 300), token);
}

TEST_F(AuthAccessTokenTest, LifetimeIsClampedTo300) {
  ScopeSet scopes = Scopes("system/*.r");
  EXPECT_EQ(Decode(IssueAccessToken(ring_, "c", scopes, kNow, 3600)).claims["exp"].GetInt64(),
            kNow + 300);
  EXPECT_EQ(Decode(IssueAccessToken(ring_, "c", scopes, kNow, 301)).claims["exp"].GetInt64(),
            kNow + 300);
  EXPECT_EQ(Decode(IssueAccessToken(ring_, "c", scopes, kNow, 120)).claims["exp"].GetInt64(),
            kNow + 120);
  EXPECT_EQ(Decode(IssueAccessToken(ring_, "c", scopes, kNow, 0)).claims["exp"].GetInt64(),
            kNow + 1);
  EXPECT_EQ(Decode(IssueAccessToken(ring_, "c", scopes, kNow, -10)).claims["exp"].GetInt64(),
            kNow + 1);
}

TEST_F(AuthAccessTokenTest, Expiry) {
  std::string token = IssueAccessToken(ring_, "c", Scopes("system/*.r"), kNow, 300);
  EXPECT_EQ(TokenRefusal(ring_, token, kNow + 299), "accepted");
  EXPECT_EQ(TokenRefusal(ring_, token, kNow + 300), "token expired");
  EXPECT_EQ(TokenRefusal(ring_, token, kNow + 100000), "token expired");
}

TEST_F(AuthAccessTokenTest, IssuedInTheFuture) {
  std::string token = IssueAccessToken(ring_, "c", Scopes("system/*.r"), kNow, 300);
  EXPECT_EQ(TokenRefusal(ring_, token, kNow - 60), "accepted");  // within the clock skew
  EXPECT_EQ(TokenRefusal(ring_, token, kNow - 61), "token issued in the future");
  EXPECT_EQ(TokenRefusal(ring_, Forge(kGoodHeader, ClaimsJson(kNow + 3600, kNow + 3900), kSecretA)),
            "token issued in the future");
}

// Issue 11 row 10: a token MACed with the real key but minted with a far expiry is refused.
TEST_F(AuthAccessTokenTest, LifetimeBeyondTheConfiguredOneIsRefused) {
  const std::string kTooLong = "token lifetime exceeds the server's limit";
  auto verify = [&](int64_t iat, int64_t exp, int lifetime) {
    auto p = VerifyAccessToken(ring_, Forge(kGoodHeader, ClaimsJson(iat, exp), kSecretA), kNow,
                               lifetime);
    return p.ok() ? std::string("accepted") : p.status().message();
  };
  EXPECT_EQ(verify(kNow, kNow + int64_t{365} * 86400, 300), kTooLong);  // a year ahead
  EXPECT_EQ(verify(kNow, kNow + 360, 300), "accepted");                 // 300 s + 60 s skew
  EXPECT_EQ(verify(kNow, kNow + 361, 300), kTooLong);
  EXPECT_EQ(verify(kNow, kNow + 180, 120), "accepted");  // configured 120 s
  EXPECT_EQ(verify(kNow, kNow + 181, 120), kTooLong);
  EXPECT_EQ(verify(kNow, kNow + 361, 3600), kTooLong);  // the configured value is capped at 300
  // An old iat does not make a long-lived token acceptable.
  EXPECT_EQ(verify(kNow - 86400, kNow + 10, 300), kTooLong);
  EXPECT_EQ(verify(INT64_MIN, kNow + 10, 300), kTooLong);  // no overflow (UBSan)
  EXPECT_EQ(verify(kNow, INT64_MAX, 300), kTooLong);
  // iat in the future beyond the skew stays refused for its own reason.
  EXPECT_EQ(verify(kNow + 61, kNow + 300, 300), "token issued in the future");
  // The default (no lifetime given) is the 300 s cap.
  EXPECT_EQ(TokenRefusal(ring_, Forge(kGoodHeader, ClaimsJson(kNow, kNow + 3600), kSecretA)),
            kTooLong);
}

// Issue 11 (parser limits): a long "token" is refused before any base64 or HMAC work.
TEST_F(AuthAccessTokenTest, OversizedTokenIsRefusedBeforeParsing) {
  std::string big =
      Forge(kGoodHeader,
            ClaimsJson(kNow, kNow + 300, "system/*.rs" + std::string(kMaxAccessTokenBytes, ' ')),
            kSecretA);
  ASSERT_GT(big.size(), kMaxAccessTokenBytes);
  EXPECT_EQ(TokenRefusal(ring_, big), "token too long");
  EXPECT_EQ(TokenRefusal(ring_, std::string(1 << 20, 'a')), "token too long");
}

TEST_F(AuthAccessTokenTest, TamperedClaimsFail) {
  std::string token = IssueAccessToken(ring_, "client-1", Scopes("system/Patient.r"), kNow, 300);
  size_t d1 = token.find('.'), d2 = token.rfind('.');
  std::string claims;
  ASSERT_TRUE(Base64UrlDecode(token.substr(d1 + 1, d2 - d1 - 1), &claims));
  for (auto [from, to] :
       {std::pair<std::string, std::string>{"system/Patient.r", "system/*.rs"},
        {"client-1", "client-2"},
        {"\"exp\":" + std::to_string(kNow + 300), "\"exp\":" + std::to_string(kNow + 99999)}}) {
    std::string changed = claims;
    size_t at = changed.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    changed.replace(at, from.size(), to);
    std::string forged = token.substr(0, d1 + 1) + Base64UrlEncode(changed) + token.substr(d2);
    EXPECT_EQ(TokenRefusal(ring_, forged), "bad token signature") << to;
  }
  // A flipped signature bit, a truncated signature, no signature.
  std::string sig;
  ASSERT_TRUE(Base64UrlDecode(token.substr(d2 + 1), &sig));
  sig[5] = static_cast<char>(sig[5] ^ 0x20);
  EXPECT_EQ(TokenRefusal(ring_, token.substr(0, d2 + 1) + Base64UrlEncode(sig)),
            "bad token signature");
  EXPECT_EQ(TokenRefusal(ring_, token.substr(0, d2 + 1) + Base64UrlEncode(sig.substr(0, 31))),
            "bad token signature");
  EXPECT_EQ(TokenRefusal(ring_, token.substr(0, d2 + 1)), "bad token signature");
}

TEST_F(AuthAccessTokenTest, KeysAndRings) {
  std::string claims = ClaimsJson(kNow, kNow + 300);
  EXPECT_EQ(TokenRefusal(ring_, Forge(kGoodHeader, claims, kSecretA)), "accepted");
  // A kid the ring does not have.
  EXPECT_EQ(
      TokenRefusal(ring_, Forge(R"({"alg":"HS256","typ":"at+jwt","kid":"k9"})", claims, kSecretA)),
      "unknown token key");
  EXPECT_EQ(TokenRefusal(ring_, Forge(R"({"alg":"HS256","typ":"at+jwt"})", claims, kSecretA)),
            "unknown token key");
  // The right kid, MACed with the other key of the ring.
  EXPECT_EQ(TokenRefusal(ring_, Forge(kGoodHeader, claims, kSecretB)), "bad token signature");
  // Another server's ring with the same kid.
  KeyRing other = MustRing("k1 " + kSecretC);
  std::string foreign = IssueAccessToken(other, "client-1", Scopes("system/*.r"), kNow, 300);
  EXPECT_EQ(TokenRefusal(ring_, foreign), "bad token signature");
}

TEST_F(AuthAccessTokenTest, RotationFirstKeySignsEveryKeyVerifies) {
  KeyRing old_ring = MustRing("k0 " + kSecretB);
  std::string old_token = IssueAccessToken(old_ring, "c", Scopes("system/*.r"), kNow, 300);
  EXPECT_STREQ(Decode(old_token).header["kid"].GetString(), "k0");
  EXPECT_EQ(TokenRefusal(ring_, old_token), "accepted");  // "k1 new, k0 old" still verifies k0
  std::string new_token = IssueAccessToken(ring_, "c", Scopes("system/*.r"), kNow, 300);
  EXPECT_STREQ(Decode(new_token).header["kid"].GetString(), "k1");
  EXPECT_EQ(TokenRefusal(old_ring, new_token), "unknown token key");
}

TEST_F(AuthAccessTokenTest, OnlyHs256AtJwt) {
  std::string claims = ClaimsJson(kNow, kNow + 300);
  for (const char* header :
       {R"({"alg":"none","typ":"at+jwt","kid":"k1"})",
        R"({"alg":"RS256","typ":"at+jwt","kid":"k1"})",
        R"({"alg":"HS384","typ":"at+jwt","kid":"k1"})",
        R"({"alg":"hs256","typ":"at+jwt","kid":"k1"})", R"({"alg":"HS256","typ":"JWT","kid":"k1"})",
        R"({"alg":"HS256","typ":"AT+JWT","kid":"k1"})", R"({"alg":"HS256","kid":"k1"})"}) {
    EXPECT_EQ(TokenRefusal(ring_, Forge(header, claims, kSecretA)),
              "not an access token of this server")
        << header;
  }
  // alg none with no signature at all.
  std::string none = Base64UrlEncode(R"({"alg":"none","typ":"at+jwt","kid":"k1"})") + "." +
                     Base64UrlEncode(claims) + ".";
  EXPECT_EQ(TokenRefusal(ring_, none), "not an access token of this server");
}

TEST_F(AuthAccessTokenTest, ClaimsMustBeComplete) {
  for (const std::string& claims :
       {std::string(R"({"scope":"system/*.r","iat":1717520400,"exp":1717520700})"),
        std::string(R"({"sub":"c","iat":1717520400,"exp":1717520700})"),
        std::string(R"({"sub":"c","scope":"system/*.r","exp":1717520700})"),
        std::string(R"({"sub":"c","scope":"system/*.r","iat":1717520400})"),
        std::string(R"({"sub":"c","scope":"system/*.r","iat":1717520400,"exp":"1717520700"})"),
        std::string(R"({"sub":"c","scope":"system/*.r","iat":1717520400,"exp":1717520700.5})"),
        std::string(R"({"sub":7,"scope":"system/*.r","iat":1717520400,"exp":1717520700})"),
        std::string(R"({"sub":"c","scope":["system/*.r"],"iat":1717520400,"exp":1717520700})")}) {
    EXPECT_EQ(TokenRefusal(ring_, Forge(kGoodHeader, claims, kSecretA)), "token claims incomplete")
        << claims;
  }
  EXPECT_EQ(
      TokenRefusal(ring_, Forge(kGoodHeader, ClaimsJson(kNow, kNow + 300, "openid"), kSecretA)),
      "token scopes unreadable");
}

TEST_F(AuthAccessTokenTest, Malformed) {
  for (const char* token : {"", "abc", "a.b", "a.b.c.d", "!!.!!.!!"}) {
    EXPECT_EQ(TokenRefusal(ring_, token), "malformed token") << token;
  }
}

TEST(AuthBearerTest, ParsesTheAuthorizationHeader) {
  EXPECT_EQ(BearerToken("Bearer abc.def.ghi"), "abc.def.ghi");
  EXPECT_EQ(BearerToken("bearer abc"), "abc");
  EXPECT_EQ(BearerToken("BEARER abc"), "abc");
  EXPECT_EQ(BearerToken("BeArEr abc"), "abc");
  EXPECT_EQ(BearerToken("Bearer    abc   "), "abc");
  EXPECT_EQ(BearerToken(""), "");
  EXPECT_EQ(BearerToken("Bearer"), "");
  EXPECT_EQ(BearerToken("Bearer "), "");
  EXPECT_EQ(BearerToken("Bearer    "), "");
  EXPECT_EQ(BearerToken("Bearerabc"), "");
  EXPECT_EQ(BearerToken("Bearer\tabc"), "");
  EXPECT_EQ(BearerToken("Basic YWxhZGRpbjpvcGVuc2VzYW1l"), "");
  EXPECT_EQ(BearerToken("Bearer2 abc"), "");
  EXPECT_EQ(BearerToken(" Bearer abc"), "");
}

TEST(AuthRandomIdTest, SixteenRandomBytes) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; i++) {
    std::string id = RandomId();
    EXPECT_EQ(id.size(), 22u);
    std::string bytes;
    ASSERT_TRUE(Base64UrlDecode(id, &bytes));
    EXPECT_EQ(bytes.size(), 16u);
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 100u);
}

// ---- signed file URLs -----------------------------------------------------------------------

const std::string kJob = "0b6f9c3e-8a51-4d7e-9a2b-0c1f5e8d2a77";
const std::string kFile = "Patient.1.1.ndjson";

class AuthSignedUrlTest : public ::testing::Test {
 protected:
  std::string Refusal(const std::string& query, const std::string& job = kJob,
                      const std::string& file = kFile, int64_t now = kNow) {
    auto r = VerifyFileQuery(ring_, job, file, query, now);
    if (r.ok()) return "accepted by " + *r;
    EXPECT_EQ(r.status().code(), Status::Code::kPermissionDenied);
    return r.status().message();
  }
  // The query with parameter `name`'s value replaced.
  static std::string With(const std::string& query, const std::string& name,
                          const std::string& value) {
    size_t at = query.find(name + "=");
    EXPECT_NE(at, std::string::npos);
    size_t end = query.find('&', at);
    if (end == std::string::npos) end = query.size();
    return query.substr(0, at) + name + "=" + value + query.substr(end);
  }
  static std::string Without(const std::string& query, const std::string& name) {
    size_t at = query.find(name + "=");
    size_t end = query.find('&', at);
    std::string out = end == std::string::npos ? query.substr(0, at)
                                               : query.substr(0, at) + query.substr(end + 1);
    if (!out.empty() && out.back() == '&') out.pop_back();
    return out;
  }

  KeyRing ring_ = MustRing("u1 " + kSecretA + "\nu0 " + kSecretB);
  std::string query_ = SignFileQuery(ring_, kJob, kFile, "client-1", kNow + 600);
};

TEST_F(AuthSignedUrlTest, RoundTrip) {
  EXPECT_EQ(query_.rfind(
                "client=client-1&expires=" + std::to_string(kNow + 600) + "&kid=u1&signature=", 0),
            0u)
      << query_;
  EXPECT_EQ(Refusal(query_), "accepted by client-1");
  // Other parameters are ignored; order does not matter.
  EXPECT_EQ(Refusal("_format=x&" + query_ + "&z=1"), "accepted by client-1");
  std::string sig = query_.substr(query_.find("signature="));
  EXPECT_EQ(Refusal(sig + "&" + query_.substr(0, query_.find("&signature"))),
            "accepted by client-1");
  // A client id that needs percent-encoding survives the round trip.
  std::string odd = SignFileQuery(ring_, kJob, kFile, "a b/c&d=e", kNow + 600);
  EXPECT_NE(odd.find("client=a%20b%2Fc%26d%3De&"), std::string::npos) << odd;
  EXPECT_EQ(Refusal(odd), "accepted by a b/c&d=e");
}

TEST_F(AuthSignedUrlTest, EveryBoundFieldMatters) {
  const std::string bad = "signed URL does not verify";
  EXPECT_EQ(Refusal(query_, "0b6f9c3e-8a51-4d7e-9a2b-0c1f5e8d2a78"), bad);
  EXPECT_EQ(Refusal(query_, kJob, "Patient.1.2.ndjson"), bad);
  EXPECT_EQ(Refusal(query_, kJob, "Observation.1.1.ndjson"), bad);
  EXPECT_EQ(Refusal(With(query_, "client", "client-2")), bad);
  EXPECT_EQ(Refusal(With(query_, "expires", std::to_string(kNow + 6000))), bad);
  EXPECT_EQ(Refusal(With(query_, "kid", "u0")), bad);  // a real kid with another secret
  std::string sig_text = query_.substr(query_.find("signature=") + 10);
  std::string sig;
  ASSERT_TRUE(Base64UrlDecode(sig_text, &sig));
  sig[0] = static_cast<char>(sig[0] ^ 1);
  EXPECT_EQ(Refusal(With(query_, "signature", Base64UrlEncode(sig))), bad);
  EXPECT_EQ(Refusal(With(query_, "signature", sig_text + "=")), bad);  // not base64url
}

TEST_F(AuthSignedUrlTest, UnknownKid) {
  EXPECT_EQ(Refusal(With(query_, "kid", "u9")), "signed URL does not verify");
  EXPECT_EQ(Refusal(With(query_, "kid", "")), "signed URL does not verify");
  KeyRing other = MustRing("u1 " + kSecretC);
  EXPECT_EQ(Refusal(SignFileQuery(other, kJob, kFile, "client-1", kNow + 600)),
            "signed URL does not verify");
}

TEST_F(AuthSignedUrlTest, RotatedKeyStillVerifies) {
  KeyRing old_ring = MustRing("u0 " + kSecretB);
  std::string q = SignFileQuery(old_ring, kJob, kFile, "client-1", kNow + 600);
  EXPECT_NE(q.find("&kid=u0&"), std::string::npos);
  EXPECT_EQ(Refusal(q), "accepted by client-1");
}

TEST_F(AuthSignedUrlTest, Expiry) {
  EXPECT_EQ(Refusal(query_, kJob, kFile, kNow + 599), "accepted by client-1");
  EXPECT_EQ(Refusal(query_, kJob, kFile, kNow + 600), "signed URL expired");
  EXPECT_EQ(Refusal(query_, kJob, kFile, kNow + 6000), "signed URL expired");
}

TEST_F(AuthSignedUrlTest, MissingOrBadParameters) {
  for (const char* name : {"client", "expires", "kid", "signature"}) {
    EXPECT_EQ(Refusal(Without(query_, name)), "incomplete signed URL") << name;
  }
  EXPECT_EQ(Refusal(With(query_, "client", "")), "incomplete signed URL");
  EXPECT_EQ(Refusal(With(query_, "expires", "")), "incomplete signed URL");
  EXPECT_EQ(Refusal(With(query_, "expires", "12a")), "incomplete signed URL");
  EXPECT_EQ(Refusal(With(query_, "expires", "-5")), "incomplete signed URL");
  EXPECT_EQ(Refusal(With(query_, "expires", "1234567890123")), "incomplete signed URL");
  EXPECT_EQ(Refusal(""), "incomplete signed URL");
  EXPECT_EQ(Refusal(With(query_, "client", "%zz")), "malformed signed URL");
  EXPECT_EQ(Refusal(With(query_, "client", "a%00b")), "malformed signed URL");
  EXPECT_EQ(Refusal("=x&" + query_), "malformed signed URL");
}

TEST_F(AuthSignedUrlTest, DuplicatedParameters) {
  for (const char* name : {"client", "expires", "kid", "signature"}) {
    std::string q = query_;
    size_t at = q.find(std::string(name) + "=");
    size_t end = q.find('&', at);
    std::string param = q.substr(at, end == std::string::npos ? std::string::npos : end - at);
    EXPECT_EQ(Refusal(std::string(q).append("&").append(param)), "malformed signed URL") << name;
  }
  // A duplicate whose first copy is empty is still a duplicate.
  EXPECT_NE(Refusal("client=&" + query_).rfind("accepted", 0), 0u);
}

TEST(AuthHasFileSignatureTest, Detects) {
  EXPECT_TRUE(HasFileSignature("client=a&signature=xyz"));
  EXPECT_TRUE(HasFileSignature("signature=xyz"));
  EXPECT_TRUE(HasFileSignature("signature"));
  EXPECT_TRUE(HasFileSignature("signature="));
  EXPECT_TRUE(HasFileSignature("sig%6Eature=1"));  // names are percent-decoded
  EXPECT_FALSE(HasFileSignature(""));
  EXPECT_FALSE(HasFileSignature("sig=1&signatures=2"));
  EXPECT_FALSE(HasFileSignature("x=signature"));
  EXPECT_FALSE(HasFileSignature("=1&signature=2"));  // malformed query
}

}  // namespace
}  // namespace fhirbulk
