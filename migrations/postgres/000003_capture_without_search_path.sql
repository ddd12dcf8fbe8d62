-- The capture function without a SET search_path clause: on PostgreSQL 15 setting and
-- restoring search_path around every call recomputed the namespace path twice per
-- captured row, about 10% of a single-row INSERT's throughput at 16 writers.
--
-- The function stays SECURITY DEFINER, so it must not resolve anything through the
-- caller's search_path: every type, function and operator below is qualified with
-- pg_catalog, and our table with our schema. (coalesce and IF/LOOP are syntax, not
-- lookups.) test/integration/pg-install.test.ts writes through a search_path that puts
-- look-alike functions and operators first, and checks they are never used.
CREATE OR REPLACE FUNCTION {{schema}}.capture_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
  v_new pg_catalog.json;
  v_old pg_catalog.json;
  v_key pg_catalog.text;
  i pg_catalog.int4;
BEGIN
  IF TG_OP OPERATOR(pg_catalog.<>) 'DELETE' THEN v_new := pg_catalog.row_to_json(NEW); END IF;
  IF TG_OP OPERATOR(pg_catalog.<>) 'INSERT' THEN v_old := pg_catalog.row_to_json(OLD); END IF;
  IF TG_NARGS OPERATOR(pg_catalog.=) 3 THEN
    v_key := coalesce(v_new, v_old) OPERATOR(pg_catalog.->>) TG_ARGV[2];
  ELSIF TG_NARGS OPERATOR(pg_catalog.>) 3 THEN
    v_key := '';
    FOR i IN 2 .. TG_NARGS OPERATOR(pg_catalog.-) 1 LOOP
      v_key := v_key
        OPERATOR(pg_catalog.||) coalesce(pg_catalog.quote_literal(coalesce(v_new, v_old) OPERATOR(pg_catalog.->>) TG_ARGV[i]), 'NULL')
        OPERATOR(pg_catalog.||) ',';
    END LOOP;
  END IF;
  INSERT INTO {{schema}}.events (op, schema_name, table_name, row_hash, new_row, old_row, txid)
  VALUES (TG_OP, TG_ARGV[0], TG_ARGV[1],
          pg_catalog.hashtextextended(
            TG_ARGV[0] OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) TG_ARGV[1]
              OPERATOR(pg_catalog.||) ':' OPERATOR(pg_catalog.||) v_key, 0),
          v_new, v_old, pg_catalog.txid_current());
  IF NOT pg_catalog.pg_try_advisory_xact_lock_shared({{wait_lock}}) THEN
    PERFORM pg_catalog.pg_notify({{channel}}, '');
  END IF;
  RETURN NULL;
END
$$;
ALTER FUNCTION {{schema}}.capture_change() RESET ALL;
