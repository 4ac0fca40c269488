// Parsing of JSON the client did not write (server answers: manifests, OperationOutcomes,
// export files) with bounded stack and nesting.
//
// RapidJSON's default parse recurses once per nesting level, so a few hundred kilobytes of
// "[[[[..." overflow the stack. Here the parse is iterative (kParseIterativeFlag: an explicit
// stack on the heap, bounded by the input size) and a value nested deeper than max_depth
// stops it with an error, so nothing that later walks the DOM can recurse deeply either.
//
// Thread-safety: pure functions.

#ifndef FHIRBULK_CLIENT_BOUNDED_JSON_H_
#define FHIRBULK_CLIENT_BOUNDED_JSON_H_

#include <rapidjson/document.h>

#include <string>
#include <string_view>

namespace fhirbulk {
namespace client {

// Deep enough for any FHIR resource (contained resources, nested extensions) and for
// manifests and OperationOutcomes, which nest a handful of levels.
constexpr int kMaxJsonDepth = 100;

// Parses `text` (UTF-8 checked) into *doc. False on malformed JSON, invalid UTF-8, trailing
// bytes or nesting deeper than max_depth (arrays and objects count; the root is depth 1);
// *error (if given) then says why. On failure *doc is null.
bool ParseBoundedJson(std::string_view text, rapidjson::Document* doc,
                      int max_depth = kMaxJsonDepth, std::string* error = nullptr);

}  // namespace client
}  // namespace fhirbulk

#endif  // FHIRBULK_CLIENT_BOUNDED_JSON_H_
