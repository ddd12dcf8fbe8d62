-- Backfill: the rows a table already holds, sent as READ events beside its live changes.
--
-- A backfill reads the table in primary key order, a batch per transaction, and writes
-- each row into the capture inbox (events) as a READ event, in the same transaction
-- that locks the rows it read (LOCK IN SHARE MODE) and records its progress here. A
-- writer that changes one of those rows waits for that commit, so its change is
-- captured after the READ event of the row, with a higher id: the per-row order that
-- every destination keeps delivers the snapshot before the change, never after
-- (docs/backfill.md). Every step may run twice (see 000003).

-- Only for this destination, when set (backfill --destination); NULL: every destination
-- that takes the table. The capture triggers never write it.
SET @adl_migration = IF(
  (SELECT COUNT(*) FROM information_schema.COLUMNS
   WHERE TABLE_SCHEMA = {{database_name}} AND TABLE_NAME = {{events_name}} AND COLUMN_NAME = 'target') = 0,
  CONCAT('ALTER TABLE ', {{events_sql}}, ' ADD COLUMN target VARCHAR(40) NULL'),
  'DO 0');
PREPARE adl_migration FROM @adl_migration;
EXECUTE adl_migration;
DEALLOCATE PREPARE adl_migration;

-- One row per backfill: what it reads, how far it got, how it is paced. last_key is a
-- JSON array of the last journaled row's key values (as text, in key order), written
-- in the transaction that journals the batch: a backfill killed at any moment resumes
-- exactly after its last committed batch. Times are UTC.
-- state: running, done, cancelled or failed; a running backfill whose process is gone
-- is "interrupted" (its lease, a GET_LOCK, is free): backfill --resume continues it.
-- active_key is the (table, destination) of an unfinished backfill and NULL once it
-- ends: the unique key allows one unfinished backfill per table and destination.
CREATE TABLE IF NOT EXISTS {{backfills}} (
  id             BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  schema_name    VARCHAR(64)     NOT NULL,
  table_name     VARCHAR(64)     NOT NULL,
  destination    VARCHAR(40)     NULL,
  `condition`    TEXT            NULL,
  key_columns    TEXT            NOT NULL,
  last_key       LONGTEXT        NULL,
  rows_done      BIGINT UNSIGNED NOT NULL DEFAULT 0,
  rows_estimated BIGINT UNSIGNED NULL,
  batch_size     INT             NOT NULL,
  rate           INT             NULL,
  max_backlog    INT             NOT NULL,
  state          VARCHAR(10)     NOT NULL DEFAULT 'running',
  active_key     VARCHAR(180)    NULL,
  error          TEXT            NULL,
  started_at     DATETIME(6)     NOT NULL,
  resumed_at     DATETIME(6)     NOT NULL,
  rows_at_resume BIGINT UNSIGNED NOT NULL DEFAULT 0,
  updated_at     DATETIME(6)     NOT NULL,
  finished_at    DATETIME(6)     NULL,
  PRIMARY KEY (id),
  UNIQUE KEY unfinished_idx (active_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
