/**
 * MySQL mode end to end: the daemon on the real MariaDB and a real receiver. What
 * arrives, exactly, in which order, and that nothing is lost across instances.
 */
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type RunningDaemon } from '../../src/app.js';
import { createMySqlTestDatabase, type MySqlConfigOptions, type MySqlTestDatabase } from '../support/mysql.js';
import { tally } from '../support/order.js';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { waitUntil } from '../support/wait.js';

let db: MySqlTestDatabase;
let rx: Receiver;
const running: RunningDaemon[] = [];

beforeAll(async () => {
  db = await createMySqlTestDatabase('delivery');
  rx = await startReceiver();
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((d) => d.stop(2_000)));
  rx.events.length = 0;
});
afterAll(async () => {
  await rx?.close();
  await db?.drop();
});

async function daemon(o: MySqlConfigOptions) {
  const d = await startDaemon(db.config({ webhookUrl: rx.url, ...o }), { logger: pino({ level: process.env.ADL_TEST_LOG ?? 'silent' }) });
  running.push(d);
  return d;
}

const forTable = (t: string) => rx.events.filter((e) => e.body.includes(`"table":"${t}"`));

describe('MySQL mode, end to end', () => {
  it('delivers INSERT, UPDATE and DELETE with exact values, in the original body shape', async () => {
    await db.exec(`CREATE TABLE items (id BIGINT UNSIGNED PRIMARY KEY, price DECIMAL(10,2), label VARCHAR(50), doc JSON, at DATETIME(6))`);
    await daemon({ tables: ['items'] });
    await db.exec(`INSERT INTO items VALUES (18446744073709551615, 12.50, 'Zoé 😀 <>&"', '{"a": [1, 2.50]}', '2026-11-26 18:00:33.268907')`);
    await db.exec(`UPDATE items SET price = 13.00 WHERE id = 18446744073709551615`);
    await db.exec(`DELETE FROM items WHERE id = 18446744073709551615`);
    await rx.waitFor((evs) => evs.filter((e) => e.body.includes('"table":"items"')).length >= 3, 15_000);
    const [ins, upd, del] = forTable('items').map((e) => ({ raw: e.body, json: JSON.parse(e.body) as Record<string, unknown> }));
    expect(ins!.raw).toContain('"id": 18446744073709551615');
    expect(ins!.raw).toContain('"price": 12.50');
    expect(ins!.json).toMatchObject({ operation: 'INSERT', schema: db.name, table: 'items', old_data: null });
    expect(ins!.json.data).toMatchObject({ label: 'Zoé 😀 <>&"', doc: { a: [1, 2.5] }, at: '2026-11-26 18:00:33.268907' });
    expect(ins!.json.timestamp).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/);
    expect(upd!.json).toMatchObject({ operation: 'UPDATE' });
    expect(upd!.raw).toContain('"price": 13.00');
    expect(upd!.raw).toMatch(/"old_data":\{[^}]*"price": 12\.50/);
    expect(del!.json).toMatchObject({ operation: 'DELETE', old_data: null });
    expect(del!.raw).toContain('"price": 13.00');
    await waitUntil(
      async () => (await db.query<{ n: number }>(`SELECT (SELECT count(*) FROM app_db_listener_events) + (SELECT count(*) FROM app_db_listener_deliveries) AS n`))[0]!.n == 0,
      5_000,
      'empty journal',
    );
  });

  it('keeps per-row commit order with concurrent writers and two instances', async () => {
    await db.exec(`CREATE TABLE counters (id INT PRIMARY KEY, seq INT NOT NULL DEFAULT 0)`);
    await db.exec(`INSERT INTO counters (id) VALUES ${Array.from({ length: 20 }, (_, i) => `(${i + 1})`).join(',')}`);
    await daemon({ tables: ['counters'], poolSize: 20 });
    await daemon({ tables: ['counters'], poolSize: 20 });
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        for (let i = 0; i < 100; i++) {
          await db.exec(`UPDATE counters SET seq = seq + 1 WHERE id = ?`, [1 + Math.floor(Math.random() * 20)]);
        }
      }),
    );
    const rows = await db.query<{ id: number; seq: number }>(`SELECT id, seq FROM counters`);
    const expected = new Map(rows.map((r) => [String(r.id), Array.from({ length: Number(r.seq) }, (_, i) => i + 1)]));
    const pick = (b: Record<string, unknown>) => {
      if (b.table !== 'counters' || b.operation !== 'UPDATE') return undefined;
      const d = b.data as { id: number; seq: number };
      return { key: String(d.id), value: d.seq };
    };
    await rx.waitFor((evs) => evs.filter((e) => e.body.includes('"table":"counters"')).length >= 800, 60_000);
    const t = tally(rx.events, expected, pick);
    expect(t.lost).toEqual([]);
    expect(t.orderViolations).toEqual([]);
    expect(t.duplicates).toBe(0);
  });
});
