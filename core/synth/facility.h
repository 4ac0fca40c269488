// Facilities: the shared Organizations, Practitioners and Locations patients are seen at.
//
// A facility is one Organization with one Practitioner and one Location (as in Synthea's
// exports, where each provider organization has its clinician). Facility j is a pure function
// of (seed, j), so any patient can reference it without a lookup table.
//
// Pool size and independence from N: patient k only chooses among the first
// FacilitiesVisibleTo(k) facilities, a number that depends on k's block of
// kPatientsPerFacilityBlock patients, never on the population size. A population of N patients
// emits FacilityPoolSize(N) facilities: every facility any of its patients references. The
// pool grows about 1.45 per patient for small populations, then 0.25 per patient, so 100
// patients get ~160 facilities and 10,000 get ~2,750.
//
// Thread-safety: pure functions.

#ifndef FHIRBULK_SYNTH_FACILITY_H_
#define FHIRBULK_SYNTH_FACILITY_H_

#include <cstdint>
#include <string>

#include "synth/demographics.h"
#include "synth/ids.h"
#include "synth/json_out.h"

namespace fhirbulk {
namespace synth {

constexpr uint64_t kPatientsPerFacilityBlock = 16;
// Every kHospitalStride-th facility is a hospital (emergency and inpatient care).
constexpr uint64_t kHospitalStride = 6;

uint64_t FacilitiesVisibleTo(uint64_t patient_index);
uint64_t FacilityPoolSize(uint64_t patient_count);

struct Facility {
  uint64_t index = 0;
  bool hospital = false;
  Uuid organization_id, practitioner_id, location_id;
  std::string name;    // of the Organization and its Location
  std::string phone;   // 10 digits
  std::string street;  // "575 Beech Street"
  const Town* town = nullptr;
  double latitude = 0, longitude = 0;
  const char* practitioner_given = "";
  const char* practitioner_family = "";
  bool practitioner_female = false;
  std::string practitioner_display;  // "Dr. Otis Ortiz"
  uint64_t organization_npi = 0, practitioner_npi = 0;
  int64_t last_updated = 0;  // seconds since the epoch
};

void MakeFacility(uint64_t seed, uint64_t index, Facility* out);

// The three resources of a facility, each as one compact JSON object into *j (cleared first).
void WriteOrganization(const Facility& f, JsonOut* j);
void WritePractitioner(const Facility& f, JsonOut* j);
void WriteLocation(const Facility& f, JsonOut* j);

}  // namespace synth
}  // namespace fhirbulk

#endif  // FHIRBULK_SYNTH_FACILITY_H_
