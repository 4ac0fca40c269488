-- The operator console (issue 16): operator clients, and the one write the console makes.
--
-- An operator client is registered with `fhir-bulk client add --operator`; only such a client
-- may hold operator/ scopes (auth/scopes.h), which the token endpoint grants like any other
-- scope and which the API's [base]/_ops/api/ routes require (server/ops_api.h). The CHECK
-- keeps that true whatever writes the row.
ALTER TABLE auth_client ADD COLUMN operator boolean NOT NULL DEFAULT false;
ALTER TABLE auth_client ADD CONSTRAINT auth_client_operator_scopes
    CHECK (operator OR position('operator/' IN allowed_scopes) = 0);

-- Enables or disables an export client for an operator (the console's only write), and
-- records it in the audit trail in the same transaction: a change without its audit row
-- cannot happen. Operator clients are refused ('operator'): they are managed with `fhir-bulk
-- client` on the database host, so a stolen console token cannot lock the operators out.
-- SECURITY DEFINER: the nginx role gets EXECUTE on this function, not UPDATE on auth_client.
-- Returns 'disabled', 'enabled', 'unchanged', 'not-found' or 'operator'.
CREATE FUNCTION fhir_bulk_ops_set_client_enabled(p_client text, p_enabled boolean,
                                                 p_operator text, p_remote_addr text)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    was_enabled boolean;
    is_operator boolean;
    outcome text;
BEGIN
    SELECT enabled, operator INTO was_enabled, is_operator
    FROM auth_client WHERE client_id = p_client FOR UPDATE;
    IF NOT FOUND THEN
        outcome := 'not-found';
    ELSIF is_operator THEN
        outcome := 'operator';
    ELSIF was_enabled = p_enabled THEN
        outcome := 'unchanged';
    ELSE
        UPDATE auth_client SET enabled = p_enabled, updated_at = now() WHERE client_id = p_client;
        outcome := CASE WHEN p_enabled THEN 'enabled' ELSE 'disabled' END;
    END IF;
    INSERT INTO audit_event (client_id, action, target, result, detail, remote_addr)
    VALUES (left(p_operator, 256), 'client', left(p_client, 512),
            CASE outcome WHEN 'not-found' THEN 404 WHEN 'operator' THEN 403 ELSE 200 END,
            CASE WHEN p_enabled THEN 'enable' ELSE 'disable' END || ': ' || outcome
                || ' (operator console)',
            left(p_remote_addr, 256));
    RETURN outcome;
END
$$;
-- Functions are executable by PUBLIC by default: only the roles `fhir-bulk grants` names.
REVOKE EXECUTE ON FUNCTION fhir_bulk_ops_set_client_enabled(text, boolean, text, text) FROM PUBLIC;

-- The console's audit search by action (downloads per day, the action filter) and its job
-- history by start (exports per day).
CREATE INDEX audit_event_action ON audit_event (action, at);
CREATE INDEX export_job_history_created ON export_job_history (created_at);
