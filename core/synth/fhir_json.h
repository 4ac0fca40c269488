// Writers for the FHIR datatypes the generator repeats in every resource (CodeableConcept,
// Reference, Period, Quantity, meta), on top of JsonOut. Each writes one JSON value; the caller
// writes the key first (j->Key("code"); CodeableConcept(j, kSnomed, c)).
//
// References are always relative "Type/id" with the id a Uuid; dates are US Eastern local
// dateTimes (synth/clock.h).
//
// Thread-safety: stateless.

#ifndef FHIRBULK_SYNTH_FHIR_JSON_H_
#define FHIRBULK_SYNTH_FHIR_JSON_H_

#include <cstdint>
#include <string_view>

#include "synth/clock.h"
#include "synth/codes.h"
#include "synth/ids.h"
#include "synth/json_out.h"

namespace fhirbulk {
namespace synth {

// {"system":..,"code":..,"display":..}
inline void Coding(JsonOut* j, std::string_view system, std::string_view code,
                   std::string_view display) {
  j->BeginObject();
  j->KeyPlain("system", system);
  j->KeyPlain("code", code);
  if (!display.empty()) j->KeyString("display", display);
  j->EndObject();
}

// {"coding":[{..}],"text":display} (text omitted when with_text is false, as Synthea does for
// status-like concepts).
inline void CodeableConcept(JsonOut* j, std::string_view system, const Code& c,
                            bool with_text = true) {
  j->BeginObject();
  j->Key("coding");
  j->BeginArray();
  Coding(j, system, c.code, c.display);
  j->EndArray();
  if (with_text) j->KeyString("text", c.display);
  j->EndObject();
}

// {"coding":[{"system":..,"code":..}]} — a bare code (statuses, claim types).
inline void SimpleConcept(JsonOut* j, std::string_view system, std::string_view code,
                          std::string_view display = {}) {
  j->BeginObject();
  j->Key("coding");
  j->BeginArray();
  Coding(j, system, code, display);
  j->EndArray();
  j->EndObject();
}

// "Type/id" as a string value.
inline void ReferenceString(JsonOut* j, std::string_view type, const Uuid& id) {
  j->BeginString();
  j->AppendRaw(type);
  j->AppendRaw('/');
  j->AppendRaw(id.view());
  j->EndString();
}

// {"reference":"Type/id"[,"display":..]}
inline void Reference(JsonOut* j, std::string_view type, const Uuid& id,
                      std::string_view display = {}) {
  j->BeginObject();
  j->Key("reference");
  ReferenceString(j, type, id);
  if (!display.empty()) j->KeyString("display", display);
  j->EndObject();
}

inline void DateTime(JsonOut* j, int64_t t) {
  j->BeginString();
  AppendLocalDateTime(j->mutable_buffer(), t);
  j->EndString();
}

inline void DateTimeMillis(JsonOut* j, int64_t t, int millis) {
  j->BeginString();
  AppendLocalDateTimeMillis(j->mutable_buffer(), t, millis);
  j->EndString();
}

inline void Date(JsonOut* j, int64_t t) {
  j->BeginString();
  AppendLocalDate(j->mutable_buffer(), t);
  j->EndString();
}

// {"start":..[,"end":..]}; end < start means open-ended.
inline void Period(JsonOut* j, int64_t start, int64_t end) {
  j->BeginObject();
  j->Key("start");
  DateTime(j, start);
  if (end >= start) {
    j->Key("end");
    DateTime(j, end);
  }
  j->EndObject();
}

// {"value":v,"unit":u,"system":"http://unitsofmeasure.org","code":u}
inline void Quantity(JsonOut* j, double value, int decimals, std::string_view ucum) {
  j->BeginObject();
  j->KeyFixed("value", value, decimals);
  j->KeyPlain("unit", ucum);
  j->KeyPlain("system", kUcum);
  j->KeyPlain("code", ucum);
  j->EndObject();
}

// {"value":v,"currency":"USD"}
inline void Money(JsonOut* j, int64_t cents) {
  j->BeginObject();
  j->KeyFixed("value", static_cast<double>(cents) / 100.0, 2);
  j->KeyPlain("currency", "USD");
  j->EndObject();
}

// Opens a resource: {"resourceType":T,"id":..,"meta":{"lastUpdated":..}. The caller
// continues with more members and closes with EndObject().
inline void BeginResource(JsonOut* j, std::string_view type, const Uuid& id, int64_t last_updated,
                          int millis) {
  j->BeginObject();
  j->KeyPlain("resourceType", type);
  j->KeyPlain("id", id.view());
  j->Key("meta");
  j->BeginObject();
  j->Key("lastUpdated");
  j->BeginString();
  AppendUtcInstant(j->mutable_buffer(), last_updated, millis);
  j->EndString();
  j->EndObject();
}

}  // namespace synth
}  // namespace fhirbulk

#endif  // FHIRBULK_SYNTH_FHIR_JSON_H_
