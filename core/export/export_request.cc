// The kick-off parser: headers, GET query or POST Parameters body, then one validation pass
// per parameter in a fixed order (so the first error reported does not depend on how the
// client ordered its parameters). See export_request.h for the decisions this file encodes.

#include "export/export_request.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <utility>

#include "export/type_filter_sql.h"
#include "fhir/resource_index.h"
#include "fhir/resource_types.h"
#include "fhir/search_params.h"
#include "http/query_string.h"
#include "util/fhir_time.h"
#include "util/json_depth.h"

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

// Client text quoted in a message. Long text is cut (at a UTF-8 character boundary): error
// messages and lenient issues must not grow with the request.
std::string Quoted(std::string_view s) {
  constexpr size_t kMaxQuoted = 200;
  if (s.size() <= kMaxQuoted) return "'" + std::string(s) + "'";
  size_t cut = kMaxQuoted;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return "'" + std::string(s.substr(0, cut)) + "...' (" + std::to_string(s.size()) + " bytes)";
}

// "over the limit of N <what>" for limit messages, so each names the limit it hit.
std::string OverLimit(size_t limit, std::string_view what) {
  return "over the limit of " + std::to_string(limit) + " " + std::string(what);
}

constexpr std::string_view kBodyTooLarge = "body: too large";
constexpr std::string_view kQueryTooLarge = "query: too large";
constexpr size_t kMaxNameBytes = 64;     // a parameter name; ours are at most 21
constexpr size_t kMaxInstantBytes = 64;  // _since/_until; an instant is at most 35

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
    return Status::NotAcceptable("Accept: the header is required and must allow " +
                                 std::string(kFhirJson));
  }
  const AcceptMatch fhir_json = MatchAccept(accept, "application", "fhir+json");
  const AcceptMatch json = MatchAccept(accept, "application", "json");
  const bool refused_by_name = fhir_json.specificity == 3 && fhir_json.q == 0;
  if (fhir_json.q > 0 || (json.q > 0 && !refused_by_name)) return Status::OK();
  return Status::NotAcceptable("Accept: " + Quoted(accept) + " does not allow " +
                               std::string(kFhirJson) + ", the only format this operation returns");
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
// warning issue, for the manifest's error file) and the caller skips it. Issues go to
// `ignored`, at most max_issues of them plus one saying that more were left out (each issue
// quotes client text; the list is stored with the job).
class Leniency {
 public:
  Leniency(bool lenient, size_t max_issues, std::vector<OutcomeIssue>* ignored)
      : lenient_(lenient), max_issues_(max_issues), ignored_(ignored) {}

  // REQUIRES: `message` starts with the parameter's name.
  Status Unsupported(std::string_view param, std::string message) {
    if (!lenient_) return Status::NotSupported(std::move(message));
    Record("warning", "not-supported", "ignored (Prefer: handling=lenient): " + message, param);
    return Status::OK();
  }

  // A part of the request over a cost limit: strict, the error; lenient, the caller drops
  // that part and it is reported.
  Status TooCostly(std::string_view param, std::string message) {
    if (!lenient_) return Status::InvalidArgument(std::move(message));
    Record("warning", "too-costly", "ignored (Prefer: handling=lenient): " + message, param);
    return Status::OK();
  }

  void Record(std::string severity, std::string code, std::string diagnostics,
              std::string_view param) {
    if (ignored_->size() > max_issues_) return;
    OutcomeIssue issue;
    issue.severity = std::move(severity);
    issue.code = std::move(code);
    issue.expression = std::string(param);
    if (ignored_->size() == max_issues_) {
      issue.severity = "warning";
      issue.code = "too-costly";
      issue.diagnostics =
          "more issues were found; only the first " + std::to_string(max_issues_) + " are listed";
      issue.expression.clear();
    } else {
      issue.diagnostics = std::move(diagnostics);
    }
    ignored_->push_back(std::move(issue));
  }

 private:
  bool lenient_;
  size_t max_issues_;
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

// Rejects JSON nested deeper than max_depth before any DOM is built (util/json_depth.h: one
// pass over the bytes); malformed JSON is left to the parser.
Status CheckJsonDepth(std::string_view json, int max_depth) {
  if (JsonNestingWithin(json, static_cast<size_t>(max_depth))) return Status::OK();
  return Status::InvalidArgument("body: JSON nested deeper than " + std::to_string(max_depth) +
                                 " levels, " + OverLimit(max_depth, "levels"));
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

// ---------------------------------------------------------------------------------------------
// Per-parameter validation.

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

Status ApplyIncludeAssociatedData(const std::vector<std::string>& values,
                                  const KickoffLimits& limits, Leniency* leniency) {
  Result<std::vector<std::string>> codes =
      CommaItems(values, "includeAssociatedData", limits.max_list_items);
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

}  // namespace

size_t CountEscapedValues(std::string_view value) {
  size_t n = 1;
  for (size_t i = 0; i < value.size(); ++i) {
    if (value[i] == '\\') {
      ++i;  // escapes the next character (a trailing one stands for itself)
    } else if (value[i] == ',') {
      ++n;
    }
  }
  return n;
}

namespace {

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
                      const std::string& base_url, const KickoffLimits& limits,
                      FilterCriterion* out) {
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

  // Counted before splitting: a 256 KiB value of commas would be 262,144 strings, built in
  // the event loop only to be refused.
  const size_t value_count = CountEscapedValues(*value);
  if (value_count > limits.max_type_filter_values) {
    return Status::ResourceExhausted(
        where + ": " + Quoted(*name) + " has " + std::to_string(value_count) + " values, " +
        OverLimit(limits.max_type_filter_values, "values per parameter"));
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

// One decoded query "Type?a=1&b=2". ResourceExhausted when it is over a per-query cost limit
// (criteria, values per criterion): the caller applies leniency.
Status ParseTypeFilterQuery(std::string_view query, const std::string& base_url,
                            const KickoffLimits& limits, TypeFilterQuery* out) {
  const size_t q = TypeQueryPrefix(query);
  out->type = std::string(query.substr(0, q));
  if (!IsR4ResourceType(out->type)) {
    return Status::NotSupported("_typeFilter " + Quoted(query) + ": " + Quoted(out->type) +
                                " is not a FHIR R4 resource type");
  }
  const std::string_view search = query.substr(q + 1);
  if (search.empty()) return Status::OK();  // "Type?" matches every resource of the type
  const size_t segments = static_cast<size_t>(std::count(search.begin(), search.end(), '&')) + 1;
  if (segments > limits.max_type_filter_criteria) {
    return Status::ResourceExhausted(
        "_typeFilter " + Quoted(query) + ": " + std::to_string(segments) + " criteria, " +
        OverLimit(limits.max_type_filter_criteria, "criteria per query"));
  }
  for (std::string_view segment : Split(search, '&')) {
    if (segment.empty()) continue;
    FilterCriterion criterion;
    FHIRBULK_RETURN_IF_ERROR(
        ParseCriterion(out->type, query, segment, base_url, limits, &criterion));
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
                        const KickoffLimits& limits, Leniency* leniency, ExportRequest* out) {
  size_t query_count = 0;
  size_t terms = 0;  // TypeFilterTermCount of the queries kept so far
  for (const std::string& raw : values) {
    if (raw.empty()) return Status::InvalidArgument("_typeFilter: empty value");
    std::vector<std::string> queries;
    FHIRBULK_RETURN_IF_ERROR(SplitTypeFilterValue(raw, &queries));
    for (const std::string& text : queries) {
      if (++query_count > limits.max_type_filter_queries) {
        FHIRBULK_RETURN_IF_ERROR(leniency->TooCostly(
            kTypeFilter, "_typeFilter " + Quoted(text) + ": " +
                             OverLimit(limits.max_type_filter_queries, "queries per kick-off")));
        continue;
      }
      TypeFilterQuery query;
      Status s = ParseTypeFilterQuery(text, base_url, limits, &query);
      if (s.code() == Status::Code::kNotSupported) {
        FHIRBULK_RETURN_IF_ERROR(leniency->Unsupported(kTypeFilter, s.message()));
        continue;
      }
      if (s.code() == Status::Code::kResourceExhausted) {
        FHIRBULK_RETURN_IF_ERROR(leniency->TooCostly(kTypeFilter, s.message()));
        continue;
      }
      FHIRBULK_RETURN_IF_ERROR(s);
      if (!TypeIsExported(*out, query.type)) {
        // Harmless (it selects among resources that are not exported), so never an error;
        // still reported so the client learns its filter had no effect.
        leniency->Record("information", "informational",
                         "_typeFilter " + Quoted(text) + ": " + query.type +
                             " is not exported by this request, so the filter has no effect",
                         kTypeFilter);
        continue;
      }
      // The compiled size: a bare reference id costs one term per target type it may name.
      const size_t query_terms = TypeFilterTermCount(query);
      if (terms + query_terms > limits.max_type_filter_terms) {
        FHIRBULK_RETURN_IF_ERROR(leniency->TooCostly(
            kTypeFilter, "_typeFilter " + Quoted(text) + ": compiles to " +
                             std::to_string(query_terms) + " search terms (" +
                             std::to_string(terms) + " before it), " +
                             OverLimit(limits.max_type_filter_terms, "terms per kick-off")));
        continue;
      }
      terms += query_terms;
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
  FHIRBULK_RETURN_IF_ERROR(CheckAccept(request.accept, options));
  const Preferences prefer = ParsePrefer(request.prefer);
  if (options.require_prefer_async && !prefer.respond_async) {
    return Status::InvalidArgument("Prefer: the kick-off must send 'Prefer: respond-async'");
  }

  const KickoffLimits limits = EffectiveKickoffLimits(options.limits);
  ExportRequest out;
  out.level = level;
  if (level == ExportLevel::kGroup) out.group_id = std::move(group_id);
  out.lenient = prefer.lenient;
  Leniency leniency(out.lenient, limits.max_ignored_issues, &out.ignored);

  RawParams raw;
  if (request.method == HttpMethod::kPost) {
    FHIRBULK_RETURN_IF_ERROR(CollectPostParams(request, limits, &leniency, &raw));
    out.request_url = options.base_url + std::string(request.path);
  } else if (request.method == HttpMethod::kGet) {
    FHIRBULK_RETURN_IF_ERROR(CollectGetParams(request.query, limits, &leniency, &raw));
    out.request_url = options.base_url + std::string(request.path);
    if (!request.query.empty()) out.request_url += "?" + std::string(request.query);
  } else {
    return Status::InvalidArgument("$export kick-off must be GET or POST");
  }

  const int64_t now_us = options.now_us != 0 ? options.now_us : NowMicros();
  FHIRBULK_RETURN_IF_ERROR(ApplyOutputFormat(raw.output_format, &out));
  FHIRBULK_RETURN_IF_ERROR(ApplySinceUntil(raw, now_us, &out));
  FHIRBULK_RETURN_IF_ERROR(ApplyTypes(raw.types, limits, &leniency, &out));
  FHIRBULK_RETURN_IF_ERROR(ApplyElements(raw.elements, limits, &leniency, &out));
  ExportParseOptions effective = options;
  effective.limits = limits;
  FHIRBULK_RETURN_IF_ERROR(ApplyPatients(raw.patients, effective, &leniency, &out));
  FHIRBULK_RETURN_IF_ERROR(
      ApplyIncludeAssociatedData(raw.include_associated_data, limits, &leniency));
  FHIRBULK_RETURN_IF_ERROR(
      ApplyTypeFilters(raw.type_filters, options.base_url, limits, &leniency, &out));
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
  doc.Parse<rapidjson::kParseIterativeFlag>(json.data(), json.size());
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
