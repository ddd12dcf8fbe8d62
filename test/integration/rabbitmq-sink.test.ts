/**
 * The RabbitMQ sink against the machine's real broker (127.0.0.1:5672): the exchange
 * declared when missing and used as it is when present, what a message carries, one
 * outcome per message of a batch (ack, nack, returned), check() and its fixes, a broker
 * that stops answering; then the daemon end to end, and an outage of the broker during
 * which nothing is lost. Every exchange and queue is named after this run and deleted.
 */
import { randomBytes } from 'node:crypto';
import { connect as connectTcp, createServer, type AddressInfo } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { connect, type Channel, type ChannelModel, type ConsumeMessage, type GetMessage } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningDaemon } from '../../src/app.js';
import { parseConfig } from '../../src/config/load.js';
import type { Sink, SinkMessage } from '../../src/delivery/sink.js';
import { openSink } from '../../src/delivery/sinks.js';
import { postgresDriver, type Driver } from '../conformance/drivers.js';
import { makeTestPki } from '../support/certs.js';
import { hasOpenssl } from '../support/tls.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { AFTER_OUTAGE_MS, BROKER_OUTAGE_MS, waitUntil } from '../support/wait.js';

const BROKER = 'amqp://guest:guest@127.0.0.1:5672/';
const RUN = randomBytes(4).toString('hex');
const BIG = '9007199254740993';

let admin: ChannelModel;
let ch: Channel;
const exchanges = new Set<string>();
const queues = new Set<string>();
const sinks: Sink[] = [];

beforeAll(async () => {
  admin = await connect(BROKER);
  admin.on('error', () => undefined);
  ch = await admin.createChannel();
});

afterAll(async () => {
  await Promise.all(sinks.map((s) => s.close()));
  for (const q of queues) await ch.deleteQueue(q);
  for (const x of exchanges) await ch.deleteExchange(x);
  await admin?.close();
});

/** A name of this run, remembered for the clean-up. */
function exchangeName(label: string): string {
  const name = `adl.it.${RUN}.${label}`;
  exchanges.add(name);
  return name;
}

async function queueBoundTo(exchange: string, pattern: string, args: { maxLength?: number; overflow?: string } = {}): Promise<string> {
  const q = (await ch.assertQueue(`${exchange}.q${queues.size}`, { exclusive: true, ...args })).queue;
  queues.add(q);
  await ch.bindQueue(q, exchange, pattern);
  return q;
}

/** What a queue holds now: after a confirm, a routed persistent message is in it. */
async function drain(queue: string): Promise<GetMessage[]> {
  const out: GetMessage[] = [];
  for (;;) {
    const m = await ch.get(queue, { noAck: true });
    if (m === false) return out;
    out.push(m);
  }
}

/** Whether the broker has the exchange, asked on a channel of its own (a 404 closes the channel). */
async function exchangeExists(name: string): Promise<boolean> {
  const probe = await admin.createChannel();
  probe.on('error', () => undefined);
  try {
    await probe.checkExchange(name);
    await probe.close();
    return true;
  } catch {
    return false;
  }
}

/** Declares the exchange on a throw-away channel: resolves when it matches what exists, rejects with the broker's 406 otherwise. */
async function declareOn(name: string, type: string, durable: boolean): Promise<void> {
  const probe = await admin.createChannel();
  probe.on('error', () => undefined);
  await probe.assertExchange(name, type, { durable });
  await probe.close();
}

interface SinkOptions {
  readonly url?: string;
  readonly exchange: string;
  readonly routingKey?: string;
  readonly timeout?: number;
  readonly batch?: boolean;
  readonly caFile?: string;
}

/** A sink as the daemon opens it, from a parsed `destinations:` entry. */
function rabbitSink(o: SinkOptions): Sink {
  const yaml =
    `database:\n  url: "postgres://u@127.0.0.1/db"\n  table: t\n` +
    `destinations:\n  - name: it\n    type: rabbitmq\n    url: ${JSON.stringify(o.url ?? BROKER)}\n    timeout: ${o.timeout ?? 5}\n` +
    `    exchange: ${JSON.stringify(o.exchange)}\n` +
    (o.routingKey !== undefined ? `    routing_key: ${JSON.stringify(o.routingKey)}\n` : '') +
    (o.batch ? `    batch: { max_events: 10, max_wait: 0.01 }\n` : '') +
    (o.caFile !== undefined ? `    ca_file: ${JSON.stringify(o.caFile)}\n` : '');
  const sink = openSink(parseConfig(yaml).config.destinations[0]!, 'destinations[0]', 'test');
  sinks.push(sink);
  return sink;
}

let seq = 0;
function message(table: string, extra: Partial<SinkMessage> = {}): SinkMessage {
  const eventId = `evt_rabbit_${RUN}_${++seq}`;
  return {
    eventId,
    body: `{"id":"${eventId}","n":${seq},"big":${BIG},"price":12.50}`,
    contentType: 'application/json',
    headers: {},
    schema: 'public',
    table,
    operation: 'insert',
    ...extra,
  };
}

describe('rabbitmq sink', () => {
  it('declares a missing exchange (durable, topic); a returned message is a retry; what a routed message carries', async () => {
    const exchange = exchangeName('declared');
    expect(await exchangeExists(exchange)).toBe(false);
    const sink = rabbitSink({ exchange, routingKey: 'cdc.{schema}.{table}.{operation}' });
    // The check says so, and declares nothing.
    const before = await sink.check();
    expect(before).toMatchObject({ ok: true });
    expect(before.detail).toContain('does not exist yet');
    expect(await exchangeExists(exchange)).toBe(false);

    // The first send declares it; no queue is bound yet, so the broker returns the message.
    const [returned] = await sink.send([message('order items.v2')]);
    expect(returned).toMatchObject({ kind: 'retry', endpointFailure: false });
    expect(returned!.kind === 'retry' && returned!.error).toMatch(/^AMQP_NO_ROUTE: .*"cdc\.public\.order_items_v2\.insert"/);
    expect(await exchangeExists(exchange)).toBe(true);
    // Declared durable topic: the same declaration is accepted, a transient or direct one is refused (406).
    await declareOn(exchange, 'topic', true);
    await expect(declareOn(exchange, 'topic', false)).rejects.toThrow(/PRECONDITION/);
    await expect(declareOn(exchange, 'direct', true)).rejects.toThrow(/PRECONDITION/);
    expect((await sink.check()).detail).toContain('exists');

    // A queue bound by topic pattern: the name's dot and space became `_`, one word of the key.
    const q = await queueBoundTo(exchange, 'cdc.public.*.insert');
    const headers = { 'ce-id': 'abc', 'ce-type': 'com.app-db-listener.row.inserted', 'ce-specversion': '1.0' };
    const m = message('order items.v2', { headers, contentType: 'application/json' });
    const startedAt = Math.floor(Date.now() / 1000);
    expect((await sink.send([m]))[0]).toMatchObject({ kind: 'success' });
    const [got, ...more] = await drain(q);
    expect(more).toEqual([]);
    expect(got!.fields.routingKey).toBe('cdc.public.order_items_v2.insert');
    // The body byte for byte: no number went through a float, nothing re-serialised.
    expect(got!.content.equals(Buffer.from(m.body, 'utf8'))).toBe(true);
    expect(got!.properties).toMatchObject({
      messageId: m.eventId,
      contentType: 'application/json',
      deliveryMode: 2,
      type: 'insert',
      appId: 'app-db-listener',
      headers,
    });
    expect(got!.properties.timestamp).toBeGreaterThanOrEqual(startedAt);
    expect(got!.properties.timestamp).toBeLessThanOrEqual(Math.floor(Date.now() / 1000));
  });

  it('an existing exchange is used as it is, whatever its type', async () => {
    const exchange = exchangeName('fanout');
    await ch.assertExchange(exchange, 'fanout', { durable: false });
    const q = await queueBoundTo(exchange, '');
    const sink = rabbitSink({ exchange });
    const m = message('anything');
    expect((await sink.send([m]))[0]).toMatchObject({ kind: 'success' });
    expect((await drain(q)).map((g) => g.properties.messageId)).toEqual([m.eventId]);
    // Not redeclared: still the transient fanout it was.
    await declareOn(exchange, 'fanout', false);
  });

  it('a batch: one broker message per event, pipelined, and one result per message (ack, nack, returned) in order', async () => {
    const exchange = exchangeName('batch');
    await ch.assertExchange(exchange, 'topic', { durable: true });
    const routed = await queueBoundTo(exchange, 'public.routed.*');
    // Full at once, refusing more: the broker nacks what it routes there.
    await queueBoundTo(exchange, 'public.full.*', { maxLength: 0, overflow: 'reject-publish' });
    const sink = rabbitSink({ exchange, batch: true });
    const batch = [message('routed'), message('full'), message('nowhere'), message('routed'), message('routed')];
    const results = await sink.send(batch);
    expect(results.map((r) => r.kind)).toEqual(['success', 'retry', 'retry', 'success', 'success']);
    expect(results[1]).toMatchObject({ endpointFailure: true, error: expect.stringMatching(/^AMQP_NACK: /) });
    expect(results[2]).toMatchObject({ endpointFailure: false, error: expect.stringMatching(/^AMQP_NO_ROUTE: /) });
    const got = await drain(routed);
    expect(got.map((g) => g.properties.messageId)).toEqual([batch[0]!.eventId, batch[3]!.eventId, batch[4]!.eventId]);
    expect(got.map((g) => g.content.toString('utf8'))).toEqual([batch[0]!.body, batch[3]!.body, batch[4]!.body]);
  });

  it('check: ok with the broker; not ok with a wrong port or a wrong password, with a fix naming the key and no password said', async () => {
    const exchange = exchangeName('check');
    await ch.assertExchange(exchange, 'topic', { durable: true });
    const up = await rabbitSink({ exchange }).check();
    expect(up.ok).toBe(true);
    expect(up.detail).toMatch(/RabbitMQ .*exchange "adl\.it\.[0-9a-f]+\.check" exists \(no event was sent\)/);

    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const wrongPort = await rabbitSink({ exchange, url: `amqp://guest:guest@127.0.0.1:${port}/`, timeout: 2 }).check();
    expect(wrongPort.ok).toBe(false);
    expect(wrongPort.detail).toContain('ECONNREFUSED');
    expect(wrongPort.fix).toContain('destinations[0].url');
    expect(wrongPort.fix).toContain(`127.0.0.1:${port}`);

    const password = `wrong-${randomBytes(6).toString('hex')}`;
    const sink = rabbitSink({ exchange, url: `amqp://guest:${password}@127.0.0.1:5672/` });
    const refused = await sink.check();
    expect(refused.ok).toBe(false);
    expect(refused.detail).toContain('ACCESS_REFUSED');
    expect(refused.fix).toMatch(/user name and password in destinations\[0\]\.url/);
    const [failed] = await sink.send([message('x')]);
    expect(failed).toMatchObject({ kind: 'retry', endpointFailure: true, error: expect.stringMatching(/^AMQP_ACCESS_REFUSED: /) });
    for (const said of [up, wrongPort, refused, failed, { description: sink.description }]) {
      expect(JSON.stringify(said)).not.toContain(password);
      expect(JSON.stringify(said)).not.toContain('guest');
    }
  });

  it('the exchange deleted under the sink: a retry, and the next connection declares it again', async () => {
    const exchange = exchangeName('deleted');
    await ch.assertExchange(exchange, 'topic', { durable: true });
    const sink = rabbitSink({ exchange });
    const q = await queueBoundTo(exchange, '#');
    expect((await sink.send([message('t')]))[0]!.kind).toBe('success');
    await ch.deleteExchange(exchange);
    // The broker closes the channel (404): the message is not confirmed, so it is kept.
    const [lost] = await sink.send([message('t')]);
    expect(lost).toMatchObject({ kind: 'retry', endpointFailure: true, error: expect.stringMatching(/^AMQP_CLOSED: .*NOT_FOUND/) });
    // The same sink connects again and declares it; nothing is bound to the new one yet.
    const [again] = await sink.send([message('t')]);
    expect(again).toMatchObject({ kind: 'retry', error: expect.stringMatching(/^AMQP_NO_ROUTE: /) });
    await declareOn(exchange, 'topic', true);
    await ch.bindQueue(q, exchange, '#');
    const m = message('t');
    expect((await sink.send([m]))[0]!.kind).toBe('success');
    expect((await drain(q)).map((g) => g.properties.messageId)).toContain(m.eventId);
  });

  it.skipIf(!hasOpenssl())('amqps: the broker trusted through ca_file; a certificate of another CA or an unreadable ca_file is a failed check and a retry', async () => {
    const pki = makeTestPki()!;
    // TLS in front of the broker (it has no TLS listener here), as a TLS-terminating proxy would be.
    const sockets = new Set<{ destroy(): void }>();
    const tls: TlsServer = createTlsServer({ key: pki.serverKey, cert: pki.serverCert }, (client) => {
      const upstream = connectTcp(5672, '127.0.0.1');
      sockets.add(client).add(upstream);
      client.pipe(upstream).pipe(client);
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
    });
    await new Promise<void>((resolve) => tls.listen(0, '127.0.0.1', resolve));
    const url = `amqps://guest:guest@127.0.0.1:${(tls.address() as AddressInfo).port}/`;
    try {
      const exchange = exchangeName('tls');
      await ch.assertExchange(exchange, 'topic', { durable: true });
      const q = await queueBoundTo(exchange, '#');
      const trusted = rabbitSink({ exchange, url, caFile: pki.caFile });
      expect((await trusted.check()).ok).toBe(true);
      const m = message('t');
      expect((await trusted.send([m]))[0]!.kind).toBe('success');
      expect((await drain(q)).map((g) => g.properties.messageId)).toEqual([m.eventId]);

      const other = rabbitSink({ exchange, url, caFile: pki.otherCaFile });
      const untrusted = await other.check();
      expect(untrusted.ok).toBe(false);
      expect(untrusted.fix).toContain('destinations[0].ca_file');
      expect((await other.send([message('t')]))[0]).toMatchObject({ kind: 'retry', endpointFailure: true });

      const missing = rabbitSink({ exchange, url, caFile: `${pki.dir}/no-such-ca.pem` });
      const unreadable = await missing.check();
      expect(unreadable.ok).toBe(false);
      expect(unreadable.fix).toContain('destinations[0].ca_file');
      expect((await missing.send([message('t')]))[0]).toMatchObject({ kind: 'retry', endpointFailure: true, error: expect.stringMatching(/^CA_FILE: /) });
      expect(await drain(q)).toEqual([]);
    } finally {
      const closed = new Promise<void>((resolve) => tls.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
      pki.cleanup();
    }
  });

  it('a broker that stops answering on an open connection: a timeout, close() bounded, and the same sink delivers once it answers again', async () => {
    const exchange = exchangeName('hang');
    await ch.assertExchange(exchange, 'topic', { durable: true });
    const q = await queueBoundTo(exchange, '#');
    const proxy = await startTcpProxy(5672);
    try {
      const sink = rabbitSink({ exchange, url: `amqp://guest:guest@127.0.0.1:${proxy.port}/`, timeout: 0.5 });
      expect((await sink.send([message('t')]))[0]!.kind).toBe('success');
      proxy.hang();
      const [hung] = await sink.send([message('t')]);
      expect(hung).toMatchObject({ kind: 'retry', endpointFailure: true, error: expect.stringMatching(/^TIMEOUT: no confirm/) });
      expect(hung!.durationMs).toBeGreaterThanOrEqual(450);
      await proxy.restore();
      const m = message('t');
      await waitUntil(async () => (await sink.send([m]))[0]!.kind === 'success', 10_000, 'a send to succeed once the broker answers again');
      const ids = (await drain(q)).map((g) => g.properties.messageId as string);
      expect(ids).toContain(m.eventId);

      // Closing while a publish waits on a broker that does not answer: both end within the timeout (and a bit).
      proxy.hang();
      const pending = sink.send([message('t')]);
      const started = Date.now();
      await sink.close();
      expect(Date.now() - started).toBeLessThan(2_000);
      expect((await pending)[0]!.kind).toBe('retry');
    } finally {
      await proxy.close();
    }
  });
});

/** A message as the daemon's consumer read it. */
interface Delivery {
  readonly id: string;
  readonly routingKey: string;
  readonly type: string;
  readonly body: string;
  readonly json: { id: string; operation: string; data: { id: number; v: number; big: unknown } };
}

function delivery(m: ConsumeMessage): Delivery {
  const body = m.content.toString('utf8');
  return { id: String(m.properties.messageId), routingKey: m.fields.routingKey, type: String(m.properties.type), body, json: JSON.parse(body) as Delivery['json'] };
}

/** Consumes a queue into an array, acknowledging each message. */
async function consume(queue: string): Promise<Delivery[]> {
  const got: Delivery[] = [];
  await ch.consume(queue, (m) => {
    if (m === null) return;
    got.push(delivery(m));
    ch.ack(m);
  });
  return got;
}

/** The first arrival of each event id, in arrival order (the sink is at least once). */
function firstArrivals(got: readonly Delivery[]): Delivery[] {
  const seen = new Map<string, Delivery>();
  for (const d of got) {
    const earlier = seen.get(d.id);
    if (earlier) expect(d.body).toBe(earlier.body);
    else seen.set(d.id, d);
  }
  return [...seen.values()];
}

/** Each row's changes, as (operation, v), in the order they arrived. */
function perRow(got: readonly Delivery[]): Map<number, string[]> {
  const rows = new Map<number, string[]>();
  for (const d of got) rows.set(d.json.data.id, [...(rows.get(d.json.data.id) ?? []), `${d.json.operation} ${d.json.data.v}`]);
  return rows;
}

describe('rabbitmq destination, end to end', () => {
  let driver: Driver;
  const daemons: RunningDaemon[] = [];

  beforeAll(async () => {
    driver = await postgresDriver('rabbitmq_sink');
  });
  afterAll(async () => {
    await Promise.all(daemons.map((d) => d.stop(2_000)));
    await driver?.drop();
  });

  async function start(table: string, destination: string): Promise<RunningDaemon> {
    await driver.exec(`CREATE TABLE ${driver.quote(table)} (id integer PRIMARY KEY, v integer NOT NULL, big bigint NOT NULL)`);
    const d = await driver.startDaemon({
      webhookUrl: 'http://127.0.0.1:9/unused',
      tables: [table],
      noWebhook: true,
      pollInterval: 0.1,
      extraYaml: `destinations:\n  - name: broker\n    type: rabbitmq\n${destination}`,
    });
    daemons.push(d);
    return d;
  }

  it('every change arrives, each row in commit order, with its event id as message id and in the body, routed by the template', async () => {
    const exchange = exchangeName('e2e');
    await ch.assertExchange(exchange, 'topic', { durable: true });
    const all = await consume(await queueBoundTo(exchange, 'cdc.public.items.*'));
    const deletes = await consume(await queueBoundTo(exchange, 'cdc.*.*.delete'));
    await start(
      'items',
      `    url: ${JSON.stringify(BROKER)}\n    exchange: ${JSON.stringify(exchange)}\n    routing_key: "cdc.{schema}.{table}.{operation}"\n    timeout: 5\n`,
    );
    const t = driver.quote('items');
    for (let i = 1; i <= 20; i++) await driver.exec(`INSERT INTO ${t} (id, v, big) VALUES (?, 0, ${BIG})`, [i]);
    for (let v = 1; v <= 2; v++) for (let i = 1; i <= 20; i++) await driver.exec(`UPDATE ${t} SET v = ? WHERE id = ?`, [v, i]);
    for (let i = 1; i <= 5; i++) await driver.exec(`DELETE FROM ${t} WHERE id = ?`, [i]);

    await waitUntil(() => new Set(all.map((d) => d.id)).size >= 65 && deletes.length >= 5, 30_000, () => `65 changes (got ${all.length}) and 5 deletes (got ${deletes.length})`);
    const got = firstArrivals(all);
    expect(got).toHaveLength(65);
    for (const d of got) {
      expect(d.id).toMatch(/^evt_/);
      expect(d.body.startsWith(`{"id":"${d.id}"`)).toBe(true);
      expect(d.routingKey).toBe(`cdc.public.items.${d.json.operation.toLowerCase()}`);
      expect(d.type).toBe(d.json.operation.toLowerCase());
      expect(d.body).toMatch(/"big": ?9007199254740993\b/);
    }
    const rows = perRow(got);
    expect(rows.size).toBe(20);
    for (const [id, changes] of rows) {
      const expected = ['INSERT 0', 'UPDATE 1', 'UPDATE 2', ...(id <= 5 ? ['DELETE 2'] : [])];
      expect(changes, `row ${id}`).toEqual(expected);
    }
    expect(deletes.map((d) => d.json.data.id).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5]);
    await waitUntil(async () => (await driver.journalCount('items')) === 0, 10_000, 'the journal to empty');
  });

  it('nothing lost with the broker gone for 30 s: retries while it is away, every change delivered as written once it is back', async () => {
    const exchange = exchangeName('outage');
    await ch.assertExchange(exchange, 'topic', { durable: true });
    const all = await consume(await queueBoundTo(exchange, '#'));
    const proxy: TcpProxy = await startTcpProxy(5672);
    try {
      const daemon = await start(
        'outage',
        `    url: "amqp://guest:guest@127.0.0.1:${proxy.port}/"\n    exchange: ${JSON.stringify(exchange)}\n    timeout: 1\n` +
          `    retry_count: 3\n    retry_delay: 0.05\n    retry_max_delay: 0.2\n`,
      );
      // Failed probes: failures once the destination is down, past the attempts that were in
      // flight when it went down (refused at once by the cut proxy); its first probe waits 1 s.
      let failures = 0;
      let downAt: number | undefined;
      let probesFailed = 0;
      daemon.bus.on('delivery:failed', () => {
        failures++;
        if (downAt !== undefined && Date.now() - downAt > 500) probesFailed++;
      });
      daemon.bus.on('endpoint:down', () => (downAt ??= Date.now()));
      const t = driver.quote('outage');
      await driver.exec(`INSERT INTO ${t} (id, v, big) VALUES (1, 0, ${BIG})`);
      await waitUntil(() => all.length >= 1, 15_000, 'the first change, before the outage');

            await proxy.cut();
      const cutAt = Date.now();
      for (let i = 2; i <= 11; i++) await driver.exec(`INSERT INTO ${t} (id, v, big) VALUES (?, 0, ${BIG})`, [i]);
      for (let v = 1; v <= 2; v++) for (let i = 1; i <= 11; i++) await driver.exec(`UPDATE ${t} SET v = ? WHERE id = ?`, [v, i]);
      // Away long enough for the destination to be taken for down (5 failures in a row)
      // and for two of its probes to fail too.
      await waitUntil(() => probesFailed >= 2, 20_000, () => `the destination down and 2 failed probes (failures so far: ${failures})`);
      // Gone for BROKER_OUTAGE_MS in all (30 s), the daemon probing it meanwhile.
      await waitUntil(() => Date.now() - cutAt >= BROKER_OUTAGE_MS, BROKER_OUTAGE_MS + 10_000, 'the broker gone for 30 s');
      expect(all).toHaveLength(1);
      const downForMs = Date.now() - cutAt;

      await proxy.restore();
      await waitUntil(() => new Set(all.map((d) => d.id)).size >= 33, AFTER_OUTAGE_MS, () => `33 changes after the outage of ${downForMs} ms (got ${new Set(all.map((d) => d.id)).size})`);
      const got = firstArrivals(all);
      expect(got).toHaveLength(33);
      for (const [id, changes] of perRow(got)) expect(changes, `row ${id}`).toEqual(['INSERT 0', 'UPDATE 1', 'UPDATE 2']);
      for (const d of got) {
        expect(d.body.startsWith(`{"id":"${d.id}"`)).toBe(true);
        expect(d.body).toMatch(/"big": ?9007199254740993\b/);
      }
      // The failures were the endpoint's: none used up an event's retries into the dead letters.
      expect(await driver.deadLetterCount('outage')).toBe(0);
      await waitUntil(async () => (await driver.journalCount('outage')) === 0, 10_000, 'the journal to empty');
    } finally {
      await proxy.close();
    }
  }, BROKER_OUTAGE_MS + AFTER_OUTAGE_MS + 30_000);
});
