-- Backfill: the rows a table already holds, sent as READ events beside its live changes.
--
-- A backfill reads the table in primary key order, a batch per transaction, and writes
-- each row into the capture inbox (events) as a READ event, in the same transaction
-- that locks the rows it read (FOR SHARE) and records its progress here. A writer that
-- changes one of those rows waits for that commit, so its change is captured after the
-- READ event of the row, with a higher id: the per-row order that every destination
-- keeps delivers the snapshot before the change, never after (docs/backfill.md).

-- Only for this destination, when set (backfill --destination); NULL: every destination
-- that takes the table. The capture trigger never writes it.
ALTER TABLE {{schema}}.events ADD COLUMN target text;

-- One row per backfill: what it reads, how far it got, how it is paced.
-- last_key holds the key of the last row journaled (text of each key column, in key
-- order); the next batch starts after it. rows_done and last_key are written in the
-- transaction that journals the batch, so a backfill killed at any moment resumes
-- exactly after its last committed batch.
CREATE TABLE {{schema}}.backfills (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  schema_name    text        NOT NULL,
  table_name     text        NOT NULL,
  destination    text,
  condition      text,
  key_columns    text[]      NOT NULL,
  last_key       text[],
  rows_done      bigint      NOT NULL DEFAULT 0,
  rows_estimated bigint,
  batch_size     integer     NOT NULL,
  rate           integer,
  max_backlog    integer     NOT NULL,
  -- running, done, cancelled or failed. A running backfill whose process is gone is
  -- "interrupted" (its lease, an advisory lock, is free): backfill --resume continues it.
  state          text        NOT NULL DEFAULT 'running',
  error          text,
  started_at     timestamptz NOT NULL DEFAULT now(),
  -- When the current run (the first, or the last --resume) began, and its rows then:
  -- the rate shown is that run's.
  resumed_at     timestamptz NOT NULL DEFAULT now(),
  rows_at_resume bigint      NOT NULL DEFAULT 0,
  updated_at     timestamptz NOT NULL DEFAULT now(),
  finished_at    timestamptz
);

-- At most one unfinished backfill per table and destination (NULL: all of them).
CREATE UNIQUE INDEX backfills_unfinished_idx ON {{schema}}.backfills (schema_name, table_name, coalesce(destination, ''))
  WHERE state = 'running';
