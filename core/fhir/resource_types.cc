// The R4 resource type lists as sorted static arrays: lookups are a binary search over
// string_views (no allocation, no hashing, no static initialization order issues).

#include "fhir/resource_types.h"

#include <algorithm>
#include <iterator>

namespace fhirbulk {

namespace {

// Every concrete resource type of FHIR R4 4.0.1: the codes of the CodeSystem
// http://hl7.org/fhir/resource-types (version 4.0.1) minus the abstract Resource and
// DomainResource. Sorted (bytewise), which the binary search below relies on.
// clang-format off
constexpr std::string_view kR4ResourceTypes[] = {
    "Account", "ActivityDefinition", "AdverseEvent", "AllergyIntolerance", "Appointment",
    "AppointmentResponse", "AuditEvent", "Basic", "Binary", "BiologicallyDerivedProduct",
    "BodyStructure", "Bundle", "CapabilityStatement", "CarePlan", "CareTeam", "CatalogEntry",
    "ChargeItem", "ChargeItemDefinition", "Claim", "ClaimResponse", "ClinicalImpression",
    "CodeSystem", "Communication", "CommunicationRequest", "CompartmentDefinition", "Composition",
    "ConceptMap", "Condition", "Consent", "Contract", "Coverage", "CoverageEligibilityRequest",
    "CoverageEligibilityResponse", "DetectedIssue", "Device", "DeviceDefinition", "DeviceMetric",
    "DeviceRequest", "DeviceUseStatement", "DiagnosticReport", "DocumentManifest",
    "DocumentReference", "EffectEvidenceSynthesis", "Encounter", "Endpoint", "EnrollmentRequest",
    "EnrollmentResponse", "EpisodeOfCare", "EventDefinition", "Evidence", "EvidenceVariable",
    "ExampleScenario", "ExplanationOfBenefit", "FamilyMemberHistory", "Flag", "Goal",
    "GraphDefinition", "Group", "GuidanceResponse", "HealthcareService", "ImagingStudy",
    "Immunization", "ImmunizationEvaluation", "ImmunizationRecommendation", "ImplementationGuide",
    "InsurancePlan", "Invoice", "Library", "Linkage", "List", "Location", "Measure",
    "MeasureReport", "Media", "Medication", "MedicationAdministration", "MedicationDispense",
    "MedicationKnowledge", "MedicationRequest", "MedicationStatement", "MedicinalProduct",
    "MedicinalProductAuthorization", "MedicinalProductContraindication",
    "MedicinalProductIndication", "MedicinalProductIngredient", "MedicinalProductInteraction",
    "MedicinalProductManufactured", "MedicinalProductPackaged", "MedicinalProductPharmaceutical",
    "MedicinalProductUndesirableEffect", "MessageDefinition", "MessageHeader", "MolecularSequence",
    "NamingSystem", "NutritionOrder", "Observation", "ObservationDefinition",
    "OperationDefinition", "OperationOutcome", "Organization", "OrganizationAffiliation",
    "Parameters", "Patient", "PaymentNotice", "PaymentReconciliation", "Person", "PlanDefinition",
    "Practitioner", "PractitionerRole", "Procedure", "Provenance", "Questionnaire",
    "QuestionnaireResponse", "RelatedPerson", "RequestGroup", "ResearchDefinition",
    "ResearchElementDefinition", "ResearchStudy", "ResearchSubject", "RiskAssessment",
    "RiskEvidenceSynthesis", "Schedule", "SearchParameter", "ServiceRequest", "Slot", "Specimen",
    "SpecimenDefinition", "StructureDefinition", "StructureMap", "Subscription", "Substance",
    "SubstanceNucleicAcid", "SubstancePolymer", "SubstanceProtein",
    "SubstanceReferenceInformation", "SubstanceSourceMaterial", "SubstanceSpecification",
    "SupplyDelivery", "SupplyRequest", "Task", "TerminologyCapabilities", "TestReport",
    "TestScript", "ValueSet", "VerificationResult", "VisionPrescription"};
// clang-format on

// The types R4's Patient CompartmentDefinition (http://hl7.org/fhir/CompartmentDefinition/patient,
// 4.0.1) lists with at least one inclusion parameter, Patient included (via "link").
// Which parameters link each type lives in the search parameter table (fhir/search_params.cc).
// clang-format off
constexpr std::string_view kPatientCompartmentTypes[] = {
    "Account", "AdverseEvent", "AllergyIntolerance", "Appointment", "AppointmentResponse",
    "AuditEvent", "Basic", "BodyStructure", "CarePlan", "CareTeam", "ChargeItem", "Claim",
    "ClaimResponse", "ClinicalImpression", "Communication", "CommunicationRequest", "Composition",
    "Condition", "Consent", "Coverage", "CoverageEligibilityRequest",
    "CoverageEligibilityResponse", "DetectedIssue", "DeviceRequest", "DeviceUseStatement",
    "DiagnosticReport", "DocumentManifest", "DocumentReference", "Encounter", "EnrollmentRequest",
    "EpisodeOfCare", "ExplanationOfBenefit", "FamilyMemberHistory", "Flag", "Goal", "Group",
    "ImagingStudy", "Immunization", "ImmunizationEvaluation", "ImmunizationRecommendation",
    "Invoice", "List", "MeasureReport", "Media", "MedicationAdministration", "MedicationDispense",
    "MedicationRequest", "MedicationStatement", "MolecularSequence", "NutritionOrder",
    "Observation", "Patient", "Person", "Procedure", "Provenance", "QuestionnaireResponse",
    "RelatedPerson", "RequestGroup", "ResearchSubject", "RiskAssessment", "Schedule",
    "ServiceRequest", "Specimen", "SupplyDelivery", "SupplyRequest", "VisionPrescription"};
// clang-format on

template <size_t N>
bool Contains(const std::string_view (&sorted)[N], std::string_view type) {
  return std::binary_search(std::begin(sorted), std::end(sorted), type);
}

}  // namespace

bool IsR4ResourceType(std::string_view type) { return Contains(kR4ResourceTypes, type); }

const std::vector<std::string_view>& R4ResourceTypes() {
  static const std::vector<std::string_view> kTypes(std::begin(kR4ResourceTypes),
                                                    std::end(kR4ResourceTypes));
  return kTypes;
}

bool IsPatientCompartmentType(std::string_view type) {
  return Contains(kPatientCompartmentTypes, type);
}

const std::vector<std::string_view>& PatientCompartmentTypes() {
  static const std::vector<std::string_view> kTypes(std::begin(kPatientCompartmentTypes),
                                                    std::end(kPatientCompartmentTypes));
  return kTypes;
}

bool IsValidFhirId(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

}  // namespace fhirbulk
