/**
 * The admin server against the real databases: /metrics after real deliveries
 * (values by table and operation, checked against what the database holds, and
 * by promtool), /healthz, and /readyz while the database goes away and comes back
 * (through a TCP proxy the test cuts).
 */
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { startDaemon, type RunningDaemon } from '../../src/app.js';
import type { Config } from '../../src/config/types.js';
import { spawnDaemon, testConfig } from '../support/daemon.js';
import { createMySqlTestDatabase, MYSQL_PORT, type MySqlTestDatabase } from '../support/mysql.js';
import { createTestDatabase, PG_PORT, type TestDatabase } from '../support/pg.js';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { waitUntil } from '../support/wait.js';

const promtool = spawnSync('promtool', ['--version']).status === 0;
if (!promtool) console.warn('http-server.test: promtool not found, the "promtool check metrics" test is skipped (apt-get install prometheus)');

/** One database family, as the tests need it. */
interface Driver {
  readonly name: string;
  setup(): Promise<void>;
  teardown(): Promise<void>;
  sql(statement: string): Promise<void>;
  /** The daemon's config: its database through `proxyPort`, the admin server on a free port. */
  config(proxyPort: number, webhookUrl: string): Config;
  readonly serverPort: number;
  /** Ends the daemon's connections from the server side, where the server allows it. */
  terminateDaemonConnections(): Promise<void>;
  count(table: 'events' | 'dead_letters'): Promise<number>;
  readonly schema: () => string;
  /** The LISTEN connection exists (its reconnects are counted). */
  readonly listens: boolean;
}

function pgDriver(): Driver {
  let db: TestDatabase;
  return {
    name: 'PostgreSQL',
    serverPort: PG_PORT,
    listens: true,
    async setup() {
      db = await createTestDatabase('http');
    },
    teardown: () => db?.drop(),
    async sql(statement) {
      await db.query(statement);
    },
    config: (proxyPort, webhookUrl) =>
      testConfig({
        dbUrl: `postgres://postgres@127.0.0.1:${proxyPort}/${db.name}`,
        webhookUrl,
        tables: ['items', 'other'],
        retryCount: 3,
        httpListen: '127.0.0.1:0',
      }),
    async terminateDaemonConnections() {
      await db.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name LIKE 'app-db-listener%'`, [db.name]);
    },
    async count(table) {
      return (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM app_db_listener.${table}`)).rows[0]!.n;
    },
    schema: () => 'public',
  };
}

function mysqlDriver(): Driver {
  let db: MySqlTestDatabase;
  return {
    name: 'MariaDB',
    serverPort: MYSQL_PORT,
    listens: false,
    async setup() {
      db = await createMySqlTestDatabase('http');
    },
    teardown: () => db?.drop(),
    async sql(statement) {
      await db.exec(statement);
    },
    config(proxyPort, webhookUrl) {
      const c = db.config({ tables: ['items', 'other'], webhookUrl });
      return { ...c, database: { ...c.database, port: proxyPort }, http: { ...c.http, listen: { host: '127.0.0.1', port: 0 } } };
    },
    // The proxy cut ends them: the test's own connections to this database look the same to the server.
    terminateDaemonConnections: () => Promise.resolve(),
    async count(table) {
      const rows = await db.query<{ n: number }>(`SELECT COUNT(*) AS n FROM \`app_db_listener_${table}\``);
      return Number(rows[0]!.n);
    },
    schema: () => db.name,
  };
}

/** One sample of the Prometheus text format. */
interface Sample {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
}

function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, '$1');
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return samples;
}

/** The value of the one sample with this name and these labels (0 when absent, as Prometheus reads a missing counter). */
function value(samples: readonly Sample[], name: string, labels: Record<string, string> = {}): number {
  const found = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (found.length > 1) throw new Error(`${found.length} samples of ${name} ${JSON.stringify(labels)}`);
  return found[0]?.value ?? 0;
}

async function get(d: RunningDaemon, path: string, method = 'GET') {
  const a = d.httpAddress!;
  const res = await fetch(`http://127.0.0.1:${a.port}${path}`, { method });
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: await res.text() };
}

async function scrape(d: RunningDaemon): Promise<{ text: string; samples: Sample[] }> {
  const r = await get(d, '/metrics');
  expect(r.status).toBe(200);
  return { text: r.body, samples: parseMetrics(r.body) };
}

describe.each([pgDriver(), mysqlDriver()])('admin server with $name', (driver) => {
  let rx: Receiver;
  let proxy: TcpProxy;
  let daemon: RunningDaemon | undefined;
  /** What the receiver answered, in order. */
  const answers: Array<{ table: string; id: number; status: number }> = [];

  beforeAll(async () => {
    await driver.setup();
    await driver.sql('CREATE TABLE items (id INT PRIMARY KEY, v TEXT)');
    await driver.sql('CREATE TABLE other (id INT PRIMARY KEY)');
    rx = await startReceiver({
      // Row 2 of items fails once (503) then is delivered; row 3 is refused (422): a dead letter at once.
      mode: (req, res) => {
        const { table, data } = JSON.parse(req.body) as { table: string; data: { id: number } };
        const first = !answers.some((a) => a.table === table && a.id === data.id);
        const status = table === 'items' && data.id === 3 ? 422 : table === 'items' && data.id === 2 && first ? 503 : 200;
        answers.push({ table, id: data.id, status });
        res.statusCode = status;
        res.end();
      },
    });
    proxy = await startTcpProxy(driver.serverPort);
    daemon = await startDaemon(driver.config(proxy.port, rx.url), { logger: pino({ level: process.env.ADL_TEST_LOG ?? 'silent' }) });
  });
  afterEach(async () => {
    await proxy.restore();
  });
  afterAll(async () => {
    await daemon?.stop(2_000);
    await proxy?.close();
    await rx?.close();
    await driver.teardown();
  });

  const statusesOf = (table: string, id: number) => answers.filter((a) => a.table === table && a.id === id).map((a) => a.status);

  it('counts deliveries, failures, retries and dead letters by table and operation', async () => {
    const d = daemon!;
    const items = `${driver.schema()}.items`;
    const other = `${driver.schema()}.other`;
    // One step at a time, so the failure of row 2 is the endpoint's first in a row (it counts).
    await driver.sql(`INSERT INTO items VALUES (2, 'b')`);
    await waitUntil(() => statusesOf('items', 2).includes(200), 10_000, 'row 2 delivered after one failure');
    await driver.sql(`INSERT INTO items VALUES (1, 'a')`);
    await driver.sql(`UPDATE items SET v = 'a2' WHERE id = 1`);
    await driver.sql(`DELETE FROM items WHERE id = 1`);
    await driver.sql(`INSERT INTO other VALUES (7)`);
    await waitUntil(() => answers.filter((a) => a.status === 200).length >= 5, 10_000, 'five deliveries');
    await driver.sql(`INSERT INTO items VALUES (3, 'c')`);
    await waitUntil(async () => (await driver.count('dead_letters')) === 1, 10_000, 'row 3 in dead letters');
    await waitUntil(async () => (await driver.count('events')) === 0, 10_000, 'an empty journal');
    expect(statusesOf('items', 2)).toEqual([503, 200]);
    expect(statusesOf('items', 3)).toEqual([422]);

    // Outcomes reach the bus before the database; the scrape waits for the last one to be counted.
    let samples: Sample[] = [];
    await waitUntil(
      async () => {
        samples = (await scrape(d)).samples;
        return value(samples, 'app_db_listener_dead_letters_total', { table: items, operation: 'INSERT' }) === 1 && value(samples, 'app_db_listener_dead_letters', { table: items }) === 1;
      },
      10_000,
      () => `dead letter counted; got ${JSON.stringify(samples.filter((s) => s.name.includes('dead_letters')))}`,
    );
    const v = (name: string, labels: Record<string, string> = {}) => value(samples, `app_db_listener_${name}`, labels);
    const at = (table: string, operation: string) => ({ table, operation });

    expect(v('changes_captured_total', at(items, 'INSERT'))).toBe(3);
    expect(v('changes_captured_total', at(items, 'UPDATE'))).toBe(1);
    expect(v('changes_captured_total', at(items, 'DELETE'))).toBe(1);
    expect(v('changes_captured_total', at(other, 'INSERT'))).toBe(1);
    expect(v('deliveries_succeeded_total', at(items, 'INSERT'))).toBe(2);
    expect(v('deliveries_succeeded_total', at(items, 'UPDATE'))).toBe(1);
    expect(v('deliveries_succeeded_total', at(items, 'DELETE'))).toBe(1);
    expect(v('deliveries_succeeded_total', at(other, 'INSERT'))).toBe(1);
    expect(v('deliveries_failed_total', at(items, 'INSERT'))).toBe(2);
    expect(v('deliveries_failed_total', at(other, 'INSERT'))).toBe(0);
    expect(v('deliveries_retried_total', at(items, 'INSERT'))).toBe(1);
    expect(v('dead_letters_total', at(items, 'INSERT'))).toBe(1);

    // Every request the receiver answered, and each success's latency.
    expect(v('webhook_request_duration_seconds_count')).toBe(answers.length);
    expect(v('delivery_latency_seconds_count', { table: items })).toBe(answers.filter((a) => a.table === 'items' && a.status === 200).length);
    expect(v('delivery_latency_seconds_count', { table: other })).toBe(1);
    expect(v('delivery_latency_seconds_bucket', { table: other, le: '+Inf' })).toBe(1);

    // Gauges, against what the database holds.
    expect(v('journal_pending', { table: items })).toBe(await driver.count('events'));
    expect(v('journal_pending', { table: other })).toBe(0);
    expect(v('journal_oldest_pending_age_seconds', { table: items })).toBe(0);
    expect(v('dead_letters', { table: items })).toBe(await driver.count('dead_letters'));
    expect(v('dead_letters', { table: other })).toBe(0);
    expect(v('deliveries_in_flight')).toBe(0);
    expect(v('endpoint_up')).toBe(1);
    expect(v('database_connected')).toBe(1);
    expect(samples.find((s) => s.name === 'app_db_listener_info')).toMatchObject({ labels: { version: expect.stringMatching(/^\d+\.\d+\.\d+/) as unknown }, value: 1 });
    expect(samples.some((s) => s.name === 'process_resident_memory_bytes')).toBe(true);
  });

  it('shows a waiting event in the journal gauges', async () => {
    const d = daemon!;
    const items = `${driver.schema()}.items`;
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    rx.setMode((_req, res) => void held.then(() => res.end()));
    await driver.sql(`INSERT INTO items VALUES (10, 'held')`);
    await rx.waitFor((evs) => evs.some((e) => (JSON.parse(e.body) as { data: { id: number } }).data.id === 10), 10_000);
    let samples: Sample[] = [];
    await waitUntil(
      async () => {
        samples = (await scrape(d)).samples;
        return value(samples, 'app_db_listener_journal_pending', { table: items }) === 1;
      },
      5_000,
      () => `one pending event; got ${JSON.stringify(samples.filter((s) => s.name.includes('journal')))}`,
    );
    expect(value(samples, 'app_db_listener_deliveries_in_flight')).toBe(1);
    expect(value(samples, 'app_db_listener_journal_oldest_pending_age_seconds', { table: items })).toBeGreaterThan(0);
    release();
    await waitUntil(async () => (await driver.count('events')) === 0, 10_000, 'the held event delivered');
    rx.setMode('ok');
  });

  it.skipIf(!promtool)(`passes promtool check metrics${promtool ? '' : ' (skipped: promtool is not installed)'}`, async () => {
    const { text } = await scrape(daemon!);
    const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(`${r.stdout}${r.stderr}`.trim()).toBe('');
    expect(r.status).toBe(0);
  });

  it('answers /healthz, /readyz, 404 and 405, and HEAD without a body', async () => {
    const d = daemon!;
    expect(await get(d, '/healthz')).toMatchObject({ status: 200, body: 'ok\n' });
    expect(await get(d, '/readyz')).toMatchObject({ status: 200 });
    expect((await get(d, '/metrics')).type).toMatch(/^text\/plain; version=0\.0\.4/);
    expect((await get(d, '/nope')).status).toBe(404);
    expect((await get(d, '/metrics', 'POST')).status).toBe(405);
    expect(await get(d, '/healthz', 'HEAD')).toMatchObject({ status: 200, body: '' });
  });

  it('is not ready while the database is unreachable, and ready again once it is back', async () => {
    const d = daemon!;
    expect((await get(d, '/readyz')).status).toBe(200);
    await proxy.cut();
    await driver.terminateDaemonConnections();
    let last = { status: 0, type: '', body: '' };
    await waitUntil(
      async () => (last = await get(d, '/readyz')).status === 503,
      20_000,
      () => `/readyz 503; last answer ${last.status} ${last.body}`,
    );
    expect(last.body).toMatch(/^not ready: .*(database|LISTEN)/);
    expect((await get(d, '/healthz')).status).toBe(200);
    const during = (await scrape(d)).samples;
    expect(value(during, 'app_db_listener_database_connected')).toBe(0);

    await proxy.restore();
    await waitUntil(async () => (last = await get(d, '/readyz')).status === 200, 30_000, () => `/readyz 200; last answer ${last.status} ${last.body}`);
    const after = (await scrape(d)).samples;
    expect(value(after, 'app_db_listener_database_connected')).toBe(1);
    if (driver.listens) expect(value(after, 'app_db_listener_listen_reconnects_total')).toBeGreaterThanOrEqual(1);
    // And it delivers again.
    const before = rx.events.length;
    await driver.sql(`INSERT INTO other VALUES (8)`);
    await rx.waitFor((evs) => evs.length > before, 15_000);
  });
});

describe('admin server start', () => {
  let db: TestDatabase;
  let busy: ReturnType<typeof createServer>;
  let busyPort: number;

  beforeAll(async () => {
    db = await createTestDatabase('http_bind');
    await db.query('CREATE TABLE t (id int PRIMARY KEY)');
    busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    busyPort = (busy.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => busy.close(() => resolve()));
    await db.drop();
  });

  it('fails with an error naming http.listen and the address when the port is taken', async () => {
    const config = testConfig({ dbUrl: db.url, webhookUrl: 'http://127.0.0.1:9/hook', tables: ['t'], httpListen: `127.0.0.1:${busyPort}` });
    await expect(startDaemon(config, { logger: pino({ level: 'silent' }) })).rejects.toMatchObject({
      code: 'HTTP_LISTEN',
      message: `http.listen: cannot listen on 127.0.0.1:${busyPort}: the address is already in use`,
    });
  });

  it('run prints it and exits 1', async () => {
    const d = spawnDaemon({ dbUrl: db.url, webhookUrl: 'http://127.0.0.1:9/hook', tables: ['t'], httpListen: `127.0.0.1:${busyPort}` });
    const { code } = await d.closed;
    expect(code).toBe(1);
    expect(d.output()).toContain(`http.listen: cannot listen on 127.0.0.1:${busyPort}`);
  });
});
