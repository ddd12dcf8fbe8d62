/**
 * The capture-source conformance suite talks to each database through a small
 * `Driver`: a throw-away database, SQL in the right dialect, the daemon's config
 * for a receiver URL, and the counts the scenarios assert on (journal rows,
 * claimed rows, dead letters), always read from the database itself.
 *
 * SQL given to `exec` / `rows` uses `?` placeholders in both dialects (the
 * PostgreSQL driver numbers them); identifiers and column types come from the
 * driver, so a scenario's DDL is written once.
 */
import type mysql from 'mysql2/promise';
import pg from 'pg';
import { pino } from 'pino';
import { startDaemon, type RunningDaemon } from '../../src/app.js';
import { parseConfig } from '../../src/config/index.js';
import type { Config } from '../../src/config/types.js';
import { address, startBinlogMariaDb } from '../support/binlog-mariadb.js';
import { SHARED_MYSQL, createMySqlTestDatabase, type MySqlServerAddress, type MySqlTestDatabase } from '../support/mysql.js';
import { createLogicalTestDatabase, startLogicalPostgres } from '../support/logical-postgres.js';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';

export type DriverName = 'postgres' | 'mysql';

/** Column types of the scenarios, in the driver's dialect. */
export interface ColumnTypes {
  readonly int: string;
  readonly bigint: string;
  /** Exact decimal with two fractional digits. */
  readonly decimal: string;
  /** Short text (fits an index, may have a DEFAULT). */
  readonly text: string;
  /** Text of any length (the 1 MB row). */
  readonly longText: string;
  /** The dialect's boolean (PostgreSQL boolean, MySQL BOOLEAN = TINYINT(1)). */
  readonly bool: string;
  /** The dialect's JSON column type. */
  readonly json: string;
}

export interface ClaimHold {
  lockMore(): Promise<void>;
  /** Idempotent. */
  release(): Promise<void>;
}

/** What the daemon's config says, whatever the database. */
export interface DaemonConfigOptions {
  readonly webhookUrl: string;
  readonly tables: readonly string[];
  readonly poolSize?: number;
  /** Seconds per attempt. */
  readonly timeout?: number;
  readonly retryCount?: number;
  readonly retryDelay?: number;
  readonly retryMaxDelay?: number;
  /** Seconds; default the driver's (`defaultPollInterval`). */
  readonly pollInterval?: number;
  readonly shutdownTimeout?: number;
  readonly logLevel?: string;
  /** http.listen (default "off"). */
  readonly httpListen?: string;
  /** No `webhook:` section (the destinations are all in `extraYaml`). */
  readonly noWebhook?: boolean;
  /** YAML appended at the top level, e.g. a `destinations:` list. */
  readonly extraYaml?: string;
}

export interface Driver {
  readonly name: DriverName;
  /** The `schema` field events of the scenario tables carry. */
  readonly eventSchema: string;
  readonly types: ColumnTypes;
  /** How a true boolean-ish value appears in a row's JSON text. */
  readonly trueJson: string;
  /**
   * Whether a column added while the daemon runs is in the very next change
   * (PostgreSQL's row_to_json) or only after the triggers were regenerated
   * (MySQL: the daemon's drift check, every 10 s).
   */
  readonly seesNewColumnsAtOnce: boolean;
  readonly defaultPollInterval: number;
  /** A quoted identifier. */
  quote(name: string): string;
  /** Runs one statement (`?` placeholders). */
  exec(sql: string, params?: readonly unknown[]): Promise<void>;
  /**
   * Runs the statements (`?` placeholders) one after another in one transaction;
   * `beforeCommit` runs while it is still open, and may run more statements in it.
   */
  transaction(
    statements: ReadonlyArray<readonly [string, readonly unknown[]]>,
    beforeCommit?: (exec: (sql: string, params?: readonly unknown[]) => Promise<void>) => Promise<void>,
  ): Promise<void>;
  /** Runs one query (`?` placeholders) and returns its rows. */
  rows<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  /** Events of `table` still in the journal (pending, retrying or claimed). */
  journalCount(table: string): Promise<number>;
  /** Journal ids (the `<n>` of `evt_<installation>_<n>`) of the events of `table` some instance holds a claim on. */
  claimedIds(table: string): Promise<string[]>;
  /**
   * Makes the daemon's outcome writes for `table` lag, as a slow or contended
   * database would: a session of the test takes a shared row lock on every
   * claimed event of `table` (each `lockMore()`), which holds up the delete of a
   * delivered event but not new claims. `release()` first terminates the
   * sessions waiting on those locks (only a killed daemon's are: its statements
   * must not complete after its death, as after a crash of its host), then ends
   * the session.
   */
  holdClaimedEvents(table: string): Promise<ClaimHold>;
  /** Journal events of `table` whose last error starts with `prefix`. */
  failedWith(table: string, prefix: string): Promise<number>;
  deadLetterCount(table: string): Promise<number>;
  deadLetters(table: string): Promise<{ attempts: number; lastStatus: number | null }[]>;
  /** The daemon's config file for this database. */
  configYaml(o: DaemonConfigOptions): string;
  config(o: DaemonConfigOptions): Config;
  /** The daemon in this process (silent unless ADL_TEST_LOG names a level). */
  startDaemon(o: DaemonConfigOptions): Promise<RunningDaemon>;
  /** Drops the throw-away database. */
  drop(): Promise<void>;
}

/** The part of the config below `database:` that names the server, per driver. */
function yaml(databaseLines: readonly string[], o: DaemonConfigOptions, pollInterval: number, listenerLines: readonly string[] = []): string {
  const lines = [
    'database:',
    ...databaseLines.map((l) => `  ${l}`),
    '  tables:',
    ...o.tables.map((t) => `    - ${JSON.stringify(t)}`),
    'listener:',
    '  modes: "insert,update,delete"',
    `  poll_interval: ${o.pollInterval ?? pollInterval}`,
    ...listenerLines.map((l) => `  ${l}`),
    ...(o.noWebhook
      ? []
      : [
          'webhook:',
          `  url: ${JSON.stringify(o.webhookUrl)}`,
          `  timeout: ${o.timeout ?? 5}`,
          `  retry_count: ${o.retryCount ?? 3}`,
          `  retry_delay: ${o.retryDelay ?? 0.05}`,
          `  retry_max_delay: ${o.retryMaxDelay ?? 1}`,
        ]),
    'logging:',
    `  level: ${JSON.stringify(o.logLevel ?? 'info')}`,
    'worker:',
    `  pool_size: ${o.poolSize ?? 10}`,
    ...(o.shutdownTimeout !== undefined ? [`  shutdown_timeout: ${o.shutdownTimeout}`] : []),
    // No admin server: tests side by side must not contend for its port.
    'http:',
    `  listen: ${JSON.stringify(o.httpListen ?? 'off')}`,
  ];
  return lines.join('\n') + '\n' + (o.extraYaml ?? '');
}

const testLogger = () => pino({ level: process.env.ADL_TEST_LOG ?? 'silent' });

/** `?` placeholders (outside quoted text) to PostgreSQL's `$1`, `$2`, … */
export function numberPlaceholders(sql: string): string {
  let n = 0;
  let quote: string | undefined;
  let out = '';
  for (const ch of sql) {
    if (quote) {
      if (ch === quote) quote = undefined;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
    } else if (ch === '?') {
      out += `$${++n}`;
      continue;
    }
    out += ch;
  }
  return out;
}

export async function postgresDriver(label: string): Promise<Driver> {
  return postgresDriverOn(await createTestDatabase(`cf_${label}`), 'trigger');
}

/**
 * "pg × log": PostgreSQL with log capture (listener.capture: log), on a private server
 * with wal_level = logical (the shared one runs with replica); the server is stopped
 * with the driver's drop().
 */
export async function postgresLogDriver(label: string): Promise<Driver> {
  const server = await startLogicalPostgres();
  const db = await createLogicalTestDatabase(server, `cf_${label}`);
  const driver = postgresDriverOn(db, 'log');
  return {
    ...driver,
    drop: async () => {
      await db.drop();
      await server.close();
    },
  };
}

function postgresDriverOn(db: TestDatabase, capture: 'trigger' | 'log'): Driver {
  // Dispatch state lives in the destinations' queues; the inbox holds changes not routed yet.
  const journal = 'app_db_listener.deliveries';
  const inbox = 'app_db_listener.events';
  const dead = 'app_db_listener.dead_letters';
  const rows = async <T>(sql: string, params: readonly unknown[] = []): Promise<T[]> =>
    (await db.pool.query(numberPlaceholders(sql), [...params])).rows as T[];
  const count = async (sql: string, params: readonly unknown[] = []) => Number((await rows<{ n: string }>(sql, params))[0]!.n);
  const driver: Driver = {
    name: 'postgres',
    eventSchema: 'public',
    types: { int: 'integer', bigint: 'bigint', decimal: 'numeric(10,2)', text: 'text', longText: 'text', bool: 'boolean', json: 'jsonb' },
    trueJson: 'true',
    seesNewColumnsAtOnce: true,
    defaultPollInterval: 0.5,
    quote: (name) => `"${name.replace(/"/g, '""')}"`,
    async exec(sql, params = []) {
      await db.pool.query(numberPlaceholders(sql), [...params]);
    },
    async transaction(statements, beforeCommit) {
      const c = await db.pool.connect();
      try {
        await c.query('BEGIN');
        for (const [sql, params] of statements) await c.query(numberPlaceholders(sql), [...params]);
        await beforeCommit?.(async (sql, params = []) => {
          await c.query(numberPlaceholders(sql), [...params]);
        });
        await c.query('COMMIT');
      } catch (err) {
        await c.query('ROLLBACK').catch(() => undefined);
        throw err;
      } finally {
        c.release();
      }
    },
    rows,
    journalCount: (table) =>
      count(`SELECT (SELECT count(*) FROM ${journal} WHERE table_name = ?) + (SELECT count(*) FROM ${inbox} WHERE table_name = ?) AS n`, [table, table]),
    claimedIds: async (table) =>
      (await rows<{ id: string }>(`SELECT id FROM ${journal} WHERE table_name = ? AND claimed_by IS NOT NULL`, [table])).map((r) => String(r.id)),
    async holdClaimedEvents(table) {
      const session = new pg.Client({ connectionString: db.url });
      session.on('error', () => undefined);
      await session.connect();
      await session.query('BEGIN');
      let released = false;
      return {
        async lockMore() {
          // FOR KEY SHARE: blocks the DELETE of a delivered event, not the claims' UPDATE.
          await session.query(`SELECT id FROM ${journal} WHERE table_name = $1 AND claimed_by IS NOT NULL FOR KEY SHARE`, [table]);
        },
        async release() {
          if (released) return;
          released = true;
          await session.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pg_backend_pid() = ANY (pg_blocking_pids(pid))');
          await session.query('ROLLBACK').catch(() => undefined);
          await session.end().catch(() => undefined);
        },
      };
    },
    failedWith: (table, prefix) =>
      count(`SELECT count(*) AS n FROM ${journal} WHERE table_name = ? AND starts_with(last_error, ?)`, [table, prefix]),
    deadLetterCount: (table) => count(`SELECT count(*) AS n FROM ${dead} WHERE table_name = ?`, [table]),
    async deadLetters(table) {
      const r = await rows<{ attempts: number; last_status: number | null }>(
        `SELECT attempts, last_status FROM ${dead} WHERE table_name = ? ORDER BY id`,
        [table],
      );
      return r.map((x) => ({ attempts: Number(x.attempts), lastStatus: x.last_status === null ? null : Number(x.last_status) }));
    },
    configYaml: (o) =>
      yaml(['type: "postgres"', `url: ${JSON.stringify(db.url)}`], o, driver.defaultPollInterval, capture === 'log' ? ['capture: "log"'] : []),
    config: (o) => parseConfig(driver.configYaml(o), {}, 'postgres conformance config').config,
    startDaemon: (o) => startDaemon(driver.config(o), { logger: testLogger() }),
    drop: () => db.drop(),
  };
  return driver;
}

export async function mysqlDriver(label: string): Promise<Driver> {
  return mysqlDriverOn(await createMySqlTestDatabase(`cf_${label}`), 'trigger', SHARED_MYSQL);
}

/**
 * "mysql × log": MariaDB with log capture (listener.capture: log), on a private server
 * with a binary log in ROW format (the shared one has none); the server is stopped with
 * the driver's drop().
 */
export async function mysqlLogDriver(label: string): Promise<Driver> {
  const server = await startBinlogMariaDb();
  const db = await createMySqlTestDatabase(`cf_${label}`, address(server));
  const driver = mysqlDriverOn(db, 'log', address(server));
  return {
    ...driver,
    drop: async () => {
      await db.drop().catch(() => undefined);
      await server.close();
    },
  };
}

function mysqlDriverOn(db: MySqlTestDatabase, capture: 'trigger' | 'log', server: MySqlServerAddress): Driver {
  // Dispatch state lives in the destinations' queues; the inbox holds changes not routed yet.
  const journal = '`app_db_listener_deliveries`';
  const inbox = '`app_db_listener_events`';
  const dead = '`app_db_listener_dead_letters`';
  const rows = async <T>(sql: string, params: readonly unknown[] = []): Promise<T[]> => db.query<T>(sql, [...params]);
  const count = async (sql: string, params: readonly unknown[] = []) => Number((await rows<{ n: string | number }>(sql, params))[0]!.n);
  const driver: Driver = {
    name: 'mysql',
    eventSchema: db.name,
    types: {
      int: 'INT',
      bigint: 'BIGINT',
      decimal: 'DECIMAL(10,2)',
      text: 'VARCHAR(200)',
      longText: 'LONGTEXT',
      bool: 'BOOLEAN',
      json: 'JSON',
    },
    trueJson: '1',
    // The binlog names each row's columns; the triggers are regenerated by the drift check.
    seesNewColumnsAtOnce: capture === 'log',
    defaultPollInterval: 0.2,
    quote: (name) => `\`${name.replace(/`/g, '``')}\``,
    async exec(sql, params = []) {
      await db.exec(sql, [...params]);
    },
    async transaction(statements, beforeCommit) {
      const c = await db.pool.getConnection();
      try {
        await c.query('START TRANSACTION');
        for (const [sql, params] of statements) await c.query(sql, [...params]);
        await beforeCommit?.(async (sql, params = []) => {
          await c.query(sql, [...params]);
        });
        await c.query('COMMIT');
      } catch (err) {
        await c.query('ROLLBACK').catch(() => undefined);
        throw err;
      } finally {
        c.release();
      }
    },
    rows,
    journalCount: (table) =>
      count(`SELECT (SELECT count(*) FROM ${journal} WHERE table_name = ?) + (SELECT count(*) FROM ${inbox} WHERE table_name = ?) AS n`, [table, table]),
    claimedIds: async (table) =>
      (await rows<{ id: string | number }>(`SELECT id FROM ${journal} WHERE table_name = ? AND claimed_by IS NOT NULL`, [table])).map((r) =>
        String(r.id),
      ),
    async holdClaimedEvents(table) {
      const session = await db.connect();
      session.on('error', () => undefined);
      // READ COMMITTED: lock the matching rows only, no gap locks that would hold up the triggers' inserts.
      await session.query('SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED');
      await session.query('START TRANSACTION');
      let released = false;
      return {
        async lockMore() {
          // A shared lock: blocks the DELETE of a delivered event; claims skip locked rows.
          await session.query(`SELECT id FROM ${journal} WHERE table_name = ? AND claimed_by IS NOT NULL LOCK IN SHARE MODE`, [table]);
        },
        async release() {
          if (released) return;
          released = true;
          // MariaDB's INNODB_LOCK_WAITS (MySQL 8 moved it to performance_schema.data_lock_waits).
          const [waiting] = await session.query<mysql.RowDataPacket[]>(
            `SELECT r.trx_mysql_thread_id AS thread FROM information_schema.INNODB_LOCK_WAITS w
             JOIN information_schema.INNODB_TRX r ON r.trx_id = w.requesting_trx_id
             JOIN information_schema.INNODB_TRX b ON b.trx_id = w.blocking_trx_id
             WHERE b.trx_mysql_thread_id = CONNECTION_ID()`,
          );
          for (const w of waiting) await session.query(`KILL ${Number(w.thread)}`).catch(() => undefined);
          await session.query('ROLLBACK').catch(() => undefined);
          await session.end().catch(() => undefined);
        },
      };
    },
    failedWith: (table, prefix) =>
      count(`SELECT count(*) AS n FROM ${journal} WHERE table_name = ? AND LEFT(last_error, CHAR_LENGTH(?)) = ?`, [table, prefix, prefix]),
    deadLetterCount: (table) => count(`SELECT count(*) AS n FROM ${dead} WHERE table_name = ?`, [table]),
    async deadLetters(table) {
      const r = await rows<{ attempts: number | string; last_status: number | string | null }>(
        `SELECT attempts, last_status FROM ${dead} WHERE table_name = ? ORDER BY id`,
        [table],
      );
      return r.map((x) => ({ attempts: Number(x.attempts), lastStatus: x.last_status === null ? null : Number(x.last_status) }));
    },
    configYaml: (o) =>
      yaml(
        [
          'type: "mysql"',
          `host: ${JSON.stringify(server.host)}`,
          `port: ${server.port}`,
          `user: ${JSON.stringify(server.user)}`,
          `password: ${JSON.stringify(server.password)}`,
          `database: ${JSON.stringify(db.name)}`,
        ],
        o,
        driver.defaultPollInterval,
        capture === 'log' ? ['capture: "log"'] : [],
      ),
    config: (o) => parseConfig(driver.configYaml(o), {}, 'mysql conformance config').config,
    startDaemon: (o) => startDaemon(driver.config(o), { logger: testLogger() }),
    drop: () => db.drop(),
  };
  return driver;
}
