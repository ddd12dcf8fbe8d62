/**
 * The Redis Streams destination against the machine's Redis: the daemon end to end
 * (PostgreSQL changes to streams, read back with the same client library), the
 * broker taken away for a while and given back (through a TCP proxy, so the shared
 * server keeps running), MAXLEN trimming, and check() against a server that is there,
 * a port with nothing behind it, a wrong password and a key of another type.
 *
 * Every key of this file starts with its run's prefix, and the ACL user it creates
 * has its run's name; both are removed at the end.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { createClient } from '@redis/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningDaemon } from '../../src/app.js';
import { parseConfig } from '../../src/config/load.js';
import type { Sink, SinkMessage } from '../../src/delivery/sink.js';
import { openSink } from '../../src/delivery/sinks.js';
import { postgresDriver, type Driver } from '../conformance/drivers.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { AFTER_OUTAGE_MS, BROKER_OUTAGE_MS, waitUntil } from '../support/wait.js';

const REDIS_PORT = 6379;
const REDIS_URL = `redis://127.0.0.1:${REDIS_PORT}/0`;
const run = randomBytes(6).toString('hex');
const prefix = `adl:redis-sink:${run}:`;

interface Entry {
  readonly fields: Readonly<Record<string, string>>;
  /** The body's event id, operation and row, parsed (the exact text is fields.body). */
  readonly event: { id: string; operation: string; data: { id: number; v?: number } };
}

const admin = createClient({ socket: { host: '127.0.0.1', port: REDIS_PORT }, RESP: 2 });
admin.on('error', () => undefined);
const command = <T = unknown>(...args: string[]) => admin.sendCommand<T>(args);

/** A stream's entries, oldest first, as a consumer reads them (XRANGE). */
async function entries(key: string): Promise<Entry[]> {
  const raw = await command<Array<[string, string[]]>>('XRANGE', key, '-', '+');
  return raw.map(([, flat]) => {
    const fields: Record<string, string> = {};
    for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i]!] = flat[i + 1]!;
    return { fields, event: JSON.parse(fields.body ?? 'null') as Entry['event'] };
  });
}

/** CloudEvents types end in the operation's past tense. */
const PAST: Record<string, string> = { insert: 'inserted', update: 'updated', delete: 'deleted' };

const streamLength = async (key: string) => Number(await command('XLEN', key));

/** Per row, what its entries carried, in stream order: `OPERATION:v`, each event once. */
function historyByRow(list: readonly Entry[]): Map<number, string[]> {
  const seen = new Set<string>();
  const rows = new Map<number, string[]>();
  for (const { event } of list) {
    if (seen.has(event.id)) continue;
    seen.add(event.id);
    rows.set(event.data.id, [...(rows.get(event.data.id) ?? []), `${event.operation}:${event.data.v}`]);
  }
  return rows;
}

/** A `destinations:` list: [name, url, extra lines]. */
function destinationsYaml(entries: ReadonlyArray<readonly [string, string, ...string[]]>): string {
  const lines = ['destinations:'];
  for (const [name, url, ...extra] of entries) {
    lines.push(`  - name: ${name}`, '    type: redis', `    url: ${JSON.stringify(url)}`, '    retry_delay: 0.05', '    retry_max_delay: 0.5');
    for (const l of extra) lines.push(`    ${l}`);
  }
  return lines.join('\n') + '\n';
}

/** A sink as the daemon opens it, from one destination entry. */
function openRedis(url: string, ...extra: string[]): Sink {
  const yaml = `database:\n  url: "postgres://u@127.0.0.1/db"\n  table: t\n` + destinationsYaml([['direct', url, ...extra]]);
  return openSink(parseConfig(yaml).config.destinations[0]!, 'destinations[0]', 'test');
}

let seq = 0;
function message(table: string): SinkMessage {
  const eventId = `evt_redis_${run}_${++seq}`;
  return { eventId, body: `{"id":"${eventId}","n":${seq}}`, contentType: 'application/json', headers: {}, schema: 'public', table, operation: 'insert' };
}

/** A port on which nothing listens. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('redis sink', () => {
  let driver: Driver;
  const daemons: RunningDaemon[] = [];
  const sinks: Sink[] = [];
  const proxies: TcpProxy[] = [];
  const user = `adl_redis_sink_${run}`;
  const password = `right-${randomBytes(8).toString('hex')}`;

  beforeAll(async () => {
    await admin.connect();
    await command('ACL', 'SETUSER', user, 'reset', 'on', `>${password}`, `~${prefix}*`, '+@all');
    driver = await postgresDriver('redis_sink');
  });

  afterAll(async () => {
    await Promise.all(daemons.map((d) => d.stop(2_000)));
    await Promise.all(sinks.map((s) => s.close()));
    await Promise.all(proxies.map((p) => p.close()));
    await driver?.drop();
    for (let cursor = '0'; ; ) {
      const [next, keys] = await command<[string, string[]]>('SCAN', cursor, 'MATCH', `${prefix}*`, 'COUNT', '1000');
      if (keys.length > 0) await command('DEL', ...keys);
      cursor = next;
      if (cursor === '0') break;
    }
    await command('ACL', 'DELUSER', user);
    admin.destroy();
  });

  async function startDaemon(tables: string[], yaml: string, httpListen?: string): Promise<RunningDaemon> {
    const d = await driver.startDaemon({
      webhookUrl: 'http://127.0.0.1:9/unused',
      tables,
      noWebhook: true,
      extraYaml: yaml,
      pollInterval: 0.1,
      ...(httpListen !== undefined ? { httpListen } : {}),
    });
    daemons.push(d);
    return d;
  }

  const open = (url: string, ...extra: string[]) => {
    const s = openRedis(url, ...extra);
    sinks.push(s);
    return s;
  };

  it('end to end: every change on the stream of its template, rows in commit order, the event id in the entry and in the body', async () => {
    await driver.exec('CREATE TABLE orders (id integer PRIMARY KEY, v integer NOT NULL, big bigint NOT NULL)');
    await driver.exec('CREATE TABLE items (id integer PRIMARY KEY, v integer NOT NULL)');
    await startDaemon(
      ['orders', 'items'],
      destinationsYaml([
        ['streams', REDIS_URL, `stream: "${prefix}{schema}.{table}"`],
        ['binary', REDIS_URL, 'format: cloudevents-binary', `stream: "${prefix}ce:{table}:{operation}"`],
      ]),
    );
    for (let id = 1; id <= 10; id++) await driver.exec('INSERT INTO orders (id, v, big) VALUES (?, 0, 9007199254740993)', [id]);
    for (let v = 1; v <= 3; v++) for (let id = 1; id <= 10; id++) await driver.exec('UPDATE orders SET v = ? WHERE id = ?', [v, id]);
    for (let id = 1; id <= 3; id++) await driver.exec('DELETE FROM orders WHERE id = ?', [id]);
    for (let id = 1; id <= 4; id++) await driver.exec('INSERT INTO items (id, v) VALUES (?, 7)', [id]);

    const orders = `${prefix}public.orders`;
    const items = `${prefix}public.items`;
    await waitUntil(async () => (await streamLength(orders)) >= 43 && (await streamLength(items)) >= 4, 30_000, 'the 47 changes on their streams');
    await waitUntil(async () => (await driver.journalCount('orders')) + (await driver.journalCount('items')) === 0, 30_000, 'both destinations done');

    // {schema}.{table}: one stream per table, each change once.
    const got = await entries(orders);
    expect(got).toHaveLength(43);
    expect(await entries(items)).toHaveLength(4);
    // Each row's changes in the order they were committed.
    const history = historyByRow(got);
    for (let id = 1; id <= 10; id++) {
      const expected = ['INSERT:0', 'UPDATE:1', 'UPDATE:2', 'UPDATE:3', ...(id <= 3 ? ['DELETE:3'] : [])];
      expect(history.get(id), `row ${id}`).toEqual(expected);
    }
    for (const { fields, event } of got) {
      // The event id as the entry's field and as the body's first key; the body as the format wrote it.
      expect(fields.id).toMatch(/^evt_[0-9a-z]+_\d+$/);
      expect(fields.body!.startsWith(`{"id":${JSON.stringify(fields.id)}`)).toBe(true);
      expect(event.id).toBe(fields.id);
      expect(fields['content-type']).toBe('application/json');
      expect(fields.body).toMatch(/"big": ?9007199254740993\b/);
    }
    expect(new Set(got.map((e) => e.fields.id)).size).toBe(43);

    // {table}:{operation}, binary CloudEvents: the attributes as ce-* fields, the same event ids.
    const ce = async (table: string, op: string) => entries(`${prefix}ce:${table}:${op}`);
    const binary = { insert: await ce('orders', 'insert'), update: await ce('orders', 'update'), delete: await ce('orders', 'delete') };
    expect([binary.insert.length, binary.update.length, binary.delete.length, (await ce('items', 'insert')).length]).toEqual([10, 30, 3, 4]);
    for (const [op, list] of Object.entries(binary)) {
      for (const { fields, event } of list) {
        expect(fields['ce-id']).toBe(fields.id);
        expect(fields['ce-specversion']).toBe('1.0');
        expect(fields['ce-type']).toBe(`com.app-db-listener.row.${PAST[op]}`);
        expect(event.operation).toBe(op.toUpperCase());
        expect(fields.body!.startsWith(`{"id":${JSON.stringify(fields.id)}`)).toBe(true);
      }
    }
    const binaryIds = new Set(Object.values(binary).flatMap((l) => l.map((e) => e.fields.id)));
    expect(binaryIds).toEqual(new Set(got.map((e) => e.fields.id)));
  });

  it('nothing lost with the broker gone for 30 s: every change arrives as written, rows in order, none dead-lettered', async () => {
    // Down until the daemon has seen the outage, two of its probes failed, and 30 s passed.
    const proxy = await startTcpProxy(REDIS_PORT);
    proxies.push(proxy);
    await driver.exec('CREATE TABLE outage (id integer PRIMARY KEY, v integer NOT NULL)');
    const daemon = await startDaemon(
      ['outage'],
      destinationsYaml([['gone', `redis://127.0.0.1:${proxy.port}/0`, `stream: "${prefix}{table}"`, 'timeout: 1', 'retry_count: 3']]),
      '127.0.0.1:0',
    );
    const readyz = async () => {
      const a = daemon.httpAddress!;
      const r = await fetch(`http://${a.host}:${a.port}/readyz`);
      return { status: r.status, text: await r.text() };
    };
    // Ready once the daemon's database connections are in place.
    await waitUntil(async () => (await readyz()).status === 200, 15_000, 'the daemon ready');
    const key = `${prefix}outage`;
    for (let id = 1; id <= 5; id++) await driver.exec('INSERT INTO outage (id, v) VALUES (?, 0)', [id]);
    await waitUntil(async () => (await streamLength(key)) === 5, 20_000, 'the first changes before the outage');

    let downAt: number | undefined;
    let up = false;
    // Attempts begun once the outage was known: the daemon's probes (failures of attempts
    // already in flight when it opened the breaker come in after it too, and do not count).
    let failedProbes = 0;
    daemon.bus.on('endpoint:down', () => (downAt = performance.now()));
    daemon.bus.on('endpoint:up', () => (up = true));
    daemon.bus.on('delivery:failed', ({ durationMs }) => {
      if (downAt !== undefined && performance.now() - durationMs > downAt) failedProbes++;
    });

    const cutAt = performance.now();
    await proxy.cut();
    for (let id = 6; id <= 20; id++) await driver.exec('INSERT INTO outage (id, v) VALUES (?, 0)', [id]);
    for (let id = 1; id <= 20; id++) await driver.exec('UPDATE outage SET v = 1 WHERE id = ?', [id]);
    await waitUntil(() => downAt !== undefined, 20_000, 'the daemon to see the outage');
    // Changes written while the destination is known to be down are kept too.
    for (let id = 1; id <= 20; id++) await driver.exec('UPDATE outage SET v = 2 WHERE id = ?', [id]);
    await waitUntil(() => failedProbes >= 2, 20_000, () => `two failed probes while down (saw ${failedProbes})`);
    // Gone for BROKER_OUTAGE_MS in all (30 s), the daemon probing it meanwhile.
    await waitUntil(() => performance.now() - cutAt >= BROKER_OUTAGE_MS, BROKER_OUTAGE_MS + 10_000, 'the broker gone for 30 s');
    expect(await streamLength(key)).toBe(5);
    // Not ready while its broker is out of reach, and it says which.
    expect(await readyz()).toEqual({ status: 503, text: 'not ready: cannot reach the broker of destination gone (redis)\n' });

    await proxy.restore();
    await waitUntil(async () => new Set((await entries(key)).map((e) => e.fields.id)).size >= 60, AFTER_OUTAGE_MS, 'all 60 changes after the outage');
    await waitUntil(async () => (await driver.journalCount('outage')) === 0, 20_000, 'the queue to empty');
    expect(up).toBe(true);
    await waitUntil(async () => (await readyz()).status === 200, 15_000, 'ready again with the broker back');
    expect(await driver.deadLetterCount('outage')).toBe(0);

    const got = await entries(key);
    const history = historyByRow(got);
    expect(history.size).toBe(20);
    for (let id = 1; id <= 20; id++) expect(history.get(id), `row ${id}`).toEqual(['INSERT:0', 'UPDATE:1', 'UPDATE:2']);
    for (const { fields, event } of got) {
      expect(event.id).toBe(fields.id);
      expect(fields.body!.startsWith(`{"id":${JSON.stringify(fields.id)}`)).toBe(true);
    }
  }, BROKER_OUTAGE_MS + AFTER_OUTAGE_MS + 30_000);

  it('maxlen trims approximately: the stream stays bounded and keeps the newest entries', async () => {
    const maxlen = 50;
    const sink = open(REDIS_URL, `stream: "${prefix}trim:{table}"`, `maxlen: ${maxlen}`, 'timeout: 5', 'batch: { max_events: 50, max_wait: 0.01 }');
    const sent: SinkMessage[] = [];
    for (let i = 0; i < 12; i++) {
      const batch = Array.from({ length: 50 }, () => message('trimmed'));
      sent.push(...batch);
      expect(new Set((await sink.send(batch)).map((r) => r.kind))).toEqual(new Set(['success']));
    }
    // `MAXLEN ~` drops whole nodes of the stream only: at most one node over the bound.
    const [, nodeEntries] = await command<[string, string]>('CONFIG', 'GET', 'stream-node-max-entries');
    const length = await streamLength(`${prefix}trim:trimmed`);
    expect(length).toBeGreaterThanOrEqual(maxlen);
    expect(length).toBeLessThanOrEqual(maxlen + Number(nodeEntries));
    expect(length).toBeLessThan(sent.length);
    const kept = await entries(`${prefix}trim:trimmed`);
    expect(kept.map((e) => e.fields.id)).toEqual(sent.slice(-length).map((m) => m.eventId));
  });

  it('check: ok on the server, without writing; not ok with a fix for a closed port, a wrong password, a key of another type', async () => {
    const fixedKey = `${prefix}check:fixed`;
    const up = await open(REDIS_URL, `stream: "${fixedKey}"`).check();
    expect(up.ok).toBe(true);
    expect(up.detail).toMatch(/answers \(Redis \d+\.\d+/);
    expect(Number(await command('EXISTS', fixedKey))).toBe(0);

    const port = await closedPort();
    const closed = await open(`redis://127.0.0.1:${port}/0`).check();
    expect(closed).toMatchObject({ ok: false, detail: expect.stringContaining('ECONNREFUSED') });
    expect(closed.fix).toContain('destinations[0].url');

    const wrong = `wrong-${randomBytes(8).toString('hex')}`;
    const badLogin = open(`redis://${user}:${wrong}@127.0.0.1:${REDIS_PORT}/0`);
    const refused = await badLogin.check();
    expect(refused).toMatchObject({ ok: false, detail: expect.stringContaining('WRONGPASS') });
    expect(refused.fix).toContain('destinations[0].url');
    expect(refused.fix).toContain('password');
    // Nothing the sink says repeats a password, whichever it was given.
    const [sendResult] = await badLogin.send([message('login')]);
    expect(sendResult).toMatchObject({ kind: 'retry', endpointFailure: true });
    for (const said of [refused, sendResult, badLogin.description]) {
      expect(JSON.stringify(said)).not.toContain(wrong);
      expect(JSON.stringify(said)).not.toContain(password);
    }
    const goodLogin = open(`redis://${user}:${password}@127.0.0.1:${REDIS_PORT}/0`, `stream: "${prefix}check:{table}"`);
    const loggedIn = await goodLogin.check();
    expect(loggedIn.ok).toBe(true);
    expect(JSON.stringify([loggedIn, goodLogin.description])).not.toContain(password);

    await command('SET', `${prefix}check:taken`, 'a string');
    const taken = await open(REDIS_URL, `stream: "${prefix}check:taken"`).check();
    expect(taken).toMatchObject({ ok: false, detail: expect.stringContaining('holds a string') });
    expect(taken.fix).toContain('destinations[0].stream');
    // What a send then meets: a retry naming the key, never a success.
    const [wrongType] = await open(REDIS_URL, `stream: "${prefix}check:taken"`).send([message('taken')]);
    expect(wrongType).toMatchObject({ kind: 'retry', endpointFailure: true, error: expect.stringMatching(/^WRONGTYPE: .*check:taken/) });
  });
});
