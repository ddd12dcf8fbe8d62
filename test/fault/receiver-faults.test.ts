/**
 * A misbehaving receiver, against the built CLI, on PostgreSQL and MariaDB: for a
 * while it is down (connection refused), answers 500, answers 429 with
 * Retry-After, hangs past webhook.timeout, answers 410, answers slowly, or closes
 * the connection mid-response; then it recovers. Meanwhile concurrent writers
 * update a few hot rows. Counted from the database: every committed change
 * delivered (or, for the 410s, in dead letters), none out of order per row;
 * duplicates counted and reported.
 *
 * Each scenario has its own table, receiver and daemon, so they run side by side.
 * Over 10 s each: an outage opens the endpoint breaker, whose probes come 1 s, 2 s,
 * 4 s apart.
 */
import { afterAll, beforeAll, describe, it } from 'vitest';
import { postgresDriver, mysqlDriver, type Driver } from '../conformance/drivers.js';
import { spawnCli, writeTempConfig, type DaemonProcess } from '../support/daemon.js';
import { committedChanges, countChanges, report, reportRow, tallyCounter } from '../support/fault.js';
import { startReceiver, type ReceivedRequest, type Receiver, type ReceiverModeInput } from '../support/receiver.js';
import { waitUntil } from '../support/wait.js';

const drivers: Partial<Record<Driver['name'], Driver>> = {};
const children: DaemonProcess[] = [];

beforeAll(async () => {
  [drivers.postgres, drivers.mysql] = await Promise.all([postgresDriver('rxfault'), mysqlDriver('rxfault')]);
});
afterAll(async () => {
  for (const c of children) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
  await Promise.all([drivers.postgres?.drop(), drivers.mysql?.drop()]);
});

const ROWS = 5;
const WRITERS = 4;
const UPDATES_PER_WRITER = 25;

interface Fault {
  readonly name: string;
  /** Seconds per attempt. */
  readonly timeout?: number;
  /** Breaks the receiver. */
  start(rx: Receiver): Promise<void> | void;
  /** True once the fault was felt long enough to exercise the backoff. */
  felt(rx: Receiver, driver: Driver, table: string): Promise<boolean> | boolean;
  /** Repairs the receiver. */
  stop(rx: Receiver): Promise<void> | void;
  /** Events the fault sends to dead letters (4xx), asserted from the database. */
  readonly deadLetters?: number;
}

const answered = (rx: Receiver, what: ReceivedRequest['response']) => rx.events.filter((e) => e.response === what).length;
const mode = (m: ReceiverModeInput, until: (rx: Receiver) => boolean, timeout?: number): Omit<Fault, 'name'> => ({
  ...(timeout !== undefined ? { timeout } : {}),
  start: (rx) => rx.setMode(m),
  felt: until,
  stop: (rx) => rx.setMode('ok'),
});

const faults: Fault[] = [
  {
    name: 'down (connection refused), then back',
    start: (rx) => rx.down(),
    // Every hot row's first event refused: 5 failures in a row open the endpoint breaker.
    felt: async (_rx, driver, table) => (await driver.failedWith(table, 'ECONNREFUSED')) >= ROWS,
    stop: (rx) => rx.up(),
  },
  { name: '500 for a while', ...mode(500, (rx) => answered(rx, 500) >= 7) },
  {
    name: '429 with Retry-After: 1',
    ...mode({ kind: 'status', status: 429, headers: { 'retry-after': '1' } }, (rx) => answered(rx, 429) >= 6),
  },
  { name: 'hangs past webhook.timeout (1 s)', ...mode('hang', (rx) => answered(rx, 'hang') >= 6, 1) },
  { name: 'closes the connection mid-response', ...mode({ kind: 'destroy', when: 'mid-body' }, (rx) => answered(rx, 'destroy') >= 7) },
  { name: 'closes the connection before answering', ...mode('destroy', (rx) => answered(rx, 'destroy') >= 7) },
  { name: 'answers slowly (300 ms)', ...mode({ kind: 'delay', ms: 300 }, (rx) => answered(rx, 200) >= 20) },
  {
    name: '410 for the first 3 requests (dead letters)',
    start: (rx) => rx.queue(410, 410, 410),
    felt: (rx) => answered(rx, 410) >= 3,
    stop: () => undefined,
    deadLetters: 3,
  },
];

/** The config with `http.listen: "off"` (daemons side by side never contend for the admin port). */
const withoutAdminServer = (yaml: string) => (/^http:/m.test(yaml) ? yaml : yaml + 'http:\n  listen: "off"\n');

const cases = faults.flatMap((fault, i) => (['postgres', 'mysql'] as const).map((db) => ({ db, fault, table: `rf_${i}_${db === 'postgres' ? 'pg' : 'my'}`, label: `${db}: ${fault.name}` })));

describe.concurrent('receiver faults under concurrent writes on hot rows: lost 0, order violations 0 (over 10 s each)', () => {
  it.for(cases)('$label', async ({ db, fault, table }, { expect }) => {
    const driver = drivers[db]!;
    const q = driver.quote;
    const rx = await startReceiver();
    try {
      await driver.exec(`CREATE TABLE ${q(table)} (id ${driver.types.int} PRIMARY KEY, seq ${driver.types.int} NOT NULL)`);
      const yaml = withoutAdminServer(
        driver.configYaml({
          webhookUrl: rx.url,
          tables: [table],
          poolSize: 8,
          timeout: fault.timeout ?? 5,
          retryCount: 1000,
          retryDelay: 0.05,
          retryMaxDelay: 0.5,
          shutdownTimeout: 5,
        }),
      );
      const configPath = writeTempConfig(yaml);
      const d = spawnCli(['run', '--config', configPath], configPath);
      children.push(d);
      await d.ready();

      await fault.start(rx);
      await driver.exec(`INSERT INTO ${q(table)} (id, seq) VALUES ${Array.from({ length: ROWS }, (_, i) => `(${i + 1}, 0)`).join(', ')}`);
      await Promise.all(
        Array.from({ length: WRITERS }, async (_, w) => {
          for (let i = 0; i < UPDATES_PER_WRITER; i++) {
            await driver.exec(`UPDATE ${q(table)} SET seq = seq + 1 WHERE id = ?`, [1 + ((w + i) % ROWS)]);
          }
        }),
      );
      await waitUntil(() => fault.felt(rx, driver, table), 30_000, () => `the fault to be felt (${rx.events.length} requests so far)`, 50);
      await fault.stop(rx);

      // What the database committed, read after every writer finished.
      const expected = committedChanges(await driver.rows<{ id: unknown; seq: unknown }>(`SELECT id, seq FROM ${q(table)}`));
      const committed = countChanges(expected);
      expect(committed).toBe(ROWS + WRITERS * UPDATES_PER_WRITER);
      const deadLetters = fault.deadLetters ?? 0;
      await waitUntil(
        () => tallyCounter(rx.events, table, expected).distinct >= committed - deadLetters,
        60_000,
        () => `${committed - deadLetters} delivered (got ${tallyCounter(rx.events, table, expected).distinct})`,
        50,
      );
      await waitUntil(async () => (await driver.journalCount(table)) === 0, 15_000, `the journal of ${table} to be empty`);
      d.child.kill('SIGTERM');
      expect(await d.exited).toEqual({ code: 0, signal: null });

      const t = tallyCounter(rx.events, table, expected);
      const inDeadLetters = await driver.deadLetterCount(table);
      report(reportRow(`receiver ${fault.name}`, db, committed, t, { deadLetters: inDeadLetters, requests: rx.events.length }));
      expect(inDeadLetters).toBe(deadLetters);
      expect(t.distinct + inDeadLetters).toBe(committed);
      // Only dead-lettered changes are missing from the deliveries.
      if (deadLetters === 0) expect(t.lost).toEqual([]);
      expect(t.orderViolations).toEqual([]);
    } finally {
      await rx.close();
    }
  });
});
