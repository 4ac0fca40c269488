// ExportRequest: a validated Bulk Data kick-off ($export at system, Patient or Group level),
// parsed from GET query parameters or a POST Parameters body, plus the headers that shape it.
//
// Parsing follows ../shared/spec/bulk-data-export.md (IG v2.0.0, plus _until from v3):
//  - repeated parameters are one comma list (GET: _type=A&_type=B == _type=A,B; POST: several
//    `parameter` entries);
//  - strict by default: an unsupported parameter, type, format or _typeFilter search
//    parameter is an error naming the parameter; with `Prefer: handling=lenient` it is
//    ignored and reported in `ignored` (one OperationOutcome issue per ignored parameter,
//    written to the manifest's error file by the engine);
//  - invalid values (a malformed or future _since, a bad reference) are errors in both modes.
// Errors come back as a non-OK Status whose message names the parameter; the HTTP layer
// turns it into an OperationOutcome (http/outcome.h): 400 for kInvalidArgument / kNotSupported,
// 406 for an Accept header it cannot satisfy (kNotAcceptable).
// Every error message starts with the parameter or header it is about ("_type: ...",
// "Accept: ...", "_typeFilter 'Observation?x=1': ...").
//
// Files, one concern each: kickoff_headers (Accept, Prefer, Content-Type), kickoff_params
// (GET query or POST Parameters body into one list per parameter), export_request.cc (the
// per-parameter validation, in a fixed order), type_filter_parse (the _typeFilter grammar),
// export_request_json.cc (the job store's JSON); kickoff_util holds what they share.
//
// Decisions where the IG is silent:
//  - Headers, checked first: Accept must give application/fhir+json a q > 0 (most specific
//    media range wins, so `*/*` and `application/*` do; q=0 refuses); `application/json`
//    alone is 406 (issue 13, as the reference implementation). With require_accept_fhir_json
//    off, application/json is enough (unless application/fhir+json is refused by name) and
//    an empty Accept too. `Prefer: separate-export-status` sets separate_export_status.
//    Prefer is RFC 7240: comma-joined and repeated headers, case-insensitive, the first
//    `handling` wins; `handling=strict` or any other value means strict.
//  - GET query: application/x-www-form-urlencoded ('+' is a space; a literal plus must be
//    %2B). Since a FHIR instant or date and a media type never contain a space, a '+' sent
//    raw is read back as '+' in _since, _until, _typeFilter dates and _outputFormat
//    (`_outputFormat=application/fhir+ndjson` unencoded works). Malformed escapes,
//    encoded NULs and non-UTF-8 text are InvalidArgument.
//  - POST: Content-Type application/fhir+json or application/json; a URL query on a POST is
//    NotSupported (strict) or ignored and reported (lenient): parameters come from the body.
//  - _outputFormat, _since, _until: at most once (InvalidArgument otherwise). An unsupported
//    _outputFormat is NotSupported even when lenient (the client would get a format it did
//    not ask for). _until == _since is allowed; _until in the future is allowed.
//  - Comma lists (_type, _elements, includeAssociatedData): blanks around items are trimmed;
//    an empty item is InvalidArgument.
//  - _type: if lenient mode drops every requested type the request is NotSupported at every
//    level (an empty list would mean "all types"). Types are deduplicated, order kept. At
//    Patient and Group level a type outside the Patient compartment (and not a supporting
//    type) is dropped with a warning in `ignored` in both modes (issue 13); NotSupported
//    only when no requested type is left.
//  - allowPartialManifests: "true"/"false" (GET, any case) or valueBoolean (POST), at most
//    once; anything else InvalidArgument.
//  - _elements: "Type.element" (Type an R4 type, else NotSupported/ignored) or "element"
//    ([a-z][A-Za-z0-9]*); deeper paths NotSupported/ignored; anything else InvalidArgument.
//  - patient (POST, Patient/Group level): "Patient/<id>", ".../_history/<v>" (dropped) or
//    "<base_url>/Patient/<id>"; in GET or at system level NotSupported/ignored.
//  - includeAssociatedData: LatestProvenanceResources and RelevantProvenanceResources are
//    accepted (deduplicated, in `include_associated_data`; both given: Relevant, the least
//    restrictive, wins in the engine); "_"-prefixed codes are NotSupported / ignored; other
//    codes are InvalidArgument. valueCode, valueString and valueCoding.code are read.
//  - organizeOutputBy (STU3, at most once): "Patient" is accepted at every level; another
//    R4 type is NotSupported / ignored; anything else InvalidArgument. valueString or
//    valueCode.
//  - _typeFilter: split per the digest's recommendation (SplitTypeFilterValue in
//    type_filter_parse.cc);
//    inside a query, names and values are percent-decoded, ',' separates ORed values and '\'
//    escapes (FHIR search escaping). Supported: the parameters of fhir/search_params.h for
//    the type (incl. _id, _lastUpdated, _tag, _security, _profile); modifiers :not (token,
//    uri), :missing (token, uri, reference, date) and :[Type] on references (folded into the
//    values). Chains, _has, result parameters (_include, _sort, _count, _elements, ...),
//    other modifiers, prefixes sa/eb/ap and absolute references to other servers are
//    NotSupported: strict error, or the whole query ignored and reported (lenient). Bad
//    values (dates that are not FHIR date/dateTime/instant, empty values, "|" tokens,
//    malformed references or ids) are InvalidArgument in both modes.
//    Reference values are normalized to "Type/id": a bare id takes the parameter's single
//    target type (Observation?patient=1 -> Patient/1) or the :[Type] modifier; for a
//    parameter with several targets it stays a bare id and matches that id under each of
//    the parameter's declared R4 target types (fhir/search_params.h BareIdTargetTypes).
//    References under options.base_url are made relative.
//    A query whose type is not exported by this request (not in _type; or, at Patient/Group
//    level without _type, outside the compartment and the supporting types) is dropped in
//    both modes and reported as an `information` issue in `ignored`, because it cannot
//    change the output. A query "Type?" (no criteria) is kept and matches every resource.
//  - Limits (KickoffLimits below): sizes, nesting, counts and the compiled cost of
//    _typeFilter are bounded; the body is parsed with RapidJSON's iterative parser.
//  - request_url: options.base_url + request.path, plus "?" + the raw query for a GET with
//    one (POST: without parameters, as the IG says).
//
#ifndef FHIRBULK_EXPORT_EXPORT_REQUEST_H_
#define FHIRBULK_EXPORT_EXPORT_REQUEST_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/http.h"
#include "http/outcome.h"
#include "util/status.h"

#include "fhirbulk/defaults.h"

namespace fhirbulk {

enum class ExportLevel { kSystem, kPatient, kGroup };

// One search criterion of a _typeFilter query: `param[:modifier]=v1,v2` (values ORed).
// Values are percent-decoded, unescaped and normalized (references "Type/id" or a bare id,
// see above). For date and _lastUpdated parameters each value's prefix (eq, ne, gt, lt, ge,
// le; "eq" written out when the client gave none) is in `prefixes`, parallel to `values`;
// with :missing, `values` is {"true"} or {"false"} and `prefixes` is empty.
struct FilterCriterion {
  std::string param;
  std::string modifier;  // "" or e.g. "not", "missing" (only those the engine supports)
  std::vector<std::string> values;
  std::vector<std::string> prefixes;  // date params only
};

// One _typeFilter query: `Type?c1&c2...` (criteria ANDed). Queries of one type are ORed.
struct TypeFilterQuery {
  std::string type;
  std::vector<FilterCriterion> criteria;
};

struct ExportRequest {
  ExportLevel level = ExportLevel::kSystem;
  std::string group_id;  // kGroup only
  std::string output_format = "application/fhir+ndjson";
  std::optional<int64_t> since_us;    // _since, microseconds since the epoch
  std::optional<int64_t> until_us;    // _until
  std::vector<std::string> types;     // _type, deduplicated, in request order; empty = default
  std::vector<std::string> elements;  // _elements items: "Type.element" or "element"
  std::vector<std::string> patients;  // patient ids from `patient` references (POST only)
  std::vector<std::string> include_associated_data;  // accepted codes
  // organizeOutputBy (STU3): "" (files by type) or "Patient" (files of patient blocks,
  // worker/patient_block_writer.h).
  std::string organize_output_by;
  std::vector<TypeFilterQuery> type_filters;
  bool lenient = false;               // Prefer: handling=lenient
  std::vector<OutcomeIssue> ignored;  // what lenient mode ignored, for the manifest
  std::string request_url;            // the manifest's `request`: kick-off URL (GET with query)
  // STU3 (issue 13): allowPartialManifests=true (manifests of the files done so far while
  // the job runs, and paged manifests); Prefer: separate-export-status (polls answer 200 with
  // the job's status in X-Export-Status).
  bool allow_partial_manifests = false;
  bool separate_export_status = false;
};

// includeAssociatedData codes this server applies (http://hl7.org/fhir/uv/bulkdata/
// CodeSystem/include-associated-data), and the one organizeOutputBy value.
inline constexpr std::string_view kLatestProvenanceResources = "LatestProvenanceResources";
inline constexpr std::string_view kRelevantProvenanceResources = "RelevantProvenanceResources";
inline constexpr std::string_view kOrganizeByPatient = "Patient";

// The non-compartment types a Patient or Group export adds as context (the referenced
// Location, Medication, Organization and Practitioner resources); _type may name them at
// those levels. Alphabetical.
const std::vector<std::string_view>& PatientExportSupportingTypes();
bool IsPatientExportSupportingType(std::string_view type);

// Bounds on what one kick-off may ask for, so parsing it and running its filters cost a
// known amount whatever the client sends (issue 11). The kick-off is parsed in nginx's
// event loop: every check runs before the work it bounds (sizes before splitting, nesting
// before the DOM is built, counts before values are normalized). Over a limit:
//  - the body size: TooLarge starting "body: too large" (HTTP 413);
//  - the query size: UriTooLong starting "query: too large" (HTTP 414);
//  - any other: InvalidArgument naming the parameter and the limit (400), in both modes,
//    except the _typeFilter cost limits: with Prefer: handling=lenient the query that goes
//    over is dropped and reported in `ignored` (warning, code too-costly), the way other
//    lenient ignores are reported.
// A limit of 0 means "use the default" (so a zeroed options struct is safe).
struct KickoffLimits {
  size_t max_body_bytes = 1 << 20;       // POST Parameters body
  int max_json_depth = 32;               // nesting of the body (Parameters needs ~4)
  size_t max_query_bytes = 64 << 10;     // GET query string
  size_t max_parameters = 20000;         // query parameters or Parameters.parameter entries
  size_t max_value_bytes = 256 << 10;    // one parameter value, raw
  size_t max_list_items = 1000;          // items of _type, _elements, includeAssociatedData
  size_t max_patients = 10000;           // `patient` references
  size_t max_ignored_issues = 100;       // lenient issues kept (then one summary issue)
  size_t max_type_filter_queries = 100;  // _typeFilter queries per kick-off
  size_t max_type_filter_criteria = 32;  // criteria (param=value) per query
  size_t max_type_filter_values = 1000;  // ORed values of one criterion
  size_t max_type_filter_terms =
      FHIRBULK_DEFAULT_TYPEFILTER_MAX_TERMS;  // TypeFilterTermCount summed
};

// The defaults filled in where `limits` has 0.
KickoffLimits EffectiveKickoffLimits(const KickoffLimits& limits);

struct ExportParseOptions {
  std::string base_url;                  // absolute, no trailing slash
  bool require_prefer_async = true;      // strict: a kick-off without Prefer: respond-async is 400
  bool require_accept_fhir_json = true;  // strict: Accept must allow application/fhir+json
  int64_t now_us = 0;                    // for "_since in the future"; 0 = the real clock
  KickoffLimits limits;
};

// Parses a kick-off. request.path is the request path below the base ("/$export",
// "/Patient/$export", "/Group/<id>/$export"); the caller has already routed it there and
// passes the Group id (kept for kGroup only). Methods other than GET and POST are
// InvalidArgument.
Result<ExportRequest> ParseExportRequest(const HttpRequest& request, ExportLevel level,
                                         std::string group_id, const ExportParseOptions& options);

// Serializes to compact JSON and back (the job store keeps the request with the job, so any
// worker can run it). Round trip is exact.
std::string ExportRequestToJson(const ExportRequest& request);
Result<ExportRequest> ExportRequestFromJson(std::string_view json);

// How many values a FHIR search value holds: ',' separates them, '\' escapes the next
// character. What splitting it would yield, counted without building the values (the
// kick-off refuses over max_type_filter_values before splitting).
size_t CountEscapedValues(std::string_view value);

}  // namespace fhirbulk

#endif  // FHIRBULK_EXPORT_EXPORT_REQUEST_H_
