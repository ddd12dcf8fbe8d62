import type { EventOperation } from '../config/types.js';
import { AppError } from '../util/errors.js';
import { buildBody } from './body.js';
import { compileColumnReader, type ColumnSelector } from './columns.js';

/**
 * The payload formats a destination can choose (`format:`), and batches of them.
 *
 * - `original`: the body buildBody() writes (body.ts), `application/json`.
 * - `cloudevents`: a CloudEvents 1.0 event in structured mode (JSON event format),
 *   `application/cloudevents+json; charset=utf-8`, whose `data` is the original body.
 * - `cloudevents-binary`: CloudEvents 1.0 in binary mode: the original body as the
 *   request body (`application/json`) and the attributes as `ce-*` headers.
 *
 * Every body is built by splicing: the row texts and the original body go in as
 * they are, never through a JSON.parse / JSON.stringify round trip, so row values
 * stay exact (9007199254740993, 12.50) and in the row's key order. Only our own
 * strings go through JSON.stringify.
 *
 * Cost per event for a 10-column, 304-byte row (Node 20, UPDATE, two rows; scratch
 * benchmark, medians): original ~0.8 us (buildBody alone ~0.6), cloudevents ~1.1,
 * cloudevents-binary ~0.5 (six short headers, no second copy of the body). A
 * columns selection adds its scan of each row sent, ~2.8 us a row (columns.ts).
 */

/** `format:` of a destination. Default `original`. */
export type PayloadFormat = 'original' | 'cloudevents' | 'cloudevents-binary';

/** The operations an event can carry: READ is a row read by a snapshot, not a change. */
export type FormatOperation = EventOperation;

/** One event, as much of it as a payload needs (body.ts BodyInput, plus READ and the subject). */
export interface FormatInput {
  readonly eventId: string;
  readonly op: FormatOperation;
  readonly schema: string;
  readonly table: string;
  /** RFC 3339 UTC time of the change, already formatted. */
  readonly timestamp: string;
  /** Row after the change, JSON object text exactly as the database serialised it. */
  readonly newRow: string | null;
  /** Row before the change, JSON object text exactly as the database serialised it. */
  readonly oldRow: string | null;
  /** The row key (see buildSubject), the CloudEvents `subject`; omitted when undefined or empty. */
  readonly subject?: string;
}

/** A destination's format settings, compiled once by compileFormatter. */
export interface FormatOptions {
  readonly format: PayloadFormat;
  /** The database name, the authority of the default `source`. */
  readonly database: string;
  /** CloudEvents `source` for every event, as written; default app-db-listener://<database>/<schema>.<table>. */
  readonly source?: string;
  /** CloudEvents `type` prefix; the type is `<prefix>.inserted` and so on. Default DEFAULT_TYPE_PREFIX. */
  readonly typePrefix?: string;
  /** Columns sent (columns.ts); applied to both rows before any format. Default: every column. */
  readonly columns?: ColumnSelector;
}

/** One request's payload. */
export interface FormattedEvent {
  readonly body: string;
  readonly contentType: string;
  /** Headers of the format (binary mode's `ce-*`), lower case; empty for the other formats. */
  readonly headers: Readonly<Record<string, string>>;
}

export type EventFormatter = (e: FormatInput) => FormattedEvent;

export const DEFAULT_TYPE_PREFIX = 'com.app-db-listener.row';

/** The scheme of the default `source`. */
export const SOURCE_SCHEME = 'app-db-listener';

/**
 * Every header a format sets (lower case). The delivery layer reserves them, with
 * content-type, so a configured header cannot change an event's attributes.
 */
export const FORMAT_HEADERS = ['ce-specversion', 'ce-id', 'ce-source', 'ce-type', 'ce-time', 'ce-subject'] as const;

/** Content type of one event's request, per format. */
export const CONTENT_TYPES: Readonly<Record<PayloadFormat, string>> = Object.freeze({
  original: 'application/json',
  cloudevents: 'application/cloudevents+json; charset=utf-8',
  'cloudevents-binary': 'application/json',
});

/** The formats that batch, and their batch content type (JSON format spec, section 4: JSON Batch Format). */
const BATCH_CONTENT_TYPES: Readonly<Partial<Record<PayloadFormat, string>>> = Object.freeze({
  original: 'application/json',
  cloudevents: 'application/cloudevents-batch+json; charset=utf-8',
});

const TYPE_SUFFIX: Readonly<Record<FormatOperation, string>> = Object.freeze({
  INSERT: 'inserted',
  UPDATE: 'updated',
  DELETE: 'deleted',
  TRUNCATE: 'truncated',
  READ: 'read',
});

const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({});

/**
 * Compiles a destination's format: everything that does not depend on the event
 * (content type, the type per operation, a configured source, their header forms)
 * is computed here once; the default source is computed once per table.
 */
export function compileFormatter(options: FormatOptions): EventFormatter {
  const { format, database, columns } = options;
  if (!Object.hasOwn(CONTENT_TYPES, format)) {
    throw new AppError('FORMAT_UNKNOWN', `format must be original, cloudevents or cloudevents-binary, got ${JSON.stringify(format)}`);
  }
  const contentType = CONTENT_TYPES[format];
  const original = columns === undefined || columns.keepsAll ? buildOriginalBody : (e: FormatInput) => buildOriginalBody(e, columns);
  if (format === 'original') return (e) => ({ body: original(e), contentType, headers: NO_HEADERS });

  const prefix = options.typePrefix ?? DEFAULT_TYPE_PREFIX;
  if (prefix === '') throw new AppError('FORMAT_TYPE_PREFIX_EMPTY', 'type_prefix must not be empty (default com.app-db-listener.row)');
  if (options.source === '') throw new AppError('FORMAT_SOURCE_EMPTY', 'source must not be empty (a URI reference, default app-db-listener://<database>/<schema>.<table>)');
  const typeForms = new Map((Object.keys(TYPE_SUFFIX) as FormatOperation[]).map((op) => [op, formsOf(buildEventType(prefix, op))]));
  // An operation outside the four reaches buildEventType, which throws.
  const types = (op: FormatOperation): AttributeForms => typeForms.get(op) ?? formsOf(buildEventType(prefix, op));
  const sourceOf = compileSourceForms(database, options.source);

  if (format === 'cloudevents') {
    return (e) => {
      let subject = '';
      if (e.subject !== undefined && e.subject !== '') subject = ',"subject":' + JSON.stringify(e.subject);
      const body =
        '{"specversion":"1.0","id":' +
        JSON.stringify(e.eventId) +
        ',"source":' +
        sourceOf(e.schema, e.table).json +
        ',"type":' +
        types(e.op).json +
        ',"time":' +
        JSON.stringify(e.timestamp) +
        subject +
        ',"datacontenttype":"application/json","data":' +
        original(e) +
        '}';
      return { body, contentType, headers: NO_HEADERS };
    };
  }

  return (e) => {
    const headers: Record<string, string> = {
      'ce-specversion': '1.0',
      'ce-id': encodeHeaderValue(e.eventId),
      'ce-source': sourceOf(e.schema, e.table).header,
      'ce-type': types(e.op).header,
      'ce-time': encodeHeaderValue(e.timestamp),
    };
    if (e.subject !== undefined && e.subject !== '') headers['ce-subject'] = encodeHeaderValue(e.subject);
    return { body: original(e), contentType, headers };
  };
}

/** False for cloudevents-binary: binary mode carries one event per request (the config refuses `batch:` with it). */
export function canBatch(format: PayloadFormat): boolean {
  return Object.hasOwn(BATCH_CONTENT_TYPES, format);
}

/**
 * Joins events formatted by one destination's formatter into one request: a JSON
 * array of their bodies, in order. `original` keeps `application/json`;
 * `cloudevents` becomes the JSON Batch Format, `application/cloudevents-batch+json;
 * charset=utf-8`. An empty list is `[]` (the batch format allows it). Throws for
 * cloudevents-binary, and for an event of another format (a bug in the caller).
 */
export function joinBatch(format: PayloadFormat, events: readonly FormattedEvent[]): FormattedEvent {
  const contentType = Object.hasOwn(BATCH_CONTENT_TYPES, format) ? BATCH_CONTENT_TYPES[format] : undefined;
  if (contentType === undefined) {
    throw new AppError('FORMAT_CANNOT_BATCH', `format ${format} cannot batch: binary mode carries one event per request; use format cloudevents`);
  }
  const one = CONTENT_TYPES[format];
  let body = '[';
  for (let i = 0; i < events.length; i++) {
    const e = events[i] as FormattedEvent;
    if (e.contentType !== one) {
      throw new AppError('FORMAT_BATCH_MIXED', `batch of format ${format} got an event of content type ${e.contentType}`);
    }
    body += i === 0 ? e.body : ',' + e.body;
  }
  return { body: body + ']', contentType, headers: NO_HEADERS };
}

/**
 * The default CloudEvents `source`: `app-db-listener://<database>/<schema>.<table>`,
 * a valid URI reference whatever the names hold. Each name is percent-encoded as
 * UTF-8 except the unreserved characters A-Z a-z 0-9 - _ ~ and, in the database
 * name only, "." (RFC 3986, section 2.3). The "." in the schema and table names is
 * encoded (%2E), so the one literal "." of the path separates them: "a.b" . "c" and
 * "a" . "b.c" give different sources. Ordinary names (letters, digits, _) are left
 * as they are: app-db-listener://shop/public.orders.
 */
export function buildSource(database: string, schema: string, table: string): string {
  return SOURCE_SCHEME + '://' + percentEncode(database, true) + '/' + percentEncode(schema, false) + '.' + percentEncode(table, false);
}

/** `<prefix>.inserted`, `.updated`, `.deleted` or `.read`. */
export function buildEventType(prefix: string, op: FormatOperation): string {
  if (!Object.hasOwn(TYPE_SUFFIX, op)) throw new AppError('FORMAT_OPERATION_UNKNOWN', `unknown operation ${JSON.stringify(op)}`);
  return prefix + '.' + TYPE_SUFFIX[op];
}

/**
 * A string attribute as an HTTP header value, by the HTTP binding's rule
 * (http-protocol-binding.md, 3.1.3.2): space, double quote, percent and every
 * character outside the printable ASCII range U+0021..U+007E are percent-encoded as
 * UTF-8 bytes, upper-case hex; everything else is left alone. A receiver decodes one
 * round of percent-encoding. A lone surrogate (not valid UTF-16) is sent as U+FFFD.
 *
 * So a source that is itself percent-encoded travels with its "%" encoded:
 * app-db-listener://shop/public.t%C3%A9 is sent as app-db-listener://shop/public.t%25C3%25A9.
 */
export function encodeHeaderValue(value: string): string {
  if (HEADER_SAFE.test(value)) return value;
  let out = '';
  for (const ch of value) {
    const c = ch.codePointAt(0) as number;
    if (c >= 0x21 && c <= 0x7e && c !== 0x22 && c !== 0x25) out += ch;
    else out += percentBytes(ch);
  }
  return out;
}

/**
 * The row key text (the CloudEvents `subject`) from the raw JSON texts of the key
 * column values, in key order. Each value becomes text: a JSON string is decoded
 * (unquoted), a number or any other value is its JSON text as written (42,
 * 9007199254740993). In each part "%" becomes %25 and "," becomes %2C, then the
 * parts are joined with ",". So a receiver splits on "," and percent-decodes each
 * part, for one key or several: ["1", "2"] gives 1,2 and ["1,2"] gives 1%2C2.
 * Ordinary keys (digits, UUIDs) read as they are.
 */
export function buildSubject(keyValues: readonly string[]): string {
  let out = '';
  for (let i = 0; i < keyValues.length; i++) {
    const part = escapeSubjectPart(keyValueText((keyValues[i] as string).trim()));
    out += i === 0 ? part : ',' + part;
  }
  return out;
}

/**
 * Compiles a reader of a row's subject from its key columns: undefined when there
 * are no key columns, the row is null, or it lacks one of them.
 */
export function compileSubjectReader(keyColumns: readonly string[]): (row: string | null) => string | undefined {
  if (keyColumns.length === 0) return () => undefined;
  const read = compileColumnReader(keyColumns);
  return (row) => {
    if (row === null) return undefined;
    const values = read(row);
    for (const v of values) if (v === undefined) return undefined;
    return buildSubject(values as string[]);
  };
}

/** The original body, with the selection applied to the rows buildBody uses. */
function buildOriginalBody(e: FormatInput, columns?: ColumnSelector): string {
  const op = e.op;
  // Only the rows the body carries are scanned: INSERT and READ send no old row,
  // DELETE sends the old row as `data` and no new row.
  const newRow = op === 'DELETE' || columns === undefined ? e.newRow : columns.select(e.newRow);
  const oldRow = (op === 'UPDATE' || op === 'DELETE') && columns !== undefined ? columns.select(e.oldRow) : e.oldRow;
  if (op === 'READ') {
    // buildBody has no READ; this is its INSERT shape with operation "READ".
    return (
      '{"id":' +
      JSON.stringify(e.eventId) +
      ',"operation":"READ","schema":' +
      JSON.stringify(e.schema) +
      ',"table":' +
      JSON.stringify(e.table) +
      ',"timestamp":' +
      JSON.stringify(e.timestamp) +
      ',"data":' +
      (newRow ?? 'null') +
      ',"old_data":null}'
    );
  }
  return buildBody({ eventId: e.eventId, op, schema: e.schema, table: e.table, timestamp: e.timestamp, newRow, oldRow });
}

/** An attribute as a JSON string (structured mode) and as a header value (binary mode). */
interface AttributeForms {
  readonly json: string;
  readonly header: string;
}

function formsOf(value: string): AttributeForms {
  return { json: JSON.stringify(value), header: encodeHeaderValue(value) };
}

/** The source per table, computed on first use: one entry per watched table. */
function compileSourceForms(database: string, configured: string | undefined): (schema: string, table: string) => AttributeForms {
  if (configured !== undefined) {
    const forms = formsOf(configured);
    return () => forms;
  }
  const bySchema = new Map<string, Map<string, AttributeForms>>();
  return (schema, table) => {
    let byTable = bySchema.get(schema);
    if (byTable === undefined) bySchema.set(schema, (byTable = new Map()));
    let forms = byTable.get(table);
    if (forms === undefined) byTable.set(table, (forms = formsOf(buildSource(database, schema, table))));
    return forms;
  };
}

/** Printable ASCII but space, '"' and '%': a header value that needs no encoding. */
const HEADER_SAFE = /^[\x21\x23\x24\x26-\x7e]*$/;

/** RFC 3986 unreserved characters but ".", which only the database name keeps. */
const URI_UNRESERVED = /^[A-Za-z0-9_~-]*$/;

const HEX = Array.from({ length: 256 }, (_, b) => '%' + b.toString(16).toUpperCase().padStart(2, '0'));

function percentBytes(ch: string): string {
  let out = '';
  for (const b of Buffer.from(ch, 'utf8')) out += HEX[b] as string;
  return out;
}

function percentEncode(name: string, keepDot: boolean): string {
  if (URI_UNRESERVED.test(name)) return name;
  let out = '';
  for (const ch of name) {
    const c = ch.codePointAt(0) as number;
    const unreserved =
      (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x5f || c === 0x7e || (keepDot && c === 0x2e);
    out += unreserved ? ch : percentBytes(ch);
  }
  return out;
}

/** A key value's text: a JSON string decoded, anything else as written. */
function keyValueText(raw: string): string {
  if (raw.charCodeAt(0) !== 0x22) return raw;
  // A string without escapes is its text between the quotes; otherwise JSON.parse of
  // the one string is the exact decoding (no number is involved) and rejects a
  // malformed one.
  const simple = raw.length >= 2 && raw.endsWith('"') && !raw.includes('\\');
  return simple ? raw.slice(1, -1) : (JSON.parse(raw) as string);
}

function escapeSubjectPart(text: string): string {
  if (!text.includes('%') && !text.includes(',')) return text;
  return text.replace(/%/g, '%25').replace(/,/g, '%2C');
}
