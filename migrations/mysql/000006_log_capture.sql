-- Log capture (listener.capture: log): how far the binlog reader got, and room for
-- TRUNCATE events.
--
-- The reader writes the changes it decodes from the binary log into events, as the
-- triggers do, and in the same transaction records here the binlog position just
-- after the last source transaction those events cover. After a crash it reads the
-- binlog again from that position: each source transaction reaches the journal
-- exactly once. Trigger capture never writes this table. Safe to run twice.
CREATE TABLE IF NOT EXISTS {{capture_positions}} (
  stream_name  VARCHAR(64)     NOT NULL,
  binlog_file  VARCHAR(255)    NOT NULL,
  binlog_pos   BIGINT UNSIGNED NOT NULL,
  -- The last journaled transaction's GTID (MariaDB domain-server-sequence, MySQL
  -- uuid:number), for people: the position above is what the reader resumes from.
  gtid         VARCHAR(255)    NULL,
  commit_time  DATETIME(6)     NULL,
  updated_at   DATETIME(6)     NOT NULL,
  PRIMARY KEY (stream_name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- 'TRUNCATE' (a whole table emptied, an event of its own) is longer than the six
-- characters INSERT, UPDATE, DELETE and READ needed. Widening a VARCHAR within its
-- length byte is done in place (no table copy); running it again changes nothing.
ALTER TABLE {{events}} MODIFY op VARCHAR(8) NOT NULL;
ALTER TABLE {{deliveries}} MODIFY op VARCHAR(8) NOT NULL;
ALTER TABLE {{dead_letters}} MODIFY op VARCHAR(8) NOT NULL;
ALTER TABLE {{delivered_events}} MODIFY op VARCHAR(8) NOT NULL;
ALTER TABLE {{attempts}} MODIFY op VARCHAR(8) NOT NULL;
