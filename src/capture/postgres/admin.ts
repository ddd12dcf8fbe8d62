/**
 * Operator functions over the journal: dead letters (list, replay, purge) and a
 * per-table status. The CLI calls these; so can a program embedding the library.
 */
import type pg from 'pg';
import type { TableRef } from '../../config/types.js';
import { AppError } from '../../util/errors.js';
import { makeQueries } from './queries.js';

export interface DeadLetterFilter {
  /** Only this destination's dead letters; all when undefined. */
  readonly destination?: string;
  /** Journal ids (the number at the end of an event id). */
  readonly ids?: readonly string[];
  readonly table?: TableRef;
  /** list/replay: failed at or after; purge: failed before. */
  readonly time?: Date;
}

export interface DeadLetter {
  /** The destination that gave up on it. */
  readonly destination: string;
  readonly id: string;
  readonly eventId: string;
  readonly op: string;
  readonly schema: string;
  readonly table: string;
  readonly attempts: number;
  readonly lastStatus: number | null;
  readonly lastError: string | null;
  readonly createdAt: string;
  readonly failedAt: string;
  /** Raw JSON text, as captured. */
  readonly newRow: string | null;
  readonly oldRow: string | null;
}

/** A dead letter as both databases' `listDeadLetters` query returns it. */
export interface DeadLetterRow {
  destination: string;
  id: string;
  op: string;
  schema_name: string;
  table_name: string;
  attempts: number;
  last_status: number | null;
  last_error: string | null;
  created_at: string;
  failed_at: string;
  new_row: string | null;
  old_row: string | null;
}

export interface TableStatus {
  /** The destination; '' for changes captured but not routed yet, null for a table with nothing anywhere. */
  readonly destination: string | null;
  readonly schema: string;
  readonly table: string;
  readonly operations: readonly string[];
  readonly pending: number;
  readonly retrying: number;
  readonly inFlight: number;
  readonly deadLetters: number;
  /** Seconds since the oldest change still in the journal was made; null when none. */
  readonly oldestPendingSeconds: number | null;
  /** When an event of the table was last delivered (ISO 8601 UTC, to the second or so); null when never. */
  readonly lastDeliveryAt: string | null;
}

/** `evt_<installation>_<n>` or `<n>` → `<n>`; anything else is a usage error. */
export function parseEventRef(ref: string): string {
  const m = /^(?:evt_[0-9a-z]+_)?(\d{1,19})$/i.exec(ref.trim());
  if (!m) {
    throw new AppError('BAD_EVENT_ID', `"${ref}" is not an event id (expected evt_<installation>_<number> or a number)`);
  }
  return m[1]!;
}

function params(f: DeadLetterFilter): unknown[] {
  return [
    f.ids && f.ids.length > 0 ? [...f.ids] : null,
    f.table?.schema ?? null,
    f.table?.name ?? null,
    f.time ?? null,
    f.destination ?? null,
  ];
}

async function eventIdPrefix(client: pg.ClientBase, ourSchema: string): Promise<string> {
  const r = await client.query<{ value: string }>(makeQueries(ourSchema).installationId);
  return `evt_${r.rows[0]?.value ?? 'unknown'}_`;
}

export async function listDeadLetters(
  client: pg.ClientBase,
  ourSchema: string,
  filter: DeadLetterFilter,
  limit = 100,
): Promise<DeadLetter[]> {
  const q = makeQueries(ourSchema);
  const prefix = await eventIdPrefix(client, ourSchema);
  const r = await client.query<DeadLetterRow>(q.listDeadLetters, [...params(filter), limit]);
  return r.rows.map((row) => ({
    destination: row.destination,
    id: row.id,
    eventId: prefix + row.id,
    op: row.op,
    schema: row.schema_name,
    table: row.table_name,
    attempts: row.attempts,
    lastStatus: row.last_status,
    lastError: row.last_error,
    createdAt: row.created_at,
    failedAt: row.failed_at,
    newRow: row.new_row,
    oldRow: row.old_row,
  }));
}

/**
 * Puts dead letters back in the journal, same event id, attempts from zero, and
 * wakes the daemons. A replayed event goes out before any later event of its row
 * that is still waiting (the ordering gate sees it as the older one).
 */
export async function replayDeadLetters(client: pg.ClientBase, ourSchema: string, filter: DeadLetterFilter): Promise<string[]> {
  const q = makeQueries(ourSchema);
  const r = await client.query<{ id: string }>(q.replayDeadLetters, params(filter));
  if (r.rows.length > 0) await client.query(q.notify, [ourSchema]);
  return r.rows.map((row) => row.id);
}

export async function purgeDeadLetters(client: pg.ClientBase, ourSchema: string, filter: DeadLetterFilter): Promise<string[]> {
  const r = await client.query<{ id: string }>(makeQueries(ourSchema).purgeDeadLetters, params(filter));
  return r.rows.map((row) => row.id);
}

export async function journalStatus(client: pg.ClientBase, ourSchema: string): Promise<TableStatus[]> {
  const r = await client.query<{
    destination: string | null;
    schema_name: string;
    table_name: string;
    operations: string[];
    pending: number;
    retrying: number;
    in_flight: number;
    dead_letters: number;
    oldest_age_s: number | null;
    last_delivered_at: Date | null;
  }>(makeQueries(ourSchema).status);
  return r.rows.map((row) => ({
    destination: row.destination,
    schema: row.schema_name,
    table: row.table_name,
    operations: row.operations,
    pending: row.pending,
    retrying: row.retrying,
    inFlight: row.in_flight,
    deadLetters: row.dead_letters,
    oldestPendingSeconds: row.oldest_age_s === null ? null : Math.round(row.oldest_age_s * 10) / 10,
    lastDeliveryAt: row.last_delivered_at === null ? null : row.last_delivered_at.toISOString(),
  }));
}

/** Log capture's slot, for `status` (listener.capture: log). */
export interface CaptureStatus {
  readonly slot: string;
  /** Whether a daemon reads the slot now. */
  readonly active: boolean;
  /** WAL the slot holds that is not journaled yet (null on a standby). */
  readonly lagBytes: number | null;
  /** Age of the commit of the last source transaction journaled (null: none yet). */
  readonly lastCommitAgeSeconds: number | null;
  /** lost/unreserved: the server gave up WAL the slot needed (max_slot_wal_keep_size). */
  readonly walStatus: string | null;
}

/** The slot of log capture, or undefined when it does not exist. */
export async function captureStatus(client: pg.ClientBase, ourSchema: string, slot: string): Promise<CaptureStatus | undefined> {
  const r = await client.query<{ active: boolean; wal_status: string | null; lag_bytes: number | null; last_commit_age_s: number | null }>(
    makeQueries(ourSchema).captureStatus,
    [slot],
  );
  const row = r.rows[0];
  if (!row) return undefined;
  return {
    slot,
    active: row.active,
    lagBytes: row.lag_bytes,
    lastCommitAgeSeconds: row.last_commit_age_s === null ? null : Math.round(row.last_commit_age_s * 10) / 10,
    walStatus: row.wal_status,
  };
}
