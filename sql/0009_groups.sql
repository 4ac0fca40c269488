-- Groups created through the FHIR API (core/server/group_api.h): POST /Group with members, or
-- a criteria-based cohort (Bulk Cohort API, member-filter extensions).
--
-- A created Group is stored like a loaded one (a `resource` row of type Group plus its
-- group_member rows), so exports read it the same way; this table records what a loaded Group
-- does not have:
--   client_id          the client that created it: only that client can read, search, change,
--                      delete or export it (others get 404, as if it did not exist).
--   criteria           the member-filter expressions of a criteria-based Group (NULL for a
--                      member-based one), kept for reading back and documentation.
--   members_refreshed  when its membership was computed (criteria-based only): at creation.
-- A Group without a row here was loaded (`fhir-bulk load`) and belongs to no client.

CREATE TABLE group_owner (
    group_id           text        PRIMARY KEY,
    client_id          text        NOT NULL,
    criteria           text[],
    members_refreshed  timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX group_owner_client ON group_owner (client_id);

-- Asynchronous Group creations (POST /Group with Prefer: respond-async): the status URL
-- $group-status/<request_id> answers from here. The evaluation runs while the POST is
-- handled (on a thread-pool thread, under a statement timeout); a row records its result for
-- the polls: the Group id once created, or the OperationOutcome of a failure. Rows are
-- deleted a day after creation.
CREATE TABLE group_request (
    request_id   text        PRIMARY KEY,
    client_id    text        NOT NULL,
    group_id     text,
    error_json   text,
    http_status  integer     NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CHECK ((group_id IS NULL) <> (error_json IS NULL))
);
CREATE INDEX group_request_created ON group_request (created_at);
