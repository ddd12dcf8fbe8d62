/**
 * From a binlog column (its type code and metadata, as the TABLE_MAP event of the
 * change describes it) to what the journal insert needs: a typed SQL value built from
 * one parameter, and the column description the capture triggers' expressions
 * (triggers.ts `columnValueSql`, `rowHashSql`) read it with.
 *
 * The reader never writes JSON itself: it sends each value back to the server as a
 * parameter, cast to the column's type, and the server builds the row with the very
 * expressions of the trigger. So a row captured from the log is the row the trigger
 * would have written, byte for byte (MariaDB's spacing, DECIMAL's scale, FLOAT's
 * digits, TIMESTAMP as a UTC instant), and its row hash is the trigger's, so the
 * events of a row keep one order whichever mode captured them.
 *
 * The binlog (binlog_row_metadata=FULL) names the columns as they were when the row
 * was written: a column added, dropped or renamed since is reported as it was at
 * commit. Two things it cannot tell are taken from the table as it is now (by column
 * name): MariaDB's JSON (a LONGTEXT with a json_valid check) and MariaDB's UUID, INET4
 * and INET6 (written as plain binary).
 *
 * Pure functions: no database access here.
 */
import type { MySqlColumn } from '../triggers.js';

/** A column of a TABLE_MAP event, as the binlog library decodes it. */
export interface BinlogColumn {
  readonly name: string;
  /** MySQL's field type code (enum_field_types), ENUM and SET already told apart. */
  readonly type: number;
  /** The column's character set; null for binary and non-text columns. */
  readonly charset: string | null;
  readonly metadata: Readonly<Record<string, unknown>> | undefined;
  readonly unsigned: boolean;
}

/** One column of the journal insert's derived row. */
export interface CapturedColumn {
  /** The column's name at commit: the key in the row's JSON. */
  readonly name: string;
  /** A typed SQL value of the one parameter `?`. */
  readonly typed: string;
  /** The column as the trigger expressions see it (its name is the derived table's alias). */
  readonly derived: MySqlColumn;
  /** The decoded value as the parameter of `typed`. */
  readonly encode: (value: unknown) => unknown;
}

/** enum_field_types (include/field_types.h). */
export const FieldType = {
  DECIMAL: 0,
  TINY: 1,
  SHORT: 2,
  LONG: 3,
  FLOAT: 4,
  DOUBLE: 5,
  NULL: 6,
  TIMESTAMP: 7,
  LONGLONG: 8,
  INT24: 9,
  DATE: 10,
  TIME: 11,
  DATETIME: 12,
  YEAR: 13,
  NEWDATE: 14,
  VARCHAR: 15,
  BIT: 16,
  TIMESTAMP2: 17,
  DATETIME2: 18,
  TIME2: 19,
  JSON: 245,
  NEWDECIMAL: 246,
  ENUM: 247,
  SET: 248,
  TINY_BLOB: 249,
  MEDIUM_BLOB: 250,
  LONG_BLOB: 251,
  BLOB: 252,
  VAR_STRING: 253,
  STRING: 254,
  GEOMETRY: 255,
} as const;

const INTEGER_NAMES: Record<number, string> = {
  [FieldType.TINY]: 'tinyint',
  [FieldType.SHORT]: 'smallint',
  [FieldType.INT24]: 'mediumint',
  [FieldType.LONG]: 'int',
  [FieldType.LONGLONG]: 'bigint',
};

/** MariaDB types written to the binlog as BINARY(n), cast back by name. */
const MARIADB_BINARY_TYPES = new Set(['uuid', 'inet4', 'inet6']);

/** A character set name as CONVERT … USING takes it (an identifier: letters, digits, underscore). */
function charsetName(charset: string): string {
  const name = charset.toLowerCase() === 'utf8' ? 'utf8mb3' : charset.toLowerCase();
  if (!/^[a-z0-9_]+$/.test(name)) throw new Error(`unexpected character set name ${JSON.stringify(charset)}`);
  return name;
}

function precisionOf(c: BinlogColumn): number {
  const d = Number(c.metadata?.decimals ?? 0);
  return Number.isInteger(d) && d >= 0 && d <= 6 ? d : 0;
}

const asText = (v: unknown): unknown => (v === null || v === undefined ? null : typeof v === 'string' ? v : String(v));
const asIs = (v: unknown): unknown => (v === undefined ? null : v);

/**
 * A TIME as text. The library decodes a negative TIME with no fraction by adding a
 * second to the seconds field without carrying it, so '-12:35:00' comes as
 * '-12:34:64' and '-01:00:00' as '-00:63:64' (a value the server refuses): carried here.
 */
export function timeValue(v: unknown): unknown {
  if (v === null || v === undefined) return null;
  const text = String(v);
  const m = /^(-?)(\d+):(\d{2}):(\d{2})(\.\d+)?$/.exec(text);
  if (!m || (Number(m[4]) < 60 && Number(m[3]) < 60)) return text;
  let [hours, minutes, seconds] = [Number(m[2]), Number(m[3]), Number(m[4])];
  if (seconds >= 60) {
    seconds -= 64;
    minutes += 1;
  }
  if (minutes >= 60) {
    minutes -= 64;
    hours += 1;
  }
  const two = (n: number) => String(n).padStart(2, '0');
  return `${m[1]}${two(hours)}:${two(minutes)}:${two(seconds)}${m[5] ?? ''}`;
}

/** YEAR: the library adds 1900 to the stored byte, so the year 0000 (byte 0) comes as 1900, which YEAR cannot hold. */
function yearValue(v: unknown): unknown {
  if (v === null || v === undefined) return null;
  return Number(v) === 1900 ? '0' : String(v);
}

/** BIT(n) arrives as big-endian bytes: its value as an unsigned decimal. */
function bitValue(v: unknown): unknown {
  if (v === null || v === undefined) return null;
  if (Buffer.isBuffer(v)) return v.length === 0 ? '0' : BigInt(`0x${v.toString('hex')}`).toString();
  return String(v);
}

/** A spatial value, decoded by the library into points: kept as JSON (docs/types.md). */
function geometryValue(v: unknown): unknown {
  if (v === null || v === undefined) return null;
  return JSON.stringify(v);
}

function column(name: string, alias: string, typed: string, derived: Omit<MySqlColumn, 'name'>, encode: (v: unknown) => unknown): CapturedColumn {
  return { name, typed, derived: { name: alias, ...derived }, encode };
}

const PLAIN = { columnType: '', charset: null, datetimePrecision: null, json: false } as const;

/**
 * The journal insert's view of one binlog column. `alias` names it in the derived
 * table; `current` is the column of that name in the table as it is now, if any.
 */
export function capturedColumn(c: BinlogColumn, alias: string, current: MySqlColumn | undefined): CapturedColumn {
  const integer = INTEGER_NAMES[c.type];
  if (integer !== undefined) {
    return column(c.name, alias, c.unsigned ? 'CAST(? AS UNSIGNED)' : 'CAST(? AS SIGNED)', { ...PLAIN, dataType: integer }, asText);
  }
  switch (c.type) {
    case FieldType.NEWDECIMAL:
    case FieldType.DECIMAL: {
      const p = Number(c.metadata?.precision ?? 65);
      const s = Number(c.metadata?.decimals ?? 0);
      return column(c.name, alias, `CAST(? AS DECIMAL(${Math.trunc(p)},${Math.trunc(s)}))`, { ...PLAIN, dataType: 'decimal' }, asText);
    }
    case FieldType.FLOAT:
      // The float's shortest decimal form as a double ("0.10000000149011612") names the
      // same float: cast back, it prints as the column does (0.1).
      return column(c.name, alias, 'CAST(? AS FLOAT)', { ...PLAIN, dataType: 'float' }, asText);
    case FieldType.DOUBLE:
      return column(c.name, alias, 'CAST(? AS DOUBLE)', { ...PLAIN, dataType: 'double' }, asText);
    case FieldType.YEAR:
      return column(c.name, alias, 'CAST(? AS UNSIGNED)', { ...PLAIN, dataType: 'year' }, yearValue);
    case FieldType.BIT:
      return column(c.name, alias, 'CAST(? AS UNSIGNED)', { ...PLAIN, dataType: 'bigint' }, bitValue);
    case FieldType.DATE:
    case FieldType.NEWDATE:
      return column(c.name, alias, 'CAST(? AS DATE)', { ...PLAIN, dataType: 'date' }, asText);
    case FieldType.DATETIME:
    case FieldType.DATETIME2: {
      const p = precisionOf(c);
      return column(c.name, alias, `CAST(? AS DATETIME(${p}))`, { ...PLAIN, dataType: 'datetime', datetimePrecision: p }, asText);
    }
    case FieldType.TIMESTAMP:
    case FieldType.TIMESTAMP2: {
      // The instant as UTC text, read back as a DATETIME by a session in UTC (the
      // reader's): UNIX_TIMESTAMP of it is the stored instant, as for the column.
      const p = precisionOf(c);
      return column(c.name, alias, `CAST(? AS DATETIME(${p}))`, { ...PLAIN, dataType: 'timestamp', datetimePrecision: p }, asText);
    }
    case FieldType.TIME:
    case FieldType.TIME2: {
      const p = precisionOf(c);
      return column(c.name, alias, `CAST(? AS TIME(${p}))`, { ...PLAIN, dataType: 'time', datetimePrecision: p }, timeValue);
    }
    case FieldType.JSON:
      // MySQL's binary JSON, as the server's own text: parsed again by JSON_EXTRACT.
      return column(c.name, alias, '?', { ...PLAIN, dataType: 'json', json: true }, asText);
    case FieldType.GEOMETRY:
      return column(c.name, alias, '?', { ...PLAIN, dataType: 'json', json: true }, geometryValue);
    case FieldType.ENUM:
    case FieldType.SET:
    case FieldType.VARCHAR:
    case FieldType.VAR_STRING:
    case FieldType.STRING:
    case FieldType.TINY_BLOB:
    case FieldType.MEDIUM_BLOB:
    case FieldType.LONG_BLOB:
    case FieldType.BLOB:
      return stringColumn(c, alias, current);
    default:
      throw new Error(`column ${c.name} has a binlog type (${c.type}) the reader does not know`);
  }
}

function stringColumn(c: BinlogColumn, alias: string, current: MySqlColumn | undefined): CapturedColumn {
  const enumLike = c.type === FieldType.ENUM ? 'enum' : c.type === FieldType.SET ? 'set' : undefined;
  if (c.charset === null && enumLike === undefined) {
    const currentType = current?.dataType.toLowerCase();
    if (currentType !== undefined && MARIADB_BINARY_TYPES.has(currentType)) {
      return column(c.name, alias, `CAST(? AS ${currentType.toUpperCase()})`, { ...PLAIN, dataType: currentType }, asIs);
    }
    // Bytes: the trigger's base64 of them.
    return column(c.name, alias, '?', { ...PLAIN, dataType: 'blob' }, asIs);
  }
  const charset = charsetName(c.charset ?? 'utf8mb4');
  // The text in the column's own character set, as the trigger reads it (row hash bytes, conversion).
  const typed = charset === 'utf8mb4' ? 'CAST(? AS CHAR CHARACTER SET utf8mb4)' : `CONVERT(? USING ${charset})`;
  const json = enumLike === undefined && current?.json === true;
  return column(c.name, alias, typed, { ...PLAIN, dataType: enumLike ?? (json ? 'longtext' : 'text'), charset, json }, asText);
}

/** Every column of a TABLE_MAP, aliased c0, c1, … in order. */
export function capturedColumns(columns: readonly BinlogColumn[], current: ReadonlyMap<string, MySqlColumn>): CapturedColumn[] {
  return columns.map((c, i) => capturedColumn(c, `c${i}`, current.get(c.name)));
}
