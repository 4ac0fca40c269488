// When a server asks to be asked again: Retry-After (RFC 9110 §10.2.3) and the HTTP-dates it
// (and Expires) may carry. What the client does with the wait: retry.h.
//
// Thread-safety: pure functions.

#ifndef FHIRBULK_CLIENT_RETRY_AFTER_H_
#define FHIRBULK_CLIENT_RETRY_AFTER_H_

#include <cstdint>
#include <optional>
#include <string_view>

#include "util/status.h"

namespace fhirbulk {
namespace client {

// Parses an HTTP-date into microseconds since the epoch (UTC). Accepts the three forms a
// recipient must accept (RFC 9110 §5.6.7): IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT", the
// obsolete RFC 850 "Sunday, 06-Nov-94 08:49:37 GMT" (two-digit years 70-99 are 19xx, 00-69
// 20xx) and asctime "Sun Nov  6 08:49:37 1994". Names are case-sensitive, as the grammar
// says; the date must exist in the calendar. InvalidArgument otherwise.
Result<int64_t> ParseHttpDate(std::string_view text);

// The wait a Retry-After value asks for, in seconds: delay-seconds (1*DIGIT) as given, or an
// HTTP-date minus now_us (0 when the date has passed). Surrounding spaces are ignored.
// nullopt for an empty, negative, fractional or otherwise malformed value; the caller then
// falls back to its own back-off. Huge values saturate at kMaxRetryAfterSeconds.
std::optional<int64_t> ParseRetryAfter(std::string_view value, int64_t now_us);

// The longest wait honoured: a server asking for more is waited for this long, then asked
// again (a day-long sleep is more likely a misconfiguration than a plan).
constexpr int64_t kMaxRetryAfterSeconds = 3600;

}  // namespace client
}  // namespace fhirbulk

#endif  // FHIRBULK_CLIENT_RETRY_AFTER_H_
