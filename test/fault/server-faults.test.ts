/**
 * The database server misbehaving under the built CLI, on PostgreSQL and MariaDB,
 * while concurrent writers update a set of rows (a per-row counter, see
 * test/support/fault.ts):
 *
 * (a) the server restarted (a private server: test/support/private-servers.ts):
 *     the daemon reconnects by itself, /readyz answers 503 during the outage and
 *     200 after;
 * (b) every connection of the daemon terminated from the server side, three times
 *     (a private server too: the shared one serves other files' daemons);
 * (c) the daemon killed with SIGKILL and restarted after a pause, three times in a
 *     row (the shared servers: nothing destructive for them).
 *
 * Writers retry their own failed writes; what committed is read from the table at
 * the end, so a write whose commit was acknowledged by nobody still counts if it
 * is there. Every scenario: lost 0, order violations 0; (c) also duplicates at
 * most 2 × pool_size per kill.
 *
 * Writers stay at most MAX_AHEAD changes ahead of the receiver, so each fault
 * strikes while changes are both being written and being delivered, and the
 * backlog left at the end stays small.
 */
import { setTimeout as pause } from 'node:timers/promises';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mysqlDriver, numberPlaceholders, postgresDriver, type Driver } from '../conformance/drivers.js';
import { spawnCli, writeTempConfig, type DaemonProcess } from '../support/daemon.js';
import { committedChanges, countChanges, eventIdOf, report, reportRow, tallyCounter } from '../support/fault.js';
import { startPrivateMariaDb, startPrivatePostgres, type PrivateServer } from '../support/private-servers.js';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { waitUntil } from '../support/wait.js';

type DatabaseName = 'postgres' | 'mysql';

const ROWS = 20;
const WRITERS = 4;
const POOL_SIZE = 8;
/** How far (in changes) writers may run ahead of the deliveries. */
const MAX_AHEAD = 300;
/** Deliveries to see between two faults: the daemon works again, under load. */
const PROGRESS = 60;
/** Seconds per attempt; the lease is this plus 15 s. */
const TIMEOUT_S = 2;

/** A database the scenarios write to and the daemon watches. */
interface Target {
  readonly name: DatabaseName;
  exec(sql: string, params?: readonly unknown[]): Promise<void>;
  rows<T>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  quote(name: string): string;
  /** The `database:` section of the daemon's config, without `tables`. */
  readonly databaseYaml: readonly string[];
  journalCount(table: string): Promise<number>;
}

/** A target on a private server, which a scenario may restart, and whose daemon connections it may cut. */
interface PrivateTarget extends Target {
  readonly server: PrivateServer;
  /** Terminates every connection of the daemon from the server side; returns how many. */
  terminateDaemonConnections(): Promise<number>;
  close(): Promise<void>;
}

const pgQuote = (name: string) => `"${name.replace(/"/g, '""')}"`;
const myQuote = (name: string) => `\`${name.replace(/`/g, '``')}\``;

async function privatePostgres(): Promise<PrivateTarget> {
  const server = await startPrivatePostgres();
  const pool = new pg.Pool({ connectionString: server.url, max: WRITERS + 2 });
  pool.on('error', () => undefined);
  const rows = async <T>(sql: string, params: readonly unknown[] = []) => (await pool.query(numberPlaceholders(sql), [...params])).rows as T[];
  return {
    name: 'postgres',
    server,
    quote: pgQuote,
    exec: async (sql, params) => void (await rows(sql, params)),
    rows,
    databaseYaml: ['type: "postgres"', `url: ${JSON.stringify(server.url)}`],
    journalCount: async (table) =>
      Number((await rows<{ n: string }>('SELECT (SELECT count(*) FROM app_db_listener.events WHERE table_name = ?) + (SELECT count(*) FROM app_db_listener.deliveries WHERE table_name = ?) AS n', [table, table]))[0]!.n),
    async terminateDaemonConnections() {
      // Every daemon connection names itself app-db-listener (the LISTEN one app-db-listener:listen).
      // In the select list, not the WHERE clause: only the rows filtered in are terminated.
      const r = await rows<{ done: boolean }>(
        "SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity WHERE application_name LIKE 'app-db-listener%' AND pid <> pg_backend_pid()",
      );
      return r.filter((x) => x.done).length;
    },
    async close() {
      await pool.end().catch(() => undefined);
      await server.close();
    },
  };
}

/** The daemon's own user on the private MariaDB, so that its connections can be told from the test's. */
const MY_DAEMON_USER = 'adl_daemon';

async function privateMariaDb(): Promise<PrivateTarget> {
  const server = await startPrivateMariaDb();
  const database = 'adl_server_faults';
  const password = 'daemon-password';
  const admin = await mysql.createConnection({ host: server.host, port: server.port, user: server.user, password: server.password });
  try {
    await admin.query(`CREATE DATABASE ${myQuote(database)} CHARACTER SET utf8mb4`);
    await admin.query(`CREATE USER ?@'127.0.0.1' IDENTIFIED BY ?`, [MY_DAEMON_USER, password]);
    await admin.query(`GRANT ALL PRIVILEGES ON *.* TO ?@'127.0.0.1'`, [MY_DAEMON_USER]);
  } finally {
    await admin.end();
  }
  const pool = mysql.createPool({ host: server.host, port: server.port, user: server.user, password: server.password, database, connectionLimit: WRITERS + 2 });
  pool.on('connection', (c) => c.on('error', () => undefined));
  const rows = async <T>(sql: string, params: readonly unknown[] = []) => (await pool.query(sql, [...params]))[0] as T[];
  return {
    name: 'mysql',
    server,
    quote: myQuote,
    exec: async (sql, params) => void (await pool.query(sql, [...(params ?? [])])),
    rows,
    databaseYaml: [
      'type: "mysql"',
      `host: "${server.host}"`,
      `port: ${server.port}`,
      `user: "${MY_DAEMON_USER}"`,
      `password: "${password}"`,
      `database: "${database}"`,
    ],
    journalCount: async (table) =>
      Number((await rows<{ n: number }>('SELECT (SELECT count(*) FROM `app_db_listener_events` WHERE table_name = ?) + (SELECT count(*) FROM `app_db_listener_deliveries` WHERE table_name = ?) AS n', [table, table]))[0]!.n),
    async terminateDaemonConnections() {
      const ids = await rows<{ id: number }>('SELECT id FROM information_schema.processlist WHERE user = ? AND id <> CONNECTION_ID()', [MY_DAEMON_USER]);
      let killed = 0;
      for (const { id } of ids) {
        // KILL of a connection that ended meanwhile fails: nothing to do.
        if (await pool.query(`KILL CONNECTION ${Number(id)}`).then(() => true, () => false)) killed++;
      }
      return killed;
    },
    async close() {
      await pool.end().catch(() => undefined);
      await server.close();
    },
  };
}

/** A target on the shared server, through the conformance driver; its config's `database:` section says how to reach it. */
function sharedTarget(driver: Driver): Target {
  const yaml = driver.configYaml({ webhookUrl: 'http://unused', tables: [] });
  const section = yaml.slice(yaml.indexOf('database:\n') + 'database:\n'.length, yaml.indexOf('  tables:'));
  return {
    name: driver.name,
    quote: driver.quote,
    exec: driver.exec,
    rows: driver.rows,
    databaseYaml: section.trimEnd().split('\n').map((l) => l.trim()),
    journalCount: driver.journalCount,
  };
}

function daemonYaml(target: Target, o: { webhookUrl: string; table: string; httpListen?: string }): string {
  return [
    'database:',
    ...target.databaseYaml.map((l) => `  ${l}`),
    '  tables:',
    `    - ${JSON.stringify(o.table)}`,
    'listener:',
    `  poll_interval: ${target.name === 'postgres' ? 0.5 : 0.2}`,
    'webhook:',
    `  url: ${JSON.stringify(o.webhookUrl)}`,
    `  timeout: ${TIMEOUT_S}`,
    '  retry_count: 1000',
    '  retry_delay: 0.05',
    '  retry_max_delay: 0.5',
    'worker:',
    `  pool_size: ${POOL_SIZE}`,
    '  shutdown_timeout: 5',
    'http:',
    // Off unless the scenario reads /readyz: parallel daemons never contend for a port.
    `  listen: ${JSON.stringify(o.httpListen ?? 'off')}`,
  ].join('\n') + '\n';
}

/** Runs `write` until it succeeds (the server may be down for a while); a pause between tries is a backoff, not a wait for a state. */
async function untilCommitted(write: () => Promise<void>, onFailure?: () => void): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      return await write();
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`a write kept failing for 60 s: ${err instanceof Error ? err.message : String(err)}`);
      onFailure?.();
      await pause(50);
    }
  }
}

interface Writers {
  /** Writes acknowledged so far (for pacing only: what committed is read from the table). */
  written(): number;
  /** Write attempts that failed (and were tried again). */
  failed(): number;
  /** Lets the writers run `n` more changes ahead of the deliveries (while no daemon delivers). */
  allowAhead(n: number): void;
  /** Stops the writers after their current write; rejects with a writer's error. */
  stop(): Promise<void>;
}

/** `WRITERS` writers updating random rows of `table`, never more than MAX_AHEAD changes ahead of `rx`. */
function startWriters(target: Target, table: string, rx: Receiver): Writers {
  let written = ROWS;
  let failed = 0;
  let stopped = false;
  let ahead = MAX_AHEAD;
  const writer = async () => {
    while (!stopped) {
      await waitUntil(() => stopped || written - rx.events.length < ahead, 90_000, () => `the receiver to catch up with the writers (${written} written, ${rx.events.length} received)`, 5);
      if (stopped) return;
      const id = 1 + Math.floor(Math.random() * ROWS);
      await untilCommitted(() => target.exec(`UPDATE ${target.quote(table)} SET seq = seq + 1 WHERE id = ?`, [id]), () => {
        failed++;
      });
      written++;
    }
  };
  const done = Promise.all(Array.from({ length: WRITERS }, writer));
  // A writer error surfaces at stop(); keep it from being reported as unhandled meanwhile.
  done.catch(() => undefined);
  return {
    written: () => written,
    failed: () => failed,
    allowAhead: (n) => {
      ahead += n;
    },
    stop: async () => {
      stopped = true;
      await done;
    },
  };
}

const children: DaemonProcess[] = [];

function spawnDaemon(yaml: string): DaemonProcess {
  const configPath = writeTempConfig(yaml);
  const d = spawnCli(['run', '--config', configPath], configPath);
  children.push(d);
  return d;
}

/** Creates the counter table; its rows are inserted once the daemon watches it (so seq 0 is an event too). */
async function createTable(target: Target, table: string): Promise<void> {
  await target.exec(`CREATE TABLE ${target.quote(table)} (id INT PRIMARY KEY, seq INT NOT NULL)`);
}

async function insertRows(target: Target, table: string): Promise<void> {
  const values = Array.from({ length: ROWS }, (_, i) => `(${i + 1}, 0)`).join(', ');
  await untilCommitted(() => target.exec(`INSERT INTO ${target.quote(table)} (id, seq) VALUES ${values}`));
}

/** Waits until every change the table committed was delivered and the journal is empty; returns the committed count. */
async function drain(target: Target, table: string, rx: Receiver) {
  const expected = committedChanges(await target.rows<{ id: unknown; seq: unknown }>(`SELECT id, seq FROM ${target.quote(table)}`));
  const committed = countChanges(expected);
  await waitUntil(
    () => tallyCounter(rx.events, table, expected).distinct >= committed,
    60_000,
    () => `${committed} delivered (got ${tallyCounter(rx.events, table, expected).distinct})`,
    50,
  );
  await waitUntil(async () => (await target.journalCount(table)) === 0, 30_000, `the journal of ${table} to be empty`, 50);
  return { expected, committed, t: tallyCounter(rx.events, table, expected) };
}

const distinctDelivered = (rx: Receiver) => new Set(rx.events.filter((e) => e.response === 200).map((e) => eventIdOf(e.body))).size;

async function progress(rx: Receiver, what: string): Promise<void> {
  const from = distinctDelivered(rx);
  await waitUntil(() => distinctDelivered(rx) >= from + PROGRESS, 60_000, () => `${PROGRESS} more deliveries ${what} (from ${from}, now ${distinctDelivered(rx)})`, 20);
}

/** The admin address the daemon logged (`http.listen: 127.0.0.1:0` picks a free port). */
async function adminAddress(d: DaemonProcess): Promise<string> {
  return waitUntil(() => /Admin server listening on http:\/\/([\d.]+:\d+)/.exec(d.output())?.[1], 20_000, () => `the admin address in the log:\n${d.output()}`);
}

const readyz = async (address: string) => (await fetch(`http://${address}/readyz`)).status;

const privateTargets: Partial<Record<DatabaseName, PrivateTarget>> = {};
const sharedDrivers: Partial<Record<DatabaseName, Driver>> = {};

beforeAll(async () => {
  [privateTargets.postgres, privateTargets.mysql, sharedDrivers.postgres, sharedDrivers.mysql] = await Promise.all([
    privatePostgres(),
    privateMariaDb(),
    postgresDriver('srvfault'),
    mysqlDriver('srvfault'),
  ]);
}, 120_000);

afterAll(async () => {
  for (const c of children) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
  await Promise.all([privateTargets.postgres?.close(), privateTargets.mysql?.close(), sharedDrivers.postgres?.drop(), sharedDrivers.mysql?.drop()]);
});

/** One scenario's end: stop the writers, drain, SIGTERM (exit 0), report, and assert lost 0 and order 0. */
async function finish(scenario: string, target: Target, table: string, rx: Receiver, writers: Writers, d: DaemonProcess, note?: string | (() => string)) {
  await writers.stop();
  const { committed, t } = await drain(target, table, rx);
  d.child.kill('SIGTERM');
  expect(await d.exited).toEqual({ code: 0, signal: null });
  const text = typeof note === 'function' ? note() : note;
  report(reportRow(scenario, target.name, committed, t, { requests: rx.events.length, ...(text ? { note: text } : {}) }));
  expect(t.lost).toEqual([]);
  expect(t.orderViolations).toEqual([]);
  expect(t.distinct).toBe(committed);
  return t;
}

describe.each(['postgres', 'mysql'] as const)('%s server faults under concurrent writes: lost 0, order violations 0', (db) => {
  it('the database server restarted under load: reconnects by itself, /readyz 503 during the outage and 200 after', async () => {
    const target = privateTargets[db]!;
    const table = 'restart';
    const rx = await startReceiver();
    try {
      await createTable(target, table);
      const d = spawnDaemon(daemonYaml(target, { webhookUrl: rx.url, table, httpListen: '127.0.0.1:0' }));
      await d.ready();
      const address = await adminAddress(d);
      await waitUntil(async () => (await readyz(address)) === 200, 20_000, '/readyz 200 after start');
      await insertRows(target, table);
      const writers = startWriters(target, table, rx);
      await progress(rx, 'before the restart');

      await target.server.stop();
      // The writers keep trying through the outage, even if they were as far ahead as they may go.
      writers.allowAhead(PROGRESS);
      await waitUntil(async () => (await readyz(address)) === 503, 20_000, '/readyz 503 while the server is down');
      await waitUntil(() => writers.failed() > 0, 20_000, 'a write to fail while the server is down');
      await target.server.start();
      await waitUntil(async () => (await readyz(address)) === 200, 30_000, '/readyz 200 once the server is back');
      await progress(rx, 'after the restart');

      await finish('database server restarted', target, table, rx, writers, d, `writes that failed and were retried: ${writers.failed()}`);
    } finally {
      await rx.close();
    }
  });

  it("every daemon connection terminated by the server, three times under load: it recovers", async () => {
    const target = privateTargets[db]!;
    const table = 'terminated';
    const rx = await startReceiver();
    try {
      await createTable(target, table);
      const d = spawnDaemon(daemonYaml(target, { webhookUrl: rx.url, table }));
      await d.ready();
      await insertRows(target, table);
      const writers = startWriters(target, table, rx);
      const terminated: number[] = [];
      for (let i = 0; i < 3; i++) {
        await progress(rx, `before termination ${i + 1}`);
        terminated.push(await target.terminateDaemonConnections());
      }
      await progress(rx, 'after the last termination');
      // The daemon had connections each time (the LISTEN one at least on PostgreSQL).
      for (const n of terminated) expect(n).toBeGreaterThan(0);
      await finish('every daemon connection terminated (3 times)', target, table, rx, writers, d, `connections terminated: ${terminated.join(', ')}`);
    } finally {
      await rx.close();
    }
  });

  it('kill -9 of the daemon under load, restarted after a pause, three times in a row: duplicates at most 2 x pool_size per kill (over 10 s)', async () => {
    const target = sharedTarget(sharedDrivers[db]!);
    const table = 'killed';
    const rx = await startReceiver();
    try {
      await createTable(target, table);
      const yaml = daemonYaml(target, { webhookUrl: rx.url, table });
      let d = spawnDaemon(yaml);
      await d.ready();
      await insertRows(target, table);
      const writers = startWriters(target, table, rx);
      /** Per kill, the receiver's requests before it: [first of that process, first after its death). */
      const lives: { from: number; to: number }[] = [];
      let from = 0;
      for (let i = 0; i < 3; i++) {
        await progress(rx, `before kill ${i + 1}`);
        d.child.kill('SIGKILL');
        expect(await d.exited).toEqual({ code: null, signal: 'SIGKILL' });
        lives.push({ from, to: rx.events.length });
        from = rx.events.length;
        // The pause: the load goes on while no daemon runs.
        const written = writers.written();
        writers.allowAhead(PROGRESS);
        await waitUntil(() => writers.written() >= written + PROGRESS, 30_000, 'writes while the daemon is dead');
        d = spawnDaemon(yaml);
        await d.ready();
      }
      await progress(rx, 'after the last restart');

      // A duplicate goes back to the process that delivered it first: it held that event claimed when it died.
      const duplicatesPerKill = () => {
        const ids = rx.events.map((e) => eventIdOf(e.body));
        const firstSeen = new Map<string, number>();
        ids.forEach((id, i) => firstSeen.has(id) || firstSeen.set(id, i));
        return lives.map(({ from: a, to: b }) => new Set(ids.filter((id, i) => i >= b && firstSeen.get(id)! >= a && firstSeen.get(id)! < b)).size);
      };
      const t = await finish('kill -9 under load, restart after a pause (3 times)', target, table, rx, writers, d, () => `duplicates per kill: ${duplicatesPerKill().join(', ')}`);
      for (const n of duplicatesPerKill()) expect(n).toBeLessThanOrEqual(2 * POOL_SIZE);
      expect(t.duplicates).toBeLessThanOrEqual(3 * 2 * POOL_SIZE);
    } finally {
      await rx.close();
    }
  });
});
