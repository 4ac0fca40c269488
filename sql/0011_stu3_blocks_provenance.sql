-- IG 3.0.0 (STU3): organizeOutputBy=Patient and includeAssociatedData (issue 13).
--
-- export_unit.blocks       NULL for a unit that writes one type's files; 'patients' for a unit
--                          writing the patient blocks of the patients whose block key lies in
--                          [block_lo, block_hi) (NULL = open); 'unattached' for the unit
--                          writing, at system level, the resources in no patient's compartment
--                          (worker/patient_blocks.h).
-- export_unit.block_types  the types a blocks unit reads.
-- export_unit.assoc        'latest' or 'relevant': the unit writes the Provenance resources
--                          includeAssociatedData adds (worker/provenance_sql.h).
-- export_file.continues_in a block file whose last block goes on in another file: that file's
--                          name (the manifest's continuesInFile).
ALTER TABLE export_unit ADD COLUMN blocks text CHECK (blocks IN ('patients', 'unattached'));
ALTER TABLE export_unit ADD COLUMN block_lo text;
ALTER TABLE export_unit ADD COLUMN block_hi text;
ALTER TABLE export_unit ADD COLUMN block_types text[];
ALTER TABLE export_unit ADD COLUMN assoc text CHECK (assoc IN ('latest', 'relevant'));
ALTER TABLE export_file ADD COLUMN continues_in text;

-- A resource's block is the first (least: the loader sorts `patients`) patient of its
-- compartments. A patients unit reads its range in block order (patient, the Patient first,
-- then by type) through this index, with no sort; the unattached unit finds the rows of no
-- compartment (patients[1] IS NULL) through it too.
CREATE INDEX resource_block ON resource ((patients[1]), (res_type <> 'Patient'), res_type);

-- Provenance.target is indexed as the `target` search parameter (refs 'target=Type/id',
-- fhir/search_params.cc) by loads from now on; rows loaded before get it here.
UPDATE resource SET refs = (
    SELECT array_agg(DISTINCT v ORDER BY v) FROM (
        SELECT unnest(coalesce(refs, '{}')) AS v
        UNION
        SELECT 'target=' || regexp_replace(t->>'reference', '/_history/.*$', '')
        FROM jsonb_array_elements(CASE WHEN jsonb_typeof(body::jsonb->'target') = 'array'
                                       THEN body::jsonb->'target' ELSE '[]'::jsonb END) AS t
        WHERE t->>'reference' ~ '^[A-Z][A-Za-z]+/[A-Za-z0-9.-]{1,64}(/_history/.*)?$') s)
WHERE res_type = 'Provenance' AND NOT deleted;
