-- Per-client quotas on RETAINED exports (issue 11): a kick-off is refused (429) while the
-- client's exports that are in progress or completed and not yet expired reach a count or a
-- size limit, so a looping client cannot fill the shared export volume.
--
-- bytes_written: the NDJSON bytes of the job's files so far (gzip twins not counted), added
-- by each unit as it completes; the quota sums it over the client's retained jobs.
ALTER TABLE export_job ADD COLUMN bytes_written bigint NOT NULL DEFAULT 0;

-- The kick-off's quota query: a client's jobs that may still hold files.
CREATE INDEX export_job_client_retained ON export_job (client_id, expires_at)
    WHERE state IN ('accepted', 'running', 'completed');
