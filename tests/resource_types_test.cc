#include "fhir/resource_types.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string_view>

namespace fhirbulk {
namespace {

TEST(ResourceTypesTest, ListsEveryR4TypeSorted) {
  const auto& types = R4ResourceTypes();
  // 145 types in R4's compartment definitions plus Parameters.
  EXPECT_EQ(types.size(), 146u);
  EXPECT_TRUE(std::is_sorted(types.begin(), types.end()));
  EXPECT_TRUE(std::adjacent_find(types.begin(), types.end()) == types.end());
  EXPECT_EQ(types.front(), "Account");
  EXPECT_EQ(types.back(), "VisionPrescription");
  for (std::string_view type : types) EXPECT_TRUE(IsR4ResourceType(type)) << type;
}

TEST(ResourceTypesTest, KnowsCommonAndRareTypes) {
  for (std::string_view type :
       {"Patient", "Observation", "Bundle", "Parameters", "OperationOutcome", "Binary",
        "MedicinalProductUndesirableEffect", "SubstanceSpecification", "EffectEvidenceSynthesis",
        "CatalogEntry", "TerminologyCapabilities", "VerificationResult", "Group", "Linkage"}) {
    EXPECT_TRUE(IsR4ResourceType(type)) << type;
  }
}

TEST(ResourceTypesTest, RejectsNonTypes) {
  for (std::string_view type :
       {"", "patient", "PATIENT", "Patient ", "Resource", "DomainResource", "Foo",
        "SubscriptionStatus" /* R4B */, "Evidencereport", "MedicationUsage" /* R5 */}) {
    EXPECT_FALSE(IsR4ResourceType(type)) << type;
  }
}

TEST(ResourceTypesTest, PatientCompartmentTypes) {
  const auto& types = PatientCompartmentTypes();
  EXPECT_EQ(types.size(), 66u);
  EXPECT_TRUE(std::is_sorted(types.begin(), types.end()));
  for (std::string_view type : types) {
    EXPECT_TRUE(IsR4ResourceType(type)) << type;
    EXPECT_TRUE(IsPatientCompartmentType(type)) << type;
  }
  for (std::string_view type :
       {"Patient", "Observation", "Encounter", "Group", "Provenance", "Coverage", "Schedule",
        "ResearchSubject", "SupplyRequest", "Person", "RelatedPerson"}) {
    EXPECT_TRUE(IsPatientCompartmentType(type)) << type;
  }
  // Spec digest §6: never in the compartment.
  for (std::string_view type :
       {"Binary", "Device", "Location", "Medication", "Organization", "Practitioner",
        "PractitionerRole", "Task", "ValueSet", "CodeSystem", "Bundle", "Parameters", ""}) {
    EXPECT_FALSE(IsPatientCompartmentType(type)) << type;
  }
}

}  // namespace
}  // namespace fhirbulk
