-- The audit trail at download volume (issue 17). Every file download writes an audit_event
-- row, so on a busy gateway downloads are nearly all of the table, and each row paid four
-- B-tree entries: event_id (a key nothing looks up), at, (client_id, at) and (action, at).
-- Measured with `perf` on the audit writer's backend during a stream of small downloads,
-- index upkeep was 45 % of its CPU. Now a download row pays two entries:
--
--   primary key (at, event_id)  the order every search reads (newest first, event_id breaking
--                               ties), so one index is both the key and the time index.
--   (client_id, at)             searches by client, downloads included.
--   (action, at) WHERE action <> 'download'
--                               searches by a rare action (token, kickoff, cancel, ...). A
--                               search for downloads reads the time index instead: downloads
--                               are most of any time range, so the action index would not
--                               narrow it.
--
-- client_id and action compare bytewise (COLLATE "C"): they are identifiers, never sorted for
-- people, and a locale's comparison made every insert into their indexes dearer.
--
-- On a large existing trail this rebuilds the indexes under an exclusive lock; the nginx
-- workers' audit queues hold events meanwhile (auth/audit.h).

-- The indexes that go are dropped first, so the collation change rebuilds only the client
-- index.
DROP INDEX audit_event_action;
DROP INDEX audit_event_at;
ALTER TABLE audit_event DROP CONSTRAINT audit_event_pkey;

ALTER TABLE audit_event
    ALTER COLUMN client_id TYPE text COLLATE "C",
    ALTER COLUMN action TYPE text COLLATE "C";

ALTER TABLE audit_event ADD CONSTRAINT audit_event_pkey PRIMARY KEY (at, event_id);
CREATE INDEX audit_event_action ON audit_event (action, at) WHERE action <> 'download';
