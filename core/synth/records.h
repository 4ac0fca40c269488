// RecordWriter: turns one patient's simulated events into FHIR R4 JSON resources, shaped like
// Synthea's (same elements, codes and reference pattern), and hands them to a ResourceSink.
// Internal to the generator: patient.cc decides what happens, this file decides how it is
// written.
//
// Every resource gets a deterministic id from the patient's Rng and a meta.lastUpdated some
// time after its clinical date (never before the EHR went live in 2010, never after the end of
// the simulation), so that _since filters select realistic slices.
//
// Errors: the first sink failure is kept (status()) and later writes are skipped, so the
// simulation code need not check every call.
//
// Thread-safety: one per thread.

#ifndef FHIRBULK_SYNTH_RECORDS_H_
#define FHIRBULK_SYNTH_RECORDS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "synth/codes.h"
#include "synth/demographics.h"
#include "synth/facility.h"
#include "synth/ids.h"
#include "synth/json_out.h"
#include "synth/prng.h"
#include "synth/sink.h"
#include "util/status.h"

namespace fhirbulk {
namespace synth {

// Fixed points of the simulated calendar (never the wall clock).
int64_t SimulationEnd();         // 2026-06-30T00:00:00Z: nothing happens after this
int64_t DetailedHistoryStart();  // ~10.5 years earlier: full detail from here on
int64_t EhrGoLive();             // 2010-01-01: no record was updated before this

struct Person {
  uint64_t index = 0;
  Uuid id;
  bool female = false;
  int64_t birth = 0;
  int64_t death = 0;  // 0 when alive at the end of the simulation
  int64_t end = 0;    // min(death, SimulationEnd())
  const char* given = "";
  const char* family = "";
  const char* maiden_family = nullptr;  // a married woman's birth name, else nullptr
  const char* prefix = nullptr;         // "Mr.", "Mrs.", "Ms."; none for children
  std::string display;                  // "Mr. Abram Lemke"
  std::string plain;                    // "Abram Lemke"
  const OmbCategory* race = nullptr;
  bool hispanic = false;
  const Language* language = nullptr;
  const Town* town = nullptr;
  std::string street;
  double latitude = 0, longitude = 0;
  std::string phone, ssn, drivers_license, passport;  // empty when none
  char marital = 'S';                                 // v3-MaritalStatus: M, S, D, W
  std::string mothers_maiden_name;
  const Town* birth_town = nullptr;         // born in Massachusetts, or
  const BirthPlace* birth_place = nullptr;  // elsewhere
  int smoking = 0;                          // index into kTobaccoAnswers
  bool twin = false;
  double adult_height_cm = 170, bmi_base = 25;
  const Payer* payer_under_65 = nullptr;
  const Payer* payer_65_plus = nullptr;
  Facility primary, hospital;
  int contraceptive = -1;  // index into kContraceptives, or -1

  int AgeAt(int64_t t) const;
  const Payer& PayerAt(int64_t t) const {
    return AgeAt(t) >= 65 ? *payer_65_plus : *payer_under_65;
  }
};

// A condition of the patient (chronic, acute, pregnancy, allergy-related).
struct ConditionRec {
  Code code;
  Uuid id;
  int64_t onset = 0;      // when diagnosed
  int64_t abatement = 0;  // when resolved; 0 = still active
  int chronic = -1;       // index into kChronicDiseases, or -1
  bool diagnosed = false;
  int med_stage = 0;            // how many of the disease's medications are prescribed
  int64_t last_prescribed = 0;  // when its medications were last prescribed (0 = never)
  bool has_plan = false;
  Uuid care_plan_id, care_team_id;

  bool ActiveAt(int64_t t) const {
    return diagnosed && onset <= t && (abatement == 0 || abatement > t);
  }
};

// What an encounter bills: filled while the encounter's resources are written.
struct ClaimLine {
  enum Type : uint8_t { kDiagnosis, kProcedure, kImmunization };
  Type type;
  const char* system;
  Code code;
  Uuid ref;
  int64_t net_cents;
};

struct EncounterCtx {
  Uuid id;
  int kind = 0;  // EncounterKind
  int64_t start = 0, end = 0;
  const Facility* facility = nullptr;
  const Code* reason = nullptr;
  bool discharge = false;  // inpatient: write hospitalization.dischargeDisposition
  std::vector<ClaimLine> lines;
};

class RecordWriter {
 public:
  RecordWriter();

  // Starts a patient: resources go to *sink, randomness comes from *rng.
  void Begin(const Person* person, Rng* rng, ResourceSink* sink);
  const Status& status() const { return status_; }

  void WritePatient(int64_t last_updated);
  void WriteEncounter(const EncounterCtx& e);
  void WriteCondition(const EncounterCtx& e, const ConditionRec& c);

  // Observations; they return the new id (for DiagnosticReport.result).
  Uuid WriteQuantityObservation(const EncounterCtx& e, const char* category, const char* loinc,
                                const char* display, double value, int decimals, const char* unit);
  Uuid WriteConceptObservation(const EncounterCtx& e, const char* category, const Code& code,
                               const char* answer_system, const Code& answer);
  Uuid WriteBloodPressure(const EncounterCtx& e, int systolic, int diastolic);
  void WriteDiagnosticReport(const EncounterCtx& e, const Code& panel, const Uuid* results,
                             const char* const* result_displays, size_t n);

  // Billable items: they add a line to e->lines.
  Uuid WriteProcedure(EncounterCtx* e, const Code& code, const ConditionRec* reason,
                      int64_t net_cents);
  void WriteImmunization(EncounterCtx* e, const Code& cvx);
  // The prescription and its pharmacy Claim.
  void WriteMedicationRequest(const EncounterCtx& e, const Code& med, const ConditionRec* reason,
                              bool active);
  void WriteCarePlanAndTeam(const EncounterCtx& e, const CarePlanDef& plan,
                            const ConditionRec& reason, int64_t end);
  void WriteAllergy(const EncounterCtx& e, const AllergyDef& allergy);
  void WriteImagingStudy(const EncounterCtx& e, const char* body_site,
                         const char* body_site_display);
  void WriteDevice(const EncounterCtx& e, const DeviceDef& device);
  // A clinical note, inline (base64 `data`, with `size` and `hash`).
  void WriteDocument(const EncounterCtx& e, std::string_view note_text);
  void WriteClaimAndEob(const EncounterCtx& e);
  // Last, as Synthea does for each patient's bundle: one Provenance whose `target` lists every
  // resource written for the patient since Begin, recorded at the end of the simulation, with
  // the primary care practitioner as author and transmitter on behalf of its organization.
  void WriteProvenance();

 private:
  int64_t LastUpdated(int64_t clinical_time);
  void Begin(const char* type, const Uuid& id, int64_t clinical_time);
  void BeginClaim(const Uuid& claim_id, const EncounterCtx& e, const char* type_code);
  void Emit(Kind kind);
  void SubjectAndEncounter(const EncounterCtx& e, const char* subject_key = "subject");
  void Participant(const EncounterCtx& e);

  const Person* person_ = nullptr;
  Rng* rng_ = nullptr;
  ResourceSink* sink_ = nullptr;
  Status status_;
  JsonOut json_;
  std::string scratch_;
  std::vector<std::pair<const char*, Uuid>> targets_;  // of WriteProvenance
};

}  // namespace synth
}  // namespace fhirbulk

#endif  // FHIRBULK_SYNTH_RECORDS_H_
