-- app-db-listener: the journal, dead letters and the capture function.
--
-- The installer fills in three placeholders: schema (the quoted identifier of our
-- schema), channel (the NOTIFY channel, a string literal) and wait_lock (the key of
-- the advisory lock a waiting daemon holds, a bigint literal).
-- Never edit a migration that has shipped: add a new numbered file instead.

-- Facts about this installation. installation_id makes event ids unique across
-- databases and reinstalls: an event id is evt_<installation_id>_<events.id>.
CREATE TABLE {{schema}}.meta (
  key   text PRIMARY KEY,
  value text NOT NULL
);
INSERT INTO {{schema}}.meta (key, value)
VALUES ('installation_id', substr(md5(random()::text || clock_timestamp()::text), 1, 12));

-- One row per captured change, written by the capture trigger inside the writer's
-- transaction: the change is durable the moment that transaction commits.
-- A row stays here until its webhook succeeded (then it is deleted, or moved to
-- delivered_events when a retention is configured) or it went to dead_letters.
--
-- The writer pays for every byte and index here, so the row is lean: two indexes
-- (the key and the ordering gate), no defaults beyond the change time, and the
-- dispatch columns are only written by the daemon, as HOT updates (none indexed).
CREATE TABLE {{schema}}.events (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  op            text        NOT NULL,
  schema_name   text        NOT NULL,
  table_name    text        NOT NULL,
  -- Hash of the table and the changed row's primary key (NULL for a table without
  -- one). Events that share it are delivered one at a time in commit order; a hash
  -- collision can only make ordering stricter, never looser.
  row_hash      bigint,
  new_row       json,
  old_row       json,
  txid          bigint      NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
  -- Dispatch state. run_at: NULL = due since creation, else the next retry time.
  -- A claim sets claimed_by and a lease end (claimed_until).
  run_at        timestamptz,
  claimed_by    text,
  claimed_until timestamptz,
  attempts      integer     NOT NULL DEFAULT 0,
  last_status   integer,
  last_error    text
) WITH (fillfactor = 90, autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02);

-- The ordering gate looks up earlier events of the same row here.
CREATE INDEX events_row_hash_idx ON {{schema}}.events (row_hash, id);

-- Events whose delivery was refused (4xx) or whose retries ran out. Kept until
-- replayed or purged; a replay moves the row back into events with the same id.
CREATE TABLE {{schema}}.dead_letters (
  id            bigint      PRIMARY KEY,
  op            text        NOT NULL,
  schema_name   text        NOT NULL,
  table_name    text        NOT NULL,
  row_hash      bigint,
  new_row       json,
  old_row       json,
  txid          bigint      NOT NULL,
  created_at    timestamptz NOT NULL,
  attempts      integer     NOT NULL,
  last_status   integer,
  last_error    text,
  failed_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dead_letters_table_idx ON {{schema}}.dead_letters (table_name, schema_name, id);

-- Delivered events, only when listener.retention > 0; removed after the retention.
CREATE TABLE {{schema}}.delivered_events (
  id            bigint      PRIMARY KEY,
  op            text        NOT NULL,
  schema_name   text        NOT NULL,
  table_name    text        NOT NULL,
  row_hash      bigint,
  new_row       json,
  old_row       json,
  txid          bigint      NOT NULL,
  created_at    timestamptz NOT NULL,
  attempts      integer     NOT NULL,
  delivered_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX delivered_events_delivered_at_idx ON {{schema}}.delivered_events (delivered_at);

-- The tables we watch (for status and for re-installing only what changed).
CREATE TABLE {{schema}}.watched_tables (
  schema_name   text        NOT NULL,
  table_name    text        NOT NULL,
  operations    text[]      NOT NULL,
  key_columns   text[]      NOT NULL,
  installed_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (schema_name, table_name)
);

-- Wake-ups. A NOTIFY per change costs the writers dearly: NOTIFY takes a
-- database-wide lock at commit that serialises every notifying transaction (measured
-- on 2 cores, 16 writers: ~25k inserts/s plain, ~19k/s with the journal insert,
-- ~7.5k/s with a pg_notify per row). So the trigger notifies only while a daemon
-- waits: a daemon that found the journal empty holds the wait_lock advisory lock
-- (exclusive, on its LISTEN connection) while it sleeps, and the trigger's
-- non-blocking try for a shared hold fails exactly then. Otherwise the writer holds
-- the shared lock to its commit, which also keeps a daemon from starting to wait
-- before that change is visible: no change can slip between the daemon's last look
-- and its sleep. A daemon that dies releases the lock with its connection.

-- The capture trigger. Arguments: the watched table's schema and name, then its
-- primary key columns. The names come from the arguments rather than TG_TABLE_*, so
-- the rows of a partitioned table are reported (and ordered) under the table that
-- is watched, not under the partition that holds them.
-- row_to_json keeps column order and the exact text of every value (bigint,
-- numeric 12.50), so row values never pass through a floating-point number.
-- SECURITY DEFINER: the application's roles need no privilege on our schema, and
-- cannot write events except through their own changes. The fixed search_path
-- keeps the function from resolving anything through the writer's path.
-- Every statement here is paid by the application's writes: keep it to one insert
-- and one lock try.
CREATE FUNCTION {{schema}}.capture_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_new json;
  v_old json;
  v_key text;
  i integer;
BEGIN
  IF TG_OP <> 'DELETE' THEN v_new := row_to_json(NEW); END IF;
  IF TG_OP <> 'INSERT' THEN v_old := row_to_json(OLD); END IF;
  IF TG_NARGS = 3 THEN
    v_key := coalesce(v_new, v_old) ->> TG_ARGV[2];
  ELSIF TG_NARGS > 3 THEN
    v_key := '';
    FOR i IN 2 .. TG_NARGS - 1 LOOP
      v_key := v_key || coalesce(quote_literal(coalesce(v_new, v_old) ->> TG_ARGV[i]), 'NULL') || ',';
    END LOOP;
  END IF;
  INSERT INTO {{schema}}.events (op, schema_name, table_name, row_hash, new_row, old_row, txid)
  VALUES (TG_OP, TG_ARGV[0], TG_ARGV[1],
          hashtextextended(TG_ARGV[0] || '.' || TG_ARGV[1] || ':' || v_key, 0),
          v_new, v_old, txid_current());
  IF NOT pg_try_advisory_xact_lock_shared({{wait_lock}}) THEN
    PERFORM pg_notify({{channel}}, '');
  END IF;
  RETURN NULL;
END
$$;
