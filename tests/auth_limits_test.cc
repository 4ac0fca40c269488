// Issue 11 (gateway safety), authorization side: the log escaper, the bounds on every auth
// parser of untrusted bytes (token form, JWS, JWK Sets, access tokens, signed-URL queries).
// Over a bound the answer is a refusal with a reason, never a crash or unbounded work.

#include <gtest/gtest.h>

#include <string>

#include "auth/access_token.h"
#include "auth/jwk.h"
#include "auth/jws.h"
#include "auth/key_ring.h"
#include "auth/signed_url.h"
#include "auth/token_endpoint.h"
#include "auth_test_keys.h"
#include "util/base64url.h"
#include "util/json_depth.h"
#include "util/log_escape.h"

namespace fhirbulk {
namespace {

// ---- LogEscape / LogSanitize ------------------------------------------------------------------

TEST(LogEscapeTest, ControlBytesQuotesAndBackslashesBecomeHex) {
  EXPECT_EQ(LogEscape("RS384"), "RS384");
  EXPECT_EQ(LogEscape("a\nb"), "a\\x0Ab");
  EXPECT_EQ(LogEscape("a\r\n2026/12/07 [emerg] 1#1: FAKE"),
            "a\\x0D\\x0A2026/12/07 [emerg] 1#1: FAKE");
  EXPECT_EQ(LogEscape(std::string("n\0l", 3)), "n\\x00l");
  EXPECT_EQ(LogEscape("\x1b[31mred"), "\\x1B[31mred");
  EXPECT_EQ(LogEscape("del\x7f"), "del\\x7F");
  EXPECT_EQ(LogEscape("\xc3\xa9\xff"), "\\xC3\\xA9\\xFF");
  EXPECT_EQ(LogEscape("q\"s'b\\"), "q\\x22s\\x27b\\x5C");
  EXPECT_EQ(LogEscape(""), "");
  // Every output byte is printable ASCII, for every input byte.
  std::string all;
  for (int c = 0; c < 256; c++) all += static_cast<char>(c);
  std::string out = LogEscape(all, 1000);
  for (char c : out) EXPECT_TRUE(c >= 0x20 && c < 0x7f) << static_cast<int>(c);
  EXPECT_EQ(out.find('\n'), std::string::npos);
}

TEST(LogEscapeTest, LongInputIsCut) {
  EXPECT_EQ(LogEscape(std::string(1000, 'a')), std::string(kLogFieldMaxBytes, 'a') + "...");
  EXPECT_EQ(LogEscape("abcdef", 3), "abc...");
  EXPECT_EQ(LogEscape("abc", 3), "abc");
  // The bound is on input bytes: escaped output is at most 4x + 3.
  EXPECT_EQ(LogEscape(std::string(100, '\n'), 10).size(), 43u);
  EXPECT_EQ(LogSanitize(std::string(1 << 20, 'x')).size(), kLogMessageMaxBytes + 3);
}

TEST(LogEscapeTest, SanitizeKeepsEscapedTextAndQuotes) {
  std::string escaped = LogEscape("alg\n\"x\"\\");
  EXPECT_EQ(LogSanitize(escaped), escaped);  // no double escaping at the sink
  EXPECT_EQ(LogSanitize("alg 'RS384' not allowed"), "alg 'RS384' not allowed");
  EXPECT_EQ(LogSanitize("a\nb\tc"), "a\\x0Ab\\x09c");
  EXPECT_EQ(LogSanitize(std::string("\0\xff", 2)), "\\x00\\xFF");
}

// ---- JSON nesting -------------------------------------------------------------------------------

TEST(JsonDepthTest, CountsNestingOutsideStrings) {
  EXPECT_TRUE(JsonNestingWithin("{}", 1));
  EXPECT_FALSE(JsonNestingWithin("{\"a\":[]}", 1));
  EXPECT_TRUE(JsonNestingWithin("{\"a\":[]}", 2));
  EXPECT_TRUE(JsonNestingWithin("{\"a\":\"[[[[[[\"}", 1));        // brackets in a string
  EXPECT_TRUE(JsonNestingWithin("{\"a\":\"\\\"[[[[\"}", 1));      // escaped quote in a string
  EXPECT_TRUE(JsonNestingWithin("[1],[2],[3],[4]", 1));           // siblings do not add up
  EXPECT_FALSE(JsonNestingWithin(std::string(150000, '['), 16));  // issue 11 row 1 shape
  EXPECT_TRUE(JsonNestingWithin(std::string(16, '[') + std::string(16, ']'), 16));
  EXPECT_FALSE(JsonNestingWithin(std::string(17, '{'), 16));
}

// ---- JWS ----------------------------------------------------------------------------------------

std::string Jws(const std::string& header, const std::string& payload) {
  return Base64UrlEncode(header) + "." + Base64UrlEncode(payload) + "." + Base64UrlEncode("sig");
}

TEST(AuthJwsLimitsTest, DeepHeaderOrPayloadIsRefusedUnparsed) {
  const std::string deep =
      "{\"alg\":\"RS384\",\"x\":" + std::string(5000, '[') + std::string(5000, ']') + "}";
  auto h = ParseCompactJws(Jws(deep, "{}"));
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.status().message(), "JWS JSON nested too deeply");
  auto p = ParseCompactJws(Jws("{\"alg\":\"RS384\"}", "{\"a\":" + std::string(11000, '[') + "}"));
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().message(), "JWS JSON nested too deeply");
  // Moderate nesting (an aud array, a cnf object) is fine.
  auto ok = ParseCompactJws(
      Jws("{\"alg\":\"RS384\"}", "{\"aud\":[\"x\"],\"cnf\":{\"jkt\":{\"a\":[[1]]}}}"));
  EXPECT_TRUE(ok.ok()) << ok.status().ToString();
  // Over 16 KiB: refused before decoding.
  auto big = ParseCompactJws(std::string(16 * 1024 + 1, 'a'));
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.status().message(), "token too large");
}

// ---- JWK Sets -----------------------------------------------------------------------------------

TEST(AuthJwksLimitsTest, TooManyKeysOrTooDeep) {
  std::string keys;
  for (int i = 0; i < 33; i++) {
    if (i > 0) keys += ",";
    keys += testkeys::EcJwk(testkeys::P384(), "k" + std::to_string(i));
  }
  for (bool skip : {false, true}) {
    auto r = ParseJwks(testkeys::JwkSet(keys), skip);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().message(), "JWK Set has more than 32 keys");
  }
  std::string deep = "{\"keys\":[" +
                     testkeys::EcJwk(testkeys::P384(), "a", "P-384",
                                     ",\"x5c\":" + std::string(40, '[') + std::string(40, ']')) +
                     "]}";
  auto d = ParseJwks(deep, true);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().message(), "JWK Set nested too deeply");
  auto huge = ParseJwks("{\"keys\":" + std::string(60000, '[') + "}", true);
  ASSERT_FALSE(huge.ok());
  EXPECT_EQ(huge.status().message(), "JWK Set nested too deeply");
  // 32 keys are fine.
  std::string k32;
  for (int i = 0; i < 32; i++) {
    if (i > 0) k32 += ",";
    k32 += testkeys::EcJwk(testkeys::P384(), "k" + std::to_string(i));
  }
  auto fine = ParseJwks(testkeys::JwkSet(k32));
  ASSERT_TRUE(fine.ok()) << fine.status().ToString();
  EXPECT_EQ(fine->size(), 32u);
}

TEST(AuthJwksLimitsTest, KidsInMessagesAreEscaped) {
  std::string two = testkeys::EcJwk(testkeys::P384(), "a\\nFAKE") + "," +
                    testkeys::EcJwk(testkeys::P384(), "a\\nFAKE");
  auto r = ParseJwks(testkeys::JwkSet(two));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "JWK Set: key 2: kid 'a\\x0AFAKE' repeated");
}

// ---- signed URL queries ---------------------------------------------------------------------

TEST(AuthSignedUrlLimitsTest, LongOrCrowdedQueriesAreRefused) {
  KeyRing ring = KeyRing::Parse("u1 " + std::string(40, 'u')).value();
  const int64_t now = 1717520400;
  std::string q = SignFileQuery(ring, "job1", "Patient.ndjson", "client-1", now + 300);
  ASSERT_TRUE(VerifyFileQuery(ring, "job1", "Patient.ndjson", q, now).ok());
  EXPECT_LE(kDefaultSignedUrlLifetimeSeconds, 300);

  auto long_q = VerifyFileQuery(ring, "job1", "Patient.ndjson",
                                q + "&pad=" + std::string(kMaxSignedQueryBytes, 'x'), now);
  ASSERT_FALSE(long_q.ok());
  EXPECT_EQ(long_q.status().code(), Status::Code::kPermissionDenied);
  EXPECT_EQ(long_q.status().message(), "signed URL too long");

  std::string crowded = q;
  for (size_t i = 0; i < kMaxSignedQueryParams; i++) crowded += "&x" + std::to_string(i) + "=1";
  ASSERT_LE(crowded.size(), kMaxSignedQueryBytes);
  auto c = VerifyFileQuery(ring, "job1", "Patient.ndjson", crowded, now);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(), "signed URL has too many parameters");

  // A few harmless extra parameters are still fine (a cache-buster, say).
  EXPECT_TRUE(VerifyFileQuery(ring, "job1", "Patient.ndjson", q + "&_=1", now).ok());
  // Expired.
  auto expired = VerifyFileQuery(ring, "job1", "Patient.ndjson", q, now + 300);
  ASSERT_FALSE(expired.ok());
  EXPECT_EQ(expired.status().message(), "signed URL expired");
}

// ---- the token form (no database: PrecheckTokenRequest) --------------------------------------

std::string ErrorOf(const std::optional<TokenResult>& r) {
  if (!r) return "passes";
  return std::to_string(r->response.status) + " " + r->detail;
}

TEST(AuthTokenFormLimitsTest, SizeFieldCountAndLengths) {
  const std::string ct = "application/x-www-form-urlencoded";
  const std::string good =
      "grant_type=client_credentials&scope=system%2F*.read&client_assertion_type="
      "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=a.b.c";
  EXPECT_EQ(ErrorOf(PrecheckTokenRequest(ct, good)), "passes");

  EXPECT_EQ(ErrorOf(PrecheckTokenRequest(ct, good + "&x=" + std::string(kMaxTokenFormBytes, 'a'))),
            "400 invalid_request: the form body is larger than 32 KiB");
  std::string many = good;
  for (int i = 0; i < 20; i++) many += "&f" + std::to_string(i) + "=1";
  EXPECT_EQ(ErrorOf(PrecheckTokenRequest(ct, many)),
            "400 invalid_request: the form body has more than 16 fields");
  EXPECT_EQ(ErrorOf(PrecheckTokenRequest(ct, std::string(100000, '&'))),
            "400 invalid_request: the form body is larger than 32 KiB");
  EXPECT_EQ(ErrorOf(PrecheckTokenRequest(ct, good + "&" + std::string(65, 'n') + "=1")),
            "400 invalid_request: a form field name is too long");
  EXPECT_EQ(ErrorOf(PrecheckTokenRequest(
                ct, good + "&client_id=" + std::string(kMaxTokenFieldBytes + 1, 'c'))),
            "400 invalid_request: form field client_id is too long");
  // A repeated parameter's name is escaped in the message (it is client-chosen).
  EXPECT_EQ(ErrorOf(PrecheckTokenRequest(ct, good + "&a%0Ab=1&a%0Ab=2")),
            "400 invalid_request: parameter a\\x0Ab is repeated");
}

}  // namespace
}  // namespace fhirbulk
