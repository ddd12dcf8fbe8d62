/**
 * The benchmark's two databases behind one interface: a fresh database with a
 * plain table and an identical watched one, the writers' ceiling (pgbench,
 * mariadb-slap), a backlog, single timed inserts and the journal's size.
 */
import mysql from 'mysql2/promise';
import pg from 'pg';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { cliPath, now, run } from './lib.js';

export type Family = 'postgres' | 'mysql';

export interface BenchDatabase {
  readonly family: Family;
  /** The CLI that installed this database's schema, and so the one whose daemon runs on it. */
  readonly cli: string;
  /** Server version, as the server reports it. */
  readonly version: string;
  /** The `database:` section of a config watching `items`. */
  configSections(): string;
  /** listener.poll_interval the scenarios use unless they say otherwise, seconds. */
  readonly pollInterval: number;
  /** Single-row INSERT transactions per second from `clients` writers into `table` over `seconds`. */
  insertRate(table: 'plain' | 'items', clients: number, seconds: number): Promise<number>;
  /** `n` committed changes to `items`, written in large transactions (the trigger runs per row). */
  backlog(n: number): Promise<void>;
  /**
   * `n` committed changes to `items` as transactions of `perTransaction` rows, each one
   * INSERT … SELECT over a series (as an application's bulk job writes them).
   */
  backlogTransactions(n: number, perTransaction: number): Promise<void>;
  /** One INSERT into `items`; its id and the time its commit returned. */
  insertOne(): Promise<{ id: number; committedAt: number }>;
  /** Inserts the hot row (id HOT_ROW_ID, amount 0) for `updateHotRow`. */
  insertHotRow(): Promise<void>;
  /** `n` single-row UPDATE transactions of the hot row, one after another (amount + 1 each). */
  updateHotRow(n: number): Promise<void>;
  /** Events in the journal not yet delivered. */
  pending(): Promise<number>;
  /** Empties both tables and the journal. */
  reset(): Promise<void>;
  /** Empties the journal only: the rows stay, as rows a table held before the daemon (a backfill's). */
  clearJournal(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Which database to create and which build of the CLI installs it: the default is
 * this checkout's; `--baseline DIR` opens a second one for an earlier release's build.
 */
export interface OpenOptions {
  readonly name?: string;
  readonly cli?: string;
}

const DEFAULT_DB = 'adl_bench';
/** The id of the row one scenario updates thousands of times (far above the ids the others get). */
export const HOT_ROW_ID = 1_000_000_000_000;
const ROW = `('user', 12.50)`;

/** Installs the schema and triggers through the built CLI, as an operator would. */
async function install(sections: string, cli: string): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'adl-bench-install-'));
  const file = path.join(dir, 'config.yaml');
  writeFileSync(file, `${sections}webhook:\n  url: "http://127.0.0.1:9/unused"\n`);
  await run(process.execPath, [cli, 'install', '--config', file]);
}

export async function openPostgres({ name = DEFAULT_DB, cli = cliPath }: OpenOptions = {}): Promise<BenchDatabase> {
  const admin = new pg.Client({ host: '127.0.0.1', user: 'postgres', database: 'postgres' });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${name}`);
  const version = (await admin.query<{ v: string }>('SELECT version() AS v')).rows[0]!.v.split(' on ')[0]!;
  await admin.end();
  const pool = new pg.Pool({ host: '127.0.0.1', user: 'postgres', database: name, max: 8 });
  for (const t of ['plain', 'items']) {
    await pool.query(`CREATE TABLE ${t} (id bigserial PRIMARY KEY, name text, amount numeric(12,2), created timestamptz DEFAULT now())`);
  }
  const sections = `database:\n  url: "postgres://postgres@127.0.0.1:5432/${name}"\n  table: "items"\n`;
  await install(sections, cli);
  // Releases before destinations have no queue table: the inbox is the queue.
  const queued = (await pool.query<{ t: string | null }>(`SELECT to_regclass('app_db_listener.deliveries')::text AS t`)).rows[0]!.t !== null;
  const scripts = mkdtempSync(path.join(tmpdir(), 'adl-bench-pgbench-'));

  return {
    family: 'postgres',
    cli,
    version,
    configSections: () => sections,
    pollInterval: 1,
    async insertRate(table, clients, seconds) {
      const script = path.join(scripts, `${table}.sql`);
      writeFileSync(script, `INSERT INTO ${table} (name, amount) VALUES ${ROW};\n`);
      await pool.query('CHECKPOINT');
      const out = await run('pgbench', [
        '-h', '127.0.0.1', '-U', 'postgres', '-n', '-M', 'prepared',
        '-c', String(clients), '-j', '2', '-T', String(seconds), '-f', script, name,
      ]);
      return Number(/tps = ([\d.]+)/.exec(out)?.[1] ?? NaN);
    },
    async backlog(n) {
      for (let done = 0; done < n; done += 100_000) {
        await pool.query(`INSERT INTO items (name, amount) SELECT 'backlog', 12.50 FROM generate_series(1, $1::int)`, [Math.min(100_000, n - done)]);
      }
    },
    async backlogTransactions(n, perTransaction) {
      for (let done = 0; done < n; done += perTransaction) {
        await pool.query(`INSERT INTO items (name, amount) SELECT 'backlog', 12.50 FROM generate_series(1, $1::int)`, [Math.min(perTransaction, n - done)]);
      }
    },
    async insertOne() {
      const r = await pool.query<{ id: string }>(`INSERT INTO items (name, amount) VALUES ${ROW} RETURNING id`);
      return { id: Number(r.rows[0]!.id), committedAt: now() };
    },
    async insertHotRow() {
      await pool.query(`INSERT INTO items (id, name, amount) VALUES (${HOT_ROW_ID}, 'hot', 0)`);
    },
    async updateHotRow(n) {
      const c = await pool.connect();
      try {
        for (let i = 0; i < n; i++) await c.query({ name: 'hot', text: `UPDATE items SET amount = amount + 1 WHERE id = ${HOT_ROW_ID}` });
      } finally {
        c.release();
      }
    },
    async pending() {
      const sql = queued
        ? 'SELECT ((SELECT count(*) FROM app_db_listener.events) + (SELECT count(*) FROM app_db_listener.deliveries))::int AS n'
        : 'SELECT count(*)::int AS n FROM app_db_listener.events';
      return (await pool.query<{ n: number }>(sql)).rows[0]!.n;
    },
    async reset() {
      await pool.query(`TRUNCATE plain, items, app_db_listener.events${queued ? ', app_db_listener.deliveries' : ''}`);
      await pool.query('VACUUM ANALYZE app_db_listener.events');
      if (queued) await pool.query('VACUUM ANALYZE app_db_listener.deliveries');
    },
    async clearJournal() {
      await pool.query(`TRUNCATE app_db_listener.events${queued ? ', app_db_listener.deliveries' : ''}`);
      await pool.query('VACUUM ANALYZE items, app_db_listener.events');
    },
    async close() {
      await pool.end();
    },
  };
}

export async function openMySql({ name = DEFAULT_DB, cli = cliPath }: OpenOptions = {}): Promise<BenchDatabase> {
  const admin = await mysql.createConnection({ host: '127.0.0.1', user: 'root', password: '' });
  await admin.query(`DROP DATABASE IF EXISTS ${name}`);
  await admin.query(`CREATE DATABASE ${name}`);
  const [rows] = await admin.query<mysql.RowDataPacket[]>('SELECT VERSION() AS v');
  const version = String(rows[0]!.v);
  await admin.end();
  const pool = mysql.createPool({ host: '127.0.0.1', user: 'root', password: '', database: name, connectionLimit: 8 });
  for (const t of ['plain', 'items']) {
    await pool.query(`CREATE TABLE ${t} (id BIGINT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(50), amount DECIMAL(12,2), created TIMESTAMP(6) DEFAULT CURRENT_TIMESTAMP(6))`);
  }
  const sections =
    `database:\n  type: "mysql"\n  host: "127.0.0.1"\n  port: 3306\n  user: "root"\n  password: ""\n  database: "${name}"\n  table: "items"\n` +
    '';
  await install(sections, cli);
  const [tables] = await pool.query<mysql.RowDataPacket[]>(
    `SELECT 1 FROM information_schema.tables WHERE table_schema = ? AND table_name = 'app_db_listener_deliveries'`,
    [name],
  );
  const queued = tables.length > 0;

  return {
    family: 'mysql',
    cli,
    version,
    configSections: () => sections,
    pollInterval: 0.1,
    async insertRate(table, clients, seconds) {
      // mariadb-slap runs a number of queries rather than a time: size it from a short probe.
      const probe = await slap(table, clients, clients * 200);
      const queries = Math.max(clients * 100, Math.round((probe.queries / probe.seconds) * seconds));
      const r = await slap(table, clients, queries);
      return r.queries / r.seconds;
    },
    async backlog(n) {
      for (let done = 0; done < n; done += 2_000) {
        const k = Math.min(2_000, n - done);
        await pool.query(`INSERT INTO items (name, amount) VALUES ${Array.from({ length: k }, () => ROW).join(',')}`);
      }
    },
    async backlogTransactions(n, perTransaction) {
      for (let done = 0; done < n; done += perTransaction) {
        const k = Math.min(perTransaction, n - done);
        // MariaDB's sequence engine; MySQL 8 has none, so a recursive CTE there.
        await pool.query(
          `INSERT INTO items (name, amount) WITH RECURSIVE s (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ?) SELECT 'backlog', 12.50 FROM s`,
          [k],
        );
      }
    },
    async insertOne() {
      const [r] = await pool.query<mysql.ResultSetHeader>(`INSERT INTO items (name, amount) VALUES ${ROW}`);
      return { id: r.insertId, committedAt: now() };
    },
    async insertHotRow() {
      await pool.query(`INSERT INTO items (id, name, amount) VALUES (${HOT_ROW_ID}, 'hot', 0)`);
    },
    async updateHotRow(n) {
      const c = await pool.getConnection();
      try {
        for (let i = 0; i < n; i++) await c.execute(`UPDATE items SET amount = amount + 1 WHERE id = ${HOT_ROW_ID}`);
      } finally {
        c.release();
      }
    },
    async pending() {
      const [r] = await pool.query<mysql.RowDataPacket[]>(
        queued
          ? 'SELECT (SELECT count(*) FROM app_db_listener_events) + (SELECT count(*) FROM app_db_listener_deliveries) AS n'
          : 'SELECT count(*) AS n FROM app_db_listener_events',
      );
      return Number(r[0]!.n);
    },
    async reset() {
      await pool.query('TRUNCATE plain');
      await pool.query('TRUNCATE items');
      await pool.query('TRUNCATE app_db_listener_events');
      if (queued) await pool.query('TRUNCATE app_db_listener_deliveries');
    },
    async clearJournal() {
      await pool.query('TRUNCATE app_db_listener_events');
      if (queued) await pool.query('TRUNCATE app_db_listener_deliveries');
      await pool.query('ANALYZE TABLE items');
    },
    async close() {
      await pool.end();
    },
  };

  async function slap(table: string, clients: number, queries: number): Promise<{ queries: number; seconds: number }> {
    const out = await run('mariadb-slap', [
      '-h', '127.0.0.1', '-uroot', `--create-schema=${name}`, `--concurrency=${clients}`, '--iterations=1',
      `--number-of-queries=${queries}`, `--query=INSERT INTO ${table} (name, amount) VALUES ${ROW}`,
    ]);
    return { queries, seconds: Number(/Average number of seconds to run all queries: ([\d.]+)/.exec(out)?.[1] ?? NaN) };
  }
}
