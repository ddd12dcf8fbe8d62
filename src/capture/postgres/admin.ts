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

// ---- The web console: one dead letter, counts, the attempt log, an event's journey.

/** What the attempt log is searched by; every field optional (all attempts). */
export interface AttemptFilter {
  /** Journal id (parseEventRef of an event id). */
  readonly id?: string;
  readonly table?: TableRef;
  readonly rowKey?: string;
  readonly destination?: string;
  readonly outcome?: 'delivered' | 'retry' | 'dead';
  /** Only entries older than this one (paging): its seq. */
  readonly before?: string;
}

/** One delivery attempt, as the attempt log keeps it (secrets already redacted). */
export interface AttemptEntry {
  readonly seq: string;
  readonly destination: string;
  readonly id: string;
  readonly eventId: string;
  readonly schema: string;
  readonly table: string;
  readonly op: string;
  readonly rowKey: string | null;
  readonly attempt: number;
  readonly at: string;
  readonly durationMs: number;
  readonly address: string;
  readonly requestHeaders: Readonly<Record<string, string>>;
  readonly requestBody: string;
  readonly responseStatus: number | null;
  readonly responseBody: string | null;
  readonly error: string | null;
  readonly outcome: string;
}

/** Where an event is for one destination ('' : still in the capture inbox). */
export interface EventState {
  readonly destination: string;
  readonly state: 'inbox' | 'pending' | 'retrying' | 'in flight' | 'dead' | 'delivered';
  readonly attempts: number;
  readonly lastStatus: number | null;
  readonly lastError: string | null;
  /** Next attempt (queued), failed at (dead), delivered at (delivered). */
  readonly at: string | null;
}

/** One event's journey: the change as captured, where it is per destination, every logged attempt. */
export interface EventJourney {
  readonly id: string;
  readonly eventId: string;
  /** Null when the journal holds the change nowhere any more (delivered without retention). */
  readonly change: {
    readonly op: string;
    readonly schema: string;
    readonly table: string;
    readonly createdAt: string;
    readonly newRow: string | null;
    readonly oldRow: string | null;
  } | null;
  readonly states: readonly EventState[];
  readonly attempts: readonly AttemptEntry[];
}

/** An attempt log row as both databases return it. */
export interface AttemptDbRow {
  seq: string | number;
  destination: string;
  id: string | number;
  schema_name: string;
  table_name: string;
  op: string;
  row_key: string | null;
  attempt: number | string;
  at: string;
  duration_ms: number | string;
  address: string;
  request_headers: string;
  request_body: string;
  response_status: number | string | null;
  response_body: string | null;
  error: string | null;
  outcome: string;
}

/** A journey row as both databases return it. */
export interface JourneyDbRow {
  state: EventState['state'];
  destination: string;
  op: string;
  schema_name: string;
  table_name: string;
  created_at: string;
  new_row: string | null;
  old_row: string | null;
  attempts: number | string;
  last_status: number | string | null;
  last_error: string | null;
  at: string | null;
}

export function toAttemptEntry(row: AttemptDbRow, prefix: string): AttemptEntry {
  let headers: Record<string, string> = {};
  try {
    headers = JSON.parse(row.request_headers) as Record<string, string>;
  } catch {
    // Written by us as JSON; anything else shows as no headers.
  }
  return {
    seq: String(row.seq),
    destination: row.destination,
    id: String(row.id),
    eventId: prefix + String(row.id),
    schema: row.schema_name,
    table: row.table_name,
    op: row.op,
    rowKey: row.row_key,
    attempt: Number(row.attempt),
    at: row.at,
    durationMs: Number(row.duration_ms),
    address: row.address,
    requestHeaders: headers,
    requestBody: row.request_body,
    responseStatus: row.response_status === null ? null : Number(row.response_status),
    responseBody: row.response_body,
    error: row.error,
    outcome: row.outcome,
  };
}

export function toJourney(id: string, prefix: string, rows: readonly JourneyDbRow[], attempts: readonly AttemptEntry[]): EventJourney {
  const first = rows[0];
  return {
    id,
    eventId: prefix + id,
    change: first
      ? { op: first.op, schema: first.schema_name, table: first.table_name, createdAt: first.created_at, newRow: first.new_row, oldRow: first.old_row }
      : null,
    states: rows.map((r) => ({
      destination: r.destination,
      state: r.state,
      attempts: Number(r.attempts),
      lastStatus: r.last_status === null ? null : Number(r.last_status),
      lastError: r.last_error,
      at: r.at,
    })),
    attempts,
  };
}

export async function countDeadLetters(client: pg.ClientBase, ourSchema: string, filter: DeadLetterFilter): Promise<number> {
  const r = await client.query<{ n: number }>(makeQueries(ourSchema).countDeadLetters, params(filter));
  return r.rows[0]?.n ?? 0;
}

export async function listAttempts(client: pg.ClientBase, ourSchema: string, f: AttemptFilter, limit = 100): Promise<AttemptEntry[]> {
  const prefix = await eventIdPrefix(client, ourSchema);
  const r = await client.query<AttemptDbRow>(makeQueries(ourSchema).listAttempts, [
    f.id ?? null,
    f.table?.schema ?? null,
    f.table?.name ?? null,
    f.rowKey ?? null,
    f.destination ?? null,
    f.outcome ?? null,
    f.before ?? null,
    limit,
  ]);
  return r.rows.map((row) => toAttemptEntry(row, prefix));
}

export async function eventJourney(client: pg.ClientBase, ourSchema: string, id: string, destinations: readonly string[]): Promise<EventJourney> {
  const prefix = await eventIdPrefix(client, ourSchema);
  const r = await client.query<JourneyDbRow>(makeQueries(ourSchema).eventJourney, [id, [...destinations]]);
  const attempts = await listAttempts(client, ourSchema, { id }, 1_000);
  return toJourney(id, prefix, r.rows, attempts.reverse());
}

/** Log capture's slot, for `status` (listener.capture: log). */
export interface CaptureStatus {
  /** What is read: PostgreSQL's replication slot, or MySQL's binary log (from the stored position). */
  readonly source?: 'slot' | 'binlog';
  /** The slot's name; for the binlog, the stored position (`file:offset`). */
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
