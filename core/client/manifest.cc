#include "client/manifest.h"

#include <rapidjson/document.h>

#include "client/http_client.h"
#include "util/fhir_time.h"

namespace fhirbulk {
namespace client {

namespace {

Status ParseFiles(const rapidjson::Value& doc, const char* name, bool required,
                  std::vector<ManifestFile>* out) {
  auto it = doc.FindMember(name);
  if (it == doc.MemberEnd()) {
    return required ? Status::Corruption(std::string("manifest has no ") + name) : Status::OK();
  }
  if (!it->value.IsArray()) {
    return Status::Corruption(std::string("manifest ") + name + " is not an array");
  }
  int i = 0;
  for (const auto& item : it->value.GetArray()) {
    std::string where = std::string("manifest ") + name + "[" + std::to_string(i++) + "]";
    if (!item.IsObject()) return Status::Corruption(where + " is not an object");
    auto type = item.FindMember("type");
    auto url = item.FindMember("url");
    if (type == item.MemberEnd() || !type->value.IsString() || type->value.GetStringLength() == 0) {
      return Status::Corruption(where + " has no type");
    }
    if (url == item.MemberEnd() || !url->value.IsString() || !IsHttpUrl(url->value.GetString())) {
      return Status::Corruption(where + " has no absolute http(s) url");
    }
    ManifestFile f;
    f.type = type->value.GetString();
    f.url = url->value.GetString();
    auto count = item.FindMember("count");
    if (count != item.MemberEnd()) {
      if (count->value.IsUint64() && count->value.GetUint64() <= INT64_MAX) {
        f.count = static_cast<int64_t>(count->value.GetUint64());
      } else if (count->value.IsDouble() && count->value.GetDouble() >= 0 &&
                 count->value.GetDouble() < 9e15 &&
                 count->value.GetDouble() ==
                     static_cast<double>(static_cast<int64_t>(count->value.GetDouble()))) {
        f.count = static_cast<int64_t>(count->value.GetDouble());  // 812.0
      } else {
        return Status::Corruption(where + " count is not a non-negative integer");
      }
    }
    out->push_back(std::move(f));
  }
  return Status::OK();
}

}  // namespace

Result<Manifest> ParseManifest(std::string_view json) {
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    return Status::Corruption("the manifest is not a JSON object");
  }
  Manifest m;
  auto tt = doc.FindMember("transactionTime");
  if (tt == doc.MemberEnd() || !tt->value.IsString() || !ParseInstant(tt->value.GetString()).ok()) {
    return Status::Corruption("manifest transactionTime is missing or not an instant");
  }
  m.transaction_time = tt->value.GetString();
  // Required in v2, but the client needs nothing from it and v4 drops it.
  auto request = doc.FindMember("request");
  if (request != doc.MemberEnd() && request->value.IsString()) {
    m.request = request->value.GetString();
  }
  auto rat = doc.FindMember("requiresAccessToken");
  if (rat == doc.MemberEnd() || !rat->value.IsBool()) {
    return Status::Corruption("manifest requiresAccessToken is missing or not a boolean");
  }
  m.requires_access_token = rat->value.GetBool();
  FHIRBULK_RETURN_IF_ERROR(ParseFiles(doc, "output", true, &m.output));
  FHIRBULK_RETURN_IF_ERROR(ParseFiles(doc, "deleted", false, &m.deleted));
  FHIRBULK_RETURN_IF_ERROR(
      ParseFiles(doc, doc.HasMember("error") ? "error" : "outcome", false, &m.error));
  return m;
}

}  // namespace client
}  // namespace fhirbulk
