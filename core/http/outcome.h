// OperationOutcome responses, and the one place where a Status becomes an HTTP status.
//
// Every error the FHIR endpoint returns is an OperationOutcome (application/fhir+json) with
// one issue per problem: severity, an issue code from the FHIR IssueType value set, and
// diagnostics for humans. Unavailable statuses get Retry-After and the `transient` code, so
// clients know a retry may succeed; nothing else is marked transient.

#ifndef FHIRBULK_HTTP_OUTCOME_H_
#define FHIRBULK_HTTP_OUTCOME_H_

#include <string>
#include <string_view>
#include <vector>

#include "http/http.h"
#include "util/status.h"

namespace fhirbulk {

struct OutcomeIssue {
  std::string severity = "error";  // fatal | error | warning | information
  std::string code;                // e.g. invalid, not-supported, not-found, transient
  std::string diagnostics;
  std::string expression;  // optional FHIRPath, e.g. the parameter name
};

// Compact JSON of an OperationOutcome with these issues.
std::string OperationOutcomeJson(const std::vector<OutcomeIssue>& issues);

// A response with one error issue.
HttpResponse OutcomeResponse(int http_status, std::string_view issue_code,
                             std::string_view diagnostics);

// Maps a non-OK Status to its response, the only mapping there is (callers never override the
// status): 400 invalid/not-supported, 401 and 403 with their WWW-Authenticate challenge
// (invalid_token, insufficient_scope), 404, 406, 413, 414, 429/503 with Retry-After
// (retry_after seconds) for exhausted/unavailable, 500 otherwise. For 5xx the client sees a
// generic diagnostics text; the Status goes to log_message.
HttpResponse StatusResponse(const Status& status, int retry_after);

// 401 for a request that carried no credentials at all: its challenge names no error
// (RFC 6750 section 3.1).
HttpResponse CredentialsRequiredResponse(std::string_view diagnostics);

// The realm of every challenge, on the API routes and on export files alike.
inline constexpr std::string_view kBearerRealm = "fhir-bulk";

// The WWW-Authenticate value: `Bearer realm="fhir-bulk"`, plus `, error="<error>"` unless
// error is empty (RFC 6750 section 3: invalid_token, insufficient_scope).
std::string BearerChallenge(std::string_view error);

int HttpStatusFor(const Status& status);
const char* IssueCodeFor(const Status& status);

}  // namespace fhirbulk

#endif  // FHIRBULK_HTTP_OUTCOME_H_
