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

#include <rapidjson/document.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace fhirbulk {

// False when some value of `json` is nested deeper than max_depth arrays/objects (a top-level
// object is depth 1).
bool JsonNestingWithin(std::string_view json, size_t max_depth);

// A RapidJSON SAX handler that builds `doc` (use it from Document::Populate, with a Reader and
// kParseIterativeFlag) and stops the parse (kParseErrorTermination) at the first array or
// object nested deeper than max_depth, setting too_deep. The bound is enforced while parsing,
// so nothing that later walks the DOM recurses deeper either.
struct DepthLimitedDocumentHandler {
  rapidjson::Document* doc;
  int max_depth;
  int depth = 0;
  bool too_deep = false;

  bool Enter() {
    if (++depth <= max_depth) return true;
    too_deep = true;
    return false;
  }
  bool Null() { return doc->Null(); }
  bool Bool(bool b) { return doc->Bool(b); }
  bool Int(int i) { return doc->Int(i); }
  bool Uint(unsigned i) { return doc->Uint(i); }
  bool Int64(int64_t i) { return doc->Int64(i); }
  bool Uint64(uint64_t i) { return doc->Uint64(i); }
  bool Double(double d) { return doc->Double(d); }
  bool RawNumber(const char* s, rapidjson::SizeType n, bool copy) {
    return doc->RawNumber(s, n, copy);
  }
  bool String(const char* s, rapidjson::SizeType n, bool copy) { return doc->String(s, n, copy); }
  bool Key(const char* s, rapidjson::SizeType n, bool copy) { return doc->Key(s, n, copy); }
  bool StartObject() { return Enter() && doc->StartObject(); }
  bool EndObject(rapidjson::SizeType n) {
    depth--;
    return doc->EndObject(n);
  }
  bool StartArray() { return Enter() && doc->StartArray(); }
  bool EndArray(rapidjson::SizeType n) {
    depth--;
    return doc->EndArray(n);
  }
};

}  // namespace fhirbulk

#endif  // FHIRBULK_UTIL_JSON_DEPTH_H_
