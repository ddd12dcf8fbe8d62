/**
 * Several instances on one journal, each a separate process of the built CLI
 * (`npm run build` first), against PostgreSQL and MariaDB.
 *
 * What was committed comes from the watched table itself: every change bumps a
 * per-row counter `seq` in the writer's own statement (an INSERT commits seq 0,
 * each UPDATE the next number), so a row with seq N committed exactly the events
 * carrying 0..N (1..N for rows that existed before the triggers), in that order.
 * Each instance posts to its own `?instance=` URL, so the receiver knows who
 * delivered what.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { batchPlan } from '../../src/dispatch/batching.js';
import { spawnCli, writeTempConfig, type DaemonProcess } from '../support/daemon.js';
import { tally } from '../support/order.js';
import { startReceiver, type ReceivedRequest, type Receiver } from '../support/receiver.js';
import { waitUntil } from '../support/wait.js';
import { mysqlDriver, postgresDriver, type Driver } from '../conformance/drivers.js';

const POOL_SIZE = 5;
/** Rows every writer keeps updating: their events queue up behind each other. */
const HOT_ROWS = 4;
/** Ids of rows inserted under load start here. */
const FIRST_COLD_ID = 1_000;
/**
 * webhook.timeout (s) of the kill scenario: the lease is this plus 15 s (src/app.ts),
 * so a dead instance's claims free up after 17 s. Not lower: a request that times out
 * after the receiver got it is sent again, a duplicate this scenario would not expect.
 */
const KILL_TIMEOUT_S = 2;

const eventIdOf = (body: string): string => /^\{"id":"([^"]+)"/.exec(body)?.[1] ?? '';
/** The journal id of an event id `evt_<installation>_<n>`. */
const journalIdOf = (eventId: string): string => /_(\d+)$/.exec(eventId)?.[1] ?? eventId;
const instanceOf = (e: ReceivedRequest): string => new URL(e.url, 'http://receiver').searchParams.get('instance') ?? '';

interface Load {
  /** Resolves when every writer is done; rejects with the first write error. */
  readonly done: Promise<void>;
  /** Changes attempted so far. */
  readonly written: () => number;
}

/**
 * `writers` concurrent writers, `ops` statements each, one autocommit statement per
 * change, each changing exactly one row: insert a new (cold) row, update a hot row,
 * or update a cold row whose insert has committed.
 */
function writeLoad(driver: Driver, table: string, writers: number, ops: number): Load {
  const t = driver.quote(table);
  let nextId = FIRST_COLD_ID;
  const cold: number[] = [];
  let written = 0;
  const writer = async () => {
    for (let i = 0; i < ops; i++) {
      const r = Math.random();
      if (r < 0.4 || (r >= 0.8 && cold.length === 0)) {
        const id = nextId++;
        await driver.exec(`INSERT INTO ${t} (id) VALUES (?)`, [id]);
        cold.push(id);
      } else {
        const id = r < 0.8 ? 1 + Math.floor(Math.random() * HOT_ROWS) : cold[Math.floor(Math.random() * cold.length)];
        await driver.exec(`UPDATE ${t} SET seq = seq + 1 WHERE id = ?`, [id]);
      }
      written++;
    }
  };
  return { done: Promise.all(Array.from({ length: writers }, writer)).then(() => undefined), written: () => written };
}

/** One scenario's receiver and daemons; `close` stops what is still running. */
interface Scenario {
  readonly rx: Receiver;
  /** One instance of the built CLI, posting to `?instance=<name>`, admin server off. */
  instance(name: string, timeout?: number): DaemonProcess;
  forTable(): ReceivedRequest[];
  distinctIds(): Set<string>;
  close(): Promise<void>;
}

// Every scenario has its own table, receiver and daemons.
describe.each([
  ['postgres', postgresDriver],
  ['mysql', mysqlDriver],
] as const)('several instances on one journal: %s', (label, makeDriver) => {
  let driver: Driver;
  beforeAll(async () => {
    driver = await makeDriver(`multi_${label}`);
  });
  afterAll(async () => {
    await driver?.drop();
  });

  const q = (name: string) => driver.quote(name);

  async function scenario(table: string): Promise<Scenario> {
    const rx = await startReceiver();
    const children: DaemonProcess[] = [];
    const forTable = () => rx.events.filter((e) => e.body.includes(`"table":"${table}"`));
    return {
      rx,
      instance(name, timeout) {
        // The driver's config turns the admin server off (http.listen "off"): instances never contend for a port.
        const yaml = driver.configYaml({ webhookUrl: `${rx.url}?instance=${name}`, tables: [table], poolSize: POOL_SIZE, timeout });
        expect(yaml).toMatch(/^http:\n {2}listen: "off"$/m);
        const configPath = writeTempConfig(yaml);
        const p = spawnCli(['run', '--config', configPath], configPath);
        children.push(p);
        return p;
      },
      forTable,
      distinctIds: () => new Set(forTable().map((e) => eventIdOf(e.body))),
      async close() {
        for (const c of children) {
          if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGTERM');
          await c.exited;
        }
        await rx.close();
      },
    };
  }

  /** The hot rows exist before the triggers do, so their first event is an UPDATE (seq 1). */
  async function createTable(table: string): Promise<void> {
    await driver.exec(`CREATE TABLE ${q(table)} (id ${driver.types.int} PRIMARY KEY, seq ${driver.types.int} NOT NULL DEFAULT 0)`);
    const hot = Array.from({ length: HOT_ROWS }, (_, i) => `(${i + 1})`).join(', ');
    await driver.exec(`INSERT INTO ${q(table)} (id) VALUES ${hot}`);
  }

  /** Per row, the `seq` values its committed events carry, in commit order (read from the table). */
  async function committedChanges(table: string): Promise<{ expected: Map<string, number[]>; total: number }> {
    const rows = await driver.rows<{ id: unknown; seq: unknown }>(`SELECT id, seq FROM ${q(table)}`);
    const expected = new Map<string, number[]>();
    for (const r of rows) {
      const first = Number(r.id) >= FIRST_COLD_ID ? 0 : 1;
      expected.set(String(r.id), Array.from({ length: Number(r.seq) - first + 1 }, (_, i) => first + i));
    }
    return { expected, total: [...expected.values()].reduce((n, v) => n + v.length, 0) };
  }

  const pick = (table: string) => (b: Record<string, unknown>) => {
    if (b.table !== table) return undefined;
    const d = b.data as { id: number; seq: number };
    return { key: String(d.id), value: Number(d.seq) };
  };

  async function allDelivered(s: Scenario, table: string, total: number, timeoutMs: number): Promise<void> {
    await waitUntil(() => s.distinctIds().size >= total, timeoutMs, () => `${total} distinct events (got ${s.distinctIds().size})`);
    await waitUntil(async () => (await driver.journalCount(table)) === 0, 15_000, `the journal to be empty for ${table}`);
  }

  it('two instances share a steady load on hot and cold rows: all delivered once, in row order, by both', async () => {
    const table = 'mi_share';
    await createTable(table);
    const s = await scenario(table);
    try {
      // A receiver that takes a few ms per request: one instance alone cannot keep up, so both must work.
      s.rx.setMode({ kind: 'delay', ms: 5 });
      await Promise.all([s.instance('a').ready(), s.instance('b').ready()]);

      await writeLoad(driver, table, 4, 150).done;
      const { expected, total } = await committedChanges(table);
      expect(total).toBe(600); // the table agrees with the statements the writers committed
      await allDelivered(s, table, total, 30_000);

      const got = s.forTable();
      const t = tally(got, expected, pick(table));
      expect(t.lost).toEqual([]);
      expect(t.orderViolations).toEqual([]);
      expect(t.duplicates).toBe(0);
      expect(t.distinct).toBe(total);
      const share = (name: string) => got.filter((e) => instanceOf(e) === name).length;
      console.log(`${label}: ${total} changes, instance a delivered ${share('a')}, b ${share('b')}`);
      expect(share('a')).toBeGreaterThan(0);
      expect(share('b')).toBeGreaterThan(0);
      expect(share('a') + share('b')).toBe(total);
    } finally {
      await s.close();
    }
  });

  it('three instances, one killed with SIGKILL under load: its claims are taken over after the lease, nothing lost, order kept', async () => {
    const table = 'mi_kill';
    await createTable(table);
    const s = await scenario(table);
    try {
      // Instance c (the victim) gets slow answers, so it always has requests in flight.
      s.rx.setMode((req, res) => {
        const timer = setTimeout(() => res.destroyed || res.writeHead(200).end(), instanceOf(req) === 'c' ? 300 : 20);
        res.on('close', () => clearTimeout(timer));
      });
      const daemons = ['a', 'b', 'c'].map((name) => s.instance(name, KILL_TIMEOUT_S));
      await Promise.all(daemons.map((p) => p.ready()));
      const victim = daemons[2]!;
      // Instance ids are scope:pid:random (src/app.ts).
      const journal = driver.name === 'postgres' ? 'app_db_listener.deliveries' : '`app_db_listener_deliveries`';
      const claimsOfVictim = async () =>
        (await driver.rows<{ id: unknown }>(`SELECT id FROM ${journal} WHERE claimed_by LIKE ?`, [`%:${victim.child.pid}:%`])).map((r) => String(r.id));

      const load = writeLoad(driver, table, 4, 300);
      let writeError: unknown;
      load.done.catch((err: unknown) => {
        writeError = err;
      });
      const victimDelivered = () => s.forTable().filter((e) => instanceOf(e) === 'c').length;
      await waitUntil(
        async () => victimDelivered() >= 5 && (await claimsOfVictim()).length > 0,
        30_000,
        () => `instance c to have sent 5 events and to hold claims (sent ${victimDelivered()}, writes ${load.written()})`,
        5,
      );
      const writtenAtKill = load.written();
      victim.child.kill('SIGKILL');
      expect(await victim.exited).toEqual({ code: null, signal: 'SIGKILL' });
      const heldAtKill = new Set(await claimsOfVictim());

      await load.done.catch(() => undefined);
      expect(writeError).toBeUndefined();
      expect(writtenAtKill).toBeLessThan(load.written()); // killed under load, not after it
      expect(heldAtKill.size).toBeGreaterThan(0);

      const { expected, total } = await committedChanges(table);
      expect(total).toBe(1_200);
      // The victim's lease (timeout + 15 s) runs out before the survivors may take its events.
      await allDelivered(s, table, total, 45_000);
      expect(await claimsOfVictim()).toEqual([]);

      const got = s.forTable();
      const t = tally(got, expected, pick(table));
      expect(t.lost).toEqual([]);
      expect(t.orderViolations).toEqual([]);
      expect(t.distinct).toBe(total);
      // Every event the victim held was delivered by a survivor.
      const bySurvivors = new Set(got.filter((e) => instanceOf(e) !== 'c').map((e) => journalIdOf(eventIdOf(e.body))));
      expect([...heldAtKill].filter((id) => !bySurvivors.has(id))).toEqual([]);
      // Duplicates: only events the victim held (sent, outcome never written). The
      // dispatcher keeps requests in flight plus unwritten outcomes at 2 x pool_size at
      // most (docs/architecture.md); besides those, it held only the events claimed
      // ahead, which were never sent.
      const times = new Map<string, number>();
      for (const e of got) times.set(eventIdOf(e.body), (times.get(eventIdOf(e.body)) ?? 0) + 1);
      const duplicated = [...times].filter(([, n]) => n > 1).map(([id]) => journalIdOf(id));
      console.log(`${label}: ${total} changes, the killed instance held ${heldAtKill.size} claims, ${t.duplicates} duplicate deliveries`);
      expect(duplicated.filter((id) => !heldAtKill.has(id))).toEqual([]);
      expect(t.duplicates).toBeLessThanOrEqual(heldAtKill.size);
      expect(t.duplicates).toBeLessThanOrEqual(2 * POOL_SIZE);
      expect(heldAtKill.size).toBeLessThanOrEqual(2 * POOL_SIZE + batchPlan(POOL_SIZE).claimAhead);
      expect(await driver.deadLetterCount(table)).toBe(0);
    } finally {
      await s.close();
    }
  });
});
