// AccessTokenCache (auth/token_cache.h): remembered verdicts are exactly VerifyAccessToken's,
// expiry is checked on every hit, failures are not remembered, the size is bounded. And
// HmacSha256's per-thread keyed contexts (auth/jws.h) give the same MACs across many secrets.

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "auth/access_token.h"
#include "auth/jws.h"
#include "auth/key_ring.h"
#include "auth/scopes.h"
#include "auth/token_cache.h"

namespace fhirbulk {
namespace {

constexpr int64_t kNow = 1800000000;

std::shared_ptr<const KeyRing> Ring(const std::string& text) {
  auto r = KeyRing::Parse(text);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return std::make_shared<const KeyRing>(r.ok() ? std::move(r).value() : KeyRing());
}

const std::string kKeys = "k1 " + std::string(40, 'a') + "\n";
const std::string kOtherKeys = "k1 " + std::string(40, 'b') + "\n";

std::string Token(const KeyRing& ring, const std::string& client, const std::string& scopes,
                  int64_t issued, int lifetime = 300) {
  auto s = ScopeSet::Parse(scopes);
  EXPECT_TRUE(s.ok());
  return IssueAccessToken(ring, client, *s, issued, lifetime);
}

TEST(AccessTokenCacheTest, HitGivesTheSamePrincipalShared) {
  auto ring = Ring(kKeys);
  AccessTokenCache cache(ring, 300, 16);
  const std::string t = Token(*ring, "client-1", "system/Patient.r system/Observation.rs", kNow);
  auto a = cache.Verify(t, kNow + 1);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  auto b = cache.Verify(t, kNow + 2);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(a->get(), b->get());  // remembered, not verified again
  EXPECT_EQ((*b)->client_id, "client-1");
  EXPECT_EQ((*b)->scopes.ToString(), "system/Observation.rs system/Patient.r");
  EXPECT_EQ((*b)->expires_at, kNow + 300);
  EXPECT_EQ((*b)->issued_at, kNow);
  EXPECT_EQ(cache.size(), 1u);
}

// Expiry is checked on every hit: the second the token expires it is refused, as uncached.
TEST(AccessTokenCacheTest, ExpiredTokenIsRefusedOnAHit) {
  auto ring = Ring(kKeys);
  AccessTokenCache cache(ring, 300, 16);
  const std::string t = Token(*ring, "client-1", "system/*.r", kNow, 60);
  ASSERT_TRUE(cache.Verify(t, kNow + 59).ok());
  auto expired = cache.Verify(t, kNow + 60);
  ASSERT_FALSE(expired.ok());
  EXPECT_EQ(expired.status().code(), Status::Code::kUnauthenticated);
  EXPECT_EQ(expired.status().message(), VerifyAccessToken(*ring, t, kNow + 60).status().message());
  EXPECT_EQ(cache.size(), 0u);  // dropped
  EXPECT_FALSE(cache.Verify(t, kNow + 61).ok());
}

// A token issued "in the future" beyond the skew is refused on a hit too (a clock set back).
TEST(AccessTokenCacheTest, IssuedInTheFutureIsRefusedOnAHit) {
  auto ring = Ring(kKeys);
  AccessTokenCache cache(ring, 300, 16);
  const std::string t = Token(*ring, "client-1", "system/*.r", kNow);
  ASSERT_TRUE(cache.Verify(t, kNow).ok());
  auto back = cache.Verify(t, kNow - kAccessTokenClockSkewSeconds - 1);
  EXPECT_FALSE(back.ok());
  EXPECT_TRUE(cache.Verify(t, kNow).ok());
}

// Failures are not remembered, and a token of another key, or a changed byte, never matches
// a remembered one.
TEST(AccessTokenCacheTest, FailuresAreVerifiedEveryTime) {
  auto ring = Ring(kKeys);
  AccessTokenCache cache(ring, 300, 16);
  const std::string good = Token(*ring, "client-1", "system/*.r", kNow);
  ASSERT_TRUE(cache.Verify(good, kNow).ok());
  const std::string foreign = Token(*Ring(kOtherKeys), "client-1", "system/*.r", kNow);
  EXPECT_FALSE(cache.Verify(foreign, kNow).ok());
  EXPECT_FALSE(cache.Verify(foreign, kNow).ok());
  std::string tampered = good;
  tampered[tampered.size() - 2] = tampered[tampered.size() - 2] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(cache.Verify(tampered, kNow).ok());
  EXPECT_FALSE(cache.Verify("", kNow).ok());
  EXPECT_FALSE(cache.Verify("not.a.token", kNow).ok());
  EXPECT_EQ(cache.size(), 1u);
  // The configured lifetime binds cached verdicts too: the cache's limit is its ring's.
  AccessTokenCache short_lived(ring, 60, 16);
  EXPECT_FALSE(short_lived.Verify(good, kNow).ok());
  EXPECT_EQ(short_lived.size(), 0u);
}

// Each token is its own principal: two clients' tokens never share an entry.
TEST(AccessTokenCacheTest, ClientsDoNotShareEntries) {
  auto ring = Ring(kKeys);
  AccessTokenCache cache(ring, 300, 16);
  const std::string t1 = Token(*ring, "client-1", "system/*.r", kNow);
  const std::string t2 = Token(*ring, "client-2", "system/Patient.r", kNow);
  for (int i = 0; i < 3; i++) {
    auto a = cache.Verify(t1, kNow);
    auto b = cache.Verify(t2, kNow);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ((*a)->client_id, "client-1");
    EXPECT_EQ((*b)->client_id, "client-2");
    EXPECT_EQ((*b)->scopes.ToString(), "system/Patient.r");
  }
}

// Bounded: expired entries go first; all live and full: it starts over.
TEST(AccessTokenCacheTest, Bounded) {
  auto ring = Ring(kKeys);
  AccessTokenCache cache(ring, 300, 4);
  std::vector<std::string> tokens;
  tokens.reserve(4);
  for (int i = 0; i < 4; i++)
    tokens.push_back(Token(*ring, "c" + std::to_string(i), "system/*.r", kNow - 250));
  for (const auto& t : tokens) ASSERT_TRUE(cache.Verify(t, kNow).ok());
  EXPECT_EQ(cache.size(), 4u);
  // Full of live tokens: the fifth starts over.
  ASSERT_TRUE(cache.Verify(Token(*ring, "c4", "system/*.r", kNow), kNow).ok());
  EXPECT_EQ(cache.size(), 1u);
  for (int i = 0; i < 3; i++) ASSERT_TRUE(cache.Verify(tokens[i], kNow).ok());
  EXPECT_EQ(cache.size(), 4u);
  // 60 s later the old ones have expired: a new token drops them and stays.
  ASSERT_TRUE(cache.Verify(Token(*ring, "c5", "system/*.r", kNow + 60), kNow + 60).ok());
  EXPECT_EQ(cache.size(), 2u);
}

TEST(AccessTokenCacheTest, ConcurrentUse) {
  auto ring = Ring(kKeys);
  AccessTokenCache cache(ring, 300, 8);
  std::vector<std::string> tokens;
  tokens.reserve(12);
  for (int i = 0; i < 12; i++)
    tokens.push_back(Token(*ring, "c" + std::to_string(i), "system/*.r", kNow));
  std::vector<std::thread> threads;
  threads.reserve(4);
  std::vector<int> bad(4, 0);
  for (int t = 0; t < 4; t++) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; i++) {
        size_t k = static_cast<size_t>(i * 7 + t) % tokens.size();
        auto p = cache.Verify(tokens[k], kNow);
        if (!p.ok() || (*p)->client_id != "c" + std::to_string(k)) bad[t]++;
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; t++) EXPECT_EQ(bad[t], 0);
  EXPECT_LE(cache.size(), 8u);
}

// The keyed contexts: RFC 4231 vectors still hold after more secrets than a thread keeps, in
// any order, and on other threads.
TEST(HmacSha256ContextsTest, ManySecretsAndThreads) {
  auto hex = [](const std::string& s) {
    static const char* d = "0123456789abcdef";
    std::string out;
    for (unsigned char c : s) {
      out += d[c >> 4];
      out += d[c & 15];
    }
    return out;
  };
  const std::string jefe = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
  const std::string hi = "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7";
  auto check = [&] {
    for (int round = 0; round < 3; round++) {
      EXPECT_EQ(hex(HmacSha256("Jefe", "what do ya want for nothing?")), jefe);
      for (int i = 0; i < 10; i++) HmacSha256("secret-" + std::to_string(i), "x");
      EXPECT_EQ(hex(HmacSha256(std::string(20, '\x0b'), "Hi There")), hi);
      EXPECT_EQ(hex(HmacSha256("Jefe", "what do ya want for nothing?")), jefe);
    }
  };
  check();
  std::thread other(check);
  other.join();
}

}  // namespace
}  // namespace fhirbulk
