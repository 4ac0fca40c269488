-- Job history (issue 15): every export job that reaches a final state (completed, failed,
-- cancelled) leaves a row here that outlives its export_job row, which the workers' janitor
-- deletes with the files once they expire (or at once when cancelled). Rows are pruned by the
-- janitor after `fhir-bulk worker --history-days` (default 90); `fhir-bulk jobs list
-- --history` reads them.
--
-- Recorded by triggers, not by the code paths that finish a job: a job is finished by the
-- planner, by the last unit of any worker, by a DELETE on any nginx node or by `fhir-bulk
-- jobs cancel`, and whichever runs it, the history row is written in the same transaction as
-- the final state. The functions are SECURITY DEFINER (owned by the schema owner, with the
-- search_path of the migration), so the nginx and worker roles need no privileges on this
-- table for it; the workers need DELETE only to prune it.
--
-- Counts: per exported type (output files), deleted entries and error-file issues, summed
-- from export_file. The last unit's files are inserted after the UPDATE that completes the
-- job (unit_runner.cc, Complete), so an insert into export_file of a finished job refreshes
-- them; a cancel deletes the files after its UPDATE, so a cancelled job keeps what had been
-- written when it was cancelled.

CREATE TABLE export_job_history (
    job_id            uuid        PRIMARY KEY,
    client_id         text        NOT NULL,
    outcome           text        NOT NULL CHECK (outcome IN ('completed', 'failed', 'cancelled')),
    request           jsonb       NOT NULL,   -- ExportRequest: level, group, types, since/until, ...
    request_url       text        NOT NULL,
    transaction_time  timestamptz NOT NULL,
    created_at        timestamptz NOT NULL,
    started_at        timestamptz,
    finished_at       timestamptz NOT NULL,
    units_total       integer     NOT NULL,
    units_done        integer     NOT NULL,
    resources         bigint      NOT NULL,   -- export_job.resources_written
    bytes             bigint      NOT NULL,   -- NDJSON bytes written (gzip twins not counted)
    files             integer     NOT NULL DEFAULT 0,
    type_counts       jsonb       NOT NULL DEFAULT '{}',  -- {"Patient": 100, ...} (output files)
    deleted_count     bigint      NOT NULL DEFAULT 0,     -- entries of the deleted files
    error_count       bigint      NOT NULL DEFAULT 0,     -- issues in the error files
    error             jsonb,                  -- OperationOutcome of a failed job
    cancelled_at      timestamptz,            -- a finished job the client DELETEd afterwards
    purged_at         timestamptz             -- when the janitor deleted the job and its files
);
CREATE INDEX export_job_history_finished ON export_job_history (finished_at);
CREATE INDEX export_job_history_client ON export_job_history (client_id, finished_at);

-- The counts of a job's files, as history columns.
CREATE FUNCTION fhir_bulk_history_counts(j uuid, OUT files integer, OUT type_counts jsonb,
                                         OUT deleted_count bigint, OUT error_count bigint)
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
    SELECT count(*)::integer,
           coalesce((SELECT jsonb_object_agg(res_type, n) FROM (
                         SELECT res_type, sum(resources) AS n FROM export_file
                         WHERE job_id = j AND kind = 'output' GROUP BY res_type) t), '{}'),
           coalesce(sum(resources) FILTER (WHERE kind = 'deleted'), 0)::bigint,
           coalesce(sum(resources) FILTER (WHERE kind = 'error'), 0)::bigint
    FROM export_file WHERE job_id = j
$$;

CREATE FUNCTION fhir_bulk_record_history() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    c record;
BEGIN
    c := fhir_bulk_history_counts(NEW.job_id);
    INSERT INTO export_job_history (job_id, client_id, outcome, request, request_url,
        transaction_time, created_at, started_at, finished_at, units_total, units_done,
        resources, bytes, files, type_counts, deleted_count, error_count, error)
    VALUES (NEW.job_id, NEW.client_id, NEW.state, NEW.request, NEW.request_url,
        NEW.transaction_time, NEW.created_at, NEW.started_at,
        coalesce(NEW.finished_at, clock_timestamp()), NEW.units_total, NEW.units_done,
        NEW.resources_written, NEW.bytes_written, c.files, c.type_counts, c.deleted_count,
        c.error_count, NEW.error)
    -- Only a DELETE of a finished job gets here (final states are final): the outcome
    -- stays what it was, and the cancel is noted.
    ON CONFLICT (job_id) DO UPDATE SET cancelled_at = EXCLUDED.finished_at;
    RETURN NULL;
END
$$;

CREATE TRIGGER export_job_history_record
    AFTER UPDATE OF state ON export_job
    FOR EACH ROW
    WHEN (NEW.state IN ('completed', 'failed', 'cancelled') AND OLD.state <> NEW.state)
    EXECUTE FUNCTION fhir_bulk_record_history();

-- Files listed after the job's final state (the last unit's): refresh the counts.
CREATE FUNCTION fhir_bulk_history_files() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    c record;
BEGIN
    IF EXISTS (SELECT 1 FROM export_job_history WHERE job_id = NEW.job_id) THEN
        c := fhir_bulk_history_counts(NEW.job_id);
        UPDATE export_job_history SET files = c.files, type_counts = c.type_counts,
            deleted_count = c.deleted_count, error_count = c.error_count
        WHERE job_id = NEW.job_id;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER export_job_history_files
    AFTER INSERT ON export_file
    FOR EACH ROW
    EXECUTE FUNCTION fhir_bulk_history_files();

-- The janitor deleted the job (its files went first): note when.
CREATE FUNCTION fhir_bulk_history_purged() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    UPDATE export_job_history SET purged_at = clock_timestamp() WHERE job_id = OLD.job_id;
    RETURN NULL;
END
$$;

CREATE TRIGGER export_job_history_purged
    AFTER DELETE ON export_job
    FOR EACH ROW
    EXECUTE FUNCTION fhir_bulk_history_purged();

-- Jobs already finished when this migration runs.
INSERT INTO export_job_history (job_id, client_id, outcome, request, request_url,
    transaction_time, created_at, started_at, finished_at, units_total, units_done, resources,
    bytes, files, type_counts, deleted_count, error_count, error)
SELECT e.job_id, e.client_id, e.state, e.request, e.request_url, e.transaction_time,
       e.created_at, e.started_at, coalesce(e.finished_at, now()), e.units_total, e.units_done,
       e.resources_written, e.bytes_written, c.files, c.type_counts, c.deleted_count,
       c.error_count, e.error
FROM export_job e, fhir_bulk_history_counts(e.job_id) c
WHERE e.state IN ('completed', 'failed', 'cancelled');
