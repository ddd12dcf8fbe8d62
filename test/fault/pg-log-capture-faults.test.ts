/**
 * Log capture under faults, on a private PostgreSQL with wal_level = logical: the
 * daemon killed with -9 mid-stream, the walsender terminated, the database
 * restarted, columns added, renamed and dropped under continuous writes, and two
 * instances (one reads the slot, the other takes over when it dies). Every test
 * counts what was committed and checks that each row change reached the receiver,
 * and that each has exactly one event id (the journal takes every source transaction
 * exactly once; deliveries of one event may repeat, at least once).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RunningDaemon } from '../../src/app.js';
import { spawnDaemon, startTestDaemon, type ConfigOptions, type DaemonProcess } from '../support/daemon.js';
import { createLogicalTestDatabase, startLogicalPostgres } from '../support/logical-postgres.js';
import type { TestDatabase } from '../support/pg.js';
import type { PrivatePostgres } from '../support/private-servers.js';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { waitUntil } from '../support/wait.js';

let server: PrivatePostgres;
let db: TestDatabase;
let rx: Receiver;
const running: RunningDaemon[] = [];
const children: DaemonProcess[] = [];

beforeAll(async () => {
  server = await startLogicalPostgres();
  db = await createLogicalTestDatabase(server, 'logfaults');
  rx = await startReceiver();
}, 120_000);
afterEach(async () => {
  await Promise.all(running.splice(0).map((d) => d.stop(2_000)));
  for (const c of children.splice(0)) {
    if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
    await c.exited;
  }
  rx.events.length = 0;
});
afterAll(async () => {
  await rx?.close();
  await db?.drop();
  await server?.close();
});

const options = (o: Partial<ConfigOptions> & { tables: string[] }): ConfigOptions => ({
  dbUrl: db.url,
  webhookUrl: rx.url,
  capture: 'log',
  schema: `adl_${o.tables[0]}`,
  ...o,
});

async function daemon(o: Partial<ConfigOptions> & { tables: string[] }) {
  const d = await startTestDaemon(options(o));
  running.push(d);
  return d;
}

function child(o: Partial<ConfigOptions> & { tables: string[] }) {
  const c = spawnDaemon(options(o));
  children.push(c);
  return c;
}

interface Body {
  id: string;
  operation: string;
  table: string;
  data: Record<string, unknown>;
}
const received = (table: string): Body[] => rx.events.map((e) => JSON.parse(e.body) as Body).filter((b) => b.table === table);

/** Row id -> the distinct event ids it was delivered under. */
function eventIdsByRow(table: string): Map<number, Set<string>> {
  const out = new Map<number, Set<string>>();
  for (const b of received(table)) {
    const id = Number(b.data.id);
    let ids = out.get(id);
    if (!ids) out.set(id, (ids = new Set()));
    ids.add(b.id);
  }
  return out;
}

/** Every row 1..n arrived, each under exactly one event id. */
async function expectEachRowOnce(table: string, n: number, timeoutMs = 60_000) {
  await waitUntil(() => eventIdsByRow(table).size >= n, timeoutMs, () => `${n} rows of ${table} delivered (have ${eventIdsByRow(table).size})`);
  const byRow = eventIdsByRow(table);
  expect([...byRow.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
  const repeated = [...byRow.entries()].filter(([, ids]) => ids.size !== 1);
  expect(repeated).toEqual([]);
}

const slotPid = async (schema: string) =>
  (await db.query<{ pid: number | null }>(`SELECT active_pid AS pid FROM pg_replication_slots WHERE slot_name LIKE $1`, [`${schema}\\_%`])).rows[0]?.pid ?? null;

describe('log capture faults', () => {
  it('kill -9 of the daemon mid-stream: a restart resumes from the journaled position, nothing lost, no event twice', async () => {
    await db.query(`CREATE TABLE k9 (id int PRIMARY KEY, pad text)`);
    const first = child({ tables: ['k9'], poolSize: 2 });
    await first.ready();
    await waitUntil(async () => (await slotPid('adl_k9')) !== null, 20_000, 'slot read');
    // 40 transactions of 100 rows, written while the daemon is killed.
    const writing = (async () => {
      for (let t = 0; t < 40; t++) {
        await db.query(`INSERT INTO k9 SELECT g, repeat('x', 200) FROM generate_series($1::int, $2::int) g`, [t * 100 + 1, t * 100 + 100]);
      }
    })();
    await rx.waitFor(150, 30_000);
    first.child.kill('SIGKILL');
    await first.exited;
    await writing;
    const second = child({ tables: ['k9'] });
    await second.ready();
    await expectEachRowOnce('k9', 4000);
  }, 120_000);

  it('transactions the slot sends again (its position behind the journal) are skipped: nothing journaled twice', async () => {
    await db.query(`CREATE TABLE again (id int PRIMARY KEY)`);
    const first = await daemon({ tables: ['again'] });
    await waitUntil(async () => (await slotPid('adl_again')) !== null, 20_000, 'slot read');
    const slot = (await db.query<{ slot_name: string }>(`SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE 'adl\\_again\\_%'`)).rows[0]!.slot_name;
    // A copy of the slot at its current position, before the changes.
    await db.query(`SELECT pg_copy_logical_replication_slot($1, $2)`, [slot, `${slot}_copy`]);
    for (let t = 0; t < 10; t++) await db.query(`INSERT INTO again SELECT g FROM generate_series($1::int, $2::int) g`, [t * 10 + 1, t * 10 + 10]);
    await expectEachRowOnce('again', 100);
    await first.stop(2_000);
    running.splice(running.indexOf(first), 1);
    // Put the slot back where the copy is: the server will send those ten transactions again.
    await db.query(`SELECT pg_drop_replication_slot($1)`, [slot]);
    await db.query(`SELECT pg_copy_logical_replication_slot($1, $2)`, [`${slot}_copy`, slot]);
    await db.query(`SELECT pg_drop_replication_slot($1)`, [`${slot}_copy`]);
    const journaled = async () => Number((await db.query<{ n: string }>(`SELECT last_value AS n FROM adl_again.events_id_seq`)).rows[0]!.n);
    const idsBefore = await journaled();
    await daemon({ tables: ['again'] });
    await db.query(`INSERT INTO again VALUES (101)`);
    await expectEachRowOnce('again', 101);
    // One journal id more than before: the change of row 101, none of the ten sent again.
    expect(await journaled()).toBe(idsBefore + 1);
  }, 60_000);

  it('a terminated walsender and a database restart: the reader reconnects and resumes', async () => {
    await db.query(`CREATE TABLE cut (id int PRIMARY KEY)`);
    await daemon({ tables: ['cut'] });
    await waitUntil(async () => (await slotPid('adl_cut')) !== null, 20_000, 'slot read');
    let next = 1;
    const write = async (n: number) => {
      for (let i = 0; i < n; i++, next++) await db.query(`INSERT INTO cut VALUES ($1)`, [next]);
    };
    await write(100);
    const writing = write(200);
    await db.query(`SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name LIKE 'adl\\_cut\\_%' AND active_pid IS NOT NULL`);
    await writing;
    await waitUntil(async () => (await slotPid('adl_cut')) !== null, 30_000, 'slot read again after the walsender was terminated');
    await rx.waitFor(() => eventIdsByRow('cut').size >= 300, 30_000);
    await server.restart();
    await write(100);
    await expectEachRowOnce('cut', 400);
  }, 120_000);

  it('the walsender terminated again and again, also while a large transaction is being journaled: each row once', async () => {
    await db.query(`CREATE TABLE cuts (id int PRIMARY KEY)`);
    await daemon({ tables: ['cuts'] });
    const terminate = async () => {
      await waitUntil(async () => (await slotPid('adl_cuts')) !== null, 30_000, 'slot read');
      await db.query(`SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name LIKE 'adl\\_cuts\\_%' AND active_pid IS NOT NULL`);
    };
    // Ten batches of 500 in one journal transaction: the walsender is cut while they are written.
    await db.query(`INSERT INTO cuts SELECT generate_series(1, 5000)`);
    await terminate();
    for (let round = 0; round < 3; round++) {
      const from = 5000 + round * 100;
      for (let i = 1; i <= 100; i++) await db.query(`INSERT INTO cuts VALUES ($1)`, [from + i]);
      await terminate();
    }
    await expectEachRowOnce('cuts', 5300, 120_000);
  }, 180_000);

  it('ADD, RENAME and DROP COLUMN under continuous writes: no write fails, each change has the columns it had at commit', async () => {
    await db.query(`CREATE TABLE ddl (id serial PRIMARY KEY, a int NOT NULL DEFAULT 1)`);
    await daemon({ tables: ['ddl'] });
    let stop = false;
    const errors: unknown[] = [];
    const writer = async () => {
      while (!stop) await db.query(`INSERT INTO ddl DEFAULT VALUES`).catch((err: unknown) => errors.push(err));
    };
    const writers = [writer(), writer()];
    const count = async () => Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM ddl`)).rows[0]!.n);
    const after = async (n: number) => waitUntil(async () => (await count()) >= n, 20_000, `${n} rows written`);
    await after(100);
    await db.query(`ALTER TABLE ddl ADD COLUMN c int DEFAULT 7`);
    await after(200);
    await db.query(`ALTER TABLE ddl RENAME COLUMN c TO d`);
    await after(300);
    await db.query(`ALTER TABLE ddl DROP COLUMN a`);
    await after(400);
    stop = true;
    await Promise.all(writers);
    expect(errors).toEqual([]);
    const total = await count();
    await waitUntil(() => new Set(received('ddl').map((b) => b.data.id)).size >= total, 60_000, `${total} rows delivered`);
    const shapes = ['id,a', 'id,a,c', 'id,a,d', 'id,d'];
    // In journal order the shape only moves forward, and every shape is seen.
    const ordered = received('ddl').sort((x, y) => Number(x.data.id) - Number(y.data.id));
    const seen = ordered.map((b) => shapes.indexOf(Object.keys(b.data).join(',')));
    expect(seen.filter((s) => s < 0)).toEqual([]);
    expect(new Set(seen)).toEqual(new Set([0, 1, 2, 3]));
    for (let i = 1; i < seen.length; i++) expect(seen[i]!).toBeGreaterThanOrEqual(seen[i - 1]!);
    for (const b of ordered) if ('d' in b.data || 'c' in b.data) expect(b.data.d ?? b.data.c).toBe(7);
  }, 120_000);

  it('two instances: one reads the slot, both deliver, and the other takes over when the reader is killed', async () => {
    await db.query(`CREATE TABLE two (id int PRIMARY KEY)`);
    const a = child({ tables: ['two'] });
    await a.ready();
    await waitUntil(async () => (await slotPid('adl_two')) !== null, 20_000, 'slot read by the first instance');
    const firstPid = await slotPid('adl_two');
    const b = child({ tables: ['two'] });
    await b.ready();
    await db.query(`INSERT INTO two SELECT generate_series(1, 200)`);
    await rx.waitFor(() => eventIdsByRow('two').size >= 200, 30_000);
    // Still one reader; the other waits on an ordinary connection, not a WAL sender.
    expect(await slotPid('adl_two')).toBe(firstPid);
    await waitUntil(
      async () => (await db.query(`SELECT 1 FROM pg_stat_activity WHERE application_name = 'app-db-listener:capture-standby' AND backend_type = 'client backend'`)).rowCount === 1,
      10_000,
      'the second instance watching for the lease',
    );
    const senders = await db.query(`SELECT 1 FROM pg_stat_replication WHERE application_name = 'app-db-listener:capture'`);
    expect(senders.rowCount).toBe(1);
    a.child.kill('SIGKILL');
    await a.exited;
    await db.query(`INSERT INTO two SELECT generate_series(201, 400)`);
    await waitUntil(async () => {
      const pid = await slotPid('adl_two');
      return pid !== null && pid !== firstPid;
    }, 30_000, 'the second instance reads the slot');
    await expectEachRowOnce('two', 400);
  }, 120_000);
});
