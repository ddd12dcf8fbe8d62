/**
 * A throw-away MySQL/MariaDB database per test file, on the machine's real server,
 * so files run in parallel without seeing each other's journal. Also builds
 * configs with database.type "mysql" for it.
 */
import { randomBytes } from 'node:crypto';
import mysql from 'mysql2/promise';
import { createMySqlPool } from '../../src/capture/mysql/connection.js';
import { parseConfig } from '../../src/config/index.js';
import type { Config } from '../../src/config/types.js';

export const MYSQL_HOST = process.env.MYSQL_HOST_TEST ?? '127.0.0.1';
export const MYSQL_PORT = Number(process.env.MYSQL_PORT_TEST ?? 3306);
export const MYSQL_USER = process.env.MYSQL_USER_TEST ?? 'root';
export const MYSQL_PASSWORD = process.env.MYSQL_PASSWORD_TEST ?? '';

/** Where a MySQL/MariaDB server listens: the shared one by default, or a private one (private-servers.ts). */
export interface MySqlServerAddress {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
}

export const SHARED_MYSQL: MySqlServerAddress = { host: MYSQL_HOST, port: MYSQL_PORT, user: MYSQL_USER, password: MYSQL_PASSWORD };

export interface MySqlConfigOptions {
  readonly tables: readonly string[];
  /** listener.capture (default trigger). */
  readonly capture?: 'trigger' | 'log';
  readonly schema?: string;
  readonly modes?: string;
  readonly user?: string;
  readonly password?: string;
  readonly retention?: number;
  readonly webhookUrl?: string;
  readonly poolSize?: number;
}

export interface MySqlTestDatabase {
  readonly name: string;
  /** The pool as the daemon would build it (createMySqlPool), on this database. */
  readonly pool: mysql.Pool;
  /** Runs one statement on the pool; returns rows for a SELECT. */
  query<T = mysql.RowDataPacket>(sql: string, values?: unknown[]): Promise<T[]>;
  /** Runs a statement; returns the affected row count. */
  exec(sql: string, values?: unknown[]): Promise<number>;
  /** One connection of its own (the caller ends it): a writer with session settings. */
  connect(options?: mysql.ConnectionOptions): Promise<mysql.Connection>;
  /** A parsed config with database.type "mysql" for this database. */
  config(o: MySqlConfigOptions): Config;
  drop(): Promise<void>;
}

/** A table name as the config writes it: in double quotes, inner ones doubled, so any name is taken as is. */
export function configTableName(name: string, database?: string): string {
  const q = (s: string) => `"${s.replace(/"/g, '""')}"`;
  return database === undefined ? q(name) : `${q(database)}.${q(name)}`;
}

export function mysqlConfig(database: string, o: MySqlConfigOptions, server: MySqlServerAddress = SHARED_MYSQL): Config {
  return parseConfig(mysqlConfigYaml(database, o, server), {}, 'mysql test config').config;
}

/** The config file's text for `database` (see mysqlConfig). */
export function mysqlConfigYaml(database: string, o: MySqlConfigOptions, server: MySqlServerAddress = SHARED_MYSQL): string {
  const lines = [
    'database:',
    '  type: "mysql"',
    `  host: ${JSON.stringify(server.host)}`,
    `  port: ${server.port}`,
    `  user: ${JSON.stringify(o.user ?? server.user)}`,
    `  password: ${JSON.stringify(o.password ?? server.password)}`,
    `  database: ${JSON.stringify(database)}`,
    '  tables:',
    ...o.tables.map((t) => `    - ${JSON.stringify(t)}`),
    'listener:',
    `  modes: ${JSON.stringify(o.modes ?? 'insert,update,delete')}`,
    '  poll_interval: 0.2',
    ...(o.capture ? [`  capture: ${JSON.stringify(o.capture)}`] : []),
    ...(o.schema ? [`  schema: ${JSON.stringify(o.schema)}`] : []),
    ...(o.retention !== undefined ? [`  retention: ${o.retention}`] : []),
    'webhook:',
    `  url: ${JSON.stringify(o.webhookUrl ?? 'http://127.0.0.1:9/hook')}`,
    '  timeout: 5',
    '  retry_delay: 0.05',
    '  retry_max_delay: 1',
    'worker:',
    `  pool_size: ${o.poolSize ?? 10}`,
    // No admin server: tests side by side must not contend for its port.
    'http:',
    '  listen: "off"',
  ];
  return lines.join('\n') + '\n';
}

function adminConnection(server: MySqlServerAddress): Promise<mysql.Connection> {
  return mysql.createConnection({ host: server.host, port: server.port, user: server.user, password: server.password, charset: 'utf8mb4' });
}

export async function createMySqlTestDatabase(label: string, server: MySqlServerAddress = SHARED_MYSQL): Promise<MySqlTestDatabase> {
  const name = `adl_${label.replace(/[^a-z0-9]/gi, '_').toLowerCase()}_${randomBytes(4).toString('hex')}`;
  const admin = await adminConnection(server);
  try {
    await admin.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci`);
  } finally {
    await admin.end();
  }
  const base = mysqlConfig(name, { tables: ['placeholder'] }, server);
  const pool = createMySqlPool(base.database, { connectionLimit: 20 });
  return {
    name,
    pool,
    async query<T>(sql: string, values: unknown[] = []) {
      const [rows] = await pool.query(sql, values);
      return rows as T[];
    },
    async exec(sql, values = []) {
      const [r] = await pool.query<mysql.ResultSetHeader>(sql, values);
      return r.affectedRows;
    },
    connect: (options = {}) =>
      mysql.createConnection({
        host: server.host,
        port: server.port,
        user: server.user,
        password: server.password,
        database: name,
        charset: 'utf8mb4',
        supportBigNumbers: true,
        bigNumberStrings: true,
        dateStrings: true,
        ...options,
      }),
    config: (o) => mysqlConfig(name, o, server),
    async drop() {
      await pool.end().catch(() => undefined);
      const a = await adminConnection(server);
      try {
        await a.query(`DROP DATABASE IF EXISTS \`${name}\``);
      } finally {
        await a.end();
      }
    },
  };
}

/** Runs `fn` with a connection of the pool, released after. */
export async function withConnection<T>(pool: mysql.Pool, fn: (c: mysql.PoolConnection) => Promise<T>): Promise<T> {
  const c = await pool.getConnection();
  try {
    return await fn(c);
  } finally {
    c.release();
  }
}
