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
  const deadLetters = quoteIdent(n.deadLetters);
  const delivered = quoteIdent(n.deliveredEvents);
  const pairs = batchOf('');
  return {
    /**
     * The claim, first half (in a READ COMMITTED transaction; see MySqlJournal.claim):
     * - due events only (run_at NULL or past) that nobody holds, or whose holder's lease ran out;
     * - the ordering gate: an event is eligible only if no earlier event of the same row
     *   (same row_hash) is still in the journal, pending, retrying or in flight, whoever
     *   holds it. The trigger inserts while the writer holds the row's lock, so for one
     *   row "earlier id" is "committed earlier". A failing event blocks only its own row.
     *   The subquery is a plain (consistent, non-locking) read: FOR UPDATE applies to the
     *   outer table only, so SKIP LOCKED never hides an earlier event from the gate;
     * - oldest first, through the primary key;
     * - FOR UPDATE SKIP LOCKED so instances never wait on each other's claims;
     * - LIMIT = the caller's free delivery slots, never more;
     * - only the tables this daemon is configured for (one (?, ?) pair each).
     * The lease end is computed here, once, and returned as text: it is written as
     * claimed_until by `markClaimed` and is the claim's token, so the token is
     * exactly the stored value.
     * Params: lease in microseconds, then (schema, table) per table, then the limit.
     */
    claimCandidates(tableCount: number): string {
      return `
      SELECT e.id, e.op, e.schema_name, e.table_name,
             DATE_FORMAT(e.created_at, '%Y-%m-%dT%H:%i:%s.%fZ') AS ts,
             e.new_row, e.old_row, e.attempts + 1 AS attempts,
             DATE_FORMAT(UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND, ${TOKEN_FORMAT}) AS token
      FROM ${events} e
      WHERE (e.run_at IS NULL OR e.run_at <= UTC_TIMESTAMP(6))
        AND (e.claimed_by IS NULL OR e.claimed_until < UTC_TIMESTAMP(6))
        AND (e.schema_name, e.table_name) IN (${tablePairs(tableCount)})
        AND NOT EXISTS (
          SELECT 1 FROM ${events} p
          WHERE p.row_hash = e.row_hash AND p.id < e.id)
      ORDER BY e.id
      LIMIT ?
      FOR UPDATE SKIP LOCKED`;
    },

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
     * Params: (id, token, delay ms, refund 0|1, status, error) tuples, instance id.
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
          e.last_status = u.status, e.last_error = u.error
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

    installationId: `SELECT \`value\` FROM ${quoteIdent(n.meta)} WHERE \`key\` = 'installation_id'`,

    /** Latest applied migration (fails if our tables are missing). */
    schemaVersion: `SELECT COALESCE(MAX(version), 0) AS version FROM ${quoteIdent(n.migrations)}`,
  };
}

/** Claims run in READ COMMITTED: no gap locks, so a claim never holds up the triggers' inserts. */
export const CLAIM_ISOLATION = 'SET TRANSACTION ISOLATION LEVEL READ COMMITTED';
