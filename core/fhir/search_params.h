// The search parameters this server supports, as one static table that drives both the
// load-time indexer (fhir/resource_index.h: what goes into the tokens/refs/date columns) and the
// export's _typeFilter validation ("is `code` supported for Observation, and of which kind?").
//
// Contract:
//  - Names, kinds and element paths transcribe the FHIR R4 4.0.1 SearchParameter definitions
//    (search-parameters.json, version 4.0.1): each path is the part of the parameter's FHIRPath
//    expression for that resource type, with choice elements spelled as their JSON names
//    (Observation.effective -> effectiveDateTime, effectivePeriod, effectiveInstant) and
//    `x.where(resolve() is T)` recorded as a target type. One deliberate extra:
//    MedicationRequest `authored` = `authoredon` (the name the export issue uses).
//  - Coverage: the parameters the export needs for the Patient compartment types and the
//    resource types Synthea produces (plus Device, Organization, Practitioner): `identifier`,
//    `status`, `code`, `category`, `date`, `patient`, `subject`, `encounter` wherever R4 defines
//    them for the type, a curated set of type-specific ones (clinical-status, intent, class,
//    vaccine-code, ...), and every Patient-compartment inclusion parameter of every compartment
//    type (R4 CompartmentDefinition/patient), flagged `patient_compartment`.
//  - Every R4 resource type also has the Resource-level `_id`, `_lastUpdated` (evaluated on
//    table columns, not indexed), `_tag`, `_security` (meta.tag / meta.security Codings) and
//    `_profile` (meta.profile canonicals).
//  - Parts of an R4 expression that use element types the indexer cannot search on (Timing,
//    Age, Range, string dates) are left out; the parameter stays, with its other paths.
//
// How each kind is stored (sql/0001_resources.sql), and so how a query value maps to a key:
//   kToken      tokens: "p=system|code", "p=code", "p=system|" and, without system, "p=|code";
//               Identifier as system|value; boolean as "true"/"false". A query value maps to
//               the key "p=" + value verbatim (code, system|code, |code, system|).
//   kUri        tokens: "p=" + the exact uri/canonical (query values match verbatim).
//   kReference  refs: "p=Type/id" (relative references only). A bare-id query value needs
//               the type prefix; `target` names it when the parameter has a single target,
//               otherwise the bare id stands for each of R4's declared `targets`.
//   kDate       date_params/date_lo/date_hi: the inclusive microsecond range the value covers.
//   kId         the res_id column.   kLastUpdated  the last_updated column.
//
// Thread-safety: pure functions over a static table.

#ifndef FHIRBULK_FHIR_SEARCH_PARAMS_H_
#define FHIRBULK_FHIR_SEARCH_PARAMS_H_

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace fhirbulk {

enum class SearchParamKind : uint8_t { kToken, kUri, kReference, kDate, kId, kLastUpdated };

// The FHIR datatype found at a search path, which decides how its values are read.
enum class SearchElementType : uint8_t {
  kCodeableConcept,  // each coding: system|code
  kCoding,           // system|code
  kCode,             // a primitive code/string/id read as a code without system
  kBoolean,          // true / false
  kIdentifier,       // system|value
  kUri,              // uri / url / canonical, kept verbatim
  kReference,        // Reference.reference = "Type/id"
  kDateTime,         // date, dateTime or instant
  kPeriod,           // Period.start .. Period.end
};

// A dot-separated path of JSON property names below the resource ("performer.actor").
// Arrays are walked at every step, so "performer.actor" reads every performer's actor.
struct SearchPath {
  std::string_view path;
  SearchElementType element;
};

inline constexpr int kMaxSearchPaths = 3;

struct SearchParamDef {
  std::string_view type;  // the resource type, or "Resource" for the common parameters
  std::string_view code;  // the name used in a query ("code", "clinical-status", "_tag")
  SearchParamKind kind;
  // For references restricted by `.where(resolve() is T)`: T (only T/id values are indexed).
  // Empty when any target type is indexed.
  std::string_view target;
  // True when R4's Patient CompartmentDefinition lists this parameter for this type: a
  // Patient/<id> value puts the resource into that patient's compartment.
  bool patient_compartment;
  SearchPath paths[kMaxSearchPaths];  // unused entries have an empty path
  // kReference only: R4's declared target types (SearchParameter.target), sorted and
  // space-separated ("Device Group Location Patient"). Empty for R4's "Any" (every type) and
  // for other kinds. Unlike `target` this does not restrict indexing; it bounds what a bare
  // id in a query can mean (BareIdTargetTypes).
  std::string_view targets = {};

  int path_count() const {
    int n = 0;
    while (n < kMaxSearchPaths && !paths[n].path.empty()) ++n;
    return n;
  }
};

// A contiguous, sorted (by code) run of table entries.
class SearchParamRange {
 public:
  SearchParamRange(const SearchParamDef* begin, const SearchParamDef* end)
      : begin_(begin), end_(end) {}
  const SearchParamDef* begin() const { return begin_; }
  const SearchParamDef* end() const { return end_; }
  size_t size() const { return static_cast<size_t>(end_ - begin_); }
  bool empty() const { return begin_ == end_; }

 private:
  const SearchParamDef* begin_;
  const SearchParamDef* end_;
};

// The definition of `param` for resource `type` (type-specific first, then the common
// Resource-level ones), or nullptr when the parameter is not supported for the type or the
// type is not an R4 resource type. `param` is the bare name: strip modifiers (":exact") first.
const SearchParamDef* FindSearchParam(std::string_view type, std::string_view param);

// The type-specific parameters of `type` (empty for types without any), sorted by code.
SearchParamRange SearchParamsForType(std::string_view type);

// The Resource-level parameters every R4 type has: _id, _lastUpdated, _profile, _security, _tag.
SearchParamRange CommonSearchParams();

// The resource types a bare id in a query of reference parameter `def` ("subject=123")
// stands for: {target} when the parameter has a single indexed target, else its declared R4
// `targets`, else (R4 "Any") every R4 resource type. Empty for non-reference kinds.
std::vector<std::string_view> BareIdTargetTypes(const SearchParamDef& def);

// The whole table (type-specific entries only), sorted by (type, code). For capability
// statements and tests.
SearchParamRange AllTypeSearchParams();

}  // namespace fhirbulk

#endif  // FHIRBULK_FHIR_SEARCH_PARAMS_H_
