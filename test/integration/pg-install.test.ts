/** Installing into PostgreSQL: migrations, triggers, concurrency and hostile names. */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyInstall, applyUninstall, planInstall } from '../../src/capture/postgres/install.js';
import { loadMigrations } from '../../src/schema/migrations.js';
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
    expect(versions.rows.map((r) => r.version)).toEqual(loadMigrations('postgres').map((m) => m.version));
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

  it('the capture function resolves nothing through the writer\'s search_path (it runs as its owner)', async () => {
    await db.query(`CREATE TABLE sp_items (id int PRIMARY KEY, name text)`);
    await withClient((c) => applyInstall(c, testConfig({ dbUrl: db.url, webhookUrl: rx.url, tables: ['sp_items'], schema: 'adl_sp' })));
    // Look-alikes of every function and operator the capture function uses, each
    // recording that it ran, ahead of pg_catalog in the writer's path.
    await db.query(`CREATE SCHEMA evil`);
    await db.query(`CREATE TABLE evil.calls (what text)`);
    const record = (what: string) => `INSERT INTO evil.calls VALUES ('${what}')`;
    await db.query(`
      CREATE FUNCTION evil.row_to_json(record) RETURNS json LANGUAGE plpgsql AS $$ BEGIN ${record('row_to_json')}; RETURN '{"id":666}'; END $$;
      CREATE FUNCTION evil.txid_current() RETURNS bigint LANGUAGE plpgsql AS $$ BEGIN ${record('txid_current')}; RETURN 1; END $$;
      CREATE FUNCTION evil.hashtextextended(text, bigint) RETURNS bigint LANGUAGE plpgsql AS $$ BEGIN ${record('hashtextextended')}; RETURN 1; END $$;
      CREATE FUNCTION evil.pg_try_advisory_xact_lock_shared(bigint) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN ${record('lock')}; RETURN true; END $$;
      CREATE FUNCTION evil.cat(text, text) RETURNS text LANGUAGE plpgsql AS $$ BEGIN ${record('||')}; RETURN 'x'; END $$;
      CREATE OPERATOR evil.|| (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.cat);
      CREATE FUNCTION evil.field(json, text) RETURNS text LANGUAGE plpgsql AS $$ BEGIN ${record('->>')}; RETURN 'x'; END $$;
      CREATE OPERATOR evil.->> (LEFTARG = json, RIGHTARG = text, FUNCTION = evil.field);
      CREATE FUNCTION evil.ne(text, text) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN ${record('<>')}; RETURN false; END $$;
      CREATE OPERATOR evil.<> (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.ne);
      CREATE FUNCTION evil.eq(integer, integer) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN ${record('=')}; RETURN false; END $$;
      CREATE OPERATOR evil.= (LEFTARG = integer, RIGHTARG = integer, FUNCTION = evil.eq);`);
    const writer = new pg.Client({ connectionString: db.url });
    await writer.connect();
    try {
      // A session of its own: the function is compiled under this path.
      await writer.query(`SET search_path = evil, pg_catalog, public`);
      // The look-alikes are live in this session…
      expect((await writer.query(`SELECT 'a' || 'b' AS v`)).rows[0].v).toBe('x');
      await writer.query(`DELETE FROM evil.calls`);
      // …and the trigger uses none of them.
      await writer.query(`INSERT INTO public.sp_items VALUES (1, 'one')`);
      await writer.query(`UPDATE public.sp_items SET name = 'uno' WHERE id OPERATOR(pg_catalog.=) 1`);
    } finally {
      await writer.end();
    }
    expect((await db.query(`SELECT what FROM evil.calls`)).rows).toEqual([]);
    const events = await db.query(`SELECT op, new_row::text AS new_row, old_row::text AS old_row, row_hash::text AS row_hash FROM adl_sp.events ORDER BY id`);
    const hash = (await db.query(`SELECT hashtextextended('public.sp_items:1', 0)::text AS h`)).rows[0]!.h;
    expect(events.rows).toEqual([
      { op: 'INSERT', new_row: '{"id":1,"name":"one"}', old_row: null, row_hash: hash },
      { op: 'UPDATE', new_row: '{"id":1,"name":"uno"}', old_row: '{"id":1,"name":"one"}', row_hash: hash },
    ]);
    await db.query(`DROP SCHEMA evil CASCADE`);
    await withClient((c) => applyUninstall(c, testConfig({ dbUrl: db.url, webhookUrl: rx.url, tables: ['sp_items'], schema: 'adl_sp' }), true));
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
