// What the export engine needs to know about a resource without parsing its JSON again:
// the patients whose compartment holds it, and its search values for _typeFilter.
// Computed once at load time (IndexResource) and stored beside the body (sql/0001).
//
// Contract:
//  - `resource` is a parsed FHIR R4 resource whose references are already in "Type/id"
//    form (urn:uuid: references resolved by the loader); absolute references to this
//    server's base are not expected.
//  - patients: ids (not "Patient/id") of every patient whose R4 Patient compartment holds the
//    resource, per the compartment definition (spec digest §6): for each type, the listed
//    search parameters' reference elements that point at a Patient. A Patient is in its own
//    compartment (its own id). Sorted, unique. Empty for types never in the compartment.
//  - tokens: for every supported token search parameter of the type, each value as
//      "param=system|code", "param=code" (any system) and, when a system is present,
//      "param=system|"; a value without system also as "param=|code".
//    Identifier values use system|value. Sorted, unique.
//  - refs: for every supported reference parameter (subject, patient, ...): "param=Type/id".
//  - dates: for every supported date parameter: the value as an inclusive range in
//    microseconds since the Unix epoch (UTC): a date or partial dateTime covers its whole
//    day/month/year; a Period covers [start, end] (open ends are unbounded).
//
// Thread-safety: pure functions.

#ifndef FHIRBULK_FHIR_RESOURCE_INDEX_H_
#define FHIRBULK_FHIR_RESOURCE_INDEX_H_

#include <rapidjson/document.h>

#include <cstdint>
#include <string>
#include <vector>

#include "util/status.h"

namespace fhirbulk {

struct DateIndexValue {
  std::string param;
  int64_t lo_us;  // INT64_MIN when unbounded
  int64_t hi_us;  // INT64_MAX when unbounded
};

struct ResourceIndex {
  std::vector<std::string> patients;
  std::vector<std::string> tokens;
  std::vector<std::string> refs;
  std::vector<DateIndexValue> dates;
};

// REQUIRES: resource is an object with a string resourceType.
Status IndexResource(const rapidjson::Value& resource, ResourceIndex* out);

// Group.member entries that point at a Patient, with their activity.
struct GroupMemberEntry {
  std::string patient_id;
  bool inactive = false;
  bool has_start = false, has_end = false;
  int64_t period_start_us = 0, period_end_us = 0;
};
// REQUIRES: group is a Group resource with resolved references.
Status ExtractGroupMembers(const rapidjson::Value& group, std::vector<GroupMemberEntry>* out);

}  // namespace fhirbulk

#endif  // FHIRBULK_FHIR_RESOURCE_INDEX_H_
