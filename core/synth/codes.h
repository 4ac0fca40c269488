// Clinical code tables for the synthetic population: LOINC (observations, panels), SNOMED CT
// (encounters, conditions, procedures, care plans, allergies, devices), RxNorm (medications),
// CVX (vaccines), with the displays FHIR resources carry, and the parameters that make the
// generated records plausible (normal ranges, units, schedules, prevalences).
//
// The tables are plain constant data (codes.cc); the clinical logic that uses them is in
// patient.cc. Indices into the tables are stable and named by the enums below where the
// logic needs a specific entry.
//
// Thread-safety: immutable data.

#ifndef FHIRBULK_SYNTH_CODES_H_
#define FHIRBULK_SYNTH_CODES_H_

#include <cstddef>

namespace fhirbulk {
namespace synth {

extern const char kSnomed[];  // http://snomed.info/sct
extern const char kLoinc[];   // http://loinc.org
extern const char kRxNorm[];  // http://www.nlm.nih.gov/research/umls/rxnorm
extern const char kCvx[];     // http://hl7.org/fhir/sid/cvx
extern const char kUcum[];    // http://unitsofmeasure.org

// A code with its display; the system is implied by the table it is in.
struct Code {
  const char* code;
  const char* display;
};

// --- encounters ------------------------------------------------------------------------------

struct EncounterType {
  const char* act_class;  // v3-ActCode: AMB, EMER, IMP
  Code type;              // SNOMED
  int minutes_min, minutes_max;
  const char* service_place;  // ex-serviceplace code for the EOB (CMS place of service)
  const char* service_place_display;
};

enum EncounterKind {
  kEncWellAdult,
  kEncWellChild,
  kEncCheckUp,
  kEncSymptom,
  kEncProblem,
  kEncFollowUp,
  kEncHypertensionFollowUp,
  kEncAsthmaFollowUp,
  kEncPrenatalInitial,
  kEncPrenatal,
  kEncPostnatal,
  kEncEmergency,
  kEncInpatient,
  kEncUrgentCare,
  kEncOutpatientProcedure,
  kEncConsultation,
  kEncAllergyInitial,
  kEncAllergyFollowUp,
  kEncPostOpFollowUp,
  kEncObstetricEmergency,
  kEncPatientProcedure,
  kEncDomiciliary,
  kEncKindCount
};
extern const EncounterType kEncounterTypes[kEncKindCount];

// --- observations ----------------------------------------------------------------------------

// A quantitative test: LOINC code, UCUM unit, and the range values are drawn from.
struct LabTest {
  const char* loinc;
  const char* display;
  const char* unit;  // UCUM code, also used as the unit text (as Synthea does)
  double low, high;  // typical range for an adult
  int decimals;
};

struct Panel {
  Code code;  // LOINC panel code
  const LabTest* tests;
  size_t count;
};

enum PanelKind {
  kPanelLipid,
  kPanelBasicMetabolic,
  kPanelCompleteBloodCount,
  kPanelComprehensiveMetabolic,
  kPanelUrinalysis,
  kPanelKindCount
};
extern const Panel kPanels[kPanelKindCount];

// Single tests used outside panels.
extern const LabTest kHemoglobinA1c;
extern const LabTest kMicroalbuminRatio;
extern const LabTest kEgfr;
extern const LabTest kPsa;
extern const LabTest kBoneDensityTScore;
extern const LabTest kFev1Fvc;
extern const LabTest kIgeTests[];
extern const size_t kIgeTestCount;

// Vital signs (values computed from the patient's body, see patient.cc).
extern const Code kVitalHeight;             // 8302-2 cm
extern const Code kVitalWeight;             // 29463-7 kg
extern const Code kVitalBmi;                // 39156-5 kg/m2
extern const Code kVitalBmiPercentile;      // 59576-9 %
extern const Code kVitalWeightForLength;    // 77606-2 %
extern const Code kVitalHeadCircumference;  // 9843-4 cm
extern const Code kVitalBloodPressure;      // 85354-9, components:
extern const Code kVitalDiastolic;          // 8462-4 mm[Hg]
extern const Code kVitalSystolic;           // 8480-6 mm[Hg]
extern const Code kVitalHeartRate;          // 8867-4 /min
extern const Code kVitalRespiratoryRate;    // 9279-1 /min
extern const Code kVitalTemperature;        // 8310-5 Cel
extern const Code kVitalPainScore;          // 72514-3 {score}
extern const Code kSurveyTobacco;           // 72166-2, SNOMED answers below
extern const Code kTobaccoAnswers[3];       // never, former, current smoker
extern const Code kSurveyMmse;              // 72106-8 (score)
extern const Code kSurveyPhq2;              // 55758-7 {score}

// Social history questions (valueCodeableConcept answers), asked occasionally.
struct SocialQuestion {
  Code question;  // LOINC
  Code answers[3];
  size_t answer_count;
  const char* answer_system;  // SNOMED or LOINC answer list
};
extern const SocialQuestion kSocialHistory[];
extern const size_t kSocialHistoryCount;

// --- conditions, medications, care plans -----------------------------------------------------

struct CarePlanDef {
  Code category;  // SNOMED
  Code activities[3];
  size_t activity_count;
};

// A long-term condition: who gets it, when, and what follows from it.
struct ChronicDisease {
  Code condition;        // SNOMED
  double lifetime_risk;  // probability of onset at some age in [onset_min_age, onset_max_age]
  int onset_min_age, onset_max_age;
  char sex;            // 'A' any, 'F', 'M'
  int diagnosis_kind;  // EncounterKind of the diagnosing visit; kAtCheckup: the next checkup
  Code meds[3];        // RxNorm; added in this order as it progresses
  size_t med_count;
  const CarePlanDef* care_plan;  // nullable
  int follow_up_kind;            // EncounterKind, or -1 for none
  int follow_ups_per_year;
  int follow_up_years;             // 0: as long as the disease lasts
  int monitoring_panel;            // PanelKind checked at visits, or -1
  const char* wellness_procedure;  // SNOMED procedure done at checkups and follow-ups, or nullptr
  const char* wellness_procedure_display;
};
constexpr int kAtCheckup = -1;
extern const ChronicDisease kChronicDiseases[];
extern const size_t kChronicDiseaseCount;

// A short illness or injury: an acute encounter, then recovery.
struct AcuteIllness {
  Code condition;        // SNOMED
  double rate_per_year;  // mean episodes per person-year in its age band
  int min_age, max_age;
  int encounter_kind;  // EncounterKind
  int recovery_days_min, recovery_days_max;
  Code med;  // RxNorm, code "" = none
  double med_probability;
  Code procedure;                 // SNOMED, code "" = none
  const CarePlanDef* care_plan;   // nullable
  const char* imaging_body_site;  // SNOMED body site for an X-ray, or nullptr
  const char* imaging_body_site_display;
};
extern const AcuteIllness kAcuteIllnesses[];
extern const size_t kAcuteIllnessCount;

// Further procedures done for some acute conditions, each with its probability.
struct SecondaryProcedure {
  const char* condition;  // SNOMED code of the AcuteIllness
  Code procedure;
  double probability;
};
extern const SecondaryProcedure kSecondaryProcedures[];
extern const size_t kSecondaryProcedureCount;

// Pregnancy (a module of its own: a series of prenatal visits, birth, postnatal visit).
extern const Code kNormalPregnancy;
extern const Code kMiscarriage;
extern const CarePlanDef kAntenatalCarePlan;
extern const CarePlanDef kAllergyCarePlan;
extern const Code kPrenatalInitialProcedures[];
extern const size_t kPrenatalInitialProcedureCount;
extern const Code kPrenatalSecondTrimesterProcedures[];
extern const size_t kPrenatalSecondTrimesterProcedureCount;
extern const Code kPrenatalRoutineProcedures[2];  // fundal height, fetal heart
extern const Code kChildbirth;
// Done at some births, each with its probability.
struct BirthProcedure {
  Code procedure;
  double probability;
};
extern const BirthProcedure kBirthProcedures[];
extern const size_t kBirthProcedureCount;
extern const Code kPrenatalThirdTrimesterProcedures[2];  // blood count, Tdap vaccination
extern const Code kRhImmunization;
extern const Code kPostnatalExam;
extern const Code kContraceptives[];
extern const size_t kContraceptiveCount;

// Routine procedures.
extern const Code kMedicationReconciliation;
extern const Code kDepressionScreening;
extern const Code kColonoscopy;
extern const Code kMammography;
extern const Code kIntramuscularInjection;
extern const Code kSubcutaneousImmunotherapy;
extern const Code kAllergyScreeningTest;
extern const Code kInsertIntrauterineDevice;
extern const Code kInsertSubcutaneousContraceptive;
extern const Code kRemoveSubcutaneousContraceptive;

// Allergies.
struct AllergyDef {
  Code code;                // SNOMED
  const char* category;     // food, environment, medication
  const char* criticality;  // low, high
};
extern const AllergyDef kAllergies[];
extern const size_t kAllergyCount;
extern const Code kAllergicRhinitis;
extern const Code kAllergyMeds[2];  // RxNorm: loratadine, epinephrine auto-injector

// Implanted devices.
struct DeviceDef {
  Code type;  // SNOMED
  int lifetime_years;
};
extern const DeviceDef kDevices[];
extern const size_t kDeviceCount;

// Imaging.
extern const Code kModalityDigitalRadiography;  // DICOM DCM "DX"
extern const char kSopClassDigitalXray[];

// --- immunizations ---------------------------------------------------------------------------

struct VaccineDef {
  Code cvx;
  // Doses due at these ages, in months (0 ends the list, except a first entry of 0 = birth).
  int dose_months[6];
  size_t dose_count;
  int repeat_every_months;  // after the last scheduled dose, or 0
};
extern const VaccineDef kVaccines[];
extern const size_t kVaccineCount;
extern const size_t kInfluenzaVaccineIndex;  // annual, from 6 months of age

// --- claims and documents --------------------------------------------------------------------

struct Payer {
  const char* name;
  double weight_under_65;
  double weight_65_plus;
};
extern const Payer kPayers[];
extern const size_t kPayerCount;

// EOB item adjudication categories (CMS Blue Button).
struct AdjudicationDef {
  const char* code;
  const char* display;
};
extern const AdjudicationDef kAdjudications[6];

// Document types for clinical notes (LOINC).
extern const Code kNoteTypes[];
extern const size_t kNoteTypeCount;

}  // namespace synth
}  // namespace fhirbulk

#endif  // FHIRBULK_SYNTH_CODES_H_
