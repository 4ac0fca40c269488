#include "client/bounded_json.h"

#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

namespace fhirbulk {
namespace client {

namespace {

// Forwards SAX events to the document and counts the nesting; returning false from a handler
// makes the reader stop with kParseErrorTermination.
struct DepthLimit {
  rapidjson::Document* doc;
  int max_depth;
  int depth = 0;
  bool too_deep = false;

  bool Enter() {
    if (++depth > max_depth) {
      too_deep = true;
      return false;
    }
    return true;
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

}  // namespace

bool ParseBoundedJson(std::string_view text, rapidjson::Document* doc, int max_depth,
                      std::string* error) {
  DepthLimit handler{doc, max_depth};
  rapidjson::ParseResult result;
  // Populate runs the generator on the document's own stack and keeps the value only when
  // the generator succeeds.
  auto generate = [&](rapidjson::Document& d) {
    handler.doc = &d;
    rapidjson::MemoryStream ms(text.data(), text.size());
    rapidjson::Reader reader;
    constexpr unsigned kFlags = rapidjson::kParseIterativeFlag |
                                rapidjson::kParseValidateEncodingFlag |
                                rapidjson::kParseStopWhenDoneFlag;
    result = reader.Parse<kFlags>(ms, handler);
    if (!result) return false;
    // Only whitespace may follow the value; a NUL byte ends a MemoryStream's reading early.
    size_t at = ms.Tell();
    while (at < text.size() &&
           (text[at] == ' ' || text[at] == '\t' || text[at] == '\n' || text[at] == '\r')) {
      at++;
    }
    if (at != text.size()) {
      result.Set(rapidjson::kParseErrorDocumentRootNotSingular, at);
      return false;
    }
    return true;
  };
  doc->SetNull();
  doc->Populate(generate);
  if (result && !handler.too_deep) return true;
  doc->SetNull();
  if (error != nullptr) {
    if (handler.too_deep) {
      *error = "nested deeper than " + std::to_string(max_depth) + " levels";
    } else {
      *error = std::string(rapidjson::GetParseError_En(result.Code())) + " at byte " +
               std::to_string(result.Offset() + 1);
    }
  }
  return false;
}

}  // namespace client
}  // namespace fhirbulk
