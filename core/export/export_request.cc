// The kick-off parser: headers (kickoff_headers.h), GET query or POST Parameters body
// (kickoff_params.h), then one validation pass per parameter in a fixed order (so the first
// error reported does not depend on how the client ordered its parameters), _typeFilter last
// (type_filter_parse.h). See export_request.h for the decisions these files encode.

#include "export/export_request.h"

#include <algorithm>
#include <utility>

#include "export/kickoff_headers.h"
#include "export/kickoff_params.h"
#include "export/kickoff_util.h"
#include "export/type_filter_parse.h"
#include "fhir/resource_index.h"
#include "fhir/resource_types.h"
#include "util/fhir_time.h"
#include "util/strings.h"

namespace fhirbulk {

namespace {

using kickoff::AddUnique;
using kickoff::Leniency;
using kickoff::LooksLikeTypeName;
using kickoff::Lower;
using kickoff::OverLimit;
using kickoff::Quoted;
using kickoff::RawParams;
using kickoff::Split;
using kickoff::StartsWith;

constexpr std::string_view kNdjson = "application/fhir+ndjson";
constexpr size_t kMaxInstantBytes = 64;  // _since/_until; an instant is at most 35

// An element name: [a-z][A-Za-z0-9]*.
bool IsElementName(std::string_view s) {
  if (s.empty() || !(s[0] >= 'a' && s[0] <= 'z')) return false;
  for (char c : s) {
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) {
      return false;
    }
  }
  return true;
}

// Splits a comma list, trimming blanks around items; an empty item is an error.
Result<std::vector<std::string>> CommaItems(const std::vector<std::string>& values,
                                            std::string_view param, size_t max_items) {
  size_t count = 0;
  for (const std::string& value : values) {
    count += static_cast<size_t>(std::count(value.begin(), value.end(), ',')) + 1;
  }
  if (count > max_items) {
    return Status::InvalidArgument(std::string(param) + ": " + std::to_string(count) + " items, " +
                                   OverLimit(max_items, "items"));
  }
  std::vector<std::string> items;
  for (const std::string& value : values) {
    for (std::string_view item : Split(value, ',')) {
      item = Trim(item);
      if (item.empty()) {
        return Status::InvalidArgument(std::string(param) + ": empty item in " + Quoted(value));
      }
      items.emplace_back(item);
    }
  }
  return items;
}

Status SingleValue(const std::vector<std::string>& values, std::string_view param) {
  if (values.size() > 1) {
    return Status::InvalidArgument(std::string(param) + ": may be given only once");
  }
  return Status::OK();
}

Status ApplyOutputFormat(const std::vector<std::string>& values, ExportRequest* out) {
  FHIRBULK_RETURN_IF_ERROR(SingleValue(values, "_outputFormat"));
  if (values.empty()) return Status::OK();
  // A raw '+' in a GET query decodes to ' ', which no media type contains: read it back.
  std::string format = Lower(Trim(values[0]));
  std::replace(format.begin(), format.end(), ' ', '+');
  if (format == kNdjson || format == "application/ndjson" || format == "ndjson") {
    out->output_format = std::string(kNdjson);
    return Status::OK();
  }
  // Not lenient-ignorable: the client would get a format it did not ask for.
  return Status::NotSupported("_outputFormat: " + Quoted(values[0]) +
                              " is not supported; use application/fhir+ndjson");
}

// A FHIR instant. A raw '+' in a GET query decodes to ' ' (form encoding); an instant never
// contains a space, so "...T00:00:00 02:00" is read back as "+02:00" instead of failing.
Result<int64_t> ParseInstantParam(const std::string& text, std::string_view param) {
  if (text.size() > kMaxInstantBytes) {
    return Status::InvalidArgument(std::string(param) + ": the value is " +
                                   std::to_string(text.size()) + " bytes, " +
                                   OverLimit(kMaxInstantBytes, "bytes") + " for an instant");
  }
  Result<int64_t> t = ParseInstant(text);
  if (!t.ok() && text.find(' ') != std::string::npos) {
    std::string repaired = text;
    std::replace(repaired.begin(), repaired.end(), ' ', '+');
    t = ParseInstant(repaired);
  }
  if (!t.ok()) {
    return Status::InvalidArgument(std::string(param) + ": " + Quoted(text) +
                                   " is not a FHIR instant (seconds and time zone are required;"
                                   " send '+' as %2B)");
  }
  return t;
}

Status ApplySinceUntil(const RawParams& raw, int64_t now_us, ExportRequest* out) {
  FHIRBULK_RETURN_IF_ERROR(SingleValue(raw.since, "_since"));
  FHIRBULK_RETURN_IF_ERROR(SingleValue(raw.until, "_until"));
  if (!raw.since.empty()) {
    Result<int64_t> since = ParseInstantParam(raw.since[0], "_since");
    if (!since.ok()) return since.status();
    if (*since > now_us) {
      return Status::InvalidArgument("_since: " + Quoted(raw.since[0]) +
                                     " is in the future (server time " + FormatInstant(now_us) +
                                     ")");
    }
    out->since_us = *since;
  }
  if (!raw.until.empty()) {
    Result<int64_t> until = ParseInstantParam(raw.until[0], "_until");
    if (!until.ok()) return until.status();
    if (out->since_us && *until < *out->since_us) {
      return Status::InvalidArgument("_until: " + Quoted(raw.until[0]) + " is earlier than _since");
    }
    out->until_us = *until;
  }
  return Status::OK();
}

Status ApplyTypes(const std::vector<std::string>& values, const KickoffLimits& limits,
                  Leniency* leniency, ExportRequest* out) {
  Result<std::vector<std::string>> items = CommaItems(values, "_type", limits.max_list_items);
  if (!items.ok()) return items.status();
  for (std::string& type : *items) {
    if (!IsR4ResourceType(type)) {
      FHIRBULK_RETURN_IF_ERROR(leniency->Unsupported(
          "_type", "_type: " + Quoted(type) + " is not a FHIR R4 resource type"));
      continue;
    }
    if (out->level != ExportLevel::kSystem && !IsPatientCompartmentType(type) &&
        !IsPatientExportSupportingType(type)) {
      // Not an error in either mode (issue 13): the other types are exported and this one is
      // reported as a warning in the manifest's `error`; only a request left with no type
      // fails (below), as the IG's "only non-compartment types" rule says.
      leniency->Record("warning", "not-supported",
                       "_type: " + Quoted(type) +
                           " is outside the Patient compartment and not exported at Patient or "
                           "Group level; ignored",
                       "_type");
      continue;
    }
    AddUnique(&out->types, std::move(type));
  }
  if (!items->empty() && out->types.empty()) {
    // Lenient mode removed every type: an empty list would mean "all types", far more than
    // the client asked for.
    return Status::NotSupported(
        out->level == ExportLevel::kSystem
            ? "_type: none of the requested types can be exported"
            : "_type: only non-compartment types were requested; none can be exported at "
              "Patient or Group level");
  }
  return Status::OK();
}

Status ApplyElements(const std::vector<std::string>& values, const KickoffLimits& limits,
                     Leniency* leniency, ExportRequest* out) {
  Result<std::vector<std::string>> items = CommaItems(values, "_elements", limits.max_list_items);
  if (!items.ok()) return items.status();
  for (std::string& item : *items) {
    const std::vector<std::string_view> parts = Split(item, '.');
    const bool typed = LooksLikeTypeName(parts[0]);
    for (size_t i = typed ? 1 : 0; i < parts.size(); ++i) {
      if (!IsElementName(parts[i])) {
        return Status::InvalidArgument("_elements: " + Quoted(item) +
                                       " is not of the form Type.element or element");
      }
    }
    if (typed && parts.size() == 1) {
      return Status::InvalidArgument("_elements: " + Quoted(item) +
                                     " names a type without an element (use Type.element)");
    }
    if (parts.size() > (typed ? 2u : 1u)) {
      FHIRBULK_RETURN_IF_ERROR(
          leniency->Unsupported("_elements", "_elements: " + Quoted(item) +
                                                 " is a nested path; only top-level "
                                                 "elements are supported"));
      continue;
    }
    if (typed && !IsR4ResourceType(parts[0])) {
      FHIRBULK_RETURN_IF_ERROR(
          leniency->Unsupported("_elements", "_elements: " + Quoted(parts[0]) + " in " +
                                                 Quoted(item) + " is not a FHIR R4 resource type"));
      continue;
    }
    AddUnique(&out->elements, std::move(item));
  }
  return Status::OK();
}

// "Patient/<id>", "Patient/<id>/_history/<v>" or "<base>/Patient/<id>" -> <id>.
// GET values never get here: CollectGetParams refuses them.
Status ApplyPatients(const std::vector<std::string>& values, const ExportParseOptions& options,
                     Leniency* leniency, ExportRequest* out) {
  if (values.empty()) return Status::OK();
  if (out->level == ExportLevel::kSystem) {
    return leniency->Unsupported("patient",
                                 "patient: only supported at Patient and Group level, not at "
                                 "system level");
  }
  if (values.size() > options.limits.max_patients) {
    return Status::InvalidArgument("patient: " + std::to_string(values.size()) + " references, " +
                                   OverLimit(options.limits.max_patients, "patients"));
  }
  for (const std::string& value : values) {
    std::string_view ref = value;
    if (!options.base_url.empty() && StartsWith(ref, options.base_url + "/")) {
      ref.remove_prefix(options.base_url.size() + 1);
    }
    RelativeReference parsed;
    if (!ParseRelativeReference(ref, &parsed) || parsed.type != "Patient") {
      return Status::InvalidArgument("patient: " + Quoted(value) +
                                     " is not a reference of the form Patient/<id>");
    }
    AddUnique(&out->patients, std::string(parsed.id));
  }
  return Status::OK();
}

// allowPartialManifests: a boolean, at most once; GET "true"/"false" (any case).
Status ApplyAllowPartialManifests(const std::vector<std::string>& values, ExportRequest* out) {
  FHIRBULK_RETURN_IF_ERROR(SingleValue(values, "allowPartialManifests"));
  if (values.empty()) return Status::OK();
  const std::string v = Lower(Trim(values[0]));
  if (v != "true" && v != "false") {
    return Status::InvalidArgument("allowPartialManifests: " + Quoted(values[0]) +
                                   " is not a boolean (true or false)");
  }
  out->allow_partial_manifests = v == "true";
  return Status::OK();
}

Status ApplyIncludeAssociatedData(const std::vector<std::string>& values,
                                  const KickoffLimits& limits, Leniency* leniency,
                                  ExportRequest* out) {
  Result<std::vector<std::string>> codes =
      CommaItems(values, "includeAssociatedData", limits.max_list_items);
  if (!codes.ok()) return codes.status();
  for (const std::string& code : *codes) {
    std::string message = "includeAssociatedData: " + Quoted(code);
    if (code == kLatestProvenanceResources || code == kRelevantProvenanceResources) {
      AddUnique(&out->include_associated_data, code);
      continue;
    }
    if (StartsWith(code, "_")) {
      message += " is not supported: this server defines no custom values";
    } else {
      return Status::InvalidArgument(message +
                                     " is not a code of http://hl7.org/fhir/uv/bulkdata/ValueSet/"
                                     "include-associated-data");
    }
    FHIRBULK_RETURN_IF_ERROR(leniency->Unsupported("includeAssociatedData", std::move(message)));
  }
  return Status::OK();
}

Status ApplyOrganizeOutputBy(const std::vector<std::string>& values, Leniency* leniency,
                             ExportRequest* out) {
  FHIRBULK_RETURN_IF_ERROR(SingleValue(values, "organizeOutputBy"));
  if (values.empty()) return Status::OK();
  const std::string value(Trim(values[0]));
  if (value == "Patient") {
    out->organize_output_by = value;
    return Status::OK();
  }
  if (!IsR4ResourceType(value)) {
    return Status::InvalidArgument("organizeOutputBy: " + Quoted(value) +
                                   " is not a FHIR R4 resource type");
  }
  return leniency->Unsupported("organizeOutputBy",
                               "organizeOutputBy: " + Quoted(value) +
                                   " is not supported: output can be organized by Patient only");
}

}  // namespace

KickoffLimits EffectiveKickoffLimits(const KickoffLimits& limits) {
  const KickoffLimits defaults;
  KickoffLimits out = limits;
  auto fill = [](size_t* value, size_t fallback) {
    if (*value == 0) *value = fallback;
  };
  fill(&out.max_body_bytes, defaults.max_body_bytes);
  if (out.max_json_depth <= 0) out.max_json_depth = defaults.max_json_depth;
  fill(&out.max_query_bytes, defaults.max_query_bytes);
  fill(&out.max_parameters, defaults.max_parameters);
  fill(&out.max_value_bytes, defaults.max_value_bytes);
  fill(&out.max_list_items, defaults.max_list_items);
  fill(&out.max_patients, defaults.max_patients);
  fill(&out.max_ignored_issues, defaults.max_ignored_issues);
  fill(&out.max_type_filter_queries, defaults.max_type_filter_queries);
  fill(&out.max_type_filter_criteria, defaults.max_type_filter_criteria);
  fill(&out.max_type_filter_values, defaults.max_type_filter_values);
  fill(&out.max_type_filter_terms, defaults.max_type_filter_terms);
  return out;
}

bool IsPatientExportSupportingType(std::string_view type) {
  const auto& types = PatientExportSupportingTypes();
  return std::find(types.begin(), types.end(), type) != types.end();
}

const std::vector<std::string_view>& PatientExportSupportingTypes() {
  static const std::vector<std::string_view> kTypes = {"Location", "Medication", "Organization",
                                                       "Practitioner"};
  return kTypes;
}

Result<ExportRequest> ParseExportRequest(const HttpRequest& request, ExportLevel level,
                                         std::string group_id, const ExportParseOptions& options) {
  FHIRBULK_RETURN_IF_ERROR(kickoff::CheckAccept(request.accept, options));
  const kickoff::Preferences prefer = kickoff::ParsePrefer(request.prefer);
  if (options.require_prefer_async && !prefer.respond_async) {
    return Status::InvalidArgument("Prefer: the kick-off must send 'Prefer: respond-async'");
  }

  const KickoffLimits limits = EffectiveKickoffLimits(options.limits);
  ExportRequest out;
  out.level = level;
  if (level == ExportLevel::kGroup) out.group_id = std::move(group_id);
  out.lenient = prefer.lenient;
  out.separate_export_status = prefer.separate_export_status;
  Leniency leniency(out.lenient, limits.max_ignored_issues, &out.ignored);

  RawParams raw;
  if (request.method == HttpMethod::kPost) {
    FHIRBULK_RETURN_IF_ERROR(kickoff::CollectPostParams(request, limits, &leniency, &raw));
    out.request_url = options.base_url + std::string(request.path);
  } else if (request.method == HttpMethod::kGet) {
    FHIRBULK_RETURN_IF_ERROR(kickoff::CollectGetParams(request.query, limits, &leniency, &raw));
    out.request_url = options.base_url + std::string(request.path);
    if (!request.query.empty()) out.request_url += "?" + std::string(request.query);
  } else {
    return Status::InvalidArgument("$export kick-off must be GET or POST");
  }

  const int64_t now_us = options.now_us != 0 ? options.now_us : NowMicros();
  FHIRBULK_RETURN_IF_ERROR(ApplyOutputFormat(raw.output_format, &out));
  FHIRBULK_RETURN_IF_ERROR(ApplySinceUntil(raw, now_us, &out));
  FHIRBULK_RETURN_IF_ERROR(ApplyAllowPartialManifests(raw.allow_partial_manifests, &out));
  FHIRBULK_RETURN_IF_ERROR(ApplyTypes(raw.types, limits, &leniency, &out));
  FHIRBULK_RETURN_IF_ERROR(ApplyElements(raw.elements, limits, &leniency, &out));
  ExportParseOptions effective = options;
  effective.limits = limits;
  FHIRBULK_RETURN_IF_ERROR(ApplyPatients(raw.patients, effective, &leniency, &out));
  FHIRBULK_RETURN_IF_ERROR(
      ApplyIncludeAssociatedData(raw.include_associated_data, limits, &leniency, &out));
  FHIRBULK_RETURN_IF_ERROR(ApplyOrganizeOutputBy(raw.organize_output_by, &leniency, &out));
  FHIRBULK_RETURN_IF_ERROR(
      kickoff::ApplyTypeFilters(raw.type_filters, options.base_url, limits, &leniency, &out));
  return out;
}

}  // namespace fhirbulk
