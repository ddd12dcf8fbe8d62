/**
 * Every statement the daemon runs against PostgreSQL at runtime, in one place.
 * Values are always parameters; the only pasted names are our own schema and the
 * watched tables, quoted by `quoteIdent`.
 */
import { createHash } from 'node:crypto';
import { qualify, quoteIdent, quoteLiteral } from './sql.js';

export type Queries = ReturnType<typeof makeQueries>;

export function makeQueries(ourSchema: string) {
  const s = quoteIdent(ourSchema);
  const events = `${s}.events`;
  const deliveries = `${s}.deliveries`;
  /**
   * An outcome batch joined to the deliveries its claims still hold: `x.tid` is each
   * one's ctid (one primary key probe per event, whatever the statistics say), and the
   * statement reaches the row by TID. The statement repeats the claim's test on the row
   * it reaches: a TID scan's recheck does not, so a claim taken over while the statement
   * waited for the row (a newer version, another token) would otherwise be acted on. `rows` is the unnest(...) AS x(...)
   * of the batch, with its id and token columns named id and token.
   */
  const held = (rows: string, instance: string, destination: string) => `(
        SELECT x.*, (SELECT d.ctid FROM ${deliveries} d
                     WHERE d.destination = ${destination} AND d.id = x.id
                       AND d.claimed_by = ${instance} AND d.claimed_until = x.token) AS tid
        FROM ${rows}) x`;
  const rowFields = `e.id::text AS id, e.op, e.schema_name, e.table_name,
    to_char(e.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS ts,
    (extract(epoch FROM e.created_at) * 1000)::float8 AS created_ms,
    e.new_row::text AS new_row, e.old_row::text AS old_row, e.attempts,
    e.claimed_until::text AS token`;
  return {
    /** Our schema's name (unquoted). */
    schemaName: ourSchema,
    /** Short, stable identifier of our schema, for naming prepared statements. */
    schemaKey: createHash('sha1').update(ourSchema).digest('hex').slice(0, 8),
    /** Key of the advisory lock a waiting daemon holds (see the migration), as text. */
    waitLockKey: waitLockKey(ourSchema),
    /**
     * The claim, in one destination's queue (deliveries of that destination: its
     * own rows, whatever other destinations have waiting). One statement, autocommit:
     * - due events only (run_at NULL or past) that nobody holds, or whose holder's lease ran out;
     * - the ordering gate: an event is eligible only if no earlier event of the same row
     *   (same row_hash) is still in the destination's queue, pending, retrying or in
     *   flight, whoever holds it. The router moves a row's changes in id order. Row locks make the trigger's ids follow commit order for one row, so
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
     * often made while the journal is empty. So the candidates are locked and updated
     * through their ctid (a TID scan: "id = ANY (…)" on the second column of the
     * (destination, id) key let a generic plan read the destination's whole queue and
     * filter it), outcome writes join their batch on (destination, id) equality, and
     * the gate is a correlated subquery, not NOT EXISTS: the planner may turn NOT
     * EXISTS into a join, and a prepared statement's generic plan made while the
     * journal was empty then scans the whole gate index for every candidate (440 ms
     * per claim at 200,000 events); a subquery always probes the index by row. It
     * probes backward from the candidate, to the nearest earlier event of its row: a
     * probe from the row's start stepped over every delivered event the row left in the
     * index until vacuum (a hot row: ~25 pages per candidate, 4 ms per claim).
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
     * per watched table, then the floor (0: from the start), the window in ids, the
     * row hashes whose heads to claim (bigint[]), and the destination.
     */
    claim: (tableCount: number) => {
      const floor = `$${4 + 2 * tableCount}::bigint`;
      const window = `$${5 + 2 * tableCount}::bigint`;
      const hashes = `$${6 + 2 * tableCount}::bigint[]`;
      const dest = `$${7 + 2 * tableCount}::text`;
      // Without the destination: the walk names it in its index range, and the rows
      // locked are reached by ctid. Spelled out beside a ctid, "destination = $n" let a
      // generic plan made on an empty queue read a destination's whole queue through
      // an index instead of the TID scan (50 ms per claim at 100,000 queued).
      const eligible = `(e.run_at IS NULL OR e.run_at <= now())
          AND (e.claimed_by IS NULL OR e.claimed_until < now())
          AND (${tablePredicate(tableCount, 4)})`;
      return `
      WITH lo AS (
        SELECT CASE WHEN ${floor} > 0 THEN ${floor}
                    ELSE (SELECT min(f.id) FROM ${deliveries} f WHERE f.destination = ${dest}) END AS id
      ),
      walk AS MATERIALIZED (
        SELECT e.ctid, e.id FROM ${deliveries} e
        WHERE e.destination = ${dest} AND e.id >= (SELECT id FROM lo) AND e.id < (SELECT id FROM lo) + ${window}
          AND ${eligible}
          AND (SELECT p.id FROM ${deliveries} p
               WHERE p.destination = ${dest} AND p.row_hash = e.row_hash AND p.id < e.id
               ORDER BY p.id DESC LIMIT 1) IS NULL
        ORDER BY e.id
        LIMIT $1
      ),
      heads AS MATERIALIZED (
        SELECT (SELECT p.ctid FROM ${deliveries} p
                WHERE p.destination = ${dest} AND p.row_hash = h.row_hash ORDER BY p.id LIMIT 1) AS ctid
        FROM unnest(${hashes}) AS h(row_hash)
      ),
      next AS (
        SELECT e.ctid FROM ${deliveries} e
        WHERE e.ctid = ANY (ARRAY(SELECT ctid FROM walk UNION ALL SELECT ctid FROM heads WHERE ctid IS NOT NULL))
          AND ${eligible}
        ORDER BY e.ctid = ANY (ARRAY(SELECT ctid FROM heads WHERE ctid IS NOT NULL)) DESC, e.id
        LIMIT $1
        FOR UPDATE SKIP LOCKED
      ),
      claimed AS (
        UPDATE ${deliveries} e
        SET claimed_by = $2, claimed_until = now() + $3::integer * interval '1 millisecond',
            attempts = e.attempts + 1
        WHERE e.ctid = ANY (ARRAY(SELECT ctid FROM next))
        RETURNING ${rowFields}, e.row_hash::text AS row_hash,
          EXISTS (SELECT 1 FROM ${deliveries} p
                  WHERE p.destination = ${dest} AND p.row_hash = e.row_hash AND p.id > e.id) AS has_next
      )
      SELECT c.*, w.lo, w.walked, w.walk_min, w.next_lo
      FROM (
        SELECT (SELECT id FROM lo)::text AS lo, (SELECT count(*) FROM walk)::int AS walked,
               (SELECT min(id) FROM walk)::text AS walk_min,
               CASE WHEN (SELECT count(*) FROM walk) < $1
                 THEN (SELECT min(f.id) FROM ${deliveries} f
                       WHERE f.destination = ${dest} AND f.id >= (SELECT id FROM lo) + ${window})::text END AS next_lo
      ) w
      LEFT JOIN claimed c ON true`;
    },

    /**
     * The router: moves changes from the capture inbox (events) into the queue of
     * every destination they route to, in one statement (autocommit), so a change is
     * in the inbox or in its destinations' queues, never both, never neither. Only
     * the instance that leads a table (holds its route lock, see PgRouter) moves its
     * changes, so moves of one table never run side by side.
     * - The walk goes oldest first from the caller's floor, at most $1 changes, in
     *   the tables this instance leads. Every change it finds is moved: the inbox
     *   holds nothing that waits for anything, so there is no gate to apply, except
     *   for a change committed late below the floor: a later change of the same row
     *   waits until the walk from the start (floor 0) has moved the earlier one, or
     *   the row's changes would reach the queues out of order. Changes of one row
     *   found by the same walk move together, in order, which the queues keep.
     * - A change is copied into each destination whose routes (table and operation)
     *   take it, or only into its target when it has one (a backfill for one
     *   destination); a change no destination takes is simply removed. Row filters are
     *   applied by each destination when it delivers (they need the row).
     * The walked rows are deleted by their ctid (inbox rows are never updated, and only
     * the table's leader deletes them): a TID scan, where "id = ANY (…)" let a generic
     * plan made on an empty inbox scan the whole row_hash index instead (10 ms per move
     * at 5,000 waiting changes).
     * Params: $1 limit, $2 floor (0: from the start), then a schema and a table per led
     * table, then the routes as four parallel arrays: destination, schema, table,
     * operation. Returns how many changes moved, the highest id moved and the
     * destinations that received any.
     */
    route: (tableCount: number) => {
      const routes = 3 + 2 * tableCount;
      return `
      WITH walk AS MATERIALIZED (
        SELECT e.ctid FROM ${events} e
        WHERE e.id >= $2::bigint AND (${tablePredicate(tableCount, 3)})
          AND ($2::bigint = 0
               OR (SELECT p.id FROM ${events} p WHERE p.row_hash = e.row_hash AND p.id < $2::bigint LIMIT 1) IS NULL)
        ORDER BY e.id
        LIMIT $1
      ),
      moved AS (
        DELETE FROM ${events} e WHERE e.ctid = ANY (ARRAY(SELECT ctid FROM walk))
        RETURNING e.id, e.op, e.schema_name, e.table_name, e.row_hash, e.new_row, e.old_row, e.txid, e.created_at, e.target
      ),
      routed AS (
        INSERT INTO ${deliveries}
          (destination, id, op, schema_name, table_name, row_hash, new_row, old_row, txid, created_at)
        SELECT r.destination, m.id, m.op, m.schema_name, m.table_name, m.row_hash, m.new_row, m.old_row, m.txid, m.created_at
        FROM moved m
        JOIN unnest($${routes}::text[], $${routes + 1}::text[], $${routes + 2}::text[], $${routes + 3}::text[])
          AS r(destination, schema_name, table_name, op)
          ON r.schema_name = m.schema_name AND r.table_name = m.table_name AND r.op = m.op
             AND (m.target IS NULL OR m.target = r.destination)
        ON CONFLICT (destination, id) DO NOTHING
        RETURNING destination
      )
      SELECT (SELECT count(*) FROM moved)::int AS moved, (SELECT max(id) FROM moved)::text AS max_id,
             ARRAY(SELECT DISTINCT destination FROM routed) AS destinations`;
    },

    /** $1 route lock key. A table's router holds it on its own connection for as long as it runs. */
    tryRouteLock: `SELECT pg_try_advisory_lock($1::bigint) AS ok`,

    /** $1 ids, $2 claim tokens, $3 instance id, $4 destination. */
    deleteDelivered: `
      DELETE FROM ${deliveries} e
      USING ${held('unnest($1::bigint[], $2::timestamptz[]) AS x(id, token)', '$3', '$4')}
      WHERE e.ctid = x.tid AND e.claimed_by = $3 AND e.claimed_until = x.token`,

    /** Same as deleteDelivered, keeping a copy for the retention period. */
    moveDelivered: `
      WITH d AS (
        DELETE FROM ${deliveries} e
        USING ${held('unnest($1::bigint[], $2::timestamptz[]) AS x(id, token)', '$3', '$4')}
        WHERE e.ctid = x.tid AND e.claimed_by = $3 AND e.claimed_until = x.token
        RETURNING e.destination, e.id, e.op, e.schema_name, e.table_name, e.row_hash, e.new_row, e.old_row,
                  e.txid, e.created_at, e.attempts)
      INSERT INTO ${s}.delivered_events
        (destination, id, op, schema_name, table_name, row_hash, new_row, old_row, txid, created_at, attempts)
      SELECT destination, id, op, schema_name, table_name, row_hash, new_row, old_row, txid, created_at, attempts FROM d
      ON CONFLICT (destination, id) DO NOTHING`,

    /** $1 ids, $2 claim tokens, $3 delays in ms, $4 refunds (0|1), $5 statuses, $6 errors (NULL keeps the last one), $7 instance id, $8 destination. */
    scheduleRetry: `
      UPDATE ${deliveries} e
      SET claimed_by = NULL, claimed_until = NULL,
          run_at = now() + x.delay_ms * interval '1 millisecond',
          attempts = greatest(e.attempts - x.refund, 0),
          last_status = CASE WHEN x.error IS NULL THEN e.last_status ELSE x.status END,
          last_error = coalesce(x.error, e.last_error)
      FROM ${held(
        'unnest($1::bigint[], $2::timestamptz[], $3::integer[], $4::integer[], $5::integer[], $6::text[]) AS x(id, token, delay_ms, refund, status, error)',
        '$7',
        '$8',
      )}
      WHERE e.ctid = x.tid AND e.claimed_by = $7 AND e.claimed_until = x.token`,

    /** $1 ids, $2 claim tokens, $3 statuses, $4 errors, $5 instance id, $6 destination. */
    moveToDeadLetters: `
      WITH d AS (
        DELETE FROM ${deliveries} e
        USING ${held('unnest($1::bigint[], $2::timestamptz[], $3::integer[], $4::text[]) AS x(id, token, status, error)', '$5', '$6')}
        WHERE e.ctid = x.tid AND e.claimed_by = $5 AND e.claimed_until = x.token
        RETURNING e.destination, e.id, e.op, e.schema_name, e.table_name, e.row_hash, e.new_row, e.old_row,
                  e.txid, e.created_at, e.attempts, x.status, x.error)
      INSERT INTO ${s}.dead_letters
        (destination, id, op, schema_name, table_name, row_hash, new_row, old_row, txid, created_at,
         attempts, last_status, last_error)
      SELECT destination, id, op, schema_name, table_name, row_hash, new_row, old_row, txid, created_at,
             attempts, status, error FROM d
      ON CONFLICT (destination, id) DO UPDATE SET attempts = EXCLUDED.attempts, last_status = EXCLUDED.last_status,
        last_error = EXCLUDED.last_error, failed_at = now()`,

    /**
     * A destination answers again: its retries waiting for a later time become due now.
     * $1 schemas, $2 tables (this daemon's), $3 destination.
     */
    retryNow: `
      UPDATE ${deliveries} SET run_at = now()
      WHERE destination = $3 AND run_at > now() AND (claimed_by IS NULL OR claimed_until < now())
        AND (schema_name, table_name) IN (SELECT * FROM unnest($1::text[], $2::text[]))`,

    /** $1 instance id. Gives back unfinished claims without counting their attempt. */
    releaseClaims: `
      UPDATE ${deliveries} SET claimed_by = NULL, claimed_until = NULL,
        attempts = greatest(attempts - 1, 0)
      WHERE claimed_by = $1`,

    /** $1 LIKE pattern of instance ids on this host. */
    claimHolders: `SELECT DISTINCT claimed_by FROM ${deliveries} WHERE claimed_by LIKE $1 AND claimed_until > now()`,
    /** $1 instance ids. Ends the claims of processes known to be dead; their lease need not run out. */
    releaseClaimsOf: `
      UPDATE ${deliveries} SET claimed_by = NULL, claimed_until = NULL
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
     * The backlog per destination and watched table, for the metrics: deliveries still
     * queued (waiting, retrying or in flight), the age of the oldest, and dead letters;
     * and, under the destination '', changes captured but not yet routed.
     * Cost is bounded on a journal of any size: only the oldest $3 rows of each
     * destination's queue (and of the inbox, and of dead letters) are read, walking the
     * primary key (100,000 rows: about 60 ms, against 240 ms for a full count of 1M
     * rows), so counts stop at $3; an oldest age is exact whenever its table has a row
     * among them.
     * $1 schemas, $2 tables (this daemon's), $3 rows read at most, $4 destinations.
     */
    backlog: `
      WITH j AS (
        SELECT d.destination, h.schema_name, h.table_name, count(*)::int AS pending, min(h.created_at) AS oldest
        FROM unnest($4::text[]) AS d(destination)
        CROSS JOIN LATERAL (SELECT q.schema_name, q.table_name, q.created_at FROM ${deliveries} q
                            WHERE q.destination = d.destination ORDER BY q.id LIMIT $3) h
        GROUP BY 1, 2, 3
        UNION ALL
        SELECT '', schema_name, table_name, count(*)::int, min(created_at)
        FROM (SELECT schema_name, table_name, created_at FROM ${events} ORDER BY id LIMIT $3) h
        GROUP BY 1, 2, 3),
      dl AS (
        SELECT d.destination, h.schema_name, h.table_name, count(*)::int AS dead
        FROM unnest($4::text[]) AS d(destination)
        CROSS JOIN LATERAL (SELECT q.schema_name, q.table_name FROM ${s}.dead_letters q
                            WHERE q.destination = d.destination ORDER BY q.id LIMIT $3) h
        GROUP BY 1, 2, 3)
      SELECT d.destination, t.schema_name, t.table_name, coalesce(j.pending, 0) AS pending,
             coalesce(extract(epoch FROM now() - j.oldest), 0)::float8 AS oldest_s,
             coalesce(dl.dead, 0) AS dead_letters
      FROM unnest($1::text[], $2::text[]) AS t(schema_name, table_name)
      CROSS JOIN (SELECT '' AS destination UNION ALL SELECT unnest($4::text[])) d
      LEFT JOIN j ON j.destination = d.destination AND j.schema_name = t.schema_name AND j.table_name = t.table_name
      LEFT JOIN dl ON dl.destination = d.destination AND dl.schema_name = t.schema_name AND dl.table_name = t.table_name`,

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
    // $2 schema (or NULL), $3 table (or NULL), $4 time bound (or NULL), $5 destination (or NULL).

    /** $1..$5 filters (time: failed at or after), $6 limit. */
    listDeadLetters: `
      SELECT destination, id::text AS id, op, schema_name, table_name, attempts, last_status, last_error,
             to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS created_at,
             to_char(failed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS failed_at,
             new_row::text AS new_row, old_row::text AS old_row
      FROM ${s}.dead_letters
      WHERE ($1::bigint[] IS NULL OR id = ANY ($1::bigint[]))
        AND ($2::text IS NULL OR schema_name = $2) AND ($3::text IS NULL OR table_name = $3)
        AND ($4::timestamptz IS NULL OR failed_at >= $4) AND ($5::text IS NULL OR destination = $5)
      ORDER BY id, destination
      LIMIT $6`,

    /**
     * Moves dead letters back into their destination's queue with their original id
     * (so the event id is unchanged) and a fresh attempt count: only that destination
     * sends it again. $1..$5 filters (time: failed at or after).
     */
    replayDeadLetters: `
      WITH d AS (
        DELETE FROM ${s}.dead_letters
        WHERE ($1::bigint[] IS NULL OR id = ANY ($1::bigint[]))
          AND ($2::text IS NULL OR schema_name = $2) AND ($3::text IS NULL OR table_name = $3)
          AND ($4::timestamptz IS NULL OR failed_at >= $4) AND ($5::text IS NULL OR destination = $5)
        RETURNING destination, id, op, schema_name, table_name, row_hash, new_row, old_row, txid, created_at)
      INSERT INTO ${deliveries} (destination, id, op, schema_name, table_name, row_hash, new_row, old_row, txid, created_at)
      SELECT destination, id, op, schema_name, table_name, row_hash, new_row, old_row, txid, created_at FROM d
      ON CONFLICT (destination, id) DO NOTHING
      RETURNING destination, id::text AS id`,

    /** $1..$5 filters (time: failed before). */
    purgeDeadLetters: `
      DELETE FROM ${s}.dead_letters
      WHERE ($1::bigint[] IS NULL OR id = ANY ($1::bigint[]))
        AND ($2::text IS NULL OR schema_name = $2) AND ($3::text IS NULL OR table_name = $3)
        AND ($4::timestamptz IS NULL OR failed_at < $4) AND ($5::text IS NULL OR destination = $5)
      RETURNING destination, id::text AS id`,

    /**
     * Per destination and watched table: what waits, what retries, what is in flight,
     * what is dead, when it last delivered; and, under the destination '', what was
     * captured but not routed yet. A destination appears once it has a queue, a dead
     * letter or a delivery.
     */
    status: `
      WITH j AS (
        SELECT destination, schema_name, table_name,
               count(*) FILTER (WHERE (claimed_by IS NULL OR claimed_until < now())
                                  AND (run_at IS NULL OR run_at <= now())) AS pending,
               count(*) FILTER (WHERE (claimed_by IS NULL OR claimed_until < now()) AND run_at > now()) AS retrying,
               count(*) FILTER (WHERE claimed_by IS NOT NULL AND claimed_until >= now()) AS in_flight,
               extract(epoch FROM now() - min(created_at))::float8 AS oldest_age_s
        FROM ${deliveries} GROUP BY 1, 2, 3
        UNION ALL
        SELECT '', schema_name, table_name, count(*), 0, 0, extract(epoch FROM now() - min(created_at))::float8
        FROM ${events} GROUP BY 1, 2, 3),
      dl AS (
        SELECT destination, schema_name, table_name, count(*) AS dead FROM ${s}.dead_letters GROUP BY 1, 2, 3),
      keys AS (
        SELECT destination, schema_name, table_name FROM j
        UNION SELECT destination, schema_name, table_name FROM dl
        UNION SELECT destination, schema_name, table_name FROM ${s}.destination_tables)
      SELECT k.destination, w.schema_name, w.table_name, w.operations,
             coalesce(j.pending, 0)::int AS pending, coalesce(j.retrying, 0)::int AS retrying,
             coalesce(j.in_flight, 0)::int AS in_flight, coalesce(dl.dead, 0)::int AS dead_letters,
             j.oldest_age_s, t.last_delivered_at
      FROM ${s}.watched_tables w
      LEFT JOIN keys k USING (schema_name, table_name)
      LEFT JOIN j USING (destination, schema_name, table_name)
      LEFT JOIN dl USING (destination, schema_name, table_name)
      LEFT JOIN ${s}.destination_tables t USING (destination, schema_name, table_name)
      ORDER BY 2, 3, 1`,

    /** $1 destination, $2 schema, $3 table. A daemon writing the row at this moment already sets it. */
    touchLastDelivery: `
      INSERT INTO ${s}.destination_tables AS t (destination, schema_name, table_name, last_delivered_at)
      VALUES ($1, $2, $3, now())
      ON CONFLICT (destination, schema_name, table_name) DO UPDATE SET last_delivered_at = EXCLUDED.last_delivered_at`,

    /** Wakes every daemon (after a replay). */
    notify: `SELECT pg_notify($1, '')`,

    /** Latest applied migration, or an error if our schema is missing. */
    schemaVersion: `SELECT coalesce(max(version), 0) AS version FROM ${s}.migrations`,

    // ---- The web console and the attempt log (docs/console.md). Read-only but for
    // the attempt log's own writes and prunes.

    /**
     * One batch of the attempt log, as parallel arrays: $1 destinations, $2 journal ids,
     * $3 schemas, $4 tables, $5 operations, $6 row keys, $7 attempt numbers, $8 times (ms
     * since the epoch), $9 durations (ms), $10 addresses, $11 request headers (JSON),
     * $12 request bodies, $13 response statuses, $14 response bodies, $15 errors, $16 outcomes.
     */
    insertAttempts: `
      INSERT INTO ${s}.attempts (destination, id, schema_name, table_name, op, row_key, attempt, at, duration_ms,
                                 address, request_headers, request_body, response_status, response_body, error, outcome)
      SELECT destination, id, schema_name, table_name, op, row_key, attempt, to_timestamp(at_ms / 1000.0), duration_ms,
             address, request_headers, request_body, response_status, response_body, error, outcome
      FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::integer[], $8::float8[],
                  $9::float8[], $10::text[], $11::text[], $12::text[], $13::integer[], $14::text[], $15::text[], $16::text[])
        AS x(destination, id, schema_name, table_name, op, row_key, attempt, at_ms, duration_ms,
             address, request_headers, request_body, response_status, response_body, error, outcome)`,

    /**
     * Prunes the attempt log to its bounds in one statement: $1 rows kept at most (the
     * newest), $2 seconds kept at most. The OFFSET probe reads the primary key backward
     * from its end, so it costs $1 index entries, not the table.
     */
    pruneAttempts: `
      DELETE FROM ${s}.attempts
      WHERE at < now() - $2::float8 * interval '1 second'
         OR seq <= (SELECT seq FROM ${s}.attempts ORDER BY seq DESC OFFSET $1::bigint LIMIT 1)`,

    /**
     * The attempt log, newest first. Filters (NULL: any): $1 journal id, $2 schema,
     * $3 table, $4 row key, $5 destination, $6 outcome, $7 older than this seq; $8 limit.
     */
    listAttempts: `
      SELECT seq::text AS seq, destination, id::text AS id, schema_name, table_name, op, row_key, attempt,
             to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS at, duration_ms,
             address, request_headers, request_body, response_status, response_body, error, outcome
      FROM ${s}.attempts
      WHERE ($1::bigint IS NULL OR id = $1) AND ($2::text IS NULL OR schema_name = $2) AND ($3::text IS NULL OR table_name = $3)
        AND ($4::text IS NULL OR row_key = $4) AND ($5::text IS NULL OR destination = $5) AND ($6::text IS NULL OR outcome = $6)
        AND ($7::bigint IS NULL OR seq < $7)
      ORDER BY seq DESC
      LIMIT $8`,

    /**
     * Where one event is, per destination: still in the capture inbox (destination ''),
     * in a destination's queue, dead, or delivered (kept for listener.retention).
     * $1 journal id, $2 the destinations to look in (their primary keys lead with the
     * destination, so each is one probe).
     */
    eventJourney: `
      SELECT 'inbox' AS state, '' AS destination, op, schema_name, table_name,
             to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS created_at,
             new_row::text AS new_row, old_row::text AS old_row, 0 AS attempts, NULL::integer AS last_status,
             NULL::text AS last_error, NULL::text AS at
      FROM ${events} WHERE id = $1
      UNION ALL
      SELECT CASE WHEN claimed_by IS NOT NULL AND claimed_until >= now() THEN 'in flight'
                  WHEN run_at > now() THEN 'retrying' ELSE 'pending' END,
             destination, op, schema_name, table_name,
             to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
             new_row::text, old_row::text, attempts, last_status, last_error,
             to_char(run_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
      FROM ${deliveries} WHERE destination = ANY ($2::text[]) AND id = $1
      UNION ALL
      SELECT 'dead', destination, op, schema_name, table_name,
             to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
             new_row::text, old_row::text, attempts, last_status, last_error,
             to_char(failed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
      FROM ${s}.dead_letters WHERE destination = ANY ($2::text[]) AND id = $1
      UNION ALL
      SELECT 'delivered', destination, op, schema_name, table_name,
             to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
             new_row::text, old_row::text, attempts, NULL, NULL,
             to_char(delivered_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
      FROM ${s}.delivered_events WHERE destination = ANY ($2::text[]) AND id = $1`,

    /** $1..$5 dead-letter filters (time: failed at or after). How many match. */
    countDeadLetters: `
      SELECT count(*)::int AS n FROM ${s}.dead_letters
      WHERE ($1::bigint[] IS NULL OR id = ANY ($1::bigint[]))
        AND ($2::text IS NULL OR schema_name = $2) AND ($3::text IS NULL OR table_name = $3)
        AND ($4::timestamptz IS NULL OR failed_at >= $4) AND ($5::text IS NULL OR destination = $5)`,

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
     * writes the journal's five and the attempt log (has_table_privilege with a list means "any of").
     */
    journalTablesDenied: `
      SELECT c.relname AS table_name
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')
        AND NOT (has_table_privilege(c.oid, 'SELECT')
             AND (c.relname NOT IN ('events', 'deliveries', 'dead_letters', 'delivered_events', 'destination_tables', 'attempts', 'backfills')
                  OR (has_table_privilege(c.oid, 'INSERT') AND has_table_privilege(c.oid, 'UPDATE')
                      AND has_table_privilege(c.oid, 'DELETE'))))
      ORDER BY 1`,

    /** Log capture: the server settings and the role's REPLICATION attribute. $1 our slot's name. */
    logCaptureSettings: `
      SELECT current_setting('wal_level') AS wal_level,
             current_setting('max_replication_slots')::int AS max_slots,
             current_setting('max_wal_senders')::int AS max_senders,
             current_setting('max_slot_wal_keep_size') AS keep_size,
             (SELECT count(*) FROM pg_replication_slots)::int AS slots,
             (SELECT count(*) FROM pg_stat_replication)::int AS senders,
             (SELECT r.rolreplication OR r.rolsuper FROM pg_roles r WHERE r.rolname = current_user) AS replication,
             current_user AS role,
             s.active AS slot_active,
             CASE WHEN s.slot_name IS NULL OR pg_is_in_recovery() THEN NULL
                  ELSE (pg_current_wal_lsn() - s.confirmed_flush_lsn)::float8 END AS slot_lag_bytes
      FROM (SELECT 1) one LEFT JOIN pg_replication_slots s ON s.slot_name = $1`,

    /** $1 a watched table (qualified, quoted). */
    tableTriggerPrivilege: `SELECT has_table_privilege($1::regclass, 'TRIGGER') AS ok`,

    /** $1 a watched table (qualified, quoted), $2 our trigger's name. No row: no trigger; 'D': disabled. */
    captureTrigger: `SELECT tgenabled AS enabled FROM pg_trigger WHERE tgrelid = to_regclass($1) AND tgname = $2 AND NOT tgisinternal`,

    /** Whether our migrations table exists (nothing is installed without it). */
    migrationsTableExists: `SELECT to_regclass(${quoteLiteral(`${s}.migrations`)}) IS NOT NULL AS ok`,

    // ---- Backfill (src/capture/postgres/backfill.ts, docs/backfill.md) ----

    /**
     * Where a backfill's next batch ends: the key of the `$1`-th row after the last key
     * (none: fewer remain, and the batch reads the rest). Read without locks, before the
     * batch locks its range: the bound is fixed before any writer can move a row, so a
     * row whose key changes while the batch runs is either still in the range (read
     * with its new values) or leaves it (its UPDATE event carries it), and the backfill
     * never jumps past rows it did not read. Params: $1 the batch size, then the last
     * key's values (one per key column; none for the first batch).
     */
    backfillBound(table: { schema: string; name: string }, keyColumns: readonly string[], condition: string | undefined, after: boolean): string {
      const cols = keyColumns.map((k) => `t.${quoteIdent(k)}`);
      const keyset = after ? `(${cols.join(', ')}) > (${keyColumns.map((_, i) => `$${2 + i}`).join(', ')})` : 'true';
      return `
      SELECT ARRAY[${cols.map((c) => `${c}::text`).join(', ')}] AS bound
      FROM ${qualify(table.schema, table.name)} t
      WHERE ${keyset} AND (${condition ?? 'true'})
      ORDER BY ${cols.join(', ')}
      OFFSET $1::bigint - 1 LIMIT 1`;
    },

    /**
     * One batch of a backfill, in the transaction that also records its progress: the
     * rows after the last key up to the bound (all the rest without one), locked FOR
     * SHARE NOWAIT and journaled as READ events into the inbox. A writer that changes
     * one of them afterwards waits for this commit, so its change is captured after the
     * row's READ event, with a higher id. A row a writer holds now fails the statement
     * at once (55P03) rather than wait: a batch never waits while it holds locks, so it
     * never deadlocks with a writer and holds writers up for one batch at most; it is
     * tried again, and then reads the committed row. row_hash is the trigger's (000001:
     * capture_change), so the events of a row are ordered with its changes. The
     * condition is the operator's --where, as written. Params: $1 the table's schema,
     * $2 its name, $3 target destination (NULL: all), then the last key's values (when
     * after), then the bound's (when bounded).
     */
    backfillJournal(table: { schema: string; name: string }, primaryKey: readonly string[], keyColumns: readonly string[], condition: string | undefined, after: boolean, bounded: boolean): string {
      const cols = keyColumns.map((k) => `t.${quoteIdent(k)}`);
      const params = (from: number) => keyColumns.map((_, i) => `$${from + i}`).join(', ');
      const lower = after ? `(${cols.join(', ')}) > (${params(4)})` : 'true';
      const upper = bounded ? `(${cols.join(', ')}) <= (${params(after ? 4 + keyColumns.length : 4)})` : 'true';
      const j = 'x.j';
      const hashKey =
        primaryKey.length === 0
          ? null
          : primaryKey.length === 1
            ? `(${j} ->> ${quoteLiteral(primaryKey[0]!)})`
            : primaryKey.map((k) => `coalesce(quote_literal(${j} ->> ${quoteLiteral(k)}), 'NULL') || ','`).join(' || ');
      const rowHash = hashKey === null ? 'NULL::bigint' : `hashtextextended($1::text || '.' || $2::text || ':' || ${hashKey}, 0)`;
      return `
      WITH batch AS MATERIALIZED (
        SELECT t AS r, row_number() OVER (ORDER BY ${cols.join(', ')}) AS n
        FROM (SELECT * FROM ${qualify(table.schema, table.name)} t
              WHERE ${lower} AND ${upper} AND (${condition ?? 'true'})
              ORDER BY ${cols.join(', ')}
              FOR SHARE OF t NOWAIT) t
      ),
      journaled AS (
        INSERT INTO ${events} (op, schema_name, table_name, row_hash, new_row, old_row, txid, target)
        SELECT 'READ', $1::text, $2::text, ${rowHash}, ${j}, NULL, txid_current(), $3::text
        FROM (SELECT row_to_json(b.r) AS j, b.n FROM batch b) x
        ORDER BY x.n
        RETURNING 1
      )
      SELECT (SELECT count(*) FROM journaled)::int AS rows`;
    },

    /** $1 id. A backfill as it is now. */
    backfillById: `SELECT ${BACKFILL_COLUMNS} FROM ${s}.backfills WHERE id = $1::bigint`,

    /** $1 schema, $2 table, $3 destination ('' for all). The newest failed backfill (--resume continues it). */
    backfillLatestFailed: `
      SELECT ${BACKFILL_COLUMNS} FROM ${s}.backfills
      WHERE schema_name = $1 AND table_name = $2 AND coalesce(destination, '') = $3 AND state = 'failed'
      ORDER BY id DESC LIMIT 1`,

    /** $1 backfill id. Locks the backfill's row for the batch's transaction: a cancel waits for it. */
    backfillLock: `SELECT state FROM ${s}.backfills WHERE id = $1::bigint FOR UPDATE`,

    /** $1 id, $2 last key (NULL keeps it), $3 rows journaled, $4 done. */
    backfillProgress: `
      UPDATE ${s}.backfills
      SET last_key = coalesce($2::text[], last_key), rows_done = rows_done + $3::bigint, updated_at = now(),
          state = CASE WHEN $4::boolean THEN 'done' ELSE state END,
          finished_at = CASE WHEN $4::boolean THEN now() ELSE finished_at END
      WHERE id = $1::bigint`,

    /** $1 the wait lock's key. The trigger's wake-up: a NOTIFY only while a daemon waits (see 000001). */
    backfillWake: `SELECT pg_notify(${quoteLiteral(ourSchema)}, '') WHERE NOT pg_try_advisory_xact_lock_shared($1::bigint)`,

    /** $1 schema, $2 table, $3 destination, $4 condition, $5 key columns, $6 estimate, $7 batch size, $8 rate, $9 max backlog. */
    backfillCreate: `
      INSERT INTO ${s}.backfills (schema_name, table_name, destination, condition, key_columns, rows_estimated, batch_size, rate, max_backlog)
      VALUES ($1, $2, $3, $4, $5::text[], $6::bigint, $7::integer, $8::integer, $9::integer)
      RETURNING ${BACKFILL_COLUMNS}`,

    /** $1 schema, $2 table, $3 destination ('' for all). */
    backfillUnfinished: `
      SELECT ${BACKFILL_COLUMNS} FROM ${s}.backfills
      WHERE schema_name = $1 AND table_name = $2 AND coalesce(destination, '') = $3 AND state = 'running'`,

    /** $1 id, $2 batch size, $3 rate, $4 max backlog. A new run (of an interrupted or failed backfill): its rate counts from now. */
    backfillResume: `
      UPDATE ${s}.backfills
      SET batch_size = $2::integer, rate = $3::integer, max_backlog = $4::integer, state = 'running', error = NULL,
          finished_at = NULL, resumed_at = now(), rows_at_resume = rows_done, updated_at = now()
      WHERE id = $1::bigint AND state IN ('running', 'failed')
      RETURNING ${BACKFILL_COLUMNS}`,

    /** $1 id, $2 error. */
    backfillFail: `UPDATE ${s}.backfills SET state = 'failed', error = $2, finished_at = now(), updated_at = now() WHERE id = $1::bigint AND state = 'running'`,

    /** $1 schema, $2 table, $3 destination ('' for all destinations' backfill, NULL for every one of the table). */
    backfillCancel: `
      UPDATE ${s}.backfills SET state = 'cancelled', finished_at = now(), updated_at = now()
      WHERE schema_name = $1 AND table_name = $2 AND state = 'running'
        AND ($3::text IS NULL OR coalesce(destination, '') = $3::text)
      RETURNING ${BACKFILL_COLUMNS}`,

    /** $1 limit. Newest first. */
    backfillList: `SELECT ${BACKFILL_COLUMNS} FROM ${s}.backfills ORDER BY id DESC LIMIT $1::integer`,

    /** The unfinished backfills, for the metrics. */
    backfillsRunning: `SELECT ${BACKFILL_COLUMNS} FROM ${s}.backfills WHERE state = 'running' ORDER BY id`,

    /**
     * $1 schema, $2 table, $3 destinations, $4 cap. What a batch waits on: the table's
     * changes not routed yet, and the destinations' due events (a retry scheduled for
     * later is not ahead of anything), each counted up to the cap.
     */
    backfillBacklog: `
      SELECT (SELECT count(*) FROM (SELECT 1 FROM ${events} e WHERE e.schema_name = $1 AND e.table_name = $2 LIMIT $4::integer) a)::int
           + (SELECT count(*) FROM (SELECT 1 FROM ${deliveries} d
                               WHERE d.destination = ANY ($3::text[]) AND (d.run_at IS NULL OR d.run_at <= now()) LIMIT $4::integer) b)::int AS queued`,

    /** $1 lease key. A backfill's lease: held by the session that runs it. */
    backfillTryLease: `SELECT pg_try_advisory_lock($1::bigint) AS ok`,
    backfillReleaseLease: `SELECT pg_advisory_unlock($1::bigint) AS ok`,

    /**
     * $1 the table (qualified, quoted), $2 the key columns. Whether they are the columns
     * of a unique index without predicate or expression, and which of them are missing
     * or nullable.
     */
    backfillKeyCheck: `
      SELECT
        ARRAY(SELECT x FROM unnest($2::text[]) x
              WHERE NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = $1::regclass AND a.attname = x AND a.attnum > 0 AND NOT a.attisdropped)) AS missing,
        ARRAY(SELECT a.attname::text FROM pg_attribute a
              WHERE a.attrelid = $1::regclass AND a.attname = ANY ($2::text[]) AND NOT a.attnotnull) AS nullable,
        EXISTS (SELECT 1 FROM pg_index i
                WHERE i.indrelid = $1::regclass AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL
                  AND ARRAY(SELECT a.attname::text FROM pg_attribute a
                            WHERE a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey::int2[]) ORDER BY 1)
                      = ARRAY(SELECT x FROM unnest($2::text[]) x ORDER BY 1)) AS is_unique`,

    // ---- Log capture (listener.capture: log): the logical replication reader
    // (src/capture/postgres/logical/) writes what it decodes into the same inbox the
    // trigger writes, and records how far it got in the same transaction.

    /** $1 slot name. The commit LSN of the last source transaction in the journal (none: never journaled). */
    capturePosition: `SELECT commit_lsn::text AS commit_lsn, end_lsn::text AS end_lsn FROM ${s}.capture_positions WHERE slot_name = $1`,
    /** $1 slot name, $2 commit LSN, $3 end LSN, $4 commit time: in the transaction of the events it covers. */
    saveCapturePosition: `
      INSERT INTO ${s}.capture_positions AS p (slot_name, commit_lsn, end_lsn, commit_time, updated_at)
      VALUES ($1, $2::pg_lsn, $3::pg_lsn, $4::timestamptz, now())
      ON CONFLICT (slot_name) DO UPDATE
        SET commit_lsn = EXCLUDED.commit_lsn, end_lsn = EXCLUDED.end_lsn,
            commit_time = EXCLUDED.commit_time, updated_at = EXCLUDED.updated_at`,
    /**
     * The trigger's wake-up, once per journal transaction of the reader: notify only
     * while a daemon waits (holds the wait lock), see migration 000001. $1 wait lock key.
     */
    captureWake: `SELECT CASE WHEN NOT pg_try_advisory_xact_lock_shared($1::bigint)
                             THEN pg_notify(${quoteLiteral(ourSchema)}, '') END AS notified`,
    /**
     * The lease, held by the reader on its replication connection: one reader per slot.
     * A replication connection takes only the simple query protocol (no parameters),
     * so the key, a number we derive (captureLeaseKey), is written in as a bigint.
     */
    tryCaptureLease: (key: string) => `SELECT pg_try_advisory_lock(${BigInt(key).toString()}::bigint) AS ok`,
    /**
     * $1 lease key. Whether some session holds the lease: an instance without it asks
     * this on an ordinary connection, so waiting takes no WAL sender.
     */
    captureLeaseHeld: `
      SELECT EXISTS (
        SELECT 1 FROM pg_locks
        WHERE locktype = 'advisory' AND mode = 'ExclusiveLock' AND granted AND objsubid = 1
          AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND ((classid::bigint << 32) | objid::bigint) = $1::bigint) AS held`,
    /** $1 type OIDs, $2 typmods: the SQL names to cast each column's text back to. */
    formatTypes: `SELECT format_type(u.t, u.m) AS type FROM unnest($1::oid[], $2::integer[]) WITH ORDINALITY AS u(t, m, o) ORDER BY u.o`,
    /** $1 slot name. How far behind the slot is, for the metrics and status. */
    slotLag: `
      SELECT s.active, s.confirmed_flush_lsn::text AS confirmed_lsn,
             CASE WHEN pg_is_in_recovery() THEN NULL
                  ELSE (pg_current_wal_lsn() - s.confirmed_flush_lsn)::float8 END AS lag_bytes,
             s.wal_status
      FROM pg_replication_slots s WHERE s.slot_name = $1`,
    /** $1 slot name. Status: the slot and the last journaled commit. */
    captureStatus: `
      SELECT s.slot_name, s.active, s.wal_status,
             CASE WHEN pg_is_in_recovery() THEN NULL
                  ELSE (pg_current_wal_lsn() - s.confirmed_flush_lsn)::float8 END AS lag_bytes,
             extract(epoch FROM now() - p.commit_time)::float8 AS last_commit_age_s,
             extract(epoch FROM now() - p.updated_at)::float8 AS last_journaled_age_s
      FROM pg_replication_slots s
      LEFT JOIN ${s}.capture_positions p ON p.slot_name = s.slot_name
      WHERE s.slot_name = $1`,

    /**
     * The journal insert of one relation shape (its columns and their types, as the
     * Relation message sent them), for a batch of its changes in commit order. The
     * values arrive as text, as the server's output functions wrote them; each is cast
     * back to its column's type and the row is built by row_to_json, exactly as the
     * trigger builds it (bigint, numeric 12.50, timestamps, json, bytea, arrays). The
     * row hash and the txid are computed as the trigger computes them (the 32-bit xid
     * of the Begin message, extended with the current epoch as txid_current() is). A
     * batch may span several source transactions. One array per column through ROWS
     * FROM (a multi-argument unnest is one call, limited to 100 arguments). Params: $1
     * schema, $2 table, $3 xids (bigint[]), $4 commit times, $5 ops, $6 has old row
     * (boolean[]), then one text[] per column of the new rows, then one per column of
     * the old rows.
     */
    insertCapturedRows: (columns: readonly { readonly name: string; readonly type: string }[], keyColumns: readonly string[]) => {
      const n = columns.length;
      const arrays = ['unnest($3::bigint[])', 'unnest($4::timestamptz[])', 'unnest($5::text[])', 'unnest($6::boolean[])'];
      for (let i = 0; i < 2 * n; i++) arrays.push(`unnest($${7 + i}::text[])`);
      const names = ['xid', 'commit_time', 'op', 'has_old', ...columns.map((_, i) => `n${i}`), ...columns.map((_, i) => `o${i}`)];
      const row = (prefix: string) =>
        n === 0
          ? `'{}'::json`
          : `(SELECT pg_catalog.row_to_json(r.*) FROM (SELECT ${columns
              .map((c, i) => `x.${prefix}${i}::${c.type} AS ${quoteIdent(c.name)}`)
              .join(', ')}) r)`;
      const k = (name: string) => `(coalesce(y.n, y.o) ->> ${quoteLiteral(name)})`;
      const key =
        keyColumns.length === 0
          ? 'NULL::text'
          : keyColumns.length === 1
            ? k(keyColumns[0]!)
            : `''${keyColumns.map((c) => ` || coalesce(pg_catalog.quote_literal(${k(c)}), 'NULL') || ','`).join('')}`;
      return `
      INSERT INTO ${events} (op, schema_name, table_name, row_hash, new_row, old_row, txid, created_at)
      SELECT y.op, $1, $2, pg_catalog.hashtextextended($1 || '.' || $2 || ':' || (${key}), 0), y.n, y.o,
             (CASE WHEN y.xid <= (c.t & 4294967295) THEN c.t >> 32 ELSE (c.t >> 32) - 1 END << 32) | y.xid,
             y.commit_time
      FROM (
        SELECT x.ord, x.xid, x.commit_time, x.op,
               CASE WHEN x.op <> 'DELETE' THEN ${row('n')} END AS n,
               CASE WHEN x.op <> 'INSERT' AND x.has_old THEN ${row('o')} END AS o
        FROM ROWS FROM (${arrays.join(', ')}) WITH ORDINALITY AS x(${names.join(', ')}, ord)
      ) y
      CROSS JOIN (SELECT txid_current() AS t) c
      ORDER BY y.ord`;
    },
    /** $1 schema, $2 table, $3 xid (32-bit), $4 commit time. A TRUNCATE: no row, no row identity. */
    insertCapturedTruncate: `
      INSERT INTO ${events} (op, schema_name, table_name, row_hash, new_row, old_row, txid, created_at)
      SELECT 'TRUNCATE', $1, $2, NULL, NULL, NULL,
             (SELECT (CASE WHEN $3::bigint <= (c.t & 4294967295) THEN c.t >> 32 ELSE (c.t >> 32) - 1 END << 32) | $3::bigint
              FROM (SELECT txid_current() AS t) c),
             $4::timestamptz`,
  };
}

/** A backfill's row as the store reads it (see backfillFromRow in backfill.ts). */
const BACKFILL_COLUMNS = `id::text AS id, schema_name, table_name, destination, condition, key_columns, last_key,
  rows_done::float8 AS rows_done, rows_estimated::float8 AS rows_estimated, batch_size, rate, max_backlog, state, error,
  started_at, resumed_at, rows_at_resume::float8 AS rows_at_resume, updated_at, finished_at`;

/** The lease of one backfill (see PgBackfillStore): a session advisory lock, as text. */
export function backfillLeaseKey(ourSchema: string, id: string): string {
  return createHash('sha1').update(`app-db-listener:backfill:${ourSchema}:${id}`).digest().readBigInt64BE(0).toString();
}

/** A signed 64-bit advisory lock key derived from our schema name, stable across versions. */
export function waitLockKey(ourSchema: string): string {
  return createHash('sha1').update(`app-db-listener:wait:${ourSchema}`).digest().readBigInt64BE(0).toString();
}

/** The log reader's lease (see LogicalReader), as text: held on its replication connection. */
export function captureLeaseKey(ourSchema: string): string {
  return createHash('sha1').update(`app-db-listener:capture:${ourSchema}`).digest().readBigInt64BE(0).toString();
}

/** The route lock of one watched table (see PgRouter), as text: held by the instance that routes its changes. */
export function routeLockKey(ourSchema: string, schema: string, table: string): string {
  return createHash('sha1').update(`app-db-listener:route:${ourSchema}:${schema}.${table}`).digest().readBigInt64BE(0).toString();
}

/** `(e.schema_name = $k AND e.table_name = $k+1) OR …` for `count` tables, from parameter `first`. */
function tablePredicate(count: number, first: number): string {
  if (count === 0) return 'false';
  return Array.from({ length: count }, (_, i) => `(e.schema_name = $${first + 2 * i} AND e.table_name = $${first + 2 * i + 1})`).join(' OR ');
}
