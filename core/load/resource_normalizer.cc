#include "load/resource_normalizer.h"

#include <openssl/evp.h>

#include <cstring>

#include "fhir/resource_types.h"
#include "util/fhir_time.h"

namespace fhirbulk {

namespace {

constexpr int kMaxDepth = kMaxJsonDepth;

bool NameIs(const rapidjson::Value& name, std::string_view s) {
  return name.GetStringLength() == s.size() &&
         std::memcmp(name.GetString(), s.data(), s.size()) == 0;
}

std::string_view View(const rapidjson::Value& v) {
  return std::string_view(v.GetString(), v.GetStringLength());
}

}  // namespace

Status CheckResourceIdentity(const ParsedJson& json, const rapidjson::Value& resource,
                             std::string_view* type, std::string_view* id) {
  if (!resource.IsObject()) return Status::InvalidArgument("not a JSON object");
  int type_count = 0, id_count = 0, meta_count = 0;
  const rapidjson::Value* type_value = nullptr;
  const rapidjson::Value* id_value = nullptr;
  for (auto m = resource.MemberBegin(); m != resource.MemberEnd(); ++m) {
    if (NameIs(m->name, "resourceType")) {
      type_count++;
      type_value = &m->value;
    } else if (NameIs(m->name, "id")) {
      id_count++;
      id_value = &m->value;
    } else if (NameIs(m->name, "meta")) {
      meta_count++;
      if (!m->value.IsObject()) return Status::InvalidArgument("meta is not an object");
    }
  }
  if (type_count > 1 || id_count > 1 || meta_count > 1) {
    return Status::InvalidArgument("duplicate resourceType, id or meta member");
  }
  if (type_value == nullptr) return Status::InvalidArgument("no resourceType");
  if (!type_value->IsString() || json.IsRawNumber(*type_value)) {
    return Status::InvalidArgument("resourceType is not a string");
  }
  std::string_view t = View(*type_value);
  if (!IsR4ResourceType(t)) {
    return Status::InvalidArgument("unknown resourceType '" + std::string(t.substr(0, 64)) + "'");
  }
  if (id_value == nullptr) return Status::InvalidArgument("no id");
  if (!id_value->IsString() || json.IsRawNumber(*id_value)) {
    return Status::InvalidArgument("id is not a string");
  }
  std::string_view i = View(*id_value);
  if (!IsValidFhirId(i)) {
    return Status::InvalidArgument("invalid id '" + std::string(i.substr(0, 80)) +
                                   "' (FHIR ids match [A-Za-z0-9-.]{1,64})");
  }
  *type = t;
  *id = i;
  return Status::OK();
}

struct ResourceNormalizer::Sha256 {
  EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ~Sha256() {
    EVP_MD_CTX_free(ctx);
    EVP_MD_free(md);
  }
};

ResourceNormalizer::ResourceNormalizer() : sha_(new Sha256) {}
ResourceNormalizer::~ResourceNormalizer() { delete sha_; }

Status ResourceNormalizer::Normalize(const ParsedJson& json, const rapidjson::Value& resource,
                                     NormalizedResource* out) {
  std::string_view type, id;
  FHIRBULK_RETURN_IF_ERROR(CheckResourceIdentity(json, resource, &type, &id));
  out->type.assign(type);
  out->id.assign(id);
  out->source_last_updated_us.reset();

  buf_.Clear();
  JsonWriter w(buf_);
  w.StartObject();
  w.Key("resourceType");
  w.String(type.data(), static_cast<rapidjson::SizeType>(type.size()));
  w.Key("id");
  w.String(id.data(), static_cast<rapidjson::SizeType>(id.size()));
  w.Key("meta");
  w.StartObject();
  w.Key("versionId");
  w.String("");
  w.Key("lastUpdated");
  w.String("");
  const size_t head_size = buf_.GetSize();
  bool ok = true;
  if (const rapidjson::Value* meta = FindMember(resource, "meta")) {
    int last_updated_count = 0;
    for (auto m = meta->MemberBegin(); ok && m != meta->MemberEnd(); ++m) {
      if (NameIs(m->name, "lastUpdated")) {
        // Malformed or repeated: no source value. Not a rejection: the clock is used instead.
        out->source_last_updated_us.reset();
        if (++last_updated_count == 1 && m->value.IsString() && !json.IsRawNumber(m->value)) {
          auto instant = ParseInstant(View(m->value));
          if (instant.ok()) out->source_last_updated_us = *instant;
        }
        continue;
      }
      if (NameIs(m->name, "versionId")) continue;
      w.Key(m->name.GetString(), m->name.GetStringLength());
      ok = WriteCompactJson(json, m->value, &w, 2);
    }
  }
  w.EndObject();
  for (auto m = resource.MemberBegin(); ok && m != resource.MemberEnd(); ++m) {
    if (NameIs(m->name, "resourceType") || NameIs(m->name, "id") || NameIs(m->name, "meta")) {
      continue;
    }
    w.Key(m->name.GetString(), m->name.GetStringLength());
    ok = WriteCompactJson(json, m->value, &w, 1);
  }
  if (!ok) {
    return Status::InvalidArgument("nested deeper than " + std::to_string(kMaxDepth) + " levels");
  }
  w.EndObject();
  out->tail.assign(buf_.GetString() + head_size, buf_.GetSize() - head_size);

  // The hashed text: the body without versionId and lastUpdated (see the header).
  std::string start;
  start.reserve(32 + type.size() + id.size());
  start.append("{\"resourceType\":\"").append(type).append("\",\"id\":\"").append(id);
  const std::string& tail = out->tail;
  bool other_meta = !tail.empty() && tail[0] == ',';
  start.append(other_meta ? "\",\"meta\":{" : "\"");
  unsigned int len = 0;
  if (EVP_DigestInit_ex(sha_->ctx, sha_->md, nullptr) != 1 ||
      EVP_DigestUpdate(sha_->ctx, start.data(), start.size()) != 1 ||
      EVP_DigestUpdate(sha_->ctx, tail.data() + 1, tail.size() - 1) != 1 ||
      EVP_DigestFinal_ex(sha_->ctx, out->hash.data(), &len) != 1 || len != out->hash.size()) {
    return Status::Internal("SHA-256 failed");
  }
  return Status::OK();
}

void AppendBodyHead(std::string* out, std::string_view type, std::string_view id) {
  out->append("{\"resourceType\":\"")
      .append(type)
      .append("\",\"id\":\"")
      .append(id)
      .append("\",\"meta\":{\"versionId\":\"");
}

void AppendBody(std::string* out, const NormalizedResource& r, std::string_view version,
                std::string_view last_updated) {
  AppendBodyHead(out, r.type, r.id);
  out->append(version).append("\",\"lastUpdated\":\"").append(last_updated).append("\"");
  out->append(r.tail);
}

std::string AssembleBody(const NormalizedResource& r, int64_t version,
                         std::string_view last_updated) {
  std::string out;
  out.reserve(r.tail.size() + r.type.size() + r.id.size() + 96);
  AppendBody(&out, r, std::to_string(version), last_updated);
  return out;
}

}  // namespace fhirbulk
