/**
 * NATS JetStream destinations against the machine's nats-server (127.0.0.1:4222):
 * end to end from PostgreSQL through the daemon (in process, and the built CLI killed
 * with kill -9), the broker taken away through a TCP proxy, the sink's outcomes for
 * JetStream's refusals, create_stream, the doctor's check, and TLS and credentials
 * against a private nats-server started here. Streams and subjects carry this run's
 * random suffix and are deleted at the end.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { DiscardPolicy, JetStreamApiError, jetstreamManager, StorageType, type JetStreamManager, type StreamConfig } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningDaemon } from '../../src/app.js';
import { parseConfig } from '../../src/config/load.js';
import type { Sink, SinkMessage } from '../../src/delivery/sink.js';
import { openSink } from '../../src/delivery/sinks.js';
import { checkDestination } from '../../src/doctor/webhook.js';
import { postgresDriver, type Driver } from '../conformance/drivers.js';
import { makeTestPki, type TestPki } from '../support/certs.js';
import { spawned } from '../support/children.js';
import { spawnCli, writeTempConfig, type DaemonProcess } from '../support/daemon.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { AFTER_OUTAGE_MS, BROKER_OUTAGE_MS, waitUntil } from '../support/wait.js';

const NATS_PORT = 4222;
const RUN = randomBytes(4).toString('hex');
const STREAM_NOT_FOUND = 10059;

interface Stored {
  readonly subject: string;
  readonly msgId: string;
  readonly body: string;
  header(name: string): string;
}

interface Change {
  readonly id: string;
  readonly operation: string;
  readonly data: { id: number; v: number };
}

let driver: Driver;
let admin: NatsConnection;
let jsm: JetStreamManager;
const streams = new Set<string>();
const daemons: RunningDaemon[] = [];
const sinks: Sink[] = [];
const proxies: TcpProxy[] = [];
const children: DaemonProcess[] = [];

beforeAll(async () => {
  driver = await postgresDriver('nats_sink');
  admin = await connect({ servers: `127.0.0.1:${NATS_PORT}` });
  jsm = await jetstreamManager(admin);
});

afterAll(async () => {
  for (const c of children) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
  await Promise.all(daemons.map((d) => d.stop(2_000)));
  await Promise.all(sinks.map((s) => s.close()));
  await Promise.all(proxies.map((p) => p.close()));
  for (const name of streams) await dropStream(name);
  await admin?.close();
  await driver?.drop();
});

const isNotFound = (err: unknown) => err instanceof JetStreamApiError && err.code === STREAM_NOT_FOUND;

async function dropStream(name: string): Promise<void> {
  try {
    await jsm.streams.delete(name);
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
}

/** A stream of this run (deleted at the end), made by the test. */
async function makeStream(name: string, subjects: string[], extra: Partial<StreamConfig> = {}): Promise<void> {
  streams.add(name);
  await dropStream(name);
  await jsm.streams.add({ name, subjects, storage: StorageType.Memory, ...extra });
}

/** Every message of the stream, in stream order (none when the stream does not exist). */
async function readStream(name: string): Promise<Stored[]> {
  let state;
  try {
    ({ state } = await jsm.streams.info(name));
  } catch (err) {
    if (isNotFound(err)) return [];
    throw err;
  }
  const out: Stored[] = [];
  if (state.messages === 0) return out;
  for (let seq = state.first_seq; seq <= state.last_seq; seq++) {
    const m = await jsm.streams.getMessage(name, { seq });
    if (m === null) continue;
    out.push({ subject: m.subject, msgId: m.header.get('Nats-Msg-Id'), body: new TextDecoder().decode(m.data), header: (h) => m.header.get(h) });
  }
  return out;
}

async function streamCount(name: string): Promise<number> {
  try {
    return (await jsm.streams.info(name)).state.messages;
  } catch (err) {
    if (isNotFound(err)) return 0;
    throw err;
  }
}

/** One `destinations:` entry of type nats, as YAML lines. */
function natsEntry(name: string, url: string, subject: string, extra: readonly string[] = []): string {
  return [`  - name: ${name}`, '    type: nats', `    url: ${JSON.stringify(url)}`, `    subject: ${JSON.stringify(subject)}`, ...extra.map((l) => `    ${l}`)].join('\n') + '\n';
}

/** A sink opened as the daemon opens it, from a one-destination config. */
function openNats(url: string, subject: string, extra: readonly string[] = []): Sink {
  const yaml = `database:\n  url: "postgres://u@127.0.0.1/db"\n  table: t\ndestinations:\n` + natsEntry('sink', url, subject, ['timeout: 2', ...extra]);
  const sink = openSink(parseConfig(yaml).config.destinations[0]!, 'destinations[0]', 'test');
  sinks.push(sink);
  return sink;
}

let seq = 0;
function message(over: Partial<SinkMessage> = {}): SinkMessage {
  const eventId = `evt_natssink_${RUN}_${++seq}`;
  return { eventId, body: `{"id":"${eventId}","n":${seq}}`, contentType: 'application/json', headers: {}, schema: 'public', table: 't', operation: 'insert', ...over };
}

/** Per row, its changes in stream order: operation and v. */
function perRow(changes: readonly Change[]): Map<number, string[]> {
  const rows = new Map<number, string[]>();
  for (const c of changes) rows.set(c.data.id, [...(rows.get(c.data.id) ?? []), `${c.operation}:${c.data.v}`]);
  return rows;
}

const parse = (m: Stored) => JSON.parse(m.body) as Change;
const journalIdOf = (eventId: string) => /_(\d+)$/.exec(eventId)?.[1] ?? eventId;

async function startDaemon(table: string, destinationsYaml: string): Promise<RunningDaemon> {
  const d = await driver.startDaemon({ webhookUrl: 'http://127.0.0.1:9/unused', tables: [table], noWebhook: true, pollInterval: 0.1, extraYaml: 'destinations:\n' + destinationsYaml });
  daemons.push(d);
  return d;
}

describe('nats destination, end to end', () => {
  it('every change arrives once, each row in commit order, its event id as Nats-Msg-Id and in the body, on the subject of the template', async () => {
    await driver.exec('CREATE TABLE items (id integer PRIMARY KEY, v integer NOT NULL, big bigint NOT NULL)');
    const plain = `E2E_${RUN}`;
    const binary = `E2E_CE_${RUN}`;
    const batched = `E2E_B_${RUN}`;
    for (const s of [plain, binary, batched]) streams.add(s);
    // The daemon makes the streams (create_stream) at its first publish.
    await startDaemon(
      'items',
      natsEntry('plain', `nats://127.0.0.1:${NATS_PORT}`, `e2e_${RUN}.{schema}.{table}.{operation}`, [`create_stream: { name: ${plain}, subjects: ["e2e_${RUN}.>"] }`]) +
        natsEntry('binary', `nats://127.0.0.1:${NATS_PORT}`, `e2e_ce_${RUN}.{table}`, ['format: cloudevents-binary', `create_stream: { name: ${binary}, subjects: ["e2e_ce_${RUN}.>"] }`]) +
        natsEntry('batched', `nats://127.0.0.1:${NATS_PORT}`, `e2e_b_${RUN}.{table}`, ['batch: { max_events: 10, max_wait: 0.05 }', `create_stream: { name: ${batched}, subjects: ["e2e_b_${RUN}.>"] }`]),
    );
    const rows = 20;
    for (let id = 1; id <= rows; id++) await driver.exec('INSERT INTO items (id, v, big) VALUES (?, 0, 9007199254740993)', [id]);
    for (let v = 1; v <= 3; v++) for (let id = 1; id <= rows; id++) await driver.exec('UPDATE items SET v = ? WHERE id = ?', [v, id]);
    await driver.exec('DELETE FROM items WHERE id <= 5');
    const total = rows * 4 + 5;
    await waitUntil(async () => (await Promise.all([plain, binary, batched].map(streamCount))).every((n) => n >= total), 30_000, `${total} messages in each stream`);
    await waitUntil(async () => (await driver.journalCount('items')) === 0, 10_000, 'the journal to empty');

    const got = await readStream(plain);
    expect(got).toHaveLength(total);
    expect(new Set(got.map((m) => m.msgId)).size).toBe(total);
    for (const m of got) {
      const c = parse(m);
      expect(m.msgId).toMatch(/^evt_/);
      expect(m.body.startsWith(`{"id":"${m.msgId}",`)).toBe(true);
      expect(m.subject).toBe(`e2e_${RUN}.public.items.${c.operation.toLowerCase()}`);
      expect(m.header('content-type')).toBe('application/json');
      // The body as the daemon wrote it: a bigint beyond 2^53 exact.
      if (c.operation !== 'DELETE') expect(m.body).toContain('"big":9007199254740993');
    }
    const expected = (id: number) => ['INSERT:0', 'UPDATE:1', 'UPDATE:2', 'UPDATE:3', ...(id <= 5 ? ['DELETE:3'] : [])];
    const order = perRow(got.map(parse));
    for (let id = 1; id <= rows; id++) expect(order.get(id)).toEqual(expected(id));

    // Binary CloudEvents: the attributes are NATS headers, the body the original payload's data.
    const ce = await readStream(binary);
    expect(new Set(ce.map((m) => m.msgId))).toEqual(new Set(got.map((m) => m.msgId)));
    for (const m of ce) {
      expect(m.subject).toBe(`e2e_ce_${RUN}.items`);
      expect(m.header('ce-id')).toBe(m.msgId);
      expect(m.header('ce-specversion')).toBe('1.0');
      expect(m.header('ce-type')).toMatch(/^com\.app-db-listener\.row\.(inserted|updated|deleted)$/);
      expect(m.header('content-type')).toBe('application/json');
    }

    // Batched: still one NATS message per event, each row in order.
    const b = await readStream(batched);
    expect(b.map((m) => m.msgId).sort()).toEqual(got.map((m) => m.msgId).sort());
    const batchedOrder = perRow(b.map(parse));
    for (let id = 1; id <= rows; id++) expect(batchedOrder.get(id)).toEqual(expected(id));
  });

  // A broker away for 30 s: failed attempts, the outage detected and probed, changes
  // written meanwhile, all delivered after.
  it('nothing lost with the broker gone for 30 s: attempts fail, the outage is probed, every change arrives once, in order, after it', async () => {
    await driver.exec('CREATE TABLE outage (id integer PRIMARY KEY, v integer NOT NULL)');
    const stream = `OUTAGE_${RUN}`;
    await makeStream(stream, [`outage_${RUN}.>`]);
    const proxy = await startTcpProxy(NATS_PORT);
    proxies.push(proxy);
    const d = await startDaemon(
      'outage',
      natsEntry('outage', `nats://127.0.0.1:${proxy.port}`, `outage_${RUN}.{table}`, ['timeout: 1', 'retry_count: 1000', 'retry_delay: 0.2', 'retry_max_delay: 1']),
    );
    const failedAt: number[] = [];
    let downAt: number | undefined;
    let up = false;
    d.bus.on('delivery:failed', () => void failedAt.push(Date.now()));
    d.bus.on('endpoint:down', () => void (downAt = Date.now()));
    d.bus.on('endpoint:up', () => void (up = true));
    // Attempts in flight when the outage was detected end within the timeout (1 s): a
    // failure later than that is an attempt made while down, a probe.
    const probesFailed = () => (downAt === undefined ? 0 : failedAt.filter((t) => t > downAt! + 1_000).length);

    for (let id = 1; id <= 10; id++) await driver.exec('INSERT INTO outage (id, v) VALUES (?, 0)', [id]);
    await waitUntil(async () => (await streamCount(stream)) === 10, 15_000, 'the first 10 changes before the outage');

    const cutAt = performance.now();
    await proxy.cut();
    for (let v = 1; v <= 3; v++) for (let id = 1; id <= 10; id++) await driver.exec('UPDATE outage SET v = ? WHERE id = ?', [v, id]);
    for (let id = 11; id <= 20; id++) await driver.exec('INSERT INTO outage (id, v) VALUES (?, 0)', [id]);
    // The outage is detected, then probed twice, each probe failing.
    await waitUntil(() => probesFailed() >= 2, 20_000, () => `the outage and two failed probes (${failedAt.length} failures, down: ${downAt !== undefined})`);
    // Gone for BROKER_OUTAGE_MS in all (30 s), the daemon probing it meanwhile.
    await waitUntil(() => performance.now() - cutAt >= BROKER_OUTAGE_MS, BROKER_OUTAGE_MS + 10_000, 'the broker gone for 30 s');
    expect(await streamCount(stream)).toBe(10);
    expect(await driver.journalCount('outage')).toBe(40); // every change written meanwhile waits in the journal
    await proxy.restore();

    await waitUntil(async () => (await streamCount(stream)) >= 50, AFTER_OUTAGE_MS, 'every change after the outage');
    await waitUntil(async () => (await driver.journalCount('outage')) === 0, 10_000, 'the journal to empty');
    expect(up).toBe(true);
    const got = await readStream(stream);
    expect(got).toHaveLength(50);
    expect(new Set(got.map((m) => m.msgId)).size).toBe(50);
    for (const m of got) expect(parse(m).id).toBe(m.msgId);
    const order = perRow(got.map(parse));
    for (let id = 1; id <= 10; id++) expect(order.get(id)).toEqual(['INSERT:0', 'UPDATE:1', 'UPDATE:2', 'UPDATE:3']);
    for (let id = 11; id <= 20; id++) expect(order.get(id)).toEqual(['INSERT:0']);
    expect(await driver.deadLetterCount('outage')).toBe(0);
  }, BROKER_OUTAGE_MS + AFTER_OUTAGE_MS + 30_000);

  it("a repeat is a no-op: kill -9 between the publishes and their outcome writes, restart: some events published twice, the stream holds each once", async () => {
    const poolSize = 10;
    const total = 200;
    await driver.exec('CREATE TABLE killed (id integer PRIMARY KEY)');
    const stream = `KILLED_${RUN}`;
    await makeStream(stream, [`killed_${RUN}.>`]);
    // A plain subscriber sees every publish, the repeats JetStream drops included.
    const published = new Map<string, number>();
    admin.subscribe(`killed_${RUN}.>`, {
      callback: (_err, m) => {
        const id = m.headers?.get('Nats-Msg-Id') ?? '';
        published.set(id, (published.get(id) ?? 0) + 1);
      },
    });
    await admin.flush();
    const yaml = driver.configYaml({
      webhookUrl: 'http://127.0.0.1:9/unused',
      tables: ['killed'],
      noWebhook: true,
      poolSize,
      pollInterval: 0.1,
      extraYaml: 'destinations:\n' + natsEntry('killed', `nats://127.0.0.1:${NATS_PORT}`, `killed_${RUN}.{table}`),
    });
    const configPath = writeTempConfig(yaml);
    const cli = () => {
      const p = spawnCli(['run', '--config', configPath], configPath);
      children.push(p);
      return p;
    };

    const first = cli();
    await first.ready();
    // The outcome writes wait on a lock of the test's: the daemon publishes, cannot record it.
    const hold = await driver.holdClaimedEvents('killed');
    let heldAtKill: Set<string>;
    try {
      await driver.exec(`INSERT INTO killed (id) SELECT g FROM generate_series(1, ${total}) g`);
      await waitUntil(
        async () => {
          await hold.lockMore();
          const sent = new Set([...published.keys()].map(journalIdOf));
          return (await driver.claimedIds('killed')).filter((id) => sent.has(id)).length >= poolSize;
        },
        30_000,
        () => `${poolSize} events published with their outcome unwritten (published ${published.size})`,
        5,
      );
      first.child.kill('SIGKILL');
      expect(await first.exited).toEqual({ code: null, signal: 'SIGKILL' });
      heldAtKill = new Set(await driver.claimedIds('killed'));
    } finally {
      await hold.release();
    }

    const second = cli();
    await second.ready();
    await waitUntil(async () => (await driver.journalCount('killed')) === 0, 60_000, 'the restarted daemon to deliver the rest');
    second.child.kill('SIGTERM');
    expect(await second.exited).toEqual({ code: 0, signal: null });

    const stored = await readStream(stream);
    expect(stored).toHaveLength(total);
    expect(new Set(stored.map((m) => m.msgId)).size).toBe(total);
    const repeated = [...published].filter(([, n]) => n > 1).map(([id]) => id);
    expect(repeated.length).toBeGreaterThan(0);
    // Only what the killed daemon held (published, outcome unwritten) went out twice.
    expect(repeated.filter((id) => !heldAtKill.has(journalIdOf(id)))).toEqual([]);
    expect([...published.values()].reduce((a, n) => a + n, 0)).toBe(total + repeated.length);
    expect(await driver.deadLetterCount('killed')).toBe(0);
  });
});

describe('nats sink', () => {
  it('a repeated event id is a success and stored once; names cannot add subject tokens or wildcards; content type and format headers travel', async () => {
    const stream = `SINK_${RUN}`;
    await makeStream(stream, [`sink_${RUN}.>`]);
    const sink = openNats(`nats://127.0.0.1:${NATS_PORT}`, `sink_${RUN}.{schema}.{table}.{operation}`);
    const m = message({ schema: 'my.schema', table: 'a*b >c', operation: 'update', contentType: 'application/json; charset=utf-8', headers: { 'ce-id': 'x%20y' } });
    expect((await sink.send([m])).map((r) => r.kind)).toEqual(['success']);
    expect((await sink.send([m])).map((r) => r.kind)).toEqual(['success']);
    const got = await readStream(stream);
    expect(got).toHaveLength(1);
    expect(got[0]!.subject).toBe(`sink_${RUN}.my_schema.a_b__c.update`);
    expect(got[0]!.msgId).toBe(m.eventId);
    expect(got[0]!.body).toBe(m.body);
    expect(got[0]!.header('content-type')).toBe('application/json; charset=utf-8');
    expect(got[0]!.header('ce-id')).toBe('x%20y');
  });

  it("refusals: too large for the stream or the server is dead; a full stream is a retry counted against the endpoint", async () => {
    await makeStream(`SMALL_${RUN}`, [`refuse_${RUN}.small.>`], { max_msg_size: 512 });
    await makeStream(`FULL_${RUN}`, [`refuse_${RUN}.full.>`], { max_msgs: 1, discard: DiscardPolicy.New });
    await jsm.jetstream().publish(`refuse_${RUN}.full.t`, 'filler');
    const sink = openNats(`nats://127.0.0.1:${NATS_PORT}`, `refuse_${RUN}.{schema}.{table}`);
    const [tooLarge, full, beyondMaxPayload, fits] = await sink.send([
      message({ schema: 'small', body: `{"pad":"${'x'.repeat(1_000)}"}` }),
      message({ schema: 'full' }),
      message({ schema: 'small', body: `{"pad":"${'x'.repeat(1_100_000)}"}` }),
      message({ schema: 'small' }),
    ]);
    expect(tooLarge).toMatchObject({ kind: 'dead', status: 400 });
    expect(tooLarge!.kind === 'dead' && tooLarge!.error).toMatch(/^JETSTREAM_10054: /);
    expect(full).toMatchObject({ kind: 'retry', status: 503, endpointFailure: true });
    expect(full!.kind === 'retry' && full!.error).toMatch(/^JETSTREAM_10077: maximum messages exceeded/);
    expect(beyondMaxPayload).toMatchObject({ kind: 'dead' });
    expect(beyondMaxPayload!.kind === 'dead' && beyondMaxPayload!.error).toMatch(/^MAX_PAYLOAD: .*max_payload \(\d+ bytes\)/);
    // The others of the same batch are unaffected.
    expect(fits!.kind).toBe('success');
    expect(await streamCount(`SMALL_${RUN}`)).toBe(1);
  });

  it('create_stream: the stream is made at first use (file storage), and made again for the next attempt when it was deleted', async () => {
    const stream = `MADE_${RUN}`;
    streams.add(stream);
    const sink = openNats(`nats://127.0.0.1:${NATS_PORT}`, `made_${RUN}.{table}`, [`create_stream: { name: ${stream}, subjects: ["made_${RUN}.>"] }`]);
    expect((await sink.send([message()]))[0]!.kind).toBe('success');
    const info = await jsm.streams.info(stream);
    expect(info.config.storage).toBe(StorageType.File);
    expect(info.config.subjects).toEqual([`made_${RUN}.>`]);
    await jsm.streams.delete(stream);
    const [lost] = await sink.send([message()]);
    expect(lost).toMatchObject({ kind: 'retry', endpointFailure: true });
    expect(lost!.kind === 'retry' && lost!.error).toMatch(new RegExp(`^NO_STREAM: no JetStream stream takes subject made_${RUN}\\.t: .*destinations\\[0\\]\\.create_stream .*making stream ${stream} again`));
    const again = message();
    await waitUntil(async () => (await sink.send([again]))[0]!.kind === 'success', 5_000, 'a send to succeed once the stream is made again');
    expect((await readStream(stream)).map((m) => m.msgId)).toEqual([again.eventId]);
  });

  it("doctor: ok with a reachable server once create_stream made the stream; not ok with a wrong port, the fix naming the destination's key", async () => {
    const stream = `DOCTOR_${RUN}`;
    streams.add(stream);
    const closedPort = await freePort();
    const cfg = parseConfig(
      `database:\n  url: "postgres://u@127.0.0.1/db"\n  table: t\ndestinations:\n` +
        natsEntry('good', `nats://127.0.0.1:${NATS_PORT}`, `doctor_${RUN}.{schema}.{table}`, [`create_stream: { name: ${stream}, subjects: ["doctor_${RUN}.>"] }`]) +
        natsEntry('bad', `nats://127.0.0.1:${closedPort}`, `doctor_${RUN}.{schema}.{table}`, ['timeout: 1']),
    ).config;
    const good = await checkDestination(cfg.destinations[0]!, 'destinations[0]', 'good');
    expect(good).toMatchObject({ status: 'ok' });
    expect(good.detail).toContain(`stream ${stream} created`);
    expect(good.detail).toContain(`subjects like doctor_${RUN}.*.* go to stream ${stream}`);
    expect((await jsm.streams.info(stream)).config.storage).toBe(StorageType.File);
    const again = await checkDestination(cfg.destinations[0]!, 'destinations[0]', 'good');
    expect(again.detail).toContain(`stream ${stream} exists (left as it is`);
    expect(await streamCount(stream)).toBe(0); // a check never publishes

    const bad = await checkDestination(cfg.destinations[1]!, 'destinations[1]', 'bad');
    expect(bad).toMatchObject({ status: 'problem' });
    expect(bad.detail).toContain(`ECONNREFUSED: cannot connect to the NATS server at nats://127.0.0.1:${closedPort}`);
    expect(bad.fix).toContain('destinations[1].url');
  });

  describe('TLS and credentials (a private nats-server)', () => {
    let pki: TestPki | undefined;
    const servers: PrivateNats[] = [];
    afterAll(async () => {
      await Promise.all(servers.map((s) => s.close()));
      pki?.cleanup();
    });

    it("tls:// with ca_file and the URL's user and password: checked and delivered; a wrong password or an untrusted certificate: not ok, and nothing said holds a password", async () => {
      pki = makeTestPki();
      expect(pki, 'openssl makes the test certificates').toBeDefined();
      const password = `pw-${randomBytes(8).toString('hex')}`;
      const wrong = `nope-${randomBytes(8).toString('hex')}`;
      const server = await startPrivateNats(['--user', 'adl', '--pass', password, '--tls', '--tlscert', pki!.serverCertFile, '--tlskey', pki!.serverKeyFile]);
      servers.push(server);
      const subject = `tls_${RUN}.{table}`;
      const created = [`create_stream: { name: TLS_${RUN}, subjects: ["tls_${RUN}.>"] }`];

      const good = openNats(`tls://adl:${password}@localhost:${server.port}`, subject, [`ca_file: ${JSON.stringify(pki!.caFile)}`, ...created]);
      const up = await good.check();
      expect(up).toMatchObject({ ok: true });
      expect(up.detail).toContain(`stream TLS_${RUN} created`);
      expect((await good.send([message()]))[0]!.kind).toBe('success');

      const refused = openNats(`tls://adl:${wrong}@localhost:${server.port}`, subject, [`ca_file: ${JSON.stringify(pki!.caFile)}`]);
      const denied = await refused.check();
      expect(denied).toMatchObject({ ok: false });
      expect(denied.detail).toMatch(/^AUTHORIZATION: /);
      expect(denied.fix).toContain('destinations[0].url');
      const [r] = await refused.send([message()]);
      expect(r).toMatchObject({ kind: 'retry', endpointFailure: true });

      const untrusted = openNats(`tls://adl:${password}@localhost:${server.port}`, subject, [`ca_file: ${JSON.stringify(pki!.otherCaFile)}`]);
      const notTrusted = await untrusted.check();
      expect(notTrusted).toMatchObject({ ok: false });
      expect(notTrusted.fix).toContain('destinations[0].ca_file');

      // A CA file that cannot be read: an outcome and a check saying which key, not a crash.
      const unreadable = openNats(`tls://adl:${password}@localhost:${server.port}`, subject, ['ca_file: "/nonexistent/ca.pem"']);
      const noCa = await unreadable.check();
      expect(noCa).toMatchObject({ ok: false });
      expect(noCa.detail).toMatch(/^CA_FILE: .*destinations\[0\]\.ca_file/);
      expect((await unreadable.send([message()]))[0]).toMatchObject({ kind: 'retry', endpointFailure: true });

      for (const said of [up, denied, notTrusted, r, { d: [good.description, refused.description, untrusted.description] }]) {
        expect(JSON.stringify(said)).not.toContain(password);
        expect(JSON.stringify(said)).not.toContain(wrong);
      }
    });

    it('a token as the URL user name', async () => {
      const token = `tok-${randomBytes(8).toString('hex')}`;
      const server = await startPrivateNats(['--auth', token]);
      servers.push(server);
      const sink = openNats(`nats://${token}@127.0.0.1:${server.port}`, `tok_${RUN}.{table}`, [`create_stream: { name: TOK_${RUN}, subjects: ["tok_${RUN}.>"] }`]);
      expect(await sink.check()).toMatchObject({ ok: true });
      expect((await sink.send([message()]))[0]!.kind).toBe('success');
      const wrong = openNats(`nats://not-${token}@127.0.0.1:${server.port}`, `tok_${RUN}.{table}`);
      expect(await wrong.check()).toMatchObject({ ok: false });
    });
  });
});

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

interface PrivateNats {
  readonly port: number;
  close(): Promise<void>;
}

const NATS_SERVER = ['/usr/sbin/nats-server', '/usr/local/bin/nats-server', '/usr/bin/nats-server'].find((p) => existsSync(p)) ?? 'nats-server';

/** A nats-server of this test's own (JetStream in a temporary directory) on a free loopback port. */
async function startPrivateNats(args: readonly string[]): Promise<PrivateNats> {
  const dir = await mkdtemp(path.join(tmpdir(), 'adl-nats-'));
  const child: ChildProcess = spawn(NATS_SERVER, ['-a', '127.0.0.1', '-p', '-1', '-js', '-sd', dir, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  spawned.add(child);
  let out = '';
  child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const port = await waitUntil(
    () => (child.exitCode !== null ? Promise.reject(new Error(`nats-server exited: ${out}`)) : /Listening for client connections on [\d.]+:(\d+)/.exec(out)?.[1]),
    10_000,
    () => `nats-server to listen; output so far:\n${out}`,
  );
  return {
    port: Number(port),
    async close() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
      spawned.delete(child);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
