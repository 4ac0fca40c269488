// The code tables declared in codes.h. Codes and displays are the standard ones (LOINC,
// SNOMED CT, RxNorm, CVX) in the forms Synthea uses; ranges are typical adult values.

#include "synth/codes.h"

namespace fhirbulk {
namespace synth {

const char kSnomed[] = "http://snomed.info/sct";
const char kLoinc[] = "http://loinc.org";
const char kRxNorm[] = "http://www.nlm.nih.gov/research/umls/rxnorm";
const char kCvx[] = "http://hl7.org/fhir/sid/cvx";
const char kUcum[] = "http://unitsofmeasure.org";

// --- encounters ------------------------------------------------------------------------------

#define OUTPATIENT "19", "Off Campus-Outpatient Hospital"
#define EMERGENCY "23", "Emergency Room - Hospital"
#define INPATIENT "21", "Inpatient Hospital"

const EncounterType kEncounterTypes[kEncKindCount] = {
    {"AMB", {"162673000", "General examination of patient (procedure)"}, 15, 45, OUTPATIENT},
    {"AMB", {"410620009", "Well child visit (procedure)"}, 15, 30, OUTPATIENT},
    {"AMB", {"185349003", "Encounter for check up (procedure)"}, 15, 30, OUTPATIENT},
    {"AMB", {"185345009", "Encounter for symptom"}, 15, 30, OUTPATIENT},
    {"AMB", {"185347001", "Encounter for problem (procedure)"}, 15, 45, OUTPATIENT},
    {"AMB", {"390906007", "Follow-up encounter"}, 15, 30, OUTPATIENT},
    {"AMB", {"390906007", "Hypertension follow-up encounter"}, 15, 30, OUTPATIENT},
    {"AMB", {"394701000", "Asthma follow-up"}, 15, 30, OUTPATIENT},
    {"AMB", {"424441002", "Prenatal initial visit"}, 30, 60, OUTPATIENT},
    {"AMB", {"424619006", "Prenatal visit"}, 15, 30, OUTPATIENT},
    {"AMB", {"169762003", "Postnatal visit"}, 15, 30, OUTPATIENT},
    {"EMER", {"50849002", "Emergency room admission (procedure)"}, 60, 240, EMERGENCY},
    {"IMP", {"183452005", "Encounter Inpatient"}, 1440, 5760, INPATIENT},
    {"AMB", {"702927004", "Urgent care clinic (procedure)"}, 30, 90, OUTPATIENT},
    {"AMB", {"371883000", "Outpatient procedure"}, 30, 120, OUTPATIENT},
    {"AMB", {"698314001", "Consultation for treatment"}, 15, 45, OUTPATIENT},
    {"AMB", {"170837001", "Allergic disorder initial assessment"}, 30, 60, OUTPATIENT},
    {"AMB", {"170838006", "Allergic disorder follow-up assessment"}, 15, 30, OUTPATIENT},
    {"AMB", {"439740005", "Postoperative follow-up visit (procedure)"}, 15, 30, OUTPATIENT},
    {"EMER", {"183460006", "Obstetric emergency hospital admission"}, 120, 480, EMERGENCY},
    {"AMB", {"308335008", "Patient encounter procedure"}, 15, 45, OUTPATIENT},
    {"AMB",
     {"210098006", "Domiciliary or rest home patient evaluation and management"},
     30,
     60,
     OUTPATIENT},
};

#undef OUTPATIENT
#undef EMERGENCY
#undef INPATIENT

// --- observations ----------------------------------------------------------------------------

namespace {

const LabTest kLipidTests[] = {
    {"2093-3", "Total Cholesterol", "mg/dL", 150, 240, 1},
    {"2571-8", "Triglycerides", "mg/dL", 60, 200, 1},
    {"18262-6", "Low Density Lipoprotein Cholesterol", "mg/dL", 70, 160, 1},
    {"2085-9", "High Density Lipoprotein Cholesterol", "mg/dL", 35, 80, 1},
};

#define BASIC_METABOLIC_TESTS                                                                     \
  {"2339-0", "Glucose", "mg/dL", 70, 110, 1}, {"6299-2", "Urea Nitrogen", "mg/dL", 7, 20, 1},     \
      {"38483-4", "Creatinine", "mg/dL", 0.6, 1.3, 2},                                            \
      {"49765-1", "Calcium", "mg/dL", 8.5, 10.3, 1}, {"2947-0", "Sodium", "mmol/L", 136, 145, 1}, \
      {"6298-4", "Potassium", "mmol/L", 3.5, 5.1, 1},                                             \
      {"2069-3", "Chloride", "mmol/L", 98, 107, 1}, {                                             \
    "20565-8", "Carbon Dioxide", "mmol/L", 22, 29, 1                                              \
  }

const LabTest kBasicMetabolicTests[] = {BASIC_METABOLIC_TESTS};

const LabTest kComprehensiveMetabolicTests[] = {
    BASIC_METABOLIC_TESTS,
    {"33914-3", "Glomerular filtration rate/1.73 sq M.predicted", "mL/min/{1.73_m2}", 60, 120, 1},
    {"2885-2", "Protein [Mass/volume] in Serum or Plasma", "g/dL", 6.0, 8.3, 1},
    {"1751-7", "Albumin [Mass/volume] in Serum or Plasma", "g/dL", 3.5, 5.5, 1},
    {"10834-0", "Globulin [Mass/volume] in Serum by calculation", "g/L", 20, 35, 1},
    {"1975-2", "Bilirubin.total [Mass/volume] in Serum or Plasma", "mg/dL", 0.1, 1.2, 2},
    {"6768-6", "Alkaline phosphatase [Enzymatic activity/volume] in Serum or Plasma", "U/L", 44,
     147, 1},
    {"1742-6", "Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma", "U/L", 7,
     56, 1},
    {"1920-8", "Aspartate aminotransferase [Enzymatic activity/volume] in Serum or Plasma", "U/L",
     10, 40, 1},
};

#undef BASIC_METABOLIC_TESTS

const LabTest kCompleteBloodCountTests[] = {
    {"6690-2", "Leukocytes [#/volume] in Blood by Automated count", "10*3/uL", 4.0, 11.0, 1},
    {"789-8", "Erythrocytes [#/volume] in Blood by Automated count", "10*6/uL", 4.2, 5.9, 2},
    {"718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", 12.0, 17.5, 1},
    {"4544-3", "Hematocrit [Volume Fraction] of Blood by Automated count", "%", 36, 50, 1},
    {"787-2", "MCV [Entitic volume] by Automated count", "fL", 80, 100, 1},
    {"785-6", "MCH [Entitic mass] by Automated count", "pg", 27, 33, 1},
    {"786-4", "MCHC [Mass/volume] by Automated count", "g/dL", 32, 36, 1},
    {"21000-5", "Erythrocyte distribution width [Entitic volume] by Automated count", "fL", 39, 46,
     1},
    {"777-3", "Platelets [#/volume] in Blood by Automated count", "10*3/uL", 150, 450, 1},
    {"32207-3", "Platelet distribution width [Entitic volume] in Blood by Automated count", "fL",
     9.0, 17.0, 1},
    {"32623-1", "Platelet mean volume [Entitic volume] in Blood by Automated count", "fL", 7.5,
     11.5, 1},
};

const LabTest kUrinalysisTests[] = {
    {"5792-7", "Glucose [Mass/volume] in Urine by Test strip", "mg/dL", 0, 15, 1},
    {"20505-4", "Bilirubin.total [Mass/volume] in Urine by Test strip", "mg/dL", 0, 1, 1},
    {"5797-6", "Ketones [Mass/volume] in Urine by Test strip", "mg/dL", 0, 5, 1},
    {"5811-5", "Specific gravity of Urine by Test strip", "{nominal}", 1.005, 1.030, 3},
    {"5803-2", "pH of Urine by Test strip", "pH", 4.5, 8.0, 1},
    {"5804-0", "Protein [Mass/volume] in Urine by Test strip", "mg/dL", 0, 14, 1},
};

}  // namespace

#define PANEL_TESTS(t) (t), sizeof(t) / sizeof((t)[0])
const Panel kPanels[kPanelKindCount] = {
    {{"57698-3", "Lipid Panel"}, PANEL_TESTS(kLipidTests)},
    {{"51990-0", "Basic Metabolic Panel"}, PANEL_TESTS(kBasicMetabolicTests)},
    {{"58410-2", "Complete blood count (hemogram) panel - Blood by Automated count"},
     PANEL_TESTS(kCompleteBloodCountTests)},
    {{"24323-8", "Comprehensive metabolic 2000 panel - Serum or Plasma"},
     PANEL_TESTS(kComprehensiveMetabolicTests)},
    {{"24357-6", "Urinalysis macro (dipstick) panel - Urine"}, PANEL_TESTS(kUrinalysisTests)},
};
#undef PANEL_TESTS

const LabTest kHemoglobinA1c = {"4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%", 4.5, 6.4,
                                1};
const LabTest kMicroalbuminRatio = {"14959-1", "Microalbumin Creatinine Ratio", "mg/g", 2, 30, 1};
const LabTest kEgfr = {
    "33914-3", "Estimated Glomerular Filtration Rate", "mL/min/{1.73_m2}", 60, 120, 1};
const LabTest kPsa = {
    "2857-1", "Prostate specific Ag [Mass/volume] in Serum or Plasma", "ng/mL", 0.5, 4.0, 2};
const LabTest kBoneDensityTScore = {
    "38265-5", "DXA [T-score] Bone density", "{T-score}", -3.5, -1.0, 2};
const LabTest kFev1Fvc = {"19926-5", "FEV1/FVC", "%", 55, 85, 1};

const LabTest kIgeTests[] = {
    {"6206-7", "Peanut IgE Ab in Serum", "kU/L", 0.0, 0.35, 2},
    {"6273-7", "Walnut IgE Ab in Serum", "kU/L", 0.0, 0.35, 2},
    {"6082-2", "Codfish IgE Ab in Serum", "kU/L", 0.0, 0.35, 2},
    {"6246-3", "Shrimp IgE Ab in Serum", "kU/L", 0.0, 0.35, 2},
    {"6276-0", "Wheat IgE Ab in Serum", "kU/L", 0.0, 0.35, 2},
    {"6106-9", "Egg white IgE Ab in Serum", "kU/L", 0.0, 0.35, 2},
    {"6248-9", "Soybean IgE Ab in Serum", "kU/L", 0.0, 0.35, 2},
    {"7258-7", "Cow milk IgE Ab in Serum", "kU/L", 0.0, 0.35, 2},
    {"6189-5", "White oak IgE Ab in Serum", "kU/L", 0.0, 0.35, 2},
    {"6085-5", "Common Ragweed IgE Ab in Serum", "kU/L", 0.0, 0.35, 2},
    {"6833-8", "Cat dander IgE Ab in Serum", "kU/L", 0.0, 0.35, 2},
    {"6095-4", "American house dust mite IgE Ab in Serum", "kU/L", 0.0, 0.35, 2},
    {"6075-6", "Cladosporium herbarum IgE Ab in Serum", "kU/L", 0.0, 0.35, 2},
    {"6844-5", "Honey bee IgE Ab in Serum", "kU/L", 0.0, 0.35, 2},
    {"6158-0", "Latex IgE Ab in Serum", "kU/L", 0.0, 0.35, 2},
};
const size_t kIgeTestCount = sizeof(kIgeTests) / sizeof(kIgeTests[0]);

const Code kVitalHeight = {"8302-2", "Body Height"};
const Code kVitalWeight = {"29463-7", "Body Weight"};
const Code kVitalBmi = {"39156-5", "Body Mass Index"};
const Code kVitalBmiPercentile = {"59576-9",
                                  "Body mass index (BMI) [Percentile] Per age and gender"};
const Code kVitalWeightForLength = {"77606-2", "Weight-for-length Per age and sex"};
const Code kVitalHeadCircumference = {"9843-4", "Head Occipital-frontal circumference"};
const Code kVitalBloodPressure = {"85354-9", "Blood Pressure"};
const Code kVitalDiastolic = {"8462-4", "Diastolic Blood Pressure"};
const Code kVitalSystolic = {"8480-6", "Systolic Blood Pressure"};
const Code kVitalHeartRate = {"8867-4", "Heart rate"};
const Code kVitalRespiratoryRate = {"9279-1", "Respiratory rate"};
const Code kVitalTemperature = {"8310-5", "Body temperature"};
const Code kVitalPainScore = {"72514-3",
                              "Pain severity - 0-10 verbal numeric rating [Score] - Reported"};
const Code kSurveyTobacco = {"72166-2", "Tobacco smoking status NHIS"};
const Code kTobaccoAnswers[3] = {
    {"266919005", "Never smoker"},
    {"8517006", "Former smoker"},
    {"449868002", "Smokes tobacco daily"},
};
const Code kSurveyMmse = {"72106-8", "Total score [MMSE]"};
const Code kSurveyPhq2 = {"55758-7",
                          "Patient Health Questionnaire 2 item (PHQ-2) total score [Reported]"};

const SocialQuestion kSocialHistory[] = {
    {{"76690-7", "Sexual orientation"},
     {{"20430005", "Heterosexual (finding)"},
      {"38628009", "Homosexual (finding)"},
      {"42035005", "Bisexual (finding)"}},
     3,
     kSnomed},
    {{"71802-3", "Housing status"},
     {{"LA31993-1", "I have housing"}, {"LA31994-9", "I do not have housing"}, {"", ""}},
     2,
     kLoinc},
    {{"63513-6",
      "Are you covered by health insurance or some other kind of health care plan [PhenX]"},
     {{"LA33-6", "Yes"}, {"LA32-8", "No"}, {"", ""}},
     2,
     kLoinc},
    {{"55277-8", "HIV status"}, {{"LA6577-6", "Negative"}, {"", ""}, {"", ""}}, 1, kLoinc},
};
const size_t kSocialHistoryCount = sizeof(kSocialHistory) / sizeof(kSocialHistory[0]);

// --- care plans ------------------------------------------------------------------------------

namespace {

const CarePlanDef kHypertensionPlan = {
    {"443402002", "Lifestyle education regarding hypertension"},
    {{"386463000", "Prescribed activity/exercise education"},
     {"413473000", "Counseling about alcohol consumption"},
     {"1151000175103", "Dietary approaches to stop hypertension diet"}},
    3};
const CarePlanDef kDiabetesPlan = {
    {"698360004", "Diabetes self management plan"},
    {{"160670007", "Diabetic diet"}, {"229065009", "Exercise therapy"}, {"", ""}},
    2};
const CarePlanDef kHyperlipidemiaPlan = {
    {"736285004", "Hyperlipidemia clinical management plan"},
    {{"183063000", "low salt diet education"}, {"183301007", "physical exercise"}, {"", ""}},
    2};
const CarePlanDef kAsthmaPlan = {
    {"699728000", "Asthma self management"},
    {{"710081004", "Smoking cessation therapy"}, {"708409001", "Home nebulizer therapy"}, {"", ""}},
    2};
const CarePlanDef kMusculoskeletalPlan = {
    {"408869004", "Musculoskeletal care"},
    {{"386294003", "Joint mobility exercises"},
     {"229586001", "Rest, ice, compression and elevation treatment programme"},
     {"", ""}},
    2};
const CarePlanDef kCopdPlan = {
    {"412776001", "Chronic obstructive pulmonary disease clinical management plan"},
    {{"15081005", "Pulmonary rehabilitation (regime/therapy)"},
     {"229070002", "Stretching exercises"},
     {"", ""}},
    2};
const CarePlanDef kDementiaPlan = {
    {"386257007", "Demential management"},
    {{"226234005", "Healthy diet"}, {"710125008", "Promotion of exercise"}, {"", ""}},
    2};
const CarePlanDef kAttentionPlan = {
    {"386522008", "Overactivity/inattention behavior management"},
    {{"228557008", "Cognitive and behavioral therapy"}, {"", ""}, {"", ""}},
    1};
const CarePlanDef kCancerPlan = {
    {"736252007", "Cancer care plan"},
    {{"226234005", "Healthy diet"}, {"710125008", "Promotion of exercise"}, {"", ""}},
    2};
const CarePlanDef kPhysicalTherapyPlan = {
    {"91251008", "Physical therapy procedure"},
    {{"229586001", "Rest, ice, compression and elevation treatment programme"},
     {"229070002", "Stretching exercises"},
     {"", ""}},
    2};
const CarePlanDef kFracturePlan = {{"385691007", "Fracture care"},
                                   {{"183051005", "Recommendation to rest"},
                                    {"408580007", "Physical activity target light exercise"},
                                    {"", ""}},
                                   2};
const CarePlanDef kWoundPlan = {{"225358003", "Wound care"},
                                {{"385949008", "Dressing change management"},
                                 {"439830001", "Behavior to prevent infection"},
                                 {"", ""}},
                                2};
const CarePlanDef kBurnPlan = {{"133901003", "Burn care"},
                               {{"385949008", "Dressing change management"},
                                {"440333003", "Behavior to prevent sun exposure"},
                                {"", ""}},
                               2};
const CarePlanDef kHeadInjuryPlan = {
    {"47387005", "Head injury rehabilitation"},
    {{"183051005", "Recommendation to rest"}, {"226138001", "Alcohol-free diet"}, {"", ""}},
    2};
const CarePlanDef kRespiratoryPlan = {{"53950000", "Respiratory therapy"},
                                      {{"304510005", "Recommendation to avoid exercise"},
                                       {"371605008", "Deep breathing and coughing exercises"},
                                       {"", ""}},
                                      2};
const CarePlanDef kUtiPlan = {
    {"869761000000107", "Urinary tract infection care"},
    {{"223472008", "Discussion about hygiene"}, {"1008000", "Fluid intake increased"}, {"", ""}},
    2};

}  // namespace

const CarePlanDef kAllergyCarePlan = {{"384758001", "Self-care interventions (procedure)"},
                                      {{"58332002", "Allergy education"}, {"", ""}, {"", ""}},
                                      1};

const CarePlanDef kAntenatalCarePlan = {{"134435003", "Routine antenatal care"},
                                        {{"135892000", "Antenatal education"},
                                         {"713076009", "Antenatal risk assessment"},
                                         {"312404004", "Antenatal blood tests"}},
                                        3};

// --- chronic diseases ------------------------------------------------------------------------

#define NO_CODE \
  { "", "" }

// Risks and onset ages are tuned so that counts per patient match Synthea's exports.
// Columns: condition, lifetime risk, onset ages, sex, diagnosing visit; medications and how
// many; care plan, follow-up visit kind, per year, for how many years (0: while it lasts),
// lab panel monitored, procedure at visits.
// clang-format off
const ChronicDisease kChronicDiseases[] = {
    {{"59621000", "Hypertension"}, 0.55, 20, 70, 'A', kAtCheckup,
     {{"310798", "Hydrochlorothiazide 25 MG Oral Tablet"},
      {"746030", "Atenolol 50 MG / Chlorthalidone 25 MG Oral Tablet"},
      {"999967",
      "amLODIPine 5 MG / Hydrochlorothiazide 12.5 MG / Olmesartan medoxomil 20 MG Oral Tablet"}}, 3,
     &kHypertensionPlan, kEncHypertensionFollowUp, 2, 1, kPanelBasicMetabolic, nullptr, nullptr},
    {{"15777000", "Prediabetes"}, 0.55, 20, 60, 'A', kAtCheckup,
     {NO_CODE, NO_CODE, NO_CODE}, 0,
     &kDiabetesPlan, -1, 0, 0, -1, nullptr, nullptr},
    {{"44054006", "Diabetes"}, 0.12, 35, 75, 'A', kAtCheckup,
     {{"860975", "24 HR Metformin hydrochloride 500 MG Extended Release Oral Tablet"},
      {"106892",
      "insulin human, isophane 70 UNT/ML / Regular Insulin, Human 30 UNT/ML Injectable Suspension "
      "[Humulin]"},
      NO_CODE}, 2,
     &kDiabetesPlan, kEncFollowUp, 2, 0, kPanelBasicMetabolic, nullptr, nullptr},
    {{"55822004", "Hyperlipidemia"}, 0.40, 25, 70, 'A', kAtCheckup,
     {{"314231", "Simvastatin 10 MG Oral Tablet"},
      {"312961", "Simvastatin 20 MG Oral Tablet"},
      NO_CODE}, 2,
     &kHyperlipidemiaPlan, kEncFollowUp, 1, 0, kPanelLipid, nullptr, nullptr},
    {{"162864005", "Body mass index 30+ - obesity (finding)"}, 0.50, 15, 55, 'A', kAtCheckup,
     {NO_CODE, NO_CODE, NO_CODE}, 0,
     nullptr, -1, 0, 0, -1, nullptr, nullptr},
    {{"233678006", "Childhood asthma"}, 0.09, 2, 12, 'A', kEncProblem,
     {{"895994", "120 ACTUAT Fluticasone propionate 0.044 MG/ACTUAT Metered Dose Inhaler"},
      {"2123111", "NDA020503 200 ACTUAT Albuterol 0.09 MG/ACTUAT Metered Dose Inhaler"},
      NO_CODE}, 2,
     &kAsthmaPlan, kEncAsthmaFollowUp, 1, 2, -1, nullptr, nullptr},
    {{"195967001", "Asthma"}, 0.05, 15, 60, 'A', kEncProblem,
     {{"895994", "120 ACTUAT Fluticasone propionate 0.044 MG/ACTUAT Metered Dose Inhaler"},
      {"2123111", "NDA020503 200 ACTUAT Albuterol 0.09 MG/ACTUAT Metered Dose Inhaler"},
      NO_CODE}, 2,
     &kAsthmaPlan, kEncAsthmaFollowUp, 1, 2, -1, nullptr, nullptr},
    {{"49436004", "Atrial Fibrillation"}, 0.12, 50, 85, 'A', kEncConsultation,
     {{"855332", "Warfarin Sodium 5 MG Oral Tablet"},
      {"897718", "Verapamil Hydrochloride 40 MG"},
      {"197604", "Digoxin 0.125 MG Oral Tablet"}}, 3,
     nullptr, kEncFollowUp, 1, 0, kPanelCompleteBloodCount,
     "180325003", "Electrical cardioversion"},
    {{"53741008", "Coronary Heart Disease"}, 0.12, 45, 85, 'A', kEncConsultation,
     {{"705129", "Nitroglycerin 0.4 MG/ACTUAT Mucosal Spray"},
      {"309362", "Clopidogrel 75 MG Oral Tablet"},
      {"197361", "Amlodipine 5 MG Oral Tablet"}}, 3,
     nullptr, kEncFollowUp, 1, 0, kPanelComprehensiveMetabolic, nullptr, nullptr},
    {{"239873007", "Osteoarthritis of knee"}, 0.18, 45, 85, 'A', kEncProblem,
     {{"849574", "Naproxen sodium 220 MG Oral Tablet"},
      NO_CODE,
      NO_CODE}, 1,
     &kMusculoskeletalPlan, kEncProblem, 1, 2, -1, nullptr, nullptr},
    {{"239872002", "Osteoarthritis of hip"}, 0.07, 45, 85, 'A', kEncProblem,
     {{"849574", "Naproxen sodium 220 MG Oral Tablet"},
      NO_CODE,
      NO_CODE}, 1,
     &kMusculoskeletalPlan, kEncProblem, 1, 2, -1, nullptr, nullptr},
    {{"185086009", "Chronic obstructive bronchitis (disorder)"}, 0.08, 40, 80, 'A',
     kEncConsultation,
     {{"896209",
      "60 ACTUAT Fluticasone propionate 0.25 MG/ACTUAT / salmeterol 0.05 MG/ACTUAT Dry Powder "
      "Inhaler"},
      NO_CODE,
      NO_CODE}, 1,
     &kCopdPlan, kEncFollowUp, 1, 0, -1, "127783003", "Spirometry (procedure)"},
    {{"271737000", "Anemia (disorder)"}, 0.40, 5, 80, 'A', kAtCheckup,
     {NO_CODE, NO_CODE, NO_CODE}, 0,
     nullptr, kEncProblem, 1, 2, kPanelCompleteBloodCount,
     "104091002", "Hemoglobin / Hematocrit / Platelet count"},
    {{"40055000", "Chronic sinusitis (disorder)"}, 0.15, 10, 70, 'A', kEncProblem,
     {NO_CODE, NO_CODE, NO_CODE}, 0,
     nullptr, -1, 0, 0, -1, nullptr, nullptr},
    {{"64859006", "Osteoporosis (disorder)"}, 0.20, 50, 85, 'F', kAtCheckup,
     {{"904419", "Alendronic acid 10 MG Oral Tablet"},
      NO_CODE,
      NO_CODE}, 1,
     nullptr, -1, 0, 0, -1, nullptr, nullptr},
    {{"82423001", "Chronic pain"}, 0.08, 25, 75, 'A', kEncProblem,
     {{"856987", "Acetaminophen 300 MG / HYDROcodone Bitartrate 5 MG Oral Tablet"},
      {"1049221", "Acetaminophen 325 MG / Oxycodone Hydrochloride 5 MG Oral Tablet"},
      NO_CODE}, 2,
     nullptr, kEncFollowUp, 2, 0, -1, nullptr, nullptr},
    {{"124171000119105", "Chronic intractable migraine without aura"}, 0.05, 15, 50, 'A',
     kEncProblem,
     {{"198014", "Naproxen 500 MG Oral Tablet"},
      NO_CODE,
      NO_CODE}, 1,
     nullptr, kEncInpatient, 1, 2, -1, nullptr, nullptr},
    {{"26929004", "Alzheimer's disease (disorder)"}, 0.12, 70, 90, 'A', kEncConsultation,
     {{"310436", "Galantamine 4 MG Oral Tablet"},
      {"1599803",
      "24 HR Donepezil hydrochloride 10 MG / Memantine hydrochloride 28 MG Extended Release Oral "
      "Capsule"},
      NO_CODE}, 2,
     &kDementiaPlan, kEncDomiciliary, 2, 0, -1, nullptr, nullptr},
    {{"192127007", "Child attention deficit disorder"}, 0.07, 5, 12, 'A', kEncProblem,
     {{"1091392", "Methylphenidate Hydrochloride 20 MG Oral Tablet"},
      NO_CODE,
      NO_CODE}, 1,
     &kAttentionPlan, kEncProblem, 1, 0, -1, nullptr, nullptr},
    {{"370143000", "Major depression disorder"}, 0.12, 15, 65, 'A', kEncProblem,
     {{"312938", "Sertraline 100 MG Oral Tablet"},
      NO_CODE,
      NO_CODE}, 1,
     nullptr, kEncProblem, 2, 3, -1, "228557008", "Cognitive and behavioral therapy"},
    {{"254837009", "Malignant neoplasm of breast (disorder)"}, 0.08, 45, 85, 'F', kEncConsultation,
     {{"198240", "Tamoxifen 10 MG Oral Tablet"},
      NO_CODE,
      NO_CODE}, 1,
     &kCancerPlan, kEncConsultation, 2, 5, kPanelCompleteBloodCount,
     "71651007", "Mammography (procedure)"},
    {{"126906006", "Neoplasm of prostate"}, 0.10, 55, 85, 'M', kEncConsultation,
     {{"752899", "0.25 ML Leuprolide Acetate 30 MG/ML Prefilled Syringe"},
      NO_CODE,
      NO_CODE}, 1,
     &kCancerPlan, kEncConsultation, 2, 5, -1, nullptr, nullptr},
    {{"128613002", "Seizure disorder"}, 0.02, 1, 60, 'A', kEncProblem,
     {NO_CODE, NO_CODE, NO_CODE}, 0,
     nullptr, kEncFollowUp, 1, 0, -1, nullptr, nullptr},
};
// clang-format on
const size_t kChronicDiseaseCount = sizeof(kChronicDiseases) / sizeof(kChronicDiseases[0]);

// --- acute illnesses and injuries ------------------------------------------------------------

// Columns: condition, episodes per person-year, ages, visit kind, recovery days; medication
// and its probability, procedure; care plan, X-ray body site.
// clang-format off
const AcuteIllness kAcuteIllnesses[] = {
    {{"444814009", "Viral sinusitis (disorder)"}, 0.12, 0, 99, kEncSymptom, 7, 21,
     NO_CODE, 0,
     NO_CODE, nullptr, nullptr, nullptr},
    {{"195662009", "Acute viral pharyngitis (disorder)"}, 0.08, 0, 99, kEncSymptom, 7, 14,
     NO_CODE, 0,
     {"117015009", "Throat culture (procedure)"}, nullptr, nullptr, nullptr},
    {{"10509002", "Acute bronchitis (disorder)"}, 0.05, 0, 99, kEncSymptom, 7, 21,
     {"1043400", "Acetaminophen 21.7 MG/ML / Dextromethorphan Hydrobromide 1 MG/ML / "
                 "doxylamine succinate 0.417 MG/ML Oral Solution"}, 0.4,
     NO_CODE, &kRespiratoryPlan, nullptr, nullptr},
    {{"65363002", "Otitis media"}, 0.25, 0, 6, kEncSymptom, 7, 14,
     {"308182", "Amoxicillin 250 MG Oral Capsule"}, 0.5,
     NO_CODE, nullptr, nullptr, nullptr},
    {{"43878008", "Streptococcal sore throat (disorder)"}, 0.03, 3, 40, kEncSymptom, 10, 14,
     {"834102", "Penicillin V Potassium 500 MG Oral Tablet"}, 0.9,
     {"117015009", "Throat culture (procedure)"}, nullptr, nullptr, nullptr},
    {{"75498004", "Acute bacterial sinusitis (disorder)"}, 0.01, 0, 99, kEncSymptom, 10, 21,
     {"562251", "Amoxicillin 250 MG / Clavulanate 125 MG Oral Tablet"}, 0.9,
     NO_CODE, nullptr, nullptr, nullptr},
    {{"301011002", "Escherichia coli urinary tract infection"}, 0.02, 15, 99, kEncSymptom, 7, 14,
     {"311989", "Nitrofurantoin 5 MG/ML Oral Suspension"}, 0.9,
     {"117010004", "Urine culture"}, &kUtiPlan, nullptr, nullptr},
    {{"44465007", "Sprain of ankle"}, 0.04, 5, 70, kEncUrgentCare, 14, 42,
     {"310965", "Ibuprofen 200 MG Oral Tablet"}, 0.5,
     NO_CODE, &kPhysicalTherapyPlan, "344001", "Ankle"},
    {{"70704007", "Sprain of wrist"}, 0.02, 5, 70, kEncUrgentCare, 14, 42,
     {"310965", "Ibuprofen 200 MG Oral Tablet"}, 0.5,
     NO_CODE, &kPhysicalTherapyPlan, "74670003", "Wrist"},
    {{"65966004", "Fracture of forearm"}, 0.012, 3, 90, kEncEmergency, 42, 84,
     {"856987", "Acetaminophen 300 MG / HYDROcodone Bitartrate 5 MG Oral Tablet"}, 0.6,
     {"274474001", "Bone immobilization"}, &kFracturePlan, "40983000", "Arm"},
    {{"58150001", "Fracture of clavicle"}, 0.006, 3, 90, kEncEmergency, 42, 84,
     {"856987", "Acetaminophen 300 MG / HYDROcodone Bitartrate 5 MG Oral Tablet"}, 0.6,
     {"274474001", "Bone immobilization"}, &kFracturePlan, "51299004", "Clavicle"},
    {{"16114001", "Fracture of ankle"}, 0.006, 3, 90, kEncEmergency, 42, 84,
     {"856987", "Acetaminophen 300 MG / HYDROcodone Bitartrate 5 MG Oral Tablet"}, 0.6,
     {"274474001", "Bone immobilization"}, &kFracturePlan, "344001", "Ankle"},
    {{"284551006", "Laceration of foot"}, 0.012, 2, 90, kEncEmergency, 14, 28,
     NO_CODE, 0,
     {"288086009", "Suture open wound"}, &kWoundPlan, nullptr, nullptr},
    {{"284549007", "Laceration of hand"}, 0.008, 2, 90, kEncEmergency, 14, 28,
     NO_CODE, 0,
     {"288086009", "Suture open wound"}, &kWoundPlan, nullptr, nullptr},
    {{"283371005", "Laceration of forearm"}, 0.008, 2, 90, kEncEmergency, 14, 28,
     NO_CODE, 0,
     {"288086009", "Suture open wound"}, &kWoundPlan, nullptr, nullptr},
    {{"403190006", "First degree burn"}, 0.014, 1, 80, kEncUrgentCare, 7, 21,
     NO_CODE, 0,
     NO_CODE, &kBurnPlan, nullptr, nullptr},
    {{"62106007", "Concussion with no loss of consciousness"}, 0.008, 3, 80, kEncEmergency, 14, 42,
     {"313782", "Acetaminophen 325 MG Oral Tablet"}, 0.7,
     NO_CODE, &kHeadInjuryPlan, nullptr, nullptr},
    {{"39848009", "Whiplash injury to neck"}, 0.008, 16, 80, kEncEmergency, 21, 60,
     {"313782", "Acetaminophen 325 MG Oral Tablet"}, 0.7,
     NO_CODE, &kPhysicalTherapyPlan, nullptr, nullptr},
    {{"74400008", "Appendicitis"}, 0.0015, 5, 60, kEncInpatient, 14, 28,
     {"313782", "Acetaminophen 325 MG Oral Tablet"}, 0.8,
     {"80146002", "Appendectomy"}, nullptr, nullptr, nullptr},
    {{"196416002", "Impacted molars"}, 0.02, 16, 25, kEncInpatient, 7, 14,
     {"856987", "Acetaminophen 300 MG / HYDROcodone Bitartrate 5 MG Oral Tablet"}, 0.5,
     {"65546002", "Extraction of wisdom tooth"}, nullptr, nullptr, nullptr},
    {{"239720000", "Tear of meniscus of knee"}, 0.004, 15, 60, kEncEmergency, 42, 120,
     {"849574", "Naproxen sodium 220 MG Oral Tablet"}, 0.6,
     NO_CODE, &kPhysicalTherapyPlan, "72696002", "Knee"},
    {{"55680006", "Drug overdose"}, 0.003, 16, 60, kEncEmergency, 7, 30,
     NO_CODE, 0,
     NO_CODE, nullptr, nullptr, nullptr},
    {{"230690007", "Stroke"}, 0.004, 55, 99, kEncEmergency, 30, 180,
     {"1804799", "Alteplase 100 MG Injection"}, 0.5,
     NO_CODE, nullptr, nullptr, nullptr},
    {{"410429000", "Cardiac Arrest"}, 0.001, 60, 99, kEncEmergency, 14, 60,
     NO_CODE, 0,
     {"429500007", "Monitoring of patient (regime/therapy)"}, nullptr, nullptr, nullptr},
};
// clang-format on
const size_t kAcuteIllnessCount = sizeof(kAcuteIllnesses) / sizeof(kAcuteIllnesses[0]);

const SecondaryProcedure kSecondaryProcedures[] = {
    {"10509002", {"23426006", "Measurement of respiratory function (procedure)"}, 0.5},
    {"10509002", {"269911007", "Sputum examination (procedure)"}, 0.3},
    {"284551006", {"384700001", "Injection of tetanus antitoxin"}, 0.4},
    {"284549007", {"384700001", "Injection of tetanus antitoxin"}, 0.4},
    {"283371005", {"384700001", "Injection of tetanus antitoxin"}, 0.4},
    {"65966004", {"305428000", "Admission to orthopedic department"}, 0.3},
    {"58150001", {"305428000", "Admission to orthopedic department"}, 0.3},
    {"16114001", {"305428000", "Admission to orthopedic department"}, 0.3},
};
const size_t kSecondaryProcedureCount =
    sizeof(kSecondaryProcedures) / sizeof(kSecondaryProcedures[0]);

// --- pregnancy -------------------------------------------------------------------------------

const Code kNormalPregnancy = {"72892002", "Normal pregnancy"};
const Code kMiscarriage = {"19169002", "Miscarriage in first trimester"};
const Code kPrenatalInitialProcedures[] = {
    {"252160004", "Standard pregnancy test"},
    {"169230002", "Ultrasound scan for fetal viability"},
    {"44608003", "Blood typing, RH typing"},
    {"47758006", "Hepatitis B Surface Antigen Measurement"},
    {"31676001", "Human immunodeficiency virus antigen test"},
    {"310861008", "Chlamydia antigen test"},
    {"165829005", "Gonorrhea infection test"},
    {"269828009", "Syphilis infection test"},
    {"117010004", "Urine culture"},
    {"90226004", "Cytopathology procedure, preparation of smear, genital source"},
    {"395123002", "Urine screening test for diabetes"},
    {"104375008", "Hepatitis C antibody test"},
    {"169690007", "Rubella screening"},
    {"104326007", "Measurement of Varicella-zoster virus antibody"},
    {"28163009", "Skin test for tuberculosis"},
    {"167271000", "Urine protein test"},
    {"5880005", "Physical examination of mother"},
};
const size_t kPrenatalInitialProcedureCount =
    sizeof(kPrenatalInitialProcedures) / sizeof(kPrenatalInitialProcedures[0]);
const Code kPrenatalSecondTrimesterProcedures[] = {
    {"271442007", "Fetal anatomy study"},
    {"275833003", "Alpha-fetoprotein test"},
    {"443529005", "Screening for chromosomal aneuploidy in prenatal amniotic fluid"},
    {"268556000", "Urine screening for glucose"},
    {"118001005", "Streptococcus pneumoniae group B antigen test"},
};
const size_t kPrenatalSecondTrimesterProcedureCount =
    sizeof(kPrenatalSecondTrimesterProcedures) / sizeof(kPrenatalSecondTrimesterProcedures[0]);
const Code kPrenatalRoutineProcedures[2] = {
    {"274804006", "Evaluation of uterine fundal height"},
    {"225158009", "Auscultation of the fetal heart"},
};
const Code kChildbirth = {"66348005", "Childbirth"};
const BirthProcedure kBirthProcedures[] = {
    {{"31208007", "Medical induction of labor"}, 0.3},
    {{"237001001", "Augmentation of labor"}, 0.15},
    {{"18946005", "Epidural anesthesia"}, 0.6},
    {{"85548006", "Episiotomy"}, 0.2},
    {{"11466000", "Cesarean section"}, 0.3},
};
const size_t kBirthProcedureCount = sizeof(kBirthProcedures) / sizeof(kBirthProcedures[0]);
const Code kPrenatalThirdTrimesterProcedures[2] = {
    {"104091002", "Hemoglobin / Hematocrit / Platelet count"},
    {"399014008", "Vaccination for diphtheria, pertussis, and tetanus"},
};
const Code kRhImmunization = {"51116004", "RhD passive immunization"};
const Code kPostnatalExam = {"5880005", "Physical examination following birth"};
const Code kContraceptives[] = {
    {"748879", "Levora 0.15/30 28 Day Pack"},
    {"757594", "Jolivette 28 Day Pack"},
    {"749762", "Seasonique 91 Day Pack"},
    {"748856", "Yaz 28 Day Pack"},
    {"389221", "Etonogestrel 68 MG Drug Implant"},
    {"807283", "Mirena 52 MG Intrauterine System"},
    {"1000126", "1 ML medroxyprogesterone acetate 150 MG/ML Injection"},
};
const size_t kContraceptiveCount = sizeof(kContraceptives) / sizeof(kContraceptives[0]);

// --- routine procedures, allergies, devices, imaging -----------------------------------------

const Code kMedicationReconciliation = {"430193006", "Medication Reconciliation (procedure)"};
const Code kDepressionScreening = {"171207006", "Depression screening"};
const Code kColonoscopy = {"73761001", "Colonoscopy"};
const Code kMammography = {"71651007", "Mammography (procedure)"};
const Code kIntramuscularInjection = {"76601001", "Intramuscular injection"};
const Code kSubcutaneousImmunotherapy = {"180256009", "Subcutaneous immunotherapy"};
const Code kAllergyScreeningTest = {"395142003", "Allergy screening test"};
const Code kInsertIntrauterineDevice = {"65200003",
                                        "Insertion of intrauterine contraceptive device"};
const Code kInsertSubcutaneousContraceptive = {"169553002",
                                               "Insertion of subcutaneous contraceptive"};
const Code kRemoveSubcutaneousContraceptive = {"301807007",
                                               "Removal of subcutaneous contraceptive"};

const AllergyDef kAllergies[] = {
    {{"419474003", "Allergy to mould"}, "environment", "low"},
    {{"232347008", "Dander (animal) allergy"}, "environment", "low"},
    {{"418689008", "Allergy to grass pollen"}, "environment", "low"},
    {{"232350006", "House dust mite allergy"}, "environment", "low"},
    {{"419263009", "Allergy to tree pollen"}, "environment", "low"},
    {{"91934008", "Allergy to nut"}, "food", "high"},
    {{"300913006", "Shellfish allergy"}, "food", "high"},
    {{"425525006", "Allergy to dairy product"}, "food", "low"},
    {{"424213003", "Allergy to bee venom"}, "environment", "high"},
    {{"91935009", "Allergy to peanuts"}, "food", "high"},
    {{"417532002", "Allergy to fish"}, "food", "high"},
    {{"714035009", "Allergy to soya"}, "food", "low"},
    {{"300916003", "Latex allergy"}, "environment", "high"},
    {{"91936005", "Allergy to penicillin"}, "medication", "high"},
};
const size_t kAllergyCount = sizeof(kAllergies) / sizeof(kAllergies[0]);
const Code kAllergicRhinitis = {"446096008", "Perennial allergic rhinitis"};
const Code kAllergyMeds[2] = {
    {"665078", "Loratadine 5 MG Chewable Tablet"},
    {"1870230", "NDA020800 0.3 ML Epinephrine 1 MG/ML Auto-Injector"},
};

const DeviceDef kDevices[] = {
    {{"72506001", "Implantable defibrillator, device (physical object)"}, 10},
    {{"706004007", "Implantable cardiac pacemaker (physical object)"}, 12},
};
const size_t kDeviceCount = sizeof(kDevices) / sizeof(kDevices[0]);

const Code kModalityDigitalRadiography = {"DX", "Digital Radiography"};
const char kSopClassDigitalXray[] = "1.2.840.10008.5.1.4.1.1.1.1";

// --- immunizations (CDC schedule, simplified) ------------------------------------------------

const VaccineDef kVaccines[] = {
    {{"08", "Hep B, adolescent or pediatric"}, {0, 1, 6}, 3, 0},
    {{"119", "rotavirus, monovalent"}, {2, 4}, 2, 0},
    {{"20", "DTaP"}, {2, 4, 6, 15, 48}, 5, 0},
    {{"49", "Hib (PRP-OMP)"}, {2, 4, 12}, 3, 0},
    {{"133", "Pneumococcal conjugate PCV 13"}, {2, 4, 6, 12, 780}, 5, 0},
    {{"10", "IPV"}, {2, 4, 6, 48}, 4, 0},
    {{"03", "MMR"}, {12, 48}, 2, 0},
    {{"21", "varicella"}, {12, 48}, 2, 0},
    {{"83", "Hep A, ped/adol, 2 dose"}, {12, 18}, 2, 0},
    {{"115", "Tdap"}, {132}, 1, 0},
    {{"62", "HPV, quadrivalent"}, {132, 138}, 2, 0},
    {{"114", "meningococcal MCV4P"}, {132, 192}, 2, 0},
    {{"113", "Td (adult) preservative free"}, {252}, 1, 120},
    {{"43", "Hep B, adult"}, {228, 229, 234}, 3, 0},
    {{"52", "Hep A, adult"}, {228, 234}, 2, 0},
    {{"121", "zoster"}, {720}, 1, 0},
    {{"33", "pneumococcal polysaccharide vaccine, 23 valent"}, {792}, 1, 0},
    {{"140", "Influenza, seasonal, injectable, preservative free"}, {6}, 1, 12},
};
const size_t kVaccineCount = sizeof(kVaccines) / sizeof(kVaccines[0]);
const size_t kInfluenzaVaccineIndex = kVaccineCount - 1;

// --- claims and documents --------------------------------------------------------------------

const Payer kPayers[] = {
    {"NO_INSURANCE", 0.22, 0.02},
    {"Medicare", 0.02, 0.78},
    {"Medicaid", 0.15, 0.05},
    {"Dual Eligible", 0.005, 0.07},
    {"Blue Cross Blue Shield", 0.17, 0.02},
    {"Aetna", 0.11, 0.02},
    {"Humana", 0.08, 0.02},
    {"UnitedHealthcare", 0.11, 0.01},
    {"Anthem", 0.06, 0.005},
    {"Cigna Health", 0.055, 0.005},
};
const size_t kPayerCount = sizeof(kPayers) / sizeof(kPayers[0]);

const AdjudicationDef kAdjudications[6] = {
    {"https://bluebutton.cms.gov/resources/variables/line_coinsrnc_amt",
     "Line Beneficiary Coinsurance Amount"},
    {"https://bluebutton.cms.gov/resources/variables/line_prvdr_pmt_amt",
     "Line Provider Payment Amount"},
    {"https://bluebutton.cms.gov/resources/variables/line_sbmtd_chrg_amt",
     "Line Submitted Charge Amount"},
    {"https://bluebutton.cms.gov/resources/variables/line_alowd_chrg_amt",
     "Line Allowed Charge Amount"},
    {"https://bluebutton.cms.gov/resources/variables/line_bene_ptb_ddctbl_amt",
     "Line Beneficiary Part B Deductible Amount"},
    {"https://bluebutton.cms.gov/resources/variables/line_prcsg_ind_cd",
     "Line Processing Indicator Code"},
};

const Code kNoteTypes[] = {
    {"34117-2", "History and physical note"},
    {"11506-3", "Progress note"},
    {"18842-5", "Discharge summary"},
    {"34111-5", "Emergency department note"},
    {"11488-4", "Consult note"},
};
const size_t kNoteTypeCount = sizeof(kNoteTypes) / sizeof(kNoteTypes[0]);

#undef NO_CODE

}  // namespace synth
}  // namespace fhirbulk
