#include "fhir/resource_index.h"

#include <dirent.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <algorithm>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "fhir/resource_types.h"
#include "fhir/search_params.h"
#include "util/fhir_time.h"

namespace fhirbulk {
namespace {

using Strings = std::vector<std::string>;

constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

rapidjson::Document Parse(const std::string& json) {
  rapidjson::Document doc;
  doc.Parse(json.c_str());
  EXPECT_FALSE(doc.HasParseError()) << json;
  return doc;
}

ResourceIndex Index(const std::string& json) {
  rapidjson::Document doc = Parse(json);
  ResourceIndex index;
  Status s = IndexResource(doc, &index);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return index;
}

Strings Patients(const std::string& json) { return Index(json).patients; }

bool Has(const Strings& values, const std::string& value) {
  return std::find(values.begin(), values.end(), value) != values.end();
}

// The values of `values` that start with `prefix`, e.g. all "code=" tokens.
Strings WithPrefix(const Strings& values, const std::string& prefix) {
  Strings out;
  for (const std::string& v : values) {
    if (v.compare(0, prefix.size(), prefix) == 0) out.push_back(v);
  }
  return out;
}

std::vector<DateIndexValue> DatesOf(const ResourceIndex& index, const std::string& param) {
  std::vector<DateIndexValue> out;
  for (const DateIndexValue& d : index.dates) {
    if (d.param == param) out.push_back(d);
  }
  return out;
}

int64_t Instant(const char* text) { return *ParseInstant(text); }

// --- Patient compartment: one case per kind of linking element ------------------------------

TEST(ResourceIndexTest, CompartmentViaSubject) {
  EXPECT_EQ(Patients(R"({"resourceType":"Observation","id":"o1","status":"final",
                         "subject":{"reference":"Patient/p1"}})"),
            Strings{"p1"});
  EXPECT_EQ(
      Patients(R"({"resourceType":"MedicationRequest","subject":{"reference":"Patient/p1"}})"),
      Strings{"p1"});
  // Encounter links through the `patient` parameter, whose element is Encounter.subject.
  EXPECT_EQ(Patients(R"({"resourceType":"Encounter","subject":{"reference":"Patient/p1"}})"),
            Strings{"p1"});
  // A subject that is a Group does not put the resource into any patient's compartment.
  EXPECT_EQ(Patients(R"({"resourceType":"Observation","subject":{"reference":"Group/g1"}})"),
            Strings{});
}

TEST(ResourceIndexTest, CompartmentViaPatientElement) {
  EXPECT_EQ(Patients(R"({"resourceType":"Immunization","patient":{"reference":"Patient/p1"}})"),
            Strings{"p1"});
  EXPECT_EQ(Patients(R"({"resourceType":"Claim","patient":{"reference":"Patient/p1"}})"),
            Strings{"p1"});
}

TEST(ResourceIndexTest, CompartmentViaPerformerArrayOfReferences) {
  EXPECT_EQ(Patients(R"({"resourceType":"Observation","subject":{"reference":"Patient/p1"},
                         "performer":[{"reference":"Practitioner/d1"},
                                      {"reference":"Patient/p2"}]})"),
            (Strings{"p1", "p2"}));
}

TEST(ResourceIndexTest, CompartmentViaPerformerActorBackboneElement) {
  EXPECT_EQ(Patients(R"({"resourceType":"Procedure","subject":{"reference":"Patient/p1"},
                         "performer":[{"actor":{"reference":"Practitioner/d1"}},
                                      {"function":{"text":"self"},
                                       "actor":{"reference":"Patient/p3"}}]})"),
            (Strings{"p1", "p3"}));
  EXPECT_EQ(Patients(R"({"resourceType":"CarePlan","subject":{"reference":"Group/g1"},
                         "activity":[{"detail":{"performer":[{"reference":"Patient/p8"}]}},
                                     {"detail":{"status":"in-progress"}}]})"),
            Strings{"p8"});
}

TEST(ResourceIndexTest, CompartmentViaParticipantMember) {
  EXPECT_EQ(Patients(R"({"resourceType":"CareTeam","subject":{"reference":"Group/g1"},
                         "participant":[{"member":{"reference":"Patient/p1"}},
                                        {"member":{"reference":"Practitioner/d1"}}]})"),
            Strings{"p1"});
}

TEST(ResourceIndexTest, CompartmentViaPayeeParty) {
  EXPECT_EQ(Patients(R"({"resourceType":"Claim","patient":{"reference":"Patient/p1"},
                         "payee":{"type":{"text":"subscriber"},
                                  "party":{"reference":"Patient/p2"}}})"),
            (Strings{"p1", "p2"}));
  EXPECT_EQ(Patients(R"({"resourceType":"ExplanationOfBenefit",
                         "patient":{"reference":"Patient/p1"},
                         "payee":{"party":{"reference":"Patient/p2"}}})"),
            (Strings{"p1", "p2"}));
}

TEST(ResourceIndexTest, CompartmentViaAsserterAndRecorder) {
  EXPECT_EQ(Patients(R"({"resourceType":"AllergyIntolerance","patient":{"reference":"Patient/p1"},
                         "recorder":{"reference":"Patient/p4"},
                         "asserter":{"reference":"Patient/p5"}})"),
            (Strings{"p1", "p4", "p5"}));
  EXPECT_EQ(Patients(R"({"resourceType":"Condition","subject":{"reference":"Patient/p1"},
                         "asserter":{"reference":"Patient/p6"}})"),
            (Strings{"p1", "p6"}));
}

TEST(ResourceIndexTest, CompartmentViaAuthor) {
  EXPECT_EQ(Patients(R"({"resourceType":"DocumentReference","status":"current",
                         "subject":{"reference":"Patient/p1"},
                         "author":[{"reference":"Practitioner/d1"},{"reference":"Patient/p7"}]})"),
            (Strings{"p1", "p7"}));
}

TEST(ResourceIndexTest, CompartmentViaOtherLinkingElements) {
  EXPECT_EQ(Patients(R"({"resourceType":"Provenance","target":[{"reference":"Observation/o1"},
                         {"reference":"Patient/p1"}]})"),
            Strings{"p1"});
  EXPECT_EQ(Patients(R"({"resourceType":"AuditEvent","agent":[{"who":{"reference":"Patient/p1"}}],
                         "entity":[{"what":{"reference":"Patient/p2"}}]})"),
            (Strings{"p1", "p2"}));
  EXPECT_EQ(Patients(R"({"resourceType":"Coverage","beneficiary":{"reference":"Patient/p1"},
                         "payor":[{"reference":"Organization/o1"},{"reference":"Patient/p2"}]})"),
            (Strings{"p1", "p2"}));
  EXPECT_EQ(Patients(R"({"resourceType":"Appointment","participant":[
                         {"actor":{"reference":"Patient/p1"}},
                         {"actor":{"reference":"Location/l1"}}]})"),
            Strings{"p1"});
  EXPECT_EQ(Patients(R"({"resourceType":"Group","type":"person","actual":true,
                         "member":[{"entity":{"reference":"Patient/p2"}},
                                   {"entity":{"reference":"Patient/p1"}}]})"),
            (Strings{"p1", "p2"}));
  // SupplyRequest's R4 `subject` parameter is SupplyRequest.deliverTo.
  EXPECT_EQ(Patients(R"({"resourceType":"SupplyRequest","deliverTo":{"reference":"Patient/p1"}})"),
            Strings{"p1"});
}

TEST(ResourceIndexTest, PatientIsInItsOwnCompartmentAndItsLinkTargets) {
  EXPECT_EQ(Patients(R"({"resourceType":"Patient","id":"p1"})"), Strings{"p1"});
  EXPECT_EQ(Patients(R"({"resourceType":"Patient","id":"p1","link":[
                         {"other":{"reference":"Patient/p9"},"type":"seealso"},
                         {"other":{"reference":"RelatedPerson/r1"},"type":"seealso"}]})"),
            (Strings{"p1", "p9"}));
}

TEST(ResourceIndexTest, PractitionerReferencesDoNotCount) {
  // Same id as a patient, but the reference names a Practitioner.
  EXPECT_EQ(Patients(R"({"resourceType":"Observation","subject":{"reference":"Patient/p1"},
                         "performer":[{"reference":"Practitioner/p2"}]})"),
            Strings{"p1"});
  EXPECT_EQ(Patients(R"({"resourceType":"Observation","subject":{"reference":"Device/x"},
                         "performer":[{"reference":"Practitioner/d1"}]})"),
            Strings{});
  // Encounter.participant.individual is not a compartment parameter, even for a Patient.
  EXPECT_EQ(Patients(R"({"resourceType":"Encounter","subject":{"reference":"Patient/p1"},
                         "participant":[{"individual":{"reference":"Patient/p2"}}]})"),
            Strings{"p1"});
}

TEST(ResourceIndexTest, TypesOutsideTheCompartmentHaveNoPatients) {
  EXPECT_EQ(Patients(R"({"resourceType":"Organization","id":"o1",
                         "partOf":{"reference":"Patient/p1"}})"),
            Strings{});
  // Device has a `patient` search parameter but R4 keeps it out of the compartment.
  ResourceIndex device = Index(R"({"resourceType":"Device","patient":{"reference":"Patient/p1"}})");
  EXPECT_EQ(device.patients, Strings{});
  EXPECT_EQ(device.refs, Strings{"patient=Patient/p1"});
  EXPECT_EQ(Patients(R"({"resourceType":"Task","for":{"reference":"Patient/p1"}})"), Strings{});
}

TEST(ResourceIndexTest, OnlyRelativeReferencesCount) {
  EXPECT_EQ(Patients(R"({"resourceType":"Observation","performer":[
                         {"reference":"urn:uuid:6c5d9ca9-54d7-42f5-bfae-a7c19cd217f2"},
                         {"reference":"http://other.example/fhir/Patient/p1"},
                         {"reference":"#contained-patient"},
                         {"identifier":{"system":"urn:mrn","value":"42"}},
                         {"reference":"Patient/"},
                         {"reference":"Patient/bad id"},
                         {"reference":"NotAType/p1"},
                         {"reference":"Patient/p3/_history/2"}]})"),
            Strings{"p3"});
  EXPECT_EQ(Index(R"({"resourceType":"Observation",
                      "subject":{"reference":"Patient/p3/_history/2"}})")
                .refs,
            (Strings{"patient=Patient/p3", "subject=Patient/p3"}));
}

TEST(ResourceIndexTest, ContainedResourcesAreNotIndexed) {
  EXPECT_EQ(Patients(R"({"resourceType":"ExplanationOfBenefit",
                         "contained":[{"resourceType":"ServiceRequest","id":"referral",
                                       "subject":{"reference":"Patient/px"}}],
                         "patient":{"reference":"Patient/p1"}})"),
            Strings{"p1"});
}

TEST(ResourceIndexTest, RelativeReferenceParsing) {
  RelativeReference ref;
  ASSERT_TRUE(ParseRelativeReference("Patient/abc-1.2", &ref));
  EXPECT_EQ(ref.type, "Patient");
  EXPECT_EQ(ref.id, "abc-1.2");
  ASSERT_TRUE(ParseRelativeReference("Observation/o1/_history/7", &ref));
  EXPECT_EQ(ref.id, "o1");
  for (const char* bad :
       {"", "Patient", "Patient/", "/p1", "patient/p1", "Patient/p1/", "Patient/p1/_history/",
        "Patient/p1/x/2", "Patient/p_1", "http://x/Patient/p1", "urn:uuid:1234"}) {
    EXPECT_FALSE(ParseRelativeReference(bad, &ref)) << bad;
  }
  EXPECT_FALSE(ParseRelativeReference("Patient/" + std::string(65, 'a'), &ref));
  EXPECT_TRUE(ParseRelativeReference("Patient/" + std::string(64, 'a'), &ref));
}

// --- Tokens ------------------------------------------------------------------------------------

TEST(ResourceIndexTest, TokensOfACodedObservation) {
  ResourceIndex index = Index(R"({"resourceType":"Observation","status":"final",
      "category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category",
                              "code":"vital-signs"}]}],
      "code":{"coding":[{"system":"http://loinc.org","code":"8302-2","display":"Body Height"},
                        {"code":"local-7"}],
              "text":"Body Height"},
      "subject":{"reference":"Patient/p1"}})");
  EXPECT_EQ(WithPrefix(index.tokens, "code="),
            (Strings{"code=8302-2", "code=http://loinc.org|", "code=http://loinc.org|8302-2",
                     "code=local-7", "code=|local-7"}));
  EXPECT_EQ(WithPrefix(index.tokens, "status="), (Strings{"status=final", "status=|final"}));
  EXPECT_TRUE(
      Has(index.tokens,
          "category=http://terminology.hl7.org/CodeSystem/observation-category|vital-signs"));
  EXPECT_TRUE(Has(index.tokens, "category=vital-signs"));
  EXPECT_TRUE(std::is_sorted(index.tokens.begin(), index.tokens.end()));
}

TEST(ResourceIndexTest, TokensOfIdentifiersAndMeta) {
  ResourceIndex index = Index(R"({"resourceType":"Patient","id":"p1",
      "meta":{"tag":[{"system":"urn:tags","code":"synthetic"}],
              "security":[{"system":"http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
                           "code":"R"}],
              "profile":["http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient|3.1.1"]},
      "identifier":[{"system":"http://hospital.smarthealthit.org","value":"MRN-1"},
                    {"value":"no-system"},
                    {"system":"urn:only-system"}],
      "active":true, "gender":"female"})");
  EXPECT_EQ(WithPrefix(index.tokens, "identifier="),
            (Strings{"identifier=MRN-1", "identifier=http://hospital.smarthealthit.org|",
                     "identifier=http://hospital.smarthealthit.org|MRN-1", "identifier=no-system",
                     "identifier=|no-system"}));
  EXPECT_EQ(WithPrefix(index.tokens, "_tag="),
            (Strings{"_tag=synthetic", "_tag=urn:tags|", "_tag=urn:tags|synthetic"}));
  EXPECT_TRUE(
      Has(index.tokens, "_security=http://terminology.hl7.org/CodeSystem/v3-Confidentiality|R"));
  // A canonical is stored once, verbatim (its "|version" is not a token separator).
  EXPECT_EQ(
      WithPrefix(index.tokens, "_profile="),
      Strings{"_profile=http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient|3.1.1"});
  EXPECT_TRUE(Has(index.tokens, "active=true"));
  EXPECT_TRUE(Has(index.tokens, "gender=female"));
}

TEST(ResourceIndexTest, TokensFollowR4ParameterNames) {
  ResourceIndex encounter = Index(R"({"resourceType":"Encounter","status":"finished",
      "class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"AMB"},
      "type":[{"coding":[{"system":"http://snomed.info/sct","code":"185345009"}]}]})");
  EXPECT_TRUE(Has(encounter.tokens, "class=http://terminology.hl7.org/CodeSystem/v3-ActCode|AMB"));
  EXPECT_TRUE(Has(encounter.tokens, "type=http://snomed.info/sct|185345009"));
  EXPECT_TRUE(Has(encounter.tokens, "status=finished"));

  ResourceIndex immunization = Index(R"({"resourceType":"Immunization","status":"completed",
      "vaccineCode":{"coding":[{"system":"http://hl7.org/fhir/sid/cvx","code":"140"}]}})");
  EXPECT_TRUE(Has(immunization.tokens, "vaccine-code=http://hl7.org/fhir/sid/cvx|140"));
  EXPECT_TRUE(WithPrefix(immunization.tokens, "code=").empty());

  ResourceIndex med = Index(R"({"resourceType":"MedicationRequest","status":"stopped",
      "intent":"order",
      "medicationCodeableConcept":{"coding":[{"system":"http://www.nlm.nih.gov/research/umls/rxnorm",
                                              "code":"313782"}]}})");
  EXPECT_TRUE(Has(med.tokens, "code=http://www.nlm.nih.gov/research/umls/rxnorm|313782"));
  EXPECT_TRUE(Has(med.tokens, "intent=order"));

  ResourceIndex condition = Index(R"({"resourceType":"Condition",
      "clinicalStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-clinical",
                                   "code":"active"}]},
      "verificationStatus":{"coding":[{"code":"confirmed"}]}})");
  EXPECT_TRUE(Has(condition.tokens, "clinical-status=active"));
  EXPECT_TRUE(Has(condition.tokens, "verification-status=|confirmed"));

  ResourceIndex allergy = Index(R"({"resourceType":"AllergyIntolerance","type":"allergy",
      "category":["food"],"criticality":"low",
      "code":{"coding":[{"system":"http://snomed.info/sct","code":"300916003"}]},
      "reaction":[{"substance":{"coding":[{"system":"http://snomed.info/sct","code":"1"}]}}]})");
  EXPECT_TRUE(Has(allergy.tokens, "category=food"));
  EXPECT_TRUE(Has(allergy.tokens, "code=http://snomed.info/sct|300916003"));
  EXPECT_TRUE(Has(allergy.tokens, "code=http://snomed.info/sct|1"));  // reaction.substance

  ResourceIndex doc = Index(R"({"resourceType":"DocumentReference","status":"current",
      "masterIdentifier":{"system":"urn:ietf:rfc:3986","value":"urn:oid:1.2.3"},
      "type":{"coding":[{"system":"http://loinc.org","code":"34133-9"}]}})");
  EXPECT_TRUE(Has(doc.tokens, "type=http://loinc.org|34133-9"));
  EXPECT_TRUE(Has(doc.tokens, "identifier=urn:ietf:rfc:3986|urn:oid:1.2.3"));
}

// --- References --------------------------------------------------------------------------------

TEST(ResourceIndexTest, ReferencesPerParameter) {
  ResourceIndex index = Index(R"({"resourceType":"Observation",
      "subject":{"reference":"Patient/p1"},"encounter":{"reference":"Encounter/e1"},
      "performer":[{"reference":"Practitioner/d1"},{"reference":"Organization/o1"}],
      "hasMember":[{"reference":"Observation/o2"}]})");
  EXPECT_EQ(index.refs,
            (Strings{"encounter=Encounter/e1", "patient=Patient/p1", "performer=Organization/o1",
                     "performer=Practitioner/d1", "subject=Patient/p1"}));
  // `patient` only indexes Patient targets; `subject` any.
  ResourceIndex group_subject =
      Index(R"({"resourceType":"Observation","subject":{"reference":"Group/g1"}})");
  EXPECT_EQ(group_subject.refs, Strings{"subject=Group/g1"});
  // Encounter `practitioner` is participant.individual restricted to Practitioner.
  ResourceIndex encounter = Index(R"({"resourceType":"Encounter","participant":[
      {"individual":{"reference":"Practitioner/d1"}},
      {"individual":{"reference":"RelatedPerson/r1"}}]})");
  EXPECT_EQ(encounter.refs, (Strings{"participant=Practitioner/d1", "participant=RelatedPerson/r1",
                                     "practitioner=Practitioner/d1"}));
  ResourceIndex med = Index(R"({"resourceType":"MedicationRequest",
      "requester":{"reference":"Practitioner/d1"},"subject":{"reference":"Patient/p1"}})");
  EXPECT_TRUE(Has(med.refs, "requester=Practitioner/d1"));
  ResourceIndex doc = Index(R"({"resourceType":"DocumentReference",
      "author":[{"reference":"Practitioner/d1"}]})");
  EXPECT_EQ(doc.refs, Strings{"author=Practitioner/d1"});
}

// --- Dates -------------------------------------------------------------------------------------

TEST(ResourceIndexTest, DateOfEffectiveDateTime) {
  ResourceIndex index = Index(R"({"resourceType":"Observation",
                                  "effectiveDateTime":"2011-02-02T16:30:49-05:00",
                                  "issued":"2011-02-02T16:30:49.825-05:00"})");
  ASSERT_EQ(index.dates.size(), 1u);  // Observation has no `issued` parameter
  EXPECT_EQ(index.dates[0].param, "date");
  EXPECT_EQ(index.dates[0].lo_us, Instant("2011-02-02T21:30:49Z"));
  EXPECT_EQ(index.dates[0].hi_us, index.dates[0].lo_us);
}

TEST(ResourceIndexTest, DateOfPeriodWithOpenEnds) {
  ResourceIndex open_end = Index(R"({"resourceType":"Observation",
      "effectivePeriod":{"start":"2013-02-06T16:30:49-05:00"}})");
  ASSERT_EQ(open_end.dates.size(), 1u);
  EXPECT_EQ(open_end.dates[0].lo_us, Instant("2013-02-06T21:30:49Z"));
  EXPECT_EQ(open_end.dates[0].hi_us, kMax);

  ResourceIndex open_start = Index(R"({"resourceType":"CarePlan","period":{"end":"2014-03"}})");
  ASSERT_EQ(open_start.dates.size(), 1u);
  EXPECT_EQ(open_start.dates[0].lo_us, kMin);
  EXPECT_EQ(open_start.dates[0].hi_us, Instant("2014-04-01T00:00:00Z") - 1);

  // A closed period covers [start.lo, end.hi]: a date end includes its whole day.
  ResourceIndex closed = Index(R"({"resourceType":"Encounter",
      "period":{"start":"2020-01-01","end":"2020-01-02"}})");
  ASSERT_EQ(closed.dates.size(), 1u);
  EXPECT_EQ(closed.dates[0].lo_us, Instant("2020-01-01T00:00:00Z"));
  EXPECT_EQ(closed.dates[0].hi_us, Instant("2020-01-03T00:00:00Z") - 1);

  // Empty and reversed periods carry no usable range.
  EXPECT_TRUE(Index(R"({"resourceType":"Encounter","period":{}})").dates.empty());
  EXPECT_TRUE(Index(R"({"resourceType":"Encounter",
                        "period":{"start":"2020-02-01","end":"2020-01-01"}})")
                  .dates.empty());
}

TEST(ResourceIndexTest, PartialDatesCoverTheirPeriod) {
  ResourceIndex index = Index(R"({"resourceType":"Condition","onsetDateTime":"2020-03",
                                  "recordedDate":"2020-03-05","abatementDateTime":"2021"})");
  std::vector<DateIndexValue> onset = DatesOf(index, "onset-date");
  ASSERT_EQ(onset.size(), 1u);
  EXPECT_EQ(onset[0].lo_us, Instant("2020-03-01T00:00:00Z"));
  EXPECT_EQ(onset[0].hi_us, Instant("2020-04-01T00:00:00Z") - 1);
  std::vector<DateIndexValue> recorded = DatesOf(index, "recorded-date");
  ASSERT_EQ(recorded.size(), 1u);
  EXPECT_EQ(recorded[0].lo_us, Instant("2020-03-05T00:00:00Z"));
  EXPECT_EQ(recorded[0].hi_us, Instant("2020-03-06T00:00:00Z") - 1);
  std::vector<DateIndexValue> abatement = DatesOf(index, "abatement-date");
  ASSERT_EQ(abatement.size(), 1u);
  EXPECT_EQ(abatement[0].hi_us, Instant("2022-01-01T00:00:00Z") - 1);
  // Sorted by param.
  ASSERT_EQ(index.dates.size(), 3u);
  EXPECT_EQ(index.dates[0].param, "abatement-date");
  EXPECT_EQ(index.dates[2].param, "recorded-date");
}

TEST(ResourceIndexTest, DatesUnderR4Names) {
  ResourceIndex med = Index(R"({"resourceType":"MedicationRequest",
                                "authoredOn":"2017-11-25T16:30:49-05:00"})");
  ASSERT_EQ(med.dates.size(), 2u);
  EXPECT_EQ(med.dates[0].param, "authored");
  EXPECT_EQ(med.dates[1].param, "authoredon");
  EXPECT_EQ(med.dates[0].lo_us, med.dates[1].lo_us);

  ResourceIndex doc = Index(R"({"resourceType":"DocumentReference",
      "date":"2020-01-01T00:00:00Z","context":{"period":{"start":"2019-12-01"}}})");
  EXPECT_EQ(DatesOf(doc, "date").size(), 1u);
  ASSERT_EQ(DatesOf(doc, "period").size(), 1u);
  EXPECT_EQ(DatesOf(doc, "period")[0].hi_us, kMax);

  ResourceIndex claim = Index(R"({"resourceType":"Claim","created":"1985-06-18T17:45:49-04:00"})");
  EXPECT_EQ(DatesOf(claim, "created").size(), 1u);
  ResourceIndex imm = Index(R"({"resourceType":"Immunization",
                                "occurrenceDateTime":"2011-02-02T16:30:49-05:00"})");
  EXPECT_EQ(DatesOf(imm, "date").size(), 1u);
  ResourceIndex allergy = Index(R"({"resourceType":"AllergyIntolerance","recordedDate":"2001"})");
  EXPECT_EQ(DatesOf(allergy, "date").size(), 1u);
}

TEST(ResourceIndexTest, DuplicateDatesAreStoredOnce) {
  ResourceIndex index = Index(R"({"resourceType":"MedicationRequest","dosageInstruction":[
      {"timing":{"event":["2020-01-01","2020-01-01","2019-05-05"]}},
      {"timing":{"event":["2020-01-01"]}}]})");
  std::vector<DateIndexValue> dates = DatesOf(index, "date");
  ASSERT_EQ(dates.size(), 2u);
  EXPECT_LT(dates[0].lo_us, dates[1].lo_us);
}

// --- Robustness --------------------------------------------------------------------------------

TEST(ResourceIndexTest, SkipsMalformedValuesAndKeepsTheRest) {
  ResourceIndex index = Index(R"({"resourceType":"Observation",
      "subject":"Patient/p1",
      "performer":[42, {"reference":7}, {"reference":"Patient/p2"}, null],
      "status":3,
      "code":{"coding":{"system":"http://loinc.org","code":"1-8"}},
      "category":[{"coding":[1, "x", {"code":""}, {"system":"s"}, {"code":"lab"}]}],
      "identifier":{"value":{"nested":true}},
      "effectiveDateTime":"2020-13-01",
      "meta":{"tag":"not-an-array","profile":[1,""]}})");
  EXPECT_EQ(index.patients, Strings{"p2"});
  EXPECT_EQ(index.refs, Strings{"performer=Patient/p2"});
  // A lone Coding object where an array is expected is still read.
  EXPECT_EQ(index.tokens, (Strings{"category=lab", "category=|lab", "code=1-8",
                                   "code=http://loinc.org|", "code=http://loinc.org|1-8"}));
  EXPECT_TRUE(index.dates.empty());

  ResourceIndex period = Index(R"({"resourceType":"Encounter",
      "period":{"start":"2020-01-01T10:00:00","end":"2020-01-02"},
      "subject":{"reference":"Patient/p1"}})");
  EXPECT_TRUE(period.dates.empty());  // a time without zone is invalid: the period is skipped
  EXPECT_EQ(period.patients, Strings{"p1"});
}

TEST(ResourceIndexTest, RejectsNonResources) {
  ResourceIndex index;
  index.tokens.push_back("stale");
  for (const char* json : {"[]", "42", "\"Patient\"", "{}", R"({"resourceType":7})",
                           R"({"resourceType":""})", R"({"id":"x"})"}) {
    rapidjson::Document doc = Parse(json);
    Status s = IndexResource(doc, &index);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << json;
    EXPECT_TRUE(index.tokens.empty());
  }
}

TEST(ResourceIndexTest, UnknownTypesGetTheCommonParameters) {
  ResourceIndex index = Index(R"({"resourceType":"Foo","subject":{"reference":"Patient/p1"},
                                  "meta":{"tag":[{"code":"t"}]}})");
  EXPECT_TRUE(index.patients.empty());
  EXPECT_TRUE(index.refs.empty());
  EXPECT_EQ(index.tokens, (Strings{"_tag=t", "_tag=|t"}));
}

// --- Group members -----------------------------------------------------------------------------

TEST(GroupMembersTest, ExtractsPatientMembersWithActivity) {
  rapidjson::Document group = Parse(R"({"resourceType":"Group","id":"g1","type":"person",
      "actual":true,"member":[
        {"entity":{"reference":"Patient/p1"}},
        {"entity":{"reference":"Patient/p2"},"inactive":true},
        {"entity":{"reference":"Practitioner/d1"}},
        {"entity":{"reference":"Patient/p3"},
         "period":{"start":"2024-01-01T00:00:00Z","end":"2024-01-31"}},
        {"entity":{"reference":"Patient/p4"},"period":{"start":"2023"}},
        {"entity":{"reference":"Patient/p5"},"period":{"start":"bad","end":"2023-02"},
         "inactive":"yes"},
        {"entity":"Patient/p6"},
        {"inactive":false}]})");
  std::vector<GroupMemberEntry> members;
  ASSERT_TRUE(ExtractGroupMembers(group, &members).ok());
  ASSERT_EQ(members.size(), 5u);
  EXPECT_EQ(members[0].patient_id, "p1");
  EXPECT_FALSE(members[0].inactive);
  EXPECT_FALSE(members[0].has_start);
  EXPECT_FALSE(members[0].has_end);
  EXPECT_EQ(members[1].patient_id, "p2");
  EXPECT_TRUE(members[1].inactive);
  EXPECT_EQ(members[2].patient_id, "p3");
  EXPECT_TRUE(members[2].has_start);
  EXPECT_EQ(members[2].period_start_us, Instant("2024-01-01T00:00:00Z"));
  EXPECT_TRUE(members[2].has_end);
  EXPECT_EQ(members[2].period_end_us, Instant("2024-02-01T00:00:00Z") - 1);
  EXPECT_EQ(members[3].patient_id, "p4");
  EXPECT_EQ(members[3].period_start_us, Instant("2023-01-01T00:00:00Z"));
  EXPECT_FALSE(members[3].has_end);
  EXPECT_EQ(members[4].patient_id, "p5");
  EXPECT_FALSE(members[4].inactive);  // not a boolean: default
  EXPECT_FALSE(members[4].has_start);
  EXPECT_TRUE(members[4].has_end);
  EXPECT_EQ(members[4].period_end_us, Instant("2023-03-01T00:00:00Z") - 1);
}

TEST(GroupMembersTest, EmptyAndInvalidGroups) {
  std::vector<GroupMemberEntry> members(3);
  rapidjson::Document empty = Parse(R"({"resourceType":"Group","type":"person"})");
  ASSERT_TRUE(ExtractGroupMembers(empty, &members).ok());
  EXPECT_TRUE(members.empty());
  for (const char* json : {"[]", R"({"member":[]})", R"({"resourceType":"Patient"})"}) {
    rapidjson::Document doc = Parse(json);
    EXPECT_EQ(ExtractGroupMembers(doc, &members).code(), Status::Code::kInvalidArgument) << json;
  }
}

// --- The search parameter table ----------------------------------------------------------------

TEST(SearchParamIndexTest, FindsParametersByTypeAndName) {
  struct Expected {
    const char* type;
    const char* code;
    SearchParamKind kind;
  };
  const Expected kExpected[] = {
      {"Observation", "code", SearchParamKind::kToken},
      {"Observation", "category", SearchParamKind::kToken},
      {"Observation", "status", SearchParamKind::kToken},
      {"Observation", "date", SearchParamKind::kDate},
      {"Observation", "subject", SearchParamKind::kReference},
      {"Observation", "patient", SearchParamKind::kReference},
      {"Observation", "performer", SearchParamKind::kReference},
      {"Observation", "encounter", SearchParamKind::kReference},
      {"Observation", "identifier", SearchParamKind::kToken},
      {"Condition", "clinical-status", SearchParamKind::kToken},
      {"Condition", "verification-status", SearchParamKind::kToken},
      {"Condition", "onset-date", SearchParamKind::kDate},
      {"Condition", "recorded-date", SearchParamKind::kDate},
      {"AllergyIntolerance", "clinical-status", SearchParamKind::kToken},
      {"AllergyIntolerance", "date", SearchParamKind::kDate},
      {"Immunization", "vaccine-code", SearchParamKind::kToken},
      {"Immunization", "date", SearchParamKind::kDate},
      {"Encounter", "class", SearchParamKind::kToken},
      {"Encounter", "type", SearchParamKind::kToken},
      {"Encounter", "date", SearchParamKind::kDate},
      {"Device", "type", SearchParamKind::kToken},
      {"DocumentReference", "type", SearchParamKind::kToken},
      {"DocumentReference", "author", SearchParamKind::kReference},
      {"DocumentReference", "period", SearchParamKind::kDate},
      {"MedicationRequest", "code", SearchParamKind::kToken},
      {"MedicationRequest", "intent", SearchParamKind::kToken},
      {"MedicationRequest", "requester", SearchParamKind::kReference},
      {"MedicationRequest", "authoredon", SearchParamKind::kDate},
      {"MedicationRequest", "authored", SearchParamKind::kDate},
      {"CarePlan", "category", SearchParamKind::kToken},
      {"CarePlan", "intent", SearchParamKind::kToken},
      {"CarePlan", "date", SearchParamKind::kDate},
      {"CareTeam", "date", SearchParamKind::kDate},
      {"Claim", "created", SearchParamKind::kDate},
      {"ExplanationOfBenefit", "created", SearchParamKind::kDate},
      {"DiagnosticReport", "code", SearchParamKind::kToken},
      {"Procedure", "code", SearchParamKind::kToken},
      {"Procedure", "date", SearchParamKind::kDate},
      {"Observation", "_tag", SearchParamKind::kToken},
      {"Observation", "_security", SearchParamKind::kToken},
      {"Observation", "_profile", SearchParamKind::kUri},
      {"Observation", "_id", SearchParamKind::kId},
      {"Observation", "_lastUpdated", SearchParamKind::kLastUpdated},
      {"Binary", "_lastUpdated", SearchParamKind::kLastUpdated},
  };
  for (const Expected& e : kExpected) {
    const SearchParamDef* def = FindSearchParam(e.type, e.code);
    ASSERT_NE(def, nullptr) << e.type << "?" << e.code;
    EXPECT_EQ(def->kind, e.kind) << e.type << "?" << e.code;
    EXPECT_EQ(def->code, e.code);
  }
  EXPECT_EQ(FindSearchParam("Observation", "code")->type, "Observation");
  EXPECT_EQ(FindSearchParam("Observation", "_tag")->type, "Resource");
  EXPECT_EQ(FindSearchParam("Observation", "patient")->target, "Patient");
  EXPECT_EQ(FindSearchParam("Observation", "vaccine-code"), nullptr);
  EXPECT_EQ(FindSearchParam("Immunization", "code"), nullptr);  // R4 uses vaccine-code
  EXPECT_EQ(FindSearchParam("Observation", "code:text"), nullptr);
  EXPECT_EQ(FindSearchParam("Observation", "Code"), nullptr);
  EXPECT_EQ(FindSearchParam("Foo", "_id"), nullptr);
  EXPECT_EQ(FindSearchParam("observation", "code"), nullptr);
}

TEST(SearchParamIndexTest, TableIsWellFormed) {
  SearchParamRange all = AllTypeSearchParams();
  ASSERT_GT(all.size(), 300u);
  std::string previous_type, previous_code;
  for (const SearchParamDef& def : all) {
    EXPECT_TRUE(IsR4ResourceType(def.type)) << def.type;
    EXPECT_GT(def.path_count(), 0) << def.type << "?" << def.code;
    const std::string type(def.type), code(def.code);
    EXPECT_TRUE(std::tie(previous_type, previous_code) < std::tie(type, code)) << type << code;
    previous_type = type;
    previous_code = code;
    EXPECT_EQ(FindSearchParam(def.type, def.code), &def);
    EXPECT_TRUE(def.target.empty() || def.kind == SearchParamKind::kReference);
    EXPECT_TRUE(!def.patient_compartment || def.kind == SearchParamKind::kReference);
    for (int i = 0; i < def.path_count(); ++i) {
      const SearchElementType element = def.paths[i].element;
      switch (def.kind) {
        case SearchParamKind::kReference:
          EXPECT_EQ(element, SearchElementType::kReference) << type << "?" << code;
          break;
        case SearchParamKind::kDate:
          EXPECT_TRUE(element == SearchElementType::kDateTime ||
                      element == SearchElementType::kPeriod)
              << type << "?" << code;
          break;
        case SearchParamKind::kToken:
          EXPECT_TRUE(element != SearchElementType::kReference &&
                      element != SearchElementType::kDateTime &&
                      element != SearchElementType::kPeriod)
              << type << "?" << code;
          break;
        default:
          ADD_FAILURE() << "unexpected kind for " << type << "?" << code;
      }
    }
  }
  for (const SearchParamDef& def : CommonSearchParams()) EXPECT_EQ(def.type, "Resource");
}

// The compartment flags must cover exactly R4's compartment types, each with the parameters
// of CompartmentDefinition/patient.
TEST(SearchParamIndexTest, CompartmentParametersMatchTheDefinition) {
  std::map<std::string, std::set<std::string>> links;
  for (const SearchParamDef& def : AllTypeSearchParams()) {
    if (def.patient_compartment) links[std::string(def.type)].insert(std::string(def.code));
  }
  std::set<std::string> types;
  for (const auto& entry : links) types.insert(entry.first);
  std::set<std::string> expected_types(PatientCompartmentTypes().begin(),
                                       PatientCompartmentTypes().end());
  EXPECT_EQ(types, expected_types);
  using Set = std::set<std::string>;
  EXPECT_EQ(links["Observation"], (Set{"subject", "performer"}));
  EXPECT_EQ(links["Encounter"], (Set{"patient"}));
  EXPECT_EQ(links["Condition"], (Set{"patient", "asserter"}));
  EXPECT_EQ(links["Procedure"], (Set{"patient", "performer"}));
  EXPECT_EQ(links["Claim"], (Set{"patient", "payee"}));
  EXPECT_EQ(links["ExplanationOfBenefit"], (Set{"patient", "payee"}));
  EXPECT_EQ(links["CarePlan"], (Set{"patient", "performer"}));
  EXPECT_EQ(links["CareTeam"], (Set{"patient", "participant"}));
  EXPECT_EQ(links["AllergyIntolerance"], (Set{"patient", "recorder", "asserter"}));
  EXPECT_EQ(links["Coverage"], (Set{"policy-holder", "subscriber", "beneficiary", "payor"}));
  EXPECT_EQ(links["CommunicationRequest"], (Set{"subject", "sender", "recipient", "requester"}));
  EXPECT_EQ(links["MedicationAdministration"], (Set{"patient", "performer", "subject"}));
  EXPECT_EQ(links["Patient"], (Set{"link"}));
  EXPECT_EQ(links["Group"], (Set{"member"}));
  EXPECT_EQ(links["ResearchSubject"], (Set{"individual"}));
  EXPECT_EQ(links["Provenance"], (Set{"patient"}));
  EXPECT_EQ(links.count("Task"), 0u);
  EXPECT_EQ(links.count("Device"), 0u);
}

// --- A real Synthea bundle ---------------------------------------------------------------------

// Replaces every "reference":"urn:uuid:<id>" with the "Type/<id>" of the bundle entry whose
// fullUrl it names, as the loader does (naively, for the test).
void ResolveUrnReferences(rapidjson::Value* v, const std::map<std::string, std::string>& urls,
                          rapidjson::Document::AllocatorType& alloc) {
  if (v->IsArray()) {
    for (auto& element : v->GetArray()) ResolveUrnReferences(&element, urls, alloc);
  } else if (v->IsObject()) {
    for (auto it = v->MemberBegin(); it != v->MemberEnd(); ++it) {
      if (it->value.IsString() && std::string(it->name.GetString()) == "reference") {
        auto found = urls.find(it->value.GetString());
        if (found != urls.end()) it->value.SetString(found->second, alloc);
      } else {
        ResolveUrnReferences(&it->value, urls, alloc);
      }
    }
  }
}

std::string FirstPatientBundle(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      std::string name = e->d_name;
      // Patient bundles are First_Last_<uuid>.json; the *Information*.json ones are not.
      if (name.size() > 5 && name.compare(name.size() - 5, 5, ".json") == 0 &&
          name.find("Information") == std::string::npos && name.find('_') != std::string::npos) {
        names.push_back(name);
      }
    }
    closedir(d);
  }
  std::sort(names.begin(), names.end());
  return names.empty() ? std::string() : dir + names.front();
}

TEST(ResourceIndexTest, IndexesARealSyntheaBundle) {
  const std::string path =
      FirstPatientBundle(FHIRBULK_SOURCE_DIR "/../shared/data/synthea-r4-100/");
  if (path.empty()) GTEST_SKIP() << "no Synthea sample data next to the source tree";
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  rapidjson::Document bundle;
  bundle.Parse(buffer.str().c_str());
  ASSERT_FALSE(bundle.HasParseError()) << path;
  ASSERT_TRUE(bundle.HasMember("entry"));

  std::map<std::string, std::string> urls;
  std::string patient_id;
  for (const auto& entry : bundle["entry"].GetArray()) {
    const auto& resource = entry["resource"];
    const std::string type = resource["resourceType"].GetString();
    const std::string id = resource["id"].GetString();
    urls[entry["fullUrl"].GetString()] = type + "/" + id;
    if (type == "Patient") patient_id = id;
  }
  ASSERT_FALSE(patient_id.empty());
  ResolveUrnReferences(&bundle["entry"], urls, bundle.GetAllocator());

  std::map<std::string, int> counts;
  for (const auto& entry : bundle["entry"].GetArray()) {
    const auto& resource = entry["resource"];
    const std::string type = resource["resourceType"].GetString();
    ResourceIndex index;
    ASSERT_TRUE(IndexResource(resource, &index).ok()) << type;
    ++counts[type];
    if (IsPatientCompartmentType(type)) {
      // Every clinical resource Synthea writes names its patient.
      EXPECT_EQ(index.patients, Strings{patient_id}) << type << "/" << resource["id"].GetString();
    } else {
      EXPECT_TRUE(index.patients.empty()) << type;
    }
    if (type == "Encounter" || type == "Observation") {
      EXPECT_TRUE(Has(index.patients, patient_id));
      EXPECT_TRUE(Has(index.refs, "patient=Patient/" + patient_id));
      EXPECT_EQ(DatesOf(index, "date").size(), 1u) << resource["id"].GetString();
      EXPECT_FALSE(WithPrefix(index.tokens, "status=").empty());
    }
    if (type == "Observation") {
      EXPECT_FALSE(WithPrefix(index.tokens, "code=").empty());
    }
    if (type == "Encounter") {
      EXPECT_FALSE(WithPrefix(index.tokens, "class=").empty());
    }
  }
  EXPECT_EQ(counts["Patient"], 1);
  EXPECT_GT(counts["Encounter"], 0);
  EXPECT_GT(counts["Observation"], 0);
}

}  // namespace
}  // namespace fhirbulk

namespace fhirbulk {

TEST(ResourceIndexOutRefsTest, CollectsSupportingReferencesAtAnyDepth) {
  rapidjson::Document doc;
  doc.Parse(R"({"resourceType":"Encounter","id":"e1",
    "subject":{"reference":"Patient/p1"},
    "participant":[{"individual":{"reference":"Practitioner/dr1"}},
                   {"individual":{"reference":"Practitioner/dr1"}}],
    "location":[{"location":{"reference":"Location/l1"}}],
    "serviceProvider":{"reference":"Organization/o1"},
    "basedOn":[{"reference":"ServiceRequest/s1"}],
    "contained":[{"resourceType":"Medication","id":"m",
                  "manufacturer":{"reference":"Organization/o2"}}],
    "partOf":{"reference":"http://other.example/fhir/Organization/x"}})");
  ASSERT_FALSE(doc.HasParseError());
  ResourceIndex index;
  ASSERT_TRUE(IndexResource(doc, &index).ok());
  EXPECT_EQ(index.outrefs, (std::vector<std::string>{"Location/l1", "Organization/o1",
                                                     "Organization/o2", "Practitioner/dr1"}));
}

}  // namespace fhirbulk
