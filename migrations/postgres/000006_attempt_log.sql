-- The attempt log: one row per delivery attempt, for the web console's "Deliveries"
-- and "Event" pages (docs/console.md). A diagnostic log, not part of the journal:
-- the daemon writes it in batches off the delivery path (entries it cannot write in
-- time are skipped and counted, never waited for) and prunes it to its bounds
-- (http.attempt_log_max_rows, http.attempt_log_max_age) with one statement.
-- id is the event's journal id (the number of its event id, the same for every
-- destination); seq orders the log and is what pruning keeps the newest of.
CREATE TABLE {{schema}}.attempts (
  seq             bigserial        PRIMARY KEY,
  destination     text             NOT NULL,
  id              bigint           NOT NULL,
  schema_name     text             NOT NULL,
  table_name      text             NOT NULL,
  op              text             NOT NULL,
  -- The row's key values, comma separated (as a CloudEvents subject), NULL without a key.
  row_key         text,
  attempt         integer          NOT NULL,
  at              timestamptz      NOT NULL,
  duration_ms     double precision NOT NULL,
  -- Where it went (URL without credentials, or the broker's address), the request
  -- headers as a JSON object with secrets redacted, and the body, cut to a bound.
  address         text             NOT NULL,
  request_headers text             NOT NULL,
  request_body    text             NOT NULL,
  response_status integer,
  -- The first 4 kB of the answer (a broker's: "ack").
  response_body   text,
  error           text,
  -- delivered, retry or dead.
  outcome         text             NOT NULL
);
CREATE INDEX attempts_id_idx ON {{schema}}.attempts (id);
CREATE INDEX attempts_at_idx ON {{schema}}.attempts (at);
