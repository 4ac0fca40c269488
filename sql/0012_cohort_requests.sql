-- Criteria-based Groups (Bulk Cohort API, issue 14) are evaluated by the export workers, not
-- on nginx's thread pool: the gateway is shared, and an evaluation may take up to its
-- statement timeout.
--
-- group_request (sql/0009) becomes the queue: POST/PUT /Group with member-filters and
-- Prefer: respond-async inserts a 'pending' row holding the request (op, the Group body, the
-- server's base URL for the filters' references, the limits the node applies) and NOTIFYs
-- fhir_bulk_jobs; a worker claims one with FOR UPDATE SKIP LOCKED, evaluates and stores the
-- Group in the same transaction, and marks the row 'done' with the outcome (the Group id and
-- 201/200, or an OperationOutcome). A worker that dies mid-evaluation rolls back: the row is
-- pending again and the next worker takes it. The status URL answers 202 while pending.
-- Member-based writes with respond-async record a 'done' row at once, as before.
--
-- group_owner gains what a cohort needs to be evaluated again, as of each export's
-- transactionTime (worker/planner.h): the candidates (the Group's `member` list sent with the
-- filters, NULL: every patient) and the base URL the filters were written against.

ALTER TABLE group_request DROP CONSTRAINT group_request_check;
ALTER TABLE group_request
    ADD COLUMN state        text    NOT NULL DEFAULT 'done' CHECK (state IN ('pending', 'done')),
    ADD COLUMN op           text    CHECK (op IN ('create', 'update')),
    ADD COLUMN body         text,
    ADD COLUMN base_url     text,
    ADD COLUMN max_members  integer,
    ADD COLUMN timeout_ms   integer,
    ADD COLUMN finished_at  timestamptz,
    ADD CONSTRAINT group_request_outcome CHECK (
        state = 'pending' OR (group_id IS NOT NULL AND error_json IS NULL)
        OR error_json IS NOT NULL),
    ADD CONSTRAINT group_request_pending CHECK (
        state = 'done' OR (op IS NOT NULL AND body IS NOT NULL AND group_id IS NOT NULL
                           AND base_url IS NOT NULL AND max_members > 0 AND timeout_ms > 0));
CREATE INDEX group_request_queue ON group_request (created_at) WHERE state = 'pending';

ALTER TABLE group_owner
    ADD COLUMN candidates text[],
    ADD COLUMN base_url   text;

-- Date ranges in cohorts (`Encounter?date=ge2024-01-01&date=lt2025-01-01`): the date values
-- are parallel arrays (sql/0001), which no index answers, so such a filter read the whole
-- partition. fhirbulk_date_hull is a row's date hull, the range from its earliest date value
-- to its latest (NULL without any); a GiST index over it on the partitions cohorts filter by
-- date finds the rows whose hull meets the search's range, a necessary condition that
-- export/cohort.cc adds beside the exact predicate (which still decides). Other types scan.
-- The loader maintains these indexes like the others (a cost per Encounter, Condition and
-- Procedure row written).
CREATE FUNCTION fhirbulk_date_hull(lo timestamptz[], hi timestamptz[]) RETURNS tstzrange
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE WHEN cardinality(lo) = 0 OR cardinality(hi) = 0 THEN NULL
                ELSE tstzrange((SELECT min(x) FROM unnest(lo) AS x),
                               (SELECT max(x) FROM unnest(hi) AS x), '[]') END
$$;
CREATE INDEX resource_encounter_date_hull ON resource_encounter
    USING gist (fhirbulk_date_hull(date_lo, date_hi));
CREATE INDEX resource_condition_date_hull ON resource_condition
    USING gist (fhirbulk_date_hull(date_lo, date_hi));
CREATE INDEX resource_procedure_date_hull ON resource_procedure
    USING gist (fhirbulk_date_hull(date_lo, date_hi));
