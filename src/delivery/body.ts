import type { EventOperation } from '../config/types.js';

/** One journal event, as much of it as the webhook body needs. */
export interface BodyInput {
  readonly eventId: string;
  readonly op: EventOperation;
  readonly schema: string;
  readonly table: string;
  /** RFC 3339 time of the change, already formatted. */
  readonly timestamp: string;
  /** Row after the change, as JSON text exactly as the database serialised it. */
  readonly newRow: string | null;
  /** Row before the change, as JSON text exactly as the database serialised it. */
  readonly oldRow: string | null;
}

/**
 * Builds the webhook body, keeping the original program's shape
 * (`operation`, `table`, `timestamp`, `data`, `old_data`) plus `id` and `schema`:
 *
 *   {"id":"…","operation":"UPDATE","schema":"public","table":"users",
 *    "timestamp":"2026-11-26T17:58:54.117181Z","data":{…},"old_data":{…}}
 *
 * `data` is the new row for INSERT and UPDATE and the OLD row for DELETE (as the
 * original did); `old_data` is the old row for UPDATE and null otherwise. A
 * backfill's READ is shaped as an INSERT. A TRUNCATE (log capture only) has neither:
 * `data` and `old_data` are null.
 *
 * Row values are spliced in as raw text and are never parsed: a JSON.parse /
 * JSON.stringify round trip turns bigint 9007199254740993 into
 * 9007199254740992, numeric 12.50 into 12.5 and can reorder keys, which is
 * loss 10 of the original. Only our own scalar strings go through
 * JSON.stringify. The caller guarantees the row text is valid JSON (it comes
 * from the database's own JSON serialiser).
 */
export function buildBody(e: BodyInput): string {
  let data: string | null;
  let oldData: string | null;
  switch (e.op) {
    case 'INSERT':
    case 'READ':
      data = e.newRow;
      oldData = null;
      break;
    case 'UPDATE':
      data = e.newRow;
      oldData = e.oldRow;
      break;
    case 'DELETE':
      data = e.oldRow;
      oldData = null;
      break;
    case 'TRUNCATE':
      data = null;
      oldData = null;
      break;
  }
  return (
    '{"id":' +
    JSON.stringify(e.eventId) +
    ',"operation":' +
    JSON.stringify(e.op) +
    ',"schema":' +
    JSON.stringify(e.schema) +
    ',"table":' +
    JSON.stringify(e.table) +
    ',"timestamp":' +
    JSON.stringify(e.timestamp) +
    ',"data":' +
    (data ?? 'null') +
    ',"old_data":' +
    (oldData ?? 'null') +
    '}'
  );
}
