-- Destinations: one captured change, delivered independently to each destination.
--
-- events becomes the capture inbox: the trigger still writes one row per change
-- (the writer pays once, as before), and the daemon's router moves each row, in one
-- statement, into deliveries: one copy per destination the change routes to (none:
-- the row is just removed). The inbox so only ever holds changes not yet routed, and
-- each destination has its own queue: its claims, retries, ordering gate and dead
-- letters never read another destination's rows, so a destination that is down
-- (its queue grows) costs the others nothing.
--
-- Upgrading: every event waiting in the journal (due, retrying or claimed) becomes a
-- delivery of the destination "default" (the original webhook: section) with its
-- attempts, next attempt time and last error; claims are dropped (an event in flight
-- goes out again: at least once). Dead letters and delivered events are kept, as "default"'s.
-- Daemons of an earlier version must be stopped first: they would fail on the
-- missing columns (and retry without losing anything) until upgraded.

-- One row per (destination, change) still to deliver. The change is copied, not
-- referenced, so an event leaves a destination's queue without asking the others
-- (no shared row to coordinate on), and a replay or a backfill for one destination
-- writes only there. id is the change's id in events: the event id
-- (evt_<installation>_<id>) is the same for every destination.
CREATE TABLE {{schema}}.deliveries (
  destination   text        NOT NULL,
  id            bigint      NOT NULL,
  op            text        NOT NULL,
  schema_name   text        NOT NULL,
  table_name    text        NOT NULL,
  row_hash      bigint,
  new_row       json,
  old_row       json,
  txid          bigint      NOT NULL,
  created_at    timestamptz NOT NULL,
  -- Dispatch state, as events had it: run_at NULL = due since routing, else the next
  -- retry time; a claim sets claimed_by and the lease end (claimed_until, also the
  -- claim's token). None of them is indexed, so claims are HOT updates.
  run_at        timestamptz,
  claimed_by    text,
  claimed_until timestamptz,
  attempts      integer     NOT NULL DEFAULT 0,
  last_status   integer,
  last_error    text,
  PRIMARY KEY (destination, id)
) WITH (fillfactor = 90, autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02);

-- The ordering gate, per destination: earlier deliveries of the same row. row_hash
-- comes first so that this index is never a candidate for a lookup by
-- (destination, id): a generic plan made on an empty queue took it for one, and
-- scanned all of a destination's entries per outcome.
CREATE INDEX deliveries_row_hash_idx ON {{schema}}.deliveries (row_hash, destination, id);

INSERT INTO {{schema}}.deliveries
  (destination, id, op, schema_name, table_name, row_hash, new_row, old_row, txid, created_at,
   run_at, attempts, last_status, last_error)
SELECT 'default', id, op, schema_name, table_name, row_hash, new_row, old_row, txid, created_at,
       run_at, greatest(attempts - CASE WHEN claimed_by IS NOT NULL THEN 1 ELSE 0 END, 0), last_status, last_error
FROM {{schema}}.events;
-- Exactly the rows copied: a change committed since the copy stays in the inbox and
-- is routed like any other (after the copied changes of its row, which its
-- destinations' ordering gates see first).
DELETE FROM {{schema}}.events e USING {{schema}}.deliveries d WHERE d.destination = 'default' AND d.id = e.id;

-- The inbox keeps only the change: dispatch state lives in deliveries.
ALTER TABLE {{schema}}.events
  DROP COLUMN run_at, DROP COLUMN claimed_by, DROP COLUMN claimed_until,
  DROP COLUMN attempts, DROP COLUMN last_status, DROP COLUMN last_error;

-- Dead letters and delivered events belong to a destination.
ALTER TABLE {{schema}}.dead_letters ADD COLUMN destination text NOT NULL DEFAULT 'default';
ALTER TABLE {{schema}}.dead_letters ALTER COLUMN destination DROP DEFAULT;
ALTER TABLE {{schema}}.dead_letters DROP CONSTRAINT dead_letters_pkey;
ALTER TABLE {{schema}}.dead_letters ADD PRIMARY KEY (destination, id);

ALTER TABLE {{schema}}.delivered_events ADD COLUMN destination text NOT NULL DEFAULT 'default';
ALTER TABLE {{schema}}.delivered_events ALTER COLUMN destination DROP DEFAULT;
ALTER TABLE {{schema}}.delivered_events DROP CONSTRAINT delivered_events_pkey;
ALTER TABLE {{schema}}.delivered_events ADD PRIMARY KEY (destination, id);

-- When each destination last delivered an event of each table, for `status`.
CREATE TABLE {{schema}}.destination_tables (
  destination       text        NOT NULL,
  schema_name       text        NOT NULL,
  table_name        text        NOT NULL,
  last_delivered_at timestamptz,
  PRIMARY KEY (destination, schema_name, table_name)
);
INSERT INTO {{schema}}.destination_tables (destination, schema_name, table_name, last_delivered_at)
SELECT 'default', schema_name, table_name, last_delivered_at FROM {{schema}}.watched_tables;
