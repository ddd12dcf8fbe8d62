-- app-db-listener: the journal, dead letters and bookkeeping, for MySQL 8.0 and MariaDB 10.6+.
--
-- MySQL has no schemas inside a database, so our tables live in the watched
-- database, named with the listener.schema prefix (app_db_listener_events, ...).
-- The installer fills in the placeholders: meta, events, dead_letters,
-- delivered_events, watched_tables (each a quoted table name) and installation_id
-- (a string literal). The capture triggers are generated per watched table from
-- information_schema by the installer; they are not part of any migration.
--
-- MySQL DDL is not transactional: an install that fails half-way leaves what it
-- did, and the next one runs this file again. So every statement here is safe to
-- run twice (IF NOT EXISTS, no-op upserts), and the runner records the version last.
-- Indexes are declared inside CREATE TABLE: MySQL has no CREATE INDEX IF NOT EXISTS.
-- Never edit a migration that has shipped: add a new numbered file instead.
--
-- Times are DATETIME(6) holding UTC, always written and compared with
-- UTC_TIMESTAMP(6): a TIMESTAMP column would follow each session's time zone.
-- Names and text are utf8mb4 with a binary collation: table names compare exactly,
-- as they are written.

-- Facts about this installation. installation_id makes event ids unique across
-- databases and reinstalls: an event id is evt_<installation_id>_<events.id>.
CREATE TABLE IF NOT EXISTS {{meta}} (
  `key`   VARCHAR(64)  NOT NULL,
  `value` VARCHAR(255) NOT NULL,
  PRIMARY KEY (`key`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- A second run keeps the first id.
INSERT INTO {{meta}} (`key`, `value`) VALUES ('installation_id', {{installation_id}})
ON DUPLICATE KEY UPDATE `key` = `key`;

-- One row per captured change, written by the capture triggers inside the writer's
-- transaction: the change is durable the moment that transaction commits.
-- A row stays here until its webhook succeeded (then it is deleted, or moved to
-- delivered_events when a retention is configured) or it went to dead_letters.
--
-- new_row and old_row hold the JSON text the trigger built, as LONGTEXT: the JSON
-- type would re-serialise it (MySQL sorts object keys and may turn 12.50 into a
-- double), and the daemon sends this text as it is.
-- txid: MySQL gives a trigger no cheap transaction id; this is the writer's
-- CONNECTION_ID(), which groups the changes of one session.
-- The writer pays for every index here: two (the key and the ordering gate).
CREATE TABLE IF NOT EXISTS {{events}} (
  id            BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  op            VARCHAR(6)      NOT NULL,
  schema_name   VARCHAR(64)     NOT NULL,
  table_name    VARCHAR(64)     NOT NULL,
  -- Hash of the table and the changed row's primary key (NULL for a table without
  -- one): the first 64 bits of a SHA-1, as a signed BIGINT. Events that share it
  -- are delivered one at a time in commit order; a collision can only make
  -- ordering stricter, never looser.
  row_hash      BIGINT          NULL,
  new_row       LONGTEXT        NULL,
  old_row       LONGTEXT        NULL,
  txid          BIGINT UNSIGNED NOT NULL,
  created_at    DATETIME(6)     NOT NULL,
  -- Dispatch state. run_at: NULL = due since creation, else the next retry time.
  -- A claim sets claimed_by and a lease end (claimed_until), which is also the
  -- claim's token.
  run_at        DATETIME(6)     NULL,
  claimed_by    VARCHAR(255)    NULL,
  claimed_until DATETIME(6)     NULL,
  attempts      INT             NOT NULL DEFAULT 0,
  last_status   INT             NULL,
  last_error    TEXT            NULL,
  PRIMARY KEY (id),
  -- The ordering gate looks up earlier events of the same row here.
  KEY row_hash_idx (row_hash, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Events whose delivery was refused (4xx) or whose retries ran out. Kept until
-- replayed or purged; a replay moves the row back into events with the same id.
CREATE TABLE IF NOT EXISTS {{dead_letters}} (
  id            BIGINT UNSIGNED NOT NULL,
  op            VARCHAR(6)      NOT NULL,
  schema_name   VARCHAR(64)     NOT NULL,
  table_name    VARCHAR(64)     NOT NULL,
  row_hash      BIGINT          NULL,
  new_row       LONGTEXT        NULL,
  old_row       LONGTEXT        NULL,
  txid          BIGINT UNSIGNED NOT NULL,
  created_at    DATETIME(6)     NOT NULL,
  attempts      INT             NOT NULL,
  last_status   INT             NULL,
  last_error    TEXT            NULL,
  failed_at     DATETIME(6)     NOT NULL,
  PRIMARY KEY (id),
  KEY table_idx (table_name, schema_name, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Delivered events, only when listener.retention > 0; removed after the retention.
CREATE TABLE IF NOT EXISTS {{delivered_events}} (
  id            BIGINT UNSIGNED NOT NULL,
  op            VARCHAR(6)      NOT NULL,
  schema_name   VARCHAR(64)     NOT NULL,
  table_name    VARCHAR(64)     NOT NULL,
  row_hash      BIGINT          NULL,
  new_row       LONGTEXT        NULL,
  old_row       LONGTEXT        NULL,
  txid          BIGINT UNSIGNED NOT NULL,
  created_at    DATETIME(6)     NOT NULL,
  attempts      INT             NOT NULL,
  delivered_at  DATETIME(6)     NOT NULL,
  PRIMARY KEY (id),
  KEY delivered_at_idx (delivered_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The tables we watch, for status, doctor, uninstall and schema drift.
-- operations: comma-separated (INSERT,UPDATE,DELETE); key_columns: a JSON array.
-- trigger_fingerprint: SHA-1 of the trigger SQL installed for the table. The
-- installer regenerates that SQL from information_schema and compares: a column
-- added, dropped, renamed or retyped changes it, and the triggers are re-created.
CREATE TABLE IF NOT EXISTS {{watched_tables}} (
  schema_name         VARCHAR(64)  NOT NULL,
  table_name          VARCHAR(64)  NOT NULL,
  operations          VARCHAR(32)  NOT NULL,
  key_columns         TEXT         NOT NULL,
  trigger_fingerprint CHAR(40)     NOT NULL,
  installed_at        DATETIME(6)  NOT NULL,
  PRIMARY KEY (schema_name, table_name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
