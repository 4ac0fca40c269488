#include "synth/records.h"

#include <algorithm>
#include <array>
#include <cstring>

#include "synth/base64.h"
#include "synth/clock.h"
#include "synth/fhir_json.h"
#include "synth/sha1.h"

namespace fhirbulk {
namespace synth {

namespace {

constexpr char kActCode[] = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
constexpr char kObservationCategory[] =
    "http://terminology.hl7.org/CodeSystem/observation-category";
constexpr char kClaimType[] = "http://terminology.hl7.org/CodeSystem/claim-type";
constexpr char kDicom[] = "http://dicom.nema.org/resources/ontology/DCM";
// Identifier systems of this generator (example.org: clearly synthetic, never a real issuer).
constexpr char kSynthPersonSystem[] = "http://example.org/fhir-bulk/synth/person";
constexpr char kSynthMrnSystem[] = "http://example.org/fhir-bulk/synth/mrn";

const int64_t kSimulationEnd = DateToSeconds(2026, 6, 30);
const int64_t kDetailedStart = kSimulationEnd - 10 * kSecondsPerYear - kSecondsPerYear / 2;
const int64_t kEhrGoLive = DateToSeconds(2010, 1, 1);

const char* MaritalDisplay(char code) {
  switch (code) {
    case 'M':
      return "Married";
    case 'D':
      return "Divorced";
    case 'W':
      return "Widowed";
    default:
      return "Never Married";
  }
}

// Cost of the visit itself, in cents, by encounter class.
int64_t EncounterBaseCents(int kind) {
  const char* cls = kEncounterTypes[kind].act_class;
  if (cls[0] == 'I') return 1200000;
  if (cls[0] == 'E') return 125000;
  return 12916;
}

void Identifier(JsonOut* j, const char* type_code, const char* type_display, const char* system,
                std::string_view value) {
  j->BeginObject();
  j->Key("type");
  CodeableConcept(j, "http://terminology.hl7.org/CodeSystem/v2-0203",
                  Code{type_code, type_display});
  j->KeyPlain("system", system);
  j->KeyString("value", value);
  j->EndObject();
}

void OmbExtension(JsonOut* j, const char* url, const OmbCategory& c) {
  j->BeginObject();
  j->KeyPlain("url", url);
  j->Key("extension");
  j->BeginArray();
  j->BeginObject();
  j->KeyPlain("url", "ombCategory");
  j->Key("valueCoding");
  Coding(j, "urn:oid:2.16.840.1.113883.6.238", c.code, c.display);
  j->EndObject();
  j->BeginObject();
  j->KeyPlain("url", "text");
  j->KeyString("valueString", c.display);
  j->EndObject();
  j->EndArray();
  j->EndObject();
}

// EOB item category, the same for every line (CMS line type of service "Medical care").
void EobCategory(JsonOut* j) {
  j->Key("category");
  SimpleConcept(j, "https://bluebutton.cms.gov/resources/variables/line_cms_type_srvc_cd", "1",
                "Medical care");
}

void EobLocation(JsonOut* j, int kind) {
  j->Key("locationCodeableConcept");
  SimpleConcept(j, "http://terminology.hl7.org/CodeSystem/ex-serviceplace",
                kEncounterTypes[kind].service_place, kEncounterTypes[kind].service_place_display);
}

}  // namespace

int64_t SimulationEnd() { return kSimulationEnd; }
int64_t DetailedHistoryStart() { return kDetailedStart; }
int64_t EhrGoLive() { return kEhrGoLive; }

int Person::AgeAt(int64_t t) const { return YearsBetween(birth, t); }

RecordWriter::RecordWriter() { scratch_.reserve(4096); }

void RecordWriter::Begin(const Person* person, Rng* rng, ResourceSink* sink) {
  person_ = person;
  rng_ = rng;
  sink_ = sink;
  status_ = Status::OK();
  targets_.clear();
}

// A record is written some time after the fact: mostly within days, sometimes amended months
// or years later. Records from before the EHR went live were imported with it.
int64_t RecordWriter::LastUpdated(int64_t t) {
  int64_t base = std::min(t, kSimulationEnd - rng_->Range(0, kSecondsPerDay));
  // Older records were migrated into the EHR in batches over its first six years.
  if (base < kEhrGoLive) base = kEhrGoLive + static_cast<int64_t>(rng_->Below(6 * kSecondsPerYear));
  double u = rng_->Uniform();
  int64_t delay;
  if (u < 0.80) {
    delay = rng_->Range(600, 3 * kSecondsPerDay);
  } else if (u < 0.95) {
    delay = rng_->Range(3 * kSecondsPerDay, 60 * kSecondsPerDay);
  } else {
    delay = rng_->Range(60 * kSecondsPerDay, 3 * kSecondsPerYear);
  }
  int64_t lu = base + delay;
  if (lu > kSimulationEnd) lu = std::max(base, kSimulationEnd - rng_->Range(0, 3 * kSecondsPerDay));
  return lu;
}

void RecordWriter::Begin(const char* type, const Uuid& id, int64_t clinical_time) {
  targets_.emplace_back(type, id);
  json_.Clear();
  BeginResource(&json_, type, id, LastUpdated(clinical_time), static_cast<int>(rng_->Below(1000)));
}

// The part of a Claim both kinds share, up to and including `priority`.
void RecordWriter::BeginClaim(const Uuid& claim_id, const EncounterCtx& e, const char* type_code) {
  JsonOut* j = &json_;
  Begin("Claim", claim_id, e.end);
  j->KeyPlain("status", "active");
  j->Key("type");
  SimpleConcept(j, kClaimType, type_code);
  j->KeyPlain("use", "claim");
  j->Key("patient");
  Reference(j, "Patient", person_->id, person_->plain);
  j->Key("billablePeriod");
  Period(j, e.start, e.end);
  j->Key("created");
  DateTime(j, e.end);
  j->Key("provider");
  Reference(j, "Organization", e.facility->organization_id, e.facility->name);
  j->Key("priority");
  SimpleConcept(j, "http://terminology.hl7.org/CodeSystem/processpriority", "normal");
}

void RecordWriter::Emit(Kind kind) {
  json_.EndObject();
  if (!status_.ok()) return;
  status_ = sink_->Put(kind, json_.view());
}

void RecordWriter::SubjectAndEncounter(const EncounterCtx& e, const char* subject_key) {
  json_.Key(subject_key);
  Reference(&json_, "Patient", person_->id);
  json_.Key("encounter");
  Reference(&json_, "Encounter", e.id);
}

// --- Patient -----------------------------------------------------------------------------------

void RecordWriter::WritePatient(int64_t last_updated) {
  const Person& p = *person_;
  JsonOut* j = &json_;
  j->Clear();
  targets_.emplace_back("Patient", p.id);
  BeginResource(j, "Patient", p.id, last_updated, static_cast<int>(rng_->Below(1000)));
  j->Key("text");
  j->BeginObject();
  j->KeyPlain("status", "generated");
  j->Key("div");
  j->BeginString();
  j->AppendRaw("<div xmlns=\\\"http://www.w3.org/1999/xhtml\\\">Synthetic patient ");
  j->AppendIntPart(static_cast<int64_t>(p.index));
  j->AppendRaw(", generated by ngx_fhir_bulk synth.</div>");
  j->EndString();
  j->EndObject();

  j->Key("extension");
  j->BeginArray();
  OmbExtension(j, "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race", *p.race);
  OmbExtension(j, "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity",
               p.hispanic ? kHispanic : kNotHispanic);
  j->BeginObject();
  j->KeyPlain("url", "http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName");
  j->KeyString("valueString", p.mothers_maiden_name);
  j->EndObject();
  j->BeginObject();
  j->KeyPlain("url", "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex");
  j->KeyPlain("valueCode", p.female ? "F" : "M");
  j->EndObject();
  j->BeginObject();
  j->KeyPlain("url", "http://hl7.org/fhir/StructureDefinition/patient-birthPlace");
  j->Key("valueAddress");
  j->BeginObject();
  if (p.birth_town != nullptr) {
    j->KeyString("city", p.birth_town->name);
    j->KeyPlain("state", "Massachusetts");
    j->KeyPlain("country", "US");
  } else {
    j->KeyString("city", p.birth_place->city);
    j->KeyString("state", p.birth_place->state);
    j->KeyPlain("country", p.birth_place->country);
  }
  j->EndObject();
  j->EndObject();
  j->EndArray();

  j->Key("identifier");
  j->BeginArray();
  j->BeginObject();
  j->KeyPlain("system", kSynthPersonSystem);
  j->KeyPlain("value", p.id.view());
  j->EndObject();
  Identifier(j, "MR", "Medical Record Number", kSynthMrnSystem, p.id.view());
  Identifier(j, "SS", "Social Security Number", "http://hl7.org/fhir/sid/us-ssn", p.ssn);
  if (!p.drivers_license.empty()) {
    Identifier(j, "DL", "Driver's License", "urn:oid:2.16.840.1.113883.4.3.25", p.drivers_license);
  }
  if (!p.passport.empty()) {
    Identifier(j, "PPN", "Passport Number",
               "http://standardhealthrecord.org/fhir/StructureDefinition/passportNumber",
               p.passport);
  }
  j->EndArray();

  j->Key("name");
  j->BeginArray();
  for (int n = 0; n < (p.maiden_family != nullptr ? 2 : 1); n++) {
    j->BeginObject();
    j->KeyPlain("use", n == 0 ? "official" : "maiden");
    j->KeyString("family", n == 0 ? p.family : p.maiden_family);
    j->Key("given");
    j->BeginArray();
    j->String(p.given);
    j->EndArray();
    if (p.prefix != nullptr) {
      j->Key("prefix");
      j->BeginArray();
      j->Plain(n == 0 ? p.prefix : "Ms.");
      j->EndArray();
    }
    j->EndObject();
  }
  j->EndArray();

  j->Key("telecom");
  j->BeginArray();
  j->BeginObject();
  j->KeyPlain("system", "phone");
  j->KeyPlain("value", p.phone);
  j->KeyPlain("use", "home");
  j->EndObject();
  j->EndArray();
  j->KeyPlain("gender", p.female ? "female" : "male");
  j->Key("birthDate");
  Date(j, p.birth);
  if (p.death != 0) {
    j->Key("deceasedDateTime");
    DateTime(j, p.death);
  }

  j->Key("address");
  j->BeginArray();
  j->BeginObject();
  j->Key("extension");
  j->BeginArray();
  j->BeginObject();
  j->KeyPlain("url", "http://hl7.org/fhir/StructureDefinition/geolocation");
  j->Key("extension");
  j->BeginArray();
  j->BeginObject();
  j->KeyPlain("url", "latitude");
  j->KeyFixed("valueDecimal", p.latitude, 6);
  j->EndObject();
  j->BeginObject();
  j->KeyPlain("url", "longitude");
  j->KeyFixed("valueDecimal", p.longitude, 6);
  j->EndObject();
  j->EndArray();
  j->EndObject();
  j->EndArray();
  j->Key("line");
  j->BeginArray();
  j->String(p.street);
  j->EndArray();
  j->KeyString("city", p.town->name);
  j->KeyPlain("state", "Massachusetts");
  j->KeyPlain("postalCode", p.town->zip);
  j->KeyPlain("country", "US");
  j->EndObject();
  j->EndArray();

  j->Key("maritalStatus");
  char marital[2] = {p.marital, 0};
  CodeableConcept(j, "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus",
                  Code{marital, MaritalDisplay(p.marital)});
  if (p.twin) {
    j->KeyInt("multipleBirthInteger", 2);
  } else {
    j->KeyBool("multipleBirthBoolean", false);
  }
  j->Key("communication");
  j->BeginArray();
  j->BeginObject();
  j->Key("language");
  CodeableConcept(j, "urn:ietf:bcp:47", Code{p.language->code, p.language->display});
  j->EndObject();
  j->EndArray();
  j->Key("generalPractitioner");
  j->BeginArray();
  Reference(j, "Practitioner", p.primary.practitioner_id, p.primary.practitioner_display);
  j->EndArray();
  Emit(Kind::kPatient);
}

// --- Encounter, Condition ----------------------------------------------------------------------

void RecordWriter::Participant(const EncounterCtx& e) {
  json_.Key("participant");
  json_.BeginArray();
  json_.BeginObject();
  json_.Key("type");
  json_.BeginArray();
  CodeableConcept(&json_, "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                  Code{"PPRF", "primary performer"});
  json_.EndArray();
  json_.Key("period");
  Period(&json_, e.start, e.end);
  json_.Key("individual");
  Reference(&json_, "Practitioner", e.facility->practitioner_id, e.facility->practitioner_display);
  json_.EndObject();
  json_.EndArray();
}

void RecordWriter::WriteEncounter(const EncounterCtx& e) {
  const EncounterType& type = kEncounterTypes[e.kind];
  Begin("Encounter", e.id, e.end);
  JsonOut* j = &json_;
  j->KeyPlain("status", "finished");
  j->Key("class");
  j->BeginObject();
  j->KeyPlain("system", kActCode);
  j->KeyPlain("code", type.act_class);
  j->EndObject();
  j->Key("type");
  j->BeginArray();
  CodeableConcept(j, kSnomed, type.type);
  j->EndArray();
  j->Key("subject");
  Reference(j, "Patient", person_->id, person_->display);
  Participant(e);
  j->Key("period");
  Period(j, e.start, e.end);
  if (e.reason != nullptr) {
    j->Key("reasonCode");
    j->BeginArray();
    CodeableConcept(j, kSnomed, *e.reason, false);
    j->EndArray();
  }
  if (e.discharge) {
    j->Key("hospitalization");
    j->BeginObject();
    j->Key("dischargeDisposition");
    CodeableConcept(j, "http://www.nubc.org/patient-discharge",
                    Code{"01", "Discharged to home care or self care (routine discharge)"});
    j->EndObject();
  }
  j->Key("location");
  j->BeginArray();
  j->BeginObject();
  j->Key("location");
  Reference(j, "Location", e.facility->location_id);
  j->EndObject();
  j->EndArray();
  j->Key("serviceProvider");
  Reference(j, "Organization", e.facility->organization_id, e.facility->name);
  Emit(Kind::kEncounter);
}

void RecordWriter::WriteCondition(const EncounterCtx& e, const ConditionRec& c) {
  bool resolved = c.abatement != 0 && c.abatement <= person_->end;
  Begin("Condition", c.id, resolved ? c.abatement : c.onset);
  JsonOut* j = &json_;
  j->Key("clinicalStatus");
  SimpleConcept(j, "http://terminology.hl7.org/CodeSystem/condition-clinical",
                resolved ? "resolved" : "active");
  j->Key("verificationStatus");
  SimpleConcept(j, "http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed");
  j->Key("code");
  CodeableConcept(j, kSnomed, c.code);
  SubjectAndEncounter(e);
  j->Key("onsetDateTime");
  DateTime(j, c.onset);
  if (resolved) {
    j->Key("abatementDateTime");
    DateTime(j, c.abatement);
  }
  j->Key("recordedDate");
  DateTime(j, c.onset);
  Emit(Kind::kCondition);
}

// --- Observations and reports ------------------------------------------------------------------

namespace {
void ObservationHead(JsonOut* j, const char* category) {
  j->KeyPlain("status", "final");
  j->Key("category");
  j->BeginArray();
  SimpleConcept(j, kObservationCategory, category, category);
  j->EndArray();
}
}  // namespace

Uuid RecordWriter::WriteQuantityObservation(const EncounterCtx& e, const char* category,
                                            const char* loinc, const char* display, double value,
                                            int decimals, const char* unit) {
  Uuid id = NewUuid(rng_);
  Begin("Observation", id, e.start);
  JsonOut* j = &json_;
  ObservationHead(j, category);
  j->Key("code");
  CodeableConcept(j, kLoinc, Code{loinc, display});
  SubjectAndEncounter(e);
  j->Key("effectiveDateTime");
  DateTime(j, e.start);
  j->Key("issued");
  DateTimeMillis(j, e.start, static_cast<int>(rng_->Below(1000)));
  j->Key("valueQuantity");
  Quantity(j, value, decimals, unit);
  Emit(Kind::kObservation);
  return id;
}

Uuid RecordWriter::WriteConceptObservation(const EncounterCtx& e, const char* category,
                                           const Code& code, const char* answer_system,
                                           const Code& answer) {
  Uuid id = NewUuid(rng_);
  Begin("Observation", id, e.start);
  JsonOut* j = &json_;
  ObservationHead(j, category);
  j->Key("code");
  CodeableConcept(j, kLoinc, code);
  SubjectAndEncounter(e);
  j->Key("effectiveDateTime");
  DateTime(j, e.start);
  j->Key("issued");
  DateTimeMillis(j, e.start, static_cast<int>(rng_->Below(1000)));
  j->Key("valueCodeableConcept");
  CodeableConcept(j, answer_system, answer);
  Emit(Kind::kObservation);
  return id;
}

Uuid RecordWriter::WriteBloodPressure(const EncounterCtx& e, int systolic, int diastolic) {
  Uuid id = NewUuid(rng_);
  Begin("Observation", id, e.start);
  JsonOut* j = &json_;
  ObservationHead(j, "vital-signs");
  j->Key("code");
  CodeableConcept(j, kLoinc, kVitalBloodPressure);
  SubjectAndEncounter(e);
  j->Key("effectiveDateTime");
  DateTime(j, e.start);
  j->Key("issued");
  DateTimeMillis(j, e.start, static_cast<int>(rng_->Below(1000)));
  j->Key("component");
  j->BeginArray();
  for (int c = 0; c < 2; c++) {
    j->BeginObject();
    j->Key("code");
    CodeableConcept(j, kLoinc, c == 0 ? kVitalDiastolic : kVitalSystolic);
    j->Key("valueQuantity");
    Quantity(j, c == 0 ? diastolic : systolic, 0, "mm[Hg]");
    j->EndObject();
  }
  j->EndArray();
  Emit(Kind::kObservation);
  return id;
}

void RecordWriter::WriteDiagnosticReport(const EncounterCtx& e, const Code& panel,
                                         const Uuid* results, const char* const* displays,
                                         size_t n) {
  Uuid id = NewUuid(rng_);
  Begin("DiagnosticReport", id, e.start);
  JsonOut* j = &json_;
  j->KeyPlain("status", "final");
  j->Key("category");
  j->BeginArray();
  SimpleConcept(j, "http://terminology.hl7.org/CodeSystem/v2-0074", "LAB", "Laboratory");
  j->EndArray();
  j->Key("code");
  CodeableConcept(j, kLoinc, panel);
  SubjectAndEncounter(e);
  j->Key("effectiveDateTime");
  DateTime(j, e.start);
  j->Key("issued");
  DateTimeMillis(j, e.start, static_cast<int>(rng_->Below(1000)));
  j->Key("performer");
  j->BeginArray();
  Reference(j, "Practitioner", e.facility->practitioner_id, e.facility->practitioner_display);
  j->EndArray();
  j->Key("result");
  j->BeginArray();
  for (size_t i = 0; i < n; i++) Reference(j, "Observation", results[i], displays[i]);
  j->EndArray();
  Emit(Kind::kDiagnosticReport);
}

// --- Procedure, Immunization, MedicationRequest ------------------------------------------------

Uuid RecordWriter::WriteProcedure(EncounterCtx* e, const Code& code, const ConditionRec* reason,
                                  int64_t net_cents) {
  Uuid id = NewUuid(rng_);
  int64_t start = e->start;
  int64_t end =
      std::min(e->end, start + int64_t{15} * 60 + static_cast<int64_t>(rng_->Below(45)) * 60);
  Begin("Procedure", id, end);
  JsonOut* j = &json_;
  j->KeyPlain("status", "completed");
  j->Key("code");
  CodeableConcept(j, kSnomed, code);
  SubjectAndEncounter(*e);
  j->Key("performedPeriod");
  Period(j, start, end);
  if (reason != nullptr) {
    j->Key("reasonReference");
    j->BeginArray();
    Reference(j, "Condition", reason->id, reason->code.display);
    j->EndArray();
  }
  Emit(Kind::kProcedure);
  e->lines.push_back({ClaimLine::kProcedure, kSnomed, code, id, net_cents});
  return id;
}

void RecordWriter::WriteImmunization(EncounterCtx* e, const Code& cvx) {
  Uuid id = NewUuid(rng_);
  Begin("Immunization", id, e->start);
  JsonOut* j = &json_;
  j->KeyPlain("status", "completed");
  j->Key("vaccineCode");
  CodeableConcept(j, kCvx, cvx);
  SubjectAndEncounter(*e, "patient");
  j->Key("occurrenceDateTime");
  DateTime(j, e->start);
  j->KeyBool("primarySource", true);
  Emit(Kind::kImmunization);
  e->lines.push_back({ClaimLine::kImmunization, kCvx, cvx, id, 14052});
}

void RecordWriter::WriteMedicationRequest(const EncounterCtx& e, const Code& med,
                                          const ConditionRec* reason, bool active) {
  Uuid id = NewUuid(rng_);
  Begin("MedicationRequest", id, e.start);
  JsonOut* j = &json_;
  j->KeyPlain("status", active ? "active" : "stopped");
  j->KeyPlain("intent", "order");
  j->Key("medicationCodeableConcept");
  CodeableConcept(j, kRxNorm, med);
  SubjectAndEncounter(e);
  j->Key("authoredOn");
  DateTime(j, e.start);
  j->Key("requester");
  Reference(j, "Practitioner", e.facility->practitioner_id, e.facility->practitioner_display);
  if (reason != nullptr) {
    j->Key("reasonReference");
    j->BeginArray();
    Reference(j, "Condition", reason->id);
    j->EndArray();
  }
  Emit(Kind::kMedicationRequest);

  // The pharmacy claim for it.
  Uuid claim_id = NewUuid(rng_);
  BeginClaim(claim_id, e, "pharmacy");
  j->Key("prescription");
  Reference(j, "MedicationRequest", id);
  j->Key("insurance");
  j->BeginArray();
  j->BeginObject();
  j->KeyInt("sequence", 1);
  j->KeyBool("focal", true);
  j->Key("coverage");
  j->BeginObject();
  j->KeyString("display", person_->PayerAt(e.start).name);
  j->EndObject();
  j->EndObject();
  j->EndArray();
  j->Key("item");
  j->BeginArray();
  j->BeginObject();
  j->KeyInt("sequence", 1);
  j->Key("productOrService");
  CodeableConcept(j, kRxNorm, med);
  j->Key("encounter");
  j->BeginArray();
  Reference(j, "Encounter", e.id);
  j->EndArray();
  j->EndObject();
  j->EndArray();
  j->Key("total");
  Money(j, rng_->Range(200, 60000));
  Emit(Kind::kClaim);
}

// --- CarePlan, CareTeam, AllergyIntolerance ----------------------------------------------------

void RecordWriter::WriteCarePlanAndTeam(const EncounterCtx& e, const CarePlanDef& plan,
                                        const ConditionRec& reason, int64_t end) {
  bool finished = end != 0 && end <= person_->end;
  JsonOut* j = &json_;
  const Facility& f = *e.facility;

  Begin("CareTeam", reason.care_team_id, finished ? end : e.start);
  j->KeyPlain("status", finished ? "inactive" : "active");
  SubjectAndEncounter(e);
  j->Key("period");
  Period(j, e.start, finished ? end : -1);
  j->Key("participant");
  j->BeginArray();
  struct Member {
    Code role;
    const char* type;
    const Uuid* id;
    std::string_view display;
  } members[3] = {
      {{"116153009", "Patient"}, "Patient", &person_->id, person_->display},
      {{"223366009", "Healthcare professional (occupation)"},
       "Practitioner",
       &f.practitioner_id,
       f.practitioner_display},
      {{"224891009", "Healthcare services (qualifier value)"},
       "Organization",
       &f.organization_id,
       f.name},
  };
  for (const Member& m : members) {
    j->BeginObject();
    j->Key("role");
    j->BeginArray();
    CodeableConcept(j, kSnomed, m.role);
    j->EndArray();
    j->Key("member");
    Reference(j, m.type, *m.id, m.display);
    j->EndObject();
  }
  j->EndArray();
  j->Key("reasonCode");
  j->BeginArray();
  CodeableConcept(j, kSnomed, reason.code);
  j->EndArray();
  j->Key("managingOrganization");
  j->BeginArray();
  Reference(j, "Organization", f.organization_id, f.name);
  j->EndArray();
  Emit(Kind::kCareTeam);

  Begin("CarePlan", reason.care_plan_id, finished ? end : e.start);
  j->Key("text");
  j->BeginObject();
  j->KeyPlain("status", "generated");
  j->Key("div");
  j->BeginString();
  j->AppendRaw("<div xmlns=\\\"http://www.w3.org/1999/xhtml\\\">Care Plan for ");
  j->AppendEscapedPart(plan.category.display);
  j->AppendRaw(".<br/>Activities: <ul>");
  for (size_t a = 0; a < plan.activity_count; a++) {
    j->AppendRaw("<li>");
    j->AppendEscapedPart(plan.activities[a].display);
    j->AppendRaw("</li>");
  }
  j->AppendRaw("</ul><br/>Care plan is meant to treat ");
  j->AppendEscapedPart(reason.code.display);
  j->AppendRaw(".</div>");
  j->EndString();
  j->EndObject();
  j->KeyPlain("status", finished ? "completed" : "active");
  j->KeyPlain("intent", "order");
  j->Key("category");
  j->BeginArray();
  CodeableConcept(j, kSnomed, plan.category);
  j->EndArray();
  SubjectAndEncounter(e);
  j->Key("period");
  Period(j, e.start, finished ? end : -1);
  j->Key("careTeam");
  j->BeginArray();
  Reference(j, "CareTeam", reason.care_team_id);
  j->EndArray();
  j->Key("addresses");
  j->BeginArray();
  Reference(j, "Condition", reason.id);
  j->EndArray();
  j->Key("activity");
  j->BeginArray();
  for (size_t a = 0; a < plan.activity_count; a++) {
    j->BeginObject();
    j->Key("detail");
    j->BeginObject();
    j->Key("code");
    CodeableConcept(j, kSnomed, plan.activities[a]);
    j->KeyPlain("status", finished ? "completed" : "in-progress");
    j->Key("location");
    Reference(j, "Location", f.location_id, f.name);
    j->EndObject();
    j->EndObject();
  }
  j->EndArray();
  Emit(Kind::kCarePlan);
}

void RecordWriter::WriteAllergy(const EncounterCtx& e, const AllergyDef& allergy) {
  Uuid id = NewUuid(rng_);
  Begin("AllergyIntolerance", id, e.start);
  JsonOut* j = &json_;
  j->Key("clinicalStatus");
  SimpleConcept(j, "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "active");
  j->Key("verificationStatus");
  SimpleConcept(j, "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
                "confirmed");
  j->KeyPlain("type", "allergy");
  j->Key("category");
  j->BeginArray();
  j->Plain(allergy.category);
  j->EndArray();
  j->KeyPlain("criticality", allergy.criticality);
  j->Key("code");
  CodeableConcept(j, kSnomed, allergy.code);
  j->Key("patient");
  Reference(j, "Patient", person_->id);
  j->Key("recordedDate");
  DateTime(j, e.start);
  Emit(Kind::kAllergyIntolerance);
}

// --- ImagingStudy, Device, DocumentReference ---------------------------------------------------

void RecordWriter::WriteImagingStudy(const EncounterCtx& e, const char* body_site,
                                     const char* body_site_display) {
  Uuid id = NewUuid(rng_);
  Begin("ImagingStudy", id, e.start);
  JsonOut* j = &json_;
  // DICOM UIDs under the 1.2.840.99999999 example root, from the patient's stream.
  uint64_t study = rng_->Below(100000000), series = rng_->Below(100000000);
  int instances = rng_->Chance(0.8) ? 1 : 2;
  j->Key("identifier");
  j->BeginArray();
  j->BeginObject();
  j->KeyPlain("use", "official");
  j->KeyPlain("system", "urn:ietf:rfc:3986");
  j->Key("value");
  j->BeginString();
  j->AppendRaw("urn:oid:1.2.840.99999999.");
  j->AppendIntPart(static_cast<int64_t>(study));
  j->AppendRaw('.');
  j->AppendIntPart(e.start);
  j->EndString();
  j->EndObject();
  j->EndArray();
  j->KeyPlain("status", "available");
  SubjectAndEncounter(e);
  j->Key("started");
  DateTime(j, e.start);
  j->KeyInt("numberOfSeries", 1);
  j->KeyInt("numberOfInstances", instances);
  j->Key("location");
  Reference(j, "Location", e.facility->location_id);
  j->Key("series");
  j->BeginArray();
  j->BeginObject();
  j->Key("uid");
  j->BeginString();
  j->AppendRaw("1.2.840.99999999.1.");
  j->AppendIntPart(static_cast<int64_t>(series));
  j->AppendRaw('.');
  j->AppendIntPart(e.start);
  j->EndString();
  j->KeyInt("number", 1);
  j->Key("modality");
  Coding(j, kDicom, kModalityDigitalRadiography.code, kModalityDigitalRadiography.display);
  j->KeyInt("numberOfInstances", instances);
  j->Key("bodySite");
  Coding(j, kSnomed, body_site, body_site_display);
  j->Key("started");
  DateTime(j, e.start);
  j->Key("instance");
  j->BeginArray();
  for (int i = 1; i <= instances; i++) {
    j->BeginObject();
    j->Key("uid");
    j->BeginString();
    j->AppendRaw("1.2.840.99999999.1.1.");
    j->AppendIntPart(static_cast<int64_t>(series));
    j->AppendRaw('.');
    j->AppendIntPart(i);
    j->EndString();
    j->Key("sopClass");
    Coding(j, "urn:ietf:rfc:3986", kSopClassDigitalXray, "");
    j->KeyInt("number", i);
    j->Key("title");
    j->BeginString();
    j->AppendRaw("Image of ");
    j->AppendEscapedPart(body_site_display);
    j->EndString();
    j->EndObject();
  }
  j->EndArray();
  j->EndObject();
  j->EndArray();
  Emit(Kind::kImagingStudy);
}

void RecordWriter::WriteDevice(const EncounterCtx& e, const DeviceDef& device) {
  Uuid id = NewUuid(rng_);
  Begin("Device", id, e.start);
  JsonOut* j = &json_;
  std::string di, lot, serial;
  for (int i = 0; i < 14; i++) di.push_back(static_cast<char>('0' + rng_->Below(10)));
  for (int i = 0; i < 12; i++) lot.push_back(static_cast<char>('0' + rng_->Below(10)));
  for (int i = 0; i < 14; i++) serial.push_back(static_cast<char>('0' + rng_->Below(10)));
  int64_t made = e.start - rng_->Range(30, 400) * kSecondsPerDay;
  int64_t expires = e.start + device.lifetime_years * kSecondsPerYear;
  // GS1 human-readable form: (01) device id, (11) made, (17) expires, (10) lot, (21) serial.
  scratch_.clear();
  scratch_ += "(01)";
  scratch_ += di;
  for (int part = 0; part < 2; part++) {
    scratch_ += part == 0 ? "(11)" : "(17)";
    std::string date;
    AppendLocalDate(&date, part == 0 ? made : expires);  // YYYY-MM-DD -> YYMMDD
    scratch_.append(date, 2, 2);
    scratch_.append(date, 5, 2);
    scratch_.append(date, 8, 2);
  }
  scratch_ += "(10)";
  scratch_ += lot;
  scratch_ += "(21)";
  scratch_ += serial;
  j->Key("udiCarrier");
  j->BeginArray();
  j->BeginObject();
  j->KeyPlain("deviceIdentifier", di);
  j->KeyPlain("carrierHRF", scratch_);
  j->EndObject();
  j->EndArray();
  j->KeyPlain("status", expires < person_->end ? "inactive" : "active");
  j->KeyPlain("distinctIdentifier", di);
  j->Key("manufactureDate");
  DateTime(j, made);
  j->Key("expirationDate");
  DateTime(j, expires);
  j->KeyPlain("lotNumber", lot);
  j->KeyPlain("serialNumber", serial);
  j->Key("deviceName");
  j->BeginArray();
  j->BeginObject();
  j->KeyString("name", device.type.display);
  j->KeyPlain("type", "user-friendly-name");
  j->EndObject();
  j->EndArray();
  j->Key("type");
  CodeableConcept(j, kSnomed, device.type);
  j->Key("patient");
  Reference(j, "Patient", person_->id);
  Emit(Kind::kDevice);
}

void RecordWriter::WriteDocument(const EncounterCtx& e, std::string_view note) {
  Uuid id = NewUuid(rng_);
  const Code& type = kEncounterTypes[e.kind].act_class[0] == 'E'          ? kNoteTypes[3]
                     : kEncounterTypes[e.kind].act_class[0] == 'I'        ? kNoteTypes[2]
                     : e.kind == kEncConsultation                         ? kNoteTypes[4]
                     : e.kind == kEncWellAdult || e.kind == kEncWellChild ? kNoteTypes[0]
                                                                          : kNoteTypes[1];
  Begin("DocumentReference", id, e.end);
  JsonOut* j = &json_;
  j->Key("identifier");
  j->BeginArray();
  j->BeginObject();
  j->KeyPlain("system", "urn:ietf:rfc:3986");
  j->Key("value");
  j->BeginString();
  j->AppendRaw("urn:uuid:");
  j->AppendRaw(id.view());
  j->EndString();
  j->EndObject();
  j->EndArray();
  j->KeyPlain("status", "current");
  j->Key("type");
  CodeableConcept(j, kLoinc, type);
  j->Key("category");
  j->BeginArray();
  SimpleConcept(j, "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category",
                "clinical-note", "Clinical Note");
  j->EndArray();
  j->Key("subject");
  Reference(j, "Patient", person_->id);
  j->Key("date");
  j->BeginString();
  AppendUtcInstant(j->mutable_buffer(), e.end, static_cast<int>(rng_->Below(1000)));
  j->EndString();
  j->Key("author");
  j->BeginArray();
  Reference(j, "Practitioner", e.facility->practitioner_id, e.facility->practitioner_display);
  Reference(j, "Organization", e.facility->organization_id, e.facility->name);
  j->EndArray();
  j->Key("custodian");
  Reference(j, "Organization", e.facility->organization_id, e.facility->name);
  j->Key("content");
  j->BeginArray();
  j->BeginObject();
  j->Key("attachment");
  j->BeginObject();
  j->KeyPlain("contentType", "text/plain");
  j->KeyPlain("language", "en-US");
  // Inline, so every attachment is dereferenceable (the IG's rule for attachment URLs
  // applies when `data` is absent): size and hash (base64 SHA-1) are of the decoded bytes.
  j->Key("data");
  j->BeginString();
  AppendBase64(j->mutable_buffer(), note);
  j->EndString();
  j->KeyInt("size", static_cast<int64_t>(note.size()));
  const std::array<uint8_t, 20> sha1 = Sha1(note);
  j->Key("hash");
  j->BeginString();
  AppendBase64(j->mutable_buffer(),
               std::string_view(reinterpret_cast<const char*>(sha1.data()), sha1.size()));
  j->EndString();
  j->KeyString("title", type.display);
  j->Key("creation");
  DateTime(j, e.end);
  j->EndObject();
  j->Key("format");
  Coding(j, "http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode",
         "urn:ihe:iti:xds:2017:mimeTypeSufficient", "mimeType Sufficient");
  j->EndObject();
  j->EndArray();
  j->Key("context");
  j->BeginObject();
  j->Key("encounter");
  j->BeginArray();
  Reference(j, "Encounter", e.id);
  j->EndArray();
  j->Key("period");
  Period(j, e.start, e.end);
  j->EndObject();
  Emit(Kind::kDocumentReference);
}

void RecordWriter::WriteProvenance() {
  if (targets_.empty()) return;
  const Uuid id = NewUuid(rng_);
  const int64_t recorded = kSimulationEnd - rng_->Range(0, kSecondsPerDay);
  const int millis = static_cast<int>(rng_->Below(1000));
  JsonOut* j = &json_;
  j->Clear();
  BeginResource(j, "Provenance", id, recorded, millis);
  j->Key("target");
  j->BeginArray();
  for (const auto& [type, target] : targets_) Reference(j, type, target);
  j->EndArray();
  j->Key("recorded");
  j->BeginString();
  AppendUtcInstant(j->mutable_buffer(), recorded, millis);
  j->EndString();
  const Facility& f = person_->primary;
  j->Key("agent");
  j->BeginArray();
  for (const char* role : {"author", "transmitter"}) {
    j->BeginObject();
    j->Key("type");
    j->BeginObject();
    j->Key("coding");
    j->BeginArray();
    Coding(j, "http://terminology.hl7.org/CodeSystem/provenance-participant-type", role,
           role[0] == 'a' ? "Author" : "Transmitter");
    j->EndArray();
    j->KeyPlain("text", role[0] == 'a' ? "Author" : "Transmitter");
    j->EndObject();
    j->Key("who");
    Reference(j, "Practitioner", f.practitioner_id, f.practitioner_display);
    j->Key("onBehalfOf");
    Reference(j, "Organization", f.organization_id, f.name);
    j->EndObject();
  }
  j->EndArray();
  Emit(Kind::kProvenance);
}

// --- Claim and ExplanationOfBenefit ------------------------------------------------------------

void RecordWriter::WriteClaimAndEob(const EncounterCtx& e) {
  const EncounterType& type = kEncounterTypes[e.kind];
  const Facility& f = *e.facility;
  const char* payer = person_->PayerAt(e.start).name;
  JsonOut* j = &json_;
  Uuid claim_id = NewUuid(rng_);
  int64_t total = EncounterBaseCents(e.kind);
  for (const ClaimLine& l : e.lines) total += l.net_cents;

  // Sequence numbers per kind of line, in the order the lines were added.
  int info_seq = 0, diag_seq = 0, proc_seq = 0;

  BeginClaim(claim_id, e, "institutional");
  static const struct {
    ClaimLine::Type type;
    const char* key;
    const char* ref_key;
    const char* ref_type;
  } kSections[] = {
      {ClaimLine::kImmunization, "supportingInfo", "valueReference", "Immunization"},
      {ClaimLine::kDiagnosis, "diagnosis", "diagnosisReference", "Condition"},
      {ClaimLine::kProcedure, "procedure", "procedureReference", "Procedure"},
  };
  for (const auto& section : kSections) {
    int seq = 0;
    for (const ClaimLine& l : e.lines) {
      if (l.type != section.type) continue;
      if (seq == 0) {
        j->Key(section.key);
        j->BeginArray();
      }
      j->BeginObject();
      j->KeyInt("sequence", ++seq);
      if (section.type == ClaimLine::kImmunization) {
        j->Key("category");
        SimpleConcept(j, "http://terminology.hl7.org/CodeSystem/claiminformationcategory", "info");
      }
      j->Key(section.ref_key);
      Reference(j, section.ref_type, l.ref);
      j->EndObject();
    }
    if (seq > 0) j->EndArray();
  }
  j->Key("insurance");
  j->BeginArray();
  j->BeginObject();
  j->KeyInt("sequence", 1);
  j->KeyBool("focal", true);
  j->Key("coverage");
  j->BeginObject();
  j->KeyString("display", payer);
  j->EndObject();
  j->EndObject();
  j->EndArray();
  j->Key("item");
  j->BeginArray();
  j->BeginObject();
  j->KeyInt("sequence", 1);
  j->Key("productOrService");
  CodeableConcept(j, kSnomed, type.type);
  j->Key("encounter");
  j->BeginArray();
  Reference(j, "Encounter", e.id);
  j->EndArray();
  j->EndObject();
  int item = 1;
  for (const ClaimLine& l : e.lines) {
    j->BeginObject();
    j->KeyInt("sequence", ++item);
    const char* seq_key = l.type == ClaimLine::kImmunization ? "informationSequence"
                          : l.type == ClaimLine::kDiagnosis  ? "diagnosisSequence"
                                                             : "procedureSequence";
    int* counter = l.type == ClaimLine::kImmunization ? &info_seq
                   : l.type == ClaimLine::kDiagnosis  ? &diag_seq
                                                      : &proc_seq;
    j->Key(seq_key);
    j->BeginArray();
    j->Int(++*counter);
    j->EndArray();
    j->Key("productOrService");
    CodeableConcept(j, l.system, l.code);
    if (l.net_cents > 0) {
      j->Key("net");
      Money(j, l.net_cents);
    }
    j->EndObject();
  }
  j->EndArray();
  j->Key("total");
  Money(j, total);
  Emit(Kind::kClaim);

  // The payer's answer.
  Begin("ExplanationOfBenefit", NewUuid(rng_), e.end + 30 * kSecondsPerDay);
  j->Key("contained");
  j->BeginArray();
  j->BeginObject();
  j->KeyPlain("resourceType", "ServiceRequest");
  j->KeyPlain("id", "referral");
  j->KeyPlain("status", "completed");
  j->KeyPlain("intent", "order");
  j->Key("subject");
  Reference(j, "Patient", person_->id);
  j->Key("requester");
  Reference(j, "Practitioner", f.practitioner_id);
  j->Key("performer");
  j->BeginArray();
  Reference(j, "Practitioner", f.practitioner_id);
  j->EndArray();
  j->EndObject();
  j->BeginObject();
  j->KeyPlain("resourceType", "Coverage");
  j->KeyPlain("id", "coverage");
  j->KeyPlain("status", "active");
  j->Key("type");
  j->BeginObject();
  j->KeyString("text", payer);
  j->EndObject();
  j->Key("beneficiary");
  Reference(j, "Patient", person_->id);
  j->Key("payor");
  j->BeginArray();
  j->BeginObject();
  j->KeyString("display", payer);
  j->EndObject();
  j->EndArray();
  j->EndObject();
  j->EndArray();
  j->Key("identifier");
  j->BeginArray();
  j->BeginObject();
  j->KeyPlain("system", "https://bluebutton.cms.gov/resources/variables/clm_id");
  j->KeyPlain("value", claim_id.view());
  j->EndObject();
  j->BeginObject();
  j->KeyPlain("system", "https://bluebutton.cms.gov/resources/identifier/claim-group");
  j->KeyPlain("value", "99999999999");
  j->EndObject();
  j->EndArray();
  j->KeyPlain("status", "active");
  j->Key("type");
  SimpleConcept(j, kClaimType, "institutional");
  j->KeyPlain("use", "claim");
  j->Key("patient");
  Reference(j, "Patient", person_->id);
  j->Key("billablePeriod");
  Period(j, e.start, e.end);
  j->Key("created");
  DateTime(j, e.end);
  j->Key("insurer");
  j->BeginObject();
  j->KeyString("display", payer);
  j->EndObject();
  j->Key("provider");
  Reference(j, "Practitioner", f.practitioner_id);
  j->Key("referral");
  j->BeginObject();
  j->KeyPlain("reference", "#referral");
  j->EndObject();
  j->Key("claim");
  Reference(j, "Claim", claim_id);
  j->KeyPlain("outcome", "complete");
  j->Key("careTeam");
  j->BeginArray();
  j->BeginObject();
  j->KeyInt("sequence", 1);
  j->Key("provider");
  Reference(j, "Practitioner", f.practitioner_id);
  j->Key("role");
  SimpleConcept(j, "http://terminology.hl7.org/CodeSystem/claimcareteamrole", "primary",
                "Primary Care Practitioner");
  j->EndObject();
  j->EndArray();
  int diag = 0;
  for (const ClaimLine& l : e.lines) {
    if (l.type != ClaimLine::kDiagnosis) continue;
    if (diag == 0) {
      j->Key("diagnosis");
      j->BeginArray();
    }
    j->BeginObject();
    j->KeyInt("sequence", ++diag);
    j->Key("diagnosisReference");
    Reference(j, "Condition", l.ref);
    j->Key("type");
    j->BeginArray();
    SimpleConcept(j, "http://terminology.hl7.org/CodeSystem/ex-diagnosistype", "principal");
    j->EndArray();
    j->EndObject();
  }
  if (diag > 0) j->EndArray();
  j->Key("insurance");
  j->BeginArray();
  j->BeginObject();
  j->KeyBool("focal", true);
  j->Key("coverage");
  j->BeginObject();
  j->KeyPlain("reference", "#coverage");
  j->KeyString("display", payer);
  j->EndObject();
  j->EndObject();
  j->EndArray();

  j->Key("item");
  j->BeginArray();
  j->BeginObject();
  j->KeyInt("sequence", 1);
  EobCategory(j);
  j->Key("productOrService");
  CodeableConcept(j, kSnomed, type.type);
  j->Key("servicedPeriod");
  Period(j, e.start, e.end);
  EobLocation(j, e.kind);
  j->Key("encounter");
  j->BeginArray();
  Reference(j, "Encounter", e.id);
  j->EndArray();
  j->EndObject();
  item = 1;
  info_seq = diag_seq = proc_seq = 0;
  int64_t paid = 0;
  bool uninsured = std::strcmp(payer, "NO_INSURANCE") == 0;  // the patient pays everything
  for (const ClaimLine& l : e.lines) {
    j->BeginObject();
    j->KeyInt("sequence", ++item);
    const char* seq_key = l.type == ClaimLine::kImmunization ? "informationSequence"
                          : l.type == ClaimLine::kDiagnosis  ? "diagnosisSequence"
                                                             : "procedureSequence";
    int* counter = l.type == ClaimLine::kImmunization ? &info_seq
                   : l.type == ClaimLine::kDiagnosis  ? &diag_seq
                                                      : &proc_seq;
    if (l.type != ClaimLine::kProcedure) {  // Synthea lists procedures without a sequence link
      j->Key(seq_key);
      j->BeginArray();
      j->Int(++*counter);
      j->EndArray();
    }
    EobCategory(j);
    j->Key("productOrService");
    CodeableConcept(j, l.system, l.code);
    j->Key("servicedPeriod");
    Period(j, e.start, e.end);
    EobLocation(j, e.kind);
    if (l.net_cents > 0) {
      int64_t coinsurance = uninsured ? l.net_cents : l.net_cents / 5;
      int64_t payment = l.net_cents - coinsurance;
      paid += payment;
      const int64_t amounts[5] = {coinsurance, payment, l.net_cents, l.net_cents, 0};
      j->Key("net");
      Money(j, l.net_cents);
      j->Key("adjudication");
      j->BeginArray();
      for (int a = 0; a < 6; a++) {
        j->BeginObject();
        j->Key("category");
        SimpleConcept(j, "https://bluebutton.cms.gov/resources/codesystem/adjudication",
                      kAdjudications[a].code, kAdjudications[a].display);
        if (a < 5) {
          j->Key("amount");
          Money(j, amounts[a]);
        }
        j->EndObject();
      }
      j->EndArray();
    }
    j->EndObject();
  }
  j->EndArray();
  j->Key("total");
  j->BeginArray();
  j->BeginObject();
  j->Key("category");
  CodeableConcept(j, "http://terminology.hl7.org/CodeSystem/adjudication",
                  Code{"submitted", "Submitted Amount"});
  j->Key("amount");
  Money(j, total);
  j->EndObject();
  j->EndArray();
  j->Key("payment");
  j->BeginObject();
  j->Key("amount");
  Money(j, paid);
  j->EndObject();
  Emit(Kind::kExplanationOfBenefit);
}

}  // namespace synth
}  // namespace fhirbulk
