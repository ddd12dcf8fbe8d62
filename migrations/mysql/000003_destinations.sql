-- Destinations: one captured change, delivered independently to each destination.
--
-- events becomes the capture inbox: the triggers still write one row per change
-- (the writer pays once, as before), and the daemon's router moves each row, in one
-- transaction, into deliveries: one copy per destination the change routes to (none:
-- the row is just removed). The inbox so only ever holds changes not yet routed, and
-- each destination has its own queue: its claims, retries, ordering gate and dead
-- letters never read another destination's rows, so a destination that is down
-- (its queue grows) costs the others nothing.
--
-- Upgrading: every event waiting in the journal (due, retrying or claimed) becomes a
-- delivery of the destination "default" (the original webhook: section) with its
-- attempts, next attempt time and last error; claims are dropped (an event in flight
-- goes out again: at least once). Dead letters and delivered events are kept, as
-- "default"'s. Daemons of an earlier version must be stopped first.
--
-- Every step may run twice (MySQL DDL is not transactional: an install interrupted
-- half-way runs this file again), so the steps that depend on what is there are
-- chosen from information_schema, as in 000002.

-- One row per (destination, change) still to deliver. The change is copied, not
-- referenced, so an event leaves a destination's queue without asking the others,
-- and a replay or a backfill for one destination writes only there. id is the
-- change's id in events: the event id (evt_<installation>_<id>) is the same for
-- every destination. The dispatch columns are as events had them.
CREATE TABLE IF NOT EXISTS {{deliveries}} (
  destination   VARCHAR(40)     NOT NULL,
  id            BIGINT UNSIGNED NOT NULL,
  op            VARCHAR(6)      NOT NULL,
  schema_name   VARCHAR(64)     NOT NULL,
  table_name    VARCHAR(64)     NOT NULL,
  row_hash      BIGINT          NULL,
  new_row       LONGTEXT        NULL,
  old_row       LONGTEXT        NULL,
  txid          BIGINT UNSIGNED NOT NULL,
  created_at    DATETIME(6)     NOT NULL,
  run_at        DATETIME(6)     NULL,
  claimed_by    VARCHAR(255)    NULL,
  claimed_until DATETIME(6)     NULL,
  attempts      INT             NOT NULL DEFAULT 0,
  last_status   INT             NULL,
  last_error    TEXT            NULL,
  PRIMARY KEY (destination, id),
  -- The ordering gate, per destination: earlier deliveries of the same row.
  KEY row_hash_idx (destination, row_hash, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- When each destination last delivered an event of each table (UTC), for `status`.
CREATE TABLE IF NOT EXISTS {{destination_tables}} (
  destination       VARCHAR(40)  NOT NULL,
  schema_name       VARCHAR(64)  NOT NULL,
  table_name        VARCHAR(64)  NOT NULL,
  last_delivered_at DATETIME(6)  NULL,
  PRIMARY KEY (destination, schema_name, table_name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The copy and the delete below read the journal without locking ranges of it (READ
-- COMMITTED): under REPEATABLE READ they would lock the end of the events index and
-- hold up every capture trigger, so the application's writes, for as long as they run.
SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED;

-- Whether events still has its dispatch columns (this file has not run to the end yet).
SET @adl_old_events = (SELECT COUNT(*) FROM information_schema.COLUMNS
  WHERE TABLE_SCHEMA = {{database_name}} AND TABLE_NAME = {{events_name}} AND COLUMN_NAME = 'run_at');

-- The changes of the earlier version: those captured before this file first ran. A
-- run again after a failure moves only those; what was captured since is routed to
-- every destination by the new daemon, like any change.
INSERT IGNORE INTO {{meta}} (`key`, `value`)
SELECT 'destinations_upgrade_mark', CAST(COALESCE(MAX(id), 0) AS CHAR) FROM {{events}};
SET @adl_mark = (SELECT `value` FROM {{meta}} WHERE `key` = 'destinations_upgrade_mark');

-- The waiting events become "default"'s deliveries, with their dispatch state.
SET @adl_migration = IF(@adl_old_events > 0,
  CONCAT('INSERT IGNORE INTO ', {{deliveries_sql}},
    ' (destination, id, op, schema_name, table_name, row_hash, new_row, old_row, txid, created_at,',
    '  run_at, attempts, last_status, last_error)',
    ' SELECT ''default'', id, op, schema_name, table_name, row_hash, new_row, old_row, txid, created_at,',
    '  run_at, GREATEST(attempts - IF(claimed_by IS NULL, 0, 1), 0), last_status, last_error FROM ', {{events_sql}},
    ' WHERE id <= ', @adl_mark),
  'DO 0');
PREPARE adl_migration FROM @adl_migration;
EXECUTE adl_migration;
DEALLOCATE PREPARE adl_migration;

-- Exactly the rows copied: a change committed since stays in the inbox and is routed
-- like any other (after the copied changes of its row, which the gates see first).
SET @adl_migration = IF(@adl_old_events > 0,
  CONCAT('DELETE e FROM ', {{events_sql}}, ' e JOIN ', {{deliveries_sql}},
    ' d ON d.destination = ''default'' AND d.id = e.id WHERE e.id <= ', @adl_mark),
  'DO 0');
PREPARE adl_migration FROM @adl_migration;
EXECUTE adl_migration;
DEALLOCATE PREPARE adl_migration;

-- The inbox keeps only the change: dispatch state lives in deliveries.
SET @adl_migration = IF(@adl_old_events > 0,
  CONCAT('ALTER TABLE ', {{events_sql}},
    ' DROP COLUMN run_at, DROP COLUMN claimed_by, DROP COLUMN claimed_until,',
    ' DROP COLUMN attempts, DROP COLUMN last_status, DROP COLUMN last_error'),
  'DO 0');
PREPARE adl_migration FROM @adl_migration;
EXECUTE adl_migration;
DEALLOCATE PREPARE adl_migration;

-- Dead letters and delivered events belong to a destination.
SET @adl_migration = IF(
  (SELECT COUNT(*) FROM information_schema.COLUMNS
   WHERE TABLE_SCHEMA = {{database_name}} AND TABLE_NAME = {{dead_letters_name}} AND COLUMN_NAME = 'destination') = 0,
  CONCAT('ALTER TABLE ', {{dead_letters_sql}},
    ' ADD COLUMN destination VARCHAR(40) NOT NULL DEFAULT ''default'' FIRST,',
    ' DROP PRIMARY KEY, ADD PRIMARY KEY (destination, id)'),
  'DO 0');
PREPARE adl_migration FROM @adl_migration;
EXECUTE adl_migration;
DEALLOCATE PREPARE adl_migration;

SET @adl_migration = IF(
  (SELECT COUNT(*) FROM information_schema.COLUMNS
   WHERE TABLE_SCHEMA = {{database_name}} AND TABLE_NAME = {{delivered_events_name}} AND COLUMN_NAME = 'destination') = 0,
  CONCAT('ALTER TABLE ', {{delivered_events_sql}},
    ' ADD COLUMN destination VARCHAR(40) NOT NULL DEFAULT ''default'' FIRST,',
    ' DROP PRIMARY KEY, ADD PRIMARY KEY (destination, id)'),
  'DO 0');
PREPARE adl_migration FROM @adl_migration;
EXECUTE adl_migration;
DEALLOCATE PREPARE adl_migration;

INSERT IGNORE INTO {{destination_tables}} (destination, schema_name, table_name, last_delivered_at)
SELECT 'default', schema_name, table_name, last_delivered_at FROM {{watched_tables}};

-- Done: the mark served only a run again of this file.
DELETE FROM {{meta}} WHERE `key` = 'destinations_upgrade_mark';
