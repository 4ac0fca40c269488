// Internal to the kick-off parser (export_request.h): the text helpers and the strict/lenient
// policy its files share (kickoff_headers, kickoff_params, type_filter_parse,
// export_request.cc). Not an API for other code.
//
// Thread-safety: pure functions; a Leniency is used by one parse.

#ifndef FHIRBULK_EXPORT_KICKOFF_UTIL_H_
#define FHIRBULK_EXPORT_KICKOFF_UTIL_H_

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "http/outcome.h"
#include "util/status.h"

namespace fhirbulk {
namespace kickoff {

inline constexpr std::string_view kTypeFilter = "_typeFilter";

// ASCII lower case (header names and tokens, media types).
std::string Lower(std::string_view s);
bool StartsWith(std::string_view s, std::string_view prefix);
// Splits on every `sep`, keeping empty pieces.
std::vector<std::string_view> Split(std::string_view s, char sep);

// Client text quoted in a message. Long text is cut (at a UTF-8 character boundary): error
// messages and lenient issues must not grow with the request.
std::string Quoted(std::string_view s);
// "over the limit of N <what>" for limit messages, so each names the limit it hit.
std::string OverLimit(size_t limit, std::string_view what);

bool Contains(const std::vector<std::string>& v, std::string_view s);
// Appends `s` unless present (order of first occurrence kept).
void AddUnique(std::vector<std::string>* v, std::string s);

// A resource type name as written in a URL: [A-Z][A-Za-z]*.
bool LooksLikeTypeName(std::string_view s);

// In strict mode an unsupported item is the error; in lenient mode it is recorded (one
// warning issue, for the manifest's error file) and the caller skips it. Issues go to
// `ignored`, at most max_issues of them plus one saying that more were left out (each issue
// quotes client text; the list is stored with the job).
class Leniency {
 public:
  Leniency(bool lenient, size_t max_issues, std::vector<OutcomeIssue>* ignored)
      : lenient_(lenient), max_issues_(max_issues), ignored_(ignored) {}

  // REQUIRES: `message` starts with the parameter's name.
  Status Unsupported(std::string_view param, std::string message);

  // A part of the request over a cost limit: strict, the error; lenient, the caller drops
  // that part and it is reported.
  Status TooCostly(std::string_view param, std::string message);

  void Record(std::string severity, std::string code, std::string diagnostics,
              std::string_view param);

 private:
  bool lenient_;
  size_t max_issues_;
  std::vector<OutcomeIssue>* ignored_;
};

}  // namespace kickoff
}  // namespace fhirbulk

#endif  // FHIRBULK_EXPORT_KICKOFF_UTIL_H_
