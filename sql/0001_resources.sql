-- FHIR resources as the export engine reads them.
--
-- One row per resource (type, id): its current version and the exact JSON bytes we serve,
-- stored as text (COPY hands text over ~4x faster than it renders jsonb). Deletions leave a
-- tombstone row (deleted = true, body NULL) so that `_since` exports can list them.
--
-- The table is LIST-partitioned by type so that exporting one type reads only that type's
-- pages (a sequential scan of its partition, or TID ranges of it for parallel work units),
-- never the whole table. Types without a partition of their own land in resource_other.
--
-- What the export needs to select without parsing JSON is precomputed at load time:
--   patients  ids of the patients whose compartment holds this resource (R4 Patient
--             compartment definition); a Patient is in its own compartment.
--   tokens    token search values, each as 'param=system|code', 'param=code' (any system) and
--             'param=system|' (any code of the system); codes without system as 'param=|code'.
--   refs      reference search values as 'param=Type/id'.
--   date_params/date_lo/date_hi  parallel arrays: each date search value as an inclusive
--             [lo, hi] instant range (a dateTime of day precision covers the whole day).
--   outrefs   every relative reference 'Type/id' to a type outside the Patient compartment
--             (Practitioner, Organization, Location, Medication ...): the supporting resources
--             a Patient or Group export adds.
-- Version and lastUpdated: `version` is meta.versionId; `last_updated` is meta.lastUpdated and
-- is taken from the clock after the writing transaction holds its xid (see the loader), so an
-- export can pick a transactionTime and wait for older writers to finish.

CREATE TABLE resource (
    res_type      text        NOT NULL,
    res_id        text        NOT NULL,
    version       bigint      NOT NULL,
    last_updated  timestamptz NOT NULL,
    deleted       boolean     NOT NULL DEFAULT false,
    content_hash  bytea,
    body          text COMPRESSION lz4,
    patients      text[],
    tokens        text[],
    refs          text[],
    date_params   text[],
    date_lo       timestamptz[],
    date_hi       timestamptz[],
    outrefs       text[],
    PRIMARY KEY (res_type, res_id),
    CHECK (deleted OR body IS NOT NULL)
) PARTITION BY LIST (res_type);

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY[
        'Account', 'AdverseEvent', 'AllergyIntolerance', 'Appointment', 'AppointmentResponse',
        'AuditEvent', 'Basic', 'Binary', 'BodyStructure', 'CarePlan', 'CareTeam', 'ChargeItem',
        'Claim', 'ClaimResponse', 'ClinicalImpression', 'Communication', 'CommunicationRequest',
        'Composition', 'Condition', 'Consent', 'Coverage', 'CoverageEligibilityRequest',
        'CoverageEligibilityResponse', 'DetectedIssue', 'Device', 'DeviceRequest',
        'DeviceUseStatement', 'DiagnosticReport', 'DocumentManifest', 'DocumentReference',
        'Encounter', 'EnrollmentRequest', 'EpisodeOfCare', 'ExplanationOfBenefit',
        'FamilyMemberHistory', 'Flag', 'Goal', 'Group', 'ImagingStudy', 'Immunization',
        'ImmunizationEvaluation', 'ImmunizationRecommendation', 'Invoice', 'List', 'Location',
        'MeasureReport', 'Media', 'Medication', 'MedicationAdministration', 'MedicationDispense',
        'MedicationRequest', 'MedicationStatement', 'MolecularSequence', 'NutritionOrder',
        'Observation', 'Organization', 'Patient', 'Person', 'Practitioner', 'PractitionerRole',
        'Procedure', 'Provenance', 'QuestionnaireResponse', 'RelatedPerson', 'RequestGroup',
        'ResearchSubject', 'RiskAssessment', 'Schedule', 'ServiceRequest', 'Specimen',
        'SupplyDelivery', 'SupplyRequest', 'Task', 'VisionPrescription']
    LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF resource FOR VALUES IN (%L)',
                       'resource_' || lower(t), t);
    END LOOP;
END
$$;
CREATE TABLE resource_other PARTITION OF resource DEFAULT;

-- _since / _until on one type without reading the rest of it.
CREATE INDEX resource_type_updated ON resource (res_type, last_updated);
-- Group and patient-list exports: the resources of a set of patients.
CREATE INDEX resource_patients ON resource USING gin (patients);
-- Selective _typeFilter token and reference queries.
CREATE INDEX resource_tokens ON resource USING gin (tokens);
CREATE INDEX resource_refs ON resource USING gin (refs);

-- Active membership of Group resources, derived from Group.member when a Group is loaded
-- (replaced whenever the Group changes; removed when it is deleted).
CREATE TABLE group_member (
    group_id      text        NOT NULL,
    member_index  integer     NOT NULL,
    patient_id    text        NOT NULL,
    inactive      boolean     NOT NULL DEFAULT false,
    period_start  timestamptz,
    period_end    timestamptz,
    PRIMARY KEY (group_id, member_index)
);
CREATE INDEX group_member_patient ON group_member (patient_id);
