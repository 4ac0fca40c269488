// ErrnoText: the message for an errno value, as strerror gives it, but safe to call from
// several threads at once (strerror may return a buffer shared by all threads; this one uses
// strerror_r). clang-tidy's concurrency-mt-unsafe check refuses strerror in the core.
//
// Thread-safety: may be called from any thread.

#ifndef FHIRBULK_UTIL_ERRNO_TEXT_H_
#define FHIRBULK_UTIL_ERRNO_TEXT_H_

#include <string>

namespace fhirbulk {

std::string ErrnoText(int err);

}  // namespace fhirbulk

#endif  // FHIRBULK_UTIL_ERRNO_TEXT_H_
