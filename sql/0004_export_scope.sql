-- What a Patient or Group export covers, fixed when the job is planned (core/export/planner.h),
-- so that every unit of a job reads the same set whatever happens to the Group meanwhile, and
-- no unit has to work it out again.
--
-- export_job.patient_scope  the patients whose compartments the export covers: a Group
--                           export's active members at transactionTime (intersected with the
--                           `patient` parameter), or a Patient export's `patient` list. NULL
--                           when every patient is covered (system and plain Patient exports).
-- export_unit.res_ids       a supporting unit's resource ids (Practitioner, Organization ... of
--                           a Patient or Group export): those referenced (`outrefs`) by the
--                           resources the job's compartment units export, collected by one
--                           query at planning instead of one scan of the compartment per
--                           supporting type. NULL for every other unit.

ALTER TABLE export_job ADD COLUMN patient_scope text[];
ALTER TABLE export_unit ADD COLUMN res_ids text[];
