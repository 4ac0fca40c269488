// FHIR date/time parsing and formatting with plain integer arithmetic: no locale, no TZ
// environment, no mktime/timegm. Civil dates are converted with the days-from-civil algorithm
// (proleptic Gregorian calendar, H. Hinnant), which is exact for every FHIR year (0001-9999).

#include "util/fhir_time.h"

#include <chrono>
#include <cstdio>

namespace fhirbulk {

namespace {

constexpr int64_t kMicrosPerSecond = 1000000;
constexpr int64_t kMicrosPerDay = 86400 * kMicrosPerSecond;

// Days since 1970-01-01 of a proleptic Gregorian date. REQUIRES: month 1-12, day 1-31.
constexpr int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

struct CivilDate {
  int64_t year;
  unsigned month, day;
};

constexpr CivilDate CivilFromDays(int64_t z) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  return {y + (m <= 2), m, d};
}

static_assert(DaysFromCivil(1970, 1, 1) == 0, "epoch");
static_assert(DaysFromCivil(2000, 3, 1) == 11017, "leap century");

bool IsLeapYear(int year) { return year % 4 == 0 && (year % 100 != 0 || year % 400 == 0); }

int DaysInMonth(int year, int month) {
  static constexpr int kDays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return month == 2 && IsLeapYear(year) ? 29 : kDays[month - 1];
}

// The smallest and largest instants FHIR can write (years 0001 to 9999).
constexpr int64_t kMinInstantUs = DaysFromCivil(1, 1, 1) * kMicrosPerDay;
constexpr int64_t kMaxInstantUs = DaysFromCivil(10000, 1, 1) * kMicrosPerDay - 1;

// How much of a date/dateTime was written.
enum class Precision { kYear, kMonth, kDay, kTime };

struct DateTimeFields {
  Precision precision = Precision::kYear;
  int year = 0, month = 1, day = 1;
  int hour = 0, minute = 0, second = 0;
  int64_t micros = 0;      // fraction of the second, truncated to microseconds
  int offset_seconds = 0;  // zone offset east of UTC (local = UTC + offset)
};

// Reads exactly `n` ASCII digits at text[*pos]. False if any is missing or not a digit.
bool ReadDigits(std::string_view text, size_t* pos, int n, int* value) {
  if (text.size() - *pos < static_cast<size_t>(n)) return false;
  int v = 0;
  for (int i = 0; i < n; ++i) {
    const char c = text[*pos + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *pos += n;
  *value = v;
  return true;
}

bool Expect(std::string_view text, size_t* pos, char c) {
  if (*pos >= text.size() || text[*pos] != c) return false;
  ++*pos;
  return true;
}

// Parses the R4 dateTime grammar (which contains date and instant):
//   YYYY(-MM(-DD(Thh:mm:ss(.f+)?(Z|(+|-)hh:mm))?)?)?
// with the value checks of the R4 regexes (year 0001-9999, hour 00-23, minute 00-59, second
// 00-60, zone -14:00..+14:00) plus calendar validity of the day (which the regex lacks).
Status ParseFields(std::string_view text, DateTimeFields* f) {
  auto invalid = [&](const char* why) {
    std::string msg = "invalid FHIR date/time '";
    msg.append(text.data(), text.size() > 64 ? 64 : text.size());
    msg += "': ";
    msg += why;
    return Status::InvalidArgument(std::move(msg));
  };
  size_t pos = 0;
  if (!ReadDigits(text, &pos, 4, &f->year)) return invalid("expected a 4-digit year");
  if (f->year == 0) return invalid("year 0000 does not exist");
  f->precision = Precision::kYear;
  if (pos == text.size()) return Status::OK();

  if (!Expect(text, &pos, '-') || !ReadDigits(text, &pos, 2, &f->month)) {
    return invalid("expected -MM after the year");
  }
  if (f->month < 1 || f->month > 12) return invalid("month out of range");
  f->precision = Precision::kMonth;
  if (pos == text.size()) return Status::OK();

  if (!Expect(text, &pos, '-') || !ReadDigits(text, &pos, 2, &f->day)) {
    return invalid("expected -DD after the month");
  }
  if (f->day < 1 || f->day > DaysInMonth(f->year, f->month)) return invalid("day out of range");
  f->precision = Precision::kDay;
  if (pos == text.size()) return Status::OK();

  if (!Expect(text, &pos, 'T')) return invalid("expected T after the date");
  if (!ReadDigits(text, &pos, 2, &f->hour) || !Expect(text, &pos, ':') ||
      !ReadDigits(text, &pos, 2, &f->minute) || !Expect(text, &pos, ':') ||
      !ReadDigits(text, &pos, 2, &f->second)) {
    return invalid("expected hh:mm:ss");
  }
  if (f->hour > 23) return invalid("hour out of range");
  if (f->minute > 59) return invalid("minute out of range");
  // 60 is a leap second; the R4 regexes allow it. POSIX time has no leap seconds, so it is
  // counted as the first second of the next minute.
  if (f->second > 60) return invalid("second out of range");
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    const size_t start = pos;
    int64_t micros = 0;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      if (pos - start < 6) micros = micros * 10 + (text[pos] - '0');
      ++pos;
    }
    if (pos == start) return invalid("expected digits after the decimal point");
    for (size_t digits = pos - start; digits < 6; ++digits) micros *= 10;
    f->micros = micros;
  }
  if (pos == text.size()) return invalid("a time requires a zone (Z or +hh:mm)");
  const char zone = text[pos++];
  if (zone == 'Z') {
    f->offset_seconds = 0;
  } else if (zone == '+' || zone == '-') {
    int oh = 0, om = 0;
    if (!ReadDigits(text, &pos, 2, &oh) || !Expect(text, &pos, ':') ||
        !ReadDigits(text, &pos, 2, &om)) {
      return invalid("expected a zone offset hh:mm");
    }
    if (om > 59 || oh > 14 || (oh == 14 && om != 0)) return invalid("zone offset out of range");
    f->offset_seconds = (oh * 3600 + om * 60) * (zone == '-' ? -1 : 1);
  } else {
    return invalid("expected Z or a zone offset");
  }
  if (pos != text.size()) return invalid("unexpected characters after the zone");
  f->precision = Precision::kTime;
  return Status::OK();
}

// The instant a fully specified dateTime denotes.
int64_t FieldsToMicros(const DateTimeFields& f) {
  const int64_t days = DaysFromCivil(f.year, f.month, f.day);
  const int64_t seconds = days * 86400 + int64_t{f.hour} * 3600 + int64_t{f.minute} * 60 +
                          f.second - static_cast<int64_t>(f.offset_seconds);
  return seconds * kMicrosPerSecond + f.micros;
}

int64_t StartOfDayMicros(int year, int month, int day) {
  return DaysFromCivil(year, month, day) * kMicrosPerDay;
}

// Splits us into whole seconds (floored) and the microsecond remainder in [0, 1e6).
void SplitMicros(int64_t us, int64_t* seconds, int64_t* micros) {
  *seconds = us / kMicrosPerSecond;
  *micros = us % kMicrosPerSecond;
  if (*micros < 0) {
    *micros += kMicrosPerSecond;
    --*seconds;
  }
}

struct BrokenDown {
  CivilDate date;
  int hour, minute, second;
  int64_t micros;
  int weekday;  // 0 = Sunday
};

BrokenDown BreakDown(int64_t us) {
  int64_t seconds, micros;
  SplitMicros(us, &seconds, &micros);
  int64_t days = seconds / 86400;
  int64_t secs_of_day = seconds % 86400;
  if (secs_of_day < 0) {
    secs_of_day += 86400;
    --days;
  }
  BrokenDown b;
  b.date = CivilFromDays(days);
  b.hour = static_cast<int>(secs_of_day / 3600);
  b.minute = static_cast<int>(secs_of_day / 60 % 60);
  b.second = static_cast<int>(secs_of_day % 60);
  b.micros = micros;
  // 1970-01-01 was a Thursday (4).
  b.weekday = static_cast<int>(((days % 7) + 7 + 4) % 7);
  return b;
}

}  // namespace

Result<int64_t> ParseInstant(std::string_view text) {
  DateTimeFields f;
  Status s = ParseFields(text, &f);
  if (!s.ok()) return s;
  if (f.precision != Precision::kTime) {
    return Status::InvalidArgument("invalid FHIR instant '" + std::string(text.substr(0, 64)) +
                                   "': time and zone are required");
  }
  return FieldsToMicros(f);
}

Result<TimeRange> ParseDateTimeRange(std::string_view text) {
  DateTimeFields f;
  Status s = ParseFields(text, &f);
  if (!s.ok()) return s;
  switch (f.precision) {
    case Precision::kYear:
      return TimeRange{StartOfDayMicros(f.year, 1, 1), StartOfDayMicros(f.year + 1, 1, 1) - 1};
    case Precision::kMonth: {
      const int next_year = f.month == 12 ? f.year + 1 : f.year;
      const int next_month = f.month == 12 ? 1 : f.month + 1;
      return TimeRange{StartOfDayMicros(f.year, f.month, 1),
                       StartOfDayMicros(next_year, next_month, 1) - 1};
    }
    case Precision::kDay: {
      const int64_t start = StartOfDayMicros(f.year, f.month, f.day);
      return TimeRange{start, start + kMicrosPerDay - 1};
    }
    case Precision::kTime: {
      const int64_t t = FieldsToMicros(f);
      return TimeRange{t, t};
    }
  }
  return Status::Internal("unreachable precision");
}

std::string FormatInstant(int64_t us) {
  if (us < kMinInstantUs) us = kMinInstantUs;
  if (us > kMaxInstantUs) us = kMaxInstantUs;
  const BrokenDown b = BreakDown(us);
  char buf[40];
  int n = std::snprintf(buf, sizeof(buf), "%04d-%02u-%02uT%02d:%02d:%02d",
                        static_cast<int>(b.date.year), b.date.month, b.date.day, b.hour, b.minute,
                        b.second);
  if (b.micros != 0) {
    if (b.micros % 1000 == 0) {
      n += std::snprintf(buf + n, sizeof(buf) - n, ".%03d", static_cast<int>(b.micros / 1000));
    } else {
      n += std::snprintf(buf + n, sizeof(buf) - n, ".%06d", static_cast<int>(b.micros));
    }
  }
  buf[n++] = 'Z';
  return std::string(buf, n);
}

std::string FormatHttpDate(int64_t us) {
  static constexpr const char* kWeekdays[7] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                              "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  if (us < kMinInstantUs) us = kMinInstantUs;
  if (us > kMaxInstantUs) us = kMaxInstantUs;
  const BrokenDown b = BreakDown(us);
  char buf[40];
  const int n = std::snprintf(buf, sizeof(buf), "%s, %02u %s %04d %02d:%02d:%02d GMT",
                              kWeekdays[b.weekday], b.date.day, kMonths[b.date.month - 1],
                              static_cast<int>(b.date.year), b.hour, b.minute, b.second);
  return std::string(buf, n);
}

int64_t NowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace fhirbulk
