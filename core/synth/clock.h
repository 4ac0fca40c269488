// Calendar arithmetic and date/time text for the generator, without libc time functions
// (gmtime/localtime depend on the host's zone database; these do not).
//
// Times are seconds since the Unix epoch (UTC). Clinical dates are written the way Synthea
// writes them for its Massachusetts population: local US Eastern time with the offset in
// effect then ("2011-02-02T16:30:49-05:00", "-04:00" in daylight time, US rules of 1987-2006
// before 2007 and of 2007 on afterwards).
//
// Thread-safety: pure functions.

#ifndef FHIRBULK_SYNTH_CLOCK_H_
#define FHIRBULK_SYNTH_CLOCK_H_

#include <cstdint>
#include <string>

namespace fhirbulk {
namespace synth {

constexpr int64_t kSecondsPerDay = 86400;
constexpr int64_t kSecondsPerYear = 31556952;  // mean Gregorian year

// Days since 1970-01-01 for a proleptic Gregorian date, and back (H. Hinnant's algorithms).
int64_t DaysFromCivil(int year, int month, int day);
void CivilFromDays(int64_t days, int* year, int* month, int* day);

// Seconds since the epoch at 00:00:00 UTC of the date.
inline int64_t DateToSeconds(int year, int month, int day) {
  return DaysFromCivil(year, month, day) * kSecondsPerDay;
}

// The US Eastern offset from UTC, in seconds (-18000 or -14400), at a UTC instant.
int EasternOffsetSeconds(int64_t t);

// Appends "YYYY-MM-DDThh:mm:ss-05:00" (US Eastern local time).
void AppendLocalDateTime(std::string* out, int64_t t);
// Appends "YYYY-MM-DDThh:mm:ss.mmm-05:00"; millis in [0, 999].
void AppendLocalDateTimeMillis(std::string* out, int64_t t, int millis);
// Appends "YYYY-MM-DD" (the US Eastern local date).
void AppendLocalDate(std::string* out, int64_t t);
// Appends "YYYY-MM-DDThh:mm:ss.mmmZ" (UTC; for meta.lastUpdated, a FHIR instant).
void AppendUtcInstant(std::string* out, int64_t t, int millis);

// Whole years between two instants (age at `at` of someone born at `birth`).
int YearsBetween(int64_t birth, int64_t at);

}  // namespace synth
}  // namespace fhirbulk

#endif  // FHIRBULK_SYNTH_CLOCK_H_
