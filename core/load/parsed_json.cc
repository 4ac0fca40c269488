#include "load/parsed_json.h"

#include <rapidjson/error/en.h>
#include <rapidjson/reader.h>

#include "util/json_depth.h"

namespace fhirbulk {

namespace {
constexpr unsigned kParseFlags = rapidjson::kParseInsituFlag | rapidjson::kParseIterativeFlag |
                                 rapidjson::kParseNumbersAsStringsFlag |
                                 rapidjson::kParseValidateEncodingFlag;
}  // namespace

ParsedJson::ParsedJson()
    : pool_(first_block_, sizeof(first_block_)),
      doc_(std::make_unique<rapidjson::Document>(&pool_)) {}

Status ParsedJson::Parse(std::string_view text) {
  doc_.reset();  // the document points into the pool and the old buffer: drop it first
  pool_.Clear();
  buf_.assign(text.data(), text.size());
  doc_ = std::make_unique<rapidjson::Document>(&pool_);
  DepthLimitedDocumentHandler handler{doc_.get(), kMaxJsonDepth};
  rapidjson::ParseResult result;
  // Populate keeps the value only when the generator succeeds (the parse is iterative:
  // no recursion however deep the input nests).
  auto generate = [&](rapidjson::Document& d) {
    handler.doc = &d;
    rapidjson::InsituStringStream is(&buf_[0]);
    rapidjson::Reader reader;
    result = reader.Parse<kParseFlags>(is, handler);
    return !result.IsError();
  };
  doc_->Populate(generate);
  if (handler.too_deep) {
    doc_->SetNull();
    return Status::InvalidArgument("nested deeper than " + std::to_string(kMaxJsonDepth) +
                                   " levels");
  }
  if (result.IsError()) {
    doc_->SetNull();
    return Status::InvalidArgument("invalid JSON at byte " + std::to_string(result.Offset()) +
                                   ": " + rapidjson::GetParseError_En(result.Code()));
  }
  return Status::OK();
}

bool WriteCompactJson(const ParsedJson& json, const rapidjson::Value& v, JsonWriter* w, int depth) {
  if (depth > kMaxJsonDepth) return false;
  switch (v.GetType()) {
    case rapidjson::kNullType:
      return w->Null();
    case rapidjson::kFalseType:
      return w->Bool(false);
    case rapidjson::kTrueType:
      return w->Bool(true);
    case rapidjson::kStringType:
      if (json.IsRawNumber(v)) {
        return w->RawValue(v.GetString(), v.GetStringLength(), rapidjson::kNumberType);
      }
      return w->String(v.GetString(), v.GetStringLength());
    case rapidjson::kNumberType:  // only when a caller built numbers into the DOM
      if (v.IsInt64()) return w->Int64(v.GetInt64());
      if (v.IsUint64()) return w->Uint64(v.GetUint64());
      return w->Double(v.GetDouble());
    case rapidjson::kObjectType:
      w->StartObject();
      for (auto m = v.MemberBegin(); m != v.MemberEnd(); ++m) {
        w->Key(m->name.GetString(), m->name.GetStringLength());
        if (!WriteCompactJson(json, m->value, w, depth + 1)) return false;
      }
      return w->EndObject();
    case rapidjson::kArrayType:
      w->StartArray();
      for (const auto& e : v.GetArray()) {
        if (!WriteCompactJson(json, e, w, depth + 1)) return false;
      }
      return w->EndArray();
  }
  return false;
}

const rapidjson::Value* FindMember(const rapidjson::Value& obj, const char* name) {
  if (!obj.IsObject()) return nullptr;
  auto it = obj.FindMember(name);
  return it == obj.MemberEnd() ? nullptr : &it->value;
}

const rapidjson::Value* FindString(const ParsedJson& json, const rapidjson::Value& obj,
                                   const char* name) {
  const rapidjson::Value* v = FindMember(obj, name);
  if (v == nullptr || !v->IsString() || json.IsRawNumber(*v)) return nullptr;
  return v;
}

}  // namespace fhirbulk
