-- Worker heartbeats (issue 15): every `fhir-bulk worker` process keeps one row here, so the
-- HTTP side can tell whether anything is serving the queue (/_health) and report the workers
-- (/metrics). core/worker/heartbeat.h writes it: an upsert every
-- FHIRBULK_WORKER_HEARTBEAT_SECONDS (fhirbulk/defaults.h), a DELETE on graceful exit.
--
-- A worker that died without its DELETE (SIGKILL, a lost host) leaves a row that simply ages:
-- readers count a worker as live only while last_seen is younger than
-- FHIRBULK_WORKER_LIVE_SECONDS, and every worker deletes rows older than
-- FHIRBULK_WORKER_FORGET_SECONDS when it writes its own, so the table stays as small as the
-- fleet.
--
-- last_seen is the database's clock (now()), so readers compare it with now() and hosts'
-- clocks never matter.

CREATE TABLE worker_heartbeat (
    worker_id        text        PRIMARY KEY,   -- <host>-<pid>-<random> (WorkerOptions)
    host             text        NOT NULL,
    pid              integer     NOT NULL,
    started_at       timestamptz NOT NULL,
    version          text        NOT NULL,      -- the worker's software version
    threads          integer     NOT NULL,
    units_in_flight  integer     NOT NULL DEFAULT 0,  -- units this worker runs right now
    last_seen        timestamptz NOT NULL DEFAULT now()
);
