/**
 * Every statement the daemon runs against PostgreSQL at runtime, in one place.
 * Values are always parameters; the only pasted names are our own schema and the
 * watched tables, quoted by `quoteIdent`.
 */
import { createHash } from 'node:crypto';
import { quoteIdent, quoteLiteral } from './sql.js';

export type Queries = ReturnType<typeof makeQueries>;

export function makeQueries(ourSchema: string) {
  const s = quoteIdent(ourSchema);
  const events = `${s}.events`;
  const rowFields = `e.id::text AS id, e.op, e.schema_name, e.table_name,
    to_char(e.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS ts,
    (extract(epoch FROM e.created_at) * 1000)::float8 AS created_ms,
    e.new_row::text AS new_row, e.old_row::text AS old_row, e.attempts,
    e.claimed_until::text AS token`;
  return {
    /** Short, stable identifier of our schema, for naming prepared statements. */
    schemaKey: createHash('sha1').update(ourSchema).digest('hex').slice(0, 8),
    /** Key of the advisory lock a waiting daemon holds (see the migration), as text. */
    waitLockKey: waitLockKey(ourSchema),
    /**
     * The claim. One statement, autocommit:
     * - due events only (run_at NULL or past) that nobody holds, or whose holder's lease ran out;
     * - the ordering gate: an event is eligible only if no earlier event of the same row
     *   (same row_hash) is still in the journal, pending, retrying or in flight, whoever
     *   holds it. Row locks make the trigger's ids follow commit order for one row, so
     *   "earlier id" is "committed earlier". A failing event blocks only its own row;
     * - two sources of candidates:
     *   - the walk: oldest first through the primary key, inside a window of CLAIM_WINDOW
     *     ids that starts at the caller's floor (see PgJournal.claim), gated per candidate;
     *   - the heads of busy rows: for each row hash the caller passes (rows whose event
     *     this instance just settled while more of the row's events waited), the row's
     *     oldest event, found through the gate's index. It is the row's head by
     *     definition, so it needs no gate. A row with a backlog of 100,000 (a counter
     *     updated in a loop) moves on at one event per claim this way, while the walk,
     *     bounded by its window, never reads more than CLAIM_WINDOW of its waiting
     *     events (they fail the gate at ~3 µs each: an unbounded walk over that row
     *     took ~0.5 s per claim and slowed every other row);
     *   heads come first, then the walk, oldest first;
     * - FOR UPDATE SKIP LOCKED so instances never wait on each other's claims;
     * - LIMIT = the caller's free delivery slots, never more;
     * - only the tables this daemon is configured for: daemons with different
     *   configs may share one journal (one process per table, as with the original).
     * The lease end (claimed_until) doubles as the claim's token: every outcome is
     * written only if the event is still held by the same claim, so a late write
     * from an earlier claim of the same event can never act on a newer one.
     * The table filter is spelled out as (schema, table) pairs: a filter the scan
     * applies row by row, so the plan stays an index walk in id order that stops
     * after LIMIT rows (a join against the table list let the planner scan and sort
     * the whole journal when its statistics were fresh: 15 ms per claim at 10k rows).
     * Plans must not depend on statistics: a prepared statement's generic plan is
     * often made while the journal is empty. So the claimed rows are updated through
     * "id = ANY (ARRAY(...))" (an index lookup, where a join against the CTE could
     * read the journal whole), outcome writes repeat "id = ANY ($1)" for the same
     * reason, and
     * the gate is a correlated subquery, not NOT EXISTS: the planner may turn NOT
     * EXISTS into a join, and a prepared statement's generic plan made while the
     * journal was empty then scans the whole gate index for every candidate (440 ms
     * per claim at 200,000 events); a subquery always probes the index by row.
     * The floor: delivered events leave dead index entries at the head of the journal
     * until vacuum, which every claim from the start would walk over (a drain of
     * 1,000,000 slowed from ~5,500 to ~3,100 events/s), so the walk starts where the
     * caller says; a floor of 0 starts at the journal's lowest id, read in this
     * statement's snapshot, so a late commit is never missed.
     * Every row returned carries the walk's window (lo), how many candidates the walk
     * found and the lowest, and, when the walk came back short, the first id past the
     * window; with nothing claimed, one row of only those. Each claimed event says
     * whether more events of its row waited (has_next): only those rows are passed
     * back as heads to look up.
     * Params: $1 limit, $2 instance id, $3 lease in ms, then a schema and a table
     * per watched table, then the floor (0: from the start), the window in ids, and
     * the row hashes whose heads to claim (bigint[]).
     */
    claim: (tableCount: number) => {
      const floor = `$${4 + 2 * tableCount}::bigint`;
      const window = `$${5 + 2 * tableCount}::bigint`;
      const hashes = `$${6 + 2 * tableCount}::bigint[]`;
      const eligible = `(e.run_at IS NULL OR e.run_at <= now())
          AND (e.claimed_by IS NULL OR e.claimed_until < now())
          AND (${tablePredicate(tableCount, 4)})`;
      return `
      WITH lo AS (
        SELECT CASE WHEN ${floor} > 0 THEN ${floor} ELSE (SELECT min(f.id) FROM ${events} f) END AS id
      ),
      walk AS MATERIALIZED (
        SELECT e.id FROM ${events} e
        WHERE e.id >= (SELECT id FROM lo) AND e.id < (SELECT id FROM lo) + ${window}
          AND ${eligible}
          AND (SELECT p.id FROM ${events} p
               WHERE p.row_hash = e.row_hash AND p.id < e.id LIMIT 1) IS NULL
        ORDER BY e.id
        LIMIT $1
      ),
      heads AS MATERIALIZED (
        SELECT (SELECT p.id FROM ${events} p WHERE p.row_hash = h.row_hash ORDER BY p.id LIMIT 1) AS id
        FROM unnest(${hashes}) AS h(row_hash)
      ),
      next AS (
        SELECT e.id FROM ${events} e
        WHERE e.id = ANY (ARRAY(SELECT id FROM walk UNION ALL SELECT id FROM heads WHERE id IS NOT NULL))
          AND ${eligible}
        ORDER BY e.id = ANY (ARRAY(SELECT id FROM heads WHERE id IS NOT NULL)) DESC, e.id
        LIMIT $1
        FOR UPDATE SKIP LOCKED
      ),
      claimed AS (
        UPDATE ${events} e
        SET claimed_by = $2, claimed_until = now() + $3::integer * interval '1 millisecond',
            attempts = e.attempts + 1
        WHERE e.id = ANY (ARRAY(SELECT id FROM next))
        RETURNING ${rowFields}, e.row_hash::text AS row_hash,
          EXISTS (SELECT 1 FROM ${events} p WHERE p.row_hash = e.row_hash AND p.id > e.id) AS has_next
      )
      SELECT c.*, w.lo, w.walked, w.walk_min, w.next_lo
      FROM (
        SELECT (SELECT id FROM lo)::text AS lo, (SELECT count(*) FROM walk)::int AS walked,
               (SELECT min(id) FROM walk)::text AS walk_min,
               CASE WHEN (SELECT count(*) FROM walk) < $1
                 THEN (SELECT min(f.id) FROM ${events} f WHERE f.id >= (SELECT id FROM lo) + ${window})::text END AS next_lo
      ) w
      LEFT JOIN claimed c ON true`;
    },

    /** $1 ids, $2 claim tokens, $3 instance id. */
    deleteDelivered: `
      DELETE FROM ${events} e USING unnest($1::bigint[], $2::timestamptz[]) AS u(id, token)
      WHERE e.id = ANY ($1::bigint[]) AND e.id = u.id AND e.claimed_by = $3 AND e.claimed_until = u.token`,

    /** Same as deleteDelivered, keeping a copy for the retention period. */
    moveDelivered: `
      WITH d AS (
        DELETE FROM ${events} e USING unnest($1::bigint[], $2::timestamptz[]) AS u(id, token)
        WHERE e.id = ANY ($1::bigint[]) AND e.id = u.id AND e.claimed_by = $3 AND e.claimed_until = u.token
        RETURNING e.id, e.op, e.schema_name, e.table_name, e.row_hash, e.new_row, e.old_row, e.txid, e.created_at, e.attempts)
      INSERT INTO ${s}.delivered_events
        (id, op, schema_name, table_name, row_hash, new_row, old_row, txid, created_at, attempts)
      SELECT id, op, schema_name, table_name, row_hash, new_row, old_row, txid, created_at, attempts FROM d
      ON CONFLICT (id) DO NOTHING`,

    /** $1 ids, $2 claim tokens, $3 delays in ms, $4 refunds (0|1), $5 statuses, $6 errors (NULL keeps the last one), $7 instance id. */
    scheduleRetry: `
      UPDATE ${events} e
      SET claimed_by = NULL, claimed_until = NULL,
          run_at = now() + u.delay_ms * interval '1 millisecond',
          attempts = greatest(e.attempts - u.refund, 0),
          last_status = CASE WHEN u.error IS NULL THEN e.last_status ELSE u.status END,
          last_error = coalesce(u.error, e.last_error)
      FROM unnest($1::bigint[], $2::timestamptz[], $3::integer[], $4::integer[], $5::integer[], $6::text[])
        AS u(id, token, delay_ms, refund, status, error)
      WHERE e.id = ANY ($1::bigint[]) AND e.id = u.id AND e.claimed_by = $7 AND e.claimed_until = u.token`,

    /** $1 ids, $2 claim tokens, $3 statuses, $4 errors, $5 instance id. */
    moveToDeadLetters: `
      WITH u AS (
        SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::integer[], $4::text[]) AS u(id, token, status, error)),
      d AS (
        DELETE FROM ${events} e USING u
        WHERE e.id = ANY ($1::bigint[]) AND e.id = u.id AND e.claimed_by = $5 AND e.claimed_until = u.token
        RETURNING e.id, e.op, e.schema_name, e.table_name, e.row_hash, e.new_row, e.old_row,
                  e.txid, e.created_at, e.attempts, u.status, u.error)
      INSERT INTO ${s}.dead_letters
        (id, op, schema_name, table_name, row_hash, new_row, old_row, txid, created_at,
         attempts, last_status, last_error)
      SELECT id, op, schema_name, table_name, row_hash, new_row, old_row, txid, created_at,
             attempts, status, error FROM d
      ON CONFLICT (id) DO UPDATE SET attempts = EXCLUDED.attempts, last_status = EXCLUDED.last_status,
        last_error = EXCLUDED.last_error, failed_at = now()`,

    /**
     * The endpoint answers again: retries waiting for a later time become due now.
     * $1 schemas, $2 tables (this daemon's).
     */
    retryNow: `
      UPDATE ${events} SET run_at = now()
      WHERE run_at > now() AND (claimed_by IS NULL OR claimed_until < now())
        AND (schema_name, table_name) IN (SELECT * FROM unnest($1::text[], $2::text[]))`,

    /** $1 instance id. Gives back unfinished claims without counting their attempt. */
    releaseClaims: `
      UPDATE ${events} SET claimed_by = NULL, claimed_until = NULL,
        attempts = greatest(attempts - 1, 0)
      WHERE claimed_by = $1`,

    /** $1 LIKE pattern of instance ids on this host. */
    claimHolders: `SELECT DISTINCT claimed_by FROM ${events} WHERE claimed_by LIKE $1 AND claimed_until > now()`,
    /** $1 instance ids. Ends the claims of processes known to be dead; their lease need not run out. */
    releaseClaimsOf: `
      UPDATE ${events} SET claimed_by = NULL, claimed_until = NULL
      WHERE claimed_by = ANY($1::text[])`,

    /** $1 wait lock key. Held (on the LISTEN connection) while the daemon sleeps. */
    tryWaitLock: `
      SELECT pg_try_advisory_lock($1::bigint) AS ok,
        EXISTS (
          SELECT 1 FROM pg_locks
          WHERE locktype = 'advisory' AND mode = 'ExclusiveLock' AND granted AND objsubid = 1
            AND pid <> pg_backend_pid() AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
            AND ((classid::bigint << 32) | objid::bigint) = $1::bigint) AS other_waits`,
    /** $1 wait lock key. */
    releaseWaitLock: `SELECT pg_advisory_unlock($1::bigint) AS ok`,

    /** $1 retention in seconds. */
    purgeDelivered: `DELETE FROM ${s}.delivered_events WHERE delivered_at < now() - $1::integer * interval '1 second'`,

    /**
     * The backlog per watched table, for the metrics: events still in the journal
     * (waiting, retrying or in flight), the age of the oldest, and dead letters.
     * Cost is bounded on a journal of any size: only the oldest $3 rows of the
     * journal (and of dead letters) are read, walking the primary key (100,000 rows:
     * about 60 ms, against 240 ms for a full count of 1M rows), so counts stop at $3;
     * a table's oldest age is exact whenever it has an event among them.
     * $1 schemas, $2 tables (this daemon's), $3 rows read at most.
     */
    backlog: `
      WITH j AS (
        SELECT schema_name, table_name, count(*)::int AS pending, min(created_at) AS oldest
        FROM (SELECT schema_name, table_name, created_at FROM ${events} ORDER BY id LIMIT $3) h
        GROUP BY 1, 2),
      dl AS (
        SELECT schema_name, table_name, count(*)::int AS dead
        FROM (SELECT schema_name, table_name FROM ${s}.dead_letters ORDER BY id LIMIT $3) h
        GROUP BY 1, 2)
      SELECT t.schema_name, t.table_name, coalesce(j.pending, 0) AS pending,
             coalesce(extract(epoch FROM now() - j.oldest), 0)::float8 AS oldest_s,
             coalesce(dl.dead, 0) AS dead_letters
      FROM unnest($1::text[], $2::text[]) AS t(schema_name, table_name)
      LEFT JOIN j ON j.schema_name = t.schema_name AND j.table_name = t.table_name
      LEFT JOIN dl ON dl.schema_name = t.schema_name AND dl.table_name = t.table_name`,

    installationId: `SELECT value FROM ${s}.meta WHERE key = 'installation_id'`,
    /**
     * Fresh statistics for the claim's plan: without them (a new journal that filled
     * up before autovacuum looked at it) the planner expects one row and sorts the
     * whole journal on every claim instead of walking the primary key.
     */
    analyzeJournal: `ANALYZE ${events}`,

    listenChannel: `LISTEN ${quoteIdent(ourSchema)}`,
    /** The channel as the trigger names it in pg_notify. */
    channelLiteral: quoteLiteral(ourSchema),

    // ---- Operator commands (dead letters, status). Filters: $1 ids (bigint[] or NULL),
    // $2 schema (or NULL), $3 table (or NULL), $4 time bound (or NULL).

    /** $1..$4 filters (time: failed at or after), $5 limit. */
    listDeadLetters: `
      SELECT id::text AS id, op, schema_name, table_name, attempts, last_status, last_error,
             to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS created_at,
             to_char(failed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS failed_at,
             new_row::text AS new_row, old_row::text AS old_row
      FROM ${s}.dead_letters
      WHERE ($1::bigint[] IS NULL OR id = ANY ($1::bigint[]))
        AND ($2::text IS NULL OR schema_name = $2) AND ($3::text IS NULL OR table_name = $3)
        AND ($4::timestamptz IS NULL OR failed_at >= $4)
      ORDER BY id
      LIMIT $5`,

    /**
     * Moves dead letters back into the journal with their original id (so the event id
     * is unchanged) and a fresh attempt count. $1..$4 filters (time: failed at or after).
     */
    replayDeadLetters: `
      WITH d AS (
        DELETE FROM ${s}.dead_letters
        WHERE ($1::bigint[] IS NULL OR id = ANY ($1::bigint[]))
          AND ($2::text IS NULL OR schema_name = $2) AND ($3::text IS NULL OR table_name = $3)
          AND ($4::timestamptz IS NULL OR failed_at >= $4)
        RETURNING id, op, schema_name, table_name, row_hash, new_row, old_row, txid, created_at)
      INSERT INTO ${events} (id, op, schema_name, table_name, row_hash, new_row, old_row, txid, created_at)
      OVERRIDING SYSTEM VALUE
      SELECT id, op, schema_name, table_name, row_hash, new_row, old_row, txid, created_at FROM d
      RETURNING id::text AS id`,

    /** $1..$4 filters (time: failed before). */
    purgeDeadLetters: `
      DELETE FROM ${s}.dead_letters
      WHERE ($1::bigint[] IS NULL OR id = ANY ($1::bigint[]))
        AND ($2::text IS NULL OR schema_name = $2) AND ($3::text IS NULL OR table_name = $3)
        AND ($4::timestamptz IS NULL OR failed_at < $4)
      RETURNING id::text AS id`,

    /** Per watched table: what waits, what retries, what is in flight, what is dead. */
    status: `
      WITH j AS (
        SELECT schema_name, table_name,
               count(*) FILTER (WHERE (claimed_by IS NULL OR claimed_until < now())
                                  AND (run_at IS NULL OR run_at <= now())) AS pending,
               count(*) FILTER (WHERE (claimed_by IS NULL OR claimed_until < now()) AND run_at > now()) AS retrying,
               count(*) FILTER (WHERE claimed_by IS NOT NULL AND claimed_until >= now()) AS in_flight,
               extract(epoch FROM now() - min(created_at))::float8 AS oldest_age_s
        FROM ${events} GROUP BY 1, 2),
      dl AS (
        SELECT schema_name, table_name, count(*) AS dead FROM ${s}.dead_letters GROUP BY 1, 2)
      SELECT w.schema_name, w.table_name, w.operations,
             coalesce(j.pending, 0)::int AS pending, coalesce(j.retrying, 0)::int AS retrying,
             coalesce(j.in_flight, 0)::int AS in_flight, coalesce(dl.dead, 0)::int AS dead_letters,
             j.oldest_age_s, w.last_delivered_at
      FROM ${s}.watched_tables w
      LEFT JOIN j USING (schema_name, table_name)
      LEFT JOIN dl USING (schema_name, table_name)
      ORDER BY 1, 2`,

    /** $1 schema, $2 table. A daemon touching the row at this moment already sets it. */
    touchLastDelivery: `
      UPDATE ${s}.watched_tables w SET last_delivered_at = now()
      FROM (SELECT schema_name, table_name FROM ${s}.watched_tables
            WHERE schema_name = $1 AND table_name = $2 FOR UPDATE SKIP LOCKED) t
      WHERE w.schema_name = t.schema_name AND w.table_name = t.table_name`,

    /** Wakes every daemon (after a replay). */
    notify: `SELECT pg_notify($1, '')`,

    /** Latest applied migration, or an error if our schema is missing. */
    schemaVersion: `SELECT coalesce(max(version), 0) AS version FROM ${s}.migrations`,

    // ---- doctor: read-only checks of the server, the privileges and what is installed.

    serverVersion: `SELECT current_setting('server_version_num')::integer AS num, current_setting('server_version') AS version`,

    /** $1 our schema's name. What the connected role may do with the database and our schema. */
    schemaPrivileges: `
      SELECT current_user AS role, current_database() AS database,
             has_database_privilege(current_database(), 'CREATE') AS database_create,
             n.oid IS NOT NULL AS schema_exists,
             coalesce(pg_has_role(n.nspowner, 'USAGE'), false) AS schema_owner,
             coalesce(has_schema_privilege(n.oid, 'USAGE'), false) AS schema_usage
      FROM (SELECT 1) one LEFT JOIN pg_namespace n ON n.nspname = $1`,

    /**
     * $1 our schema's name. Our tables the daemon cannot use: it reads them all, and
     * writes the journal's three (has_table_privilege with a list means "any of").
     */
    journalTablesDenied: `
      SELECT c.relname AS table_name
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')
        AND NOT (has_table_privilege(c.oid, 'SELECT')
             AND (c.relname NOT IN ('events', 'dead_letters', 'delivered_events')
                  OR (has_table_privilege(c.oid, 'INSERT') AND has_table_privilege(c.oid, 'UPDATE')
                      AND has_table_privilege(c.oid, 'DELETE'))))
      ORDER BY 1`,

    /** $1 a watched table (qualified, quoted). */
    tableTriggerPrivilege: `SELECT has_table_privilege($1::regclass, 'TRIGGER') AS ok`,

    /** $1 a watched table (qualified, quoted), $2 our trigger's name. No row: no trigger; 'D': disabled. */
    captureTrigger: `SELECT tgenabled AS enabled FROM pg_trigger WHERE tgrelid = to_regclass($1) AND tgname = $2 AND NOT tgisinternal`,

    /** Whether our migrations table exists (nothing is installed without it). */
    migrationsTableExists: `SELECT to_regclass(${quoteLiteral(`${s}.migrations`)}) IS NOT NULL AS ok`,
  };
}

/** A signed 64-bit advisory lock key derived from our schema name, stable across versions. */
export function waitLockKey(ourSchema: string): string {
  return createHash('sha1').update(`app-db-listener:wait:${ourSchema}`).digest().readBigInt64BE(0).toString();
}

/** `(e.schema_name = $k AND e.table_name = $k+1) OR …` for `count` tables, from parameter `first`. */
function tablePredicate(count: number, first: number): string {
  if (count === 0) return 'false';
  return Array.from({ length: count }, (_, i) => `(e.schema_name = $${first + 2 * i} AND e.table_name = $${first + 2 * i + 1})`).join(' OR ');
}
