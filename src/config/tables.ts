/**
 * Table names as written in the configuration.
 *
 * A name is `table` or `schema.table`. Any character is allowed (`My Table`);
 * a part that contains a dot, a comma, a double quote or leading/trailing
 * spaces is written between double quotes, with `""` for a quote inside:
 * `"My.Schema"."T"`. Names are kept exactly as written: no case folding, since
 * every identifier we send to the database is quoted.
 *
 * Where a list is accepted, one string may hold several names separated by
 * commas (commas inside double quotes do not separate).
 */
import type { TableRef } from './types.js';

/** Result of parsing one name: the table, or what is wrong with it. */
export type TableParse = { ok: true; table: TableRef } | { ok: false; problem: string };

/** Splits `a, "b,c", d` on the commas outside double quotes. Pieces are not trimmed. */
export function splitTableList(text: string): string[] {
  const pieces: string[] = [];
  let current = '';
  let quoted = false;
  for (const ch of text) {
    if (ch === '"') quoted = !quoted;
    if (ch === ',' && !quoted) {
      pieces.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  pieces.push(current);
  return pieces;
}

/** Parses one `name` or `schema.name`, with optional double-quoted parts. */
export function parseTableName(text: string): TableParse {
  const source = text.trim();
  if (source === '') return { ok: false, problem: 'is an empty table name' };

  const parts: string[] = [];
  let i = 0;
  for (;;) {
    while (source[i] === ' ') i++;
    let part: string;
    if (source[i] === '"') {
      // Quoted part: runs to the next lone quote; "" stands for one quote.
      part = '';
      i++;
      for (;;) {
        if (i >= source.length) return { ok: false, problem: 'has a double quote that is not closed' };
        if (source[i] === '"') {
          if (source[i + 1] === '"') {
            part += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        part += source[i];
        i++;
      }
      while (source[i] === ' ') i++;
      if (i < source.length && source[i] !== '.') {
        return { ok: false, problem: 'has text after a closing double quote; write "schema"."table"' };
      }
    } else {
      const dot = source.indexOf('.', i);
      const end = dot < 0 ? source.length : dot;
      part = source.slice(i, end).trim();
      if (part.includes('"')) {
        return { ok: false, problem: 'has a double quote inside a name; quote the whole part and double the inner quote ("a""b")' };
      }
      i = end;
    }
    if (part === '') return { ok: false, problem: 'has an empty schema or table part' };
    if (part.includes('\u0000')) return { ok: false, problem: 'contains a NUL character' };
    parts.push(part);
    if (i >= source.length) break;
    i++; // the dot
    if (i >= source.length) return { ok: false, problem: 'ends with a dot' };
  }

  if (parts.length > 2) {
    return {
      ok: false,
      problem: 'must be "table" or "schema.table"; quote a part that contains a dot ("my.schema"."table")',
    };
  }
  const [first, second] = parts as [string, string | undefined];
  return { ok: true, table: second === undefined ? { name: first } : { schema: first, name: second } };
}

const PLAIN_PART = /^[^".,\s](?:[^".,]*[^".,\s])?$/;

function describePart(part: string): string {
  return PLAIN_PART.test(part) ? part : `"${part.replaceAll('"', '""')}"`;
}

/**
 * The table as it would be written in the configuration: `users`,
 * `sales.orders`, `"my.schema"."T"`. Parsing the result gives the same table.
 */
export function describeTable(table: TableRef): string {
  return table.schema === undefined
    ? describePart(table.name)
    : `${describePart(table.schema)}.${describePart(table.name)}`;
}

/** A key that is equal for equal tables (used to remove duplicates). */
export function tableKey(table: TableRef): string {
  return JSON.stringify([table.schema ?? null, table.name]);
}
