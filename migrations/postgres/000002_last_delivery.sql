-- When an event of each watched table was last delivered, for `status`. Written at most
-- once a second per table by each daemon, apart from the outcome writes.
ALTER TABLE {{schema}}.watched_tables ADD COLUMN last_delivered_at timestamptz;
