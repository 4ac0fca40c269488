// How the client reads a server's error answers: the Status for an HTTP status code, the
// text of an OperationOutcome, and whether an outcome says "transient" (IG §3: a failed
// status request whose job did not fail uses issue.code transient or one of its children,
// so the client retries).
//
// Thread-safety: pure functions.

#ifndef FHIRBULK_CLIENT_HTTP_STATUS_H_
#define FHIRBULK_CLIENT_HTTP_STATUS_H_

#include <string>
#include <string_view>

#include "util/status.h"

namespace fhirbulk {
namespace client {

// "severity code: diagnostics; ..." of an OperationOutcome (at most a few issues, each cut
// short), else the body's first line when it is short text, else "".
std::string OutcomeText(std::string_view body);

// True when the OperationOutcome has error (or fatal) issues and each has code transient or
// a child of it (lock-error, no-store, exception, timeout, incomplete, throttled).
bool IsTransientOutcome(std::string_view body);

// 401 Unauthenticated, 403 PermissionDenied, 404/410 NotFound, 429 ResourceExhausted,
// 5xx Unavailable, other 4xx NotSupported; the message is "<what>: HTTP <code>" plus the
// outcome's text.
Status HttpStatusToStatus(long code, const std::string& what, std::string_view body);

}  // namespace client
}  // namespace fhirbulk

#endif  // FHIRBULK_CLIENT_HTTP_STATUS_H_
