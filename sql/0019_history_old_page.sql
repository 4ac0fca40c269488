-- Point-in-time exports of a type split into page ranges (issue 18, found with issue 17's
-- replica tests). Each unit reads its page range of `resource` and, until now, only the
-- first unit read the type's replaced versions. Units run at different moments, each in its
-- own snapshot, so a version current at transactionTime and replaced after the first unit's
-- snapshot but before the snapshot of the unit whose range held it was read by neither: the
-- first unit did not see its history row yet, its own unit no longer saw the row.
--
-- The fix: a history row remembers the heap page its version lived on (old_page), and every
-- unit reads, in the same statement as its page range, the history rows whose old_page lies
-- in that range. Within one snapshot a version is then either still in the heap or already
-- in the history, never both, never neither, whichever unit reads it and whenever.
--
-- The page is that of the row being replaced, so the capture trigger runs BEFORE the change:
-- one primary-key probe per replaced row (a first version costs nothing). History rows kept
-- before this migration have no page and go to the first unit, as before. A table rewrite
-- (VACUUM FULL, CLUSTER) during an export moves rows between pages and is not supported
-- while exports run (it would break the page ranges themselves).

ALTER TABLE resource_history ADD COLUMN old_page bigint;

CREATE OR REPLACE FUNCTION resource_keep_replaced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    page bigint;
BEGIN
    -- The row is locked by this command, so the probe finds exactly it.
    SELECT (r.ctid::text::point)[0]::bigint INTO page FROM resource r
    WHERE r.res_type = OLD.res_type AND r.res_id = OLD.res_id;
    INSERT INTO resource_history (res_type, res_id, version, last_updated, deleted,
        content_hash, body, patients, tokens, refs, date_params, date_lo, date_hi, outrefs,
        valid_to, old_page)
    VALUES (OLD.res_type, OLD.res_id, OLD.version, OLD.last_updated, OLD.deleted,
        OLD.content_hash, OLD.body, OLD.patients, OLD.tokens, OLD.refs, OLD.date_params,
        OLD.date_lo, OLD.date_hi, OLD.outrefs,
        CASE WHEN TG_OP = 'UPDATE' THEN NEW.last_updated
             ELSE greatest(clock_timestamp(), OLD.last_updated) END,
        page);
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END
$$;

DROP TRIGGER resource_keep_replaced_update ON resource;
DROP TRIGGER resource_keep_replaced_delete ON resource;
CREATE TRIGGER resource_keep_replaced_update BEFORE UPDATE ON resource FOR EACH ROW
    WHEN (OLD.version IS DISTINCT FROM NEW.version
          OR OLD.last_updated IS DISTINCT FROM NEW.last_updated)
    EXECUTE FUNCTION resource_keep_replaced();
CREATE TRIGGER resource_keep_replaced_delete BEFORE DELETE ON resource FOR EACH ROW
    EXECUTE FUNCTION resource_keep_replaced();
