// The kick-off parser: headers, GET query or POST Parameters body, then one validation pass
// per parameter in a fixed order (so the first error reported does not depend on how the
// client ordered its parameters). See export_request.h for the decisions this file encodes.

#include "export/export_request.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <utility>

#include "export/query_string.h"
#include "fhir/resource_index.h"
#include "fhir/resource_types.h"
#include "fhir/search_params.h"
#include "util/fhir_time.h"

namespace fhirbulk {

namespace {

constexpr std::string_view kNdjson = "application/fhir+ndjson";
constexpr std::string_view kTypeFilter = "_typeFilter";

// ---------------------------------------------------------------------------------------------
// Small string helpers.

bool IsSpace(char c) { return c == ' ' || c == '\t'; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

char ToLowerAscii(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = ToLowerAscii(c);
  return out;
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.substr(0, prefix.size()) == prefix;
}

// Splits on every `sep`, keeping empty pieces.
std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    const size_t end = s.find(sep, start);
    if (end == std::string_view::npos) {
      parts.push_back(s.substr(start));
      return parts;
    }
    parts.push_back(s.substr(start, end - start));
    start = end + 1;
  }
}

std::string Quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

bool Contains(const std::vector<std::string>& v, std::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

void AddUnique(std::vector<std::string>* v, std::string s) {
  if (!Contains(*v, s)) v->push_back(std::move(s));
}

// A resource type name as written in a URL: [A-Z][A-Za-z]*.
bool LooksLikeTypeName(std::string_view s) {
  if (s.empty() || !(s[0] >= 'A' && s[0] <= 'Z')) return false;
  for (char c : s) {
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'))) return false;
  }
  return true;
}

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

// ---------------------------------------------------------------------------------------------
// Headers.

// RFC 9110 qvalue: "0" ["." 0*3DIGIT] / "1" ["." 0*3("0")]. -1 when malformed.
double ParseQValue(std::string_view s) {
  if (s.empty() || (s[0] != '0' && s[0] != '1')) return -1;
  if (s.size() == 1) return s[0] - '0';
  if (s[1] != '.' || s.size() > 5) return -1;
  double value = s[0] - '0';
  double scale = 0.1;
  for (size_t i = 2; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return -1;
    if (s[0] == '1' && s[i] != '0') return -1;
    value += (s[i] - '0') * scale;
    scale /= 10;
  }
  return value;
}

struct AcceptMatch {
  int specificity = 0;  // 0 none, 1 */*, 2 type/*, 3 type/subtype
  double q = 0;
};

// How the Accept header rates type/subtype: the q of the most specific matching media range
// (the highest q among equally specific ones). Malformed ranges and q values are skipped;
// parameters other than q are ignored.
AcceptMatch MatchAccept(std::string_view accept, std::string_view type, std::string_view subtype) {
  AcceptMatch best;
  for (std::string_view item : Split(accept, ',')) {
    std::vector<std::string_view> parts = Split(item, ';');
    const std::string range = Lower(Trim(parts[0]));
    const size_t slash = range.find('/');
    if (slash == std::string::npos) continue;
    const std::string_view range_type = std::string_view(range).substr(0, slash);
    const std::string_view range_subtype = std::string_view(range).substr(slash + 1);
    int specificity;
    if (range_type == "*" && range_subtype == "*") {
      specificity = 1;
    } else if (range_type == type && range_subtype == "*") {
      specificity = 2;
    } else if (range_type == type && range_subtype == subtype) {
      specificity = 3;
    } else {
      continue;
    }
    double q = 1;
    for (size_t i = 1; i < parts.size(); ++i) {
      const std::string_view param = Trim(parts[i]);
      const size_t eq = param.find('=');
      if (eq == std::string_view::npos || Lower(Trim(param.substr(0, eq))) != "q") continue;
      q = ParseQValue(Trim(param.substr(eq + 1)));
    }
    if (q < 0) continue;
    if (specificity > best.specificity || (specificity == best.specificity && q > best.q)) {
      best.specificity = specificity;
      best.q = q;
    }
  }
  return best;
}

// Our responses are application/fhir+json. application/json (or a wildcard) is good enough
// unless the client refused application/fhir+json by name (q=0).
Status CheckAccept(std::string_view accept, const ExportParseOptions& options) {
  if (Trim(accept).empty()) {
    if (!options.require_accept_fhir_json) return Status::OK();
    return Status::InvalidArgument("Accept: the header is required and must allow " +
                                   std::string(kFhirJson));
  }
  const AcceptMatch fhir_json = MatchAccept(accept, "application", "fhir+json");
  const AcceptMatch json = MatchAccept(accept, "application", "json");
  const bool refused_by_name = fhir_json.specificity == 3 && fhir_json.q == 0;
  if (fhir_json.q > 0 || (json.q > 0 && !refused_by_name)) return Status::OK();
  return Status::InvalidArgument("Accept: " + Quoted(accept) + " does not allow " +
                                 std::string(kFhirJson) +
                                 ", the only format this operation returns");
}

struct Preferences {
  bool respond_async = false;
  bool lenient = false;
};

// RFC 7240: comma-separated preferences, each `token [= value] *(; parameter)`; names and
// our values are case-insensitive; values may be quoted; the first `handling` wins.
Preferences ParsePrefer(std::string_view prefer) {
  Preferences p;
  bool handling_seen = false;
  for (std::string_view item : Split(prefer, ',')) {
    const std::string_view pref = Trim(Split(item, ';')[0]);
    const size_t eq = pref.find('=');
    const std::string name = Lower(Trim(pref.substr(0, eq)));
    std::string_view value = eq == std::string_view::npos ? "" : Trim(pref.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    if (name == "respond-async") {
      p.respond_async = true;
    } else if (name == "handling" && !handling_seen) {
      handling_seen = true;
      p.lenient = Lower(value) == "lenient";
    }
  }
  return p;
}

// Content-Type of a POST kick-off: application/fhir+json or application/json, any parameters.
Status CheckContentType(std::string_view content_type) {
  const std::string media = Lower(Trim(Split(content_type, ';')[0]));
  if (media == kFhirJson || media == "application/json") return Status::OK();
  if (media.empty()) {
    return Status::InvalidArgument("Content-Type: a POST kick-off needs " + std::string(kFhirJson));
  }
  return Status::InvalidArgument("Content-Type: " + Quoted(content_type) + " is not " +
                                 std::string(kFhirJson));
}

// ---------------------------------------------------------------------------------------------
// Strict vs lenient.

// In strict mode an unsupported item is the error; in lenient mode it is recorded (one
// warning issue, for the manifest's error file) and the caller skips it.
class Leniency {
 public:
  Leniency(bool lenient, std::vector<OutcomeIssue>* ignored)
      : lenient_(lenient), ignored_(ignored) {}

  // REQUIRES: `message` starts with the parameter's name.
  Status Unsupported(std::string_view param, std::string message) {
    if (!lenient_) return Status::NotSupported(std::move(message));
    OutcomeIssue issue;
    issue.severity = "warning";
    issue.code = "not-supported";
    issue.diagnostics = "ignored (Prefer: handling=lenient): " + message;
    issue.expression = std::string(param);
    ignored_->push_back(std::move(issue));
    return Status::OK();
  }

 private:
  bool lenient_;
  std::vector<OutcomeIssue>* ignored_;
};

// ---------------------------------------------------------------------------------------------
// Collecting parameter values from GET or POST.

// The values of every supported parameter, in request order. All are decoded text except
// _typeFilter, which keeps its raw form (see SplitTypeFilterValue).
struct RawParams {
  std::vector<std::string> output_format, since, until, types, elements, patients,
      include_associated_data, type_filters;

  std::vector<std::string>* Find(std::string_view name) {
    if (name == "_outputFormat") return &output_format;
    if (name == "_since") return &since;
    if (name == "_until") return &until;
    if (name == "_type") return &types;
    if (name == "_elements") return &elements;
    if (name == "patient") return &patients;
    if (name == "includeAssociatedData") return &include_associated_data;
    if (name == kTypeFilter) return &type_filters;
    return nullptr;
  }
};

Status UnknownParameter(std::string_view name, Leniency* leniency) {
  return leniency->Unsupported(name, std::string(name) + ": unknown parameter for $export");
}

Status CollectGetParams(std::string_view query, Leniency* leniency, RawParams* raw) {
  Result<std::vector<QueryParam>> params = SplitQueryString(query);
  if (!params.ok()) return params.status();
  for (QueryParam& p : *params) {
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
  if (member != "valueString" || !value->IsString()) return wrong_type("valueString");
  return JsonText(*value, name, member);
}

Status CollectPostParams(const HttpRequest& request, Leniency* leniency, RawParams* raw) {
  FHIRBULK_RETURN_IF_ERROR(CheckContentType(request.content_type));
  if (!request.query.empty()) {
    // Parameters live in the body; a URL query is most likely a client mistake, and merging
    // two sources would make "repeated = one list" ambiguous.
    FHIRBULK_RETURN_IF_ERROR(leniency->Unsupported(
        "query", "URL query " + Quoted(request.query) +
                     ": a POST kick-off takes its parameters from the Parameters body only"));
  }
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseValidateEncodingFlag>(request.body.data(), request.body.size());
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
    std::vector<std::string>* values = raw->Find(*name);
    if (values == nullptr) {
      FHIRBULK_RETURN_IF_ERROR(UnknownParameter(*name, leniency));
      continue;
    }
    Result<std::string> value = ParameterValue(entry, *name);
    if (!value.ok()) return value.status();
    values->push_back(std::move(value).value());
  }
  return Status::OK();
}

// ---------------------------------------------------------------------------------------------
// Per-parameter validation.

// Splits a comma list, trimming blanks around items; an empty item is an error.
Result<std::vector<std::string>> CommaItems(const std::vector<std::string>& values,
                                            std::string_view param) {
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

Status ApplyTypes(const std::vector<std::string>& values, Leniency* leniency, ExportRequest* out) {
  Result<std::vector<std::string>> items = CommaItems(values, "_type");
  if (!items.ok()) return items.status();
  for (std::string& type : *items) {
    if (!IsR4ResourceType(type)) {
      FHIRBULK_RETURN_IF_ERROR(leniency->Unsupported(
          "_type", "_type: " + Quoted(type) + " is not a FHIR R4 resource type"));
      continue;
    }
    if (out->level != ExportLevel::kSystem && !IsPatientCompartmentType(type) &&
        !IsPatientExportSupportingType(type)) {
      FHIRBULK_RETURN_IF_ERROR(leniency->Unsupported(
          "_type", "_type: " + Quoted(type) +
                       " is outside the Patient compartment and not exported at Patient or "
                       "Group level"));
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

Status ApplyElements(const std::vector<std::string>& values, Leniency* leniency,
                     ExportRequest* out) {
  Result<std::vector<std::string>> items = CommaItems(values, "_elements");
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

Status ApplyIncludeAssociatedData(const std::vector<std::string>& values, Leniency* leniency) {
  Result<std::vector<std::string>> codes = CommaItems(values, "includeAssociatedData");
  if (!codes.ok()) return codes.status();
  for (const std::string& code : *codes) {
    std::string message = "includeAssociatedData: " + Quoted(code);
    if (code == "LatestProvenanceResources" || code == "RelevantProvenanceResources") {
      message += " is not supported: this server does not export Provenance resources";
    } else if (StartsWith(code, "_")) {
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

// ---------------------------------------------------------------------------------------------
// _typeFilter.

// Length of the "Type" in a leading "Type?" ([A-Z][A-Za-z]*\?), or 0 when there is none.
size_t TypeQueryPrefix(std::string_view s) {
  const size_t q = s.find('?');
  if (q == std::string_view::npos || !LooksLikeTypeName(s.substr(0, q))) return 0;
  return q;
}

// Splits one _typeFilter value into its queries (spec digest §2.3 recommendation): split on
// literal commas; a piece starting a query is taken as is when it holds a literal '?' (sent
// unencoded) and percent-decoded once otherwise; a piece that does not start a query
// continues the previous one (a raw OR-comma inside a value) and is decoded like it.
Status SplitTypeFilterValue(std::string_view raw, std::vector<std::string>* queries) {
  bool previous_encoded = false;
  for (std::string_view piece : Split(raw, ',')) {
    if (!IsValidUtf8(piece) || piece.find('\0') != std::string_view::npos) {
      return Status::InvalidArgument("_typeFilter: value is not UTF-8 text");
    }
    const bool literal_question_mark = piece.find('?') != std::string_view::npos;
    if (literal_question_mark && TypeQueryPrefix(piece) > 0) {
      queries->emplace_back(piece);
      previous_encoded = false;
      continue;
    }
    Result<std::string> decoded = PercentDecode(piece, /*plus_as_space=*/true);
    if (!literal_question_mark && decoded.ok() && TypeQueryPrefix(*decoded) > 0) {
      queries->push_back(std::move(decoded).value());
      previous_encoded = true;
      continue;
    }
    if (queries->empty()) {
      return Status::InvalidArgument("_typeFilter: " + Quoted(piece) +
                                     " is not a query of the form Type?param=value");
    }
    // A continuation is decoded like the query it belongs to; an undecodable piece of an
    // unencoded query is left for the query parser to report.
    if (previous_encoded && !decoded.ok()) return decoded.status().WithContext(kTypeFilter);
    queries->back() += ',';
    queries->back() += previous_encoded ? std::string_view(*decoded) : piece;
  }
  return Status::OK();
}

// FHIR search value syntax: ',' separates ORed values, '\' escapes the next character.
std::vector<std::string> SplitEscapedValues(std::string_view value) {
  std::vector<std::string> values(1);
  for (size_t i = 0; i < value.size(); ++i) {
    if (value[i] == '\\' && i + 1 < value.size()) {
      values.back().push_back(value[++i]);
    } else if (value[i] == ',') {
      values.emplace_back();
    } else {
      values.back().push_back(value[i]);
    }
  }
  return values;
}

bool IsResultParameter(std::string_view name) {
  static constexpr std::string_view kResultParams[] = {
      "_contained",  "_containedType", "_count",      "_elements", "_format",  "_include",
      "_maxresults", "_pretty",        "_revinclude", "_sort",     "_summary", "_total"};
  return std::find(std::begin(kResultParams), std::end(kResultParams), name) !=
         std::end(kResultParams);
}

// A date value "[prefix]date"; the prefix is normalized to an explicit one ("eq" when absent).
Status ParseDateValue(const std::string& where, std::string* value, std::string* prefix) {
  *prefix = "eq";
  if (value->size() >= 2 && value->at(0) >= 'a' && value->at(0) <= 'z') {
    const std::string p = value->substr(0, 2);
    if (p == "sa" || p == "eb" || p == "ap") {
      return Status::NotSupported(where + ": date prefix " + Quoted(p) + " is not supported");
    }
    if (p != "eq" && p != "ne" && p != "gt" && p != "lt" && p != "ge" && p != "le") {
      return Status::InvalidArgument(where + ": " + Quoted(*value) + " has an unknown prefix");
    }
    *prefix = p;
    value->erase(0, 2);
  }
  if (!ParseDateTimeRange(*value).ok()) {
    // As for _since: a raw '+' of a zone offset may have been decoded to a space.
    std::string repaired = *value;
    std::replace(repaired.begin(), repaired.end(), ' ', '+');
    if (repaired == *value || !ParseDateTimeRange(repaired).ok()) {
      return Status::InvalidArgument(where + ": " + Quoted(*value) +
                                     " is not a FHIR date, dateTime or instant");
    }
    *value = std::move(repaired);
  }
  return Status::OK();
}

// Normalizes a reference search value to "Type/id", or leaves a bare id when the parameter
// may point at several types (TypeFilterSql then matches that id under any type).
Status NormalizeReferenceValue(const std::string& where, const SearchParamDef& def,
                               std::string_view type_modifier, const std::string& base_url,
                               std::string* value) {
  std::string_view v = *value;
  if (!base_url.empty() && StartsWith(v, base_url + "/")) v.remove_prefix(base_url.size() + 1);
  if (v.find('/') == std::string_view::npos) {
    if (!IsValidFhirId(v)) {
      return Status::InvalidArgument(where + ": " + Quoted(*value) +
                                     " is not a reference (Type/id) or an id");
    }
    std::string_view target = !type_modifier.empty() ? type_modifier : def.target;
    *value = target.empty() ? std::string(v) : std::string(target) + "/" + std::string(v);
    return Status::OK();
  }
  if (v.find("://") != std::string_view::npos) {
    return Status::NotSupported(where + ": " + Quoted(*value) +
                                " is an absolute reference to another server; only references "
                                "under this server's base are searchable");
  }
  RelativeReference ref;
  if (!ParseRelativeReference(v, &ref)) {
    return Status::InvalidArgument(where + ": " + Quoted(*value) +
                                   " is not a reference of the form Type/id");
  }
  if (!type_modifier.empty() && ref.type != type_modifier) {
    return Status::InvalidArgument(where + ": " + Quoted(*value) +
                                   " contradicts the :" + std::string(type_modifier) + " modifier");
  }
  *value = std::string(ref.type) + "/" + std::string(ref.id);
  return Status::OK();
}

// One `name[:modifier]=value` of a query for `type`. NotSupported for what this server cannot
// evaluate, InvalidArgument for malformed values.
Status ParseCriterion(std::string_view type, std::string_view query, std::string_view segment,
                      const std::string& base_url, FilterCriterion* out) {
  const std::string where = "_typeFilter " + Quoted(query);
  const size_t eq = segment.find('=');
  if (eq == std::string_view::npos) {
    return Status::InvalidArgument(where + ": " + Quoted(segment) + " has no '='");
  }
  Result<std::string> name = PercentDecode(segment.substr(0, eq), /*plus_as_space=*/true);
  if (!name.ok()) return name.status().WithContext(where);
  Result<std::string> value = PercentDecode(segment.substr(eq + 1), /*plus_as_space=*/true);
  if (!value.ok()) return value.status().WithContext(where);

  if (name->find('.') != std::string::npos) {
    return Status::NotSupported(where + ": chained parameter " + Quoted(*name) +
                                " is not supported");
  }
  const size_t colon = name->find(':');
  out->param = name->substr(0, colon);
  out->modifier = colon == std::string::npos ? "" : name->substr(colon + 1);
  const std::string& param = out->param;
  if (param.empty()) return Status::InvalidArgument(where + ": empty parameter name");
  if (StartsWith(param, "_has")) {
    return Status::NotSupported(where + ": chained parameter " + Quoted(*name) +
                                " is not supported");
  }
  if (IsResultParameter(param)) {
    return Status::NotSupported(where + ": " + Quoted(param) +
                                " is a result parameter, not allowed in _typeFilter");
  }
  const SearchParamDef* def = FindSearchParam(type, param);
  if (def == nullptr) {
    return Status::NotSupported(where + ": " + std::string(type) +
                                " has no supported search parameter " + Quoted(param));
  }

  std::string type_modifier;
  const std::string& modifier = out->modifier;
  const SearchParamKind kind = def->kind;
  const bool tokenish = kind == SearchParamKind::kToken || kind == SearchParamKind::kUri;
  if (modifier.empty() || (modifier == "not" && tokenish) ||
      (modifier == "missing" &&
       (tokenish || kind == SearchParamKind::kReference || kind == SearchParamKind::kDate))) {
    // supported as is
  } else if (kind == SearchParamKind::kReference && IsR4ResourceType(modifier)) {
    type_modifier = modifier;  // folded into the values below
    out->modifier.clear();
  } else {
    return Status::NotSupported(where + ": modifier " + Quoted(":" + modifier) +
                                " is not supported for " + Quoted(param));
  }

  out->values = SplitEscapedValues(*value);
  for (const std::string& v : out->values) {
    if (v.empty()) {
      return Status::InvalidArgument(where + ": " + Quoted(*name) + " has an empty value");
    }
  }
  if (out->modifier == "missing") {
    if (out->values.size() != 1 || (out->values[0] != "true" && out->values[0] != "false")) {
      return Status::InvalidArgument(where + ": " + Quoted(*name) +
                                     " takes exactly one value, true or false");
    }
    return Status::OK();
  }
  for (std::string& v : out->values) {
    switch (kind) {
      case SearchParamKind::kToken:
        if (v == "|") {
          return Status::InvalidArgument(where + ": " + Quoted(v) + " is not a token");
        }
        break;
      case SearchParamKind::kUri:
        break;
      case SearchParamKind::kReference:
        FHIRBULK_RETURN_IF_ERROR(NormalizeReferenceValue(where, *def, type_modifier, base_url, &v));
        break;
      case SearchParamKind::kId:
        if (!IsValidFhirId(v)) {
          return Status::InvalidArgument(where + ": " + Quoted(v) + " is not a FHIR id");
        }
        break;
      case SearchParamKind::kDate:
      case SearchParamKind::kLastUpdated: {
        std::string prefix;
        FHIRBULK_RETURN_IF_ERROR(ParseDateValue(where, &v, &prefix));
        out->prefixes.push_back(std::move(prefix));
        break;
      }
    }
  }
  return Status::OK();
}

// One decoded query "Type?a=1&b=2".
Status ParseTypeFilterQuery(std::string_view query, const std::string& base_url,
                            TypeFilterQuery* out) {
  const size_t q = TypeQueryPrefix(query);
  out->type = std::string(query.substr(0, q));
  if (!IsR4ResourceType(out->type)) {
    return Status::NotSupported("_typeFilter " + Quoted(query) + ": " + Quoted(out->type) +
                                " is not a FHIR R4 resource type");
  }
  const std::string_view search = query.substr(q + 1);
  if (search.empty()) return Status::OK();  // "Type?" matches every resource of the type
  for (std::string_view segment : Split(search, '&')) {
    if (segment.empty()) continue;
    FilterCriterion criterion;
    FHIRBULK_RETURN_IF_ERROR(ParseCriterion(out->type, query, segment, base_url, &criterion));
    out->criteria.push_back(std::move(criterion));
  }
  return Status::OK();
}

// Whether resources of `type` can be in this export at all (after _type).
bool TypeIsExported(const ExportRequest& r, std::string_view type) {
  if (!r.types.empty()) return Contains(r.types, type);
  if (r.level == ExportLevel::kSystem) return true;
  return IsPatientCompartmentType(type) || IsPatientExportSupportingType(type);
}

Status ApplyTypeFilters(const std::vector<std::string>& values, const std::string& base_url,
                        Leniency* leniency, ExportRequest* out) {
  for (const std::string& raw : values) {
    if (raw.empty()) return Status::InvalidArgument("_typeFilter: empty value");
    std::vector<std::string> queries;
    FHIRBULK_RETURN_IF_ERROR(SplitTypeFilterValue(raw, &queries));
    for (const std::string& text : queries) {
      TypeFilterQuery query;
      Status s = ParseTypeFilterQuery(text, base_url, &query);
      if (s.code() == Status::Code::kNotSupported) {
        FHIRBULK_RETURN_IF_ERROR(leniency->Unsupported(kTypeFilter, s.message()));
        continue;
      }
      FHIRBULK_RETURN_IF_ERROR(s);
      if (!TypeIsExported(*out, query.type)) {
        // Harmless (it selects among resources that are not exported), so never an error;
        // still reported so the client learns its filter had no effect.
        OutcomeIssue issue;
        issue.severity = "information";
        issue.code = "informational";
        issue.diagnostics = "_typeFilter " + Quoted(text) + ": " + query.type +
                            " is not exported by this request, so the filter has no effect";
        issue.expression = std::string(kTypeFilter);
        out->ignored.push_back(std::move(issue));
        continue;
      }
      out->type_filters.push_back(std::move(query));
    }
  }
  return Status::OK();
}

// ---------------------------------------------------------------------------------------------
// JSON.

const char* LevelName(ExportLevel level) {
  switch (level) {
    case ExportLevel::kSystem:
      return "system";
    case ExportLevel::kPatient:
      return "patient";
    case ExportLevel::kGroup:
      return "group";
  }
  return "system";
}

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void WriteStrings(Writer* w, const char* key, const std::vector<std::string>& values) {
  w->Key(key);
  w->StartArray();
  for (const std::string& v : values) w->String(v.data(), static_cast<unsigned>(v.size()));
  w->EndArray();
}

void WriteString(Writer* w, const char* key, const std::string& value) {
  w->Key(key);
  w->String(value.data(), static_cast<unsigned>(value.size()));
}

Status Malformed(std::string_view what) {
  return Status::Corruption("export request JSON: " + std::string(what));
}

Status ReadString(const rapidjson::Value& obj, const char* key, std::string* out) {
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || !it->value.IsString()) {
    return Malformed(std::string(key) + " is not a string");
  }
  out->assign(it->value.GetString(), it->value.GetStringLength());
  return Status::OK();
}

Status ReadStrings(const rapidjson::Value& obj, const char* key, std::vector<std::string>* out) {
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || !it->value.IsArray()) {
    return Malformed(std::string(key) + " is not an array");
  }
  out->clear();
  for (const rapidjson::Value& v : it->value.GetArray()) {
    if (!v.IsString()) return Malformed(std::string(key) + " holds a non-string");
    out->emplace_back(v.GetString(), v.GetStringLength());
  }
  return Status::OK();
}

Status ReadOptionalInt64(const rapidjson::Value& obj, const char* key,
                         std::optional<int64_t>* out) {
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || it->value.IsNull()) {
    out->reset();
    return Status::OK();
  }
  if (!it->value.IsInt64()) return Malformed(std::string(key) + " is not an integer");
  *out = it->value.GetInt64();
  return Status::OK();
}

}  // namespace

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
  FHIRBULK_RETURN_IF_ERROR(CheckAccept(request.accept, options));
  const Preferences prefer = ParsePrefer(request.prefer);
  if (options.require_prefer_async && !prefer.respond_async) {
    return Status::InvalidArgument("Prefer: the kick-off must send 'Prefer: respond-async'");
  }

  ExportRequest out;
  out.level = level;
  if (level == ExportLevel::kGroup) out.group_id = std::move(group_id);
  out.lenient = prefer.lenient;
  Leniency leniency(out.lenient, &out.ignored);

  RawParams raw;
  if (request.method == HttpMethod::kPost) {
    FHIRBULK_RETURN_IF_ERROR(CollectPostParams(request, &leniency, &raw));
    out.request_url = options.base_url + std::string(request.path);
  } else if (request.method == HttpMethod::kGet) {
    FHIRBULK_RETURN_IF_ERROR(CollectGetParams(request.query, &leniency, &raw));
    out.request_url = options.base_url + std::string(request.path);
    if (!request.query.empty()) out.request_url += "?" + std::string(request.query);
  } else {
    return Status::InvalidArgument("$export kick-off must be GET or POST");
  }

  const int64_t now_us = options.now_us != 0 ? options.now_us : NowMicros();
  FHIRBULK_RETURN_IF_ERROR(ApplyOutputFormat(raw.output_format, &out));
  FHIRBULK_RETURN_IF_ERROR(ApplySinceUntil(raw, now_us, &out));
  FHIRBULK_RETURN_IF_ERROR(ApplyTypes(raw.types, &leniency, &out));
  FHIRBULK_RETURN_IF_ERROR(ApplyElements(raw.elements, &leniency, &out));
  FHIRBULK_RETURN_IF_ERROR(ApplyPatients(raw.patients, options, &leniency, &out));
  FHIRBULK_RETURN_IF_ERROR(ApplyIncludeAssociatedData(raw.include_associated_data, &leniency));
  FHIRBULK_RETURN_IF_ERROR(ApplyTypeFilters(raw.type_filters, options.base_url, &leniency, &out));
  return out;
}

std::string ExportRequestToJson(const ExportRequest& r) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("level");
  w.String(LevelName(r.level));
  WriteString(&w, "group_id", r.group_id);
  WriteString(&w, "output_format", r.output_format);
  w.Key("since_us");
  r.since_us ? w.Int64(*r.since_us) : w.Null();
  w.Key("until_us");
  r.until_us ? w.Int64(*r.until_us) : w.Null();
  WriteStrings(&w, "types", r.types);
  WriteStrings(&w, "elements", r.elements);
  WriteStrings(&w, "patients", r.patients);
  WriteStrings(&w, "include_associated_data", r.include_associated_data);
  w.Key("type_filters");
  w.StartArray();
  for (const TypeFilterQuery& q : r.type_filters) {
    w.StartObject();
    WriteString(&w, "type", q.type);
    w.Key("criteria");
    w.StartArray();
    for (const FilterCriterion& c : q.criteria) {
      w.StartObject();
      WriteString(&w, "param", c.param);
      WriteString(&w, "modifier", c.modifier);
      WriteStrings(&w, "values", c.values);
      WriteStrings(&w, "prefixes", c.prefixes);
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  w.Key("lenient");
  w.Bool(r.lenient);
  w.Key("ignored");
  w.StartArray();
  for (const OutcomeIssue& i : r.ignored) {
    w.StartObject();
    WriteString(&w, "severity", i.severity);
    WriteString(&w, "code", i.code);
    WriteString(&w, "diagnostics", i.diagnostics);
    WriteString(&w, "expression", i.expression);
    w.EndObject();
  }
  w.EndArray();
  WriteString(&w, "request_url", r.request_url);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

Result<ExportRequest> ExportRequestFromJson(std::string_view json) {
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError() || !doc.IsObject()) return Malformed("not a JSON object");
  ExportRequest r;
  std::string level;
  FHIRBULK_RETURN_IF_ERROR(ReadString(doc, "level", &level));
  if (level == "system") {
    r.level = ExportLevel::kSystem;
  } else if (level == "patient") {
    r.level = ExportLevel::kPatient;
  } else if (level == "group") {
    r.level = ExportLevel::kGroup;
  } else {
    return Malformed("unknown level " + Quoted(level));
  }
  FHIRBULK_RETURN_IF_ERROR(ReadString(doc, "group_id", &r.group_id));
  FHIRBULK_RETURN_IF_ERROR(ReadString(doc, "output_format", &r.output_format));
  FHIRBULK_RETURN_IF_ERROR(ReadOptionalInt64(doc, "since_us", &r.since_us));
  FHIRBULK_RETURN_IF_ERROR(ReadOptionalInt64(doc, "until_us", &r.until_us));
  FHIRBULK_RETURN_IF_ERROR(ReadStrings(doc, "types", &r.types));
  FHIRBULK_RETURN_IF_ERROR(ReadStrings(doc, "elements", &r.elements));
  FHIRBULK_RETURN_IF_ERROR(ReadStrings(doc, "patients", &r.patients));
  FHIRBULK_RETURN_IF_ERROR(ReadStrings(doc, "include_associated_data", &r.include_associated_data));
  auto filters = doc.FindMember("type_filters");
  if (filters == doc.MemberEnd() || !filters->value.IsArray()) {
    return Malformed("type_filters is not an array");
  }
  for (const rapidjson::Value& fq : filters->value.GetArray()) {
    if (!fq.IsObject()) return Malformed("type_filters holds a non-object");
    TypeFilterQuery q;
    FHIRBULK_RETURN_IF_ERROR(ReadString(fq, "type", &q.type));
    auto criteria = fq.FindMember("criteria");
    if (criteria == fq.MemberEnd() || !criteria->value.IsArray()) {
      return Malformed("criteria is not an array");
    }
    for (const rapidjson::Value& fc : criteria->value.GetArray()) {
      if (!fc.IsObject()) return Malformed("criteria holds a non-object");
      FilterCriterion c;
      FHIRBULK_RETURN_IF_ERROR(ReadString(fc, "param", &c.param));
      FHIRBULK_RETURN_IF_ERROR(ReadString(fc, "modifier", &c.modifier));
      FHIRBULK_RETURN_IF_ERROR(ReadStrings(fc, "values", &c.values));
      FHIRBULK_RETURN_IF_ERROR(ReadStrings(fc, "prefixes", &c.prefixes));
      q.criteria.push_back(std::move(c));
    }
    r.type_filters.push_back(std::move(q));
  }
  auto lenient = doc.FindMember("lenient");
  if (lenient == doc.MemberEnd() || !lenient->value.IsBool()) {
    return Malformed("lenient is not a boolean");
  }
  r.lenient = lenient->value.GetBool();
  auto ignored = doc.FindMember("ignored");
  if (ignored == doc.MemberEnd() || !ignored->value.IsArray()) {
    return Malformed("ignored is not an array");
  }
  for (const rapidjson::Value& fi : ignored->value.GetArray()) {
    if (!fi.IsObject()) return Malformed("ignored holds a non-object");
    OutcomeIssue issue;
    FHIRBULK_RETURN_IF_ERROR(ReadString(fi, "severity", &issue.severity));
    FHIRBULK_RETURN_IF_ERROR(ReadString(fi, "code", &issue.code));
    FHIRBULK_RETURN_IF_ERROR(ReadString(fi, "diagnostics", &issue.diagnostics));
    FHIRBULK_RETURN_IF_ERROR(ReadString(fi, "expression", &issue.expression));
    r.ignored.push_back(std::move(issue));
  }
  FHIRBULK_RETURN_IF_ERROR(ReadString(doc, "request_url", &r.request_url));
  return r;
}

}  // namespace fhirbulk
