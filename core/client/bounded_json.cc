#include "client/bounded_json.h"

#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include "util/json_depth.h"

namespace fhirbulk {
namespace client {

bool ParseBoundedJson(std::string_view text, rapidjson::Document* doc, int max_depth,
                      std::string* error) {
  DepthLimitedDocumentHandler handler{doc, max_depth};
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
