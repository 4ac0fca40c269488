// IndexResource walks the search parameter table (fhir/search_params.h) for the resource's type
// and reads each parameter's element paths straight from the RapidJSON DOM: no FHIRPath engine,
// no regex, no per-call tables. The Patient compartment falls out of the same walk: reference
// parameters flagged patient_compartment contribute their Patient/<id> values to `patients`.

#include "fhir/resource_index.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <tuple>

#include "fhir/resource_types.h"
#include "fhir/search_params.h"
#include "util/fhir_time.h"

namespace fhirbulk {

namespace {

using rapidjson::Value;

std::string_view AsView(const Value& v) {
  return std::string_view(v.GetString(), v.GetStringLength());
}

// The member `name` of an object, or nullptr. Linear like RapidJSON's own FindMember, but takes
// a string_view so path segments need no copies.
const Value* FindMember(const Value& object, std::string_view name) {
  if (!object.IsObject()) return nullptr;
  for (auto it = object.MemberBegin(); it != object.MemberEnd(); ++it) {
    if (it->name.GetStringLength() == name.size() &&
        std::memcmp(it->name.GetString(), name.data(), name.size()) == 0) {
      return &it->value;
    }
  }
  return nullptr;
}

// A non-empty string member, or an empty view.
std::string_view StringMember(const Value& object, std::string_view name) {
  const Value* v = FindMember(object, name);
  return v != nullptr && v->IsString() ? AsView(*v) : std::string_view();
}

// Calls fn(value) for every value at `path` (dot-separated member names) below v. Arrays are
// flattened at every step, as FHIRPath does: "performer.actor" visits each performer's actor.
template <typename Fn>
void VisitPath(const Value& v, std::string_view path, Fn&& fn) {
  if (v.IsArray()) {
    for (const Value& element : v.GetArray()) VisitPath(element, path, fn);
    return;
  }
  if (path.empty()) {
    fn(v);
    return;
  }
  const size_t dot = path.find('.');
  const Value* child = FindMember(v, path.substr(0, dot));
  if (child == nullptr) return;
  VisitPath(*child, dot == std::string_view::npos ? std::string_view() : path.substr(dot + 1), fn);
}

// Collects the index values of one resource. The output vectors are sorted and deduplicated
// once at the end, which is cheaper than keeping them sorted while appending.
class Indexer {
 public:
  explicit Indexer(ResourceIndex* out) : out_(out) {}

  void IndexParam(const Value& resource, const SearchParamDef& def) {
    for (int i = 0; i < kMaxSearchPaths && !def.paths[i].path.empty(); ++i) {
      const SearchPath& path = def.paths[i];
      VisitPath(resource, path.path,
                [&](const Value& value) { IndexValue(def, path.element, value); });
    }
  }

  void AddPatient(std::string_view id) { out_->patients.emplace_back(id); }

  void Finish() {
    SortUnique(&out_->patients);
    SortUnique(&out_->tokens);
    SortUnique(&out_->refs);
    auto key = [](const DateIndexValue& d) { return std::tie(d.param, d.lo_us, d.hi_us); };
    std::sort(out_->dates.begin(), out_->dates.end(),
              [&](const DateIndexValue& a, const DateIndexValue& b) { return key(a) < key(b); });
    out_->dates.erase(std::unique(out_->dates.begin(), out_->dates.end(),
                                  [&](const DateIndexValue& a, const DateIndexValue& b) {
                                    return key(a) == key(b);
                                  }),
                      out_->dates.end());
  }

 private:
  static void SortUnique(std::vector<std::string>* v) {
    std::sort(v->begin(), v->end());
    v->erase(std::unique(v->begin(), v->end()), v->end());
  }

  void IndexValue(const SearchParamDef& def, SearchElementType element, const Value& value) {
    switch (element) {
      case SearchElementType::kCodeableConcept:
        if (const Value* codings = FindMember(value, "coding")) {
          VisitPath(*codings, {}, [&](const Value& coding) { AddCoding(def.code, coding); });
        }
        break;
      case SearchElementType::kCoding:
        AddCoding(def.code, value);
        break;
      case SearchElementType::kCode:
        if (value.IsString()) AddToken(def.code, {}, AsView(value));
        break;
      case SearchElementType::kBoolean:
        if (value.IsBool()) AddToken(def.code, {}, value.GetBool() ? "true" : "false");
        break;
      case SearchElementType::kIdentifier:
        if (value.IsObject()) {
          AddToken(def.code, StringMember(value, "system"), StringMember(value, "value"));
        }
        break;
      case SearchElementType::kUri:
        if (value.IsString() && value.GetStringLength() > 0) {
          if (def.kind == SearchParamKind::kUri) {
            out_->tokens.push_back(Key(def.code, AsView(value)));
          } else {
            AddToken(def.code, {}, AsView(value));
          }
        }
        break;
      case SearchElementType::kReference:
        AddReference(def, value);
        break;
      case SearchElementType::kDateTime:
        if (value.IsString()) {
          Result<TimeRange> range = ParseDateTimeRange(AsView(value));
          if (range.ok()) AddDate(def.code, range->lo_us, range->hi_us);
        }
        break;
      case SearchElementType::kPeriod:
        AddPeriod(def.code, value);
        break;
    }
  }

  static std::string Key(std::string_view param, std::string_view value) {
    std::string key;
    key.reserve(param.size() + 1 + value.size());
    key.append(param.data(), param.size());
    key.push_back('=');
    key.append(value.data(), value.size());
    return key;
  }

  static std::string Key(std::string_view param, std::string_view system, std::string_view code) {
    std::string key;
    key.reserve(param.size() + 2 + system.size() + code.size());
    key.append(param.data(), param.size());
    key.push_back('=');
    key.append(system.data(), system.size());
    key.push_back('|');
    key.append(code.data(), code.size());
    return key;
  }

  // The token forms of one system|code value (an empty system means none was given).
  void AddToken(std::string_view param, std::string_view system, std::string_view code) {
    if (code.empty()) return;  // nothing a token query could match
    out_->tokens.push_back(Key(param, code));
    out_->tokens.push_back(Key(param, system, code));
    if (!system.empty()) out_->tokens.push_back(Key(param, system, {}));
  }

  void AddCoding(std::string_view param, const Value& coding) {
    if (!coding.IsObject()) return;
    AddToken(param, StringMember(coding, "system"), StringMember(coding, "code"));
  }

  void AddReference(const SearchParamDef& def, const Value& value) {
    if (!value.IsObject()) return;
    RelativeReference ref;
    if (!ParseRelativeReference(StringMember(value, "reference"), &ref)) return;
    if (!def.target.empty() && ref.type != def.target) return;
    std::string key;
    key.reserve(def.code.size() + 2 + ref.type.size() + ref.id.size());
    key.append(def.code.data(), def.code.size());
    key.push_back('=');
    key.append(ref.type.data(), ref.type.size());
    key.push_back('/');
    key.append(ref.id.data(), ref.id.size());
    out_->refs.push_back(std::move(key));
    if (def.patient_compartment && ref.type == "Patient") AddPatient(ref.id);
  }

  void AddPeriod(std::string_view param, const Value& period) {
    if (!period.IsObject()) return;
    const Value* start = FindMember(period, "start");
    const Value* end = FindMember(period, "end");
    if (start == nullptr && end == nullptr) return;
    int64_t lo = std::numeric_limits<int64_t>::min();
    int64_t hi = std::numeric_limits<int64_t>::max();
    if (start != nullptr) {
      if (!start->IsString()) return;
      Result<TimeRange> range = ParseDateTimeRange(AsView(*start));
      if (!range.ok()) return;
      lo = range->lo_us;
    }
    if (end != nullptr) {
      if (!end->IsString()) return;
      Result<TimeRange> range = ParseDateTimeRange(AsView(*end));
      if (!range.ok()) return;
      hi = range->hi_us;
    }
    if (lo > hi) return;  // violates R4 per-1 (start <= end): no sensible range
    AddDate(param, lo, hi);
  }

  void AddDate(std::string_view param, int64_t lo, int64_t hi) {
    out_->dates.push_back(DateIndexValue{std::string(param), lo, hi});
  }

  ResourceIndex* out_;
};

Status RequireResourceType(const Value& resource, std::string_view* type) {
  if (!resource.IsObject()) return Status::InvalidArgument("resource is not a JSON object");
  const Value* rt = FindMember(resource, "resourceType");
  if (rt == nullptr || !rt->IsString() || rt->GetStringLength() == 0) {
    return Status::InvalidArgument("resource has no resourceType");
  }
  *type = AsView(*rt);
  return Status::OK();
}

}  // namespace

bool ParseRelativeReference(std::string_view reference, RelativeReference* out) {
  const size_t slash = reference.find('/');
  if (slash == std::string_view::npos) return false;
  std::string_view type = reference.substr(0, slash);
  std::string_view id = reference.substr(slash + 1);
  const size_t next = id.find('/');
  if (next != std::string_view::npos) {
    // Only "Type/id/_history/vid" may continue past the id.
    std::string_view rest = id.substr(next);
    constexpr std::string_view kHistory = "/_history/";
    if (rest.size() <= kHistory.size() || rest.substr(0, kHistory.size()) != kHistory ||
        !IsValidFhirId(rest.substr(kHistory.size()))) {
      return false;
    }
    id = id.substr(0, next);
  }
  if (!IsValidFhirId(id) || !IsR4ResourceType(type)) return false;
  out->type = type;
  out->id = id;
  return true;
}

namespace {

// Collects references to non-compartment types from every "reference" member, at any depth.
void CollectOutRefs(const Value& v, std::vector<std::string>* out) {
  if (v.IsObject()) {
    for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) {
      if (it->value.IsString() &&
          std::string_view(it->name.GetString(), it->name.GetStringLength()) == "reference") {
        RelativeReference ref;
        std::string_view text(it->value.GetString(), it->value.GetStringLength());
        if (ParseRelativeReference(text, &ref) && !IsPatientCompartmentType(ref.type)) {
          std::string key(ref.type);
          key += '/';
          key.append(ref.id.data(), ref.id.size());
          out->push_back(std::move(key));
        }
      } else if (it->value.IsObject() || it->value.IsArray()) {
        CollectOutRefs(it->value, out);
      }
    }
  } else if (v.IsArray()) {
    for (const Value& item : v.GetArray()) CollectOutRefs(item, out);
  }
}

}  // namespace

Status IndexResource(const rapidjson::Value& resource, ResourceIndex* out) {
  out->patients.clear();
  out->tokens.clear();
  out->refs.clear();
  out->dates.clear();
  out->outrefs.clear();
  std::string_view type;
  FHIRBULK_RETURN_IF_ERROR(RequireResourceType(resource, &type));

  Indexer indexer(out);
  if (type == "Patient") {
    std::string_view id = StringMember(resource, "id");
    if (IsValidFhirId(id)) indexer.AddPatient(id);
  }
  for (const SearchParamDef& def : SearchParamsForType(type)) indexer.IndexParam(resource, def);
  for (const SearchParamDef& def : CommonSearchParams()) indexer.IndexParam(resource, def);
  indexer.Finish();
  CollectOutRefs(resource, &out->outrefs);
  std::sort(out->outrefs.begin(), out->outrefs.end());
  out->outrefs.erase(std::unique(out->outrefs.begin(), out->outrefs.end()), out->outrefs.end());
  return Status::OK();
}

Status ExtractGroupMembers(const rapidjson::Value& group, std::vector<GroupMemberEntry>* out) {
  out->clear();
  std::string_view type;
  FHIRBULK_RETURN_IF_ERROR(RequireResourceType(group, &type));
  if (type != "Group") {
    return Status::InvalidArgument("expected a Group, got " + std::string(type));
  }
  const Value* members = FindMember(group, "member");
  if (members == nullptr || !members->IsArray()) return Status::OK();
  for (const Value& member : members->GetArray()) {
    const Value* entity = FindMember(member, "entity");
    if (entity == nullptr || !entity->IsObject()) continue;
    RelativeReference ref;
    if (!ParseRelativeReference(StringMember(*entity, "reference"), &ref) ||
        ref.type != "Patient") {
      continue;
    }
    GroupMemberEntry entry;
    entry.patient_id.assign(ref.id.data(), ref.id.size());
    const Value* inactive = FindMember(member, "inactive");
    entry.inactive = inactive != nullptr && inactive->IsBool() && inactive->GetBool();
    if (const Value* period = FindMember(member, "period")) {
      std::string_view start = StringMember(*period, "start");
      std::string_view end = StringMember(*period, "end");
      if (!start.empty()) {
        Result<TimeRange> range = ParseDateTimeRange(start);
        if (range.ok()) {
          entry.has_start = true;
          entry.period_start_us = range->lo_us;
        }
      }
      if (!end.empty()) {
        Result<TimeRange> range = ParseDateTimeRange(end);
        if (range.ok()) {
          entry.has_end = true;
          entry.period_end_us = range->hi_us;
        }
      }
    }
    out->push_back(std::move(entry));
  }
  return Status::OK();
}

}  // namespace fhirbulk
