/**
 * The journal conformance suite's harnesses (journal-suite.ts): each installs
 * capture on its real database and reads its driver's tables back in the suite's
 * terms.
 */
import type pg from 'pg';
import { applyInstall as applyPgInstall } from '../../src/capture/postgres/install.js';
import { PgJournal } from '../../src/capture/postgres/journal.js';
import { makeQueries as makePgQueries } from '../../src/capture/postgres/queries.js';
import { applyInstall as applyMySqlInstall } from '../../src/capture/mysql/install.js';
import { MySqlJournal } from '../../src/capture/mysql/journal.js';
import { makeQueries as makeMySqlQueries } from '../../src/capture/mysql/queries.js';
import { testConfig } from '../support/daemon.js';
import { createMySqlTestDatabase, withConnection } from '../support/mysql.js';
import { createTestDatabase } from '../support/pg.js';
import { testQueue } from '../support/queue.js';
import type { DeadRow, JournalHarness, QueuedRow } from './journal-suite.js';

const TABLE_COLUMNS = '(id INT PRIMARY KEY, v INT NOT NULL)';
const LEASE_MS = 60_000;

interface StoredQueued {
  id: string;
  attempts: number | string;
  last_status: number | null;
  last_error: string | null;
  claimed_by: string | null;
  due_later: boolean | number | string;
}
interface StoredDead {
  id: string;
  op: string;
  table_name: string;
  attempts: number | string;
  last_status: number | null;
  last_error: string;
  new_row: string;
}

const queuedRow = (r: StoredQueued): QueuedRow => ({
  id: String(r.id),
  attempts: Number(r.attempts),
  lastStatus: r.last_status === null ? null : Number(r.last_status),
  lastError: r.last_error,
  claimedBy: r.claimed_by,
  dueLater: r.due_later === true || Number(r.due_later) === 1,
});
const deadRow = (r: StoredDead): DeadRow => ({
  id: String(r.id),
  op: r.op,
  table: r.table_name,
  attempts: Number(r.attempts),
  lastStatus: r.last_status === null ? null : Number(r.last_status),
  lastError: r.last_error,
  newRow: JSON.parse(r.new_row) as unknown,
});

export async function postgresJournalHarness(): Promise<JournalHarness> {
  const db = await createTestDatabase('journal_conformance');
  let installs = 0;
  return {
    async install(tables) {
      const schema = `adl_jc${++installs}`;
      for (const t of tables) await db.query(`CREATE TABLE ${t} ${TABLE_COLUMNS}`);
      const c = await db.pool.connect();
      try {
        await applyPgInstall(c, testConfig({ dbUrl: db.url, webhookUrl: 'http://127.0.0.1:9/h', tables: [...tables], schema }));
      } finally {
        c.release();
      }
      return {
        exec: async (sql) => void (await db.query(sql)),
        queue(names, o = {}) {
          const refs = names.map((name) => ({ schema: 'public', name }));
          const j = new PgJournal(db.pool as unknown as pg.Pool, makePgQueries(schema), {
            instanceId: o.instanceId ?? 'test:1:a',
            leaseMs: o.leaseMs ?? LEASE_MS,
            keepDelivered: false,
            eventIdPrefix: 'evt_t_',
            tables: refs,
            clientConfig: { connectionString: db.url },
          });
          return testQueue(j, refs, o.destinations);
        },
        async queued(destination = 'default') {
          const r = await db.query<StoredQueued>(
            `SELECT id::text AS id, attempts, last_status, last_error, claimed_by, coalesce(run_at > now(), false) AS due_later
             FROM ${schema}.deliveries WHERE destination = $1 ORDER BY id`,
            [destination],
          );
          return r.rows.map(queuedRow);
        },
        async deadLetters(destination = 'default') {
          const r = await db.query<StoredDead>(
            `SELECT id::text AS id, op, table_name, attempts, last_status, last_error, new_row::text AS new_row
             FROM ${schema}.dead_letters WHERE destination = $1 ORDER BY id`,
            [destination],
          );
          return r.rows.map(deadRow);
        },
        async inbox() {
          return (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${schema}.events`)).rows[0]!.n;
        },
        async expireLeases() {
          await db.query(`UPDATE ${schema}.deliveries SET claimed_until = now() - interval '1 second' WHERE claimed_by IS NOT NULL`);
        },
      };
    },
    drop: () => db.drop(),
  };
}

export async function mysqlJournalHarness(): Promise<JournalHarness> {
  const db = await createMySqlTestDatabase('journal_conformance');
  let installs = 0;
  return {
    async install(tables) {
      const prefix = `adl_jc${++installs}`;
      for (const t of tables) await db.exec(`CREATE TABLE ${t} ${TABLE_COLUMNS}`);
      await withConnection(db.pool, (c) => applyMySqlInstall(c, db.config({ tables, schema: prefix })));
      return {
        exec: async (sql) => void (await db.exec(sql)),
        queue(names, o = {}) {
          const refs = names.map((name) => ({ schema: db.name, name }));
          const j = new MySqlJournal(db.pool, makeMySqlQueries(prefix), {
            instanceId: o.instanceId ?? 'test:1:a',
            leaseMs: o.leaseMs ?? LEASE_MS,
            keepDelivered: false,
            eventIdPrefix: 'evt_t_',
            tables: refs,
            lockScope: `${db.name}:${prefix}`,
          });
          return testQueue(j, refs, o.destinations);
        },
        async queued(destination = 'default') {
          const rows = await db.query<StoredQueued>(
            `SELECT CAST(id AS CHAR) AS id, attempts, last_status, last_error, claimed_by,
                    COALESCE(run_at > UTC_TIMESTAMP(6), 0) AS due_later
             FROM ${prefix}_deliveries WHERE destination = ? ORDER BY id`,
            [destination],
          );
          return rows.map(queuedRow);
        },
        async deadLetters(destination = 'default') {
          const rows = await db.query<StoredDead>(
            `SELECT CAST(id AS CHAR) AS id, op, table_name, attempts, last_status, last_error, new_row
             FROM ${prefix}_dead_letters WHERE destination = ? ORDER BY id`,
            [destination],
          );
          return rows.map(deadRow);
        },
        async inbox() {
          return Number((await db.query<{ n: string }>(`SELECT COUNT(*) AS n FROM ${prefix}_events`))[0]!.n);
        },
        async expireLeases() {
          await db.exec(`UPDATE ${prefix}_deliveries SET claimed_until = UTC_TIMESTAMP(6) - INTERVAL 1 SECOND WHERE claimed_by IS NOT NULL`);
        },
      };
    },
    drop: () => db.drop(),
  };
}
