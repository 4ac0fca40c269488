-- Export jobs and their work, shared by every nginx node and every worker process.
--
-- A kick-off inserts an export_job ('accepted') and NOTIFYs fhir_bulk_jobs. A worker plans it:
-- it waits until every transaction older than the job's transaction_time has finished (see
-- xmax_at_kickoff), then splits the work into export_unit rows (one type x one slice of its
-- partition, plus the deleted and error units) and marks the job 'running'. Workers claim
-- units with FOR UPDATE SKIP LOCKED and a lease they renew (heartbeat); a unit whose lease ran
-- out is claimed again and redone from scratch (its files are rewritten, never appended).
-- A unit's files are renamed into place and recorded in export_file in the same step that
-- marks the unit done, so the manifest lists complete files only. When the last unit is done
-- the job is 'completed' and gets expires_at.
--
-- Consistency: every read of resources filters on last_updated <= transaction_time. Writers
-- read the clock for last_updated only after their transaction holds an xid (the loader does
-- SELECT pg_current_xact_id(), clock_timestamp()), and the kick-off takes its own xid
-- (xmax_at_kickoff) after reading transaction_time, so any writer whose rows can have
-- last_updated <= transaction_time has an older xid. Planning waits until
-- pg_snapshot_xmin(pg_current_snapshot()) >= xmax_at_kickoff, i.e. until all of them have
-- committed or aborted; from then on every unit reads the same set of rows.

CREATE TABLE export_job (
    job_id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    client_id         text        NOT NULL,
    state             text        NOT NULL DEFAULT 'accepted'
                      CHECK (state IN ('accepted', 'running', 'completed', 'failed', 'cancelled')),
    request           jsonb       NOT NULL,   -- ExportRequest (core/export/export_request.h)
    request_url       text        NOT NULL,   -- the manifest's `request`
    transaction_time  timestamptz NOT NULL,
    xmax_at_kickoff   xid8        NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    started_at        timestamptz,
    finished_at       timestamptz,
    expires_at        timestamptz,
    units_total       integer     NOT NULL DEFAULT 0,
    units_done        integer     NOT NULL DEFAULT 0,
    resources_written bigint      NOT NULL DEFAULT 0,
    planner           text,                   -- worker planning it; lease as for units
    planner_lease     timestamptz,
    error             jsonb,                  -- OperationOutcome when failed
    error_transient   boolean     NOT NULL DEFAULT false,
    last_polled_at    timestamptz             -- status polls faster than allowed get 429
);
CREATE INDEX export_job_client_active ON export_job (client_id) WHERE state IN ('accepted', 'running');
CREATE INDEX export_job_accepted ON export_job (created_at) WHERE state = 'accepted';
CREATE INDEX export_job_expires ON export_job (expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE export_unit (
    job_id       uuid        NOT NULL REFERENCES export_job ON DELETE CASCADE,
    unit_no      integer     NOT NULL,
    kind         text        NOT NULL CHECK (kind IN ('output', 'deleted', 'error')),
    res_type     text,                     -- NULL for the error unit
    page_lo      bigint,                   -- heap block range [page_lo, page_hi) of the type's
    page_hi      bigint,                   -- partition; NULL = unbounded
    state        text        NOT NULL DEFAULT 'pending'
                 CHECK (state IN ('pending', 'running', 'done')),
    worker       text,
    lease_until  timestamptz,
    attempts     integer     NOT NULL DEFAULT 0,
    resources    bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (job_id, unit_no)
);
CREATE INDEX export_unit_claimable ON export_unit (job_id, unit_no) WHERE state <> 'done';

CREATE TABLE export_file (
    job_id     uuid    NOT NULL REFERENCES export_job ON DELETE CASCADE,
    file_name  text    NOT NULL,             -- e.g. Observation.u3.2.ndjson
    kind       text    NOT NULL CHECK (kind IN ('output', 'deleted', 'error')),
    res_type   text    NOT NULL,             -- the manifest's `type` (Bundle for deleted)
    unit_no    integer NOT NULL,
    seq        integer NOT NULL,
    resources  bigint  NOT NULL,
    bytes      bigint  NOT NULL,
    PRIMARY KEY (job_id, file_name)
);
