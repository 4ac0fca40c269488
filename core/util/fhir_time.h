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
Result<int64_t> ParseInstant(std::string_view text);

// Parses a FHIR `date` or `dateTime` (YYYY, YYYY-MM, YYYY-MM-DD, or a full dateTime with zone)
// into the range it covers: "2020" covers all of 2020 (UTC when no zone is given).
Result<TimeRange> ParseDateTimeRange(std::string_view text);

// Formats an instant as "YYYY-MM-DDThh:mm:ss.ffffffZ" (microseconds, always 6 digits) when
// fractional, else "YYYY-MM-DDThh:mm:ssZ"... precisely: millisecond precision is kept as
// ".fff" when the value has no finer part, microseconds as ".ffffff"; whole seconds print no
// fraction. The result re-parses to the same value with ParseInstant.
std::string FormatInstant(int64_t us);

// Formats as an HTTP-date (RFC 9110 IMF-fixdate), e.g. "Wed, 05 Jun 2024 18:00:00 GMT".
std::string FormatHttpDate(int64_t us);

// Current time, microseconds since the epoch.
int64_t NowMicros();

}  // namespace fhirbulk

#endif  // FHIRBULK_UTIL_FHIR_TIME_H_
