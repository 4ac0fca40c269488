-- Point-in-time exports (issue 18): the versions a write replaces are kept while an export
-- may still need them, so that every export reads its resources as they were at its
-- transactionTime, whatever the loader does meanwhile.
--
-- resource_history holds replaced versions: the columns of `resource` (everything an export
-- unit selects or filters on) plus valid_to, the instant the version stopped being current.
-- A version is current at T when last_updated <= T < valid_to. valid_to is the replacing
-- version's last_updated, exactly: an export unit reads the `resource` rows with
-- last_updated <= T plus the history rows current at T, and for any id exactly one of them
-- qualifies (the current row is excluded, last_updated > T, exactly when the replaced
-- version's valid_to > T).
--
-- Capture is by trigger, so every writer is covered, whatever its path:
--  - UPDATE that changes version or last_updated (the loader's tombstones): the old row, with
--    valid_to = the new row's last_updated;
--  - DELETE (the loader deletes a changed row by ctid, then COPYs its new version in the same
--    transaction): the old row, valid_to provisionally the clock; the AFTER INSERT trigger of
--    the new version (version > 1 only: first versions cost nothing but the WHEN test, and
--    COPY keeps its multi-row inserts, since there is no BEFORE trigger) sets it to the new
--    row's last_updated. replaced_xid pairs the two: the history row written by this
--    transaction. A DELETE without a new version keeps the clock (the row existed until then).
-- group_member_history keeps a replaced Group version's membership (group_member rows deleted
-- by the loader when the Group changes or is deleted), tagged with the Group version, so a
-- Group export planned after its Group changed still uses the members as of transactionTime.
--
-- Pruning (the worker's janitor): history rows with valid_to before the oldest
-- transactionTime of any export in progress or kept (accepted, running, completed and not
-- expired), and before now() - the retention option, are deleted in small batches (their
-- Group memberships with them). history_horizon records how far pruning went: planning a job
-- whose transactionTime lies before it (a kick-off that committed after a janitor pass read
-- the jobs) fails the job as transient instead of exporting data that is no longer complete.
-- Disk cost: one copy of each replaced version for as long as an export may need it.

CREATE TABLE resource_history (
    res_type      text        NOT NULL,
    res_id        text        NOT NULL,
    version       bigint      NOT NULL,
    last_updated  timestamptz NOT NULL,
    deleted       boolean     NOT NULL,
    content_hash  bytea,
    body          text COMPRESSION lz4,
    patients      text[],
    tokens        text[],
    refs          text[],
    date_params   text[],
    date_lo       timestamptz[],
    date_hi       timestamptz[],
    outrefs       text[],
    valid_to      timestamptz NOT NULL,
    replaced_xid  xid8        NOT NULL DEFAULT pg_current_xact_id()
);
-- The export units' history branch: the versions of one type replaced after T (an empty
-- index probe when nothing changed).
CREATE INDEX resource_history_as_of ON resource_history (res_type, valid_to);
-- Pruning, over every type.
CREATE INDEX resource_history_valid_to ON resource_history (valid_to);
-- The insert trigger's fix-up and group membership lookups.
CREATE INDEX resource_history_id ON resource_history (res_type, res_id, version);

CREATE TABLE group_member_history (
    group_id       text        NOT NULL,
    group_version  bigint      NOT NULL,
    member_index   integer     NOT NULL,
    patient_id     text        NOT NULL,
    inactive       boolean     NOT NULL,
    period_start   timestamptz,
    period_end     timestamptz
);
CREATE INDEX group_member_history_group ON group_member_history (group_id, group_version);

CREATE TABLE history_horizon (
    id             integer     PRIMARY KEY CHECK (id = 1),
    pruned_before  timestamptz NOT NULL
);
INSERT INTO history_horizon VALUES (1, '-infinity');

CREATE FUNCTION resource_keep_replaced() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO resource_history (res_type, res_id, version, last_updated, deleted,
        content_hash, body, patients, tokens, refs, date_params, date_lo, date_hi, outrefs,
        valid_to)
    VALUES (OLD.res_type, OLD.res_id, OLD.version, OLD.last_updated, OLD.deleted,
        OLD.content_hash, OLD.body, OLD.patients, OLD.tokens, OLD.refs, OLD.date_params,
        OLD.date_lo, OLD.date_hi, OLD.outrefs,
        CASE WHEN TG_OP = 'UPDATE' THEN NEW.last_updated
             ELSE greatest(clock_timestamp(), OLD.last_updated) END);
    RETURN NULL;
END
$$;

CREATE FUNCTION resource_close_replaced() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE resource_history SET valid_to = NEW.last_updated
    WHERE ctid = (SELECT h.ctid FROM resource_history h
                  WHERE h.res_type = NEW.res_type AND h.res_id = NEW.res_id
                    AND h.version < NEW.version AND h.replaced_xid = pg_current_xact_id()
                  ORDER BY h.version DESC LIMIT 1)
      AND last_updated <= NEW.last_updated;
    RETURN NULL;
END
$$;

CREATE TRIGGER resource_keep_replaced_update AFTER UPDATE ON resource FOR EACH ROW
    WHEN (OLD.version IS DISTINCT FROM NEW.version
          OR OLD.last_updated IS DISTINCT FROM NEW.last_updated)
    EXECUTE FUNCTION resource_keep_replaced();
CREATE TRIGGER resource_keep_replaced_delete AFTER DELETE ON resource FOR EACH ROW
    EXECUTE FUNCTION resource_keep_replaced();
CREATE TRIGGER resource_close_replaced AFTER INSERT ON resource FOR EACH ROW
    WHEN (NEW.version > 1)
    EXECUTE FUNCTION resource_close_replaced();

-- Statement level: a large Group's members in one INSERT.
CREATE FUNCTION group_member_keep_replaced() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO group_member_history (group_id, group_version, member_index, patient_id,
        inactive, period_start, period_end)
    SELECT g.group_id, h.version, g.member_index, g.patient_id, g.inactive, g.period_start,
           g.period_end
    FROM gone g
    CROSS JOIN LATERAL (SELECT rh.version FROM resource_history rh
                        WHERE rh.res_type = 'Group' AND rh.res_id = g.group_id
                          AND rh.replaced_xid = pg_current_xact_id()
                        ORDER BY rh.version DESC LIMIT 1) h;
    RETURN NULL;
END
$$;

CREATE TRIGGER group_member_keep_replaced AFTER DELETE ON group_member
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT
    EXECUTE FUNCTION group_member_keep_replaced();
