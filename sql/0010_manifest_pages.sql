-- Partial and paged manifests (IG 3.0.0 allowPartialManifests, issue 13).
--
-- A manifest page, once returned, must list the same files forever, on every node. Files are
-- numbered in the order their units COMMIT (export_file.ordinal, 1, 2, ... per job) and a page
-- is an ordinal range (previous page's hi_ordinal, hi_ordinal], recorded the first time it is
-- returned (export_manifest_page) and never recomputed.
--
-- Why the numbering is commit order: the trigger takes the job's row lock (UPDATE export_job)
-- and that lock is held until the unit's transaction ends; a unit completing later waits for
-- it, so it draws higher ordinals and commits later. A reader whose snapshot sees ordinal n
-- therefore sees every ordinal below n, and a page frozen at hi_ordinal can never miss a file
-- that commits afterwards with a lower number. (The worker's Complete() already locks the job
-- row first; the trigger makes the rule hold for any writer of export_file.)
ALTER TABLE export_job ADD COLUMN files_listed bigint NOT NULL DEFAULT 0;
ALTER TABLE export_file ADD COLUMN ordinal bigint;

-- Files of existing jobs: the manifest order (output, error, deleted; type, unit, seq).
WITH n AS (
    SELECT job_id, file_name,
           row_number() OVER (PARTITION BY job_id ORDER BY kind DESC, res_type, unit_no, seq) AS o
    FROM export_file)
UPDATE export_file f SET ordinal = n.o FROM n WHERE f.job_id = n.job_id AND f.file_name = n.file_name;
UPDATE export_job j SET files_listed = c.n
FROM (SELECT job_id, count(*) AS n FROM export_file GROUP BY job_id) c WHERE j.job_id = c.job_id;

CREATE FUNCTION export_file_ordinal() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE export_job SET files_listed = files_listed + 1 WHERE job_id = NEW.job_id
        RETURNING files_listed INTO NEW.ordinal;
    RETURN NEW;
END $$;
CREATE TRIGGER export_file_ordinal BEFORE INSERT ON export_file
    FOR EACH ROW EXECUTE FUNCTION export_file_ordinal();

CREATE UNIQUE INDEX export_file_job_ordinal ON export_file (job_id, ordinal);

-- Pages returned so far: page page_no lists the files with ordinals in
-- (hi_ordinal of page_no - 1, or 0; hi_ordinal].
CREATE TABLE export_manifest_page (
    job_id     uuid    NOT NULL REFERENCES export_job ON DELETE CASCADE,
    page_no    integer NOT NULL CHECK (page_no >= 1),
    hi_ordinal bigint  NOT NULL,
    PRIMARY KEY (job_id, page_no)
);
