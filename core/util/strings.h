// String helpers shared by several layers.
//
// Thread-safety: pure functions.

#ifndef FHIRBULK_UTIL_STRINGS_H_
#define FHIRBULK_UTIL_STRINGS_H_

#include <string_view>

namespace fhirbulk {

// Spaces and tabs: HTTP's optional whitespace (RFC 9110 §5.6.3), and the blanks around items
// of the command-line and file lists the tools read.
inline constexpr std::string_view kBlanks = " \t";
// What isspace() accepts in the "C" locale.
inline constexpr std::string_view kWhitespace = " \t\n\v\f\r";

// `s` without its leading and trailing characters that are in `chars`.
std::string_view Trim(std::string_view s, std::string_view chars = kBlanks);

}  // namespace fhirbulk

#endif  // FHIRBULK_UTIL_STRINGS_H_
