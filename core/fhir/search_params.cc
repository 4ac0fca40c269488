// The search parameter table. See search_params.h for what it covers and how each kind is
// stored. Rows transcribe FHIR R4 4.0.1 SearchParameter expressions (search-parameters.json);
// `patient_compartment` marks the inclusion parameters of R4's CompartmentDefinition/patient.
// Lookups are binary searches over the sorted table: no allocation, no hashing.

#include "fhir/search_params.h"

#include <algorithm>
#include <iterator>

#include "fhir/resource_types.h"

namespace fhirbulk {

namespace {

using K = SearchParamKind;
using E = SearchElementType;

// Sorted by (type, code); checked at compile time below.
// {type, code, kind, target, patient_compartment, {{path, element}, ...}[, targets]}
// `targets` of reference rows: SearchParameter.target of R4 4.0.1, sorted; left empty where
// R4 says any resource type (Basic.subject, Composition.subject, ...).
// clang-format off
constexpr SearchParamDef kTypeParams[] = {
    // Account
    {"Account", "identifier", K::kToken, "", false, {{"identifier", E::kIdentifier}}},
    {"Account", "patient", K::kReference, "Patient", false, {{"subject", E::kReference}},
        "Patient"},
    {"Account", "status", K::kToken, "", false, {{"status", E::kCode}}},
    {"Account", "subject", K::kReference, "", true, {{"subject", E::kReference}},
        "Device HealthcareService Location Organization Patient Practitioner PractitionerRole"},
    // AdverseEvent
    {"AdverseEvent", "category", K::kToken, "", false, {{"category", E::kCodeableConcept}}},
    {"AdverseEvent", "date", K::kDate, "", false, {{"date", E::kDateTime}}},
    {"AdverseEvent", "subject", K::kReference, "", true, {{"subject", E::kReference}},
        "Group Patient Practitioner RelatedPerson"},
    // AllergyIntolerance
    {"AllergyIntolerance", "asserter", K::kReference, "", true, {{"asserter", E::kReference}},
        "Patient Practitioner PractitionerRole RelatedPerson"},
    {"AllergyIntolerance", "category", K::kToken, "", false, {{"category", E::kCode}}},
    {"AllergyIntolerance", "clinical-status", K::kToken, "", false,
        {{"clinicalStatus", E::kCodeableConcept}}},
    {"AllergyIntolerance", "code", K::kToken, "", false,
        {{"code", E::kCodeableConcept}, {"reaction.substance", E::kCodeableConcept}}},
    {"AllergyIntolerance", "criticality", K::kToken, "", false, {{"criticality", E::kCode}}},
    {"AllergyIntolerance", "date", K::kDate, "", false, {{"recordedDate", E::kDateTime}}},
    {"AllergyIntolerance", "identifier", K::kToken, "", false, {{"identifier", E::kIdentifier}}},
    {"AllergyIntolerance", "patient", K::kReference, "", true, {{"patient", E::kReference}},
        "Patient"},
    {"AllergyIntolerance", "recorder", K::kReference, "", true, {{"recorder", E::kReference}},
        "Patient Practitioner PractitionerRole RelatedPerson"},
    {"AllergyIntolerance", "type", K::kToken, "", false, {{"type", E::kCode}}},
    {"AllergyIntolerance", "verification-status", K::kToken, "", false,
        {{"verificationStatus", E::kCodeableConcept}}},
    // Appointment
    {"Appointment", "actor", K::kReference, "", true, {{"participant.actor", E::kReference}},
        "Device HealthcareService Location Patient Practitioner PractitionerRole RelatedPerson"},
    {"Appointment", "date", K::kDate, "", false, {{"start", E::kDateTime}}},
    {"Appointment", "identifier", K::kToken, "", false, {{"identifier", E::kIdentifier}}},
    {"Appointment", "patient", K::kReference, "Patient", false,
        {{"participant.actor", E::kReference}},
        "Patient"},
    {"Appointment", "status", K::kToken, "", false, {{"status", E::kCode}}},
    // AppointmentResponse
    {"AppointmentResponse", "actor", K::kReference, "", true, {{"actor", E::kReference}},
        "Device HealthcareService Location Patient Practitioner PractitionerRole RelatedPerson"},
    {"AppointmentResponse", "identifier", K::kToken, "", false, {{"identifier", E::kIdentifier}}},
    {"AppointmentResponse", "patient", K::kReference, "Patient", false, {{"actor", E::kReference}},
        "Patient"},
    // AuditEvent
    {"AuditEvent", "date", K::kDate, "", false, {{"recorded", E::kDateTime}}},
    {"AuditEvent", "patient", K::kReference, "Patient", true,
        {{"agent.who", E::kReference}, {"entity.what", E::kReference}},
        "Patient"},
    // Basic
    {"Basic", "author", K::kReference, "", true, {{"author", E::kReference}},
        "Organization Patient Practitioner PractitionerRole RelatedPerson"},
    {"Basic", "code", K::kToken, "", false, {{"code", E::kCodeableConcept}}},
    {"Basic", "identifier", K::kToken, "", false, {{"identifier", E::kIdentifier}}},
    {"Basic", "patient", K::kReference, "Patient", true, {{"subject", E::kReference}},
        "Patient"},
    {"Basic", "subject", K::kReference, "", false, {{"subject", E::kReference}}},
    // BodyStructure
    {"BodyStructure", "identifier", K::kToken, "", false, {{"identifier", E::kIdentifier}}},
    {"BodyStructure", "patient", K::kReference, "", true, {{"patient", E::kReference}},
        "Patient"},
    // CarePlan
    {"CarePlan", "category", K::kToken, "", false, {{"category", E::kCodeableConcept}}},
    {"CarePlan", "date", K::kDate, "", false, {{"period", E::kPeriod}}},
    {"CarePlan", "encounter", K::kReference, "", false, {{"encounter", E::kReference}},
        "Encounter"},
    {"CarePlan", "identifier", K::kToken, "", false, {{"identifier", E::kIdentifier}}},
    {"CarePlan", "intent", K::kToken, "", false, {{"intent", E::kCode}}},
    {"CarePlan", "patient", K::kReference, "Patient", true, {{"subject", E::kReference}},
        "Patient"},
    {"CarePlan", "performer", K::kReference, "", true,
        {{"activity.detail.performer", E::kReference}},
        "CareTeam Device HealthcareService Organization Patient Practitioner PractitionerRole RelatedPerson"},
    {"CarePlan", "status", K::kToken, "", false, {{"status", E::kCode}}},
    {"CarePlan", "subject", K::kReference, "", false, {{"subject", E::kReference}},
        "Group Patient"},
    // CareTeam
    {"CareTeam", "category", K::kToken, "", false, {{"category", E::kCodeableConcept}}},
    {"CareTeam", "date", K::kDate, "", false, {{"period", E::kPeriod}}},
    {"CareTeam", "encounter", K::kReference, "", false, {{"encounter", E::kReference}},
        "Encounter"},
    {"CareTeam", "identifier", K::kToken, "", false, {{"identifier", E::kIdentifier}}},
    {"CareTeam", "participant", K::kReference, "", true, {{"participant.member", E::kReference}},
        "CareTeam Organization Patient Practitioner PractitionerRole RelatedPerson"},
    {"CareTeam", "patient", K::kReference, "Patient", true, {{"subject", E::kReference}},
        "Patient"},
    {"CareTeam", "status", K::kToken, "", false, {{"status", E::kCode}}},
    {"CareTeam", "subject", K::kReference, "", false, {{"subject", E::kReference}},
        "Group Patient"},
    // ChargeItem
    {"ChargeItem", "code", K::kToken, "", false, {{"code", E::kCodeableConcept}}},
    {"ChargeItem", "identifier", K::kToken, "", false, {{"identifier", E::kIdentifier}}},
    {"ChargeItem", "patient", K::kReference, "Patient", false, {{"subject", E::kReference}},
        "Patient"},
    {"ChargeItem", "subject", K::kReference, "", true, {{"subject", E::kReference}},
        "Group Patient"},
    // Claim
    {"Claim", "created", K::kDate, "", false, {{"created", E::kDateTime}}},
    {"Claim", "encounter", K::kReference, "", false, {{"item.encounter", E::kReference}},
        "Encounter"},
    {"Claim", "identifier", K::kToken, "", false, {{"identifier", E::kIdentifier}}},
    {"Claim", "insurer", K::kReference, "", false, {{"insurer", E::kReference}},
        "Organization"},
    {"Claim", "patient", K::kReference, "", true, {{"patient", E::kReference}},
        "Patient"},
    {"Claim", "payee", K::kReference, "", true, {{"payee.party", E::kReference}},
        "Organization Patient Practitioner PractitionerRole RelatedPerson"},
    {"Claim", "provider", K::kReference, "", false, {{"provider", E::kReference}},
        "Organization Practitioner PractitionerRole"},
    {"Claim", "status", K::kToken, "", false, {{"status", E::kCode}}},
    {"Claim", "use", K::kToken, "", false, {{"use", E::kCode}}},
    // ClaimResponse
    {"ClaimResponse", "identifier", K::kToken, "", false, {{"identifier", E::kIdentifier}}},
    {"ClaimResponse", "patient", K::kReference, "", true, {{"patient", E::kReference}},
        "Patient"},
    {"ClaimResponse", "status", K::kToken, "", false, {{"status", E::kCode}}},
    // ClinicalImpression
    {"ClinicalImpression", "date", K::kDate, "", false, {{"date", E::kDateTime}}},
    {"ClinicalImpression", "encounter", K::kReference, "", false, {{"encounter", E::kReference}},
        "Encounter"},
    {"ClinicalImpression", "identifier", K::kToken, "", false, {{"identifier", E::kIdentifier}}},
    {"ClinicalImpression", "patient", K::kReference, "Patient", false,
        {{"subject", E::kReference}},
        "Patient"},
    {"ClinicalImpression", "status", K::kToken, "", false, {{"status", E::kCode}}},
    {"ClinicalImpression", "subject", K::kReference, "", true, {{"subject", E::kReference}},
        "Group Patient"},
    // Communication
    {"Communication", "category", K::kToken, "", false, {{"category", E::kCodeableConcept}}},
    {"Communication", "encounter", K::kReference, "", false, {{"encounter", E::kReference}},
        "Encounter"},
    {"Communication", "identifier", K::kToken, "", false, {{"identifier", E::kIdentifier}}},
    {"Communication", "patient", K::kReference, "Patient", false, {{"subject", E::kReference}},
        "Patient"},
    {"Communication", "recipient", K::kReference, "", true, {{"recipient", E::kReference}},
        "CareTeam Device Group HealthcareService Organization Patient Practitioner PractitionerRole RelatedPerson"},
    {"Communication", "sender", K::kReference, "", true, {{"sender", E::kReference}},
        "Device HealthcareService Organization Patient Practitioner PractitionerRole RelatedPerson"},
    {"Communication", "status", K::kToken, "", false, {{"status", E::kCode}}},
    {"Communication", "subject", K::kReference, "", true, {{"subject", E::kReference}},
        "Group Patient"},
    // CommunicationRequest
    {"CommunicationRequest", "category", K::kToken, "", false, {{"category", E::kCodeableConcept}}},
    {"CommunicationRequest", "encounter", K::kReference, "", false, {{"encounter", E::kReference}},
        "Encounter"},
    {"CommunicationRequest", "identifier", K::kToken, "", false, {{"identifier", E::kIdentifier}}},
    {"CommunicationRequest", "patient", K::kReference, "Patient", false,
        {{"subject", E::kReference}},
        "Patient"},
    {"CommunicationRequest", "recipient", K::kReference, "", true, {{"recipient", E::kReference}},
        "CareTeam Device Group HealthcareService Organization Patient Practitioner PractitionerRole RelatedPerson"},
    {"CommunicationRequest", "requester", K::kReference, "", true, {{"requester", E::kReference}},
        "Device Organization Patient Practitioner PractitionerRole RelatedPerson"},
    {"CommunicationRequest", "sender", K::kReference, "", true, {{"sender", E::kReference}},
        "Device HealthcareService Organization Patient Practitioner PractitionerRole RelatedPerson"},
    {"CommunicationRequest", "status", K::kToken, "", false, {{"status", E::kCode}}},
    {"CommunicationRequest", "subject", K::kReference, "", true, {{"subject", E::kReference}},
        "Group Patient"},
    // Composition
    {"Composition", "attester", K::kReference, "", true, {{"attester.party", E::kReference}},
        "Organization Patient Practitioner PractitionerRole RelatedPerson"},
    {"Composition", "author", K::kReference, "", true, {{"author", E::kReference}},
        "Device Organization Patient Practitioner PractitionerRole RelatedPerson"},
    {"Composition", "category", K::kToken, "", false, {{"category", E::kCodeableConcept}}},
    {"Composition", "date", K::kDate, "", false, {{"date", E::kDateTime}}},
    {"Composition", "encounter", K::kReference, "", false, {{"encounter", E::kReference}},
        "Encounter EpisodeOfCare"},
    {"Composition", "identifier", K::kToken, "", false, {{"identifier", E::kIdentifier}}},
    {"Composition", "patient", K::kReference, "Patient", false, {{"subject", E::kReference}},
        "Patient"},
    {"Composition", "status", K::kToken, "", false, {{"status", E::kCode}}},
    {"Composition", "subject", K::kReference, "", true, {{"subject", E::kReference}}},
    // Condition
    {"Condition", "abatement-date", K::kDate, "", false,
        {{"abatementDateTime", E::kDateTime}, {"abatementPeriod", E::kPeriod}}},
    {"Condition", "asserter", K::kReference, "", true, {{"asserter", E::kReference}},
        "Patient Practitioner PractitionerRole RelatedPerson"},
    {"Condition", "category", K::kToken, "", false, {{"category", E::kCodeableConcept}}},
    {"Condition", "clinical-status", K::kToken, "", false,
        {{"clinicalStatus", E::kCodeableConcept}}},
    {"Condition", "code", K::kToken, "", false, {{"code", E::kCodeableConcept}}},
    {"Condition", "encounter", K::kReference, "", false, {{"encounter", E::kReference}},
        "Encounter"},
    {"Condition", "identifier", K::kToken, "", false, {{"identifier", E::kIdentifier}}},
    {"Condition", "onset-date", K::kDate, "", false,
        {{"onsetDateTime", E::kDateTime}, {"onsetPeriod", E::kPeriod}}},
    {"Condition", "patient", K::kReference, "Patient", true, {{"subject", E::kReference}},
        "Patient"},
    {"Condition", "recorded-date", K::kDate, "", false, {{"recordedDate", E::kDateTime}}},
    {"Condition", "severity", K::kToken, "", false, {{"severity", E::kCodeableConcept}}},
    {"Condition", "subject", K::kReference, "", false, {{"subject", E::kReference}},
        "Group Patient"},
    {"Condition", "verification-status", K::kToken, "", false,
        {{"verificationStatus", E::kCodeableConcept}}},
    // Consent
    {"Consent", "category", K::kToken, "", false, {{"category", E::kCodeableConcept}}},
    {"Consent", "date", K::kDate, "", false, {{"dateTime", E::kDateTime}}},
    {"Consent", "identifier", K::kToken, "", false, {{"identifier", E::kIdentifier}}},
    {"Consent", "patient", K::kReference, "", true, {{"patient", E::kReference}},
        "Patient"},
    {"Consent", "status", K::kToken, "", false, {{"status", E::kCode}}},
    // Coverage
    {"Coverage", "beneficiary", K::kReference, "", true, {{"beneficiary", E::kReference}},
        "Patient"},
    {"Coverage", "identifier", K::kToken, "", false, {{"identifier", E::kIdentifier}}},
    {"Coverage", "patient", K::kReference, "", false, {{"beneficiary", E::kReference}},
        "Patient"},
    {"Coverage", "payor", K::kReference, "", true, {{"payor", E::kReference}},
        "Organization Patient RelatedPerson"},
    {"Coverage", "policy-holder", K::kReference, "", true, {{"policyHolder", E::kReference}},
        "Organization Patient RelatedPerson"},
    {"Coverage", "status", K::kToken, "", false, {{"status", E::kCode}}},
    {"Coverage", "subscriber", K::kReference, "", true, {{"subscriber", E::kReference}},
        "Patient RelatedPerson"},
    // CoverageEligibilityRequest
    {"CoverageEligibilityRequest", "identifier", K::kToken, "", false,
        {{"identifier", E::kIdentifier}}},
    {"CoverageEligibilityRequest", "patient", K::kReference, "", true,
        {{"patient", E::kReference}},
        "Patient"},
    {"CoverageEligibilityRequest", "status", K::kToken, "", false, {{"status", E::kCode}}},
    // CoverageEligibilityResponse
    {"CoverageEligibilityResponse", "identifier", K::kToken, "", false,
        {{"identifier", E::kIdentifier}}},
    {"CoverageEligibilityResponse", "patient", K::kReference, "", true,
        {{"patient", E::kReference}},
        "Patient"},
    {"CoverageEligibilityResponse", "status", K::kToken, "", false, {{"status", E::kCode}}},
    // DetectedIssue
    {"DetectedIssue", "code", K::kToken, "", false, {{"code", E::kCodeableConcept}}},
    {"DetectedIssue", "identifier", K::kToken, "", false, {{"identifier", E::kIdentifier}}},
    {"DetectedIssue", "patient", K::kReference, "", true, {{"patient", E::kReference}},
        "Patient"},
    {"DetectedIssue", "status", K::kToken, "", false, {{"status", E::kCode}}},
    // Device
    {"Device", "identifier", K::kToken, "", false, {{"identifier", E::kIdentifier}}},
    {"Device", "organization", K::kReference, "", false, {{"owner", E::kReference}},
        "Organization"},
    {"Device", "patient", K::kReference, "", false, {{"patient", E::kReference}},
        "Patient"},
    {"Device", "status", K::kToken, "", false, {{"status", E::kCode}}},
    {"Device", "type", K::kToken, "", false, {{"type", E::kCodeableConcept}}},
    // DeviceRequest
    {"DeviceRequest", "code", K::kToken, "", false, {{"codeCodeableConcept", E::kCodeableConcept}}},
    {"DeviceRequest", "encounter", K::kReference, "", false, {{"encounter", E::kReference}},
        "Encounter EpisodeOfCare"},
    {"DeviceRequest", "identifier", K::kToken, "", false, {{"identifier", E::kIdentifier}}},
    {"DeviceRequest", "patient", K::kReference, "Patient", false, {{"subject", E::kReference}},
        "Patient"},
    {"DeviceRequest", "performer", K::kReference, "", true, {{"performer", E::kReference}},
        "CareTeam Device HealthcareService Organization Patient Practitioner PractitionerRole RelatedPerson"},
    {"DeviceRequest", "status", K::kToken, "", false, {{"status", E::kCode}}},
    {"DeviceRequest", "subject", K::kReference, "", true, {{"subject", E::kReference}},
        "Device Group Location Patient"},
    // DeviceUseStatement
    {"DeviceUseStatement", "identifier", K::kToken, "", false, {{"identifier", E::kIdentifier}}},
    {"DeviceUseStatement", "patient", K::kReference, "", false, {{"subject", E::kReference}},
        "Patient"},
    {"DeviceUseStatement", "subject", K::kReference, "", true, {{"subject", E::kReference}},
        "Group Patient"},
    // DiagnosticReport
    {"DiagnosticReport", "category", K::kToken, "", false, {{"category", E::kCodeableConcept}}},
    {"DiagnosticReport", "code", K::kToken, "", false, {{"code", E::kCodeableConcept}}},
    {"DiagnosticReport", "date", K::kDate, "", false,
        {{"effectiveDateTime", E::kDateTime}, {"effectivePeriod", E::kPeriod}}},
    {"DiagnosticReport", "encounter", K::kReference, "", false, {{"encounter", E::kReference}},
        "Encounter EpisodeOfCare"},
    {"DiagnosticReport", "identifier", K::kToken, "", false, {{"identifier", E::kIdentifier}}},
    {"DiagnosticReport", "issued", K::kDate, "", false, {{"issued", E::kDateTime}}},
    {"DiagnosticReport", "patient", K::kReference, "Patient", false, {{"subject", E::kReference}},
        "Patient"},
    {"DiagnosticReport", "performer", K::kReference, "", false, {{"performer", E::kReference}},
        "CareTeam Organization Practitioner PractitionerRole"},
    {"DiagnosticReport", "results-interpreter", K::kReference, "", false,
        {{"resultsInterpreter", E::kReference}},
        "CareTeam Organization Practitioner PractitionerRole"},
    {"DiagnosticReport", "status", K::kToken, "", false, {{"status", E::kCode}}},
    {"DiagnosticReport", "subject", K::kReference, "", true, {{"subject", E::kReference}},
        "Device Group Location Patient"},
    // DocumentManifest
    {"DocumentManifest", "author", K::kReference, "", true, {{"author", E::kReference}},
        "Device Organization Patient Practitioner PractitionerRole RelatedPerson"},
    {"DocumentManifest", "identifier", K::kToken, "", false,
        {{"masterIdentifier", E::kIdentifier}, {"identifier", E::kIdentifier}}},
    {"DocumentManifest", "patient", K::kReference, "Patient", false, {{"subject", E::kReference}},
        "Patient"},
    {"DocumentManifest", "recipient", K::kReference, "", true, {{"recipient", E::kReference}},
        "Organization Patient Practitioner PractitionerRole RelatedPerson"},
    {"DocumentManifest", "status", K::kToken, "", false, {{"status", E::kCode}}},
    {"DocumentManifest", "subject", K::kReference, "", true, {{"subject", E::kReference}},
        "Device Group Patient Practitioner"},
    // DocumentReference
    {"DocumentReference", "authenticator", K::kReference, "", false,
        {{"authenticator", E::kReference}},
        "Organization Practitioner PractitionerRole"},
    {"DocumentReference", "author", K::kReference, "", true, {{"author", E::kReference}},
        "Device Organization Patient Practitioner PractitionerRole RelatedPerson"},
    {"DocumentReference", "category", K::kToken, "", false, {{"category", E::kCodeableConcept}}},
    {"DocumentReference", "contenttype", K::kToken, "", false,
        {{"content.attachment.contentType", E::kCode}}},
    {"DocumentReference", "custodian", K::kReference, "", false, {{"custodian", E::kReference}},
        "Organization"},
    {"DocumentReference", "date", K::kDate, "", false, {{"date", E::kDateTime}}},
    {"DocumentReference", "encounter", K::kReference, "", false,
        {{"context.encounter", E::kReference}},
        "Encounter EpisodeOfCare"},
    {"DocumentReference", "identifier", K::kToken, "", false,
        {{"masterIdentifier", E::kIdentifier}, {"identifier", E::kIdentifier}}},
    {"DocumentReference", "patient", K::kReference, "Patient", false, {{"subject", E::kReference}},
        "Patient"},
    {"DocumentReference", "period", K::kDate, "", false, {{"context.period", E::kPeriod}}},
    {"DocumentReference", "relatesto", K::kReference, "", false,
        {{"relatesTo.target", E::kReference}},
        "DocumentReference"},
    {"DocumentReference", "status", K::kToken, "", false, {{"status", E::kCode}}},
    {"DocumentReference", "subject", K::kReference, "", true, {{"subject", E::kReference}},
        "Device Group Patient Practitioner"},
    {"DocumentReference", "type", K::kToken, "", false, {{"type", E::kCodeableConcept}}},
    // Encounter
    {"Encounter", "class", K::kToken, "", false, {{"class", E::kCoding}}},
    {"Encounter", "date", K::kDate, "", false, {{"period", E::kPeriod}}},
    {"Encounter", "identifier", K::kToken, "", false, {{"identifier", E::kIdentifier}}},
    {"Encounter", "participant", K::kReference, "", false,
        {{"participant.individual", E::kReference}},
        "Practitioner PractitionerRole RelatedPerson"},
    {"Encounter", "patient", K::kReference, "Patient", true, {{"subject", E::kReference}},
        "Patient"},
    {"Encounter", "practitioner", K::kReference, "Practitioner", false,
        {{"participant.individual", E::kReference}},
        "Practitioner"},
    {"Encounter", "reason-code", K::kToken, "", false, {{"reasonCode", E::kCodeableConcept}}},
    {"Encounter", "service-provider", K::kReference, "", false,
        {{"serviceProvider", E::kReference}},
        "Organization"},
    {"Encounter", "status", K::kToken, "", false, {{"status", E::kCode}}},
    {"Encounter", "subject", K::kReference, "", false, {{"subject", E::kReference}},
        "Group Patient"},
    {"Encounter", "type", K::kToken, "", false, {{"type", E::kCodeableConcept}}},
    // EnrollmentRequest
    {"EnrollmentRequest", "identifier", K::kToken, "", false, {{"identifier", E::kIdentifier}}},
    {"EnrollmentRequest", "patient", K::kReference, "", false, {{"candidate", E::kReference}},
        "Patient"},
    {"EnrollmentRequest", "status", K::kToken, "", false, {{"status", E::kCode}}},
    {"EnrollmentRequest", "subject", K::kReference, "", true, {{"candidate", E::kReference}},
        "Patient"},
    // EpisodeOfCare
    {"EpisodeOfCare", "date", K::kDate, "", false, {{"period", E::kPeriod}}},
    {"EpisodeOfCare", "identifier", K::kToken, "", false, {{"identifier", E::kIdentifier}}},
    {"EpisodeOfCare", "patient", K::kReference, "", true, {{"patient", E::kReference}},
        "Patient"},
    {"EpisodeOfCare", "status", K::kToken, "", false, {{"status", E::kCode}}},
    // ExplanationOfBenefit
    {"ExplanationOfBenefit", "claim", K::kReference, "", false, {{"claim", E::kReference}},
        "Claim"},
    {"ExplanationOfBenefit", "coverage", K::kReference, "", false,
        {{"insurance.coverage", E::kReference}},
        "Coverage"},
    {"ExplanationOfBenefit", "created", K::kDate, "", false, {{"created", E::kDateTime}}},
    {"ExplanationOfBenefit", "encounter", K::kReference, "", false,
        {{"item.encounter", E::kReference}},
        "Encounter"},
    {"ExplanationOfBenefit", "identifier", K::kToken, "", false, {{"identifier", E::kIdentifier}}},
    {"ExplanationOfBenefit", "patient", K::kReference, "", true, {{"patient", E::kReference}},
        "Patient"},
    {"ExplanationOfBenefit", "payee", K::kReference, "", true, {{"payee.party", E::kReference}},
        "Organization Patient Practitioner PractitionerRole RelatedPerson"},
    {"ExplanationOfBenefit", "provider", K::kReference, "", false, {{"provider", E::kReference}},
        "Organization Practitioner PractitionerRole"},
    {"ExplanationOfBenefit", "status", K::kToken, "", false, {{"status", E::kCode}}},
    // FamilyMemberHistory
    {"FamilyMemberHistory", "code", K::kToken, "", false,
        {{"condition.code", E::kCodeableConcept}}},
    {"FamilyMemberHistory", "date", K::kDate, "", false, {{"date", E::kDateTime}}},
    {"FamilyMemberHistory", "identifier", K::kToken, "", false, {{"identifier", E::kIdentifier}}},
    {"FamilyMemberHistory", "patient", K::kReference, "", true, {{"patient", E::kReference}},
        "Patient"},
    {"FamilyMemberHistory", "status", K::kToken, "", false, {{"status", E::kCode}}},
    // Flag
    {"Flag", "date", K::kDate, "", false, {{"period", E::kPeriod}}},
    {"Flag", "encounter", K::kReference, "", false, {{"encounter", E::kReference}},
        "Encounter EpisodeOfCare"},
    {"Flag", "identifier", K::kToken, "", false, {{"identifier", E::kIdentifier}}},
    {"Flag", "patient", K::kReference, "Patient", true, {{"subject", E::kReference}},
        "Patient"},
    {"Flag", "subject", K::kReference, "", false, {{"subject", E::kReference}},
        "Group Location Medication Organization Patient PlanDefinition Practitioner Procedure"},
    // Goal
    {"Goal", "category", K::kToken, "", false, {{"category", E::kCodeableConcept}}},
    {"Goal", "identifier", K::kToken, "", false, {{"identifier", E::kIdentifier}}},
    {"Goal", "patient", K::kReference, "Patient", true, {{"subject", E::kReference}},
        "Patient"},
    {"Goal", "subject", K::kReference, "", false, {{"subject", E::kReference}},
        "Group Organization Patient"},
    // Group
    {"Group", "code", K::kToken, "", false, {{"code", E::kCodeableConcept}}},
    {"Group", "identifier", K::kToken, "", false, {{"identifier", E::kIdentifier}}},
    {"Group", "member", K::kReference, "", true, {{"member.entity", E::kReference}},
        "Device Group Medication Patient Practitioner PractitionerRole Substance"},
    // ImagingStudy
    {"ImagingStudy", "encounter", K::kReference, "", false, {{"encounter", E::kReference}},
        "Encounter"},
    {"ImagingStudy", "identifier", K::kToken, "", false, {{"identifier", E::kIdentifier}}},
    {"ImagingStudy", "modality", K::kToken, "", false, {{"series.modality", E::kCoding}}},
    {"ImagingStudy", "patient", K::kReference, "Patient", true, {{"subject", E::kReference}},
        "Patient"},
    {"ImagingStudy", "performer", K::kReference, "", false,
        {{"series.performer.actor", E::kReference}},
        "CareTeam Device Organization Patient Practitioner PractitionerRole RelatedPerson"},
    {"ImagingStudy", "started", K::kDate, "", false, {{"started", E::kDateTime}}},
    {"ImagingStudy", "status", K::kToken, "", false, {{"status", E::kCode}}},
    {"ImagingStudy", "subject", K::kReference, "", false, {{"subject", E::kReference}},
        "Device Group Patient"},
    // Immunization
    {"Immunization", "date", K::kDate, "", false, {{"occurrenceDateTime", E::kDateTime}}},
    {"Immunization", "identifier", K::kToken, "", false, {{"identifier", E::kIdentifier}}},
    {"Immunization", "location", K::kReference, "", false, {{"location", E::kReference}},
        "Location"},
    {"Immunization", "patient", K::kReference, "", true, {{"patient", E::kReference}},
        "Patient"},
    {"Immunization", "performer", K::kReference, "", false, {{"performer.actor", E::kReference}},
        "Organization Practitioner PractitionerRole"},
    {"Immunization", "status", K::kToken, "", false, {{"status", E::kCode}}},
    {"Immunization", "vaccine-code", K::kToken, "", false, {{"vaccineCode", E::kCodeableConcept}}},
    // ImmunizationEvaluation
    {"ImmunizationEvaluation", "date", K::kDate, "", false, {{"date", E::kDateTime}}},
    {"ImmunizationEvaluation", "identifier", K::kToken, "", false,
        {{"identifier", E::kIdentifier}}},
    {"ImmunizationEvaluation", "patient", K::kReference, "", true, {{"patient", E::kReference}},
        "Patient"},
    {"ImmunizationEvaluation", "status", K::kToken, "", false, {{"status", E::kCode}}},
    // ImmunizationRecommendation
    {"ImmunizationRecommendation", "date", K::kDate, "", false, {{"date", E::kDateTime}}},
    {"ImmunizationRecommendation", "identifier", K::kToken, "", false,
        {{"identifier", E::kIdentifier}}},
    {"ImmunizationRecommendation", "patient", K::kReference, "", true,
        {{"patient", E::kReference}},
        "Patient"},
    {"ImmunizationRecommendation", "status", K::kToken, "", false,
        {{"recommendation.forecastStatus", E::kCodeableConcept}}},
    // Invoice
    {"Invoice", "date", K::kDate, "", false, {{"date", E::kDateTime}}},
    {"Invoice", "identifier", K::kToken, "", false, {{"identifier", E::kIdentifier}}},
    {"Invoice", "patient", K::kReference, "Patient", true, {{"subject", E::kReference}},
        "Patient"},
    {"Invoice", "recipient", K::kReference, "", true, {{"recipient", E::kReference}},
        "Organization Patient RelatedPerson"},
    {"Invoice", "status", K::kToken, "", false, {{"status", E::kCode}}},
    {"Invoice", "subject", K::kReference, "", true, {{"subject", E::kReference}},
        "Group Patient"},
    // List
    {"List", "code", K::kToken, "", false, {{"code", E::kCodeableConcept}}},
    {"List", "date", K::kDate, "", false, {{"date", E::kDateTime}}},
    {"List", "encounter", K::kReference, "", false, {{"encounter", E::kReference}},
        "Encounter EpisodeOfCare"},
    {"List", "identifier", K::kToken, "", false, {{"identifier", E::kIdentifier}}},
    {"List", "patient", K::kReference, "Patient", false, {{"subject", E::kReference}},
        "Patient"},
    {"List", "source", K::kReference, "", true, {{"source", E::kReference}},
        "Device Patient Practitioner PractitionerRole"},
    {"List", "status", K::kToken, "", false, {{"status", E::kCode}}},
    {"List", "subject", K::kReference, "", true, {{"subject", E::kReference}},
        "Device Group Location Patient"},
    // MeasureReport
    {"MeasureReport", "date", K::kDate, "", false, {{"date", E::kDateTime}}},
    {"MeasureReport", "identifier", K::kToken, "", false, {{"identifier", E::kIdentifier}}},
    {"MeasureReport", "patient", K::kReference, "Patient", true, {{"subject", E::kReference}},
        "Patient"},
    {"MeasureReport", "status", K::kToken, "", false, {{"status", E::kCode}}},
    {"MeasureReport", "subject", K::kReference, "", false, {{"subject", E::kReference}},
        "CareTeam Device Group HealthcareService Location Organization Patient Practitioner PractitionerRole RelatedPerson"},
    // Media
    {"Media", "encounter", K::kReference, "", false, {{"encounter", E::kReference}},
        "Encounter"},
    {"Media", "identifier", K::kToken, "", false, {{"identifier", E::kIdentifier}}},
    {"Media", "patient", K::kReference, "Patient", false, {{"subject", E::kReference}},
        "Patient"},
    {"Media", "status", K::kToken, "", false, {{"status", E::kCode}}},
    {"Media", "subject", K::kReference, "", true, {{"subject", E::kReference}},
        "Device Group Location Patient Practitioner PractitionerRole Specimen"},
    // MedicationAdministration
    {"MedicationAdministration", "code", K::kToken, "", false,
        {{"medicationCodeableConcept", E::kCodeableConcept}}},
    {"MedicationAdministration", "identifier", K::kToken, "", false,
        {{"identifier", E::kIdentifier}}},
    {"MedicationAdministration", "patient", K::kReference, "Patient", true,
        {{"subject", E::kReference}},
        "Patient"},
    {"MedicationAdministration", "performer", K::kReference, "", true,
        {{"performer.actor", E::kReference}},
        "Device Patient Practitioner PractitionerRole RelatedPerson"},
    {"MedicationAdministration", "status", K::kToken, "", false, {{"status", E::kCode}}},
    {"MedicationAdministration", "subject", K::kReference, "", true, {{"subject", E::kReference}},
        "Group Patient"},
    // MedicationDispense
    {"MedicationDispense", "code", K::kToken, "", false,
        {{"medicationCodeableConcept", E::kCodeableConcept}}},
    {"MedicationDispense", "identifier", K::kToken, "", false, {{"identifier", E::kIdentifier}}},
    {"MedicationDispense", "patient", K::kReference, "Patient", true, {{"subject", E::kReference}},
        "Patient"},
    {"MedicationDispense", "receiver", K::kReference, "", true, {{"receiver", E::kReference}},
        "Patient Practitioner"},
    {"MedicationDispense", "status", K::kToken, "", false, {{"status", E::kCode}}},
    {"MedicationDispense", "subject", K::kReference, "", true, {{"subject", E::kReference}},
        "Group Patient"},
    // MedicationRequest
    {"MedicationRequest", "authored", K::kDate, "", false, {{"authoredOn", E::kDateTime}}},
    {"MedicationRequest", "authoredon", K::kDate, "", false, {{"authoredOn", E::kDateTime}}},
    {"MedicationRequest", "category", K::kToken, "", false, {{"category", E::kCodeableConcept}}},
    {"MedicationRequest", "code", K::kToken, "", false,
        {{"medicationCodeableConcept", E::kCodeableConcept}}},
    {"MedicationRequest", "date", K::kDate, "", false,
        {{"dosageInstruction.timing.event", E::kDateTime}}},
    {"MedicationRequest", "encounter", K::kReference, "", false, {{"encounter", E::kReference}},
        "Encounter"},
    {"MedicationRequest", "identifier", K::kToken, "", false, {{"identifier", E::kIdentifier}}},
    {"MedicationRequest", "intended-performer", K::kReference, "", false,
        {{"performer", E::kReference}},
        "CareTeam Device Organization Patient Practitioner PractitionerRole RelatedPerson"},
    {"MedicationRequest", "intent", K::kToken, "", false, {{"intent", E::kCode}}},
    {"MedicationRequest", "medication", K::kReference, "", false,
        {{"medicationReference", E::kReference}},
        "Medication"},
    {"MedicationRequest", "patient", K::kReference, "Patient", false, {{"subject", E::kReference}},
        "Patient"},
    {"MedicationRequest", "requester", K::kReference, "", false, {{"requester", E::kReference}},
        "Device Organization Patient Practitioner PractitionerRole RelatedPerson"},
    {"MedicationRequest", "status", K::kToken, "", false, {{"status", E::kCode}}},
    {"MedicationRequest", "subject", K::kReference, "", true, {{"subject", E::kReference}},
        "Group Patient"},
    // MedicationStatement
    {"MedicationStatement", "category", K::kToken, "", false, {{"category", E::kCodeableConcept}}},
    {"MedicationStatement", "code", K::kToken, "", false,
        {{"medicationCodeableConcept", E::kCodeableConcept}}},
    {"MedicationStatement", "identifier", K::kToken, "", false, {{"identifier", E::kIdentifier}}},
    {"MedicationStatement", "patient", K::kReference, "Patient", false,
        {{"subject", E::kReference}},
        "Patient"},
    {"MedicationStatement", "status", K::kToken, "", false, {{"status", E::kCode}}},
    {"MedicationStatement", "subject", K::kReference, "", true, {{"subject", E::kReference}},
        "Group Patient"},
    // MolecularSequence
    {"MolecularSequence", "identifier", K::kToken, "", false, {{"identifier", E::kIdentifier}}},
    {"MolecularSequence", "patient", K::kReference, "", true, {{"patient", E::kReference}},
        "Patient"},
    // NutritionOrder
    {"NutritionOrder", "encounter", K::kReference, "", false, {{"encounter", E::kReference}},
        "Encounter EpisodeOfCare"},
    {"NutritionOrder", "identifier", K::kToken, "", false, {{"identifier", E::kIdentifier}}},
    {"NutritionOrder", "patient", K::kReference, "", true, {{"patient", E::kReference}},
        "Patient"},
    {"NutritionOrder", "status", K::kToken, "", false, {{"status", E::kCode}}},
    // Observation
    {"Observation", "category", K::kToken, "", false, {{"category", E::kCodeableConcept}}},
    {"Observation", "code", K::kToken, "", false, {{"code", E::kCodeableConcept}}},
    {"Observation", "component-code", K::kToken, "", false,
        {{"component.code", E::kCodeableConcept}}},
    {"Observation", "date", K::kDate, "", false,
        {{"effectiveDateTime", E::kDateTime},
         {"effectivePeriod", E::kPeriod},
         {"effectiveInstant", E::kDateTime}}},
    {"Observation", "encounter", K::kReference, "", false, {{"encounter", E::kReference}},
        "Encounter EpisodeOfCare"},
    {"Observation", "identifier", K::kToken, "", false, {{"identifier", E::kIdentifier}}},
    {"Observation", "patient", K::kReference, "Patient", false, {{"subject", E::kReference}},
        "Patient"},
    {"Observation", "performer", K::kReference, "", true, {{"performer", E::kReference}},
        "CareTeam Organization Patient Practitioner PractitionerRole RelatedPerson"},
    {"Observation", "status", K::kToken, "", false, {{"status", E::kCode}}},
    {"Observation", "subject", K::kReference, "", true, {{"subject", E::kReference}},
        "Device Group Location Patient"},
    {"Observation", "value-concept", K::kToken, "", false,
        {{"valueCodeableConcept", E::kCodeableConcept}}},
    // Organization
    {"Organization", "active", K::kToken, "", false, {{"active", E::kBoolean}}},
    {"Organization", "identifier", K::kToken, "", false, {{"identifier", E::kIdentifier}}},
    {"Organization", "partof", K::kReference, "", false, {{"partOf", E::kReference}},
        "Organization"},
    {"Organization", "type", K::kToken, "", false, {{"type", E::kCodeableConcept}}},
    // Patient
    {"Patient", "active", K::kToken, "", false, {{"active", E::kBoolean}}},
    {"Patient", "birthdate", K::kDate, "", false, {{"birthDate", E::kDateTime}}},
    {"Patient", "death-date", K::kDate, "", false, {{"deceasedDateTime", E::kDateTime}}},
    {"Patient", "gender", K::kToken, "", false, {{"gender", E::kCode}}},
    {"Patient", "general-practitioner", K::kReference, "", false,
        {{"generalPractitioner", E::kReference}},
        "Organization Practitioner PractitionerRole"},
    {"Patient", "identifier", K::kToken, "", false, {{"identifier", E::kIdentifier}}},
    {"Patient", "link", K::kReference, "", true, {{"link.other", E::kReference}},
        "Patient RelatedPerson"},
    {"Patient", "organization", K::kReference, "", false,
        {{"managingOrganization", E::kReference}},
        "Organization"},
    // Person
    {"Person", "identifier", K::kToken, "", false, {{"identifier", E::kIdentifier}}},
    {"Person", "patient", K::kReference, "Patient", true, {{"link.target", E::kReference}},
        "Patient"},
    // Practitioner
    {"Practitioner", "active", K::kToken, "", false, {{"active", E::kBoolean}}},
    {"Practitioner", "gender", K::kToken, "", false, {{"gender", E::kCode}}},
    {"Practitioner", "identifier", K::kToken, "", false, {{"identifier", E::kIdentifier}}},
    // Procedure
    {"Procedure", "category", K::kToken, "", false, {{"category", E::kCodeableConcept}}},
    {"Procedure", "code", K::kToken, "", false, {{"code", E::kCodeableConcept}}},
    {"Procedure", "date", K::kDate, "", false,
        {{"performedDateTime", E::kDateTime}, {"performedPeriod", E::kPeriod}}},
    {"Procedure", "encounter", K::kReference, "", false, {{"encounter", E::kReference}},
        "Encounter EpisodeOfCare"},
    {"Procedure", "identifier", K::kToken, "", false, {{"identifier", E::kIdentifier}}},
    {"Procedure", "patient", K::kReference, "Patient", true, {{"subject", E::kReference}},
        "Patient"},
    {"Procedure", "performer", K::kReference, "", true, {{"performer.actor", E::kReference}},
        "Device Organization Patient Practitioner PractitionerRole RelatedPerson"},
    {"Procedure", "reason-code", K::kToken, "", false, {{"reasonCode", E::kCodeableConcept}}},
    {"Procedure", "status", K::kToken, "", false, {{"status", E::kCode}}},
    {"Procedure", "subject", K::kReference, "", false, {{"subject", E::kReference}},
        "Group Patient"},
    // Provenance
    {"Provenance", "patient", K::kReference, "Patient", true, {{"target", E::kReference}},
        "Patient"},
    // recorded and target (any type): includeAssociatedData finds the Provenance of the
    // exported resources through the refs index ("target=Type/id").
    {"Provenance", "recorded", K::kDate, "", false, {{"recorded", E::kDateTime}}},
    {"Provenance", "target", K::kReference, "", false, {{"target", E::kReference}}},
    // QuestionnaireResponse
    {"QuestionnaireResponse", "author", K::kReference, "", true, {{"author", E::kReference}},
        "Device Organization Patient Practitioner PractitionerRole RelatedPerson"},
    {"QuestionnaireResponse", "encounter", K::kReference, "", false,
        {{"encounter", E::kReference}},
        "Encounter"},
    {"QuestionnaireResponse", "identifier", K::kToken, "", false, {{"identifier", E::kIdentifier}}},
    {"QuestionnaireResponse", "patient", K::kReference, "Patient", false,
        {{"subject", E::kReference}},
        "Patient"},
    {"QuestionnaireResponse", "status", K::kToken, "", false, {{"status", E::kCode}}},
    {"QuestionnaireResponse", "subject", K::kReference, "", true, {{"subject", E::kReference}}},
    // RelatedPerson
    {"RelatedPerson", "identifier", K::kToken, "", false, {{"identifier", E::kIdentifier}}},
    {"RelatedPerson", "patient", K::kReference, "", true, {{"patient", E::kReference}},
        "Patient"},
    // RequestGroup
    {"RequestGroup", "code", K::kToken, "", false, {{"code", E::kCodeableConcept}}},
    {"RequestGroup", "encounter", K::kReference, "", false, {{"encounter", E::kReference}},
        "Encounter"},
    {"RequestGroup", "identifier", K::kToken, "", false, {{"identifier", E::kIdentifier}}},
    {"RequestGroup", "participant", K::kReference, "", true,
        {{"action.participant", E::kReference}},
        "Device Patient Practitioner PractitionerRole RelatedPerson"},
    {"RequestGroup", "patient", K::kReference, "Patient", false, {{"subject", E::kReference}},
        "Patient"},
    {"RequestGroup", "status", K::kToken, "", false, {{"status", E::kCode}}},
    {"RequestGroup", "subject", K::kReference, "", true, {{"subject", E::kReference}},
        "Group Patient"},
    // ResearchSubject
    {"ResearchSubject", "date", K::kDate, "", false, {{"period", E::kPeriod}}},
    {"ResearchSubject", "identifier", K::kToken, "", false, {{"identifier", E::kIdentifier}}},
    {"ResearchSubject", "individual", K::kReference, "", true, {{"individual", E::kReference}},
        "Patient"},
    {"ResearchSubject", "patient", K::kReference, "", false, {{"individual", E::kReference}},
        "Patient"},
    {"ResearchSubject", "status", K::kToken, "", false, {{"status", E::kCode}}},
    // RiskAssessment
    {"RiskAssessment", "date", K::kDate, "", false, {{"occurrenceDateTime", E::kDateTime}}},
    {"RiskAssessment", "encounter", K::kReference, "", false, {{"encounter", E::kReference}},
        "Encounter EpisodeOfCare"},
    {"RiskAssessment", "identifier", K::kToken, "", false, {{"identifier", E::kIdentifier}}},
    {"RiskAssessment", "patient", K::kReference, "Patient", false, {{"subject", E::kReference}},
        "Patient"},
    {"RiskAssessment", "subject", K::kReference, "", true, {{"subject", E::kReference}},
        "Group Patient"},
    // Schedule
    {"Schedule", "actor", K::kReference, "", true, {{"actor", E::kReference}},
        "Device HealthcareService Location Patient Practitioner PractitionerRole RelatedPerson"},
    {"Schedule", "date", K::kDate, "", false, {{"planningHorizon", E::kPeriod}}},
    {"Schedule", "identifier", K::kToken, "", false, {{"identifier", E::kIdentifier}}},
    // ServiceRequest
    {"ServiceRequest", "category", K::kToken, "", false, {{"category", E::kCodeableConcept}}},
    {"ServiceRequest", "code", K::kToken, "", false, {{"code", E::kCodeableConcept}}},
    {"ServiceRequest", "encounter", K::kReference, "", false, {{"encounter", E::kReference}},
        "Encounter EpisodeOfCare"},
    {"ServiceRequest", "identifier", K::kToken, "", false, {{"identifier", E::kIdentifier}}},
    {"ServiceRequest", "patient", K::kReference, "Patient", false, {{"subject", E::kReference}},
        "Patient"},
    {"ServiceRequest", "performer", K::kReference, "", true, {{"performer", E::kReference}},
        "CareTeam Device HealthcareService Organization Patient Practitioner PractitionerRole RelatedPerson"},
    {"ServiceRequest", "status", K::kToken, "", false, {{"status", E::kCode}}},
    {"ServiceRequest", "subject", K::kReference, "", true, {{"subject", E::kReference}},
        "Device Group Location Patient"},
    // Specimen
    {"Specimen", "identifier", K::kToken, "", false, {{"identifier", E::kIdentifier}}},
    {"Specimen", "patient", K::kReference, "Patient", false, {{"subject", E::kReference}},
        "Patient"},
    {"Specimen", "status", K::kToken, "", false, {{"status", E::kCode}}},
    {"Specimen", "subject", K::kReference, "", true, {{"subject", E::kReference}},
        "Device Group Location Patient Substance"},
    // SupplyDelivery
    {"SupplyDelivery", "identifier", K::kToken, "", false, {{"identifier", E::kIdentifier}}},
    {"SupplyDelivery", "patient", K::kReference, "", true, {{"patient", E::kReference}},
        "Patient"},
    {"SupplyDelivery", "status", K::kToken, "", false, {{"status", E::kCode}}},
    // SupplyRequest
    {"SupplyRequest", "category", K::kToken, "", false, {{"category", E::kCodeableConcept}}},
    {"SupplyRequest", "date", K::kDate, "", false, {{"authoredOn", E::kDateTime}}},
    {"SupplyRequest", "identifier", K::kToken, "", false, {{"identifier", E::kIdentifier}}},
    {"SupplyRequest", "status", K::kToken, "", false, {{"status", E::kCode}}},
    {"SupplyRequest", "subject", K::kReference, "", true, {{"deliverTo", E::kReference}},
        "Location Organization Patient"},
    // VisionPrescription
    {"VisionPrescription", "encounter", K::kReference, "", false, {{"encounter", E::kReference}},
        "Encounter EpisodeOfCare"},
    {"VisionPrescription", "identifier", K::kToken, "", false, {{"identifier", E::kIdentifier}}},
    {"VisionPrescription", "patient", K::kReference, "", true, {{"patient", E::kReference}},
        "Patient"},
    {"VisionPrescription", "status", K::kToken, "", false, {{"status", E::kCode}}},
};
// clang-format on

// The Resource-level parameters of every type, sorted by code.
// clang-format off
constexpr SearchParamDef kCommonParams[] = {
    {"Resource", "_id", K::kId, "", false, {}},
    {"Resource", "_lastUpdated", K::kLastUpdated, "", false, {}},
    {"Resource", "_profile", K::kUri, "", false, {{"meta.profile", E::kUri}}},
    {"Resource", "_security", K::kToken, "", false, {{"meta.security", E::kCoding}}},
    {"Resource", "_tag", K::kToken, "", false, {{"meta.tag", E::kCoding}}},
};
// clang-format on

constexpr bool Less(const SearchParamDef& a, const SearchParamDef& b) {
  return a.type != b.type ? a.type < b.type : a.code < b.code;
}

template <size_t N>
constexpr bool IsStrictlySorted(const SearchParamDef (&table)[N]) {
  for (size_t i = 1; i < N; ++i) {
    if (!Less(table[i - 1], table[i])) return false;
  }
  return true;
}

static_assert(IsStrictlySorted(kTypeParams), "kTypeParams must be sorted by (type, code)");
static_assert(IsStrictlySorted(kCommonParams), "kCommonParams must be sorted by code");

struct TypeLess {
  bool operator()(const SearchParamDef& def, std::string_view type) const {
    return def.type < type;
  }
  bool operator()(std::string_view type, const SearchParamDef& def) const {
    return type < def.type;
  }
};

struct CodeLess {
  bool operator()(const SearchParamDef& def, std::string_view code) const {
    return def.code < code;
  }
};

const SearchParamDef* FindCode(SearchParamRange range, std::string_view code) {
  const SearchParamDef* it = std::lower_bound(range.begin(), range.end(), code, CodeLess());
  return it != range.end() && it->code == code ? it : nullptr;
}

}  // namespace

SearchParamRange SearchParamsForType(std::string_view type) {
  auto range = std::equal_range(std::begin(kTypeParams), std::end(kTypeParams), type, TypeLess());
  return SearchParamRange(range.first, range.second);
}

SearchParamRange CommonSearchParams() {
  return SearchParamRange(std::begin(kCommonParams), std::end(kCommonParams));
}

SearchParamRange AllTypeSearchParams() {
  return SearchParamRange(std::begin(kTypeParams), std::end(kTypeParams));
}

std::vector<std::string_view> BareIdTargetTypes(const SearchParamDef& def) {
  std::vector<std::string_view> types;
  if (def.kind != SearchParamKind::kReference) return types;
  if (!def.target.empty()) {
    types.push_back(def.target);
    return types;
  }
  if (def.targets.empty()) {
    const auto& all = R4ResourceTypes();
    return std::vector<std::string_view>(all.begin(), all.end());
  }
  std::string_view rest = def.targets;
  while (!rest.empty()) {
    const size_t space = rest.find(' ');
    types.push_back(rest.substr(0, space));
    rest = space == std::string_view::npos ? std::string_view() : rest.substr(space + 1);
  }
  return types;
}

const SearchParamDef* FindSearchParam(std::string_view type, std::string_view param) {
  if (const SearchParamDef* def = FindCode(SearchParamsForType(type), param)) return def;
  if (!IsR4ResourceType(type)) return nullptr;
  return FindCode(CommonSearchParams(), param);
}

}  // namespace fhirbulk
