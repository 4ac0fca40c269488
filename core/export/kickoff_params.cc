// Parameters of a GET query or a POST Parameters body (kickoff_params.h).

#include "export/kickoff_params.h"

#include <rapidjson/document.h>

#include <algorithm>
#include <utility>

#include "export/kickoff_headers.h"
#include "http/query_string.h"
#include "util/json_depth.h"

namespace fhirbulk {
namespace kickoff {

namespace {

constexpr size_t kMaxNameBytes = 64;  // a parameter name; ours are at most 21

Status UnknownParameter(std::string_view name, Leniency* leniency) {
  return leniency->Unsupported(name, std::string(name) + ": unknown parameter for $export");
}

// A parameter name or value over its byte limit (checked before anything decodes it).
Status CheckSizes(std::string_view name, size_t value_bytes, const KickoffLimits& limits) {
  if (name.size() > kMaxNameBytes) {
    return Status::InvalidArgument("parameter name " + Quoted(name) + " is " +
                                   OverLimit(kMaxNameBytes, "bytes"));
  }
  if (value_bytes > limits.max_value_bytes) {
    return Status::InvalidArgument(std::string(name) + ": the value is " +
                                   std::to_string(value_bytes) + " bytes, " +
                                   OverLimit(limits.max_value_bytes, "bytes per value"));
  }
  return Status::OK();
}

// A JSON string without embedded NULs (PostgreSQL text cannot hold them).
Result<std::string> JsonText(const rapidjson::Value& v, std::string_view param,
                             std::string_view member) {
  std::string s(v.GetString(), v.GetStringLength());
  if (s.find('\0') != std::string::npos) {
    return Status::InvalidArgument(std::string(param) + ": " + std::string(member) +
                                   " contains a NUL character");
  }
  return s;
}

// Reads the one value[x] of a Parameters.parameter entry as text, given the value types this
// parameter accepts.
Result<std::string> ParameterValue(const rapidjson::Value& entry, std::string_view name) {
  const rapidjson::Value* value = nullptr;
  std::string_view member;
  for (auto it = entry.MemberBegin(); it != entry.MemberEnd(); ++it) {
    std::string_view key(it->name.GetString(), it->name.GetStringLength());
    if (!StartsWith(key, "value")) continue;
    if (value != nullptr) {
      return Status::InvalidArgument(std::string(name) + ": more than one value[x]");
    }
    value = &it->value;
    member = key;
  }
  if (value == nullptr) {
    return Status::InvalidArgument(std::string(name) + ": parameter entry has no value[x]");
  }
  auto wrong_type = [&](std::string_view expected) {
    return Status::InvalidArgument(std::string(name) + ": expected " + std::string(expected) +
                                   ", got " + std::string(member));
  };
  if (name == "allowPartialManifests") {
    if (member != "valueBoolean" || !value->IsBool()) return wrong_type("valueBoolean");
    return std::string(value->GetBool() ? "true" : "false");
  }
  if (name == "_since" || name == "_until") {
    if ((member != "valueInstant" && member != "valueDateTime") || !value->IsString()) {
      return wrong_type("valueInstant");
    }
    return JsonText(*value, name, member);
  }
  if (name == "patient") {
    if (member != "valueReference" || !value->IsObject()) return wrong_type("valueReference");
    auto ref = value->FindMember("reference");
    if (ref == value->MemberEnd() || !ref->value.IsString()) {
      return Status::InvalidArgument(
          "patient: valueReference needs a literal reference \"Patient/<id>\"");
    }
    return JsonText(ref->value, name, "valueReference.reference");
  }
  if (name == "includeAssociatedData") {
    if ((member == "valueCode" || member == "valueString") && value->IsString()) {
      return JsonText(*value, name, member);
    }
    if (member == "valueCoding" && value->IsObject()) {
      auto code = value->FindMember("code");
      if (code != value->MemberEnd() && code->value.IsString()) {
        return JsonText(code->value, name, "valueCoding.code");
      }
      return Status::InvalidArgument("includeAssociatedData: valueCoding without a code");
    }
    return wrong_type("valueCode");
  }
  if (name == "organizeOutputBy" && member == "valueCode" && value->IsString()) {
    return JsonText(*value, name, member);
  }
  if (member != "valueString" || !value->IsString()) return wrong_type("valueString");
  return JsonText(*value, name, member);
}

// Rejects JSON nested deeper than max_depth before any DOM is built (util/json_depth.h: one
// pass over the bytes); malformed JSON is left to the parser.
Status CheckJsonDepth(std::string_view json, int max_depth) {
  if (JsonNestingWithin(json, static_cast<size_t>(max_depth))) return Status::OK();
  return Status::InvalidArgument("body: JSON nested deeper than " + std::to_string(max_depth) +
                                 " levels, " + OverLimit(max_depth, "levels"));
}

}  // namespace

std::vector<std::string>* RawParams::Find(std::string_view name) {
  if (name == "allowPartialManifests") return &allow_partial_manifests;
  if (name == "_outputFormat") return &output_format;
  if (name == "_since") return &since;
  if (name == "_until") return &until;
  if (name == "_type") return &types;
  if (name == "_elements") return &elements;
  if (name == "patient") return &patients;
  if (name == "includeAssociatedData") return &include_associated_data;
  if (name == kTypeFilter) return &type_filters;
  if (name == "organizeOutputBy") return &organize_output_by;
  return nullptr;
}

Status CollectGetParams(std::string_view query, const KickoffLimits& limits, Leniency* leniency,
                        RawParams* raw) {
  if (query.size() > limits.max_query_bytes) {
    return Status::UriTooLong(std::string(kQueryTooLarge) + ": the query string is " +
                              std::to_string(query.size()) + " bytes, " +
                              OverLimit(limits.max_query_bytes, "bytes"));
  }
  const size_t segments = static_cast<size_t>(std::count(query.begin(), query.end(), '&')) + 1;
  if (segments > limits.max_parameters) {
    return Status::InvalidArgument("query: " + std::to_string(segments) + " parameters, " +
                                   OverLimit(limits.max_parameters, "parameters"));
  }
  Result<std::vector<QueryParam>> params = SplitQueryString(query);
  if (!params.ok()) return params.status();
  for (QueryParam& p : *params) {
    FHIRBULK_RETURN_IF_ERROR(CheckSizes(p.name, p.raw_value.size(), limits));
    std::vector<std::string>* values = raw->Find(p.name);
    if (values == nullptr) {
      FHIRBULK_RETURN_IF_ERROR(UnknownParameter(p.name, leniency));
      continue;
    }
    if (p.name == "patient") {
      FHIRBULK_RETURN_IF_ERROR(leniency->Unsupported(
          "patient", "patient: only accepted in a POST Parameters body, not in a GET query"));
      continue;
    }
    if (p.name == kTypeFilter) {
      values->push_back(std::move(p.raw_value));
      continue;
    }
    Result<std::string> value = PercentDecode(p.raw_value, /*plus_as_space=*/true);
    if (!value.ok()) return value.status().WithContext(p.name);
    values->push_back(std::move(value).value());
  }
  return Status::OK();
}

Status CollectPostParams(const HttpRequest& request, const KickoffLimits& limits,
                         Leniency* leniency, RawParams* raw) {
  FHIRBULK_RETURN_IF_ERROR(CheckContentType(request.content_type));
  if (request.body.size() > limits.max_body_bytes) {
    return Status::TooLarge(std::string(kBodyTooLarge) + ": the body is " +
                            std::to_string(request.body.size()) + " bytes, " +
                            OverLimit(limits.max_body_bytes, "bytes"));
  }
  FHIRBULK_RETURN_IF_ERROR(CheckJsonDepth(request.body, limits.max_json_depth));
  if (!request.query.empty()) {
    // Parameters live in the body; a URL query is most likely a client mistake, and merging
    // two sources would make "repeated = one list" ambiguous.
    FHIRBULK_RETURN_IF_ERROR(leniency->Unsupported(
        "query", "URL query " + Quoted(request.query) +
                     ": a POST kick-off takes its parameters from the Parameters body only"));
  }
  // Iterative: the parser's own stack is on the heap, whatever the nesting (defence in depth
  // behind CheckJsonDepth; this runs in nginx's event loop).
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseValidateEncodingFlag | rapidjson::kParseIterativeFlag>(
      request.body.data(), request.body.size());
  if (doc.HasParseError()) return Status::InvalidArgument("body is not valid JSON");
  if (!doc.IsObject()) return Status::InvalidArgument("body is not a FHIR Parameters resource");
  auto rt = doc.FindMember("resourceType");
  if (rt == doc.MemberEnd() || !rt->value.IsString() ||
      std::string_view(rt->value.GetString(), rt->value.GetStringLength()) != "Parameters") {
    return Status::InvalidArgument("body is not a FHIR Parameters resource (resourceType)");
  }
  auto list = doc.FindMember("parameter");
  if (list == doc.MemberEnd()) return Status::OK();
  if (!list->value.IsArray())
    return Status::InvalidArgument("Parameters.parameter is not an array");
  if (list->value.Size() > limits.max_parameters) {
    return Status::InvalidArgument("Parameters.parameter: " + std::to_string(list->value.Size()) +
                                   " entries, " + OverLimit(limits.max_parameters, "parameters"));
  }
  for (const rapidjson::Value& entry : list->value.GetArray()) {
    if (!entry.IsObject()) {
      return Status::InvalidArgument("Parameters.parameter entry is not an object");
    }
    auto name_it = entry.FindMember("name");
    if (name_it == entry.MemberEnd() || !name_it->value.IsString()) {
      return Status::InvalidArgument("Parameters.parameter entry without a name");
    }
    Result<std::string> name = JsonText(name_it->value, "Parameters.parameter", "name");
    if (!name.ok()) return name.status();
    FHIRBULK_RETURN_IF_ERROR(CheckSizes(*name, 0, limits));
    std::vector<std::string>* values = raw->Find(*name);
    if (values == nullptr) {
      FHIRBULK_RETURN_IF_ERROR(UnknownParameter(*name, leniency));
      continue;
    }
    Result<std::string> value = ParameterValue(entry, *name);
    if (!value.ok()) return value.status();
    FHIRBULK_RETURN_IF_ERROR(CheckSizes(*name, value->size(), limits));
    values->push_back(std::move(value).value());
  }
  return Status::OK();
}

}  // namespace kickoff
}  // namespace fhirbulk
