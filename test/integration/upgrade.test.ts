/**
 * Upgrading an installation of the single-webhook version (PostgreSQL migrations
 * 000001-000003, MySQL 000001-000002) to destinations, with events waiting, a retry in
 * progress, an event claimed by a daemon that is gone, and a dead letter: nothing is
 * lost, order is kept, the retry keeps its attempts and error, and the dead letter
 * stays replayable under its event id.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { openAdmin } from '../../src/capture/admin.js';
import { applyInstall as applyMySqlInstall } from '../../src/capture/mysql/install.js';
import { applyInstall as applyPgInstall } from '../../src/capture/postgres/install.js';
import type { Config } from '../../src/config/types.js';
import { startDaemon, type RunningDaemon } from '../../src/app.js';
import { pino } from 'pino';
import { createMySqlTestDatabase, withConnection, type MySqlTestDatabase } from '../support/mysql.js';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';
import { testConfig } from '../support/daemon.js';
import { startReceiver, type Receiver } from '../support/receiver.js';

const logger = () => pino({ level: process.env.ADL_TEST_LOG ?? 'silent' });

/** What the old journal holds before the upgrade, whatever the database. */
async function checkUpgrade(o: {
  config: Config;
  rx: Receiver;
  /** Runs SQL (`?` placeholders) as the test. */
  exec: (sql: string, params?: unknown[]) => Promise<void>;
  rows: <T>(sql: string, params?: unknown[]) => Promise<T[]>;
  names: { events: string; deadLetters: string; deliveries: string };
  /** "now plus an hour" in the database's dialect. */
  inAnHour: string;
}): Promise<void> {
  const { exec, rows, names } = o;
  const ids = async () => (await rows<{ id: string | number }>(`SELECT id FROM ${names.events} ORDER BY id`)).map((r) => String(r.id));
  const [first, second, third, fourth] = await ids();
  // Row 2's event is retrying (attempt 2 failed, next in an hour); row 3's is claimed by a daemon that is gone.
  await exec(`UPDATE ${names.events} SET attempts = 2, run_at = ${o.inAnHour}, last_status = 503, last_error = 'HTTP 503' WHERE id = ?`, [second]);
  await exec(`UPDATE ${names.events} SET attempts = 1, claimed_by = 'gone:1:x', claimed_until = ${o.inAnHour} WHERE id = ?`, [third]);
  // An event that was refused earlier, now a dead letter.
  await exec(
    `INSERT INTO ${names.deadLetters} (id, op, schema_name, table_name, row_hash, new_row, old_row, txid, created_at, attempts, last_status, last_error, failed_at)
     SELECT id + 1000, op, schema_name, table_name, NULL, new_row, old_row, txid, created_at, 1, 410, 'HTTP 410', created_at FROM ${names.events} WHERE id = ?`,
    [fourth],
  );

  const daemon: RunningDaemon = await startDaemon(o.config, { logger: logger() });
  try {
    // The insert and the update of row 1 (in that order), row 3's claimed insert (claim dropped), row 4.
    await o.rx.waitFor((evs) => evs.filter((e) => e.response === 200).length >= 4, 20_000);
    const bodies = o.rx.events.map((e) => JSON.parse(e.body) as { id: string; operation: string; data: { id: number } });
    const row1 = bodies.filter((b) => b.data.id === 1).map((b) => b.operation);
    expect(row1).toEqual(['INSERT', 'UPDATE']);
    expect(bodies.map((b) => b.id)).toContain(`${bodies[0]!.id.replace(/_\d+$/, '')}_${first}`);
    expect(bodies.map((b) => b.data.id).sort()).toEqual([1, 1, 3, 4]);
    // The retry waits for its time, with its attempts and last error.
    const retrying = await rows<{ destination: string; attempts: number; last_error: string }>(
      `SELECT destination, attempts, last_error FROM ${names.deliveries} WHERE id = ?`,
      [second],
    );
    expect(retrying).toEqual([{ destination: 'default', attempts: 2, last_error: 'HTTP 503' }]);
    // The dead letter is the default destination's, and replays under its event id.
    const admin = await openAdmin(o.config);
    try {
      const dead = await admin.listDeadLetters({});
      expect(dead.map((d) => [d.destination, d.lastStatus])).toEqual([['default', 410]]);
      await admin.replayDeadLetters({ destination: 'default' });
      await o.rx.waitFor((evs) => evs.some((e) => e.headers['webhook-id'] === dead[0]!.eventId && e.response === 200), 20_000);
    } finally {
      await admin.close();
    }
    // The inbox keeps only changes; every event waiting in it before was moved.
    const left = await rows<{ id: string | number }>(`SELECT id FROM ${names.events}`);
    expect(left).toEqual([]);
  } finally {
    await daemon.stop(2_000);
  }
}

describe('upgrading to destinations', () => {
  let pgDb: TestDatabase | undefined;
  let myDb: MySqlTestDatabase | undefined;
  const receivers: Receiver[] = [];
  afterAll(async () => {
    await Promise.all(receivers.map((r) => r.close()));
    await pgDb?.drop();
    await myDb?.drop();
  });

  it('PostgreSQL: from migration 000003, with waiting events, a retry, a claim and a dead letter', async () => {
    pgDb = await createTestDatabase('upgrade');
    const rx = await startReceiver();
    receivers.push(rx);
    await pgDb.query(`CREATE TABLE up_t (id int PRIMARY KEY, v int NOT NULL)`);
    const config = testConfig({ dbUrl: pgDb.url, webhookUrl: rx.url, tables: ['up_t'] });
    const c = await pgDb.pool.connect();
    try {
      await applyPgInstall(c, config, 3);
    } finally {
      c.release();
    }
    for (const sql of [
      `INSERT INTO up_t VALUES (1, 0)`,
      `INSERT INTO up_t VALUES (2, 0)`,
      `INSERT INTO up_t VALUES (3, 0)`,
      `INSERT INTO up_t VALUES (4, 0)`,
      `UPDATE up_t SET v = 1 WHERE id = 1`,
    ]) {
      await pgDb.query(sql);
    }
    const db = pgDb;
    const numbered = (sql: string) => {
      let n = 0;
      return sql.replace(/\?/g, () => `$${++n}`);
    };
    await checkUpgrade({
      config,
      rx,
      exec: async (sql, params = []) => void (await db.query(numbered(sql), params)),
      rows: async <T>(sql: string, params: unknown[] = []) => (await db.query(numbered(sql), params)).rows as T[],
      names: { events: 'app_db_listener.events', deadLetters: 'app_db_listener.dead_letters', deliveries: 'app_db_listener.deliveries' },
      inAnHour: `now() + interval '1 hour'`,
    });
  });

  it('MySQL: from migration 000002, with waiting events, a retry, a claim and a dead letter', async () => {
    myDb = await createMySqlTestDatabase('upgrade');
    const rx = await startReceiver();
    receivers.push(rx);
    await myDb.exec(`CREATE TABLE up_t (id INT PRIMARY KEY, v INT NOT NULL)`);
    const config = myDb.config({ webhookUrl: rx.url, tables: ['up_t'] });
    await withConnection(myDb.pool, (c) => applyMySqlInstall(c, config, 2));
    for (const sql of [
      `INSERT INTO up_t VALUES (1, 0)`,
      `INSERT INTO up_t VALUES (2, 0)`,
      `INSERT INTO up_t VALUES (3, 0)`,
      `INSERT INTO up_t VALUES (4, 0)`,
      `UPDATE up_t SET v = 1 WHERE id = 1`,
    ]) {
      await myDb.exec(sql);
    }
    const db = myDb;
    await checkUpgrade({
      config,
      rx,
      exec: async (sql, params = []) => void (await db.exec(sql, params)),
      rows: <T>(sql: string, params: unknown[] = []) => db.query<T>(sql, params),
      names: { events: 'app_db_listener_events', deadLetters: 'app_db_listener_dead_letters', deliveries: 'app_db_listener_deliveries' },
      inAnHour: 'UTC_TIMESTAMP(6) + INTERVAL 1 HOUR',
    });
  });
});
