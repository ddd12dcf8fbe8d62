/**
 * A private PostgreSQL set up for log capture (wal_level = logical), shared by the
 * log capture tests and the conformance suite's "pg × log" source: the shared server
 * runs with wal_level = replica and must not be reconfigured.
 *
 *   const server = await startLogicalPostgres();
 *   const db = await createLogicalTestDatabase(server, 'label');   // a throw-away database on it
 *   db.url, db.query(...), db.drop()
 *   await server.close();
 *
 * Replication slots belong to the server, not to a database: `drop()` removes the
 * slots of its database first (a slot left behind keeps WAL forever).
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { TestDatabase } from './pg.js';
import { startPrivatePostgres, type PrivatePostgres } from './private-servers.js';

export const LOGICAL_SETTINGS = {
  wal_level: 'logical',
  max_replication_slots: '20',
  max_wal_senders: '20',
  // Small and fast: tests write little; a short checkpoint distance keeps the directory small.
  max_wal_size: '256MB',
  fsync: 'off',
  synchronous_commit: 'off',
  full_page_writes: 'off',
  wal_sender_timeout: '60s',
} as const;

export async function startLogicalPostgres(extra: Readonly<Record<string, string>> = {}): Promise<PrivatePostgres> {
  return startPrivatePostgres({ serverConfig: { ...LOGICAL_SETTINGS, ...extra } });
}

/** The connection URL of `database` on `server`. */
export function databaseUrl(server: PrivatePostgres, database: string): string {
  return `postgres://${server.user}:${encodeURIComponent(server.password)}@${server.host}:${server.port}/${database}`;
}

export async function createLogicalTestDatabase(server: PrivatePostgres, label: string): Promise<TestDatabase> {
  const name = `adl_${label.replace(/[^a-z0-9]/gi, '_').toLowerCase()}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: databaseUrl(server, 'postgres') });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  const url = databaseUrl(server, name);
  const pool = new pg.Pool({ connectionString: url, max: 20 });
  pool.on('error', () => undefined);
  return {
    name,
    url,
    pool,
    query: (sql, values) => pool.query(sql, values),
    async drop() {
      await pool.end().catch(() => undefined);
      if (!server.running) return;
      const a = new pg.Client({ connectionString: databaseUrl(server, 'postgres') });
      await a.connect();
      try {
        // A terminated WAL sender lets go of its slot a moment later; a slot still held
        // (or left) makes DROP DATABASE fail, so wait for each to be free, with a deadline.
        const deadline = Date.now() + 15_000;
        for (;;) {
          await a.query(`SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = $1 AND active_pid IS NOT NULL`, [name]);
          await a.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1 AND NOT active`, [name]).catch(() => undefined);
          const left = await a.query(`SELECT 1 FROM pg_replication_slots WHERE database = $1`, [name]);
          if (left.rowCount === 0) break;
          if (Date.now() > deadline) throw new Error(`replication slots of ${name} still held after 15 s`);
          await new Promise((r) => setTimeout(r, 50));
        }
        await a.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      } finally {
        await a.end();
      }
    },
  };
}
