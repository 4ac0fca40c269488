#include "synth/facility.h"

#include <algorithm>

#include "synth/clock.h"
#include "synth/fhir_json.h"
#include "synth/prng.h"

namespace fhirbulk {
namespace synth {

namespace {

uint64_t PoolFor(uint64_t patients) {
  // min(1.45 n, 250 + 0.25 n), in integer arithmetic (x100) to stay exact.
  uint64_t linear = (patients * 145 + 99) / 100;
  uint64_t damped = 250 + (patients * 25 + 99) / 100;
  return std::max<uint64_t>(kHospitalStride, std::min(linear, damped));
}

void AppendDigits(std::string* out, Rng* rng, int n) {
  for (int i = 0; i < n; i++) out->push_back(static_cast<char>('0' + rng->Below(10)));
}

void WriteAddress(const Facility& f, JsonOut* j) {
  j->BeginObject();
  j->Key("line");
  j->BeginArray();
  j->String(f.street);
  j->EndArray();
  j->KeyString("city", f.town->name);
  j->KeyPlain("state", "MA");
  j->KeyPlain("postalCode", f.town->zip);
  j->KeyPlain("country", "US");
  j->EndObject();
}

void WriteNpi(JsonOut* j, uint64_t npi) {
  j->Key("identifier");
  j->BeginArray();
  j->BeginObject();
  j->KeyPlain("system", "http://hl7.org/fhir/sid/us-npi");
  j->Key("value");
  j->BeginString();
  j->AppendIntPart(static_cast<int64_t>(npi));
  j->EndString();
  j->EndObject();
  j->EndArray();
}

}  // namespace

uint64_t FacilitiesVisibleTo(uint64_t patient_index) {
  uint64_t block_end = (patient_index / kPatientsPerFacilityBlock + 1) * kPatientsPerFacilityBlock;
  return PoolFor(block_end);
}

uint64_t FacilityPoolSize(uint64_t patient_count) {
  if (patient_count == 0) return 0;
  return FacilitiesVisibleTo(patient_count - 1);
}

void MakeFacility(uint64_t seed, uint64_t index, Facility* f) {
  Rng rng(seed, Stream::kFacility, index);
  f->index = index;
  f->hospital = index % kHospitalStride == 0;
  f->organization_id = NewUuid(&rng);
  f->practitioner_id = NewUuid(&rng);
  f->location_id = NewUuid(&rng);

  // Towns weighted by population, so Boston has the most facilities.
  f->town = &TownAt(rng.Uniform());

  f->name.clear();
  if (f->hospital) {
    f->name = f->town->name;
    f->name += ' ';
    f->name += kHospitalSuffixes[rng.Below(kHospitalSuffixCount)];
  } else if (rng.Chance(0.5)) {
    f->name = f->town->name;
    f->name += ' ';
    f->name += kClinicSuffixes[rng.Below(kClinicSuffixCount)];
  } else {
    f->name = kFamilyNames[rng.Below(kFamilyNameCount)];
    f->name += rng.Chance(0.5) ? " & " : " and ";
    f->name += kFamilyNames[rng.Below(kFamilyNameCount)];
    f->name += ' ';
    f->name += kClinicSuffixes[rng.Below(kClinicSuffixCount - 1)];
  }
  f->phone.clear();
  f->phone.push_back(static_cast<char>('2' + rng.Below(8)));
  AppendDigits(&f->phone, &rng, 9);
  f->street = std::to_string(rng.Range(1, 999));
  f->street += ' ';
  f->street += kStreetNames[rng.Below(kStreetNameCount)];
  f->street += ' ';
  f->street += kStreetSuffixes[rng.Below(kStreetSuffixCount)];
  f->latitude = f->town->latitude + rng.Uniform(-0.03, 0.03);
  f->longitude = f->town->longitude + rng.Uniform(-0.03, 0.03);

  f->practitioner_female = rng.Chance(0.5);
  f->practitioner_given = f->practitioner_female
                              ? kFemaleGivenNames[rng.Below(kFemaleGivenNameCount)]
                              : kMaleGivenNames[rng.Below(kMaleGivenNameCount)];
  f->practitioner_family = kFamilyNames[rng.Below(kFamilyNameCount)];
  f->practitioner_display = "Dr. ";
  f->practitioner_display += f->practitioner_given;
  f->practitioner_display += ' ';
  f->practitioner_display += f->practitioner_family;
  // NPIs in the 9999xxxxxx range, which real NPIs do not use: no clash with real clinicians.
  f->organization_npi = 9999000000ULL + rng.Below(1000000);
  f->practitioner_npi = 9999000000ULL + rng.Below(1000000);
  // Registered when the EHR went live (2010) or later.
  f->last_updated =
      DateToSeconds(2010, 1, 1) + static_cast<int64_t>(rng.Below(14 * kSecondsPerYear));
}

void WriteOrganization(const Facility& f, JsonOut* j) {
  j->Clear();
  BeginResource(j, "Organization", f.organization_id, f.last_updated,
                static_cast<int>(f.index % 1000));
  WriteNpi(j, f.organization_npi);
  j->KeyBool("active", true);
  j->Key("type");
  j->BeginArray();
  CodeableConcept(j, "http://terminology.hl7.org/CodeSystem/organization-type",
                  Code{"prov", "Healthcare Provider"});
  j->EndArray();
  j->KeyString("name", f.name);
  j->Key("telecom");
  j->BeginArray();
  j->BeginObject();
  j->KeyPlain("system", "phone");
  j->KeyPlain("value", f.phone);
  j->EndObject();
  j->EndArray();
  j->Key("address");
  j->BeginArray();
  WriteAddress(f, j);
  j->EndArray();
  j->EndObject();
}

void WritePractitioner(const Facility& f, JsonOut* j) {
  j->Clear();
  BeginResource(j, "Practitioner", f.practitioner_id, f.last_updated,
                static_cast<int>(f.index % 1000));
  WriteNpi(j, f.practitioner_npi);
  j->KeyBool("active", true);
  j->Key("name");
  j->BeginArray();
  j->BeginObject();
  j->KeyString("family", f.practitioner_family);
  j->Key("given");
  j->BeginArray();
  j->String(f.practitioner_given);
  j->EndArray();
  j->Key("prefix");
  j->BeginArray();
  j->Plain("Dr.");
  j->EndArray();
  j->EndObject();
  j->EndArray();
  j->Key("telecom");
  j->BeginArray();
  j->BeginObject();
  j->KeyPlain("system", "email");
  j->Key("value");
  j->BeginString();
  j->AppendEscapedPart(f.practitioner_given);
  j->AppendRaw('.');
  j->AppendEscapedPart(f.practitioner_family);
  j->AppendRaw("@example.com");
  j->EndString();
  j->KeyPlain("use", "work");
  j->EndObject();
  j->EndArray();
  j->Key("address");
  j->BeginArray();
  WriteAddress(f, j);
  j->EndArray();
  j->KeyPlain("gender", f.practitioner_female ? "female" : "male");
  j->EndObject();
}

void WriteLocation(const Facility& f, JsonOut* j) {
  j->Clear();
  BeginResource(j, "Location", f.location_id, f.last_updated, static_cast<int>(f.index % 1000));
  j->KeyPlain("status", "active");
  j->KeyString("name", f.name);
  j->KeyPlain("mode", "instance");
  j->Key("type");
  j->BeginArray();
  CodeableConcept(j, "http://terminology.hl7.org/CodeSystem/v3-RoleCode",
                  f.hospital ? Code{"HOSP", "Hospital"} : Code{"OF", "Outpatient facility"});
  j->EndArray();
  j->Key("telecom");
  j->BeginArray();
  j->BeginObject();
  j->KeyPlain("system", "phone");
  j->KeyPlain("value", f.phone);
  j->EndObject();
  j->EndArray();
  j->Key("address");
  WriteAddress(f, j);
  j->Key("position");
  j->BeginObject();
  j->KeyFixed("longitude", f.longitude, 6);
  j->KeyFixed("latitude", f.latitude, 6);
  j->EndObject();
  j->Key("managingOrganization");
  Reference(j, "Organization", f.organization_id, f.name);
  j->EndObject();
}

}  // namespace synth
}  // namespace fhirbulk
