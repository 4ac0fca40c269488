// ParsedJson: a JSON document parsed in place, with numbers kept as their source text.
//
// FHIR decimals carry their precision in their text ("1.50" is not "1.5"), so the loader
// writes numbers back exactly as they came. The text is parsed in situ with
// kParseNumbersAsStringsFlag: the DOM's strings and numbers all point into the owned buffer.
// A number is then a string value whose characters sit in the buffer with no quote right
// before them, whereas a string parsed in situ always starts right after its opening quote.
//
// Rule for code that edits the DOM: never make a string value point into the middle of the
// buffer (copy it with the allocator, or point at memory outside the buffer); otherwise it
// could be taken for a number.
//
// Callers that hand the DOM to other code (IndexResource) should know that numbers appear
// there as strings.
//
// Thread-safety: one thread at a time.

#ifndef FHIRBULK_LOAD_PARSED_JSON_H_
#define FHIRBULK_LOAD_PARSED_JSON_H_

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <memory>
#include <string>

#include "util/status.h"

namespace fhirbulk {

class ParsedJson {
 public:
  ParsedJson();
  ParsedJson(const ParsedJson&) = delete;
  ParsedJson& operator=(const ParsedJson&) = delete;

  // Parses a copy of `text` as one JSON value; anything but trailing whitespace after it is
  // an error. The previous document, if any, is gone. Errors are InvalidArgument with the
  // byte offset and RapidJSON's reason. Invalid UTF-8 is an error (bodies are stored as text),
  // and so is a value nested deeper than kMaxJsonDepth (the parse itself never recurses, and
  // the loader's recursive walks of the DOM then never go deeper than that).
  // The copy goes into a buffer kept from one document to the next, so that parsing many
  // documents neither allocates nor touches fresh pages once the largest one has been seen.
  Status Parse(std::string_view text);

  rapidjson::Document& doc() { return *doc_; }
  const rapidjson::Document& doc() const { return *doc_; }
  rapidjson::Document::AllocatorType& allocator() { return doc_->GetAllocator(); }

  // True when v is a number (kept as its source text; GetString/GetStringLength give it).
  bool IsRawNumber(const rapidjson::Value& v) const {
    if (!v.IsString()) return false;
    const char* p = v.GetString();
    return p > buf_.data() && p < buf_.data() + buf_.size() && p[-1] != '"';
  }

 private:
  std::string buf_;
  // A pool with a first block of its own, reused across documents, so that parsing many small
  // documents (NDJSON lines) does not allocate for each.
  alignas(16) char first_block_[64 * 1024];
  rapidjson::MemoryPoolAllocator<> pool_;
  std::unique_ptr<rapidjson::Document> doc_;
};

// Writes v (a value of json's document) as compact JSON, numbers as their source text. False
// when nested deeper than kMaxJsonDepth (the recursive walks of the loader stop there rather
// than risk the stack).
constexpr int kMaxJsonDepth = 200;
using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;
bool WriteCompactJson(const ParsedJson& json, const rapidjson::Value& v, JsonWriter* w,
                      int depth = 0);

// The value of obj[name] if obj is an object that has it, else null.
const rapidjson::Value* FindMember(const rapidjson::Value& obj, const char* name);
// The string obj[name], or nullptr when missing or not a string (raw numbers included).
const rapidjson::Value* FindString(const ParsedJson& json, const rapidjson::Value& obj,
                                   const char* name);

}  // namespace fhirbulk

#endif  // FHIRBULK_LOAD_PARSED_JSON_H_
