/**
 * What we install in a MySQL or MariaDB database, as a plan that can be printed,
 * applied or removed: our tables' numbered migrations, then the capture triggers
 * of each watched table.
 *
 * MySQL DDL is not transactional, so unlike PostgreSQL the plan cannot be applied
 * all-or-nothing. Instead every step is safe to run again, versions are recorded
 * after their step, and installers are serialised with GET_LOCK: two daemons
 * starting at once install one after the other, and the second plans after the
 * first is done, so it finds nothing left to do.
 */
import { randomBytes, createHash } from 'node:crypto';
import type mysql from 'mysql2/promise';
import type { Config } from '../../config/types.js';
import { loadMigrations, render } from '../../schema/migrations.js';
import { AppError } from '../../util/errors.js';
import type { InstallPlan, InstallStep } from '../postgres/install.js';
import { binlogStatus, describeBinlogSettings, readBinlogSettings, type BinlogPosition } from './binlog/settings.js';
import { checkServerVersion, readServerInfo, type ServerInfo } from './server.js';
import { qualify, quoteIdent, quoteLiteral, splitStatements } from './sql.js';
import {
  ALL_OPERATIONS,
  eventsInsertMarker,
  generateTriggers,
  objectNames,
  triggerName,
  triggerStepSql,
  type MySqlColumn,
  type MySqlTable,
  type ObjectNames,
  type TableTriggers,
} from './triggers.js';

export type { InstallPlan, InstallStep } from '../postgres/install.js';
export type { MySqlColumn, MySqlTable } from './triggers.js';

/**
 * How long one install waits for a watched table's metadata lock (a transaction
 * that touched the table must end first) before giving up; the caller retries.
 * MySQL counts lock_wait_timeout in whole seconds.
 */
export const INSTALL_LOCK_TIMEOUT_S = 3;

/** How long an installer waits for another one to finish (GET_LOCK), in seconds. */
export const INSTALLER_WAIT_S = 60;

type Conn = mysql.Connection;

async function rows<T>(conn: Conn, sql: string, values: unknown[] = []): Promise<T[]> {
  const [r] = await conn.query<mysql.RowDataPacket[]>(sql, values);
  return r as unknown as T[];
}

/** The installers' lock: per journal (database and prefix). GET_LOCK names are at most 64 characters. */
export function installLockName(config: Config): string {
  const key = createHash('sha1').update(`${config.database.database}\u0000${config.listener.schema}`).digest('hex');
  return `app-db-listener:install:${key.slice(0, 32)}`;
}

async function tableExists(conn: Conn, database: string, table: string): Promise<boolean> {
  const r = await rows<{ n: number }>(
    conn,
    'SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?',
    [database, table],
  );
  return Number(r[0]?.n ?? 0) > 0;
}

async function appliedVersions(conn: Conn, database: string, names: ObjectNames): Promise<Set<number>> {
  if (!(await tableExists(conn, database, names.migrations))) return new Set();
  const r = await rows<{ version: number }>(conn, `SELECT version FROM ${qualify(database, names.migrations)}`);
  return new Set(r.map((row) => Number(row.version)));
}

function bootstrapSql(database: string, names: ObjectNames): string {
  return `CREATE TABLE IF NOT EXISTS ${qualify(database, names.migrations)} (
  version    INT          NOT NULL,
  name       VARCHAR(255) NOT NULL,
  applied_at DATETIME(6)  NOT NULL,
  PRIMARY KEY (version)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;`;
}

/**
 * Finds each watched table (in database.database unless the config names another
 * database), its columns in order and its primary key.
 */
export async function resolveTables(conn: Conn, config: Config, server?: ServerInfo): Promise<MySqlTable[]> {
  const info = server ?? (await readServerInfo(conn));
  const out: MySqlTable[] = [];
  for (const t of config.database.tables) {
    const database = t.schema ?? config.database.database;
    const shown = `${database}.${t.name}`;
    const found = await rows<{ type: string; engine: string | null }>(
      conn,
      `SELECT TABLE_TYPE AS type, ENGINE AS engine FROM information_schema.TABLES
        WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?`,
      [database, t.name],
    );
    const table = found[0];
    if (!table) {
      throw new AppError('TABLE_NOT_FOUND', `table ${JSON.stringify(shown)} does not exist in the database`, {
        hint: 'check database.table / database.tables (names are case-sensitive) and database.database',
      });
    }
    if (table.type !== 'BASE TABLE' && table.type !== 'SYSTEM VERSIONED') {
      throw new AppError('TABLE_NOT_A_TABLE', `${JSON.stringify(shown)} is not a table (${table.type})`, {
        hint: 'only base tables can be watched: MySQL has no triggers on views',
      });
    }
    const cols = await rows<{ name: string; data_type: string; column_type: string; charset: string | null; dt_precision: number | null }>(
      conn,
      `SELECT COLUMN_NAME AS name, DATA_TYPE AS data_type, COLUMN_TYPE AS column_type,
              CHARACTER_SET_NAME AS charset, DATETIME_PRECISION AS dt_precision
         FROM information_schema.COLUMNS
        WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?
        ORDER BY ORDINAL_POSITION`,
      [database, t.name],
    );
    // MariaDB's JSON is a LONGTEXT with a CHECK (json_valid(`col`)) constraint.
    let jsonChecks = new Set<string>();
    if (info.flavor === 'mariadb') {
      const checks = await rows<{ clause: string }>(
        conn,
        `SELECT CHECK_CLAUSE AS clause FROM information_schema.CHECK_CONSTRAINTS
          WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?`,
        [database, t.name],
      );
      jsonChecks = new Set(checks.map((c) => String(c.clause).toLowerCase()));
    }
    const columns: MySqlColumn[] = cols.map((c) => {
      const dataType = String(c.data_type).toLowerCase();
      return {
        name: String(c.name),
        dataType,
        columnType: String(c.column_type).toLowerCase(),
        charset: c.charset === null ? null : String(c.charset),
        datetimePrecision: c.dt_precision === null ? null : Number(c.dt_precision),
        json: dataType === 'json' || (dataType === 'longtext' && jsonChecks.has(`json_valid(${quoteIdent(String(c.name))})`.toLowerCase())),
      };
    });
    const keys = await rows<{ name: string }>(
      conn,
      `SELECT COLUMN_NAME AS name FROM information_schema.STATISTICS
        WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND INDEX_NAME = 'PRIMARY'
        ORDER BY SEQ_IN_INDEX`,
      [database, t.name],
    );
    out.push({ schema: database, name: t.name, keyColumns: keys.map((k) => String(k.name)), columns, engine: table.engine });
  }
  return out;
}

/** What a person should know about a watched table (shown by install and at start). */
export function tableWarnings(t: MySqlTable): string[] {
  const out: string[] = [];
  if (t.keyColumns.length === 0) {
    out.push(
      `table ${t.schema}.${t.name} has no primary key: its events carry no row identity, so they are delivered without per-row ordering`,
    );
  }
  if (t.engine !== null && t.engine.toLowerCase() !== 'innodb') {
    out.push(
      `table ${t.schema}.${t.name} uses the ${t.engine} engine, which has no transactions: its changes stay when a transaction rolls back, but their events (in an InnoDB table) are rolled back with it`,
    );
  }
  return out;
}

/** Our triggers that exist on the table, by name. */
async function existingTriggers(conn: Conn, table: MySqlTable, names: ObjectNames): Promise<Set<string>> {
  const candidates = ALL_OPERATIONS.map((op) => triggerName(names.prefix, op, table.name));
  const r = await rows<{ name: string }>(
    conn,
    `SELECT TRIGGER_NAME AS name FROM information_schema.TRIGGERS
      WHERE TRIGGER_SCHEMA = ? AND EVENT_OBJECT_TABLE = ? AND TRIGGER_NAME IN (?, ?, ?)`,
    [table.schema, table.name, ...candidates],
  );
  return new Set(r.map((row) => String(row.name)));
}

/**
 * True when the table's triggers are exactly those `gen` would create: the same
 * operations, and the same SQL (so the same columns, types and key) as recorded
 * in watched_tables when they were installed.
 */
async function triggersAreCurrent(conn: Conn, database: string, names: ObjectNames, gen: TableTriggers): Promise<boolean> {
  const recorded = await rows<{ fingerprint: string }>(
    conn,
    `SELECT trigger_fingerprint AS fingerprint FROM ${qualify(database, names.watchedTables)}
      WHERE schema_name = ? AND table_name = ?`,
    [gen.table.schema, gen.table.name],
  );
  if (recorded[0]?.fingerprint !== gen.fingerprint) return false;
  const present = await existingTriggers(conn, gen.table, names);
  const wanted = new Set(gen.operations.map((op) => triggerName(names.prefix, op, gen.table.name)));
  return present.size === wanted.size && [...wanted].every((n) => present.has(n));
}

/**
 * Reads the database and returns what is missing, as SQL. `force` plans every
 * step, as for a fresh database (used by `install --dry-run --all`). Checks the
 * server version first: on a server without SKIP LOCKED nothing would work.
 */
export async function planInstall(conn: Conn, config: Config, force = false, upToVersion = Infinity): Promise<InstallPlan> {
  const server = await readServerInfo(conn);
  checkServerVersion(server);
  const database = config.database.database;
  const names = objectNames(config.listener.schema);
  const applied = force ? new Set<number>() : await appliedVersions(conn, database, names);
  const steps: InstallStep[] = [];
  const warnings: string[] = [];
  const pending = loadMigrations('mysql').filter((m) => !applied.has(m.version) && m.version <= upToVersion);
  if (pending.length > 0 && applied.size === 0) {
    steps.push({ description: `create table ${names.migrations}`, sql: bootstrapSql(database, names) });
  }
  const values = {
    meta: qualify(database, names.meta),
    events: qualify(database, names.events),
    deliveries: qualify(database, names.deliveries),
    destination_tables: qualify(database, names.destinationTables),
    dead_letters: qualify(database, names.deadLetters),
    delivered_events: qualify(database, names.deliveredEvents),
    watched_tables: qualify(database, names.watchedTables),
    backfills: qualify(database, names.backfills),
    attempts: qualify(database, names.attempts),
    capture_positions: qualify(database, names.capturePositions),
    // For statements that look our tables up in information_schema, or build SQL in SQL.
    database_name: quoteLiteral(database),
    watched_tables_name: quoteLiteral(names.watchedTables),
    watched_tables_sql: quoteLiteral(qualify(database, names.watchedTables)),
    events_name: quoteLiteral(names.events),
    events_sql: quoteLiteral(qualify(database, names.events)),
    deliveries_sql: quoteLiteral(qualify(database, names.deliveries)),
    dead_letters_name: quoteLiteral(names.deadLetters),
    dead_letters_sql: quoteLiteral(qualify(database, names.deadLetters)),
    delivered_events_name: quoteLiteral(names.deliveredEvents),
    delivered_events_sql: quoteLiteral(qualify(database, names.deliveredEvents)),
    installation_id: quoteLiteral(randomBytes(6).toString('hex')),
  };
  for (const m of pending) {
    steps.push({
      description: `migration ${String(m.version).padStart(6, '0')}_${m.name}`,
      sql: `${render(m.template, values).trimEnd()}\n\nINSERT INTO ${qualify(database, names.migrations)} (version, name, applied_at)
VALUES (${m.version}, ${quoteLiteral(m.name)}, UTC_TIMESTAMP(6))
ON DUPLICATE KEY UPDATE name = VALUES(name);`,
    });
  }
  const tables = await resolveTables(conn, config, server);
  // watched_tables exists once migration 1 ran; before that every trigger is new.
  const canCompare = !force && applied.has(1);
  if (config.listener.capture === 'log') {
    for (const t of tables) warnings.push(...tableWarnings(t).filter((w) => !w.includes('engine')));
    await planLogCapture(conn, config, tables, force, canCompare, applied, steps);
    return { steps, tables, warnings };
  }
  if (!force && applied.has(6) && (await storedPosition(conn, database, names)) !== undefined) {
    steps.push({
      description: `forget the binlog position of log capture (trigger capture from now on)`,
      sql: `DELETE FROM ${qualify(database, names.capturePositions)} WHERE stream_name = ${quoteLiteral(CAPTURE_STREAM)};`,
    });
  }
  for (const t of tables) {
    warnings.push(...tableWarnings(t));
    const gen = generateTriggers(database, names, t, config.listener.modes);
    if (!canCompare || !(await triggersAreCurrent(conn, database, names, gen))) {
      steps.push({
        description: `capture triggers on ${t.schema}.${t.name} (${gen.operations.join(', ')})`,
        sql: triggerStepSql(database, names, gen),
      });
    }
  }
  return { steps, tables, warnings };
}

/** capture_positions' key of the binlog reader. */
export const CAPTURE_STREAM = 'binlog';

/** The binlog reader's lease (GET_LOCK): per journal (database and prefix), at most 64 characters. */
export function captureLeaseName(config: Config): string {
  const key = createHash('sha1').update(`${config.database.database}\u0000${config.listener.schema}`).digest('hex');
  return `app-db-listener:capture:${key.slice(0, 32)}`;
}

/**
 * The replica server id the binlog reader announces: derived from the journal, so
 * it is the same at every start and differs between installations; above the small
 * numbers people give their replicas. A server drops an earlier reader with the same
 * id, which only ever is ours (one reader per journal).
 */
export function captureServerId(config: Config): number {
  const key = createHash('sha1').update(`server-id\u0000${config.database.database}\u0000${config.listener.schema}`).digest();
  return 1_000_000 + (key.readUInt32BE(0) % 1_000_000_000);
}

async function storedPosition(conn: Conn, database: string, names: ObjectNames): Promise<BinlogPosition | undefined> {
  if (!(await tableExists(conn, database, names.capturePositions))) return undefined;
  const r = await rows<{ file: string; pos: number }>(
    conn,
    `SELECT binlog_file AS file, binlog_pos AS pos FROM ${qualify(database, names.capturePositions)} WHERE stream_name = ?`,
    [CAPTURE_STREAM],
  );
  return r[0] ? { file: String(r[0].file), position: Number(r[0].pos) } : undefined;
}

/** watched_tables' fingerprint of a table captured from the binlog (no triggers). */
const LOG_FINGERPRINT = 'binlog-capture';

/**
 * Log capture (listener.capture: log): no triggers. The server must write full rows
 * with their column names to its binary log; triggers left from trigger capture are
 * removed (their changes would otherwise be journaled twice); each table is recorded
 * in watched_tables; and the binlog position of now is stored, so the changes from
 * here on are captured even before the daemon first runs.
 */
async function planLogCapture(
  conn: Conn,
  config: Config,
  tables: readonly MySqlTable[],
  force: boolean,
  canCompare: boolean,
  applied: ReadonlySet<number>,
  steps: InstallStep[],
): Promise<void> {
  const database = config.database.database;
  const names = objectNames(config.listener.schema);
  const problem = describeBinlogSettings(await readBinlogSettings(conn));
  if (problem) throw new AppError('BINLOG_SETTINGS', problem.message, { hint: problem.hint });
  const operations = ALL_OPERATIONS.filter((op) => config.listener.modes.includes(op));
  for (const t of tables) {
    const present = canCompare ? await existingTriggers(conn, t, names) : new Set<string>();
    if (present.size > 0 || force) {
      const drop = force ? ALL_OPERATIONS.map((op) => triggerName(names.prefix, op, t.name)) : [...present];
      steps.push({
        description: `remove capture triggers from ${t.schema}.${t.name} (log capture)`,
        sql: drop.map((n) => `DROP TRIGGER IF EXISTS ${qualify(t.schema, n)};`).join('\n'),
      });
    }
    if (!canCompare || !(await watchedIsCurrent(conn, database, names, t, operations))) {
      steps.push({
        description: `watch ${t.schema}.${t.name} (${operations.join(', ')}, log capture)`,
        sql: `INSERT INTO ${qualify(database, names.watchedTables)}
  (schema_name, table_name, operations, key_columns, trigger_fingerprint, installed_at)
VALUES (${quoteLiteral(t.schema)}, ${quoteLiteral(t.name)}, ${quoteLiteral(operations.join(','))},
  ${quoteLiteral(JSON.stringify(t.keyColumns))}, ${quoteLiteral(LOG_FINGERPRINT)}, UTC_TIMESTAMP(6))
ON DUPLICATE KEY UPDATE operations = VALUES(operations), key_columns = VALUES(key_columns),
  trigger_fingerprint = VALUES(trigger_fingerprint), installed_at = VALUES(installed_at);`,
      });
    }
  }
  if (force || !applied.has(6) || (await storedPosition(conn, database, names)) === undefined) {
    const end = await binlogStatus(conn);
    steps.push({
      description: `start log capture at binlog ${end.file}:${end.position}`,
      sql: `INSERT IGNORE INTO ${qualify(database, names.capturePositions)} (stream_name, binlog_file, binlog_pos, gtid, commit_time, updated_at)
VALUES (${quoteLiteral(CAPTURE_STREAM)}, ${quoteLiteral(end.file)}, ${end.position}, NULL, NULL, UTC_TIMESTAMP(6));`,
    });
  }
}

async function watchedIsCurrent(conn: Conn, database: string, names: ObjectNames, t: MySqlTable, operations: readonly string[]): Promise<boolean> {
  const r = await rows<{ operations: string; key_columns: string; fingerprint: string }>(
    conn,
    `SELECT operations, key_columns, trigger_fingerprint AS fingerprint FROM ${qualify(database, names.watchedTables)}
      WHERE schema_name = ? AND table_name = ?`,
    [t.schema, t.name],
  );
  const row = r[0];
  return row !== undefined && row.fingerprint === LOG_FINGERPRINT && row.operations === operations.join(',') && row.key_columns === JSON.stringify(t.keyColumns);
}

/**
 * True when every watched table's triggers match its current columns (and the
 * configured operations): the schema-drift check. False means a column was added,
 * dropped, renamed or retyped since the last install (or a trigger is missing):
 * `applyInstall` re-creates the triggers of the tables concerned.
 */
export async function triggerColumnsCurrent(conn: Conn, config: Config): Promise<boolean> {
  return (await staleTables(conn, config)).length === 0;
}

/** The watched tables whose triggers are missing or out of date, as `database.table`. */
export async function staleTables(conn: Conn, config: Config): Promise<string[]> {
  const database = config.database.database;
  const names = objectNames(config.listener.schema);
  const tables = await resolveTables(conn, config);
  if (!(await tableExists(conn, database, names.watchedTables))) return tables.map((t) => `${t.schema}.${t.name}`);
  const stale: string[] = [];
  for (const t of tables) {
    const gen = generateTriggers(database, names, t, config.listener.modes);
    if (!(await triggersAreCurrent(conn, database, names, gen))) stale.push(`${t.schema}.${t.name}`);
  }
  return stale;
}

/** Runs a step: its statements one by one (a connection need not accept several at once). */
async function runStep(conn: Conn, step: InstallStep): Promise<void> {
  for (const statement of splitStatements(step.sql)) await conn.query(statement);
}

/**
 * Serialises installers on this journal with a named lock (GET_LOCK), and
 * restores the session settings the steps change, so a pooled connection goes
 * back as it came.
 */
async function withInstallerLock<T>(conn: Conn, config: Config, fn: () => Promise<T>): Promise<T> {
  const lock = installLockName(config);
  const saved = await rows<{ sql_mode: string; lock_wait_timeout: number }>(
    conn,
    'SELECT @@SESSION.sql_mode AS sql_mode, @@SESSION.lock_wait_timeout AS lock_wait_timeout',
  );
  const got = await rows<{ ok: number | null }>(conn, 'SELECT GET_LOCK(?, ?) AS ok', [lock, INSTALLER_WAIT_S]);
  if (Number(got[0]?.ok) !== 1) {
    throw new AppError('INSTALL_BUSY', `another installer has held the install lock of ${config.listener.schema} for ${INSTALLER_WAIT_S} s`, {
      hint: 'another app-db-listener is installing into this database; try again when it is done',
    });
  }
  try {
    // DDL on a watched table waits for the transactions using it and, while
    // waiting, holds up the application's new ones behind it: give up quickly.
    await conn.query('SET SESSION lock_wait_timeout = ?', [INSTALL_LOCK_TIMEOUT_S]);
    return await fn();
  } finally {
    await conn.query('UNLOCK TABLES').catch(() => undefined);
    const s = saved[0];
    if (s) {
      await conn
        .query('SET SESSION sql_mode = ?, lock_wait_timeout = ?', [s.sql_mode, Number(s.lock_wait_timeout)])
        .catch(() => undefined);
    }
    await conn.query('SELECT RELEASE_LOCK(?)', [lock]).catch(() => undefined);
  }
}

/**
 * Applies the plan under the installers' lock. Returns what was done. `upToVersion`
 * stops at that migration (tests of an upgrade install an earlier version first).
 */
export async function applyInstall(conn: Conn, config: Config, upToVersion = Infinity): Promise<InstallPlan> {
  try {
    return await withInstallerLock(conn, config, async () => {
      // Planned after taking the lock: a concurrent installer has finished by now.
      const plan = await planInstall(conn, config, false, upToVersion);
      for (const step of plan.steps) await runStep(conn, step);
      return plan;
    });
  } catch (err) {
    throw translateInstallError(err, config);
  }
}

/** SQL that removes our triggers and, with `dropAll`, every table we installed. */
export async function planUninstall(conn: Conn, config: Config, dropAll: boolean): Promise<InstallStep[]> {
  const database = config.database.database;
  const names = objectNames(config.listener.schema);
  const steps: InstallStep[] = [];
  // Our triggers are those that write into our events table, wherever they are:
  // also those of tables no longer in the config.
  const marker = `INSERT INTO ${eventsInsertMarker(database, names)} (`;
  const found = await rows<{ schema: string; table: string; name: string }>(
    conn,
    `SELECT TRIGGER_SCHEMA AS \`schema\`, EVENT_OBJECT_TABLE AS \`table\`, TRIGGER_NAME AS name
       FROM information_schema.TRIGGERS
      WHERE LOCATE(?, ACTION_STATEMENT) > 0
      ORDER BY 1, 2, 3`,
    [marker],
  );
  const byTable = new Map<string, { schema: string; table: string; names: string[] }>();
  for (const t of found) {
    const key = JSON.stringify([t.schema, t.table]);
    const entry = byTable.get(key) ?? { schema: String(t.schema), table: String(t.table), names: [] };
    entry.names.push(String(t.name));
    byTable.set(key, entry);
  }
  const hasWatched = !dropAll && (await tableExists(conn, database, names.watchedTables));
  for (const t of byTable.values()) {
    const sql = t.names.map((n) => `DROP TRIGGER IF EXISTS ${qualify(t.schema, n)};`);
    if (hasWatched) {
      sql.push(
        `DELETE FROM ${qualify(database, names.watchedTables)} WHERE schema_name = ${quoteLiteral(t.schema)} AND table_name = ${quoteLiteral(t.table)};`,
      );
    }
    steps.push({ description: `remove capture triggers from ${t.schema}.${t.table}`, sql: sql.join('\n') });
  }
  if (!dropAll && config.listener.capture === 'log' && (await storedPosition(conn, database, names)) !== undefined) {
    steps.push({
      description: 'forget the binlog position of log capture (changes after this point are not captured)',
      sql: `DELETE FROM ${qualify(database, names.capturePositions)} WHERE stream_name = ${quoteLiteral(CAPTURE_STREAM)};`,
    });
  }
  if (dropAll) {
    const all = [names.events, names.deliveries, names.deadLetters, names.deliveredEvents, names.destinationTables, names.watchedTables, names.backfills, names.attempts, names.capturePositions, names.meta, names.migrations];
    steps.push({
      description: `drop tables ${names.prefix}_* (journal, dead letters)`,
      sql: `DROP TABLE IF EXISTS ${all.map((n) => qualify(database, n)).join(', ')};`,
    });
  }
  return steps;
}

export async function applyUninstall(conn: Conn, config: Config, dropAll: boolean): Promise<InstallStep[]> {
  try {
    return await withInstallerLock(conn, config, async () => {
      const steps = await planUninstall(conn, config, dropAll);
      for (const step of steps) await runStep(conn, step);
      return steps;
    });
  } catch (err) {
    throw translateInstallError(err, config);
  }
}

interface MySqlDriverError {
  errno?: number;
  code?: string;
  sqlMessage?: string;
  message?: string;
}

/** Server errors an installer can meet, as AppErrors that say what to do. */
export function translateInstallError(err: unknown, config: Config): unknown {
  if (err instanceof AppError) return err;
  const e = (err ?? {}) as MySqlDriverError;
  const message = e.sqlMessage ?? e.message ?? String(err);
  const grantOn = `${quoteIdent(config.database.database)}.*`;
  switch (e.errno) {
    case 1419: // ER_BINLOG_CREATE_ROUTINE_NEED_SUPER
      return new AppError('INSTALL_BINLOG', `cannot create the capture triggers while binary logging is on: ${message}`, {
        cause: err,
        hint:
          'with binary logging on, MySQL lets only a user with SUPER create triggers unless log_bin_trust_function_creators is set: ' +
          'run SET GLOBAL log_bin_trust_function_creators = 1 (and set it in the server configuration), ' +
          'or run "install" once as a user with SUPER, then run with listener.auto_install: false',
      });
    case 1142: // ER_TABLEACCESS_DENIED_ERROR: "TRIGGER command denied to user …"
    case 1143: // ER_COLUMNACCESS_DENIED_ERROR
    case 1044: // ER_DBACCESS_DENIED_ERROR
    case 1227: // ER_SPECIFIC_ACCESS_DENIED_ERROR
      return new AppError('INSTALL_PRIVILEGES', `cannot install: ${message}`, {
        cause: err,
        hint: /\bTRIGGER\b/i.test(message)
          ? `the database user needs the TRIGGER privilege on the watched tables: GRANT TRIGGER ON ${grantOn} TO <user>; or run "install" once as a user who has it, then run with listener.auto_install: false`
          : `the installing user needs CREATE, ALTER, INDEX, DROP, SELECT, INSERT, UPDATE, DELETE, LOCK TABLES and TRIGGER on ${grantOn}; or run "install" once as such a user, then run with listener.auto_install: false`,
      });
    case 1205: // ER_LOCK_WAIT_TIMEOUT (also for metadata locks)
      return new AppError('INSTALL_LOCK_TIMEOUT', `cannot install: a watched table is busy (${message})`, {
        cause: err,
        hint: 'a long transaction holds a lock on a watched table; installing is retried, or run "install" at a quieter moment',
      });
    default:
      return err;
  }
}
