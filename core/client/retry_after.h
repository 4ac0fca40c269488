// When to ask a server again: Retry-After (RFC 9110 §10.2.3) and exponential back-off for
// when the server does not say (Bulk Data IG §3: clients SHOULD back off exponentially).
//
// Thread-safety: the functions are pure; a Backoff is used by one thread at a time.

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

// Exponential back-off: initial, initial*factor, ... capped at max_seconds. Deterministic
// (no jitter), so the schedule is testable and logged waits are the real ones.
class Backoff {
 public:
  explicit Backoff(double initial_seconds = 1, double max_seconds = 60, double factor = 2)
      : initial_(initial_seconds), max_(max_seconds), factor_(factor), next_(initial_seconds) {}

  // The wait before the next attempt; each call grows the following one.
  double Next();
  // What the server asked for (at least a second: Retry-After 0 would be a busy loop), or,
  // when it did not say, Next().
  double Next(const std::optional<int64_t>& retry_after) {
    return retry_after ? (*retry_after < 1 ? 1.0 : static_cast<double>(*retry_after)) : Next();
  }
  void Reset() { next_ = initial_; }

 private:
  double initial_, max_, factor_, next_;
};

}  // namespace client
}  // namespace fhirbulk

#endif  // FHIRBULK_CLIENT_RETRY_AFTER_H_
