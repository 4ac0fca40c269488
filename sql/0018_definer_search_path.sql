-- SECURITY DEFINER functions run with their owner's rights, so an object that a caller can
-- place earlier on their search_path (a table or operator in pg_temp, or in a schema the
-- caller owns) must never be found before ours. 0007 pinned "the search_path of the
-- migration", which still lists "$user" first and pg_temp implicitly first. Pin every such
-- function in this schema to pg_catalog, this schema, then pg_temp (PostgreSQL's
-- documented safe pattern). Later migrations write the same SET clause themselves;
-- MigrateDbTest.DefinerFunctionsPinTheirSearchPath checks that none is missed.
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT p.oid::regprocedure FROM pg_proc p
             WHERE p.prosecdef AND p.pronamespace = current_schema()::regnamespace
    LOOP
        EXECUTE format('ALTER FUNCTION %s SET search_path = pg_catalog, %I, pg_temp',
                       f, current_schema());
    END LOOP;
END
$$;
