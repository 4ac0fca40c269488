// RetryLoop: the one place the export client decides whether, when and how often to send a
// request again. Kick-off, status polls, file downloads, token requests and the cancel DELETE
// all run as a RetryLoop over an attempt function, and so does the SMART configuration at
// start-up. (One request is sent once: the manifest re-fetched for fresh links, itself the
// remedy for an expired or refused link.)
//
// The attempt makes one request and says what came of it (an Attempt); the loop does the
// rest:
//   Done(status)                 stop with `status`: success, or a failure no retry fixes
//   Again()                      try again at once: the caller changed something (a fresh
//                                token, a fresh link); the caller bounds how often it does so
//   Retry(failure, retry_after)  a transient failure (see AttemptFor*): wait, try again;
//                                after policy.retries of them in a row, give up with `failure`
//   Throttled(why, retry_after)  429: wait as told; not a failure (it does not use up the
//                                retries), but at most policy.max_throttled of them (0: no limit)
//   Pending(retry_after)         202 of an export still running: wait and ask again; no limit
// Throttled and Pending answers end a run of failures: `retries` counts failures in a row.
//
// The wait before the next attempt: the server's Retry-After (delay-seconds or HTTP-date,
// retry_after.h) when the answer had one, at least policy.min_wait_seconds (Retry-After: 0
// would be a busy loop) and at most policy.max_retry_after_seconds; otherwise exponential
// back-off (IG §3: clients SHOULD back off exponentially) with jitter, so that the parallel
// downloads a network blip failed together do not all come back in the same second.
// The interrupt (interrupt.h) is checked before each attempt and ends a wait at once: the
// loop then returns Aborted.
//
// Thread-safety: a RetryLoop belongs to one thread; RetryPolicy and the functions are values.

#ifndef FHIRBULK_CLIENT_RETRY_H_
#define FHIRBULK_CLIENT_RETRY_H_

#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <string_view>

#include "client/retry_after.h"
#include "util/status.h"

namespace fhirbulk {
namespace client {

class Interrupt;
struct Response;

// How one kind of request is retried. The named constructors below are the client's whole
// table; compare them there rather than at the call sites.
struct RetryPolicy {
  int retries = 5;        // transient failures in a row before giving up (0: none retried)
  int max_throttled = 0;  // 429 answers before giving up (0: no limit)
  // Whether every 5xx is transient. At the kick-off and status endpoints it is not: there a
  // 5xx is how the server reports that the request or the export failed, and only 502, 503,
  // 504 or an OperationOutcome whose issues are transient (IG §3) are worth another attempt.
  bool any_5xx_transient = true;
  double initial_backoff_seconds = 1;
  double max_backoff_seconds = 60;
  double backoff_factor = 2;
  double jitter = 0.5;  // a back-off wait is drawn from [(1 - jitter) * d, d]
  double min_wait_seconds = 1;
  double max_retry_after_seconds = kMaxRetryAfterSeconds;

  // Kick-off: a 429 (too many exports of this client running) is waited out however long.
  static RetryPolicy ForKickoff(int retries);
  // Status polls: 202 and 429 are waited out however long; the export may run for hours.
  static RetryPolicy ForPolling(int retries);
  // File downloads, token requests, the cancel DELETE: any 5xx is the server's trouble; a
  // server that keeps answering 429 is given up on after 100 of them.
  static RetryPolicy ForOthers(int retries);
};

// What one attempt came to (see the top of this file).
struct Attempt {
  enum class Kind { kDone, kAgain, kRetry, kThrottled, kPending };

  static Attempt Done(Status status = Status::OK()) { return {Kind::kDone, std::move(status), ""}; }
  static Attempt Again() { return {Kind::kAgain, Status::OK(), ""}; }
  static Attempt Retry(Status failure, std::string retry_after = "") {
    return {Kind::kRetry, std::move(failure), std::move(retry_after)};
  }
  static Attempt Throttled(Status why, std::string retry_after = "") {
    return {Kind::kThrottled, std::move(why), std::move(retry_after)};
  }
  static Attempt Pending(std::string retry_after = "") {
    return {Kind::kPending, Status::OK(), std::move(retry_after)};
  }

  Kind kind;
  Status status;
  std::string retry_after;  // the answer's Retry-After header value, "" when none
};

// The Attempt for a failed transfer (HttpClient's Status): Unavailable (the network's
// failure) is Retry, anything else (interrupted, a bad URL, local I/O) Done.
Attempt AttemptForError(Status error);

// The Attempt for an HTTP error answer the caller has no special case for: 429 Throttled;
// 408, 502, 503, 504, a transient OperationOutcome and, when policy.any_5xx_transient, any
// 5xx Retry; everything else Done. The Status is HttpStatusToStatus(code, what, body).
Attempt AttemptForAnswer(const RetryPolicy& policy, const Response& answer,
                         const std::string& what);

// Exponential back-off: initial, initial*factor, ... capped at max_seconds. The nominal
// schedule, deterministic; RetryLoop draws the jitter.
class Backoff {
 public:
  explicit Backoff(double initial_seconds = 1, double max_seconds = 60, double factor = 2)
      : max_(max_seconds), factor_(factor), next_(initial_seconds) {}

  // The wait before the next attempt; each call grows the following one.
  double Next();

 private:
  double max_, factor_, next_;
};

class RetryLoop {
 public:
  // What the loop takes from the world; tests replace them to run without waiting.
  struct Hooks {
    std::function<int64_t()> now_us;            // wall clock for HTTP-date Retry-After
    std::function<bool(double seconds)> sleep;  // false: interrupted
    std::function<double()> uniform;            // in [0, 1), for the jitter
  };

  // interrupt may be null (nothing interrupts); hooks left empty use the clock, the
  // interrupt's SleepFor (or a plain sleep) and a PRNG seeded per loop.
  RetryLoop(RetryPolicy policy, const Interrupt* interrupt, Hooks hooks = Hooks());
  RetryLoop(const RetryLoop&) = delete;
  RetryLoop& operator=(const RetryLoop&) = delete;

  // Called before each wait with the attempt that asks for it and the seconds it will wait,
  // so the caller can say why (the wait logged is the wait taken).
  using WaitNote = std::function<void(const Attempt& why, double seconds)>;

  // Runs `attempt` until it is Done (its status), the loop gives up (the last failure, "gave
  // up after N attempts: ..."), or the interrupt fires (Aborted). Each Run starts afresh
  // (counts and back-off).
  Status Run(const std::function<Attempt()>& attempt, const WaitNote& note = nullptr);

  // Attempts made by the last Run.
  int attempts() const { return attempts_; }
  const RetryPolicy& policy() const { return policy_; }

 private:
  double WaitFor(const Attempt& a);
  bool Interrupted() const;

  const RetryPolicy policy_;
  const Interrupt* interrupt_;
  Hooks hooks_;
  Backoff backoff_;
  std::mt19937_64 prng_;
  int attempts_ = 0;
};

}  // namespace client
}  // namespace fhirbulk

#endif  // FHIRBULK_CLIENT_RETRY_H_
