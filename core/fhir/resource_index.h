// What the export engine needs to know about a resource without parsing its JSON again:
// the patients whose compartment holds it, and its search values for _typeFilter.
// Computed once at load time (IndexResource) and stored beside the body (sql/0001).
// Which parameters exist, their kinds and element paths: fhir/search_params.h (one table for
// the indexer and the export's _typeFilter validation).
//
// Contract:
//  - `resource` is a parsed FHIR R4 resource whose references are already in "Type/id"
//    form (urn:uuid: references resolved by the loader); absolute references to this
//    server's base are not expected. Only relative references "Type/id" (Type an R4 resource
//    type, id a FHIR id; a trailing "/_history/<vid>" is dropped) are indexed; others
//    (absolute, "#contained", "urn:", logical identifier-only references) are skipped.
//    Contained resources are not indexed.
//  - patients: ids (not "Patient/id") of every patient whose R4 Patient compartment holds the
//    resource, per the compartment definition (spec digest §6): for each type, the listed
//    search parameters' reference elements that point at a Patient (search params flagged
//    patient_compartment). A Patient is in its own compartment (its own id), and in the
//    compartment of every Patient its link.other names. Sorted, unique. Empty for types never
//    in the compartment.
//  - tokens: for every supported token search parameter of the type, each value as
//      "param=system|code", "param=code" (any system) and, when a system is present,
//      "param=system|"; a value without system also as "param=|code".
//    Identifier values use system|value; booleans "true"/"false"; uri parameters (_profile)
//    are stored once as "param=<uri>". Sorted, unique.
//  - refs: for every supported reference parameter (subject, patient, ...): "param=Type/id".
//    Sorted, unique.
//  - dates: for every supported date parameter: the value as an inclusive range in
//    microseconds since the Unix epoch (UTC): a date or partial dateTime covers its whole
//    day/month/year; a full dateTime or instant is a single point; a Period covers
//    [start.lo, end.hi] (an open end is INT64_MIN / INT64_MAX). Sorted by (param, lo, hi),
//    unique.
//  - Malformed values (a `subject` that is a string, an invalid date, a Coding without code)
//    are skipped one by one; the rest of the resource is still indexed.
//
// Thread-safety: pure functions.

#ifndef FHIRBULK_FHIR_RESOURCE_INDEX_H_
#define FHIRBULK_FHIR_RESOURCE_INDEX_H_

#include <rapidjson/document.h>

#include <cstdint>
#include <string>
#include <string_view>
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
  // Every relative reference ("Type/id") anywhere in the resource to a type outside the Patient
  // compartment (Practitioner, Organization, Location, Medication, ...): what a Patient or
  // Group export adds as supporting resources. Sorted, unique.
  std::vector<std::string> outrefs;
};

// Replaces *out with the index of `resource`.
// InvalidArgument (and *out cleared) only when resource is not an object with a string
// resourceType; unknown or unindexed types just get the common parameters (_tag, ...).
Status IndexResource(const rapidjson::Value& resource, ResourceIndex* out);

// Group.member entries that point at a Patient, with their activity.
// period_start_us is the start of member.period.start's range, period_end_us the end of
// member.period.end's range (so "2024-01-31" as end includes that whole day).
struct GroupMemberEntry {
  std::string patient_id;
  bool inactive = false;
  bool has_start = false, has_end = false;
  int64_t period_start_us = 0, period_end_us = 0;
};
// REQUIRES: group is a Group resource with resolved references.
// Replaces *out with one entry per Group.member whose entity is a Patient/<id> reference, in
// Group.member order; other members are skipped, as are malformed period bounds (treated as
// absent). InvalidArgument when group is not an object whose resourceType is "Group".
Status ExtractGroupMembers(const rapidjson::Value& group, std::vector<GroupMemberEntry>* out);

// A relative literal reference "Type/id" (or "Type/id/_history/vid"), split; the views point
// into the input.
struct RelativeReference {
  std::string_view type;
  std::string_view id;
};
// True when `reference` is a relative reference to an R4 resource type with a valid FHIR id
// ([A-Za-z0-9.-]{1,64}).
bool ParseRelativeReference(std::string_view reference, RelativeReference* out);

}  // namespace fhirbulk

#endif  // FHIRBULK_FHIR_RESOURCE_INDEX_H_
