/**
 * Every statement the daemon runs against MySQL/MariaDB at runtime, in one place.
 * Values are always parameters; the only pasted names are our own tables, quoted
 * by `quoteIdent`.
 *
 * MySQL has no arrays as parameters (PostgreSQL's unnest($1::bigint[])): a batch
 * travels as one JSON parameter read with JSON_TABLE, so each statement keeps one
 * text (and one prepared statement) whatever the batch size, and joins the
 * journal through its primary key (eq_ref).
 *
 * Times: every stored time is UTC DATETIME(6), written and compared with
 * UTC_TIMESTAMP(6), so no session time zone ever enters the journal.
 */
import { quoteIdent } from './sql.js';
import { objectNames } from './triggers.js';

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
  /** What a claim returns per event. Its first parameter: the lease in microseconds. */
  const claimColumns = `e.id, e.op, e.schema_name, e.table_name,
             DATE_FORMAT(e.created_at, '%Y-%m-%dT%H:%i:%s.%fZ') AS ts,
             e.new_row, e.old_row, e.attempts + 1 AS attempts,
             DATE_FORMAT(UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND, ${TOKEN_FORMAT}) AS token,
             e.row_hash,
             EXISTS (SELECT 1 FROM ${events} n FORCE INDEX (row_hash_idx)
                     WHERE n.row_hash = e.row_hash AND n.id > e.id) AS has_next`;
  /** Due, held by nobody (or by a lapsed lease), of this daemon's tables. */
  const eligible = (tableCount: number) => `(e.run_at IS NULL OR e.run_at <= UTC_TIMESTAMP(6))
        AND (e.claimed_by IS NULL OR e.claimed_until < UTC_TIMESTAMP(6))
        AND (e.schema_name, e.table_name) IN (${tablePairs(tableCount)})`;
  const deadLetters = quoteIdent(n.deadLetters);
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
     *   The subquery is a plain (consistent, non-locking) read: FOR UPDATE applies to the
     *   outer table only, so SKIP LOCKED never hides an earlier event from the gate;
     * - oldest first through the primary key, within a window of ids [lo, hi) (see
     *   journal/claim-window.ts): a row with a long backlog costs a walk at most the
     *   window, and the walk never starts over the delete-marked entries that
     *   delivered events leave at the head of the index until InnoDB purges them (a
     *   walk from the start slowed steadily while a long transaction held the purge
     *   back: 4,100 to 2,000 events/s within 15 s);
     * - the indexes are named: a plan must not depend on statistics, which InnoDB
     *   recomputes as the journal fills and empties;
     * - FOR UPDATE SKIP LOCKED so instances never wait on each other's claims;
     * - LIMIT = the caller's free delivery slots, never more;
     * - only the tables this daemon is configured for (one (?, ?) pair each).
     * has_next: whether more events of the row wait (its next one is then looked up
     * as a head once this one is settled).
     * The lease end is computed here, once, and returned as text: it is written as
     * claimed_until by `markClaimed` and is the claim's token, so the token is
     * exactly the stored value.
     * Params: lease in microseconds, lo, hi, then (schema, table) per table, then the limit.
     */
    claimWalk(tableCount: number): string {
      return `
      SELECT ${claimColumns}
      FROM ${events} e FORCE INDEX (PRIMARY)
      WHERE e.id >= ? AND e.id < ?
        AND ${eligible(tableCount)}
        AND NOT EXISTS (
          SELECT 1 FROM ${events} p FORCE INDEX (row_hash_idx)
          WHERE p.row_hash = e.row_hash AND p.id < e.id)
      ORDER BY e.id
      LIMIT ?
      FOR UPDATE SKIP LOCKED`;
    },

    /**
     * The heads of busy rows: for each row hash (a JSON array), the row's oldest event,
     * through the gate's index; being the oldest, it needs no gate. Params: lease in
     * microseconds, row hashes, then (schema, table) per table.
     */
    claimHeads(tableCount: number): string {
      return `
      SELECT ${claimColumns}
      FROM ${events} e
      WHERE e.id IN (
          SELECT (SELECT p.id FROM ${events} p FORCE INDEX (row_hash_idx) WHERE p.row_hash = j.h ORDER BY p.id LIMIT 1)
          FROM JSON_TABLE(?, '$[*]' COLUMNS (h BIGINT PATH '$')) j)
        AND ${eligible(tableCount)}
      FOR UPDATE SKIP LOCKED`;
    },

    /** The first id at or above ? (a walk's window start), NULL for none. */
    firstIdFrom: `SELECT MIN(id) AS id FROM ${events} WHERE id >= ?`,

    /** The claim, second half, on the rows the first half locked. Params: ids (JSON array), instance id, token. */
    markClaimed: `
      UPDATE JSON_TABLE(?, '$[*]' COLUMNS (id BIGINT UNSIGNED PATH '$')) u
      JOIN ${events} e ON e.id = u.id
      SET e.claimed_by = ?, e.claimed_until = ?, e.attempts = e.attempts + 1`,

    /**
     * Deletes the events the claims still hold (delivered, or copied elsewhere just before).
     * Params: (id, token, …) tuples (extra elements are ignored), instance id.
     */
    deleteHeld: `
      DELETE e FROM ${pairs}
      JOIN ${events} e ON e.id = u.id AND e.claimed_until = u.token
      WHERE e.claimed_by = ?`,

    /**
     * Moving an event to another table takes three statements (MySQL has no
     * DELETE … RETURNING into INSERT), in one transaction: lock the events the claim
     * still holds, copy them, delete them. Once locked, nothing else can change them,
     * so the three see the same rows. Params of each: (id, token) pairs, instance id.
     */
    lockHeld: `
      SELECT e.id FROM ${pairs}
      JOIN ${events} e ON e.id = u.id AND e.claimed_until = u.token
      WHERE e.claimed_by = ?
      FOR UPDATE`,

    /** Copies held events into delivered_events (retention). Params: pairs, instance id. */
    copyDelivered: `
      INSERT INTO ${delivered} (${EVENT_COLUMNS}, attempts, delivered_at)
      SELECT e.id, e.op, e.schema_name, e.table_name, e.row_hash, e.new_row, e.old_row, e.txid,
             e.created_at, e.attempts, UTC_TIMESTAMP(6)
      FROM ${pairs}
      JOIN ${events} e ON e.id = u.id AND e.claimed_until = u.token
      WHERE e.claimed_by = ?
      ON DUPLICATE KEY UPDATE attempts = VALUES(attempts), delivered_at = VALUES(delivered_at)`,

    /** Copies held events into dead_letters. Params: (id, token, status, error) tuples, instance id. */
    copyDead: `
      INSERT INTO ${deadLetters} (${EVENT_COLUMNS}, attempts, last_status, last_error, failed_at)
      SELECT e.id, e.op, e.schema_name, e.table_name, e.row_hash, e.new_row, e.old_row, e.txid,
             e.created_at, e.attempts, u.status, u.error, UTC_TIMESTAMP(6)
      FROM ${batchOf(`,
        status INT  PATH '$[2]',
        error  TEXT PATH '$[3]'`)}
      JOIN ${events} e ON e.id = u.id AND e.claimed_until = u.token
      WHERE e.claimed_by = ?
      ON DUPLICATE KEY UPDATE attempts = VALUES(attempts), last_status = VALUES(last_status),
        last_error = VALUES(last_error), failed_at = VALUES(failed_at)`,

    /**
     * Params: (id, token, delay ms, refund 0|1, status, error or null to keep the last one) tuples, instance id.
     * A refunded attempt (endpoint outage, shutdown) does not count.
     */
    scheduleRetry: `
      UPDATE ${batchOf(`,
        delay_ms INT  PATH '$[2]',
        refund   INT  PATH '$[3]',
        status   INT  PATH '$[4]',
        error    TEXT PATH '$[5]'`)}
      JOIN ${events} e ON e.id = u.id AND e.claimed_until = u.token
      SET e.claimed_by = NULL, e.claimed_until = NULL,
          e.run_at = UTC_TIMESTAMP(6) + INTERVAL u.delay_ms * 1000 MICROSECOND,
          e.attempts = GREATEST(e.attempts - u.refund, 0),
          e.last_status = IF(u.error IS NULL, e.last_status, u.status),
          e.last_error = COALESCE(u.error, e.last_error)
      WHERE e.claimed_by = ?`,

    /**
     * The endpoint answers again: retries waiting for a later time become due now.
     * Params: (schema, table) per table of this daemon.
     */
    retryNow(tableCount: number): string {
      return `
      UPDATE ${events} SET run_at = UTC_TIMESTAMP(6)
      WHERE run_at > UTC_TIMESTAMP(6) AND (claimed_by IS NULL OR claimed_until < UTC_TIMESTAMP(6))
        AND (schema_name, table_name) IN (${tablePairs(tableCount)})`;
    },

    /** Params: instance id. Gives back unfinished claims without counting their attempt. */
    releaseClaims: `
      UPDATE ${events} SET claimed_by = NULL, claimed_until = NULL,
        attempts = GREATEST(attempts - 1, 0)
      WHERE claimed_by = ?`,

    /** Params: LIKE pattern of instance ids on this host ('!' escapes). */
    claimHolders: `
      SELECT DISTINCT claimed_by FROM ${events}
      WHERE claimed_by LIKE ? ESCAPE '!' AND claimed_until > UTC_TIMESTAMP(6)`,

    /** Params: instance ids (JSON array). Ends the claims of processes known to be dead. */
    releaseClaimsOf: `
      UPDATE ${events} SET claimed_by = NULL, claimed_until = NULL
      WHERE claimed_by IN (
        SELECT holder FROM JSON_TABLE(?, '$[*]' COLUMNS (holder VARCHAR(255) PATH '$')) h)`,

    /** Params: retention in seconds. */
    purgeDelivered: `DELETE FROM ${delivered} WHERE delivered_at < UTC_TIMESTAMP(6) - INTERVAL ? SECOND`,

    /**
     * The backlog per table, for the metrics: events still in the journal (waiting,
     * retrying or in flight) with the age of the oldest, then dead letters (kind
     * 'dead'). Cost is bounded on a journal of any size: only the oldest N rows of
     * the journal (and of dead letters) are read, walking the primary key, so counts
     * stop at N; a table's oldest age is exact whenever it has an event among them.
     * Params: N, N.
     */
    backlog: `
      SELECT 'events' AS kind, schema_name, table_name, COUNT(*) AS n,
             TIMESTAMPDIFF(MICROSECOND, MIN(created_at), UTC_TIMESTAMP(6)) AS oldest_us
      FROM (SELECT schema_name, table_name, created_at FROM ${events} ORDER BY id LIMIT ?) h
      GROUP BY schema_name, table_name
      UNION ALL
      SELECT 'dead', schema_name, table_name, COUNT(*), NULL
      FROM (SELECT schema_name, table_name FROM ${deadLetters} ORDER BY id LIMIT ?) h
      GROUP BY schema_name, table_name`,

    installationId: `SELECT \`value\` FROM ${quoteIdent(n.meta)} WHERE \`key\` = 'installation_id'`,

    /** Latest applied migration (fails if our tables are missing). */
    schemaVersion: `SELECT COALESCE(MAX(version), 0) AS version FROM ${quoteIdent(n.migrations)}`,

    // ---- Operator commands (dead letters, status). Every filter is `deadLetterFilter`'s
    // eight parameters (see deadLetterFilterParams in admin.ts).

    /** Filters (time: failed at or after), then the limit. Times as RFC 3339 UTC text. */
    listDeadLetters: `
      SELECT id, op, schema_name, table_name, attempts, last_status, last_error,
             DATE_FORMAT(created_at, '%Y-%m-%dT%H:%i:%s.%fZ') AS created_at,
             DATE_FORMAT(failed_at, '%Y-%m-%dT%H:%i:%s.%fZ') AS failed_at,
             new_row, old_row
      FROM ${deadLetters}
      WHERE ${deadLetterFilter('>=')}
      ORDER BY id
      LIMIT ?`,

    /**
     * Replay and purge lock the selected dead letters first (MySQL has no DELETE … RETURNING),
     * then act on exactly those ids, in one transaction. Filters (time: failed at or after
     * for replay, before for purge).
     */
    lockDeadLetters: (time: '>=' | '<') => `
      SELECT id FROM ${deadLetters} WHERE ${deadLetterFilter(time)} ORDER BY id FOR UPDATE`,

    /**
     * Params: ids (JSON array). Puts dead letters back in the journal with their own id (so
     * the event id is unchanged), due now, attempts from zero.
     */
    restoreDeadLetters: `
      INSERT INTO ${events} (${EVENT_COLUMNS})
      SELECT d.id, d.op, d.schema_name, d.table_name, d.row_hash, d.new_row, d.old_row, d.txid, d.created_at
      FROM JSON_TABLE(?, '$[*]' COLUMNS (id BIGINT UNSIGNED PATH '$')) u
      JOIN ${deadLetters} d ON d.id = u.id`,

    /** Params: ids (JSON array). */
    deleteDeadLetters: `
      DELETE d FROM JSON_TABLE(?, '$[*]' COLUMNS (id BIGINT UNSIGNED PATH '$')) u
      JOIN ${deadLetters} d ON d.id = u.id`,

    /** Per watched table: what waits, what retries, what is in flight, what is dead. */
    status: `
      SELECT w.schema_name, w.table_name, w.operations,
             COALESCE(j.pending, 0) AS pending, COALESCE(j.retrying, 0) AS retrying,
             COALESCE(j.in_flight, 0) AS in_flight, COALESCE(dl.dead, 0) AS dead_letters,
             j.oldest_age_us, w.last_delivered_at
      FROM ${quoteIdent(n.watchedTables)} w
      LEFT JOIN (
        SELECT schema_name, table_name,
               SUM((claimed_by IS NULL OR claimed_until < UTC_TIMESTAMP(6))
                   AND (run_at IS NULL OR run_at <= UTC_TIMESTAMP(6))) AS pending,
               SUM((claimed_by IS NULL OR claimed_until < UTC_TIMESTAMP(6)) AND run_at > UTC_TIMESTAMP(6)) AS retrying,
               SUM(claimed_by IS NOT NULL AND claimed_until >= UTC_TIMESTAMP(6)) AS in_flight,
               TIMESTAMPDIFF(MICROSECOND, MIN(created_at), UTC_TIMESTAMP(6)) AS oldest_age_us
        FROM ${events} GROUP BY schema_name, table_name
      ) j ON j.schema_name = w.schema_name AND j.table_name = w.table_name
      LEFT JOIN (
        SELECT schema_name, table_name, COUNT(*) AS dead FROM ${deadLetters} GROUP BY schema_name, table_name
      ) dl ON dl.schema_name = w.schema_name AND dl.table_name = w.table_name
      ORDER BY w.schema_name, w.table_name`,

    /** Params: schema, table. A best-effort figure for `status`, one short autocommit statement. */
    touchLastDelivery: `UPDATE ${quoteIdent(n.watchedTables)} SET last_delivered_at = UTC_TIMESTAMP(6) WHERE schema_name = ? AND table_name = ?`,

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
  };
}

/**
 * Which dead letters: params ids (JSON array or NULL) twice, schema twice, table
 * twice, time bound (UTC `YYYY-MM-DD HH:MM:SS.ffffff` or NULL) twice.
 */
function deadLetterFilter(time: '>=' | '<'): string {
  return `(? IS NULL OR id IN (SELECT f.id FROM JSON_TABLE(?, '$[*]' COLUMNS (id BIGINT UNSIGNED PATH '$')) f))
        AND (? IS NULL OR schema_name = ?) AND (? IS NULL OR table_name = ?)
        AND (? IS NULL OR failed_at ${time} ?)`;
}

/** Claims run in READ COMMITTED: no gap locks, so a claim never holds up the triggers' inserts. */
export const CLAIM_ISOLATION = 'SET TRANSACTION ISOLATION LEVEL READ COMMITTED';
/** The same for every transaction of a session: the claims' own connection. */
export const CLAIM_SESSION_ISOLATION = 'SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED';
