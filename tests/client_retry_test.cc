// The client's one retry loop (client/retry.h): how often it asks again, how long it waits
// (Retry-After, back-off with jitter), when it gives up, and that an interrupt stops it. The
// clock, the sleeps and the jitter are injected: nothing here waits.

#include "client/retry.h"

#include <gtest/gtest.h>

#include <deque>
#include <string>
#include <vector>

#include "client/http_client.h"
#include "client/interrupt.h"
#include "util/fhir_time.h"

namespace fhirbulk {
namespace client {
namespace {

// Runs a RetryLoop over scripted attempts; records the waits it asked for and its notes.
class Harness {
 public:
  explicit Harness(RetryPolicy policy, double uniform = 0) : policy_(policy), uniform_(uniform) {}

  Status Run(std::deque<Attempt> script, const Interrupt* interrupt = nullptr) {
    RetryLoop::Hooks hooks;
    hooks.now_us = [] { return *ParseInstant("2024-06-05T17:59:00Z"); };
    hooks.sleep = [this, interrupt](double s) {
      slept.push_back(s);
      if (interrupt_after_sleeps >= 0 && static_cast<int>(slept.size()) > interrupt_after_sleeps) {
        return false;
      }
      return interrupt == nullptr || !interrupt->triggered();
    };
    hooks.uniform = [this] { return uniform_; };
    RetryLoop loop(policy_, interrupt, hooks);
    Status s = loop.Run(
        [&]() -> Attempt {
          if (script.empty()) return Attempt::Done(Status::Internal("script ran out"));
          Attempt a = script.front();
          script.pop_front();
          return a;
        },
        [this](const Attempt& a, double seconds) { notes.emplace_back(a.kind, seconds); });
    attempts = loop.attempts();
    return s;
  }

  std::vector<double> slept;
  std::vector<std::pair<Attempt::Kind, double>> notes;
  int attempts = 0;
  int interrupt_after_sleeps = -1;  // >= 0: the sleep after that many returns "interrupted"

 private:
  RetryPolicy policy_;
  double uniform_;
};

Attempt Fail(const std::string& retry_after = "") {
  return Attempt::Retry(Status::Unavailable("HTTP 503"), retry_after);
}

TEST(ClientRetryTest, BackoffScheduleDoublesUpToItsCap) {
  Backoff b(1, 60);
  std::vector<double> got;
  got.reserve(9);
  for (int i = 0; i < 9; ++i) got.push_back(b.Next());
  EXPECT_EQ(got, (std::vector<double>{1, 2, 4, 8, 16, 32, 60, 60, 60}));
  Backoff slow(0.5, 3, 3);
  EXPECT_EQ(slow.Next(), 0.5);
  EXPECT_EQ(slow.Next(), 1.5);
  EXPECT_EQ(slow.Next(), 3);
}

TEST(ClientRetryTest, TransientFailuresAreRetriedThenGivenUpOn) {
  Harness h(RetryPolicy::ForOthers(3));
  Status s = h.Run({Fail(), Fail(), Fail(), Fail(), Attempt::Done()});
  EXPECT_EQ(s.code(), Status::Code::kUnavailable);
  EXPECT_EQ(s.message(), "gave up after 4 attempts: HTTP 503");
  EXPECT_EQ(h.attempts, 4);
  EXPECT_EQ(h.slept, (std::vector<double>{1, 2, 4})) << "no jitter drawn: the nominal schedule";

  Harness ok(RetryPolicy::ForOthers(3));
  EXPECT_TRUE(ok.Run({Fail(), Fail(), Fail(), Attempt::Done()}).ok());
  EXPECT_EQ(ok.attempts, 4);

  Harness none(RetryPolicy::ForOthers(0));
  EXPECT_EQ(none.Run({Fail(), Attempt::Done()}).message(), "gave up after 1 attempts: HTTP 503");
  EXPECT_TRUE(none.slept.empty());
}

TEST(ClientRetryTest, DoneEndsTheLoopWithItsStatus) {
  Harness h(RetryPolicy::ForOthers(3));
  Status s = h.Run({Fail(), Attempt::Done(Status::NotFound("gone")), Attempt::Done()});
  EXPECT_EQ(s.code(), Status::Code::kNotFound);
  EXPECT_EQ(s.message(), "gone");
  EXPECT_EQ(h.attempts, 2);
}

TEST(ClientRetryTest, JitterShortensBackOffWaitsByUpToHalf) {
  Harness h(RetryPolicy::ForOthers(5), /*uniform=*/0.5);
  (void)h.Run({Fail(), Fail(), Fail(), Attempt::Done()});
  EXPECT_EQ(h.slept, (std::vector<double>{0.75, 1.5, 3}));
  RetryPolicy p = RetryPolicy::ForOthers(5);
  p.jitter = 0;
  Harness none(p, /*uniform=*/0.9);
  (void)none.Run({Fail(), Fail(), Attempt::Done()});
  EXPECT_EQ(none.slept, (std::vector<double>{1, 2}));
}

TEST(ClientRetryTest, RetryAfterIsHonouredFlooredAndCapped) {
  RetryPolicy p = RetryPolicy::ForOthers(10);
  p.max_retry_after_seconds = 600;
  Harness h(p, /*uniform=*/0.5);
  (void)h.Run({Fail("30"), Fail("Wed, 05 Jun 2024 18:00:00 GMT"), Fail("0"), Fail("7200"),
               Fail("soon"), Attempt::Done()});
  // seconds as given; an HTTP-date against the (injected) clock; 0 is no busy loop; the cap;
  // junk: back-off (its first step, jittered) as if the server had not said.
  EXPECT_EQ(h.slept, (std::vector<double>{30, 60, 1, 600, 0.75}));
}

TEST(ClientRetryTest, ThrottlingWaitsAsToldWithoutUsingUpRetries) {
  Harness h(RetryPolicy::ForOthers(1));
  Attempt throttled = Attempt::Throttled(Status::ResourceExhausted("HTTP 429"), "5");
  // Without the 429s in between, the second failure would end the loop.
  Status s = h.Run({Fail(), throttled, Fail(), throttled, throttled, Fail(), Attempt::Done()});
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(h.attempts, 7);
  EXPECT_EQ(h.slept, (std::vector<double>{1, 5, 2, 5, 5, 4}));
  ASSERT_EQ(h.notes.size(), 6u);
  EXPECT_EQ(h.notes[1].first, Attempt::Kind::kThrottled);
  EXPECT_EQ(h.notes[1].second, 5) << "the note gets the wait that is taken";
}

TEST(ClientRetryTest, ThrottlingIsBoundedWhereThePolicySaysSo) {
  RetryPolicy p = RetryPolicy::ForOthers(5);
  p.max_throttled = 3;
  Attempt throttled = Attempt::Throttled(Status::ResourceExhausted("HTTP 429"), "1");
  Harness h(p);
  Status s = h.Run({throttled, throttled, throttled, throttled, Attempt::Done()});
  EXPECT_EQ(s.code(), Status::Code::kResourceExhausted);
  EXPECT_EQ(s.message(), "gave up after 4 attempts: HTTP 429");

  Harness unlimited(RetryPolicy::ForKickoff(5));
  std::deque<Attempt> many(300, throttled);
  many.push_back(Attempt::Done());
  EXPECT_TRUE(unlimited.Run(many).ok());
  EXPECT_EQ(unlimited.attempts, 301);
}

TEST(ClientRetryTest, PendingWaitsWithoutLimitAndEndsARunOfFailures) {
  Harness h(RetryPolicy::ForPolling(1));
  std::deque<Attempt> script;
  for (int i = 0; i < 50; ++i) {
    script.push_back(Fail());
    script.push_back(Attempt::Pending());
  }
  script.push_back(Attempt::Pending("2"));
  script.push_back(Attempt::Done());
  EXPECT_TRUE(h.Run(script).ok());
  EXPECT_EQ(h.attempts, 102);
  EXPECT_EQ(h.slept.back(), 2);
  EXPECT_EQ(h.slept[6], 60) << "back-off grows across pending answers that name no wait";
}

TEST(ClientRetryTest, EachRunStartsAfresh) {
  std::vector<double> slept;
  RetryLoop::Hooks hooks;
  hooks.sleep = [&slept](double s) {
    slept.push_back(s);
    return true;
  };
  hooks.uniform = [] { return 0.0; };
  RetryLoop loop(RetryPolicy::ForOthers(2), nullptr, hooks);
  for (int run = 0; run < 2; ++run) {
    int n = 0;
    EXPECT_TRUE(loop.Run([&n] { return ++n < 3 ? Fail() : Attempt::Done(); }).ok());
    EXPECT_EQ(loop.attempts(), 3);
  }
  EXPECT_EQ(slept, (std::vector<double>{1, 2, 1, 2})) << "neither count nor back-off carried over";
}

TEST(ClientRetryTest, AgainRetriesAtOnce) {
  Harness h(RetryPolicy::ForOthers(0));
  EXPECT_TRUE(h.Run({Attempt::Again(), Attempt::Again(), Attempt::Done()}).ok());
  EXPECT_EQ(h.attempts, 3);
  EXPECT_TRUE(h.slept.empty());
  EXPECT_TRUE(h.notes.empty());
}

TEST(ClientRetryTest, AnInterruptStopsTheLoop) {
  Interrupt interrupt;
  interrupt.Trigger();
  Harness before(RetryPolicy::ForOthers(5));
  EXPECT_EQ(before.Run({Attempt::Done()}, &interrupt).code(), Status::Code::kAborted);
  EXPECT_EQ(before.attempts, 0) << "no request once interrupted";

  Harness during(RetryPolicy::ForOthers(5));
  during.interrupt_after_sleeps = 1;
  Status s = during.Run({Fail(), Fail(), Attempt::Done()});
  EXPECT_EQ(s.code(), Status::Code::kAborted);
  EXPECT_EQ(during.attempts, 2) << "the wait after the second attempt was interrupted";
}

TEST(ClientRetryTest, TheDefaultSleepWakesOnTheInterrupt) {
  Interrupt interrupt;
  RetryLoop::Hooks hooks;
  hooks.uniform = [] { return 0.0; };
  RetryPolicy p = RetryPolicy::ForOthers(5);
  p.initial_backoff_seconds = 30;  // would fail the test's time limit were it slept
  RetryLoop loop(p, &interrupt, hooks);
  int attempts = 0;
  Status s = loop.Run([&] {
    if (++attempts == 1) interrupt.Trigger();  // Ctrl-C during the first request
    return Fail();
  });
  EXPECT_EQ(s.code(), Status::Code::kAborted);
  EXPECT_EQ(attempts, 1);
}

Response Answer(long code, const std::string& body = "", const std::string& retry_after = "") {
  Response r;
  r.status = code;
  r.body = body;
  if (!retry_after.empty()) r.headers.emplace_back("retry-after", retry_after);
  return r;
}

TEST(ClientRetryTest, WhichAnswersAreWorthAnotherAttempt) {
  const RetryPolicy kickoff = RetryPolicy::ForKickoff(5);
  const RetryPolicy files = RetryPolicy::ForOthers(5);
  using K = Attempt::Kind;
  struct Case {
    long code;
    K at_kickoff, elsewhere;
  };
  for (const Case& c : {Case{408, K::kRetry, K::kRetry}, Case{429, K::kThrottled, K::kThrottled},
                        Case{500, K::kDone, K::kRetry}, Case{501, K::kDone, K::kRetry},
                        Case{502, K::kRetry, K::kRetry}, Case{503, K::kRetry, K::kRetry},
                        Case{504, K::kRetry, K::kRetry}, Case{400, K::kDone, K::kDone},
                        Case{403, K::kDone, K::kDone}, Case{404, K::kDone, K::kDone}}) {
    EXPECT_EQ(AttemptForAnswer(kickoff, Answer(c.code), "x").kind, c.at_kickoff) << c.code;
    EXPECT_EQ(AttemptForAnswer(files, Answer(c.code), "x").kind, c.elsewhere) << c.code;
  }
  // IG §3: an error whose issues are all transient is worth another attempt, whatever its code.
  const std::string transient =
      R"({"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"transient"}]})";
  const std::string failed =
      R"({"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"processing"}]})";
  EXPECT_EQ(AttemptForAnswer(kickoff, Answer(500, transient), "x").kind, K::kRetry);
  EXPECT_EQ(AttemptForAnswer(kickoff, Answer(400, transient), "x").kind, K::kRetry);
  EXPECT_EQ(AttemptForAnswer(kickoff, Answer(500, failed), "x").kind, K::kDone)
      << "the export failed: the server says so";

  Attempt a = AttemptForAnswer(files, Answer(503, "", "7"), "GET Patient.1.ndjson");
  EXPECT_EQ(a.retry_after, "7");
  EXPECT_EQ(a.status.code(), Status::Code::kUnavailable);
  EXPECT_EQ(a.status.message().rfind("GET Patient.1.ndjson: HTTP 503", 0), 0u)
      << a.status.message();

  EXPECT_EQ(AttemptForError(Status::Unavailable("connection refused")).kind, K::kRetry);
  EXPECT_EQ(AttemptForError(Status::Aborted("interrupted")).kind, K::kDone);
  EXPECT_EQ(AttemptForError(Status::InvalidArgument("bad URL")).kind, K::kDone);
  EXPECT_EQ(AttemptForError(Status::IOError("disk full")).kind, K::kDone);
}

}  // namespace
}  // namespace client
}  // namespace fhirbulk
