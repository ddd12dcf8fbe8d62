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

export interface MySqlConfigOptions {
  readonly tables: readonly string[];
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

export function mysqlConfig(database: string, o: MySqlConfigOptions): Config {
  const lines = [
    'database:',
    '  type: "mysql"',
    `  host: ${JSON.stringify(MYSQL_HOST)}`,
    `  port: ${MYSQL_PORT}`,
    `  user: ${JSON.stringify(o.user ?? MYSQL_USER)}`,
    `  password: ${JSON.stringify(o.password ?? MYSQL_PASSWORD)}`,
    `  database: ${JSON.stringify(database)}`,
    '  tables:',
    ...o.tables.map((t) => `    - ${JSON.stringify(t)}`),
    'listener:',
    `  modes: ${JSON.stringify(o.modes ?? 'insert,update,delete')}`,
    '  poll_interval: 0.2',
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
  return parseConfig(lines.join('\n') + '\n', {}, 'mysql test config').config;
}

function adminConnection(): Promise<mysql.Connection> {
  return mysql.createConnection({ host: MYSQL_HOST, port: MYSQL_PORT, user: MYSQL_USER, password: MYSQL_PASSWORD, charset: 'utf8mb4' });
}

export async function createMySqlTestDatabase(label: string): Promise<MySqlTestDatabase> {
  const name = `adl_${label.replace(/[^a-z0-9]/gi, '_').toLowerCase()}_${randomBytes(4).toString('hex')}`;
  const admin = await adminConnection();
  try {
    await admin.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci`);
  } finally {
    await admin.end();
  }
  const base = mysqlConfig(name, { tables: ['placeholder'] });
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
        host: MYSQL_HOST,
        port: MYSQL_PORT,
        user: MYSQL_USER,
        password: MYSQL_PASSWORD,
        database: name,
        charset: 'utf8mb4',
        supportBigNumbers: true,
        bigNumberStrings: true,
        dateStrings: true,
        ...options,
      }),
    config: (o) => mysqlConfig(name, o),
    async drop() {
      await pool.end().catch(() => undefined);
      const a = await adminConnection();
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
