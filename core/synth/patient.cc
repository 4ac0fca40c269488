// The life model of one synthetic patient (see patient.h). Planning first (demographics, the
// dates of every visit and what each is for), then the visits in time order, each written
// through RecordWriter as it happens: memory is bounded by one patient's plan.

#include "synth/patient.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "synth/clock.h"
#include "synth/codes.h"
#include "synth/demographics.h"
#include "synth/facility.h"
#include "synth/prng.h"
#include "synth/records.h"

namespace fhirbulk {
namespace synth {

namespace {

constexpr int64_t kDay = kSecondsPerDay;
constexpr int64_t kYear = kSecondsPerYear;
constexpr int64_t kMonth = kSecondsPerYear / 12;
constexpr int64_t kWeek = 7 * kSecondsPerDay;

enum VisitReason : uint8_t {
  kVisitWellness,
  kVisitChronicDiagnosis,
  kVisitFollowUp,
  kVisitAcute,
  kVisitPrenatalInitial,
  kVisitPrenatal,
  kVisitBirth,
  kVisitMiscarriage,
  kVisitPostnatal,
  kVisitAllergyInitial,
  kVisitImmunotherapy,
  kVisitContraception,
};

// Visit.stage of a kVisitFollowUp that is a hospital admission.
constexpr int kStageAdmission = 1;

// kContraceptives entries given at a visit of their own rather than renewed at checkups.
constexpr int kImplant = 4, kIntrauterine = 5, kInjection = 6;

struct Visit {
  int64_t time;
  uint32_t seq;  // insertion order: breaks ties so the sort is a total order
  uint8_t reason;
  uint8_t stage;
  uint16_t arg;
  bool operator<(const Visit& o) const { return time != o.time ? time < o.time : seq < o.seq; }
};

struct Episode {  // an acute illness or injury
  const AcuteIllness* def;
  size_t condition;
};

struct Pregnancy {
  size_t condition;  // the "Normal pregnancy" condition
  size_t miscarriage_condition;
  bool miscarriage;
};

// Fraction of adult height reached at each age 0..18 (CDC growth charts, rounded).
constexpr double kHeightFraction[19] = {0.29, 0.44, 0.51,  0.56,  0.60, 0.64, 0.68,
                                        0.71, 0.74, 0.77,  0.80,  0.83, 0.86, 0.90,
                                        0.94, 0.97, 0.985, 0.995, 1.0};

int DiseaseIndex(const char* snomed) {
  for (size_t i = 0; i < kChronicDiseaseCount; i++) {
    if (std::strcmp(kChronicDiseases[i].condition.code, snomed) == 0) return static_cast<int>(i);
  }
  return -1;
}

// Diseases the life model treats specially (looked up once by code).
struct DiseaseIds {
  int hypertension = DiseaseIndex("59621000");
  int prediabetes = DiseaseIndex("15777000");
  int diabetes = DiseaseIndex("44054006");
  int hyperlipidemia = DiseaseIndex("55822004");
  int obesity = DiseaseIndex("162864005");
  int childhood_asthma = DiseaseIndex("233678006");
  int atrial_fibrillation = DiseaseIndex("49436004");
  int coronary = DiseaseIndex("53741008");
  int anemia = DiseaseIndex("271737000");
  int chronic_sinusitis = DiseaseIndex("40055000");
  int osteoporosis = DiseaseIndex("64859006");
  int alzheimers = DiseaseIndex("26929004");
  int adhd = DiseaseIndex("192127007");
  int depression = DiseaseIndex("370143000");
  int breast_cancer = DiseaseIndex("254837009");
  int prostate_cancer = DiseaseIndex("126906006");
  int copd = DiseaseIndex("185086009");
};

const DiseaseIds& Diseases() {
  static const DiseaseIds ids;
  return ids;
}

// Index of an entry of `table` chosen with probability proportional to weight(entry).
template <typename T, typename WeightFn>
size_t PickWeighted(Rng* rng, const T* table, size_t n, WeightFn weight) {
  double total = 0;
  for (size_t i = 0; i < n; i++) total += weight(table[i]);
  double x = rng->Uniform() * total;
  for (size_t i = 0; i < n; i++) {
    if (x < weight(table[i])) return i;
    x -= weight(table[i]);
  }
  return n - 1;
}

bool IsEmergencyKind(int kind) {
  const char* cls = kEncounterTypes[kind].act_class;
  return cls[0] == 'E' || cls[0] == 'I';
}

}  // namespace

Uuid PatientId(uint64_t seed, uint64_t index) {
  Rng rng(seed, Stream::kPatientId, index);
  return NewUuid(&rng);
}

class PatientGenerator::Life {
 public:
  Status Run(uint64_t seed, uint64_t index, ResourceSink* sink);

 private:
  // Planning.
  void MakePerson(uint64_t seed, uint64_t index);
  void PlanWellness();
  void PlanChronic();
  void PlanAcute();
  void PlanPregnancies();
  void PlanAllergies();
  void PlanContraception();
  void AddVisit(int64_t time, VisitReason reason, size_t arg = 0, int stage = 0);
  int64_t ClinicHours(int64_t t);
  size_t AddCondition(const Code& code, int64_t onset, int64_t abatement, int chronic);

  // Visits.
  void ProcessVisit(const Visit& v);
  void Wellness(const Visit& v, bool detailed);
  void ChronicDiagnosis(const Visit& v, bool detailed);
  void FollowUp(const Visit& v, bool detailed);
  void Acute(const Visit& v);
  void PrenatalInitial(const Visit& v);
  void Prenatal(const Visit& v);
  void Birth(const Visit& v);
  void Miscarriage(const Visit& v);
  void Postnatal(const Visit& v);
  void AllergyInitial(const Visit& v, bool detailed);
  void Immunotherapy(const Visit& v);
  void ContraceptionVisit(const Visit& v);
  bool Pregnant(int64_t t) const;

  // Pieces of visits.
  void Open(int kind, int64_t start, const Facility* facility, const Code* reason);
  void Close();
  void Diagnose(ConditionRec* c, const CarePlanDef* plan);
  void Prescribe(const Code& med, const ConditionRec* reason);
  void RenewChronicMeds(int only_condition);
  bool HasActiveMeds(int64_t t) const;
  static bool MedsDue(const ConditionRec& c, int64_t t);
  bool AnyMedsDue(int64_t t) const;
  bool AnyChronicActive(int64_t t) const;
  bool Active(int disease, int64_t t) const;
  void Vitals();
  void Labs();
  void Panel(int panel);
  void SingleLab(const LabTest& test);
  double LabValue(const LabTest& test);
  void WellnessProcedures();
  void Immunizations();
  void Contraception();
  void MaybeDocument(double probability);
  void BuildNote();
  double HeightCm(int64_t t) const;
  double Bmi(int64_t t) const;
  int64_t Cents(int64_t lo, int64_t hi) { return rng_.Range(lo, hi); }

  uint64_t seed_ = 0;
  Rng rng_{0, Stream::kPatient, 0};
  Person person_;
  RecordWriter writer_;
  std::vector<ConditionRec> conditions_;
  std::vector<Visit> visits_;
  std::vector<int64_t> wellness_times_;
  std::vector<Episode> episodes_;
  std::vector<Pregnancy> pregnancies_;
  std::vector<int> allergies_;  // indices into kAllergies
  int rhinitis_ = -1;           // condition index of allergic rhinitis, or -1
  uint32_t next_seq_ = 0;
  EncounterCtx enc_;

  // What was done when (0 = never), for screening and lab intervals.
  int64_t last_panel_[kPanelKindCount] = {};
  int64_t last_a1c_ = 0, last_colonoscopy_ = 0, last_mammogram_ = 0, last_dxa_ = 0;
  std::vector<uint8_t> doses_;      // per vaccine: doses given (or assumed given)
  std::vector<int64_t> last_dose_;  // per vaccine: when the last dose was due or given
  std::vector<Uuid> lab_ids_;
  std::vector<const char*> lab_displays_;
  std::string note_;
  std::vector<size_t> visit_conditions_;  // conditions diagnosed in the current encounter
};

PatientGenerator::PatientGenerator(uint64_t seed) : seed_(seed), life_(new Life) {}
PatientGenerator::~PatientGenerator() = default;

Status PatientGenerator::Generate(uint64_t index, ResourceSink* sink) {
  return life_->Run(seed_, index, sink);
}

// --- planning ----------------------------------------------------------------------------------

Status PatientGenerator::Life::Run(uint64_t seed, uint64_t index, ResourceSink* sink) {
  seed_ = seed;
  rng_ = Rng(seed, Stream::kPatient, index);
  conditions_.clear();
  visits_.clear();
  wellness_times_.clear();
  episodes_.clear();
  pregnancies_.clear();
  allergies_.clear();
  rhinitis_ = -1;
  next_seq_ = 0;
  std::fill(std::begin(last_panel_), std::end(last_panel_), 0);
  last_a1c_ = last_colonoscopy_ = last_mammogram_ = last_dxa_ = 0;
  doses_.assign(kVaccineCount, 0);
  last_dose_.assign(kVaccineCount, 0);

  MakePerson(seed, index);
  PlanWellness();
  PlanChronic();
  PlanAcute();
  PlanPregnancies();
  PlanAllergies();
  PlanContraception();
  std::sort(visits_.begin(), visits_.end());

  writer_.Begin(&person_, &rng_, sink);
  int64_t last = person_.birth;
  for (const Visit& v : visits_) last = std::max(last, v.time);
  int64_t patient_updated =
      std::max(last, EhrGoLive() + rng_.Range(0, 2 * kYear)) + rng_.Range(3600, 30 * kDay);
  writer_.WritePatient(std::min(patient_updated, SimulationEnd()));
  for (const Visit& v : visits_) {
    ProcessVisit(v);
    if (!writer_.status().ok()) break;
  }
  if (writer_.status().ok()) writer_.WriteProvenance();
  return writer_.status();
}

int64_t PatientGenerator::Life::ClinicHours(int64_t t) {
  // 13:00-21:00 UTC: 8 or 9 am to 4 or 5 pm in Massachusetts. (Floor division: t is negative
  // before 1970.)
  int64_t day = t >= 0 ? t / kDay : -((-t + kDay - 1) / kDay);
  return day * kDay + int64_t{13} * 3600 + rng_.Range(0, 8 * 3600 - 1);
}

void PatientGenerator::Life::AddVisit(int64_t time, VisitReason reason, size_t arg, int stage) {
  if (time > person_.end || time < person_.birth) return;
  visits_.push_back(
      {time, next_seq_++, reason, static_cast<uint8_t>(stage), static_cast<uint16_t>(arg)});
}

size_t PatientGenerator::Life::AddCondition(const Code& code, int64_t onset, int64_t abatement,
                                            int chronic) {
  ConditionRec c;
  c.code = code;
  c.id = NewUuid(&rng_);
  c.onset = onset;
  c.abatement = abatement;
  c.chronic = chronic;
  if (chronic >= 0 && kChronicDiseases[chronic].care_plan != nullptr) {
    c.has_plan = true;
    c.care_plan_id = NewUuid(&rng_);
    c.care_team_id = NewUuid(&rng_);
  }
  conditions_.push_back(c);
  return conditions_.size() - 1;
}

void PatientGenerator::Life::MakePerson(uint64_t seed, uint64_t index) {
  Person& p = person_;
  Rng& r = rng_;
  p.index = index;
  p.id = PatientId(seed, index);
  p.female = r.Chance(0.51);

  // Age on the last day of the simulation: roughly the US age pyramid.
  static const double kDecadeWeights[10] = {12, 12.5, 13.5, 13, 12, 13, 12, 8, 3.5, 0.8};
  int decade = static_cast<int>(r.Weighted(kDecadeWeights, 10));
  int64_t age = int64_t{decade} * 10 * kYear + static_cast<int64_t>(r.Below(10 * kYear));
  p.birth = SimulationEnd() - age;
  p.death = 0;
  int age_years = p.AgeAt(SimulationEnd());
  if (age_years >= 60 && r.Chance(0.04 + (age_years - 60) * 0.006)) {
    int64_t from = std::max(p.birth + 60 * kYear, DetailedHistoryStart());
    p.death = from + static_cast<int64_t>(r.Below(static_cast<uint64_t>(SimulationEnd() - from)));
  }
  p.end = p.death != 0 ? p.death : SimulationEnd();
  bool adult = p.AgeAt(p.end) >= 18;

  p.given = p.female ? kFemaleGivenNames[r.Below(kFemaleGivenNameCount)]
                     : kMaleGivenNames[r.Below(kMaleGivenNameCount)];
  p.family = kFamilyNames[r.Below(kFamilyNameCount)];
  p.maiden_family = nullptr;
  p.marital = 'S';
  if (adult) {
    static const double kMaritalWeights[4] = {0.50, 0.33, 0.10, 0.07};
    static const char kMarital[4] = {'M', 'S', 'D', 'W'};
    p.marital = kMarital[r.Weighted(kMaritalWeights, 4)];
    if (p.marital == 'W' && p.AgeAt(p.end) < 50) p.marital = 'M';
    if (p.female && p.marital != 'S' && r.Chance(0.75)) {
      p.maiden_family = p.family;
      p.family = kFamilyNames[r.Below(kFamilyNameCount)];
    }
    p.prefix = !p.female ? "Mr." : (p.marital == 'M' || p.marital == 'W') ? "Mrs." : "Ms.";
  } else {
    p.prefix = nullptr;
  }
  p.plain = p.given;
  p.plain += ' ';
  p.plain += p.family;
  p.display.clear();
  if (p.prefix != nullptr) {
    p.display = p.prefix;
    p.display += ' ';
  }
  p.display += p.plain;

  p.race =
      &kRaces[PickWeighted(&r, kRaces, kRaceCount, [](const OmbCategory& c) { return c.weight; })];
  bool other_race = std::strcmp(p.race->code, "2131-1") == 0;
  p.hispanic = r.Chance(other_race ? 0.6 : 0.08);
  p.language = &kEnglish;
  bool asian = std::strcmp(p.race->code, "2028-9") == 0;
  if (p.hispanic && r.Chance(0.45)) {
    p.language = &kOtherLanguages[0];  // Spanish
  } else if (asian && r.Chance(0.3)) {
    p.language = &kOtherLanguages[r.Chance(0.6) ? 2 : 3];  // Chinese, Vietnamese
  } else if (r.Chance(0.04)) {
    p.language = &kOtherLanguages[r.Below(kOtherLanguageCount)];
  }

  p.town = &TownAt(r.Uniform());
  p.street = std::to_string(r.Range(1, 999));
  p.street += ' ';
  p.street += kStreetNames[r.Below(kStreetNameCount)];
  p.street += ' ';
  p.street += kStreetSuffixes[r.Below(kStreetSuffixCount)];
  if (r.Chance(0.25)) {
    p.street += r.Chance(0.7) ? " Apt " : " Unit ";
    p.street += std::to_string(r.Range(1, 99));
  }
  p.latitude = p.town->latitude + r.Uniform(-0.05, 0.05);
  p.longitude = p.town->longitude + r.Uniform(-0.05, 0.05);

  auto digits = [&r](std::string* s, int n) {
    for (int i = 0; i < n; i++) s->push_back(static_cast<char>('0' + r.Below(10)));
  };
  p.phone = "555-";
  digits(&p.phone, 3);
  p.phone += '-';
  digits(&p.phone, 4);
  p.ssn = "999-";  // 9xx is never issued: the numbers cannot be real
  digits(&p.ssn, 2);
  p.ssn += '-';
  digits(&p.ssn, 4);
  p.drivers_license.clear();
  if (p.AgeAt(p.end) >= 16 && r.Chance(0.85)) {
    p.drivers_license = "S99";
    digits(&p.drivers_license, 7);
  }
  p.passport.clear();
  if (adult && r.Chance(0.45)) {
    p.passport = "X";
    digits(&p.passport, 8);
    p.passport += 'X';
  }
  p.mothers_maiden_name = kFemaleGivenNames[r.Below(kFemaleGivenNameCount)];
  p.mothers_maiden_name += ' ';
  p.mothers_maiden_name += kFamilyNames[r.Below(kFamilyNameCount)];
  if (r.Chance(0.82)) {
    p.birth_town = &TownAt(r.Uniform());
    p.birth_place = nullptr;
  } else {
    p.birth_town = nullptr;
    p.birth_place = &kDistantBirthPlaces[r.Below(kDistantBirthPlaceCount)];
  }
  static const double kSmokingWeights[3] = {0.68, 0.20, 0.12};
  p.smoking = adult ? static_cast<int>(r.Weighted(kSmokingWeights, 3)) : 0;
  p.twin = r.Chance(0.02);
  p.adult_height_cm = p.female ? r.Normal(162.0, 6.5) : r.Normal(175.5, 7.0);
  p.bmi_base = std::min(33.0, std::max(18.5, r.Normal(26.0, 3.5)));

  p.payer_under_65 = &kPayers[PickWeighted(&r, kPayers, kPayerCount,
                                           [](const Payer& x) { return x.weight_under_65; })];
  p.payer_65_plus = &kPayers[PickWeighted(&r, kPayers, kPayerCount,
                                          [](const Payer& x) { return x.weight_65_plus; })];

  uint64_t visible = FacilitiesVisibleTo(index);
  uint64_t hospitals = (visible + kHospitalStride - 1) / kHospitalStride;
  MakeFacility(seed, r.Below(visible), &p.primary);
  MakeFacility(seed, r.Below(hospitals) * kHospitalStride, &p.hospital);
  // Pills (the first four) half the time, else an implant, an IUD or injections.
  static const double kContraceptiveWeights[7] = {0.14, 0.12, 0.12, 0.12, 0.12, 0.16, 0.22};
  p.contraceptive =
      p.female && r.Chance(0.45) ? static_cast<int>(r.Weighted(kContraceptiveWeights, 7)) : -1;
}

void PatientGenerator::Life::PlanWellness() {
  static const int kInfantMonths[] = {0, 1, 2, 4, 6, 9, 12, 15, 18, 24, 30};
  const Person& p = person_;
  auto add = [this](int64_t t) {
    t = ClinicHours(t);
    if (t > person_.end) return;
    wellness_times_.push_back(t);
    AddVisit(t, kVisitWellness);
  };
  for (int m : kInfantMonths) add(p.birth + m * kMonth + 14 * kDay + rng_.Range(0, 7) * kDay);
  for (int age = 3;; age++) {
    int64_t t = p.birth + age * kYear + rng_.Range(-20, 40) * kDay;
    if (t > p.end) break;
    // Young adults come every 3 years; the yearly visits before the detailed history only
    // matter when they renewed a prescription (see Wellness).
    if (age >= 18 && age < 40 && (age - 18) % 3 != 0 && t >= DetailedHistoryStart()) continue;
    add(t);
  }
}

void PatientGenerator::Life::PlanChronic() {
  const Person& p = person_;
  const DiseaseIds& ids = Diseases();
  for (size_t d = 0; d < kChronicDiseaseCount; d++) {
    const ChronicDisease& def = kChronicDiseases[d];
    if (def.sex == 'F' && !p.female) continue;
    if (def.sex == 'M' && p.female) continue;
    if (!rng_.Chance(def.lifetime_risk)) continue;
    int64_t onset = p.birth + static_cast<int64_t>(
                                  rng_.Uniform(def.onset_min_age, def.onset_max_age + 1) * kYear);
    if (onset > p.end) continue;
    int64_t diagnosis;
    bool at_checkup = def.diagnosis_kind == kAtCheckup;
    if (at_checkup) {
      auto it = std::lower_bound(wellness_times_.begin(), wellness_times_.end(), onset);
      if (it == wellness_times_.end()) continue;
      diagnosis = *it;
    } else {
      diagnosis = ClinicHours(onset);
      if (diagnosis > p.end) continue;
    }
    int64_t abatement = 0;
    int di = static_cast<int>(d);
    if ((di == ids.childhood_asthma || di == ids.adhd) && rng_.Chance(0.5)) {
      abatement = std::max(diagnosis + kYear, p.birth + rng_.Range(16, 24) * kYear);
    } else if (di == ids.depression && rng_.Chance(0.6)) {
      abatement = diagnosis + rng_.Range(1, 4) * kYear + rng_.Range(0, 300) * kDay;
    } else if (di == ids.chronic_sinusitis && rng_.Chance(0.3)) {
      abatement = diagnosis + rng_.Range(1, 5) * kYear;
    }
    size_t c = AddCondition(def.condition, diagnosis, abatement, di);
    if (!at_checkup) AddVisit(diagnosis, kVisitChronicDiagnosis, c);
    if (di == ids.copd || di == ids.coronary || di == ids.atrial_fibrillation ||
        di == ids.diabetes || di == ids.alzheimers) {
      // Hospital admissions for exacerbations, in the detailed history.
      int64_t from = std::max(diagnosis, DetailedHistoryStart());
      int64_t to = abatement != 0 ? std::min(abatement, p.end) : p.end;
      if (to > from) {
        int n = rng_.Poisson(0.15 * static_cast<double>(to - from) / kYear);
        for (int i = 0; i < n; i++) {
          int64_t t = from + static_cast<int64_t>(rng_.Below(static_cast<uint64_t>(to - from)));
          AddVisit(t, kVisitFollowUp, c, kStageAdmission);
        }
      }
    }
    if (def.follow_up_kind >= 0 && def.follow_ups_per_year > 0) {
      // Followed for follow_up_years (or as long as it lasts); before the detailed history
      // only the first two years of follow-up are kept.
      int64_t interval = kYear / def.follow_ups_per_year;
      int limit = def.follow_up_years > 0 ? def.follow_up_years * def.follow_ups_per_year : 1 << 30;
      for (int i = 1; i <= limit; i++) {
        int64_t t = diagnosis + i * interval + rng_.Range(-14, 14) * kDay;
        if (t > p.end || (abatement != 0 && t > abatement)) break;
        if (t < DetailedHistoryStart() && i > 2 * def.follow_ups_per_year) continue;
        if (!IsEmergencyKind(def.follow_up_kind)) t = ClinicHours(t);
        AddVisit(t, kVisitFollowUp, c);
      }
    }
  }
}

void PatientGenerator::Life::PlanAcute() {
  const Person& p = person_;
  for (size_t a = 0; a < kAcuteIllnessCount; a++) {
    const AcuteIllness& def = kAcuteIllnesses[a];
    int64_t from = std::max(p.birth + def.min_age * kYear, DetailedHistoryStart());
    int64_t to = std::min(p.birth + (def.max_age + 1) * kYear, p.end);
    if (to <= from) continue;
    double years = static_cast<double>(to - from) / kYear;
    int n = rng_.Poisson(def.rate_per_year * years);
    for (int i = 0; i < n; i++) {
      int64_t t = from + static_cast<int64_t>(rng_.Below(static_cast<uint64_t>(to - from)));
      if (!IsEmergencyKind(def.encounter_kind)) t = ClinicHours(t);
      int64_t recovery = rng_.Range(def.recovery_days_min, def.recovery_days_max) * kDay;
      size_t c = AddCondition(def.condition, t, t + recovery, -1);
      if (def.care_plan != nullptr) {
        conditions_[c].has_plan = true;
        conditions_[c].care_plan_id = NewUuid(&rng_);
        conditions_[c].care_team_id = NewUuid(&rng_);
      }
      episodes_.push_back({&def, c});
      AddVisit(t, kVisitAcute, episodes_.size() - 1);
    }
  }
}

void PatientGenerator::Life::PlanPregnancies() {
  const Person& p = person_;
  if (!p.female) return;
  int64_t from = std::max(p.birth + 18 * kYear, DetailedHistoryStart());
  int64_t to = std::min(p.birth + 42 * kYear, p.end);
  if (to <= from) return;
  int n = std::min(4, rng_.Poisson(0.25 * static_cast<double>(to - from) / kYear));
  int64_t earliest = from;
  for (int i = 0; i < n; i++) {
    if (to <= earliest) break;
    int64_t conception =
        earliest + static_cast<int64_t>(rng_.Below(static_cast<uint64_t>(to - earliest)));
    int64_t initial = ClinicHours(conception + 8 * kWeek);
    if (initial > p.end) break;
    bool miscarriage = rng_.Chance(0.15);
    int64_t end = miscarriage ? conception + rng_.Range(9, 12) * kWeek
                              : conception + rng_.Range(266, 287) * kDay;
    Pregnancy preg;
    preg.miscarriage = miscarriage;
    preg.condition = AddCondition(kNormalPregnancy, initial, end, -1);
    conditions_[preg.condition].has_plan = true;
    conditions_[preg.condition].care_plan_id = NewUuid(&rng_);
    conditions_[preg.condition].care_team_id = NewUuid(&rng_);
    preg.miscarriage_condition =
        miscarriage ? AddCondition(kMiscarriage, end, end + 30 * kDay, -1) : 0;
    pregnancies_.push_back(preg);
    size_t idx = pregnancies_.size() - 1;
    AddVisit(initial, kVisitPrenatalInitial, idx);
    if (miscarriage) {
      AddVisit(end, kVisitMiscarriage, idx);
    } else {
      static const int kWeeks[] = {12, 16, 20, 24, 28, 32, 36, 38};
      for (size_t w = 0; w < sizeof(kWeeks) / sizeof(kWeeks[0]); w++) {
        AddVisit(ClinicHours(conception + kWeeks[w] * kWeek), kVisitPrenatal, idx,
                 static_cast<int>(w));
      }
      AddVisit(end, kVisitBirth, idx);
      AddVisit(ClinicHours(end + 6 * kWeek), kVisitPostnatal, idx);
    }
    earliest = end + rng_.Range(120, 900) * kDay;
  }
}

void PatientGenerator::Life::PlanAllergies() {
  const Person& p = person_;
  if (!rng_.Chance(0.15)) return;
  int64_t onset = ClinicHours(p.birth + static_cast<int64_t>(rng_.Uniform(1, 13) * kYear));
  if (onset > p.end) return;
  int count = 1 + std::min(7, rng_.Poisson(2.5));
  bool environmental = false;
  for (int i = 0; i < count; i++) {
    int a = static_cast<int>(rng_.Below(kAllergyCount));
    if (std::find(allergies_.begin(), allergies_.end(), a) != allergies_.end()) continue;
    allergies_.push_back(a);
    if (std::strcmp(kAllergies[a].category, "environment") == 0) environmental = true;
  }
  AddVisit(onset, kVisitAllergyInitial);
  if (environmental && rng_.Chance(0.6)) {
    rhinitis_ = static_cast<int>(AddCondition(kAllergicRhinitis, onset, 0, -1));
    ConditionRec& rhinitis = conditions_[rhinitis_];
    rhinitis.has_plan = true;
    rhinitis.care_plan_id = NewUuid(&rng_);
    rhinitis.care_team_id = NewUuid(&rng_);
    if (rng_.Chance(0.8)) {
      // Allergen immunotherapy: monthly shots for three to four years, started some time
      // after the diagnosis.
      int64_t from = std::max(onset, DetailedHistoryStart() - 3 * kYear);
      if (from >= p.end) return;
      int64_t start = from + static_cast<int64_t>(rng_.Below(static_cast<uint64_t>(p.end - from)));
      int shots = static_cast<int>(rng_.Range(36, 48));
      for (int i = 0; i < shots; i++) {
        int64_t t = start + i * kMonth;
        if (t < DetailedHistoryStart()) continue;
        AddVisit(ClinicHours(t), kVisitImmunotherapy);
      }
    }
  }
}

void PatientGenerator::Life::PlanContraception() {
  const Person& p = person_;
  int c = p.contraceptive;
  if (c != kImplant && c != kIntrauterine && c != kInjection) return;
  int64_t interval = c == kInjection ? 3 * kMonth : c == kImplant ? 3 * kYear : 5 * kYear;
  int64_t from = std::max(p.birth + 15 * kYear, DetailedHistoryStart() - interval);
  int64_t to = std::min(p.birth + 45 * kYear, p.end);
  if (to <= from) return;
  bool first = true;
  for (int64_t t = from + static_cast<int64_t>(rng_.Below(interval)); t <= to; t += interval) {
    if (t < DetailedHistoryStart()) continue;
    AddVisit(ClinicHours(t), kVisitContraception, 0, first ? 0 : 1);  // stage 1: a renewal
    first = false;
  }
}

// --- visits ------------------------------------------------------------------------------------

void PatientGenerator::Life::ProcessVisit(const Visit& v) {
  bool detailed = v.time >= DetailedHistoryStart();
  switch (v.reason) {
    case kVisitWellness:
      Wellness(v, detailed);
      break;
    case kVisitChronicDiagnosis:
      ChronicDiagnosis(v, detailed);
      break;
    case kVisitFollowUp:
      FollowUp(v, detailed);
      break;
    case kVisitAcute:
      Acute(v);
      break;
    case kVisitPrenatalInitial:
      PrenatalInitial(v);
      break;
    case kVisitPrenatal:
      Prenatal(v);
      break;
    case kVisitBirth:
      Birth(v);
      break;
    case kVisitMiscarriage:
      Miscarriage(v);
      break;
    case kVisitPostnatal:
      Postnatal(v);
      break;
    case kVisitAllergyInitial:
      AllergyInitial(v, detailed);
      break;
    case kVisitImmunotherapy:
      Immunotherapy(v);
      break;
    case kVisitContraception:
      ContraceptionVisit(v);
      break;
  }
}

void PatientGenerator::Life::Open(int kind, int64_t start, const Facility* facility,
                                  const Code* reason) {
  const EncounterType& type = kEncounterTypes[kind];
  enc_.id = NewUuid(&rng_);
  enc_.kind = kind;
  enc_.start = start;
  enc_.end = start + rng_.Range(type.minutes_min, type.minutes_max) * 60;
  if (enc_.end > person_.end) enc_.end = std::max(start + 60, person_.end);  // the record's end
  enc_.facility = facility;
  enc_.reason = reason;
  enc_.discharge = type.act_class[0] == 'I';
  enc_.lines.clear();
  visit_conditions_.clear();
  writer_.WriteEncounter(enc_);
}

void PatientGenerator::Life::Close() { writer_.WriteClaimAndEob(enc_); }

void PatientGenerator::Life::Diagnose(ConditionRec* c, const CarePlanDef* plan) {
  c->diagnosed = true;
  writer_.WriteCondition(enc_, *c);
  enc_.lines.push_back({ClaimLine::kDiagnosis, kSnomed, c->code, c->id, 0});
  visit_conditions_.push_back(static_cast<size_t>(c - conditions_.data()));
  if (c->chronic >= 0) {
    const ChronicDisease& def = kChronicDiseases[c->chronic];
    if (plan == nullptr) plan = def.care_plan;
    if (def.med_count > 0) c->med_stage = 1;
    const DiseaseIds& ids = Diseases();
    if ((c->chronic == ids.atrial_fibrillation || c->chronic == ids.coronary) && rng_.Chance(0.6)) {
      writer_.WriteDevice(enc_, kDevices[rng_.Below(kDeviceCount)]);
    }
  }
  if (plan != nullptr && c->has_plan) writer_.WriteCarePlanAndTeam(enc_, *plan, *c, c->abatement);
}

void PatientGenerator::Life::Prescribe(const Code& med, const ConditionRec* reason) {
  // Still taken at the end of the record: renewed within the last year and not resolved.
  bool recent = person_.end - enc_.start < kYear;
  bool active =
      recent &&
      (reason == nullptr ? true : reason->abatement == 0 || reason->abatement > person_.end);
  if (reason != nullptr && reason->chronic < 0) active = person_.end - enc_.start < 30 * kDay;
  writer_.WriteMedicationRequest(enc_, med, reason, active);
}

bool PatientGenerator::Life::Active(int disease, int64_t t) const {
  if (disease < 0) return false;
  for (const ConditionRec& c : conditions_) {
    if (c.chronic == disease && c.ActiveAt(t)) return true;
  }
  return false;
}

bool PatientGenerator::Life::HasActiveMeds(int64_t t) const {
  for (const ConditionRec& c : conditions_) {
    if (c.chronic >= 0 && c.med_stage > 0 && c.ActiveAt(t)) return true;
  }
  return false;
}

// Prescriptions run for a year: renewed at the first visit ten months or more after the last.
bool PatientGenerator::Life::MedsDue(const ConditionRec& c, int64_t t) {
  return c.chronic >= 0 && c.med_stage > 0 && c.ActiveAt(t) &&
         (c.last_prescribed == 0 || t - c.last_prescribed >= 300 * kDay);
}

bool PatientGenerator::Life::AnyChronicActive(int64_t t) const {
  for (const ConditionRec& c : conditions_) {
    if (c.chronic >= 0 && c.ActiveAt(t)) return true;
  }
  return false;
}

bool PatientGenerator::Life::AnyMedsDue(int64_t t) const {
  for (const ConditionRec& c : conditions_) {
    if (MedsDue(c, t)) return true;
  }
  return false;
}

void PatientGenerator::Life::RenewChronicMeds(int only_condition) {
  for (size_t i = 0; i < conditions_.size(); i++) {
    ConditionRec& c = conditions_[i];
    if (only_condition >= 0 && static_cast<size_t>(only_condition) != i) continue;
    if (!MedsDue(c, enc_.start)) continue;
    const ChronicDisease& def = kChronicDiseases[c.chronic];
    // The disease progresses: sometimes a further medication is added.
    if (static_cast<size_t>(c.med_stage) < def.med_count && rng_.Chance(0.08)) c.med_stage++;
    for (int s = 0; s < c.med_stage; s++) Prescribe(def.meds[s], &c);
    c.last_prescribed = enc_.start;
  }
}

void PatientGenerator::Life::Wellness(const Visit& v, bool detailed) {
  int age = person_.AgeAt(v.time);
  // Diseases found at this checkup.
  auto found_here = [&v](const ConditionRec& c) {
    return !c.diagnosed && c.chronic >= 0 && c.onset == v.time &&
           kChronicDiseases[c.chronic].diagnosis_kind == kAtCheckup;
  };
  bool diagnoses = false;
  for (const ConditionRec& c : conditions_) diagnoses = diagnoses || found_here(c);
  // Before the detailed history only visits about a chronic disease (found, treated or
  // followed) are kept, as in Synthea's exports.
  if (!detailed && !diagnoses && !AnyMedsDue(v.time) && !AnyChronicActive(v.time)) return;
  int kind = age < 18 ? kEncWellChild : rng_.Chance(0.25) ? kEncCheckUp : kEncWellAdult;
  Open(kind, v.time, &person_.primary, nullptr);
  for (ConditionRec& c : conditions_) {
    if (found_here(c)) Diagnose(&c, nullptr);
  }
  if (detailed) {
    Vitals();
    Labs();
    WellnessProcedures();
    Immunizations();
    if (age >= 18 && rng_.Chance(0.04)) {
      for (size_t q = 0; q < kSocialHistoryCount; q++) {
        const SocialQuestion& sq = kSocialHistory[q];
        writer_.WriteConceptObservation(enc_, "social-history", sq.question, sq.answer_system,
                                        sq.answers[rng_.Below(sq.answer_count)]);
      }
    }
  }
  RenewChronicMeds(-1);
  if (detailed) Contraception();
  if (detailed) MaybeDocument(0.12);
  Close();
}

void PatientGenerator::Life::ChronicDiagnosis(const Visit& v, bool detailed) {
  ConditionRec& c = conditions_[v.arg];
  const ChronicDisease& def = kChronicDiseases[c.chronic];
  Open(def.diagnosis_kind, v.time, &person_.primary, &def.condition);
  Diagnose(&c, nullptr);
  if (detailed) {
    writer_.WriteQuantityObservation(enc_, "vital-signs", kVitalPainScore.code,
                                     kVitalPainScore.display, rng_.Range(0, 6), 0, "{score}");
  }
  RenewChronicMeds(static_cast<int>(v.arg));
  if (detailed) MaybeDocument(0.3);
  Close();
}

void PatientGenerator::Life::FollowUp(const Visit& v, bool detailed) {
  ConditionRec& c = conditions_[v.arg];
  if (!c.ActiveAt(v.time)) return;
  const ChronicDisease& def = kChronicDiseases[c.chronic];
  if (!detailed && !MedsDue(c, v.time)) return;
  const DiseaseIds& ids = Diseases();
  int kind = v.stage == kStageAdmission ? kEncInpatient : def.follow_up_kind;
  const Facility* f = IsEmergencyKind(kind) ? &person_.hospital : &person_.primary;
  Open(kind, v.time, f, &def.condition);
  if (detailed) {
    if (c.chronic == ids.hypertension || rng_.Chance(0.3)) {
      double systolic = rng_.Normal(c.chronic == ids.hypertension ? 138 : 122, 9);
      writer_.WriteBloodPressure(enc_, static_cast<int>(systolic),
                                 static_cast<int>(rng_.Normal(84, 6)));
    }
    writer_.WriteQuantityObservation(enc_, "vital-signs", kVitalPainScore.code,
                                     kVitalPainScore.display, rng_.Range(0, 5), 0, "{score}");
    if (def.monitoring_panel >= 0 && (last_panel_[def.monitoring_panel] == 0 ||
                                      v.time - last_panel_[def.monitoring_panel] >= kYear / 2)) {
      Panel(def.monitoring_panel);
    }
    if (c.chronic == ids.diabetes) SingleLab(kHemoglobinA1c);
    if (def.wellness_procedure != nullptr) {
      writer_.WriteProcedure(&enc_, Code{def.wellness_procedure, def.wellness_procedure_display},
                             &c, Cents(20000, 180000));
    }
  }
  if (detailed && MedsDue(c, v.time)) {
    writer_.WriteProcedure(&enc_, kMedicationReconciliation, &c, Cents(30000, 90000));
  }
  RenewChronicMeds(static_cast<int>(v.arg));
  if (detailed) MaybeDocument(IsEmergencyKind(kind) ? 0.6 : 0.1);
  Close();
}

void PatientGenerator::Life::Acute(const Visit& v) {
  const Episode& ep = episodes_[v.arg];
  const AcuteIllness& def = *ep.def;
  ConditionRec& c = conditions_[ep.condition];
  const Facility* f = IsEmergencyKind(def.encounter_kind) ? &person_.hospital : &person_.primary;
  Open(def.encounter_kind, v.time, f, &c.code);
  Diagnose(&c, def.care_plan);
  if (def.encounter_kind == kEncSymptom) {
    writer_.WriteQuantityObservation(enc_, "vital-signs", kVitalTemperature.code,
                                     kVitalTemperature.display, rng_.Uniform(37.2, 39.6), 1, "Cel");
    writer_.WriteQuantityObservation(enc_, "vital-signs", kVitalPainScore.code,
                                     kVitalPainScore.display, rng_.Range(1, 6), 0, "{score}");
  } else {
    writer_.WriteQuantityObservation(enc_, "vital-signs", kVitalPainScore.code,
                                     kVitalPainScore.display, rng_.Range(4, 9), 0, "{score}");
  }
  if (def.procedure.code[0] != '\0') {
    writer_.WriteProcedure(&enc_, def.procedure, &c, Cents(15000, 900000));
  }
  for (size_t i = 0; i < kSecondaryProcedureCount; i++) {
    const SecondaryProcedure& sp = kSecondaryProcedures[i];
    if (std::strcmp(sp.condition, def.condition.code) == 0 && rng_.Chance(sp.probability)) {
      writer_.WriteProcedure(&enc_, sp.procedure, &c, Cents(5000, 150000));
    }
  }
  if (def.med.code[0] != '\0' && rng_.Chance(def.med_probability)) Prescribe(def.med, &c);
  if (std::strcmp(def.condition.code, "410429000") == 0 && rng_.Chance(0.7)) {
    writer_.WriteDevice(enc_, kDevices[0]);  // survivors of a cardiac arrest get a defibrillator
  }
  if (def.imaging_body_site != nullptr && rng_.Chance(0.22)) {
    writer_.WriteImagingStudy(enc_, def.imaging_body_site, def.imaging_body_site_display);
  }
  MaybeDocument(IsEmergencyKind(def.encounter_kind) ? 0.6 : 0.1);
  Close();
}

void PatientGenerator::Life::PrenatalInitial(const Visit& v) {
  Pregnancy& preg = pregnancies_[v.arg];
  ConditionRec& c = conditions_[preg.condition];
  Open(kEncPrenatalInitial, v.time, &person_.primary, &c.code);
  Diagnose(&c, &kAntenatalCarePlan);
  for (size_t i = 0; i < kPrenatalInitialProcedureCount; i++) {
    writer_.WriteProcedure(&enc_, kPrenatalInitialProcedures[i], &c, Cents(2000, 120000));
  }
  if (rng_.Chance(0.3)) Panel(kPanelUrinalysis);
  MaybeDocument(0.3);
  Close();
}

void PatientGenerator::Life::Prenatal(const Visit& v) {
  Pregnancy& preg = pregnancies_[v.arg];
  ConditionRec& c = conditions_[preg.condition];
  Open(kEncPrenatal, v.time, &person_.primary, &c.code);
  for (const Code& p : kPrenatalRoutineProcedures) {
    writer_.WriteProcedure(&enc_, p, &c, Cents(2000, 60000));
  }
  if (v.stage == 2) {  // week 20: the second-trimester screening
    for (size_t i = 0; i < kPrenatalSecondTrimesterProcedureCount; i++) {
      writer_.WriteProcedure(&enc_, kPrenatalSecondTrimesterProcedures[i], &c, Cents(5000, 150000));
    }
  }
  if (v.stage == 4) {  // week 28: blood count, Tdap, anti-D for Rh-negative mothers
    for (const Code& p : kPrenatalThirdTrimesterProcedures) {
      writer_.WriteProcedure(&enc_, p, &c, Cents(3000, 40000));
    }
    if (rng_.Chance(0.15)) writer_.WriteProcedure(&enc_, kRhImmunization, &c, Cents(5000, 30000));
  }
  Close();
}

void PatientGenerator::Life::Birth(const Visit& v) {
  Pregnancy& preg = pregnancies_[v.arg];
  ConditionRec& c = conditions_[preg.condition];
  Open(kEncObstetricEmergency, v.time, &person_.hospital, &c.code);
  writer_.WriteProcedure(&enc_, kChildbirth, &c, Cents(500000, 1500000));
  for (size_t i = 0; i < kBirthProcedureCount; i++) {
    if (rng_.Chance(kBirthProcedures[i].probability)) {
      writer_.WriteProcedure(&enc_, kBirthProcedures[i].procedure, &c, Cents(50000, 500000));
    }
  }
  MaybeDocument(0.6);
  Close();
}

void PatientGenerator::Life::Miscarriage(const Visit& v) {
  Pregnancy& preg = pregnancies_[v.arg];
  ConditionRec& c = conditions_[preg.miscarriage_condition];
  Open(kEncProblem, v.time, &person_.primary, &c.code);
  Diagnose(&c, nullptr);
  MaybeDocument(0.3);
  Close();
}

void PatientGenerator::Life::Postnatal(const Visit& v) {
  Pregnancy& preg = pregnancies_[v.arg];
  Open(kEncPostnatal, v.time, &person_.primary, &conditions_[preg.condition].code);
  writer_.WriteProcedure(&enc_, kPostnatalExam, nullptr, Cents(5000, 60000));
  writer_.WriteProcedure(&enc_, kDepressionScreening, nullptr, Cents(5000, 30000));
  Contraception();
  Close();
}

void PatientGenerator::Life::AllergyInitial(const Visit& v, bool detailed) {
  Open(kEncAllergyInitial, v.time, &person_.primary, nullptr);
  bool severe_food = false;
  for (int a : allergies_) {
    writer_.WriteAllergy(enc_, kAllergies[a]);
    if (std::strcmp(kAllergies[a].criticality, "high") == 0) severe_food = true;
  }
  if (detailed) {
    writer_.WriteProcedure(&enc_, kAllergyScreeningTest, nullptr, Cents(10000, 60000));
    for (size_t i = 0; i < kIgeTestCount; i++) {
      const LabTest& t = kIgeTests[i];
      double value = rng_.Chance(0.3) ? rng_.Uniform(0.35, 25) : rng_.Uniform(t.low, t.high);
      writer_.WriteQuantityObservation(enc_, "laboratory", t.loinc, t.display, value, t.decimals,
                                       t.unit);
    }
  }
  if (rhinitis_ >= 0) {
    Diagnose(&conditions_[rhinitis_], &kAllergyCarePlan);
    Prescribe(kAllergyMeds[0], &conditions_[rhinitis_]);
  }
  if (severe_food) Prescribe(kAllergyMeds[1], nullptr);
  if (detailed) MaybeDocument(0.3);
  Close();
}

void PatientGenerator::Life::Immunotherapy(const Visit& v) {
  if (rhinitis_ < 0) return;
  ConditionRec& c = conditions_[rhinitis_];
  Open(kEncOutpatientProcedure, v.time, &person_.primary, &c.code);
  writer_.WriteProcedure(&enc_, kSubcutaneousImmunotherapy, &c, Cents(10000, 40000));
  Close();
}

bool PatientGenerator::Life::Pregnant(int64_t t) const {
  for (const Pregnancy& p : pregnancies_) {
    if (conditions_[p.condition].ActiveAt(t)) return true;
  }
  return false;
}

void PatientGenerator::Life::ContraceptionVisit(const Visit& v) {
  if (Pregnant(v.time)) return;
  int c = person_.contraceptive;
  Open(kEncPatientProcedure, v.time, &person_.primary, nullptr);
  Prescribe(kContraceptives[c], nullptr);
  if (c == kInjection) {
    writer_.WriteProcedure(&enc_, kIntramuscularInjection, nullptr, Cents(5000, 20000));
  } else if (c == kImplant) {
    if (v.stage == 1) {
      writer_.WriteProcedure(&enc_, kRemoveSubcutaneousContraceptive, nullptr, Cents(10000, 40000));
    }
    writer_.WriteProcedure(&enc_, kInsertSubcutaneousContraceptive, nullptr, Cents(20000, 80000));
  } else {
    writer_.WriteProcedure(&enc_, kInsertIntrauterineDevice, nullptr, Cents(40000, 120000));
  }
  Close();
}

// --- pieces ------------------------------------------------------------------------------------

double PatientGenerator::Life::HeightCm(int64_t t) const {
  double age = static_cast<double>(t - person_.birth) / kYear;
  double fraction;
  if (age >= 18) {
    fraction = age > 70 ? 1.0 - (age - 70) * 0.0015 : 1.0;
  } else {
    int lo = static_cast<int>(age);
    double f = age - lo;
    fraction = kHeightFraction[lo] + (kHeightFraction[lo + 1] - kHeightFraction[lo]) * f;
  }
  return person_.adult_height_cm * fraction;
}

double PatientGenerator::Life::Bmi(int64_t t) const {
  double age = static_cast<double>(t - person_.birth) / kYear;
  double offset = (person_.bmi_base - 26.0) * 0.3;
  if (age < 2) return 17.0 + offset * 0.5;
  if (age < 6) return 15.8 + offset;
  if (age < 13) return 17.5 + offset;
  if (age < 18) return 20.5 + offset;
  double bmi = person_.bmi_base + std::min(age - 18, 40.0) * 0.06;
  if (Active(Diseases().obesity, t)) bmi = std::max(bmi, 30.5 + (person_.bmi_base - 18.5) * 0.5);
  return bmi;
}

void PatientGenerator::Life::Vitals() {
  int64_t t = enc_.start;
  double age = static_cast<double>(t - person_.birth) / kYear;
  double height = HeightCm(t) + rng_.Normal(0, 0.4);
  double bmi = Bmi(t) + rng_.Normal(0, 0.4);
  double weight = bmi * (height / 100) * (height / 100);
  const DiseaseIds& ids = Diseases();
  writer_.WriteQuantityObservation(enc_, "vital-signs", kVitalHeight.code, kVitalHeight.display,
                                   height, 1, "cm");
  writer_.WriteQuantityObservation(enc_, "vital-signs", kVitalPainScore.code,
                                   kVitalPainScore.display, rng_.Range(0, 4), 0, "{score}");
  writer_.WriteQuantityObservation(enc_, "vital-signs", kVitalWeight.code, kVitalWeight.display,
                                   weight, 1, "kg");
  if (age < 2) {
    writer_.WriteQuantityObservation(enc_, "vital-signs", kVitalWeightForLength.code,
                                     kVitalWeightForLength.display, rng_.Uniform(5, 95), 1, "%");
  }
  if (age < 3) {
    double head = 35 + 14 * (age / 3) - 4 * (age / 3) * (age / 3) + rng_.Normal(0, 0.8);
    writer_.WriteQuantityObservation(enc_, "vital-signs", kVitalHeadCircumference.code,
                                     kVitalHeadCircumference.display, head, 1, "cm");
  }
  if (age >= 2) {
    writer_.WriteQuantityObservation(enc_, "vital-signs", kVitalBmi.code, kVitalBmi.display, bmi, 1,
                                     "kg/m2");
  }
  if (age >= 2 && age < 20) {
    writer_.WriteQuantityObservation(
        enc_, "vital-signs", kVitalBmiPercentile.code, kVitalBmiPercentile.display,
        std::min(99.0, std::max(1.0, 50 + (bmi - 17.5) * 9 + rng_.Normal(0, 8))), 1, "%");
  }
  if (age >= 3) {
    double systolic = rng_.Normal(116, 8) + std::max(0.0, age - 30) * 0.3;
    double diastolic = rng_.Normal(76, 6);
    if (Active(ids.hypertension, t)) {
      systolic += 18;
      diastolic += 10;
    }
    writer_.WriteBloodPressure(enc_, static_cast<int>(systolic), static_cast<int>(diastolic));
  }
  double heart_rate = age < 2    ? rng_.Normal(125, 10)
                      : age < 12 ? rng_.Normal(95, 9)
                                 : rng_.Normal(74, 8);
  double resp_rate = age < 2    ? rng_.Normal(32, 4)
                     : age < 12 ? rng_.Normal(21, 2.5)
                                : rng_.Normal(15, 1.5);
  writer_.WriteQuantityObservation(enc_, "vital-signs", kVitalHeartRate.code,
                                   kVitalHeartRate.display, heart_rate, 1, "/min");
  writer_.WriteQuantityObservation(enc_, "vital-signs", kVitalRespiratoryRate.code,
                                   kVitalRespiratoryRate.display, resp_rate, 1, "/min");
  writer_.WriteConceptObservation(enc_, "survey", kSurveyTobacco, kSnomed,
                                  kTobaccoAnswers[person_.smoking]);
}

double PatientGenerator::Life::LabValue(const LabTest& test) {
  // Values of the patient's diseases move the relevant results out of the normal range.
  int64_t t = enc_.start;
  const DiseaseIds& ids = Diseases();
  const char* code = test.loinc;
  if (std::strcmp(code, "4548-4") == 0) {
    if (Active(ids.diabetes, t)) return rng_.Uniform(6.6, 9.8);
    if (Active(ids.prediabetes, t)) return rng_.Uniform(5.7, 6.4);
    return rng_.Uniform(4.4, 5.6);
  }
  if (std::strcmp(code, "2339-0") == 0 && Active(ids.diabetes, t)) return rng_.Uniform(126, 240);
  if (Active(ids.hyperlipidemia, t)) {
    if (std::strcmp(code, "2093-3") == 0) return rng_.Uniform(220, 300);
    if (std::strcmp(code, "18262-6") == 0) return rng_.Uniform(150, 210);
  }
  if (std::strcmp(code, "718-7") == 0 && Active(ids.anemia, t)) return rng_.Uniform(8.5, 11.5);
  double span = test.high - test.low;
  if (rng_.Chance(0.08)) {  // an unremarkable out-of-range result
    return rng_.Chance(0.5) ? test.low - span * rng_.Uniform(0, 0.15)
                            : test.high + span * rng_.Uniform(0, 0.15);
  }
  return rng_.Uniform(test.low, test.high);
}

void PatientGenerator::Life::SingleLab(const LabTest& test) {
  writer_.WriteQuantityObservation(enc_, "laboratory", test.loinc, test.display, LabValue(test),
                                   test.decimals, test.unit);
}

void PatientGenerator::Life::Panel(int panel) {
  const synth::Panel& def = kPanels[panel];
  lab_ids_.clear();
  lab_displays_.clear();
  for (size_t i = 0; i < def.count; i++) {
    const LabTest& test = def.tests[i];
    double value = LabValue(test);
    if (test.low >= 0) value = std::max(0.0, value);  // no negative concentrations
    lab_ids_.push_back(writer_.WriteQuantityObservation(
        enc_, "laboratory", test.loinc, test.display, value, test.decimals, test.unit));
    lab_displays_.push_back(test.display);
  }
  writer_.WriteDiagnosticReport(enc_, def.code, lab_ids_.data(), lab_displays_.data(),
                                lab_ids_.size());
  last_panel_[panel] = enc_.start;
}

void PatientGenerator::Life::Labs() {
  int64_t t = enc_.start;
  int age = person_.AgeAt(t);
  const DiseaseIds& ids = Diseases();
  auto due = [t](int64_t last, double years) {
    return last == 0 || t - last >= static_cast<int64_t>(years * kYear) - 60 * kDay;
  };
  if (age >= 20) {
    bool lipid_watch = Active(ids.hyperlipidemia, t) || Active(ids.coronary, t);
    if (due(last_panel_[kPanelLipid], lipid_watch ? 1 : 3)) Panel(kPanelLipid);
  }
  bool metabolic_watch = false;
  for (const ConditionRec& c : conditions_) {
    if (c.chronic >= 0 && c.ActiveAt(t) &&
        kChronicDiseases[c.chronic].monitoring_panel == kPanelBasicMetabolic) {
      metabolic_watch = true;
    }
  }
  if (Active(ids.coronary, t) ||
      (age >= 40 && due(last_panel_[kPanelComprehensiveMetabolic], 4) && rng_.Chance(0.35))) {
    Panel(kPanelComprehensiveMetabolic);
  } else if ((metabolic_watch && due(last_panel_[kPanelBasicMetabolic], 1)) ||
             (age >= 18 && due(last_panel_[kPanelBasicMetabolic], 3) && rng_.Chance(0.3))) {
    Panel(kPanelBasicMetabolic);
  }
  bool blood_watch =
      Active(ids.anemia, t) || Active(ids.atrial_fibrillation, t) || Active(ids.breast_cancer, t);
  if ((blood_watch && due(last_panel_[kPanelCompleteBloodCount], 1)) ||
      (age >= 18 && due(last_panel_[kPanelCompleteBloodCount], 3) && rng_.Chance(0.45))) {
    Panel(kPanelCompleteBloodCount);
  }
  if ((Active(ids.prediabetes, t) || Active(ids.diabetes, t)) && due(last_a1c_, 1)) {
    SingleLab(kHemoglobinA1c);
    last_a1c_ = t;
  }
  if (Active(ids.diabetes, t)) {
    SingleLab(kMicroalbuminRatio);
    SingleLab(kEgfr);
  }
  if (Active(ids.prostate_cancer, t)) SingleLab(kPsa);
  if (Active(ids.osteoporosis, t) && due(last_dxa_, 2)) {
    SingleLab(kBoneDensityTScore);
    last_dxa_ = t;
  }
  if (Active(ids.copd, t)) SingleLab(kFev1Fvc);
  if (Active(ids.alzheimers, t)) {
    writer_.WriteQuantityObservation(enc_, "survey", kSurveyMmse.code, kSurveyMmse.display,
                                     rng_.Range(10, 24), 0, "{score}");
  }
}

void PatientGenerator::Life::WellnessProcedures() {
  int64_t t = enc_.start;
  int age = person_.AgeAt(t);
  if (HasActiveMeds(t)) {
    writer_.WriteProcedure(&enc_, kMedicationReconciliation, nullptr, Cents(30000, 90000));
  }
  if (age >= 12 && rng_.Chance(0.12)) {
    writer_.WriteProcedure(&enc_, kDepressionScreening, nullptr, Cents(20000, 60000));
    writer_.WriteQuantityObservation(enc_, "survey", kSurveyPhq2.code, kSurveyPhq2.display,
                                     rng_.Chance(0.85) ? rng_.Range(0, 2) : rng_.Range(3, 6), 0,
                                     "{score}");
  }
  if (age >= 50 && (last_colonoscopy_ == 0 || t - last_colonoscopy_ >= 10 * kYear) &&
      rng_.Chance(0.25)) {
    writer_.WriteProcedure(&enc_, kColonoscopy, nullptr, Cents(500000, 2000000));
    last_colonoscopy_ = t;
  }
  if (person_.female && age >= 40 && (last_mammogram_ == 0 || t - last_mammogram_ >= 2 * kYear) &&
      rng_.Chance(0.2)) {
    writer_.WriteProcedure(&enc_, kMammography, nullptr, Cents(20000, 80000));
    last_mammogram_ = t;
  }
  for (ConditionRec& c : conditions_) {
    if (c.chronic < 0 || !c.ActiveAt(t)) continue;
    const ChronicDisease& def = kChronicDiseases[c.chronic];
    if (def.wellness_procedure == nullptr) continue;
    writer_.WriteProcedure(&enc_, Code{def.wellness_procedure, def.wellness_procedure_display}, &c,
                           Cents(20000, 180000));
  }
}

void PatientGenerator::Life::Immunizations() {
  int64_t t = enc_.start;
  int64_t age = t - person_.birth;
  for (size_t v = 0; v < kVaccineCount; v++) {
    const VaccineDef& vac = kVaccines[v];
    if (v == kInfluenzaVaccineIndex) {
      if (age >= 6 * kMonth && (last_dose_[v] == 0 || t - last_dose_[v] >= 300 * kDay) &&
          rng_.Chance(0.85)) {
        writer_.WriteImmunization(&enc_, vac.cvx);
        last_dose_[v] = t;
      }
      continue;
    }
    while (doses_[v] < vac.dose_count) {
      int64_t due = person_.birth + vac.dose_months[doses_[v]] * kMonth;
      if (due > t + 14 * kDay) break;
      doses_[v]++;
      last_dose_[v] = due;
      // Doses due long before the detailed history are assumed given, unrecorded.
      if (due < DetailedHistoryStart() - kYear) continue;
      writer_.WriteImmunization(&enc_, vac.cvx);
      last_dose_[v] = t;
      break;  // at most one dose of a vaccine per visit
    }
    if (doses_[v] == vac.dose_count && vac.repeat_every_months > 0 && last_dose_[v] != 0 &&
        t - last_dose_[v] >= vac.repeat_every_months * kMonth) {
      writer_.WriteImmunization(&enc_, vac.cvx);
      last_dose_[v] = t;
    }
  }
}

void PatientGenerator::Life::Contraception() {
  int age = person_.AgeAt(enc_.start);
  // Pills are renewed at checkups; implants, IUDs and injections have visits of their own.
  if (person_.contraceptive < 0 || person_.contraceptive >= kImplant || age < 15 || age > 45) {
    return;
  }
  if (Pregnant(enc_.start)) return;
  Prescribe(kContraceptives[person_.contraceptive], nullptr);
}

void PatientGenerator::Life::MaybeDocument(double probability) {
  if (!rng_.Chance(probability)) return;
  BuildNote();
  (void)rng_.Chance(0.7);  // once inline-or-URL; still drawn so later draws stay as they were
  writer_.WriteDocument(enc_, note_);
}

// A plain-text note in the layout of Synthea's clinical notes.
void PatientGenerator::Life::BuildNote() {
  const Person& p = person_;
  int64_t t = enc_.start;
  int age = p.AgeAt(t);
  std::string& n = note_;
  n.clear();
  AppendLocalDate(&n, t);
  n += "\n\n# Chief Complaint\n";
  n += enc_.reason != nullptr ? enc_.reason->display : "No complaints.";
  n += "\n\n# History of Present Illness\n";
  n += p.given;
  n += " is a ";
  n += std::to_string(age);
  n += " year-old ";
  n += p.hispanic ? "hispanic " : "non-hispanic ";
  n += p.race->display;
  n += p.female ? " female." : " male.";
  bool history = false;
  for (const ConditionRec& c : conditions_) {
    if (!c.diagnosed || c.onset >= t || c.chronic < 0) continue;
    n += history ? ", " : " Patient has a history of ";
    n += c.code.display;
    history = true;
  }
  n += history ? ".\n\n" : "\n\n";
  n += "# Social History\nPatient is ";
  n += p.marital == 'M'   ? "married"
       : p.marital == 'D' ? "divorced"
       : p.marital == 'W' ? "widowed"
                          : "single";
  n += ". Patient ";
  n += p.smoking == 0 ? "has never smoked" : p.smoking == 1 ? "is an ex-smoker" : "smokes daily";
  n += ".\nPatient currently has ";
  n += p.PayerAt(t).name;
  n += ".\n\n# Allergies\n";
  if (allergies_.empty()) {
    n += "No Known Allergies.\n";
  } else {
    for (int a : allergies_) {
      n += kAllergies[a].code.display;
      n += '\n';
    }
  }
  n += "\n# Medications\n";
  bool meds = false;
  for (const ConditionRec& c : conditions_) {
    if (c.chronic < 0 || c.med_stage == 0 || !c.ActiveAt(t)) continue;
    for (int s = 0; s < c.med_stage; s++) {
      n += kChronicDiseases[c.chronic].meds[s].display;
      n += '\n';
      meds = true;
    }
  }
  if (!meds) n += "No active medications.\n";
  n += "\n# Assessment and Plan\n";
  if (visit_conditions_.empty()) {
    n += "Patient is presenting for a routine visit. Vital signs reviewed.\n";
  } else {
    for (size_t ci : visit_conditions_) {
      n += "Patient is presenting with ";
      n += conditions_[ci].code.display;
      n += ".\n";
    }
  }
  n += "\n## Plan\n";
  for (const ClaimLine& l : enc_.lines) {
    if (l.type == ClaimLine::kDiagnosis) continue;
    n += l.type == ClaimLine::kProcedure ? "- procedure: " : "- immunization: ";
    n += l.code.display;
    n += '\n';
  }
  n += "Follow up as needed.\n";
}

}  // namespace synth
}  // namespace fhirbulk
