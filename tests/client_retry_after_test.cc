#include "client/retry_after.h"

#include <gtest/gtest.h>

#include <chrono>

#include "client/token_source.h"
#include "util/fhir_time.h"

namespace fhirbulk {
namespace client {
namespace {

int64_t At(const char* instant) {
  auto r = ParseInstant(instant);
  EXPECT_TRUE(r.ok()) << instant;
  return r.ok() ? *r : 0;
}

TEST(ClientRetryAfterTest, Seconds) {
  const int64_t now = At("2024-06-05T17:59:00Z");
  EXPECT_EQ(ParseRetryAfter("120", now), 120);
  EXPECT_EQ(ParseRetryAfter("0", now), 0);
  EXPECT_EQ(ParseRetryAfter(" 5 ", now), 5);
  EXPECT_EQ(ParseRetryAfter("007", now), 7);
  EXPECT_EQ(ParseRetryAfter("99999999999999999999999", now), kMaxRetryAfterSeconds);
  EXPECT_EQ(ParseRetryAfter("7200", now), kMaxRetryAfterSeconds);
}

TEST(ClientRetryAfterTest, HttpDates) {
  const int64_t now = At("2024-06-05T17:59:00Z");
  EXPECT_EQ(ParseRetryAfter("Wed, 05 Jun 2024 18:00:00 GMT", now), 60);
  EXPECT_EQ(ParseRetryAfter("Wednesday, 05-Jun-24 18:00:00 GMT", now), 60);  // RFC 850
  EXPECT_EQ(ParseRetryAfter("Wed Jun  5 18:00:00 2024", now), 60);           // asctime
  EXPECT_EQ(ParseRetryAfter("Wed, 05 Jun 2024 17:00:00 GMT", now), 0) << "in the past";
  // a fraction of a second to go rounds up: waking early only earns another 429
  EXPECT_EQ(ParseRetryAfter("Wed, 05 Jun 2024 18:00:00 GMT", At("2024-06-05T17:59:59.5Z")), 1);
  EXPECT_EQ(ParseRetryAfter("Thu, 06 Jun 2024 18:00:00 GMT", now), kMaxRetryAfterSeconds);
}

TEST(ClientRetryAfterTest, Junk) {
  const int64_t now = At("2024-06-05T17:59:00Z");
  for (const char* junk :
       {"", " ", "-1", "1.5", "5s", "soon", "0x10", "+5", "Wed, 31 Feb 2024 18:00:00 GMT",
        "Wed, 05 Jun 2024 18:00:00 UTC", "wed, 05 Jun 2024 18:00:00 GMT",
        "Wed, 05 Jun 2024 24:00:00 GMT", "Wed, 5 Jun 2024 18:00:00 GMT",
        "Wed, 05 June 2024 18:00:00 GMT", "2024-06-05T18:00:00Z", "Wed, 05 Jun 2024 18:00 GMT",
        "Wed, 05 Jun 2024 18:00:00 GMT trailing"}) {
    EXPECT_FALSE(ParseRetryAfter(junk, now).has_value()) << "'" << junk << "'";
  }
}

TEST(ClientRetryAfterTest, HttpDateRoundTrip) {
  for (const char* instant : {"1994-11-06T08:49:37Z", "2000-02-29T23:59:59Z",
                              "2024-06-05T18:00:00Z", "2069-12-31T00:00:00Z"}) {
    auto back = ParseHttpDate(FormatHttpDate(At(instant)));
    ASSERT_TRUE(back.ok()) << FormatHttpDate(At(instant));
    EXPECT_EQ(*back, At(instant));
  }
  EXPECT_EQ(*ParseHttpDate("Sunday, 06-Nov-94 08:49:37 GMT"), At("1994-11-06T08:49:37Z"));
  EXPECT_EQ(*ParseHttpDate("Sun Nov  6 08:49:37 1994"), At("1994-11-06T08:49:37Z"));
  EXPECT_EQ(*ParseHttpDate("Thu, 29 Feb 2024 00:00:00 GMT"), At("2024-02-29T00:00:00Z"));
  EXPECT_FALSE(ParseHttpDate("Thu, 29 Feb 2023 00:00:00 GMT").ok()) << "not a leap year";
}

TEST(ClientRetryAfterTest, ExponentialBackoff) {
  Backoff b(1, 60);
  std::vector<double> got;
  got.reserve(9);
  for (int i = 0; i < 9; ++i) got.push_back(b.Next());
  EXPECT_EQ(got, (std::vector<double>{1, 2, 4, 8, 16, 32, 60, 60, 60}));
  b.Reset();
  EXPECT_EQ(b.Next(), 1);
  Backoff slow(0.5, 3, 3);
  EXPECT_EQ(slow.Next(), 0.5);
  EXPECT_EQ(slow.Next(), 1.5);
  EXPECT_EQ(slow.Next(), 3);
}

TEST(ClientRetryAfterTest, TheServersWaitComesFirstButNeverBelowASecond) {
  Backoff b(2, 60);
  EXPECT_EQ(b.Next(std::optional<int64_t>(30)), 30);
  EXPECT_EQ(b.Next(std::optional<int64_t>(0)), 1);  // "Retry-After: 0" is no busy loop
  EXPECT_EQ(b.Next(std::nullopt), 2);               // the server did not say: back off
  EXPECT_EQ(b.Next(std::nullopt), 4);
}

TEST(ClientRetryAfterTest, TokensAreRenewedBeforeTheyExpire) {
  using std::chrono::seconds;
  EXPECT_EQ(TokenSource::RenewMargin(seconds(300)), seconds(60));
  EXPECT_EQ(TokenSource::RenewMargin(seconds(3600)), seconds(60));
  EXPECT_EQ(TokenSource::RenewMargin(seconds(20)), seconds(4));
  EXPECT_EQ(TokenSource::RenewMargin(seconds(3)), seconds(1));
  EXPECT_EQ(TokenSource::RenewMargin(seconds(1)), seconds(1));
}

}  // namespace
}  // namespace client
}  // namespace fhirbulk
