#include "client/manifest.h"

#include <rapidjson/document.h>

#include "client/bounded_json.h"
#include "client/http_client.h"
#include "util/fhir_time.h"

namespace fhirbulk {
namespace client {

namespace {

Status ParseFiles(const rapidjson::Value& doc, const char* name, bool required, size_t* files_left,
                  std::vector<ManifestFile>* out, bool organized = false) {
  auto it = doc.FindMember(name);
  if (it == doc.MemberEnd()) {
    return required ? Status::Corruption(std::string("manifest has no ") + name) : Status::OK();
  }
  if (!it->value.IsArray()) {
    return Status::Corruption(std::string("manifest ") + name + " is not an array");
  }
  if (it->value.Size() > *files_left) return Status::ResourceExhausted("too many files");
  *files_left -= it->value.Size();
  int i = 0;
  for (const auto& item : it->value.GetArray()) {
    std::string where = std::string("manifest ") + name + "[" + std::to_string(i++) + "]";
    if (!item.IsObject()) return Status::Corruption(where + " is not an object");
    auto type = item.FindMember("type");
    auto url = item.FindMember("url");
    const bool typed =
        type != item.MemberEnd() && type->value.IsString() && type->value.GetStringLength() > 0;
    if (!typed && !organized) return Status::Corruption(where + " has no type");
    if (url == item.MemberEnd() || !url->value.IsString() || !IsHttpUrl(url->value.GetString())) {
      return Status::Corruption(where + " has no absolute http(s) url");
    }
    ManifestFile f;
    if (typed) f.type = type->value.GetString();
    f.url = url->value.GetString();
    if (organized) {  // IG 3.0.0: a block that goes on in another file
      auto next = item.FindMember("continuesInFile");
      if (next != item.MemberEnd()) {
        if (!next->value.IsString() || !IsHttpUrl(next->value.GetString())) {
          return Status::Corruption(where + " continuesInFile is not an absolute http(s) url");
        }
        f.continues_in_file = next->value.GetString();
      }
    }
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

Result<Manifest> ParseManifest(std::string_view json, const ManifestLimits& limits) {
  if (json.size() > limits.max_bytes) {
    return Status::ResourceExhausted("the manifest is larger than " +
                                     std::to_string(limits.max_bytes) +
                                     " bytes (--max-manifest-bytes)");
  }
  rapidjson::Document doc;
  std::string error;
  if (!ParseBoundedJson(json, &doc, kMaxJsonDepth, &error)) {
    return Status::Corruption("the manifest is not JSON: " + error);
  }
  if (!doc.IsObject()) return Status::Corruption("the manifest is not a JSON object");
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
  size_t files_left = limits.max_files;
  auto organized = doc.FindMember("outputOrganizedBy");
  if (organized != doc.MemberEnd()) {
    if (!organized->value.IsString() || organized->value.GetStringLength() == 0) {
      return Status::Corruption("manifest outputOrganizedBy is not a resource type");
    }
    m.output_organized_by = organized->value.GetString();
  }
  Status s =
      ParseFiles(doc, "output", true, &files_left, &m.output, !m.output_organized_by.empty());
  if (s.ok()) s = ParseFiles(doc, "deleted", false, &files_left, &m.deleted);
  if (s.ok()) {
    s = ParseFiles(doc, doc.HasMember("error") ? "error" : "outcome", false, &files_left, &m.error);
  }
  if (s.code() == Status::Code::kResourceExhausted) {
    return Status::ResourceExhausted("the manifest lists more than " +
                                     std::to_string(limits.max_files) +
                                     " files (--max-manifest-files)");
  }
  if (!s.ok()) return s;
  // IG 3.0.0 paged manifests: link [{"relation": "next", "url": ...}]; anything else in
  // `link` is ignored (a client that does not page just sees the first page's files).
  auto link = doc.FindMember("link");
  if (link != doc.MemberEnd() && link->value.IsArray()) {
    for (const auto& l : link->value.GetArray()) {
      if (!l.IsObject()) continue;
      auto rel = l.FindMember("relation");
      auto url = l.FindMember("url");
      if (rel == l.MemberEnd() || url == l.MemberEnd() || !rel->value.IsString() ||
          !url->value.IsString() || std::string_view(rel->value.GetString()) != "next") {
        continue;
      }
      m.next_url.assign(url->value.GetString(), url->value.GetStringLength());
      break;
    }
  }
  return m;
}

}  // namespace client
}  // namespace fhirbulk
