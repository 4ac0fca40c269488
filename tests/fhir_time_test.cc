#include "util/fhir_time.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <limits>
#include <string>
#include <vector>

namespace fhirbulk {
namespace {

constexpr int64_t kSecond = 1000000;

int64_t Instant(const char* text) {
  Result<int64_t> r = ParseInstant(text);
  EXPECT_TRUE(r.ok()) << text << ": " << r.status().ToString();
  return r.ok() ? *r : 0;
}

TEST(FhirTimeTest, ParsesInstantsInUtc) {
  EXPECT_EQ(Instant("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(Instant("1970-01-01T00:00:01Z"), kSecond);
  EXPECT_EQ(Instant("2024-06-04T17:12:09.481Z"), 1717521129481000);
  EXPECT_EQ(Instant("2017-01-01T00:00:00Z"), 1483228800 * kSecond);
}

TEST(FhirTimeTest, AppliesZoneOffsets) {
  const int64_t utc = Instant("2024-06-04T17:12:09.481Z");
  EXPECT_EQ(Instant("2024-06-04T19:12:09.481+02:00"), utc);
  EXPECT_EQ(Instant("2024-06-04T12:12:09.481-05:00"), utc);
  EXPECT_EQ(Instant("2024-06-04T22:42:09.481+05:30"), utc);
  EXPECT_EQ(Instant("2024-06-04T17:12:09.481-00:00"), utc);
  // Offsets move the date across day, month and year boundaries.
  EXPECT_EQ(Instant("2011-02-02T16:30:49-05:00"), 1296682249 * kSecond);
  EXPECT_EQ(Instant("2016-12-31T19:00:00-05:00"), Instant("2017-01-01T00:00:00Z"));
  EXPECT_EQ(Instant("2017-01-01T09:00:00+09:00"), Instant("2017-01-01T00:00:00Z"));
  // The zone range ends at +/-14:00.
  EXPECT_EQ(Instant("2024-01-01T14:00:00+14:00"), Instant("2024-01-01T00:00:00Z"));
  EXPECT_EQ(Instant("2024-01-01T00:00:00-14:00"), Instant("2024-01-01T14:00:00Z"));
  EXPECT_EQ(Instant("2024-01-01T13:59:00+13:59"), Instant("2024-01-01T00:00:00Z"));
}

TEST(FhirTimeTest, ReadsFractionsToMicroseconds) {
  EXPECT_EQ(Instant("1970-01-01T00:00:00.1Z"), 100000);
  EXPECT_EQ(Instant("1970-01-01T00:00:00.12Z"), 120000);
  EXPECT_EQ(Instant("1970-01-01T00:00:00.000001Z"), 1);
  EXPECT_EQ(Instant("1970-01-01T00:00:00.123456Z"), 123456);
  // Beyond microseconds: truncated, not rounded.
  EXPECT_EQ(Instant("1970-01-01T00:00:00.1234569Z"), 123456);
  EXPECT_EQ(Instant("1970-01-01T00:00:00.999999999Z"), 999999);
  // Before the epoch the fraction still counts forward from the whole second.
  EXPECT_EQ(Instant("1969-12-31T23:59:59.5Z"), -500000);
  EXPECT_EQ(Instant("1969-12-31T23:59:59Z"), -kSecond);
}

TEST(FhirTimeTest, AcceptsLeapDaysAndLeapSeconds) {
  EXPECT_EQ(Instant("2024-02-29T00:00:00Z"), 1709164800 * kSecond);
  Instant("2000-02-29T12:00:00Z");  // divisible by 400: leap
  // A leap second is the first second of the next minute.
  EXPECT_EQ(Instant("2016-12-31T23:59:60Z"), Instant("2017-01-01T00:00:00Z"));
  EXPECT_EQ(Instant("0001-01-01T00:00:00Z"), -62135596800 * kSecond);
  EXPECT_EQ(Instant("9999-12-31T23:59:59.999999Z"), 253402300800 * kSecond - 1);
}

TEST(FhirTimeTest, RejectsInvalidInstants) {
  const char* kInvalid[] = {
      "",
      "2024",
      "2024-06-04",                 // a date is not an instant
      "2024-06-04T17:12:09",        // zone required
      "2024-06-04T17:12Z",          // seconds required
      "2024-06-04T17:12:09.Z",      // empty fraction
      "2024-06-04T17:12:09.481",    // fraction but no zone
      "2024-06-04 17:12:09Z",       // space instead of T
      "2024-06-04t17:12:09z",       // lower case
      "2024-6-04T17:12:09Z",        // one-digit month
      "24-06-04T17:12:09Z",         // two-digit year
      "0000-01-01T00:00:00Z",       // no year zero
      "2024-00-10T00:00:00Z",       // month 0
      "2024-13-01T00:00:00Z",       // month 13
      "2024-01-00T00:00:00Z",       // day 0
      "2024-01-32T00:00:00Z",       // day 32
      "2024-04-31T00:00:00Z",       // April has 30 days
      "2023-02-29T00:00:00Z",       // not a leap year
      "1900-02-29T00:00:00Z",       // divisible by 100, not 400
      "2024-02-30T00:00:00Z",       // leap February has 29
      "2024-06-04T24:00:00Z",       // hour 24
      "2024-06-04T23:60:00Z",       // minute 60
      "2024-06-04T23:59:61Z",       // second 61
      "2024-06-04T17:12:09+14:01",  // beyond +14:00
      "2024-06-04T17:12:09+15:00",  // beyond +14:00
      "2024-06-04T17:12:09+01:60",  // offset minutes
      "2024-06-04T17:12:09+0100",   // offset needs a colon
      "2024-06-04T17:12:09+01",     // offset needs minutes
      "2024-06-04T17:12:09Zjunk",   // trailing characters
      " 2024-06-04T17:12:09Z",      // leading space
      "2024-06-04T17:12:09Z ",      // trailing space
      "2024-06-04T1a:12:09Z",       // not a digit
      "-2024-06-04T17:12:09Z",      // signed year
  };
  for (const char* text : kInvalid) {
    Result<int64_t> r = ParseInstant(text);
    EXPECT_FALSE(r.ok()) << "accepted '" << text << "'";
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument) << text;
    }
  }
}

TimeRange Range(const char* text) {
  Result<TimeRange> r = ParseDateTimeRange(text);
  EXPECT_TRUE(r.ok()) << text << ": " << r.status().ToString();
  return r.ok() ? *r : TimeRange{0, 0};
}

TEST(FhirTimeTest, YearCoversTheWholeYear) {
  TimeRange r = Range("2020");
  EXPECT_EQ(r.lo_us, 1577836800 * kSecond);
  EXPECT_EQ(r.hi_us, 1609459200 * kSecond - 1);
  EXPECT_EQ(r.hi_us, Instant("2020-12-31T23:59:59.999999Z"));
}

TEST(FhirTimeTest, MonthCoversTheWholeMonth) {
  TimeRange leap = Range("2020-02");
  EXPECT_EQ(leap.lo_us, Instant("2020-02-01T00:00:00Z"));
  EXPECT_EQ(leap.hi_us, Instant("2020-02-29T23:59:59.999999Z"));
  TimeRange common = Range("2021-02");
  EXPECT_EQ(common.hi_us, Instant("2021-02-28T23:59:59.999999Z"));
  TimeRange december = Range("2020-12");
  EXPECT_EQ(december.lo_us, Instant("2020-12-01T00:00:00Z"));
  EXPECT_EQ(december.hi_us, Instant("2021-01-01T00:00:00Z") - 1);
}

TEST(FhirTimeTest, DayCoversTheWholeDay) {
  TimeRange r = Range("2024-02-29");
  EXPECT_EQ(r.lo_us, 1709164800 * kSecond);
  EXPECT_EQ(r.hi_us, r.lo_us + 86400 * kSecond - 1);
  r = Range("1969-12-31");
  EXPECT_EQ(r.lo_us, -86400 * kSecond);
  EXPECT_EQ(r.hi_us, -1);
}

TEST(FhirTimeTest, FullDateTimeIsAPoint) {
  TimeRange r = Range("2011-02-02T16:30:49-05:00");
  EXPECT_EQ(r.lo_us, 1296682249 * kSecond);
  EXPECT_EQ(r.hi_us, r.lo_us);
  r = Range("2024-06-04T17:12:09.481+02:00");
  EXPECT_EQ(r.lo_us, Instant("2024-06-04T15:12:09.481Z"));
  EXPECT_EQ(r.hi_us, r.lo_us);
}

TEST(FhirTimeTest, RejectsInvalidDates) {
  const char* kInvalid[] = {"",
                            "202",
                            "20201",
                            "2020-",
                            "2020-1",
                            "2020-13",
                            "2020-00",
                            "2021-02-29",
                            "2020-02-30",
                            "2020-01-01T",
                            "2020-01-01T10:00:00",
                            "2020-01-01T10:00Z",
                            "2020-01-01Z",
                            "2020-01-01+01:00",
                            "0000",
                            "abcd",
                            "2020/01/01"};
  for (const char* text : kInvalid) {
    EXPECT_FALSE(ParseDateTimeRange(text).ok()) << "accepted '" << text << "'";
  }
}

TEST(FhirTimeTest, FormatsInstantsWithTheShortestExactFraction) {
  EXPECT_EQ(FormatInstant(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(FormatInstant(1717521129481000), "2024-06-04T17:12:09.481Z");
  EXPECT_EQ(FormatInstant(1717521129000000), "2024-06-04T17:12:09Z");
  EXPECT_EQ(FormatInstant(1717521129000001), "2024-06-04T17:12:09.000001Z");
  EXPECT_EQ(FormatInstant(1717521129100000), "2024-06-04T17:12:09.100Z");
  EXPECT_EQ(FormatInstant(1717521129123400), "2024-06-04T17:12:09.123400Z");
  EXPECT_EQ(FormatInstant(-1), "1969-12-31T23:59:59.999999Z");
  EXPECT_EQ(FormatInstant(-500000), "1969-12-31T23:59:59.500Z");
  EXPECT_EQ(FormatInstant(Instant("2024-02-29T23:59:59Z")), "2024-02-29T23:59:59Z");
}

TEST(FhirTimeTest, FormatClampsToTheFhirYearRange) {
  EXPECT_EQ(FormatInstant(std::numeric_limits<int64_t>::max()), "9999-12-31T23:59:59.999999Z");
  EXPECT_EQ(FormatInstant(std::numeric_limits<int64_t>::min()), "0001-01-01T00:00:00Z");
}

TEST(FhirTimeTest, FormattedInstantsReparseToTheSameValue) {
  // A deterministic spread over years 0001-9999, plus edge values.
  std::vector<int64_t> values = {0,
                                 1,
                                 -1,
                                 999,
                                 1000,
                                 999999,
                                 1000000,
                                 -62135596800 * kSecond,
                                 253402300800 * kSecond - 1,
                                 951782400 * kSecond};
  uint64_t state = 0x9E3779B97F4A7C15u;
  const uint64_t span = static_cast<uint64_t>(253402300800 + 62135596800) * kSecond;
  for (int i = 0; i < 20000; ++i) {
    state = state * 6364136223846793005u + 1442695040888963407u;
    int64_t us = static_cast<int64_t>((state >> 1) % span) - 62135596800 * kSecond;
    if (i % 3 == 0) us -= us % 1000;     // millisecond values
    if (i % 3 == 1) us -= us % kSecond;  // whole seconds
    values.push_back(us);
  }
  for (int64_t us : values) {
    const std::string text = FormatInstant(us);
    Result<int64_t> back = ParseInstant(text);
    ASSERT_TRUE(back.ok()) << text;
    EXPECT_EQ(*back, us) << text;
  }
}

TEST(FhirTimeTest, FormatsHttpDates) {
  EXPECT_EQ(FormatHttpDate(Instant("2024-06-05T18:00:00Z")), "Wed, 05 Jun 2024 18:00:00 GMT");
  EXPECT_EQ(FormatHttpDate(0), "Thu, 01 Jan 1970 00:00:00 GMT");
  EXPECT_EQ(FormatHttpDate(Instant("2000-02-29T08:09:10.999Z")), "Tue, 29 Feb 2000 08:09:10 GMT");
  EXPECT_EQ(FormatHttpDate(-1), "Wed, 31 Dec 1969 23:59:59 GMT");
  EXPECT_EQ(FormatHttpDate(Instant("2023-12-31T23:59:59+01:00")), "Sun, 31 Dec 2023 22:59:59 GMT");
}

TEST(FhirTimeTest, NowIsTheWallClock) {
  const int64_t now = NowMicros();
  const int64_t wall = static_cast<int64_t>(std::time(nullptr)) * kSecond;
  EXPECT_LT(std::llabs(now - wall), 5 * kSecond);
  EXPECT_GT(now, Instant("2024-01-01T00:00:00Z"));
}

}  // namespace
}  // namespace fhirbulk
