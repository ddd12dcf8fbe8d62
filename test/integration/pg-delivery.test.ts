/**
 * Capture and delivery against the real PostgreSQL and a real HTTP receiver:
 * what arrives, exactly, and in which order.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Webhook } from 'standardwebhooks';
import type { RunningDaemon } from '../../src/app.js';
import { startTestDaemon } from '../support/daemon.js';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { waitUntil } from '../support/wait.js';

let db: TestDatabase;
let rx: Receiver;
const running: RunningDaemon[] = [];

beforeAll(async () => {
  db = await createTestDatabase('delivery');
  rx = await startReceiver();
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((d) => d.stop(2_000)));
  rx.events.length = 0;
  rx.setMode('ok');
});
afterAll(async () => {
  await rx?.close();
  await db?.drop();
});

async function daemon(tables: string[], extra: Partial<Parameters<typeof startTestDaemon>[0]> = {}) {
  const d = await startTestDaemon({ dbUrl: db.url, webhookUrl: rx.url, tables, ...extra });
  running.push(d);
  return d;
}

function bodies(table: string) {
  return rx.events.map((e) => ({ raw: e.body, json: JSON.parse(e.body) as Record<string, unknown>, headers: e.headers })).filter((b) => b.json.table === table);
}

describe('PostgreSQL capture and delivery', () => {
  it('delivers every type exactly, in the original body shape, signed', async () => {
    await db.query(`CREATE TABLE types (
      id bigint PRIMARY KEY, big bigint, price numeric(10,2), label text, at timestamptz,
      doc jsonb, bin bytea, tags int[], nothing text)`);
    const secret = 'whsec_' + Buffer.from('a test secret of enough length').toString('base64');
    await daemon(['types'], { secret });
    await db.query(
      `INSERT INTO types VALUES (1, 9007199254740993, 12.50, $1, '2026-11-26 17:58:54.117181+00',
        '{"a": {"b": [1, 2.50, "x"]}}', '\\xdeadbeef', '{1,2,3}', NULL)`,
      ['Zoé <>&" 😀'],
    );
    await db.query(`UPDATE types SET price = 13.00 WHERE id = 1`);
    await db.query(`DELETE FROM types WHERE id = 1`);
    await rx.waitFor((evs) => evs.length >= 3, 10_000);

    const [ins, upd, del] = bodies('types');
    expect(ins!.raw).toContain('"big":9007199254740993');
    expect(ins!.raw).toContain('"price":12.50');
    expect(ins!.json).toMatchObject({
      operation: 'INSERT',
      schema: 'public',
      table: 'types',
      old_data: null,
      data: {
        id: 1,
        label: 'Zoé <>&" 😀',
        at: '2026-11-26T17:58:54.117181+00:00',
        doc: { a: { b: [1, 2.5, 'x'] } },
        bin: '\\xdeadbeef',
        tags: [1, 2, 3],
        nothing: null,
      },
    });
    expect(Object.keys(ins!.json)).toEqual(['id', 'operation', 'schema', 'table', 'timestamp', 'data', 'old_data']);
    expect(ins!.json.timestamp).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/);
    expect(ins!.json.id).toMatch(/^evt_[0-9a-f]{12}_\d+$/);
    expect(ins!.headers['webhook-id']).toBe(ins!.json.id);
    expect(ins!.headers['content-type']).toBe('application/json');
    expect(ins!.headers['user-agent']).toMatch(/^app-db-listener\/\d+\.\d+\.\d+/);
    // Standard Webhooks verification with the reference library.
    const wh = new Webhook(secret);
    for (const b of [ins!, upd!, del!]) {
      expect(() =>
        wh.verify(b.raw, {
          'webhook-id': String(b.headers['webhook-id']),
          'webhook-timestamp': String(b.headers['webhook-timestamp']),
          'webhook-signature': String(b.headers['webhook-signature']),
        }),
      ).not.toThrow();
    }

    expect(upd!.json).toMatchObject({ operation: 'UPDATE', data: { id: 1 }, old_data: { id: 1 } });
    expect(upd!.raw).toContain('"price":13.00');
    expect(upd!.raw).toContain('"old_data":{"id":1,"big":9007199254740993,"price":12.50');
    // DELETE carries the old row in data, as the original did.
    expect(del!.json).toMatchObject({ operation: 'DELETE', old_data: null, data: { id: 1, label: 'Zoé <>&" 😀' } });
    // Delivered events leave the journal.
    await waitUntil(async () => (await db.query('SELECT (SELECT count(*)::int FROM app_db_listener.events) + (SELECT count(*)::int FROM app_db_listener.deliveries) AS n')).rows[0]!.n === 0, 5_000, 'empty journal');
  });

  it('captures a 1 MB row without failing the writer', async () => {
    await db.query(`CREATE TABLE big (id int PRIMARY KEY, payload text)`);
    await daemon(['big']);
    const payload = 'x'.repeat(1024 * 1024);
    await db.query(`INSERT INTO big VALUES (1, $1)`, [payload]);
    await rx.waitFor((evs) => evs.some((e) => e.body.includes('"table":"big"')), 10_000);
    const got = bodies('big')[0]!;
    expect((got.json.data as { payload: string }).payload.length).toBe(payload.length);
  });

  it('gives two events for two identical updates in one transaction', async () => {
    await db.query(`CREATE TABLE twice (id int PRIMARY KEY, v int)`);
    await db.query(`INSERT INTO twice VALUES (1, 0)`);
    await daemon(['twice'], { modes: 'update' });
    const c = await db.pool.connect();
    try {
      await c.query('BEGIN');
      await c.query('UPDATE twice SET v = 5 WHERE id = 1');
      await c.query('UPDATE twice SET v = 5 WHERE id = 1');
      await c.query('COMMIT');
    } finally {
      c.release();
    }
    await rx.waitFor((evs) => evs.filter((e) => e.body.includes('"table":"twice"')).length >= 2, 10_000);
    const got = bodies('twice');
    expect(got).toHaveLength(2);
    expect(got[0]!.json.id).not.toBe(got[1]!.json.id);
  });

  it('captures only the configured operations', async () => {
    await db.query(`CREATE TABLE only_ins (id int PRIMARY KEY, v int)`);
    await daemon(['only_ins'], { modes: 'insert' });
    await db.query(`INSERT INTO only_ins VALUES (1, 1)`);
    await db.query(`UPDATE only_ins SET v = 2`);
    await db.query(`INSERT INTO only_ins VALUES (2, 1)`);
    await rx.waitFor((evs) => evs.filter((e) => e.body.includes('"table":"only_ins"')).length >= 2, 10_000);
    await waitUntil(async () => (await db.query('SELECT (SELECT count(*)::int FROM app_db_listener.events) + (SELECT count(*)::int FROM app_db_listener.deliveries) AS n')).rows[0]!.n === 0, 5_000, 'empty journal');
    expect(bodies('only_ins').map((b) => b.json.operation)).toEqual(['INSERT', 'INSERT']);
  });

  it('keeps delivered events for listener.retention, then removes them', async () => {
    await db.query(`CREATE TABLE kept (id int PRIMARY KEY)`);
    await daemon(['kept'], { schema: 'adl_kept', retention: 2 });
    await db.query(`INSERT INTO kept VALUES (1)`);
    await rx.waitFor((evs) => evs.some((e) => e.body.includes('"table":"kept"')), 10_000);
    const kept = async () => Number((await db.query(`SELECT count(*) AS n FROM adl_kept.delivered_events WHERE table_name = 'kept'`)).rows[0]!.n);
    await waitUntil(async () => (await kept()) === 1, 5_000, 'the delivered event kept');
    expect((await db.query(`SELECT count(*)::int AS n FROM adl_kept.events`)).rows[0]!.n).toBe(0);
    // Past the retention, the sweep removes it.
    await waitUntil(async () => (await kept()) === 0, 15_000, 'the delivered event removed after its retention');
  });
});
