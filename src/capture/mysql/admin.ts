/**
 * Operator functions over the MySQL/MariaDB journal: dead letters (list, replay,
 * purge) and a per-table status, with the same results as PostgreSQL's
 * (../postgres/admin.ts).
 */
import type mysql from 'mysql2/promise';
import {
  toAttemptEntry,
  toJourney,
  type AttemptDbRow,
  type AttemptEntry,
  type AttemptFilter,
  type CaptureStatus,
  type DeadLetter,
  type DeadLetterFilter,
  type DeadLetterRow,
  type EventJourney,
  type JourneyDbRow,
  type TableStatus,
} from '../postgres/admin.js';
import { bytesAfter } from './binlog/settings.js';
import { CAPTURE_STREAM } from './install.js';
import { readEventIdPrefix } from './journal.js';
import { makeQueries } from './queries.js';

type Conn = mysql.Connection;

/** A time as the journal stores it: UTC DATETIME(6) text. */
export function utcDatetime(d: Date): string {
  return d.toISOString().replace('T', ' ').replace('Z', '000');
}

/** The ten parameters of a dead-letter filter (each value twice: `? IS NULL OR col = ?`). */
export function deadLetterFilterParams(f: DeadLetterFilter): Array<string | null> {
  const ids = f.ids && f.ids.length > 0 ? JSON.stringify(f.ids) : null;
  const time = f.time ? utcDatetime(f.time) : null;
  const schema = f.table?.schema ?? null;
  const table = f.table?.name ?? null;
  const destination = f.destination ?? null;
  return [ids, ids, schema, schema, table, table, time, time, destination, destination];
}

async function select<T>(conn: Conn, sql: string, values: Array<string | null> = []): Promise<T[]> {
  const [r] = await conn.execute<mysql.RowDataPacket[]>(sql, values);
  return r as unknown as T[];
}

/** The column in a row the server may return as a number or a (big number) string. */
const num = (v: unknown): number => Number(v ?? 0);

export async function listDeadLetters(conn: Conn, prefix: string, filter: DeadLetterFilter, limit = 100): Promise<DeadLetter[]> {
  const eventIdPrefix = await readEventIdPrefix(conn, prefix);
  const rows = await select<DeadLetterRow>(conn, makeQueries(prefix).listDeadLetters, [...deadLetterFilterParams(filter), String(Math.floor(limit))]);
  return rows.map((row) => ({
    destination: row.destination,
    id: String(row.id),
    eventId: eventIdPrefix + String(row.id),
    op: row.op,
    schema: row.schema_name,
    table: row.table_name,
    attempts: num(row.attempts),
    lastStatus: row.last_status === null ? null : num(row.last_status),
    lastError: row.last_error,
    createdAt: row.created_at,
    failedAt: row.failed_at,
    newRow: row.new_row,
    oldRow: row.old_row,
  }));
}

/** Locks the selected dead letters, then runs `act` on their (destination, id) pairs, in one transaction. */
async function withSelected(conn: Conn, sql: string, filter: DeadLetterFilter, act: (pairsJson: string) => Promise<void>): Promise<string[]> {
  await conn.beginTransaction();
  try {
    const rows = await select<{ destination: string; id: string }>(conn, sql, deadLetterFilterParams(filter));
    if (rows.length > 0) await act(JSON.stringify(rows.map((r) => [r.destination, String(r.id)])));
    await conn.commit();
    return rows.map((r) => String(r.id));
  } catch (err) {
    await conn.rollback().catch(() => undefined);
    throw err;
  }
}

/**
 * Puts dead letters back in their destination's queue with their own id (so the same
 * event id), attempts from zero, due at once. The ordering gate sees a replayed event
 * by that id: it goes out before any later event of its row still in that queue, as
 * with PostgreSQL. Daemons find it at their next poll.
 */
export function replayDeadLetters(conn: Conn, prefix: string, filter: DeadLetterFilter): Promise<string[]> {
  const q = makeQueries(prefix);
  return withSelected(conn, q.lockDeadLetters('>='), filter, async (ids) => {
    await conn.execute(q.restoreDeadLetters, [ids]);
    await conn.execute(q.deleteDeadLetters, [ids]);
  });
}

export function purgeDeadLetters(conn: Conn, prefix: string, filter: DeadLetterFilter): Promise<string[]> {
  const q = makeQueries(prefix);
  return withSelected(conn, q.lockDeadLetters('<'), filter, async (ids) => {
    await conn.execute(q.deleteDeadLetters, [ids]);
  });
}

export async function journalStatus(conn: Conn, prefix: string): Promise<TableStatus[]> {
  const rows = await select<{
    destination: string | null;
    schema_name: string;
    table_name: string;
    operations: string;
    pending: string | number;
    retrying: string | number;
    in_flight: string | number;
    dead_letters: string | number;
    oldest_age_us: string | number | null;
    last_delivered_at: string | Date | null;
  }>(conn, makeQueries(prefix).status);
  return rows.map((row) => ({
    destination: row.destination,
    schema: row.schema_name,
    table: row.table_name,
    operations: row.operations.split(',').filter((o) => o !== ''),
    pending: num(row.pending),
    retrying: num(row.retrying),
    inFlight: num(row.in_flight),
    deadLetters: num(row.dead_letters),
    oldestPendingSeconds: row.oldest_age_us === null ? null : Math.round(num(row.oldest_age_us) / 100_000) / 10,
    lastDeliveryAt: utcIso(row.last_delivered_at),
  }));
}

/** A DATETIME written with UTC_TIMESTAMP (text, as the pool returns it) as ISO 8601 UTC. */
function utcIso(value: string | Date | null): string | null {
  if (value === null) return null;
  return (typeof value === 'string' ? new Date(`${value.replace(' ', 'T')}Z`) : value).toISOString();
}

// ---- The web console: counts, the attempt log, an event's journey.

export async function countDeadLetters(conn: Conn, prefix: string, filter: DeadLetterFilter): Promise<number> {
  const rows = await select<{ n: number | string }>(conn, makeQueries(prefix).countDeadLetters, deadLetterFilterParams(filter));
  return num(rows[0]?.n);
}

export async function listAttempts(conn: Conn, prefix: string, f: AttemptFilter, limit = 100): Promise<AttemptEntry[]> {
  const eventIdPrefix = await readEventIdPrefix(conn, prefix);
  const twice = (v: string | undefined): Array<string | null> => [v ?? null, v ?? null];
  const rows = await select<AttemptDbRow>(conn, makeQueries(prefix).listAttempts, [
    ...twice(f.id),
    ...twice(f.table?.schema),
    ...twice(f.table?.name),
    ...twice(f.rowKey),
    ...twice(f.destination),
    ...twice(f.outcome),
    ...twice(f.before),
    String(Math.floor(limit)),
  ]);
  return rows.map((row) => toAttemptEntry(row, eventIdPrefix));
}

export async function eventJourney(conn: Conn, prefix: string, id: string, destinations: readonly string[]): Promise<EventJourney> {
  const eventIdPrefix = await readEventIdPrefix(conn, prefix);
  const names = JSON.stringify(destinations);
  const rows = await select<JourneyDbRow>(conn, makeQueries(prefix).eventJourney, [id, names, id, names, id, names, id]);
  const attempts = await listAttempts(conn, prefix, { id }, 1_000);
  return toJourney(id, eventIdPrefix, rows, attempts.reverse());
}

/**
 * Log capture's position, for `status` (listener.capture: log): where the journal ends
 * in the binlog, whether a daemon reads it (holds the lease), how far behind, and
 * whether the server still has that binlog file. Undefined when none is stored.
 */
export async function captureStatus(conn: Conn, prefix: string, leaseName: string): Promise<CaptureStatus | undefined> {
  const q = makeQueries(prefix);
  const [row] = await select<{ binlog_file: string; binlog_pos: string | number; last_commit_age_s: string | number | null }>(conn, q.captureStatus, [CAPTURE_STREAM]);
  if (!row) return undefined;
  const from = { file: String(row.binlog_file), position: Number(row.binlog_pos) };
  const [lease] = await select<{ holder: string | number | null }>(conn, q.captureLeaseHolder, [leaseName]);
  let lagBytes: number | null = null;
  let lost = false;
  try {
    const logs = await select<{ Log_name: string; File_size: string | number }>(conn, q.binaryLogs);
    const bytes = bytesAfter(from, logs.map((l) => ({ name: String(l.Log_name), size: Number(l.File_size) })));
    lost = bytes === undefined;
    lagBytes = bytes ?? null;
  } catch {
    // SHOW BINARY LOGS needs REPLICATION CLIENT (doctor says so): the lag is not known.
  }
  const age = row.last_commit_age_s === null ? null : Math.round(Number(row.last_commit_age_s) * 10) / 10;
  return {
    source: 'binlog',
    slot: `${from.file}:${from.position}`,
    active: lease?.holder !== null && lease?.holder !== undefined,
    lagBytes,
    lastCommitAgeSeconds: age,
    walStatus: lost ? 'lost' : null,
  };
}
