-- Log capture (listener.capture: log): how far the logical replication reader got.
--
-- The reader writes the changes it decodes into events, as the trigger does, and in
-- the same transaction records here the commit LSN of the last source transaction
-- those events cover. Only after that transaction commits does it confirm the
-- position to the replication slot. After a crash, the slot sends again what was not
-- confirmed, and every transaction whose commit LSN is at or below commit_lsn is
-- skipped: each source transaction reaches the journal exactly once.
-- Trigger capture never writes this table.
CREATE TABLE {{schema}}.capture_positions (
  slot_name   text        PRIMARY KEY,
  commit_lsn  pg_lsn      NOT NULL,
  end_lsn     pg_lsn      NOT NULL,
  commit_time timestamptz,
  updated_at  timestamptz NOT NULL DEFAULT now()
);
