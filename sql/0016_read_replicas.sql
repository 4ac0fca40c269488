-- Export units read from hot standbys (issue 17; worker/read_replicas.h).
--
-- export_job.read_lsn   the primary's WAL position (pg_current_wal_lsn()) right after the job's
--                       plan committed: every row the export can read as of its
--                       transactionTime (the resources, the replaced versions, the plan's
--                       patient scope and res_ids) lies before it. A unit reads from a
--                       standby only once that standby's pg_last_wal_replay_lsn() has reached
--                       it; NULL (planned before this column, or the planner died right after
--                       its commit): the primary's current position at claim time stands in.
-- export_unit.read_from 'primary', or 'replica <host>:<port>': where the unit's finished
--                       attempt read its rows.
ALTER TABLE export_job ADD COLUMN read_lsn pg_lsn;
ALTER TABLE export_unit ADD COLUMN read_from text;
