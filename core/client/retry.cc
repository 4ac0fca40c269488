#include "client/retry.h"

#include <algorithm>
#include <chrono>
#include <optional>
#include <thread>

#include "client/http_client.h"
#include "client/http_status.h"
#include "client/interrupt.h"
#include "util/fhir_time.h"

namespace fhirbulk {
namespace client {

namespace {

// A server that keeps answering 429 with Retry-After is still told to stop at some point.
constexpr int kMaxThrottled = 100;

}  // namespace

RetryPolicy RetryPolicy::ForKickoff(int retries) {
  RetryPolicy p;
  p.retries = retries;
  p.max_throttled = 0;
  p.any_5xx_transient = false;
  return p;
}

RetryPolicy RetryPolicy::ForPolling(int retries) { return ForKickoff(retries); }

RetryPolicy RetryPolicy::ForOthers(int retries) {
  RetryPolicy p;
  p.retries = retries;
  p.max_throttled = kMaxThrottled;
  p.any_5xx_transient = true;
  return p;
}

Attempt AttemptForError(Status error) {
  if (error.code() == Status::Code::kUnavailable) return Attempt::Retry(std::move(error));
  return Attempt::Done(std::move(error));
}

Attempt AttemptForAnswer(const RetryPolicy& policy, const Response& answer,
                         const std::string& what) {
  const long code = answer.status;
  Status s = HttpStatusToStatus(code, what, answer.body);
  if (code == 429) return Attempt::Throttled(std::move(s), answer.Header("retry-after"));
  const bool transient = code == 408 || code == 502 || code == 503 || code == 504 ||
                         (code >= 500 && policy.any_5xx_transient) ||
                         (code >= 400 && IsTransientOutcome(answer.body));
  if (transient) return Attempt::Retry(std::move(s), answer.Header("retry-after"));
  return Attempt::Done(std::move(s));
}

double Backoff::Next() {
  double wait = next_;
  next_ = std::min(next_ * factor_, max_);
  return std::min(wait, max_);
}

RetryLoop::RetryLoop(RetryPolicy policy, const Interrupt* interrupt, Hooks hooks)
    : policy_(policy),
      interrupt_(interrupt),
      hooks_(std::move(hooks)),
      backoff_(policy.initial_backoff_seconds, policy.max_backoff_seconds, policy.backoff_factor) {
  if (!hooks_.now_us) hooks_.now_us = NowMicros;
  if (!hooks_.sleep) {
    hooks_.sleep = [interrupt](double seconds) {
      if (interrupt != nullptr) return interrupt->SleepFor(seconds);
      std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
      return true;
    };
  }
  if (!hooks_.uniform) {
    prng_.seed(std::random_device()());
    hooks_.uniform = [this] { return std::uniform_real_distribution<double>(0, 1)(prng_); };
  }
}

bool RetryLoop::Interrupted() const { return interrupt_ != nullptr && interrupt_->triggered(); }

double RetryLoop::WaitFor(const Attempt& a) {
  std::optional<int64_t> asked = ParseRetryAfter(a.retry_after, hooks_.now_us());
  if (asked) {
    return std::clamp(static_cast<double>(*asked), policy_.min_wait_seconds,
                      std::max(policy_.min_wait_seconds, policy_.max_retry_after_seconds));
  }
  const double nominal = backoff_.Next();
  const double u = std::clamp(hooks_.uniform(), 0.0, 1.0);
  return nominal * (1 - policy_.jitter * u);
}

Status RetryLoop::Run(const std::function<Attempt()>& attempt, const WaitNote& note) {
  attempts_ = 0;
  backoff_ =
      Backoff(policy_.initial_backoff_seconds, policy_.max_backoff_seconds, policy_.backoff_factor);
  int failures = 0, throttled = 0;
  while (true) {
    if (Interrupted()) return Status::Aborted("interrupted");
    ++attempts_;
    Attempt a = attempt();
    switch (a.kind) {
      case Attempt::Kind::kDone:
        return a.status;
      case Attempt::Kind::kAgain:
        continue;
      case Attempt::Kind::kRetry:
        if (++failures > policy_.retries) {
          return a.status.WithContext("gave up after " + std::to_string(attempts_) + " attempts");
        }
        break;
      case Attempt::Kind::kThrottled:
        failures = 0;
        if (policy_.max_throttled > 0 && ++throttled > policy_.max_throttled) {
          return a.status.WithContext("gave up after " + std::to_string(attempts_) + " attempts");
        }
        break;
      case Attempt::Kind::kPending:
        failures = 0;
        break;
    }
    const double wait = WaitFor(a);
    if (note) note(a, wait);
    if (!hooks_.sleep(wait)) return Status::Aborted("interrupted");
  }
}

}  // namespace client
}  // namespace fhirbulk
