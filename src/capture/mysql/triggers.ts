/**
 * The capture triggers, generated from information_schema: one AFTER INSERT,
 * AFTER UPDATE and AFTER DELETE trigger per watched table (for the configured
 * operations), each one INSERT into our events table.
 *
 * A MySQL trigger cannot turn "the row" into JSON the way PostgreSQL's
 * row_to_json does: it must name every column. So the trigger text depends on the
 * table's columns, and a column added, dropped or renamed later needs new triggers
 * (see `fingerprint` and docs/mysql.md on schema drift).
 *
 * Pure functions: no database access here.
 */
import { createHash } from 'node:crypto';
import type { Operation } from '../../config/types.js';
import type { ResolvedTable } from '../postgres/install.js';
import { MAX_IDENTIFIER_LENGTH, qualify, quoteIdent, quoteLiteral } from './sql.js';

/** One column of a watched table, from information_schema.COLUMNS. */
export interface MySqlColumn {
  readonly name: string;
  /** DATA_TYPE, lower case: `int`, `decimal`, `timestamp`, `json`, `blob`, … */
  readonly dataType: string;
  /** COLUMN_TYPE, lower case: `int(10) unsigned zerofill`, `tinyint(1)`, `enum('a','b')`, … */
  readonly columnType: string;
  /** CHARACTER_SET_NAME; null for non-text columns. */
  readonly charset: string | null;
  /** DATETIME_PRECISION (fractional digits) of time columns; null otherwise. */
  readonly datetimePrecision: number | null;
  /** True for MySQL's JSON type and for MariaDB's JSON (a LONGTEXT with a json_valid check). */
  readonly json: boolean;
}

/** A watched table with what the trigger generator needs. */
export interface MySqlTable extends ResolvedTable {
  readonly columns: readonly MySqlColumn[];
  /** Storage engine (InnoDB, MyISAM, …). */
  readonly engine: string | null;
}

/** Whose values a generated expression reads: the trigger's NEW or OLD row, or a table alias (a backfill's). */
export type RowRef = 'NEW' | 'OLD' | (string & {});

/** Names of what we install, from the `listener.schema` prefix. */
export interface ObjectNames {
  readonly prefix: string;
  readonly migrations: string;
  readonly meta: string;
  readonly events: string;
  readonly deliveries: string;
  readonly destinationTables: string;
  readonly deadLetters: string;
  readonly deliveredEvents: string;
  readonly watchedTables: string;
  readonly backfills: string;
  /** The attempt log (the console's deliveries). */
  readonly attempts: string;
  /** Log capture: the binlog position the journal covers. */
  readonly capturePositions: string;
}

export function objectNames(prefix: string): ObjectNames {
  return {
    prefix,
    migrations: `${prefix}_migrations`,
    meta: `${prefix}_meta`,
    events: `${prefix}_events`,
    deliveries: `${prefix}_deliveries`,
    destinationTables: `${prefix}_destination_tables`,
    deadLetters: `${prefix}_dead_letters`,
    deliveredEvents: `${prefix}_delivered_events`,
    watchedTables: `${prefix}_watched_tables`,
    backfills: `${prefix}_backfills`,
    attempts: `${prefix}_attempts`,
    capturePositions: `${prefix}_capture_positions`,
  };
}

const OP_SHORT: Record<Operation, string> = { INSERT: 'ins', UPDATE: 'upd', DELETE: 'del' };
export const ALL_OPERATIONS: readonly Operation[] = ['INSERT', 'UPDATE', 'DELETE'];

/**
 * `<prefix>_<ins|upd|del>_<table>`. A name over MySQL's 64 characters keeps the
 * start of the table name and ends with 8 hex digits of the full name's SHA-1,
 * so it is the same at every install and differs between tables.
 */
export function triggerName(prefix: string, op: Operation, table: string): string {
  const head = `${prefix}_${OP_SHORT[op]}_`;
  const full = head + table;
  if ([...full].length <= MAX_IDENTIFIER_LENGTH) return full;
  const hash = createHash('sha1').update(table).digest('hex').slice(0, 8);
  const room = MAX_IDENTIFIER_LENGTH - [...head].length - 1 - hash.length;
  return `${head}${[...table].slice(0, room).join('')}_${hash}`;
}

/** The sql_mode the triggers are created with, and so run with (a trigger keeps its creation sql_mode). */
export const TRIGGER_SQL_MODE = 'STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION';

/**
 * Bumped whenever the generated SQL changes meaning, so installed triggers are
 * re-created by the next install even if the table did not change.
 */
const GENERATOR_VERSION = 'mysql-triggers-1';

export const BINARY_TYPES = new Set(['binary', 'varbinary', 'tinyblob', 'blob', 'mediumblob', 'longblob']);
const GEOMETRY_TYPES = new Set([
  'geometry',
  'point',
  'linestring',
  'polygon',
  'multipoint',
  'multilinestring',
  'multipolygon',
  'geometrycollection',
  'geomcollection',
]);
const NUMERIC_TYPES = new Set(['tinyint', 'smallint', 'mediumint', 'int', 'integer', 'bigint', 'decimal', 'numeric', 'float', 'double', 'real']);

/**
 * The JSON_OBJECT argument for one column's value: the column itself when
 * JSON_OBJECT already writes it exactly (integers, DECIMAL with its scale, text,
 * ENUM, SET, DATE, YEAR, FLOAT/DOUBLE, NULL), otherwise a conversion. The
 * mapping is documented in docs/mysql.md; keep the two in step.
 */
export function columnValueSql(col: MySqlColumn, ref: RowRef): string {
  const v = `${ref}.${quoteIdent(col.name)}`;
  const type = col.dataType.toLowerCase();
  if (col.json) {
    // Nested JSON, not a string holding JSON. JSON_EXTRACT(…, '$') gives the value
    // JSON type on both servers (MariaDB stores JSON as text).
    return `JSON_EXTRACT(${v}, '$')`;
  }
  if (type === 'timestamp') return timestampUtcSql(v, col.datetimePrecision ?? 0);
  if (type === 'datetime' || type === 'time') {
    // The text as stored, with the column's fractional digits ("2026-11-26 18:00:33.268907"):
    // DATETIME has no time zone. CAST keeps MySQL from padding to 6 digits.
    return `CAST(${v} AS CHAR)`;
  }
  if (type === 'bit') return `CAST(${v} AS UNSIGNED)`;
  if (BINARY_TYPES.has(type)) {
    // Bytes are not text: base64 (RFC 4648, no line breaks: TO_BASE64 wraps at 76 characters).
    return `REPLACE(TO_BASE64(${v}), CHAR(10 USING ascii), '')`;
  }
  if (GEOMETRY_TYPES.has(type)) return `ST_AsText(${v})`;
  if (NUMERIC_TYPES.has(type) && col.columnType.includes('zerofill')) {
    // ZEROFILL writes leading zeros (00005), which is not JSON; + 0 keeps DECIMAL's scale.
    return `(${v} + 0)`;
  }
  if (col.charset !== null && col.charset.toLowerCase() !== 'utf8mb4') {
    // JSON_OBJECT's result takes its arguments' character set: one latin1 column would
    // make the whole object latin1 and turn other columns' emoji into '?'.
    return `CONVERT(${v} USING utf8mb4)`;
  }
  return v;
}

/**
 * A TIMESTAMP as an RFC 3339 UTC instant, with the column's fractional digits:
 * "2026-11-26T13:00:33.268907Z". MySQL shows a TIMESTAMP in the writer's session
 * time zone, so the column's own text would depend on who wrote it. UNIX_TIMESTAMP
 * of the column gives the instant (MariaDB reads the stored UTC value; MySQL
 * converts back with the same session zone), and adding it to the epoch as a
 * DATETIME involves no time zone at all. The zero TIMESTAMP stays
 * "0000-00-00 00:00:00".
 */
function timestampUtcSql(v: string, precision: number): string {
  const digits = Math.max(0, Math.min(6, precision));
  const formatted = `DATE_FORMAT(TIMESTAMP '1970-01-01 00:00:00' + INTERVAL UNIX_TIMESTAMP(${v}) SECOND, '%Y-%m-%dT%H:%i:%s${digits > 0 ? '.%f' : ''}')`;
  const cut = digits > 0 && digits < 6 ? `LEFT(${formatted}, ${20 + digits})` : formatted;
  return `IF(UNIX_TIMESTAMP(${v}) = 0, '0000-00-00 00:00:00', CONCAT(${cut}, 'Z'))`;
}

/** JSON_OBJECT of every column, in table order. */
export function rowJsonSql(columns: readonly MySqlColumn[], ref: RowRef): string {
  const args = columns.map((c) => `${quoteLiteral(c.name)}, ${columnValueSql(c, ref)}`);
  return `JSON_OBJECT(\n    ${args.join(',\n    ')})`;
}

/**
 * Hash of the table and the row's primary key, as a signed BIGINT: the first 64
 * bits of SHA-1 over `database.table:` and each key value in QUOTE() form.
 * A TIMESTAMP key column is hashed as its UNIX_TIMESTAMP, not its text, which
 * depends on the writer's time zone. Each piece is cast to bytes, so key columns
 * in different character sets never meet in one collation. NULL without a
 * primary key: such events are not ordered.
 */
export function rowHashSql(table: MySqlTable, ref: RowRef): string {
  if (table.keyColumns.length === 0) return 'NULL';
  const pieces = table.keyColumns.map((k) => {
    const col = table.columns.find((c) => c.name === k);
    const v = `${ref}.${quoteIdent(k)}`;
    const keyed = col?.dataType.toLowerCase() === 'timestamp' ? `UNIX_TIMESTAMP(${v})` : v;
    return `CAST(QUOTE(${keyed}) AS BINARY)`;
  });
  const label = quoteLiteral(`${table.schema}.${table.name}:`);
  return `CONV(LEFT(SHA1(CONCAT(${label}, ${pieces.join(", ',', ")})), 16), 16, -10)`;
}

/** CREATE TRIGGER for one operation. `journalDb` holds our events table. */
export function createTriggerSql(journalDb: string, names: ObjectNames, table: MySqlTable, op: Operation): string {
  const name = qualify(table.schema, triggerName(names.prefix, op, table.name));
  const ref = op === 'DELETE' ? 'OLD' : 'NEW';
  const newRow = op === 'DELETE' ? 'NULL' : rowJsonSql(table.columns, 'NEW');
  const oldRow = op === 'INSERT' ? 'NULL' : rowJsonSql(table.columns, 'OLD');
  return `CREATE TRIGGER ${name} AFTER ${op} ON ${qualify(table.schema, table.name)} FOR EACH ROW
INSERT INTO ${eventsInsertMarker(journalDb, names)} (op, schema_name, table_name, row_hash, new_row, old_row, txid, created_at)
VALUES (${quoteLiteral(op)}, ${quoteLiteral(table.schema)}, ${quoteLiteral(table.name)},
  ${rowHashSql(table, ref)},
  ${newRow},
  ${oldRow},
  CONNECTION_ID(), UTC_TIMESTAMP(6))`;
}

/** The events table as the triggers name it; uninstall finds our triggers by it. */
export function eventsInsertMarker(journalDb: string, names: ObjectNames): string {
  return qualify(journalDb, names.events);
}

export interface TableTriggers {
  readonly table: MySqlTable;
  readonly operations: readonly Operation[];
  /** CREATE TRIGGER statements, one per operation, in `operations` order. */
  readonly creates: readonly string[];
  /** SHA-1 of everything the triggers depend on; stored in watched_tables. */
  readonly fingerprint: string;
}

export function generateTriggers(journalDb: string, names: ObjectNames, table: MySqlTable, modes: readonly Operation[]): TableTriggers {
  const operations = ALL_OPERATIONS.filter((op) => modes.includes(op));
  const creates = operations.map((op) => createTriggerSql(journalDb, names, table, op));
  const fingerprint = createHash('sha1')
    .update([GENERATOR_VERSION, TRIGGER_SQL_MODE, operations.join(','), ...creates].join('\u0000'))
    .digest('hex');
  return { table, operations, creates, fingerprint };
}

/**
 * The install step for one table: every trigger is swapped while the table is
 * write-locked, so no write lands between a DROP TRIGGER and its CREATE TRIGGER
 * (MySQL has no transactional DDL and no CREATE OR REPLACE TRIGGER). Triggers of
 * operations no longer captured are dropped.
 */
export function triggerStepSql(journalDb: string, names: ObjectNames, t: TableTriggers): string {
  const { table } = t;
  const lines = [
    'SET NAMES utf8mb4;',
    `SET SESSION sql_mode = ${quoteLiteral(TRIGGER_SQL_MODE)};`,
    `LOCK TABLES ${qualify(table.schema, table.name)} WRITE, ${qualify(journalDb, names.watchedTables)} WRITE;`,
  ];
  for (const op of ALL_OPERATIONS) {
    lines.push(`DROP TRIGGER IF EXISTS ${qualify(table.schema, triggerName(names.prefix, op, table.name))};`);
    const i = t.operations.indexOf(op);
    if (i >= 0) lines.push(`${t.creates[i]};`);
  }
  lines.push(
    `INSERT INTO ${qualify(journalDb, names.watchedTables)}
  (schema_name, table_name, operations, key_columns, trigger_fingerprint, installed_at)
VALUES (${quoteLiteral(table.schema)}, ${quoteLiteral(table.name)}, ${quoteLiteral(t.operations.join(','))},
  ${quoteLiteral(JSON.stringify(table.keyColumns))}, ${quoteLiteral(t.fingerprint)}, UTC_TIMESTAMP(6))
ON DUPLICATE KEY UPDATE operations = VALUES(operations), key_columns = VALUES(key_columns),
  trigger_fingerprint = VALUES(trigger_fingerprint), installed_at = VALUES(installed_at);`,
    'UNLOCK TABLES;',
  );
  return lines.join('\n');
}
