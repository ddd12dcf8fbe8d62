-- The attempt log: one row per delivery attempt, for the web console's "Deliveries"
-- and "Event" pages (docs/console.md). A diagnostic log, not part of the journal:
-- the daemon writes it in batches off the delivery path (entries it cannot write in
-- time are skipped and counted, never waited for) and prunes it to its bounds
-- (http.attempt_log_max_rows, http.attempt_log_max_age). id is the event's journal
-- id; seq orders the log. Safe to run twice (IF NOT EXISTS).
CREATE TABLE IF NOT EXISTS {{attempts}} (
  seq             BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  destination     VARCHAR(40)     NOT NULL,
  id              BIGINT UNSIGNED NOT NULL,
  schema_name     VARCHAR(64)     NOT NULL,
  table_name      VARCHAR(64)     NOT NULL,
  op              VARCHAR(6)      NOT NULL,
  -- The row's key values, comma separated (as a CloudEvents subject), NULL without a key.
  row_key         VARCHAR(1024)   NULL,
  attempt         INT             NOT NULL,
  at              DATETIME(6)     NOT NULL,
  duration_ms     DOUBLE          NOT NULL,
  address         TEXT            NOT NULL,
  request_headers TEXT            NOT NULL,
  request_body    MEDIUMTEXT      NOT NULL,
  response_status INT             NULL,
  -- The first 4 kB of the answer (a broker's: "ack").
  response_body   TEXT            NULL,
  error           TEXT            NULL,
  -- delivered, retry or dead.
  outcome         VARCHAR(9)      NOT NULL,
  PRIMARY KEY (seq),
  KEY id_idx (id),
  KEY at_idx (at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
