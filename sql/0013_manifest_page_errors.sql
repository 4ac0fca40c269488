-- A manifest page (sql/0010, export/manifest_pages.h) lists its ordinal range of the job's
-- files plus every error file of the job. The ordinal range is read through
-- export_file_job_ordinal; the error files (one error unit's, a handful) get this partial
-- index, so that a page poll reads rows in proportion to its page, not to the job's files
-- (a job of 100,000 files answers a page as fast as one of ten).
CREATE INDEX export_file_job_errors ON export_file (job_id) WHERE kind = 'error';
