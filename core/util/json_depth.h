// A bound on JSON nesting, checked before a document is parsed.
//
// RapidJSON's default parser recurses once per nesting level, and a DOM that deep costs work
// everywhere it is walked: a few kilobytes of "[[[[..." in a JOSE header or a JWK Set must not
// reach it. This is a linear scan that counts '[' and '{' outside strings; it does not validate
// the JSON (the parser does that next, with kParseIterativeFlag as a second guard).
//
// Thread-safety: pure function.

#ifndef FHIRBULK_UTIL_JSON_DEPTH_H_
#define FHIRBULK_UTIL_JSON_DEPTH_H_

#include <cstddef>
#include <string_view>

namespace fhirbulk {

// False when some value of `json` is nested deeper than max_depth arrays/objects (a top-level
// object is depth 1).
bool JsonNestingWithin(std::string_view json, size_t max_depth);

}  // namespace fhirbulk

#endif  // FHIRBULK_UTIL_JSON_DEPTH_H_
