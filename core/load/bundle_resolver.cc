#include "load/bundle_resolver.h"

#include <algorithm>
#include <cstring>

#include "fhir/resource_types.h"
#include "load/resource_normalizer.h"

namespace fhirbulk {

namespace {

constexpr int kMaxDepth = kMaxJsonDepth;

std::string_view View(const rapidjson::Value& v) {
  return std::string_view(v.GetString(), v.GetStringLength());
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

// References only a Bundle (or the load) can define: they never mean anything on a server.
bool IsLocalUrn(std::string_view ref) {
  return StartsWith(ref, kUrnUuidPrefix) || StartsWith(ref, "urn:oid:");
}

// Calls visit(Value* reference_string) for every string member named "reference". False when
// nested too deep.
template <typename Visit>
bool WalkReferences(const ParsedJson& json, rapidjson::Value* v, int depth, Visit& visit) {
  if (depth > kMaxDepth) return false;
  if (v->IsObject()) {
    for (auto m = v->MemberBegin(); m != v->MemberEnd(); ++m) {
      if (m->value.IsString()) {
        if (m->name.GetStringLength() == 9 &&
            std::memcmp(m->name.GetString(), "reference", 9) == 0 && !json.IsRawNumber(m->value)) {
          visit(&m->value);
        }
      } else if (m->value.IsObject() || m->value.IsArray()) {
        if (!WalkReferences(json, &m->value, depth + 1, visit)) return false;
      }
    }
  } else if (v->IsArray()) {
    for (auto& e : v->GetArray()) {
      if (e.IsObject() || e.IsArray()) {
        if (!WalkReferences(json, &e, depth + 1, visit)) return false;
      }
    }
  }
  return true;
}

Status TooDeep() {
  return Status::InvalidArgument("nested deeper than " + std::to_string(kMaxDepth) + " levels");
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int TypeIndex(std::string_view type) {
  const auto& types = R4ResourceTypes();
  auto it = std::lower_bound(types.begin(), types.end(), type);
  if (it == types.end() || *it != type) return -1;
  return static_cast<int>(it - types.begin());
}

}  // namespace

bool IsUnpackedBundleType(std::string_view t) {
  return t == "transaction" || t == "batch" || t == "collection" || t == "searchset";
}

bool UuidDirectory::ParseUuid(std::string_view full_url, Key* key) {
  if (!StartsWith(full_url, kUrnUuidPrefix)) return false;
  std::string_view u = full_url.substr(kUrnUuidPrefix.size());
  if (u.size() != 36) return false;
  uint64_t parts[2] = {0, 0};
  int nibble = 0;
  for (size_t i = 0; i < u.size(); i++) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (u[i] != '-') return false;
      continue;
    }
    int d = HexDigit(u[i]);
    if (d < 0) return false;
    parts[nibble / 16] = (parts[nibble / 16] << 4) | static_cast<uint64_t>(d);
    nibble++;
  }
  key->hi = parts[0];
  key->lo = parts[1];
  return true;
}

void UuidDirectory::Add(std::string_view full_url, std::string_view type, std::string_view id) {
  Key key;
  int type_index = TypeIndex(type);
  if (type_index < 0 || !ParseUuid(full_url, &key)) return;
  if (map_.size() >= max_entries_ && map_.find(key) == map_.end()) return;
  Target t{static_cast<uint16_t>(type_index), std::string()};
  if (id != full_url.substr(kUrnUuidPrefix.size())) t.id.assign(id);
  map_[key] = std::move(t);
}

std::string UuidDirectory::Find(std::string_view reference) const {
  Key key;
  if (!ParseUuid(reference, &key)) return "";
  auto it = map_.find(key);
  if (it == map_.end()) return "";
  std::string out(R4ResourceTypes()[it->second.type_index]);
  out += '/';
  if (it->second.id.empty()) {
    out.append(reference.substr(kUrnUuidPrefix.size()));
  } else {
    out.append(it->second.id);
  }
  return out;
}

void BundleResolver::Index(ParsedJson* json, rapidjson::Value* bundle) {
  targets_.clear();
  rapidjson::Value* entries = nullptr;
  if (bundle->IsObject()) {
    auto it = bundle->FindMember("entry");
    if (it != bundle->MemberEnd() && it->value.IsArray()) entries = &it->value;
  }
  if (entries == nullptr) return;
  for (auto& entry : entries->GetArray()) {
    const rapidjson::Value* full_url = FindString(*json, entry, "fullUrl");
    if (!entry.IsObject()) continue;
    auto res = entry.FindMember("resource");
    if (res == entry.MemberEnd() || !res->value.IsObject()) continue;
    rapidjson::Value& resource = res->value;
    const rapidjson::Value* type = FindString(*json, resource, "resourceType");
    if (type == nullptr || !IsR4ResourceType(View(*type))) continue;
    const rapidjson::Value* id = FindString(*json, resource, "id");
    if (id == nullptr && full_url != nullptr && FindMember(resource, "id") == nullptr &&
        StartsWith(View(*full_url), kUrnUuidPrefix)) {
      // No id: take the uuid of the fullUrl (see the header). Copied: a view into the middle
      // of the parsed buffer would look like a number to ParsedJson.
      std::string_view uuid = View(*full_url).substr(kUrnUuidPrefix.size());
      rapidjson::Value id_value(uuid.data(), static_cast<rapidjson::SizeType>(uuid.size()),
                                json->allocator());
      resource.AddMember("id", id_value, json->allocator());
      id = FindString(*json, resource, "id");
    }
    if (full_url == nullptr || id == nullptr || !IsValidFhirId(View(*id))) continue;
    std::string target(View(*type));
    target += '/';
    target.append(View(*id));
    targets_[View(*full_url)] = std::move(target);
  }
}

Status BundleResolver::Resolve(const ParsedJson& json, rapidjson::Value* resource) const {
  std::string dangling;
  auto visit = [&](rapidjson::Value* ref) {
    std::string_view r = View(*ref);
    auto it = targets_.find(r);
    if (it != targets_.end()) {
      ref->SetString(rapidjson::StringRef(it->second.data(), it->second.size()));
    } else if (IsLocalUrn(r) && dangling.empty()) {
      dangling.assign(r.substr(0, 120));
    }
  };
  if (!WalkReferences(json, resource, 0, visit)) return TooDeep();
  if (!dangling.empty()) {
    return Status::InvalidArgument("reference '" + dangling + "' is not a fullUrl of the Bundle");
  }
  return Status::OK();
}

Status ResolveBareResource(ParsedJson* json, rapidjson::Value* resource, const UuidLookup& lookup,
                           std::vector<std::string>* unresolved) {
  auto visit = [&](rapidjson::Value* ref) {
    std::string_view r = View(*ref);
    if (!IsLocalUrn(r)) return;
    std::string target = StartsWith(r, kUrnUuidPrefix) ? lookup(r) : std::string();
    if (target.empty()) {
      unresolved->emplace_back(r);
    } else {
      ref->SetString(target.data(), static_cast<rapidjson::SizeType>(target.size()),
                     json->allocator());
    }
  };
  if (!WalkReferences(*json, resource, 0, visit)) return TooDeep();
  return Status::OK();
}

void CollectUuidReferences(const ParsedJson& json, const rapidjson::Value& resource,
                           std::vector<std::string>* out) {
  auto visit = [&](rapidjson::Value* ref) {
    std::string_view r = View(*ref);
    if (StartsWith(r, kUrnUuidPrefix)) out->emplace_back(r);
  };
  WalkReferences(json, const_cast<rapidjson::Value*>(&resource), 0, visit);
}

}  // namespace fhirbulk
