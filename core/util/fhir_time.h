// FHIR date/time values (R4 datatypes: date, dateTime, instant) and their conversion to
// microseconds since the Unix epoch, UTC.
//
// Thread-safety: pure functions.

#ifndef FHIRBULK_UTIL_FHIR_TIME_H_
#define FHIRBULK_UTIL_FHIR_TIME_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "util/status.h"

namespace fhirbulk {

// An inclusive range of instants, in microseconds since the epoch (UTC).
struct TimeRange {
  int64_t lo_us;
  int64_t hi_us;
};

// Parses a FHIR `instant` (YYYY-MM-DDThh:mm:ss[.fraction](Z|+hh:mm|-hh:mm); seconds and zone
// required). Fractions beyond microseconds are truncated. InvalidArgument otherwise.
//
// Validation follows the R4 regexes and the calendar: year 0001-9999, month 01-12, a day that
// exists in that month (leap years included), hour 00-23, minute 00-59, second 00-60, zone
// offset -14:00..+14:00 (hours 00-13 with any minutes, or exactly 14:00). Second 60 (a leap
// second, allowed by the R4 regex) counts as the first second of the next minute.
// No locale or TZ environment is consulted.
Result<int64_t> ParseInstant(std::string_view text);

// Parses a FHIR `date` or `dateTime` (YYYY, YYYY-MM, YYYY-MM-DD, or a full dateTime with zone)
// into the range it covers: "2020" covers all of 2020 (UTC when no zone is given), from
// 2020-01-01T00:00:00Z to 2020-12-31T23:59:59.999999Z inclusive. A full dateTime (which R4
// requires to carry seconds and a zone) is a single point: lo == hi. Same validation as
// ParseInstant; a time without a zone is InvalidArgument.
Result<TimeRange> ParseDateTimeRange(std::string_view text);

// Formats an instant as "YYYY-MM-DDThh:mm:ss[.fff|.ffffff]Z": whole seconds print no fraction,
// a whole number of milliseconds prints ".fff", anything finer ".ffffff". The result re-parses
// to the same value with ParseInstant. Values outside 0001-01-01T00:00:00Z ..
// 9999-12-31T23:59:59.999999Z (e.g. INT64_MIN/INT64_MAX used as "unbounded") are clamped to
// those ends, so the output is always a valid FHIR instant.
std::string FormatInstant(int64_t us);

// Formats as an HTTP-date (RFC 9110 IMF-fixdate), e.g. "Wed, 05 Jun 2024 18:00:00 GMT".
// The fraction of the second is dropped (truncated toward the earlier second); out-of-range
// values are clamped as in FormatInstant.
std::string FormatHttpDate(int64_t us);

// Current wall-clock time (system_clock), microseconds since the epoch.
int64_t NowMicros();

}  // namespace fhirbulk

#endif  // FHIRBULK_UTIL_FHIR_TIME_H_
