/**
 * What a destination does with an event before its sink sends it, compiled once:
 * its row filter (CEL, filter.ts), and its message per table: the columns sent
 * (key columns always kept), the format and, for CloudEvents, the subject (the row
 * key). Per table, because the key columns are the table's.
 */
import type { DestinationConfig } from '../config/types.js';
import type { ResolvedTable } from '../capture/source.js';
import { compileColumnSelector } from '../delivery/columns.js';
import { compileFormatter, compileSubjectReader, type EventFormatter } from '../delivery/formats.js';
import type { SinkMessage } from '../delivery/sink.js';
import type { JournalEvent } from '../journal/types.js';
import { compileFilter, type CompiledFilter } from './filter.js';

export interface DeliveryPlan {
  readonly name: string;
  /** Events it does not match are settled without being sent. */
  readonly filter: CompiledFilter | undefined;
  /** Several events per request: at most `maxEvents`, the first waiting at most `maxWaitMs` for company. */
  readonly batch: { readonly maxEvents: number; readonly maxWaitMs: number } | undefined;
  /** The message of one event. */
  message(e: JournalEvent): SinkMessage;
  /** The row's key values, comma separated (as a CloudEvents subject); undefined without a key. */
  rowKey(e: JournalEvent): string | undefined;
}

export function compileDestination(
  d: DestinationConfig,
  tables: readonly ResolvedTable[],
  database: string,
  /** The config key of the destination, for messages (`destinations[1]`; `webhook` for the default). */
  where: string,
): DeliveryPlan {
  const cloud = d.format !== 'original';
  const perTable = new Map<string, { format: EventFormatter; subject: (row: string | null) => string | undefined; key: (row: string | null) => string | undefined }>();
  for (const t of tables) {
    const columns = d.columns === undefined ? undefined : compileColumnSelector(d.columns, t.keyColumns);
    perTable.set(tableKey(t.schema, t.name), {
      format: compileFormatter({
        format: d.format,
        database,
        ...(d.source !== undefined ? { source: d.source } : {}),
        ...(d.type_prefix !== undefined ? { typePrefix: d.type_prefix } : {}),
        ...(columns !== undefined ? { columns } : {}),
      }),
      subject: cloud ? compileSubjectReader(t.keyColumns) : () => undefined,
      key: compileSubjectReader(t.keyColumns),
    });
  }
  const fallback = { format: compileFormatter({ format: d.format, database }), subject: () => undefined, key: () => undefined };
  return {
    name: d.name,
    filter: d.filter === undefined ? undefined : compileFilter(d.filter, `${where}.filter`),
    batch: d.batch === undefined ? undefined : { maxEvents: d.batch.max_events, maxWaitMs: d.batch.max_wait * 1000 },
    message(e) {
      const t = perTable.get(tableKey(e.schema, e.table)) ?? fallback;
      const subject = cloud ? t.subject(e.op === 'DELETE' ? e.oldRow : e.newRow) : undefined;
      const formatted = t.format(subject === undefined ? e : { ...e, subject });
      return {
        eventId: e.eventId,
        body: formatted.body,
        contentType: formatted.contentType,
        headers: formatted.headers,
        schema: e.schema,
        table: e.table,
        operation: OPERATIONS[e.op],
      };
    },
    rowKey(e) {
      return (perTable.get(tableKey(e.schema, e.table)) ?? fallback).key(e.op === 'DELETE' ? e.oldRow : e.newRow);
    },
  };
}

const OPERATIONS = { INSERT: 'insert', UPDATE: 'update', DELETE: 'delete', READ: 'read', TRUNCATE: 'truncate' } as const;

function tableKey(schema: string, table: string): string {
  return `${schema}\u0000${table}`;
}
