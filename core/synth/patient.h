// PatientGenerator: one synthetic patient's whole record.
//
// Contract: Generate(k, sink) writes patient k of the population with the given seed — the
// Patient, then their encounters in chronological order, each followed by what happened in it
// (Conditions, Observations and DiagnosticReports, Procedures, MedicationRequests and their
// pharmacy Claims, Immunizations, CarePlans and CareTeams, AllergyIntolerances, ImagingStudies,
// Devices, DocumentReferences, then the encounter's Claim and ExplanationOfBenefit). The output
// depends only on (seed, k): not on the population size, on other patients, on the thread or
// on the clock. References are relative ("Patient/<id>") and point to resources of this patient
// or to the shared facilities (synth/facility.h) visible to patient k.
//
// The life model follows Synthea's shape: wellness visits by age (frequent for infants,
// yearly for children and adults over 50, every three years between), chronic diseases with
// onset ages, medications renewed at visits and care plans, acute illnesses and injuries,
// pregnancies, allergies, immunizations on the CDC schedule. The last ~10 years are recorded
// in full; before that only visits that diagnosed something or renewed a medication are kept,
// as in Synthea's exports.
//
// Thread-safety: one PatientGenerator per thread.

#ifndef FHIRBULK_SYNTH_PATIENT_H_
#define FHIRBULK_SYNTH_PATIENT_H_

#include <cstdint>
#include <memory>

#include "synth/ids.h"
#include "synth/sink.h"
#include "util/status.h"

namespace fhirbulk {
namespace synth {

// The id of patient k (Groups use it without simulating the patient).
Uuid PatientId(uint64_t seed, uint64_t index);

class PatientGenerator {
 public:
  explicit PatientGenerator(uint64_t seed);
  ~PatientGenerator();
  PatientGenerator(const PatientGenerator&) = delete;
  PatientGenerator& operator=(const PatientGenerator&) = delete;

  // Writes patient `index` into *sink; a non-OK Status is the sink's failure.
  Status Generate(uint64_t index, ResourceSink* sink);

 private:
  class Life;
  uint64_t seed_;
  std::unique_ptr<Life> life_;  // reused scratch state, so patients do not reallocate
};

}  // namespace synth
}  // namespace fhirbulk

#endif  // FHIRBULK_SYNTH_PATIENT_H_
