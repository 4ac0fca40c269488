// What the client reads from a server's status and error answers: OperationOutcome bodies
// (OutcomeText, IsTransientOutcome, HttpStatusToStatus), Retry-After values (ParseRetryAfter,
// ParseHttpDate) and what the retry loop makes of an answer (AttemptForAnswer).
//
// Input: selector byte (the HTTP status is 400 + selector), then the Retry-After value,
// "\n--\n", the body.

#include <cstdint>
#include <string>

#include "client/http_client.h"
#include "client/http_status.h"
#include "client/retry.h"
#include "client/retry_after.h"
#include "fuzz_util.h"

using namespace fhirbulk;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::FuzzInput in(data, size);
  const long code = 400 + in.Selector();
  const std::string_view retry_after = in.Part();
  const std::string_view body = in.Rest();
  (void)client::ParseRetryAfter(retry_after, 1'700'000'000'000'000);
  (void)client::ParseHttpDate(retry_after);
  (void)client::OutcomeText(body);
  (void)client::IsTransientOutcome(body);
  (void)client::HttpStatusToStatus(code, "status request", body);
  client::Response answer;
  answer.status = code;
  answer.body = std::string(body);
  answer.headers.emplace_back("retry-after", std::string(retry_after));
  for (const auto& policy :
       {client::RetryPolicy::ForPolling(5), client::RetryPolicy::ForOthers(5)}) {
    (void)client::AttemptForAnswer(policy, answer, "status request");
  }
  return 0;
}
