/**
 * Every statement the daemon runs against MySQL/MariaDB at runtime, in one place.
 * Values are always parameters; the only pasted names are our own tables, quoted
 * by `quoteIdent`.
 *
 * MySQL has no arrays as parameters (PostgreSQL's unnest($1::bigint[])): a batch
 * travels as one JSON parameter read with JSON_TABLE, so each statement keeps one
 * text (and one prepared statement) whatever the batch size, and joins the
 * journal through its primary key (eq_ref). That join is written
 * `JSON_TABLE … u STRAIGHT_JOIN t FORCE INDEX (PRIMARY)`: the plan must not come
 * from statistics. InnoDB recomputes them in the background as a table fills, and
 * with those of an empty queue the optimizer scanned the whole table once per
 * statement, on a queue that had just received 200,000 changes.
 *
 * Times: every stored time is UTC DATETIME(6), written and compared with
 * UTC_TIMESTAMP(6), so no session time zone ever enters the journal.
 */
import { AppError } from '../../util/errors.js';
import type { CapturedColumn } from './binlog/columns.js';
import { qualify, quoteIdent, quoteLiteral } from './sql.js';
import { BINARY_TYPES, columnValueSql, objectNames, rowHashSql, rowJsonSql, type MySqlColumn, type MySqlTable } from './triggers.js';

export type Queries = ReturnType<typeof makeQueries>;

/** The DATETIME(6) text format of claim tokens (as the server prints claimed_until). */
const TOKEN_FORMAT = `'%Y-%m-%d %H:%i:%s.%f'`;

/** A batch of (id, token) pairs: JSON `[["12","2026-11-26 18:00:33.268907"], …]`. */
const batchOf = (columns: string) => `JSON_TABLE(?, '$[*]' COLUMNS (
        id    BIGINT UNSIGNED PATH '$[0]',
        token DATETIME(6)     PATH '$[1]'${columns})) u`;

/** `(?, ?), (?, ?)`: one (schema, table) pair of parameters per watched table. */
const tablePairs = (count: number) => Array.from({ length: Math.max(1, count) }, () => '(?, ?)').join(', ');

const EVENT_COLUMNS = 'id, op, schema_name, table_name, row_hash, new_row, old_row, txid, created_at';

export function makeQueries(prefix: string) {
  const n = objectNames(prefix);
  const events = quoteIdent(n.events);
  const deliveries = quoteIdent(n.deliveries);
  const backfills = quoteIdent(n.backfills);
  const capturePositions = quoteIdent(n.capturePositions);
  /** What a claim returns per event. Its first parameter: the lease in microseconds. */
  const claimColumns = `e.id, e.op, e.schema_name, e.table_name,
             DATE_FORMAT(e.created_at, '%Y-%m-%dT%H:%i:%s.%fZ') AS ts,
             e.new_row, e.old_row, e.attempts + 1 AS attempts,
             DATE_FORMAT(UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND, ${TOKEN_FORMAT}) AS token,
             e.row_hash,
             EXISTS (SELECT 1 FROM ${deliveries} n FORCE INDEX (row_hash_idx)
                     WHERE n.destination = e.destination AND n.row_hash = e.row_hash AND n.id > e.id) AS has_next`;
  /**
   * The ordering gate: the event is the oldest of its row in the queue (or has no row
   * key). Spelled as "equals the row's first id", not "NOT EXISTS an earlier id": MariaDB
   * probes a correlated subquery on the index's equality parts only and filters
   * `id < e.id` row by row, so NOT EXISTS read every queued event of the row for the
   * row's head (a hot row with 5,000 queued: 5,000 index entries, ~2 ms per claim),
   * where the first id is one index entry.
   */
  const headOfItsRow = `(e.row_hash IS NULL OR e.id = (
          SELECT p.id FROM ${deliveries} p FORCE INDEX (row_hash_idx)
          WHERE p.destination = e.destination AND p.row_hash = e.row_hash ORDER BY p.id LIMIT 1))`;
  /** Due, held by nobody (or by a lapsed lease), of this daemon's tables. */
  const eligible = (tableCount: number) => `(e.run_at IS NULL OR e.run_at <= UTC_TIMESTAMP(6))
        AND (e.claimed_by IS NULL OR e.claimed_until < UTC_TIMESTAMP(6))
        AND (e.schema_name, e.table_name) IN (${tablePairs(tableCount)})`;
  const deadLetters = quoteIdent(n.deadLetters);
  const attempts = quoteIdent(n.attempts);
  const delivered = quoteIdent(n.deliveredEvents);
  const pairs = batchOf('');
  return {
    /**
     * The claim's walk (in a READ COMMITTED transaction; see MySqlJournal.claim):
     * - due events only (run_at NULL or past) that nobody holds, or whose holder's lease ran out;
     * - the ordering gate: an event is eligible only if no earlier event of the same row
     *   (same row_hash) is still in the journal, pending, retrying or in flight, whoever
     *   holds it. The trigger inserts while the writer holds the row's lock, so for one
     *   row "earlier id" is "committed earlier". A failing event blocks only its own row.
     *   InnoDB reads the gate's subquery with locks inside this locking read, so
     *   SKIP LOCKED may skip an earlier event another transaction holds locked at
     *   that moment (another instance claiming it): the later one would pass. So
     *   `markClaimed` applies the gate again, as part of the UPDATE;
     * - oldest first through the primary key, within a window of ids [lo, hi) (see
     *   journal/claim-window.ts): a row with a long backlog costs a walk at most the
     *   window, and the walk never starts over the delete-marked entries that
     *   delivered events leave at the head of the index until InnoDB purges them (a
     *   walk from the start slowed steadily while a long transaction held the purge
     *   back: 4,100 to 2,000 events/s within 15 s);
     * - the indexes are named: a plan must not depend on statistics, which InnoDB
     *   recomputes as the journal fills and empties;
     * - FOR UPDATE SKIP LOCKED so instances never wait on each other's claims (nor on
     *   anyone's locks: a lock held long elsewhere costs its rows only);
     * - LIMIT = the caller's free delivery slots, never more;
     * - only the tables this daemon is configured for (one (?, ?) pair each).
     * has_next: whether more events of the row wait (its next one is then looked up
     * as a head once this one is settled).
     * The lease end is computed here, once, and returned as text: it is written as
     * claimed_until by `markClaimed` and is the claim's token, so the token is
     * exactly the stored value.
     * Everything happens in one destination's queue (deliveries of that destination):
     * its gate, its window, its heads.
     * Params: lease in microseconds, destination, lo, hi, then (schema, table) per table, then the limit.
     */
    claimWalk(tableCount: number): string {
      return `
      SELECT ${claimColumns}
      FROM ${deliveries} e FORCE INDEX (PRIMARY)
      WHERE e.destination = ? AND e.id >= ? AND e.id < ?
        AND ${eligible(tableCount)}
        AND ${headOfItsRow}
      ORDER BY e.id
      LIMIT ?
      FOR UPDATE SKIP LOCKED`;
    },

    /**
     * The heads of busy rows: for each row hash (a JSON array), the row's oldest event,
     * through the gate's index; being the oldest, it needs no gate. Params: lease in
     * microseconds, destination, row hashes, destination, then (schema, table) per table.
     */
    claimHeads(tableCount: number): string {
      return `
      SELECT ${claimColumns}
      FROM ${deliveries} e
      WHERE e.destination = ? AND e.id IN (
          SELECT (SELECT p.id FROM ${deliveries} p FORCE INDEX (row_hash_idx)
                  WHERE p.destination = ? AND p.row_hash = j.h ORDER BY p.id LIMIT 1)
          FROM JSON_TABLE(?, '$[*]' COLUMNS (h BIGINT PATH '$')) j)
        AND ${eligible(tableCount)}
      FOR UPDATE SKIP LOCKED`;
    },

    /** Params: destination, id. The first id at or above it (a walk's window start), NULL for none. */
    firstIdFrom: `SELECT MIN(id) AS id FROM ${deliveries} WHERE destination = ? AND id >= ?`,

    /**
     * The claim, second half, on the rows the walk locked: marks them claimed, each
     * only if the ordering gate still lets it through. The gate is read here again
     * outside the walk's SKIP LOCKED, so an earlier event of the row that another
     * instance was claiming at the walk's moment is seen, and the later one is left.
     * (As a separate plain read before the mark, the same check cost MariaDB ~21 µs
     * per event delivered: a statement per claim.)
     * Params: ids (JSON array), destination, instance id, token.
     * Affected rows: how many it marked.
     */
    markClaimed: `
      UPDATE JSON_TABLE(?, '$[*]' COLUMNS (id BIGINT UNSIGNED PATH '$')) u
      STRAIGHT_JOIN ${deliveries} e FORCE INDEX (PRIMARY) ON e.destination = ? AND e.id = u.id
      SET e.claimed_by = ?, e.claimed_until = ?, e.attempts = e.attempts + 1
      WHERE ${headOfItsRow}`,

    /**
     * After a markClaimed that took fewer than it was given: which it took.
     * Params: ids (JSON array), destination, instance id, token.
     */
    claimedOf: `
      SELECT e.id FROM JSON_TABLE(?, '$[*]' COLUMNS (id BIGINT UNSIGNED PATH '$')) u
      STRAIGHT_JOIN ${deliveries} e FORCE INDEX (PRIMARY) ON e.destination = ? AND e.id = u.id
      WHERE e.claimed_by = ? AND e.claimed_until = ?`,

    /**
     * Deletes the events the claims still hold (delivered, or copied elsewhere just before).
     * Params: (id, token, …) tuples (extra elements are ignored), destination, instance id.
     */
    deleteHeld: `
      DELETE e FROM ${pairs}
      STRAIGHT_JOIN ${deliveries} e FORCE INDEX (PRIMARY) ON e.destination = ? AND e.id = u.id AND e.claimed_until = u.token
      WHERE e.claimed_by = ?`,

    /**
     * Moving an event to another table takes three statements (MySQL has no
     * DELETE … RETURNING into INSERT), in one transaction: lock the events the claim
     * still holds, copy them, delete them. Once locked, nothing else can change them,
     * so the three see the same rows. Params of each: (id, token) pairs, destination, instance id.
     */
    lockHeld: `
      SELECT e.id FROM ${pairs}
      STRAIGHT_JOIN ${deliveries} e FORCE INDEX (PRIMARY) ON e.destination = ? AND e.id = u.id AND e.claimed_until = u.token
      WHERE e.claimed_by = ?
      FOR UPDATE`,

    /** Copies held events into delivered_events (retention). Params: pairs, destination, instance id. */
    copyDelivered: `
      INSERT INTO ${delivered} (destination, ${EVENT_COLUMNS}, attempts, delivered_at)
      SELECT e.destination, e.id, e.op, e.schema_name, e.table_name, e.row_hash, e.new_row, e.old_row, e.txid,
             e.created_at, e.attempts, UTC_TIMESTAMP(6)
      FROM ${pairs}
      STRAIGHT_JOIN ${deliveries} e FORCE INDEX (PRIMARY) ON e.destination = ? AND e.id = u.id AND e.claimed_until = u.token
      WHERE e.claimed_by = ?
      ON DUPLICATE KEY UPDATE attempts = VALUES(attempts), delivered_at = VALUES(delivered_at)`,

    /** Copies held events into dead_letters. Params: (id, token, status, error) tuples, destination, instance id. */
    copyDead: `
      INSERT INTO ${deadLetters} (destination, ${EVENT_COLUMNS}, attempts, last_status, last_error, failed_at)
      SELECT e.destination, e.id, e.op, e.schema_name, e.table_name, e.row_hash, e.new_row, e.old_row, e.txid,
             e.created_at, e.attempts, u.status, u.error, UTC_TIMESTAMP(6)
      FROM ${batchOf(`,
        status INT  PATH '$[2]',
        error  TEXT PATH '$[3]'`)}
      STRAIGHT_JOIN ${deliveries} e FORCE INDEX (PRIMARY) ON e.destination = ? AND e.id = u.id AND e.claimed_until = u.token
      WHERE e.claimed_by = ?
      ON DUPLICATE KEY UPDATE attempts = VALUES(attempts), last_status = VALUES(last_status),
        last_error = VALUES(last_error), failed_at = VALUES(failed_at)`,

    /**
     * Params: (id, token, delay ms, refund 0|1, status, error or null to keep the last one) tuples, destination, instance id.
     * A refunded attempt (endpoint outage, shutdown) does not count.
     */
    scheduleRetry: `
      UPDATE ${batchOf(`,
        delay_ms INT  PATH '$[2]',
        refund   INT  PATH '$[3]',
        status   INT  PATH '$[4]',
        error    TEXT PATH '$[5]'`)}
      STRAIGHT_JOIN ${deliveries} e FORCE INDEX (PRIMARY) ON e.destination = ? AND e.id = u.id AND e.claimed_until = u.token
      SET e.claimed_by = NULL, e.claimed_until = NULL,
          e.run_at = UTC_TIMESTAMP(6) + INTERVAL u.delay_ms * 1000 MICROSECOND,
          e.attempts = GREATEST(e.attempts - u.refund, 0),
          e.last_status = IF(u.error IS NULL, e.last_status, u.status),
          e.last_error = COALESCE(u.error, e.last_error)
      WHERE e.claimed_by = ?`,

    /**
     * A destination answers again: its retries waiting for a later time become due now.
     * Params: destination, then (schema, table) per table of this daemon.
     */
    retryNow(tableCount: number): string {
      return `
      UPDATE ${deliveries} SET run_at = UTC_TIMESTAMP(6)
      WHERE destination = ? AND run_at > UTC_TIMESTAMP(6) AND (claimed_by IS NULL OR claimed_until < UTC_TIMESTAMP(6))
        AND (schema_name, table_name) IN (${tablePairs(tableCount)})`;
    },

    /** Params: instance id. Gives back unfinished claims without counting their attempt. */
    releaseClaims: `
      UPDATE ${deliveries} SET claimed_by = NULL, claimed_until = NULL,
        attempts = GREATEST(attempts - 1, 0)
      WHERE claimed_by = ?`,

    /** Params: LIKE pattern of instance ids on this host ('!' escapes). */
    claimHolders: `
      SELECT DISTINCT claimed_by FROM ${deliveries}
      WHERE claimed_by LIKE ? ESCAPE '!' AND claimed_until > UTC_TIMESTAMP(6)`,

    /** Params: instance ids (JSON array). Ends the claims of processes known to be dead. */
    releaseClaimsOf: `
      UPDATE ${deliveries} SET claimed_by = NULL, claimed_until = NULL
      WHERE claimed_by IN (
        SELECT holder FROM JSON_TABLE(?, '$[*]' COLUMNS (holder VARCHAR(255) PATH '$')) h)`,

    /** Params: retention in seconds. */
    purgeDelivered: `DELETE FROM ${delivered} WHERE delivered_at < UTC_TIMESTAMP(6) - INTERVAL ? SECOND`,

    /**
     * The router's move (see MySqlRouter): the walk, then, in the same transaction, a
     * copy into each destination's queue and the delete. Only the instance that leads
     * a table (holds its route lock) moves its changes, so the three statements see
     * the same rows (nobody else deletes them, and they work on the walk's ids).
     * The walk: oldest first from the floor, at most the limit, in the led tables;
     * below a floor, a change committed late holds back the later changes of its row
     * until the walk from the start (floor 0) has moved it. That gate is a scalar
     * subquery (LIMIT 1, one probe of the row's index entries): as NOT EXISTS, MariaDB
     * 10.11 took ~200 µs per change walked (a move of 256 changes 50 ms, routing
     * ~10,000 changes/s against ~27,000 now).
     * Params: floor, then (schema, table) per led table, then the floor twice, then the limit.
     */
    routeWalk(tableCount: number): string {
      return `
      SELECT e.id, e.op, e.schema_name, e.table_name
      FROM ${events} e FORCE INDEX (PRIMARY)
      WHERE e.id >= ? AND (e.schema_name, e.table_name) IN (${tablePairs(tableCount)})
        AND (? = 0 OR (
          SELECT p.id FROM ${events} p FORCE INDEX (row_hash_idx) WHERE p.row_hash = e.row_hash AND p.id < ? LIMIT 1) IS NULL)
      ORDER BY e.id
      LIMIT ?`;
    },

    /**
     * Copies the walked changes into the queues of the destinations whose routes take
     * them (only into its target, for a change that has one: a backfill for one destination). Params: ids (JSON array), routes (JSON array of [destination, schema, table, operation]).
     */
    routeCopy: `
      INSERT IGNORE INTO ${deliveries} (destination, ${EVENT_COLUMNS})
      SELECT r.destination, e.id, e.op, e.schema_name, e.table_name, e.row_hash, e.new_row, e.old_row, e.txid, e.created_at
      FROM JSON_TABLE(?, '$[*]' COLUMNS (id BIGINT UNSIGNED PATH '$')) u
      STRAIGHT_JOIN ${events} e FORCE INDEX (PRIMARY) ON e.id = u.id
      STRAIGHT_JOIN JSON_TABLE(?, '$[*]' COLUMNS (
          destination VARCHAR(40) PATH '$[0]',
          schema_name VARCHAR(64) PATH '$[1]',
          table_name  VARCHAR(64) PATH '$[2]',
          op          VARCHAR(8)  PATH '$[3]')) r
        ON r.schema_name = e.schema_name AND r.table_name = e.table_name AND r.op = e.op
           AND (e.target IS NULL OR e.target = r.destination)`,

    /** Params: ids (JSON array). Removes the walked changes from the inbox. */
    routeDelete: `
      DELETE e FROM JSON_TABLE(?, '$[*]' COLUMNS (id BIGINT UNSIGNED PATH '$')) u
      STRAIGHT_JOIN ${events} e FORCE INDEX (PRIMARY) ON e.id = u.id`,

    /** Params: lock name. The route lock of one table (see MySqlRouter); 1 when taken. */
    tryRouteLock: `SELECT GET_LOCK(?, 0) AS ok`,

    /**
     * The backlog per destination and table, for the metrics: deliveries still queued
     * (waiting, retrying or in flight) with the age of the oldest, changes not yet
     * routed (destination ''), then dead letters (kind 'dead'). Cost is bounded on a
     * journal of any size: only the oldest N rows of each queue (and of the inbox, and
     * of dead letters) are read, walking the primary key, so counts stop at N; an
     * oldest age is exact whenever its table has a row among them.
     * (MariaDB has no LATERAL join: one bounded subquery per destination.)
     * Params: (destination, destination, N) per destination, N, then again
     * (destination, destination, N) per destination for the dead letters.
     */
    backlog(destinationCount: number): string {
      const queues = Array.from(
        { length: destinationCount },
        () => `SELECT * FROM (SELECT ? AS destination, q.schema_name, q.table_name, q.created_at FROM ${deliveries} q
               WHERE q.destination = ? ORDER BY q.id LIMIT ?) h`,
      );
      const dead = Array.from(
        { length: destinationCount },
        () => `SELECT * FROM (SELECT ? AS destination, q.schema_name, q.table_name FROM ${deadLetters} q
               WHERE q.destination = ? ORDER BY q.id LIMIT ?) h`,
      );
      return `
      SELECT 'events' AS kind, destination, schema_name, table_name, COUNT(*) AS n,
             TIMESTAMPDIFF(MICROSECOND, MIN(created_at), UTC_TIMESTAMP(6)) AS oldest_us
      FROM (${['SELECT NULL AS destination, NULL AS schema_name, NULL AS table_name, NULL AS created_at FROM DUAL WHERE FALSE', ...queues].join(' UNION ALL ')}) d
      GROUP BY destination, schema_name, table_name
      UNION ALL
      SELECT 'events', '', schema_name, table_name, COUNT(*),
             TIMESTAMPDIFF(MICROSECOND, MIN(created_at), UTC_TIMESTAMP(6))
      FROM (SELECT schema_name, table_name, created_at FROM ${events} ORDER BY id LIMIT ?) h
      GROUP BY schema_name, table_name
      UNION ALL
      SELECT 'dead', destination, schema_name, table_name, COUNT(*), NULL
      FROM (${['SELECT NULL AS destination, NULL AS schema_name, NULL AS table_name FROM DUAL WHERE FALSE', ...dead].join(' UNION ALL ')}) d
      GROUP BY destination, schema_name, table_name`;
    },

    installationId: `SELECT \`value\` FROM ${quoteIdent(n.meta)} WHERE \`key\` = 'installation_id'`,

    /** Latest applied migration (fails if our tables are missing). */
    schemaVersion: `SELECT COALESCE(MAX(version), 0) AS version FROM ${quoteIdent(n.migrations)}`,

    // ---- Operator commands (dead letters, status). Every filter is `deadLetterFilter`'s
    // ten parameters (see deadLetterFilterParams in admin.ts).

    /** Filters (time: failed at or after), then the limit. Times as RFC 3339 UTC text. */
    listDeadLetters: `
      SELECT destination, id, op, schema_name, table_name, attempts, last_status, last_error,
             DATE_FORMAT(created_at, '%Y-%m-%dT%H:%i:%s.%fZ') AS created_at,
             DATE_FORMAT(failed_at, '%Y-%m-%dT%H:%i:%s.%fZ') AS failed_at,
             new_row, old_row
      FROM ${deadLetters}
      WHERE ${deadLetterFilter('>=')}
      ORDER BY id, destination
      LIMIT ?`,

    /**
     * Replay and purge lock the selected dead letters first (MySQL has no DELETE … RETURNING),
     * then act on exactly those ids, in one transaction. Filters (time: failed at or after
     * for replay, before for purge).
     */
    lockDeadLetters: (time: '>=' | '<') => `
      SELECT destination, id FROM ${deadLetters} WHERE ${deadLetterFilter(time)} ORDER BY id, destination FOR UPDATE`,

    /**
     * Params: (destination, id) pairs (JSON array). Puts dead letters back in their
     * destination's queue with their own id (so the event id is unchanged), due now,
     * attempts from zero: only that destination sends them again.
     */
    restoreDeadLetters: `
      INSERT IGNORE INTO ${deliveries} (destination, ${EVENT_COLUMNS})
      SELECT d.destination, d.id, d.op, d.schema_name, d.table_name, d.row_hash, d.new_row, d.old_row, d.txid, d.created_at
      FROM JSON_TABLE(?, '$[*]' COLUMNS (destination VARCHAR(40) PATH '$[0]', id BIGINT UNSIGNED PATH '$[1]')) u
      STRAIGHT_JOIN ${deadLetters} d FORCE INDEX (PRIMARY) ON d.destination = u.destination AND d.id = u.id`,

    /** Params: (destination, id) pairs (JSON array). */
    deleteDeadLetters: `
      DELETE d FROM JSON_TABLE(?, '$[*]' COLUMNS (destination VARCHAR(40) PATH '$[0]', id BIGINT UNSIGNED PATH '$[1]')) u
      STRAIGHT_JOIN ${deadLetters} d FORCE INDEX (PRIMARY) ON d.destination = u.destination AND d.id = u.id`,

    /**
     * Per destination and watched table: what waits, what retries, what is in flight,
     * what is dead, when it last delivered; and, under the destination '', what was
     * captured but not routed yet.
     */
    status: `
      SELECT k.destination, w.schema_name, w.table_name, w.operations,
             COALESCE(j.pending, 0) AS pending, COALESCE(j.retrying, 0) AS retrying,
             COALESCE(j.in_flight, 0) AS in_flight, COALESCE(dl.dead, 0) AS dead_letters,
             j.oldest_age_us, t.last_delivered_at
      FROM ${quoteIdent(n.watchedTables)} w
      LEFT JOIN (
        SELECT destination, schema_name, table_name FROM ${deliveries}
        UNION SELECT '', schema_name, table_name FROM ${events}
        UNION SELECT destination, schema_name, table_name FROM ${deadLetters}
        UNION SELECT destination, schema_name, table_name FROM ${quoteIdent(n.destinationTables)}
      ) k ON k.schema_name = w.schema_name AND k.table_name = w.table_name
      LEFT JOIN (
        SELECT destination, schema_name, table_name,
               SUM((claimed_by IS NULL OR claimed_until < UTC_TIMESTAMP(6))
                   AND (run_at IS NULL OR run_at <= UTC_TIMESTAMP(6))) AS pending,
               SUM((claimed_by IS NULL OR claimed_until < UTC_TIMESTAMP(6)) AND run_at > UTC_TIMESTAMP(6)) AS retrying,
               SUM(claimed_by IS NOT NULL AND claimed_until >= UTC_TIMESTAMP(6)) AS in_flight,
               TIMESTAMPDIFF(MICROSECOND, MIN(created_at), UTC_TIMESTAMP(6)) AS oldest_age_us
        FROM ${deliveries} GROUP BY destination, schema_name, table_name
        UNION ALL
        SELECT '', schema_name, table_name, COUNT(*), 0, 0, TIMESTAMPDIFF(MICROSECOND, MIN(created_at), UTC_TIMESTAMP(6))
        FROM ${events} GROUP BY schema_name, table_name
      ) j ON j.destination = k.destination AND j.schema_name = w.schema_name AND j.table_name = w.table_name
      LEFT JOIN (
        SELECT destination, schema_name, table_name, COUNT(*) AS dead FROM ${deadLetters}
        GROUP BY destination, schema_name, table_name
      ) dl ON dl.destination = k.destination AND dl.schema_name = w.schema_name AND dl.table_name = w.table_name
      LEFT JOIN ${quoteIdent(n.destinationTables)} t
        ON t.destination = k.destination AND t.schema_name = w.schema_name AND t.table_name = w.table_name
      ORDER BY w.schema_name, w.table_name, k.destination`,

    /** Params: destination, schema, table. A best-effort figure for `status`, one short autocommit statement. */
    touchLastDelivery: `
      INSERT INTO ${quoteIdent(n.destinationTables)} (destination, schema_name, table_name, last_delivered_at)
      VALUES (?, ?, ?, UTC_TIMESTAMP(6))
      ON DUPLICATE KEY UPDATE last_delivered_at = VALUES(last_delivered_at)`,

    // ---- The web console and the attempt log (docs/console.md). Read-only but for
    // the attempt log's own writes and prunes.

    /**
     * One batch of the attempt log: a JSON array of rows, each [destination, journal id,
     * schema, table, operation, row key, attempt, time (UTC DATETIME text), duration (ms),
     * address, request headers (JSON text), request body, response status, response body,
     * error, outcome].
     */
    insertAttempts: `
      INSERT INTO ${attempts} (destination, id, schema_name, table_name, op, row_key, attempt, at, duration_ms,
                               address, request_headers, request_body, response_status, response_body, error, outcome)
      SELECT u.destination, u.id, u.schema_name, u.table_name, u.op, u.row_key, u.attempt, u.at, u.duration_ms,
             u.address, u.request_headers, u.request_body, u.response_status, u.response_body, u.error, u.outcome
      FROM JSON_TABLE(?, '$[*]' COLUMNS (
        destination     VARCHAR(40)     PATH '$[0]',
        id              BIGINT UNSIGNED PATH '$[1]',
        schema_name     VARCHAR(64)     PATH '$[2]',
        table_name      VARCHAR(64)     PATH '$[3]',
        op              VARCHAR(8)      PATH '$[4]',
        row_key         VARCHAR(1024)   PATH '$[5]',
        attempt         INT             PATH '$[6]',
        at              DATETIME(6)     PATH '$[7]',
        duration_ms     DOUBLE          PATH '$[8]',
        address         TEXT            PATH '$[9]',
        request_headers TEXT            PATH '$[10]',
        request_body    MEDIUMTEXT      PATH '$[11]',
        response_status INT             PATH '$[12]',
        response_body   TEXT            PATH '$[13]',
        error           TEXT            PATH '$[14]',
        outcome         VARCHAR(9)      PATH '$[15]')) u`,

    /**
     * Prunes the attempt log to its bounds in one statement: params rows kept at most
     * (the newest), seconds kept at most. The newest rows' bound is read through a derived
     * table (MySQL does not let a DELETE read its own table in a subquery otherwise).
     */
    pruneAttempts: `
      DELETE FROM ${attempts}
      WHERE seq <= COALESCE((SELECT b.seq FROM (SELECT seq FROM ${attempts} ORDER BY seq DESC LIMIT 1 OFFSET ?) b), 0)
         OR at < UTC_TIMESTAMP(6) - INTERVAL ? SECOND`,

    /**
     * The attempt log, newest first. Filters, each twice (NULL: any): journal id, schema,
     * table, row key, destination, outcome, older than this seq; then the limit.
     */
    listAttempts: `
      SELECT seq, destination, id, schema_name, table_name, op, row_key, attempt,
             DATE_FORMAT(at, '%Y-%m-%dT%H:%i:%s.%fZ') AS at, duration_ms,
             address, request_headers, request_body, response_status, response_body, error, outcome
      FROM ${attempts}
      WHERE (? IS NULL OR id = ?) AND (? IS NULL OR schema_name = ?) AND (? IS NULL OR table_name = ?)
        AND (? IS NULL OR row_key = ?) AND (? IS NULL OR destination = ?) AND (? IS NULL OR outcome = ?)
        AND (? IS NULL OR seq < ?)
      ORDER BY seq DESC
      LIMIT ?`,

    /**
     * Where one event is, per destination: still in the capture inbox (destination ''),
     * in a destination's queue, dead, or delivered (kept for listener.retention).
     * Params: the journal id, then (destinations JSON array, journal id) three times.
     */
    eventJourney: `
      SELECT 'inbox' AS state, '' AS destination, op, schema_name, table_name,
             DATE_FORMAT(created_at, '%Y-%m-%dT%H:%i:%s.%fZ') AS created_at,
             new_row, old_row, 0 AS attempts, NULL AS last_status, NULL AS last_error, NULL AS at
      FROM ${events} WHERE id = ?
      UNION ALL
      SELECT CASE WHEN claimed_by IS NOT NULL AND claimed_until >= UTC_TIMESTAMP(6) THEN 'in flight'
                  WHEN run_at > UTC_TIMESTAMP(6) THEN 'retrying' ELSE 'pending' END,
             destination, op, schema_name, table_name, DATE_FORMAT(created_at, '%Y-%m-%dT%H:%i:%s.%fZ'),
             new_row, old_row, attempts, last_status, last_error, DATE_FORMAT(run_at, '%Y-%m-%dT%H:%i:%s.%fZ')
      FROM ${deliveries}
      WHERE destination IN (SELECT j.d FROM JSON_TABLE(?, '$[*]' COLUMNS (d VARCHAR(40) PATH '$')) j) AND id = ?
      UNION ALL
      SELECT 'dead', destination, op, schema_name, table_name, DATE_FORMAT(created_at, '%Y-%m-%dT%H:%i:%s.%fZ'),
             new_row, old_row, attempts, last_status, last_error, DATE_FORMAT(failed_at, '%Y-%m-%dT%H:%i:%s.%fZ')
      FROM ${deadLetters}
      WHERE destination IN (SELECT j.d FROM JSON_TABLE(?, '$[*]' COLUMNS (d VARCHAR(40) PATH '$')) j) AND id = ?
      UNION ALL
      SELECT 'delivered', destination, op, schema_name, table_name, DATE_FORMAT(created_at, '%Y-%m-%dT%H:%i:%s.%fZ'),
             new_row, old_row, attempts, NULL, NULL, DATE_FORMAT(delivered_at, '%Y-%m-%dT%H:%i:%s.%fZ')
      FROM ${delivered}
      WHERE destination IN (SELECT j.d FROM JSON_TABLE(?, '$[*]' COLUMNS (d VARCHAR(40) PATH '$')) j) AND id = ?`,

    /** Dead-letter filters (time: failed at or after). How many match. */
    countDeadLetters: `SELECT COUNT(*) AS n FROM ${deadLetters} WHERE ${deadLetterFilter('>=')}`,

    // ---- doctor: read-only checks of the privileges and what is installed.

    /** Params: database, table. */
    tableExists: `SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?`,
    /** The account the server matched us to (`user@host`), and the roles now in effect. */
    currentAccount: `SELECT CURRENT_USER() AS account`,
    enabledRoles: `SELECT ROLE_NAME AS role FROM information_schema.ENABLED_ROLES`,
    /** Params: grantee (`'user'@'host'`), three times. Global, database and table privileges. */
    grants: `
      SELECT NULL AS db, NULL AS tbl, PRIVILEGE_TYPE AS privilege FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = ?
      UNION ALL
      SELECT TABLE_SCHEMA, NULL, PRIVILEGE_TYPE FROM information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE = ?
      UNION ALL
      SELECT TABLE_SCHEMA, TABLE_NAME, PRIVILEGE_TYPE FROM information_schema.TABLE_PRIVILEGES WHERE GRANTEE = ?`,
    /** Params: database, table, then the three trigger names. Our triggers present on the table. */
    captureTriggers: `
      SELECT TRIGGER_NAME AS name FROM information_schema.TRIGGERS
      WHERE TRIGGER_SCHEMA = ? AND EVENT_OBJECT_TABLE = ? AND TRIGGER_NAME IN (?, ?, ?)`,

    // ---- Backfill (src/capture/mysql/backfill.ts, docs/backfill.md) ----

    /**
     * A batch's rows, locked: the next `limit` keys after the last one, in key order,
     * each key column as text (see keyCodec). A writer that changes one of them
     * afterwards waits for the batch's commit, so its change is captured after the
     * row's READ event, with a higher id. A row a writer holds now fails the statement
     * at once (NOWAIT) rather than wait: a batch never waits while it holds locks, so it
     * never deadlocks with a writer and holds writers up for one batch at most; it is
     * tried again, and then reads the committed row. `lockClause` is the server's
     * spelling (MariaDB: LOCK IN SHARE MODE NOWAIT; MySQL 8: FOR SHARE NOWAIT).
     * Params: the last key's parameters (keysetParams), then the limit.
     */
    backfillKeys(table: MySqlTable, keyColumns: readonly string[], condition: string | undefined, after: boolean, lockClause: string): string {
      const codecs = keyColumns.map((k) => keyCodec(columnOf(table, k)));
      const byPrimaryKey = keyColumns.join('\u0000') === table.keyColumns.join('\u0000');
      return `
      SELECT ${codecs.map((c, i) => `${c.read('r')} AS k${i}`).join(', ')}
      FROM ${qualify(table.schema, table.name)} r${byPrimaryKey ? ' FORCE INDEX (PRIMARY)' : ''}
      WHERE ${after ? keysetSql(codecs, '>') : 'TRUE'} AND (${condition ?? 'TRUE'})
      ORDER BY ${codecs.map((c) => c.column('r')).join(', ')}
      LIMIT ?
      ${lockClause}`;
    },

    /**
     * Journals the rows the keys above locked, as READ events, with the capture
     * triggers' own row JSON and row hash (so the values are the same, and the events
     * of a row are ordered with its changes). It reads exactly those rows, by key, so it
     * never waits for a lock: an INSERT … SELECT holds the events table's AUTO-INC lock
     * for as long as it runs, and every capture trigger needs it. The rows are read
     * without a lock of their own, in READ COMMITTED: their latest committed version,
     * the one the batch holds. Params: schema, table, target destination (NULL: all),
     * then each key's parameters (keyParams), `count` keys.
     */
    backfillJournal(table: MySqlTable, keyColumns: readonly string[], count: number): string {
      const codecs = keyColumns.map((k) => keyCodec(columnOf(table, k)));
      const one = codecs.length === 1 ? codecs[0]!.bind : `(${codecs.map((c) => c.bind).join(', ')})`;
      const key = codecs.length === 1 ? codecs[0]!.column('r') : `(${codecs.map((c) => c.column('r')).join(', ')})`;
      return `
      INSERT INTO ${events} (op, schema_name, table_name, row_hash, new_row, old_row, txid, created_at, target)
      SELECT 'READ', ?, ?, ${rowHashSql(table, 'r')}, ${rowJsonSql(table.columns, 'r')}, NULL, CONNECTION_ID(), UTC_TIMESTAMP(6), ?
      FROM ${qualify(table.schema, table.name)} r
      WHERE ${key} IN (${Array.from({ length: count }, () => one).join(', ')})
      ORDER BY ${codecs.map((c) => c.column('r')).join(', ')}`;
    },

    /** Params: id. Locks the backfill's row for the batch's transaction: a cancel waits for it. */
    backfillLock: `SELECT state FROM ${backfills} WHERE id = ? FOR UPDATE`,

    /** Params: last key (JSON, NULL keeps it), rows journaled, done (0|1) three times, id. */
    backfillProgress: `
      UPDATE ${backfills}
      SET last_key = COALESCE(?, last_key), rows_done = rows_done + ?, updated_at = UTC_TIMESTAMP(6),
          state = IF(? = 1, 'done', state), finished_at = IF(? = 1, UTC_TIMESTAMP(6), finished_at),
          active_key = IF(? = 1, NULL, active_key)
      WHERE id = ?`,

    /** Params: schema, table, destination, condition, key columns (JSON), estimate, batch size, rate, max backlog. */
    backfillCreate: `
      INSERT INTO ${backfills} (schema_name, table_name, destination, \`condition\`, key_columns, rows_estimated,
        batch_size, rate, max_backlog, state, active_key, started_at, resumed_at, updated_at)
      SELECT s, t, d, c, k, e, b, r, m, 'running', CONCAT(s, '.', t, '/', COALESCE(d, '')), UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), UTC_TIMESTAMP(6)
      FROM (SELECT ? AS s, ? AS t, ? AS d, ? AS c, ? AS k, ? AS e, ? AS b, ? AS r, ? AS m) v`,

    /** Params: id. */
    backfillById: `SELECT ${BACKFILL_COLUMNS} FROM ${backfills} WHERE id = ?`,

    /** Params: schema, table, destination ('' for all). */
    backfillUnfinished: `
      SELECT ${BACKFILL_COLUMNS} FROM ${backfills}
      WHERE schema_name = ? AND table_name = ? AND COALESCE(destination, '') = ? AND state = 'running'`,

    /** Params: batch size, rate, max backlog, id. A new run (of an interrupted or failed backfill): its rate counts from now. */
    backfillResume: `
      UPDATE ${backfills}
      SET batch_size = ?, rate = ?, max_backlog = ?, state = 'running', error = NULL, finished_at = NULL,
          active_key = CONCAT(schema_name, '.', table_name, '/', COALESCE(destination, '')),
          resumed_at = UTC_TIMESTAMP(6), rows_at_resume = rows_done, updated_at = UTC_TIMESTAMP(6)
      WHERE id = ? AND state IN ('running', 'failed')`,

    /** Params: schema, table, destination ('' for all). The newest failed backfill (--resume continues it). */
    backfillLatestFailed: `
      SELECT ${BACKFILL_COLUMNS} FROM ${backfills}
      WHERE schema_name = ? AND table_name = ? AND COALESCE(destination, '') = ? AND state = 'failed'
      ORDER BY id DESC LIMIT 1`,

    /** Params: error, id. */
    backfillFail: `
      UPDATE ${backfills} SET state = 'failed', error = ?, finished_at = UTC_TIMESTAMP(6), updated_at = UTC_TIMESTAMP(6), active_key = NULL
      WHERE id = ? AND state = 'running'`,

    /** Params: schema, table, destination ('' for all destinations' backfill, NULL for every one of the table) twice. */
    backfillCancelable: `
      SELECT ${BACKFILL_COLUMNS} FROM ${backfills}
      WHERE schema_name = ? AND table_name = ? AND state = 'running' AND (? IS NULL OR COALESCE(destination, '') = ?)
      FOR UPDATE`,

    /** Params: ids (JSON array). */
    backfillCancel: `
      UPDATE ${backfills} SET state = 'cancelled', finished_at = UTC_TIMESTAMP(6), updated_at = UTC_TIMESTAMP(6), active_key = NULL
      WHERE id IN (SELECT c.id FROM JSON_TABLE(?, '$[*]' COLUMNS (id BIGINT UNSIGNED PATH '$')) c) AND state = 'running'`,

    /** Params: limit. Newest first. */
    backfillList: `SELECT ${BACKFILL_COLUMNS} FROM ${backfills} ORDER BY id DESC LIMIT ?`,

    /** The unfinished backfills, for the metrics. */
    backfillsRunning: `SELECT ${BACKFILL_COLUMNS} FROM ${backfills} WHERE state = 'running' ORDER BY id`,

    /**
     * Params: schema, table, cap, destinations (JSON array), cap. What a batch waits on:
     * the table's changes not routed yet, and the destinations' due events (a retry
     * scheduled for later is not ahead of anything), each counted up to the cap.
     */
    backfillBacklog: `
      SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM ${events} e WHERE e.schema_name = ? AND e.table_name = ? LIMIT ?) a)
           + (SELECT COUNT(*) FROM (SELECT 1 FROM ${deliveries} d
                WHERE d.destination IN (SELECT j.name FROM JSON_TABLE(?, '$[*]' COLUMNS (name VARCHAR(40) PATH '$')) j)
                  AND (d.run_at IS NULL OR d.run_at <= UTC_TIMESTAMP(6)) LIMIT ?) b) AS queued`,

    /** Params: lease name. 1 when taken. A backfill's lease: held by the session that runs it. */
    backfillTryLease: `SELECT GET_LOCK(?, 0) AS ok`,
    /** Params: lease name. 1 when nobody holds it. */
    backfillLeaseFree: `SELECT IS_FREE_LOCK(?) AS free`,

    // ---- Log capture (listener.capture: log): the binlog reader (src/capture/mysql/binlog/)
    // writes what it decodes into the same inbox the triggers write, and records how far it
    // got in the same transaction (migration 000006).

    /** Params: stream name. Where the journal ends in the binlog (none: never journaled). */
    capturePosition: `SELECT binlog_file, binlog_pos, gtid FROM ${capturePositions} WHERE stream_name = ?`,
    /** Params: stream name, binlog file, position, GTID, commit time (UTC text or NULL). In the transaction of the events it covers. */
    saveCapturePosition: `
      INSERT INTO ${capturePositions} (stream_name, binlog_file, binlog_pos, gtid, commit_time, updated_at)
      VALUES (?, ?, ?, ?, ?, UTC_TIMESTAMP(6))
      ON DUPLICATE KEY UPDATE binlog_file = VALUES(binlog_file), binlog_pos = VALUES(binlog_pos),
        gtid = COALESCE(VALUES(gtid), gtid), commit_time = COALESCE(VALUES(commit_time), commit_time),
        updated_at = VALUES(updated_at)`,
    /** Params: stream name, binlog file, position. The start of a new stream (install): kept if one exists. */
    initCapturePosition: `
      INSERT IGNORE INTO ${capturePositions} (stream_name, binlog_file, binlog_pos, gtid, commit_time, updated_at)
      VALUES (?, ?, ?, NULL, NULL, UTC_TIMESTAMP(6))`,
    /** Params: stream name. Status: the stored position and how old it is. */
    captureStatus: `
      SELECT binlog_file, binlog_pos, gtid, DATE_FORMAT(commit_time, '%Y-%m-%dT%H:%i:%s.%fZ') AS commit_time,
             TIMESTAMPDIFF(MICROSECOND, commit_time, UTC_TIMESTAMP(6)) / 1e6 AS last_commit_age_s,
             TIMESTAMPDIFF(MICROSECOND, updated_at, UTC_TIMESTAMP(6)) / 1e6 AS last_journaled_age_s
      FROM ${capturePositions} WHERE stream_name = ?`,
    /** Params: lease name. 1 when taken: the reader's lease, held by its journal connection. */
    tryCaptureLease: `SELECT GET_LOCK(?, 0) AS ok`,
    /** Params: lease name. The connection id of the reader holding the lease; NULL when free. */
    captureLeaseHolder: `SELECT IS_USED_LOCK(?) AS holder`,
    /** The binary log files and their sizes (lag in bytes). Needs REPLICATION CLIENT (MariaDB: BINLOG MONITOR). */
    binaryLogs: 'SHOW BINARY LOGS',
    /** The settings log capture needs. */
    binlogSettings: `SELECT @@GLOBAL.log_bin AS log_bin, @@GLOBAL.binlog_format AS binlog_format,
             @@GLOBAL.binlog_row_image AS binlog_row_image, @@GLOBAL.server_id AS server_id`,

    /**
     * The journal insert of a batch of one table's rows of one operation, in commit
     * order, decoded from the binlog with the columns the TABLE_MAP gave at commit. Each
     * value comes back as a parameter cast to its column's type (binlog/columns.ts), and
     * the row JSON and row hash are built by the capture triggers' own expressions, so
     * they are the trigger's. Params: schema, table, then per row: txid, commit time, the
     * new row's values (INSERT, UPDATE), the old row's (UPDATE, DELETE).
     */
    insertCapturedRows(shape: CapturedShape, op: 'INSERT' | 'UPDATE' | 'DELETE', count: number): string {
      const cols = shape.columns;
      const hasNew = op !== 'DELETE';
      const hasOld = op !== 'INSERT';
      const side = (prefix: string) => cols.map((c) => `${c.typed} AS ${prefix}${c.derived.name}`);
      const first = ['0 AS seq', 'CAST(? AS UNSIGNED) AS txid', 'CAST(? AS DATETIME(6)) AS created_at', ...(hasNew ? side('n_') : []), ...(hasOld ? side('o_') : [])];
      const rest = ['?', '?', ...(hasNew ? cols.map((c) => c.typed) : []), ...(hasOld ? cols.map((c) => c.typed) : [])];
      const rows = [`SELECT ${first.join(', ')}`];
      for (let i = 1; i < count; i++) rows.push(`SELECT ${i}, CAST(${rest[0]} AS UNSIGNED), CAST(${rest[1]} AS DATETIME(6)), ${rest.slice(2).join(', ')}`);
      const json = (prefix: string) =>
        `JSON_OBJECT(${cols.map((c) => `${quoteLiteral(c.name)}, ${columnValueSql({ ...c.derived, name: prefix + c.derived.name }, 'b')}`).join(', ')})`;
      const keyed = hasNew ? 'n_' : 'o_';
      const keyAliases = shape.keyColumns.map((k) => cols.find((c) => c.name === k));
      const hashTable: MySqlTable = {
        schema: shape.schema,
        name: shape.table,
        keyColumns: keyAliases.every((c) => c !== undefined) ? keyAliases.map((c) => keyed + c!.derived.name) : [],
        columns: cols.map((c) => ({ ...c.derived, name: keyed + c.derived.name })),
        engine: null,
      };
      return `
      INSERT INTO ${events} (op, schema_name, table_name, row_hash, new_row, old_row, txid, created_at)
      SELECT ${quoteLiteral(op)}, ?, ?, ${rowHashSql(hashTable, 'b')}, ${hasNew ? json('n_') : 'NULL'}, ${hasOld ? json('o_') : 'NULL'}, b.txid, b.created_at
      FROM (${rows.join('\n        UNION ALL ')}) b
      ORDER BY b.seq`;
    },
    /** Params: schema, table, txid, commit time. A TRUNCATE of a watched table: one event without a row. */
    insertCapturedTruncate: `
      INSERT INTO ${events} (op, schema_name, table_name, row_hash, new_row, old_row, txid, created_at)
      VALUES ('TRUNCATE', ?, ?, NULL, NULL, NULL, ?, ?)`,
  };
}

/** A table's columns as one TABLE_MAP of the binlog gave them (see binlog/columns.ts). */
export interface CapturedShape {
  readonly schema: string;
  readonly table: string;
  /** The table's primary key (by name): the row hash's columns. */
  readonly keyColumns: readonly string[];
  readonly columns: readonly CapturedColumn[];
}

/** A backfill's row as the store reads it (see fromRow in backfill.ts). Times are UTC text. */
const BACKFILL_COLUMNS = `id, schema_name, table_name, destination, \`condition\`, key_columns, last_key, rows_done, rows_estimated,
  batch_size, rate, max_backlog, state, error, started_at, resumed_at, rows_at_resume, updated_at, finished_at`;

/** How a key column travels between batches: read as exact text, compared as its own type. */
export interface KeyCodec {
  /** The column, qualified by `ref`. */
  column(ref: string): string;
  /** The column as text: its value, exactly. */
  read(ref: string): string;
  /** A parameter holding that text, as a value of the column's type. */
  readonly bind: string;
}

const INTEGER_TYPES = new Set(['tinyint', 'smallint', 'mediumint', 'int', 'integer', 'bigint']);

/**
 * A string parameter compared with an integer column is compared as a double (2^53
 * and up lose digits), so integers are cast back; bytes travel as hex; ENUM, SET and
 * BIT sort by their number, so they travel as that. Text, dates and times compare as
 * the text they were read as.
 */
export function keyCodec(col: MySqlColumn): KeyCodec {
  const column = (ref: string) => `${ref}.${quoteIdent(col.name)}`;
  const type = col.dataType;
  const text = (ref: string) => `CAST(${column(ref)} AS CHAR)`;
  if (INTEGER_TYPES.has(type)) return { column, read: text, bind: col.columnType.includes('unsigned') ? 'CAST(? AS UNSIGNED)' : 'CAST(? AS SIGNED)' };
  if (type === 'decimal' || type === 'numeric') {
    const m = /\((\d+)(?:,(\d+))?\)/.exec(col.columnType);
    return { column, read: text, bind: `CAST(? AS DECIMAL(${m?.[1] ?? 65},${m?.[2] ?? 0}))` };
  }
  if (BINARY_TYPES.has(type)) return { column, read: (ref) => `HEX(${column(ref)})`, bind: 'UNHEX(?)' };
  if (type === 'enum' || type === 'set' || type === 'bit') return { column, read: (ref) => `CAST(${column(ref)} + 0 AS CHAR)`, bind: 'CAST(? AS UNSIGNED)' };
  if (type === 'float' || type === 'double' || type === 'real') {
    // Its text is rounded (a FLOAT 2.2 reads "2.2", and compares greater than 2.2): a keyset over it would repeat rows.
    throw new AppError('BACKFILL_KEY', `column ${col.name} is a ${type}: a backfill cannot read in order by an approximate number`, {
      hint: 'give a unique key of exact columns with --key',
    });
  }
  return { column, read: text, bind: '?' };
}

/**
 * Row order on the key, spelled out (MySQL reads a row constructor comparison less
 * well): '>' is "after the key", '<=' is "up to the key". Its parameters: keysetParams.
 */
function keysetSql(codecs: readonly KeyCodec[], op: '>' | '<='): string {
  const strict = op === '>' ? '>' : '<';
  const terms = codecs.map((c, i) => [...codecs.slice(0, i).map((p) => `${p.column('r')} = ${p.bind}`), `${c.column('r')} ${strict} ${c.bind}`].join(' AND '));
  if (op === '<=') terms.push(codecs.map((c) => `${c.column('r')} = ${c.bind}`).join(' AND '));
  return `(${terms.map((t) => `(${t})`).join(' OR ')})`;
}

/** The parameters of backfillJournal's key list. */
export function keyParams(keys: ReadonlyArray<readonly string[]>): string[] {
  return keys.flat();
}

/** The parameters of keysetSql for a key of `n` columns, in order. */
export function keysetParams(key: readonly string[], op: '>' | '<='): string[] {
  const out: string[] = [];
  for (let i = 0; i < key.length; i++) out.push(...key.slice(0, i + 1));
  if (op === '<=') out.push(...key);
  return out;
}

function columnOf(table: MySqlTable, name: string): MySqlColumn {
  const col = table.columns.find((c) => c.name === name);
  if (!col) throw new Error(`column ${name} is not a column of ${table.schema}.${table.name}`);
  return col;
}

/**
 * Which dead letters: params ids (JSON array or NULL) twice, schema twice, table
 * twice, time bound (UTC `YYYY-MM-DD HH:MM:SS.ffffff` or NULL) twice, destination twice.
 */
function deadLetterFilter(time: '>=' | '<'): string {
  return `(? IS NULL OR id IN (SELECT f.id FROM JSON_TABLE(?, '$[*]' COLUMNS (id BIGINT UNSIGNED PATH '$')) f))
        AND (? IS NULL OR schema_name = ?) AND (? IS NULL OR table_name = ?)
        AND (? IS NULL OR failed_at ${time} ?) AND (? IS NULL OR destination = ?)`;
}

/** Claims run in READ COMMITTED: no gap locks, so a claim never holds up the triggers' inserts. */
export const CLAIM_ISOLATION = 'SET TRANSACTION ISOLATION LEVEL READ COMMITTED';
/** The same for every transaction of a session: the claims' own connection. */
export const CLAIM_SESSION_ISOLATION = 'SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED';
