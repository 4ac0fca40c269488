#include "util/errno_text.h"

#include <string.h>

namespace fhirbulk {

namespace {

// strerror_r comes in two flavours; overloads on its return type pick the right reading.
// GNU (the default with glibc and g++): returns the message, maybe not in buf.
[[maybe_unused]] std::string Message(const char* result, const char* /*buf*/) { return result; }
// XSI: returns 0 and fills buf, or an error number.
[[maybe_unused]] std::string Message(int result, const char* buf) {
  return result == 0 ? std::string(buf) : std::string("unknown error");
}

}  // namespace

std::string ErrnoText(int err) {
  char buf[256] = {0};
  return Message(strerror_r(err, buf, sizeof(buf)), buf);
}

}  // namespace fhirbulk
