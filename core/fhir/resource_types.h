// The FHIR R4 (4.0.1) resource types, and which of them the Patient compartment covers.
//
// Thread-safety: pure functions over static tables.

#ifndef FHIRBULK_FHIR_RESOURCE_TYPES_H_
#define FHIRBULK_FHIR_RESOURCE_TYPES_H_

#include <string_view>
#include <vector>

namespace fhirbulk {

// True for every concrete resource type defined by FHIR R4 4.0.1 (Patient, Observation, ...):
// 146 of them: the 145 types R4's CompartmentDefinitions enumerate plus Parameters (a resource
// in R4's resource-types code system, but never stored, so left out of compartments).
// Case-sensitive.
bool IsR4ResourceType(std::string_view type);

// All R4 resource types, in alphabetical order.
const std::vector<std::string_view>& R4ResourceTypes();

// True when R4's Patient CompartmentDefinition lists the type (with at least one linking
// search parameter); Patient itself counts.
bool IsPatientCompartmentType(std::string_view type);

// The compartment types, alphabetical: 66, Patient included.
const std::vector<std::string_view>& PatientCompartmentTypes();

// True for a valid FHIR resource id: [A-Za-z0-9\-\.]{1,64}.
bool IsValidFhirId(std::string_view id);

}  // namespace fhirbulk

#endif  // FHIRBULK_FHIR_RESOURCE_TYPES_H_
