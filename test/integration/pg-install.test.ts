/** Installing into PostgreSQL: migrations, triggers, concurrency and hostile names. */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyInstall, applyUninstall, planInstall } from '../../src/capture/postgres/install.js';
import { startTestDaemon, testConfig } from '../support/daemon.js';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';
import { startReceiver, type Receiver } from '../support/receiver.js';

let db: TestDatabase;
let rx: Receiver;

beforeAll(async () => {
  db = await createTestDatabase('install');
  rx = await startReceiver();
});
afterAll(async () => {
  await rx?.close();
  await db?.drop();
});

async function withClient<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  const c = await db.pool.connect();
  try {
    return await fn(c);
  } finally {
    c.release();
  }
}

describe('PostgreSQL install', () => {
  it('installs once even when several installers race, and plans nothing afterwards', async () => {
    await db.query(`CREATE TABLE accounts (id int PRIMARY KEY, name text)`);
    const config = testConfig({ dbUrl: db.url, webhookUrl: rx.url, tables: ['accounts'], schema: 'adl_race' });
    const results = await Promise.all(Array.from({ length: 4 }, () => withClient((c) => applyInstall(c, config))));
    // Exactly one installer did the work; the others found it done.
    expect(results.filter((p) => p.steps.length > 0)).toHaveLength(1);
    const again = await withClient((c) => planInstall(c, config));
    expect(again.steps).toEqual([]);
    const versions = await db.query(`SELECT version FROM adl_race.migrations ORDER BY 1`);
    expect(versions.rows.map((r) => r.version)).toEqual([1, 2]);
  });

  it('re-creates the trigger when the captured operations change', async () => {
    await db.query(`CREATE TABLE modes_t (id int PRIMARY KEY)`);
    const base = { dbUrl: db.url, webhookUrl: rx.url, tables: ['modes_t'], schema: 'adl_modes' };
    await withClient((c) => applyInstall(c, testConfig({ ...base, modes: 'insert' })));
    const plan = await withClient((c) => planInstall(c, testConfig({ ...base, modes: 'insert,delete' })));
    expect(plan.steps.map((s) => s.description)).toEqual(['capture trigger on public.modes_t (INSERT, DELETE)']);
  });

  it('quotes hostile table, column and schema names', async () => {
    await db.query(`CREATE SCHEMA "Weird ""Schema"""`);
    await db.query(`CREATE TABLE "Weird ""Schema"""."Order Items; DROP TABLE x" ("Key Col" int, "select" text, PRIMARY KEY ("Key Col"))`);
    const d = await startTestDaemon({
      dbUrl: db.url,
      webhookUrl: rx.url,
      tables: ['"Weird ""Schema"""."Order Items; DROP TABLE x"'],
      schema: 'adl_weird',
    });
    try {
      await db.query(`INSERT INTO "Weird ""Schema"""."Order Items; DROP TABLE x" VALUES (7, 'it''s')`);
      await rx.waitFor((evs) => evs.some((e) => e.body.includes('Order Items')), 10_000);
      const body = JSON.parse(rx.events.find((e) => e.body.includes('Order Items'))!.body);
      expect(body).toMatchObject({ schema: 'Weird "Schema"', table: 'Order Items; DROP TABLE x', data: { 'Key Col': 7, select: "it's" } });
    } finally {
      await d.stop(2_000);
    }
  });

  it('fails clearly for a table that does not exist, and --no-install fails when something is missing', async () => {
    const missing = testConfig({ dbUrl: db.url, webhookUrl: rx.url, tables: ['nope'], schema: 'adl_missing' });
    await expect(withClient((c) => applyInstall(c, missing))).rejects.toThrow(/table "nope" does not exist/);
    // Nothing was written: the schema was rolled back with the failed install.
    const schema = await db.query(`SELECT 1 FROM pg_namespace WHERE nspname = 'adl_missing'`);
    expect(schema.rowCount).toBe(0);
  });

  it('uninstalls the triggers (and the schema when asked)', async () => {
    await db.query(`CREATE TABLE gone (id int PRIMARY KEY)`);
    const config = testConfig({ dbUrl: db.url, webhookUrl: rx.url, tables: ['gone'], schema: 'adl_gone' });
    await withClient((c) => applyInstall(c, config));
    const steps = await withClient((c) => applyUninstall(c, config, true));
    expect(steps.map((s) => s.description)).toEqual(['remove capture trigger from public.gone', 'drop schema adl_gone (journal, dead letters)']);
    const triggers = await db.query(`SELECT 1 FROM pg_trigger WHERE tgname = 'adl_gone_capture'`);
    expect(triggers.rowCount).toBe(0);
    await db.query(`INSERT INTO gone VALUES (1)`); // the application's writes still work
  });
});
