// Status and Result<T>: how the core reports success or failure without exceptions.
//
// Every function that can fail returns a Status (or a Result<T> that carries either a value or
// a non-OK Status). Codes are coarse on purpose: callers branch on the code, humans read the
// message. The HTTP layer maps codes to status codes in one place (http/outcome.h).
//
// Thread-safety: a Status is a value; distinct objects may be used from distinct threads.

#ifndef FHIRBULK_UTIL_STATUS_H_
#define FHIRBULK_UTIL_STATUS_H_

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace fhirbulk {

class Status {
 public:
  enum class Code {
    kOk = 0,
    kInvalidArgument,    // bad input from a caller or a client (HTTP 400)
    kNotFound,           // no such thing (HTTP 404)
    kNotSupported,       // valid but not implemented (HTTP 400 with not-supported)
    kPermissionDenied,   // authenticated but not allowed (HTTP 403)
    kUnauthenticated,    // missing or bad credentials (HTTP 401)
    kResourceExhausted,  // limits, queues, disk (HTTP 429 or 503)
    kUnavailable,        // a dependency is down; retrying may help (HTTP 503)
    kIOError,            // filesystem or network failure
    kCorruption,         // data that should be well formed is not
    kAborted,            // stopped on purpose (cancelled job, lost lease)
    kInternal,           // a bug or an unexpected state
    // Client input refused for its form rather than its content (appended: the codes above
    // keep their values and meaning).
    kNotAcceptable,  // no representation the caller accepts (HTTP 406)
    kTooLarge,       // a request body over its limit (HTTP 413)
    kUriTooLong,     // a request URI (query string) over its limit (HTTP 414)
  };

  Status() = default;  // OK
  static Status OK() { return Status(); }
  static Status InvalidArgument(std::string msg) {
    return {Code::kInvalidArgument, std::move(msg)};
  }
  static Status NotFound(std::string msg) { return {Code::kNotFound, std::move(msg)}; }
  static Status NotSupported(std::string msg) { return {Code::kNotSupported, std::move(msg)}; }
  static Status PermissionDenied(std::string msg) {
    return {Code::kPermissionDenied, std::move(msg)};
  }
  static Status Unauthenticated(std::string msg) {
    return {Code::kUnauthenticated, std::move(msg)};
  }
  static Status ResourceExhausted(std::string msg) {
    return {Code::kResourceExhausted, std::move(msg)};
  }
  static Status Unavailable(std::string msg) { return {Code::kUnavailable, std::move(msg)}; }
  static Status IOError(std::string msg) { return {Code::kIOError, std::move(msg)}; }
  static Status Corruption(std::string msg) { return {Code::kCorruption, std::move(msg)}; }
  static Status Aborted(std::string msg) { return {Code::kAborted, std::move(msg)}; }
  static Status Internal(std::string msg) { return {Code::kInternal, std::move(msg)}; }
  static Status NotAcceptable(std::string msg) { return {Code::kNotAcceptable, std::move(msg)}; }
  static Status TooLarge(std::string msg) { return {Code::kTooLarge, std::move(msg)}; }
  static Status UriTooLong(std::string msg) { return {Code::kUriTooLong, std::move(msg)}; }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

  // "InvalidArgument: <message>", or "OK".
  std::string ToString() const;
  static const char* CodeName(Code code);

  // Returns a copy whose message is "<context>: <message>"; OK stays OK.
  Status WithContext(std::string_view context) const;

 private:
  Status(Code code, std::string msg) : code_(code), message_(std::move(msg)) {}
  Code code_ = Code::kOk;
  std::string message_;
};

// Result<T>: a T or a non-OK Status.
// REQUIRES: value() only when ok(); constructing from an OK Status is a bug.
template <typename T>
class Result {
 public:
  Result(T value) : value_(std::move(value)) {}         // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design
    assert(!status_.ok());
    if (status_.ok()) status_ = Status::Internal("Result constructed from OK status");
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() { return *value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace fhirbulk

// Propagates a non-OK Status from an expression returning Status.
#define FHIRBULK_RETURN_IF_ERROR(expr)       \
  do {                                       \
    ::fhirbulk::Status _fb_status = (expr);  \
    if (!_fb_status.ok()) return _fb_status; \
  } while (0)

#endif  // FHIRBULK_UTIL_STATUS_H_
