#include "synth/clock.h"

namespace fhirbulk {
namespace synth {

int64_t DaysFromCivil(int year, int month, int day) {
  int64_t y = year - (month <= 2 ? 1 : 0);
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

void CivilFromDays(int64_t z, int* year, int* month, int* day) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t y = yoe + era * 400;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  *day = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  *month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  *year = static_cast<int>(y + (*month <= 2 ? 1 : 0));
}

namespace {

// Day number of the n-th Sunday (n >= 1) of a month, or the last Sunday when n == 0.
int64_t SundayOfMonth(int year, int month, int n) {
  // 1970-01-01 was a Thursday: weekday = (days + 4) mod 7, Sunday = 0.
  if (n == 0) {
    int next_month = month == 12 ? 1 : month + 1;
    int next_year = month == 12 ? year + 1 : year;
    int64_t last = DaysFromCivil(next_year, next_month, 1) - 1;
    int64_t wd = ((last + 4) % 7 + 7) % 7;
    return last - wd;
  }
  int64_t first = DaysFromCivil(year, month, 1);
  int64_t wd = ((first + 4) % 7 + 7) % 7;
  int64_t first_sunday = first + (7 - wd) % 7;
  return first_sunday + int64_t{7} * (n - 1);
}

void Append2(std::string* out, int v) {
  out->push_back(static_cast<char>('0' + v / 10));
  out->push_back(static_cast<char>('0' + v % 10));
}

void AppendYmd(std::string* out, int64_t days) {
  int y, m, d;
  CivilFromDays(days, &y, &m, &d);
  if (y < 0) y = 0;
  out->push_back(static_cast<char>('0' + (y / 1000) % 10));
  out->push_back(static_cast<char>('0' + (y / 100) % 10));
  Append2(out, y % 100);
  out->push_back('-');
  Append2(out, m);
  out->push_back('-');
  Append2(out, d);
}

void AppendHms(std::string* out, int64_t secs_of_day) {
  Append2(out, static_cast<int>(secs_of_day / 3600));
  out->push_back(':');
  Append2(out, static_cast<int>(secs_of_day / 60 % 60));
  out->push_back(':');
  Append2(out, static_cast<int>(secs_of_day % 60));
}

int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

void AppendLocal(std::string* out, int64_t t, int millis) {
  int offset = EasternOffsetSeconds(t);
  int64_t local = t + offset;
  int64_t days = FloorDiv(local, kSecondsPerDay);
  AppendYmd(out, days);
  out->push_back('T');
  AppendHms(out, local - days * kSecondsPerDay);
  if (millis >= 0) {
    out->push_back('.');
    out->push_back(static_cast<char>('0' + millis / 100));
    Append2(out, millis % 100);
  }
  out->append(offset == -14400 ? "-04:00" : "-05:00");
}

}  // namespace

int EasternOffsetSeconds(int64_t t) {
  int64_t standard_local = t - 18000;
  int64_t days = FloorDiv(standard_local, kSecondsPerDay);
  int y, m, d;
  CivilFromDays(days, &y, &m, &d);
  int64_t start, end;  // local standard-time day numbers of the switches (at 02:00)
  if (y >= 2007) {
    start = SundayOfMonth(y, 3, 2);
    end = SundayOfMonth(y, 11, 1);
  } else {
    start = SundayOfMonth(y, 4, 1);
    end = SundayOfMonth(y, 10, 0);
  }
  int64_t start_t = start * kSecondsPerDay + int64_t{2} * 3600;
  int64_t end_t = end * kSecondsPerDay + int64_t{1} * 3600;  // 02:00 daylight = 01:00 standard
  return standard_local >= start_t && standard_local < end_t ? -14400 : -18000;
}

void AppendLocalDateTime(std::string* out, int64_t t) { AppendLocal(out, t, -1); }

void AppendLocalDateTimeMillis(std::string* out, int64_t t, int millis) {
  AppendLocal(out, t, millis);
}

void AppendLocalDate(std::string* out, int64_t t) {
  int64_t local = t + EasternOffsetSeconds(t);
  AppendYmd(out, FloorDiv(local, kSecondsPerDay));
}

void AppendUtcInstant(std::string* out, int64_t t, int millis) {
  int64_t days = FloorDiv(t, kSecondsPerDay);
  AppendYmd(out, days);
  out->push_back('T');
  AppendHms(out, t - days * kSecondsPerDay);
  out->push_back('.');
  out->push_back(static_cast<char>('0' + millis / 100));
  Append2(out, millis % 100);
  out->push_back('Z');
}

int YearsBetween(int64_t birth, int64_t at) {
  int by, bm, bd, ay, am, ad;
  CivilFromDays(FloorDiv(birth, kSecondsPerDay), &by, &bm, &bd);
  CivilFromDays(FloorDiv(at, kSecondsPerDay), &ay, &am, &ad);
  int years = ay - by;
  if (am < bm || (am == bm && ad < bd)) years--;
  return years;
}

}  // namespace synth
}  // namespace fhirbulk
