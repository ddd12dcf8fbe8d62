/**
 * Per-row order: events of one row arrive one at a time, in commit order, with
 * many concurrent writers, a wide delivery pool and two daemons on one database.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningDaemon } from '../../src/app.js';
import { startTestDaemon } from '../support/daemon.js';
import { tally } from '../support/order.js';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';
import { startReceiver, type Receiver } from '../support/receiver.js';

let db: TestDatabase;
let rx: Receiver;

beforeAll(async () => {
  db = await createTestDatabase('order');
  rx = await startReceiver();
});
afterAll(async () => {
  await rx?.close();
  await db?.drop();
});

/** `writers` clients each do `perWriter` single-row increments on random rows of `table`. */
async function concurrentIncrements(table: string, rows: number, writers: number, perWriter: number): Promise<void> {
  await Promise.all(
    Array.from({ length: writers }, async () => {
      for (let i = 0; i < perWriter; i++) {
        const id = 1 + Math.floor(Math.random() * rows);
        await db.query(`UPDATE ${table} SET seq = seq + 1 WHERE id = $1`, [id]);
      }
    }),
  );
}

async function expectedSequences(table: string): Promise<Map<string, number[]>> {
  const r = await db.query<{ id: number; seq: number }>(`SELECT id, seq FROM ${table}`);
  return new Map(r.rows.map((row) => [String(row.id), Array.from({ length: row.seq }, (_, i) => i + 1)]));
}

function pickRow(table: string) {
  return (b: Record<string, unknown>) => {
    if (b.table !== table || b.operation !== 'UPDATE') return undefined;
    const data = b.data as { id: number; seq: number };
    return { key: String(data.id), value: data.seq };
  };
}

async function runOrderScenario(table: string, instances: number): Promise<void> {
  await db.query(`CREATE TABLE ${table} (id int PRIMARY KEY, seq int NOT NULL DEFAULT 0)`);
  await db.query(`INSERT INTO ${table} SELECT g, 0 FROM generate_series(1, 20) g`);
  const daemons: RunningDaemon[] = [];
  for (let i = 0; i < instances; i++) {
    daemons.push(await startTestDaemon({ dbUrl: db.url, webhookUrl: rx.url, tables: [table], poolSize: 20 }));
  }
  try {
    await concurrentIncrements(table, 20, 8, 150);
    const expected = await expectedSequences(table);
    const total = [...expected.values()].reduce((n, v) => n + v.length, 0);
    expect(total).toBe(8 * 150);
    const pick = pickRow(table);
    await rx.waitFor((evs) => evs.filter((e) => pick(JSON.parse(e.body) as Record<string, unknown>)).length >= total, 60_000);
    const t = tally(rx.events, expected, pick);
    expect(t.lost).toEqual([]);
    expect(t.orderViolations).toEqual([]);
    expect(t.duplicates).toBe(0);
  } finally {
    await Promise.all(daemons.map((d) => d.stop(2_000)));
  }
}

describe('per-row ordering', () => {
  it('keeps commit order per row with pool_size 20 and 8 concurrent writers', async () => {
    await runOrderScenario('counters_one', 1);
  });

  it('keeps commit order per row across two instances on one database', async () => {
    await runOrderScenario('counters_two', 2);
  });
});
