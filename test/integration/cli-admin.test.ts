/** `status` and `dead-letters` from the built CLI, against the real PostgreSQL and a running daemon. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningDaemon } from '../../src/app.js';
import { configYaml, spawnCli, startTestDaemon, writeTempConfig } from '../support/daemon.js';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { waitUntil } from '../support/wait.js';

let db: TestDatabase;
let rx: Receiver;
let daemon: RunningDaemon;
let configPath: string;

async function cli(args: string[]) {
  const p = spawnCli([...args, '--config', configPath]);
  const exit = await p.closed;
  return { ...exit, stdout: p.stdout(), stderr: p.stderr() };
}

const deadCount = async () => Number((await db.query(`SELECT count(*) AS n FROM adl_admin.dead_letters`)).rows[0]!.n);

beforeAll(async () => {
  db = await createTestDatabase('cli_admin');
  rx = await startReceiver();
  await db.query(`CREATE TABLE accounts (id bigint PRIMARY KEY, balance bigint)`);
  await db.query(`CREATE TABLE notes (id int PRIMARY KEY, body text)`);
  const opts = { dbUrl: db.url, webhookUrl: rx.url, tables: ['accounts', 'notes'], schema: 'adl_admin' };
  configPath = writeTempConfig(configYaml(opts));
  daemon = await startTestDaemon(opts);
  // The receiver refuses everything (410): each change goes straight to dead letters.
  rx.setMode(410);
  await db.query(`INSERT INTO accounts VALUES (1, 9007199254740993), (2, 5)`);
  await db.query(`INSERT INTO notes VALUES (1, 'a'), (2, 'b'), (3, 'c')`);
  await waitUntil(async () => (await deadCount()) === 5, 10_000, 'five dead letters');
  rx.setMode('ok');
});
afterAll(async () => {
  await daemon?.stop(2_000);
  await rx?.close();
  await db?.drop();
});

describe('status and dead-letters commands', () => {
  it('status --json gives the per-table counts', async () => {
    const r = await cli(['status', '--json']);
    expect(r.code).toBe(0);
    const { tables } = JSON.parse(r.stdout) as { tables: Array<Record<string, unknown>> };
    expect(tables).toEqual([
      // Nothing delivered yet: every change went to dead letters.
      expect.objectContaining({ schema: 'public', table: 'accounts', pending: 0, retrying: 0, inFlight: 0, deadLetters: 2, lastDeliveryAt: null }),
      expect.objectContaining({ schema: 'public', table: 'notes', pending: 0, retrying: 0, inFlight: 0, deadLetters: 3, lastDeliveryAt: null }),
    ]);
    const human = await cli(['status']);
    expect(human.stdout).toMatch(/TABLE\s+OPERATIONS\s+PENDING/);
    expect(human.stdout).toMatch(/public\.notes\s+INSERT,UPDATE,DELETE\s+0\s+0\s+0\s+3/);
  });

  it('list and show tell what failed and why, with the rows exactly as captured', async () => {
    const list = await cli(['dead-letters', 'list', '--json', '--table', 'accounts']);
    expect(list.code).toBe(0);
    const { dead_letters } = JSON.parse(list.stdout) as { dead_letters: Array<{ eventId: string; lastStatus: number; attempts: number }> };
    expect(dead_letters).toHaveLength(2);
    expect(dead_letters[0]).toMatchObject({ lastStatus: 410, attempts: 1 });
    const show = await cli(['dead-letters', 'show', dead_letters[0]!.eventId, '--json']);
    expect(show.code).toBe(0);
    expect(show.stdout).toContain('"balance":9007199254740993');
    expect(JSON.parse(show.stdout)).toMatchObject({ eventId: dead_letters[0]!.eventId, table: 'accounts', op: 'INSERT' });
  });

  it('replay delivers a dead letter again under the same event id', async () => {
    const list = JSON.parse((await cli(['dead-letters', 'list', '--json', '--table', 'accounts'])).stdout) as {
      dead_letters: Array<{ eventId: string }>;
    };
    const eventId = list.dead_letters[0]!.eventId;
    const r = await cli(['dead-letters', 'replay', eventId]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Replayed 1 dead letter');
    await rx.waitFor((evs) => evs.some((e) => e.headers['webhook-id'] === eventId && e.response === 200), 10_000);
    expect(await deadCount()).toBe(4);

    const byTable = await cli(['dead-letters', 'replay', '--table', 'notes']);
    expect(byTable.stdout).toContain('Replayed 3 dead letters');
    await waitUntil(async () => (await deadCount()) === 1, 10_000, 'notes replayed');
    await waitUntil(async () => Number((await db.query(`SELECT count(*) AS n FROM adl_admin.deliveries`)).rows[0]!.n) === 0, 10_000, 'delivered');
  });

  it('status shows when each table last had an event delivered', async () => {
    type Row = { table: string; lastDeliveryAt: string | null };
    const watched = async () =>
      (JSON.parse((await cli(['status', '--json'])).stdout) as { tables: Row[] }).tables.filter((x) => x.table === 'accounts' || x.table === 'notes');
    // Written apart from the outcomes, a moment after them.
    await waitUntil(async () => (await watched()).every((t) => t.lastDeliveryAt !== null), 15_000, 'a last delivery time for both tables');
    const tables = await watched();
    expect(tables).toHaveLength(2);
    for (const t of tables) {
      // Their replayed dead letters were delivered a moment ago.
      expect(t.lastDeliveryAt, t.table).not.toBeNull();
      expect(Math.abs(Date.now() - Date.parse(t.lastDeliveryAt!)), t.table).toBeLessThan(120_000);
    }
    expect((await cli(['status'])).stdout).toMatch(/LAST DELIVERY[\s\S]*\d+s ago/);
  });

  it('purge removes dead letters; replay or purge without a selection is a usage error', async () => {
    const none = await cli(['dead-letters', 'replay']);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('say which dead letters');
    const bad = await cli(['dead-letters', 'show', 'not-an-id']);
    expect(bad.code).toBe(2);
    const purge = await cli(['dead-letters', 'purge', '--all']);
    expect(purge.code).toBe(0);
    expect(purge.stdout).toContain('Purged 1 dead letter');
    expect(await deadCount()).toBe(0);
    expect((await cli(['dead-letters', 'list'])).stdout).toContain('No dead letters.');
  });
});
