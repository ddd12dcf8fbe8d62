/**
 * Shared by the fault suite (test/fault): what the database committed, read from
 * the database, and one report line per scenario with the figures that
 * docs/reliability.md lists (committed, delivered, lost, duplicates, order
 * violations).
 *
 * Hot-row scenarios use a counter table `(id, seq)`: each row is inserted with
 * seq 0 and every UPDATE adds 1, so the committed changes of a row are exactly
 * 0..seq, and an event's `data.seq` says where it belongs in commit order.
 */
import { appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { tally, type Tally } from './order.js';
import type { ReceivedRequest } from './receiver.js';

/** A stack frame line, as Node prints them. */
export const STACK_FRAME = /^\s+at /m;

/** Where every scenario's report line is appended (JSON lines). */
export const REPORT_FILE = process.env.ADL_FAULT_REPORT ?? path.join(tmpdir(), 'adl-fault-report.jsonl');

/**
 * The committed changes of a counter table, from its rows as the database has
 * them now: row id -> [0 (the INSERT), 1, …, seq (the UPDATEs)].
 */
export function committedChanges(rows: readonly { id: unknown; seq: unknown }[]): Map<string, number[]> {
  return new Map(rows.map((r) => [String(r.id), Array.from({ length: Number(r.seq) + 1 }, (_, i) => i)]));
}

/** How many changes `committedChanges` holds. */
export function countChanges(expected: ReadonlyMap<string, readonly number[]>): number {
  let n = 0;
  for (const values of expected.values()) n += values.length;
  return n;
}

/** Picks (row id, seq) from the INSERT and UPDATE events of `table` (for `tally`). */
export function pickCounter(table: string) {
  return (body: Record<string, unknown>): { key: string; value: number } | undefined => {
    if (body.table !== table || (body.operation !== 'INSERT' && body.operation !== 'UPDATE')) return undefined;
    const data = body.data as { id?: unknown; seq?: unknown } | null;
    if (!data || data.id === undefined || data.seq === undefined) return undefined;
    return { key: String(data.id), value: Number(data.seq) };
  };
}

/** Counts what the receiver got for a counter table against what the database committed. */
export function tallyCounter(events: readonly ReceivedRequest[], table: string, expected: ReadonlyMap<string, readonly number[]>): Tally {
  // Only answered-with-2xx requests count as delivered: a 500 or a hang was received, not delivered.
  const delivered = events.filter((e) => typeof e.response === 'number' && e.response >= 200 && e.response < 300);
  return tally(delivered, expected, pickCounter(table));
}

export interface ScenarioReport {
  readonly scenario: string;
  readonly database: 'postgres' | 'mysql' | 'none';
  /** Changes the database committed (counted in the database). */
  readonly committed: number;
  /** Requests answered with 2xx, duplicates included. */
  readonly delivered: number;
  readonly lost: number;
  readonly duplicates: number;
  readonly orderViolations: number;
  readonly deadLetters: number;
  /** Requests the receiver got, failed attempts included. */
  readonly requests: number;
  readonly note?: string;
}

/** The report row of a counter-table scenario. */
export function reportRow(
  scenario: string,
  database: ScenarioReport['database'],
  committed: number,
  t: Tally,
  extra: { deadLetters?: number; requests?: number; note?: string } = {},
): ScenarioReport {
  return {
    scenario,
    database,
    committed,
    delivered: t.delivered,
    // Committed changes neither delivered nor in dead letters.
    lost: Math.max(0, committed - t.distinct - (extra.deadLetters ?? 0)),
    duplicates: t.duplicates,
    orderViolations: t.orderViolations.length,
    deadLetters: extra.deadLetters ?? 0,
    requests: extra.requests ?? t.delivered,
    ...(extra.note ? { note: extra.note } : {}),
  };
}

/** Prints the row (one line, `fault-report {json}`) and appends it to `REPORT_FILE`. */
export function report(row: ScenarioReport): void {
  const line = JSON.stringify(row);
  console.log(`fault-report ${line}`);
  try {
    appendFileSync(REPORT_FILE, line + '\n');
  } catch {
    // The console line is enough.
  }
}

/** The event id of a body (the daemon writes it first). */
export const eventIdOf = (body: string): string => /^\{"id":"([^"]+)"/.exec(body)?.[1] ?? '';

/**
 * The report row of a scenario counted by event ids rather than by a counter
 * column: `events` are the 2xx-answered requests of its table, `committed` the
 * changes the database reported.
 */
export function eventsRow(
  scenario: string,
  database: ScenarioReport['database'],
  committed: number,
  events: readonly ReceivedRequest[],
  orderViolations = 0,
  note?: string,
): ScenarioReport {
  const distinct = new Set(events.map((e) => eventIdOf(e.body))).size;
  return {
    scenario,
    database,
    committed,
    delivered: events.length,
    lost: Math.max(0, committed - distinct),
    duplicates: events.length - distinct,
    orderViolations,
    deadLetters: 0,
    requests: events.length,
    ...(note ? { note } : {}),
  };
}
