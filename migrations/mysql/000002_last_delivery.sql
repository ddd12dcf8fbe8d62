-- When an event of each watched table was last delivered (UTC), for `status`. Written
-- at most once a second per table by each daemon, apart from the outcome writes.
-- Every step may run twice (an install interrupted between DDL statements is run
-- again), and MySQL 8 has no ADD COLUMN IF NOT EXISTS: the statement is chosen
-- from information_schema.
SET @adl_migration = IF(
  (SELECT COUNT(*) FROM information_schema.COLUMNS
   WHERE TABLE_SCHEMA = {{database_name}} AND TABLE_NAME = {{watched_tables_name}}
     AND COLUMN_NAME = 'last_delivered_at') = 0,
  CONCAT('ALTER TABLE ', {{watched_tables_sql}}, ' ADD COLUMN last_delivered_at DATETIME(6) NULL'),
  'DO 0');
PREPARE adl_migration FROM @adl_migration;
EXECUTE adl_migration;
DEALLOCATE PREPARE adl_migration;
