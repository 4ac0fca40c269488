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
// turns it into a 400 OperationOutcome (kInvalidArgument / kNotSupported) or 406 for Accept.
//
// Thread-safety: pure functions; an ExportRequest is a value.

#ifndef FHIRBULK_EXPORT_EXPORT_REQUEST_H_
#define FHIRBULK_EXPORT_EXPORT_REQUEST_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "server/http.h"
#include "server/outcome.h"
#include "util/status.h"

namespace fhirbulk {

enum class ExportLevel { kSystem, kPatient, kGroup };

// One search criterion of a _typeFilter query: `param[:modifier]=v1,v2` (values ORed).
// Values are percent-decoded. For date parameters each value keeps its prefix (eq, ne, gt,
// lt, ge, le; none means eq) in `prefixes`, parallel to `values`.
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
  std::string group_id;             // kGroup only
  std::string output_format = "application/fhir+ndjson";
  std::optional<int64_t> since_us;  // _since, microseconds since the epoch
  std::optional<int64_t> until_us;  // _until
  std::vector<std::string> types;   // _type, deduplicated, in request order; empty = default
  std::vector<std::string> elements;  // _elements items: "Type.element" or "element"
  std::vector<std::string> patients;  // patient ids from `patient` references (POST only)
  std::vector<std::string> include_associated_data;  // accepted codes
  std::vector<TypeFilterQuery> type_filters;
  bool lenient = false;               // Prefer: handling=lenient
  std::vector<OutcomeIssue> ignored;  // what lenient mode ignored, for the manifest
  std::string request_url;            // the manifest's `request`: kick-off URL (GET with query)
};

struct ExportParseOptions {
  std::string base_url;           // absolute, no trailing slash
  bool require_prefer_async = true;   // strict: a kick-off without Prefer: respond-async is 400
  bool require_accept_fhir_json = true;  // strict: Accept must allow application/fhir+json
  int64_t now_us = 0;             // for "_since in the future"; 0 = the real clock
};

// Parses a kick-off. `path` is the request path below the base ("/$export",
// "/Patient/$export", "/Group/<id>/$export"); the caller has already routed it there.
Result<ExportRequest> ParseExportRequest(const HttpRequest& request, ExportLevel level,
                                         std::string group_id, const ExportParseOptions& options);

// Serializes to compact JSON and back (the job store keeps the request with the job, so any
// worker can run it). Round trip is exact.
std::string ExportRequestToJson(const ExportRequest& request);
Result<ExportRequest> ExportRequestFromJson(std::string_view json);

}  // namespace fhirbulk

#endif  // FHIRBULK_EXPORT_EXPORT_REQUEST_H_
