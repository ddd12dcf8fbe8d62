/**
 * The MQTT destination against the machine's Mosquitto (127.0.0.1:1883): what a PUBACK
 * reason code comes to, the message as a subscriber sees it (topic, payload, user
 * properties), batches larger than the broker's Receive Maximum, check(), TLS, and the
 * daemon end to end from PostgreSQL, including the broker gone for a while. Topics are
 * unique per run, messages are never retained and sessions are clean, so nothing is
 * left on the shared broker.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { createServer, connect as netConnect, type AddressInfo, type Server } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { connectAsync, type IPublishPacket, type MqttClient } from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import type { RunningDaemon } from '../../src/app.js';
import { parseConfig } from '../../src/config/load.js';
import { classifyPuback, openMqttSink } from '../../src/delivery/mqtt.js';
import type { Sink, SinkMessage } from '../../src/delivery/sink.js';
import { openSink } from '../../src/delivery/sinks.js';
import { postgresDriver, type Driver } from '../conformance/drivers.js';
import { makeTestPki } from '../support/certs.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { AFTER_OUTAGE_MS, BROKER_OUTAGE_MS, waitUntil } from '../support/wait.js';

const execFileAsync = promisify(execFile);

const MQTT_PORT = Number(process.env.MQTT_PORT_TEST ?? 1883);
const RUN = `adl-it-${randomBytes(6).toString('hex')}`;

interface Received {
  readonly topic: string;
  readonly body: string;
  readonly eventId: string;
  readonly packet: IPublishPacket;
}

interface Subscriber {
  readonly messages: Received[];
  close(): Promise<void>;
}

const subscribers: MqttClient[] = [];
const sinks: Sink[] = [];
afterAll(async () => {
  await Promise.all(sinks.map((s) => s.close()));
  await Promise.all(subscribers.map((c) => c.endAsync()));
});

/** A subscriber (MQTT 5, QoS 1) on `filter`, straight to the broker. */
async function subscribe(filter: string): Promise<Subscriber> {
  const client = await connectAsync({ host: '127.0.0.1', port: MQTT_PORT, protocolVersion: 5, clientId: `${RUN}-sub-${randomBytes(3).toString('hex')}`, reconnectPeriod: 0 });
  subscribers.push(client);
  const messages: Received[] = [];
  client.on('message', (topic, payload, packet) => {
    const id = packet.properties?.userProperties?.['event-id'];
    messages.push({ topic, body: payload.toString('utf8'), eventId: Array.isArray(id) ? id.join(',') : String(id), packet });
  });
  await client.subscribeAsync(filter, { qos: 1 });
  return { messages, close: () => client.endAsync() };
}

/** A sink opened as the daemon opens it, from a `destinations:` entry. */
function mqttSink(lines: readonly string[]): Sink {
  const yaml = `database:\n  url: "postgres://u@127.0.0.1/db"\n  table: t\ndestinations:\n  - name: it\n    type: mqtt\n` + lines.map((l) => `    ${l}\n`).join('');
  const sink = openSink(parseConfig(yaml).config.destinations[0]!, 'destinations[0]', 'test');
  sinks.push(sink);
  return sink;
}

let seq = 0;
function message(over: Partial<SinkMessage> = {}): SinkMessage {
  const eventId = `evt_${RUN}_${++seq}`;
  return { eventId, body: `{"id":"${eventId}","n":${seq},"big":9007199254740993,"price":12.50}`, contentType: 'application/json', headers: {}, schema: 'public', table: 'items', operation: 'insert', ...over };
}

/**
 * Packet types of an MQTT byte stream as it passes (the fixed header's high nibble: 3
 * PUBLISH, 4 PUBACK), from chunks cut anywhere.
 */
function packetTypes(onType: (type: number) => void): (chunk: Buffer) => void {
  let buffered = Buffer.alloc(0);
  return (chunk) => {
    buffered = Buffer.concat([buffered, chunk]);
    for (;;) {
      // Remaining length: a variable byte integer after the first byte.
      let length = 0;
      let i = 1;
      for (let shift = 0; i < buffered.length; i++, shift += 7) {
        length += (buffered[i]! & 0x7f) << shift;
        if ((buffered[i]! & 0x80) === 0) break;
      }
      if (i >= buffered.length || buffered.length < i + 1 + length) return;
      onType(buffered[0]! >> 4);
      buffered = buffered.subarray(i + 1 + length);
    }
  };
}

interface CountingProxy {
  readonly port: number;
  /** PUBLISH packets the client sent. */
  published(): number;
  /** The most PUBLISH packets sent and not yet acknowledged at once. */
  maxOutstanding(): number;
  close(): Promise<void>;
}

/** A proxy in front of the broker (or of another proxy) that counts the PUBLISH packets as they pass. */
async function countingProxy(targetPort = MQTT_PORT): Promise<CountingProxy> {
  let outstanding = 0;
  let max = 0;
  let published = 0;
  const server = createServer((client) => {
    const upstream = netConnect(targetPort, '127.0.0.1');
    const sent = packetTypes((type) => {
      if (type !== 3) return;
      published++;
      max = Math.max(max, ++outstanding);
    });
    const answered = packetTypes((type) => {
      if (type === 4) outstanding--;
    });
    client.on('data', (d: Buffer) => {
      sent(d);
      upstream.write(d);
    });
    upstream.on('data', (d: Buffer) => {
      answered(d);
      client.write(d);
    });
    for (const [a, b] of [[client, upstream], [upstream, client]] as const) {
      a.on('error', () => b.destroy());
      a.on('close', () => b.destroy());
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    published: () => published,
    maxOutstanding: () => max,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const s: Server = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

describe('mqtt: what a PUBACK reason code comes to', () => {
  const table = [
    [0x00, 'success', undefined],
    [0x10, 'success', undefined], // no matching subscribers: the broker took it
    [0x80, 'retry', true],
    [0x83, 'retry', true],
    [0x87, 'retry', true], // not authorized: every event to the topic alike, until the ACL changes
    [0x97, 'retry', true],
    [0x91, 'retry', false], // packet identifier in use: our client's bookkeeping
    [0x90, 'dead', undefined],
    [0x95, 'dead', undefined],
    [0x99, 'dead', undefined],
  ] as const;
  it.each(table.map(([code, kind, endpointFailure]) => ({ hex: code.toString(16).padStart(2, '0'), code, kind, endpointFailure })))('0x$hex: $kind', ({ code, kind, endpointFailure }) => {
    const o = classifyPuback(code);
    expect(o.kind).toBe(kind);
    if (o.kind === 'retry') expect(o.endpointFailure).toBe(endpointFailure);
    if (o.kind !== 'success') expect(o.error).toMatch(/^PUBACK 0x[0-9A-F]{2}: \S/);
  });
});

describe('mqtt sink against Mosquitto', () => {
  it('publishes the body byte for byte, the event id and the format headers as user properties, on the topic its template gives', async () => {
    const prefix = `${RUN}/msg`;
    const sub = await subscribe(`${prefix}/#`);
    const sink = mqttSink([`url: "mqtt://127.0.0.1:${MQTT_PORT}"`, `topic: "${prefix}/{schema}/{table}/{operation}"`]);
    const plain = message({ table: 'odd+name/with #wild cards', operation: 'update' });
    const ce = message({ contentType: 'application/json', headers: { 'ce-id': 'x1', 'ce-type': 'com.example.row.updated', 'ce-specversion': '1.0' }, operation: 'delete' });
    const results = await sink.send([plain, ce]);
    expect(results.map((r) => r.kind)).toEqual(['success', 'success']);
    await waitUntil(() => sub.messages.length >= 2, 5_000, 'both messages');
    const [a, b] = sub.messages;
    // A name cannot add a level or a wildcard: +, #, / and spaces become _.
    expect(a!.topic).toBe(`${prefix}/public/odd_name_with__wild_cards/update`);
    expect(b!.topic).toBe(`${prefix}/public/items/delete`);
    expect(a!.body).toBe(plain.body);
    expect(a!.eventId).toBe(plain.eventId);
    expect(a!.packet.qos).toBe(1);
    expect(a!.packet.retain).toBe(false);
    expect(a!.packet.properties).toMatchObject({ contentType: 'application/json', payloadFormatIndicator: true });
    expect(b!.packet.properties?.userProperties).toEqual({ 'event-id': ce.eventId, 'ce-id': 'x1', 'ce-type': 'com.example.row.updated', 'ce-specversion': '1.0' });
  });

  it("keeps no cache of numbers as Buffers (mqtt-packet's 65,536 of them, ~7 MB for the life of the process)", async () => {
    // In a process of its own: the cache is a module singleton, which this file's own
    // subscribers (MQTT.js with its defaults) fill.
    const dist = new URL('../../dist/', import.meta.url).href;
    const script = `
      import { createRequire } from 'node:module';
      import { parseConfig } from '${dist}config/load.js';
      import { openSink } from '${dist}delivery/sinks.js';
      const yaml = 'database:\\n  url: "postgres://u@127.0.0.1/db"\\n  table: t\\ndestinations:\\n  - name: m\\n    type: mqtt\\n    url: "mqtt://127.0.0.1:${MQTT_PORT}"\\n    topic: "${RUN}/nocache/{table}"\\n';
      const sink = openSink(parseConfig(yaml).config.destinations[0], 'destinations[0]', 'test');
      const [r] = await sink.send([{ eventId: 'evt_x_1', body: '{}', contentType: 'application/json', headers: {}, schema: 'public', table: 't', operation: 'insert' }]);
      await sink.close();
      const numbers = createRequire('${dist}delivery/mqtt.js')('mqtt-packet/numbers.js');
      console.log(JSON.stringify({ kind: r.kind, cached: Object.keys(numbers.cache).length }));`;
    const { stdout } = await execFileAsync(process.execPath, ['--input-type=module', '-e', script]);
    expect(JSON.parse(stdout)).toEqual({ kind: 'success', cached: 0 });
  });

  it("a batch larger than the broker's Receive Maximum (Mosquitto: 20): pipelined up to it and no further, every message acknowledged and delivered, in order", async () => {
    const prefix = `${RUN}/batch`;
    const sub = await subscribe(`${prefix}/#`);
    // Mosquitto does not enforce its Receive Maximum on QoS 1; other brokers disconnect: it is counted on the wire.
    const proxy = await countingProxy();
    const sink = mqttSink([`url: "mqtt://127.0.0.1:${proxy.port}"`, `topic: "${prefix}/{table}"`, 'batch: { max_events: 500, max_wait: 0.01 }']);
    try {
      const messages = Array.from({ length: 250 }, () => message());
      const results = await sink.send(messages);
      expect(results.filter((r) => r.kind === 'success')).toHaveLength(250);
      expect(proxy.maxOutstanding()).toBe(20);
      await waitUntil(() => sub.messages.length >= 250, 10_000, 'all 250 messages');
      expect(sub.messages.map((m) => m.eventId)).toEqual(messages.map((m) => m.eventId));
    } finally {
      // The proxy's close waits for its connections.
      await sink.close();
      await proxy.close();
    }
  });

  it('a connection lost under a publish: a retry at once, not at the timeout, and never re-sent behind our back on the next connection', async () => {
    const prefix = `${RUN}/lost`;
    const sub = await subscribe(`${prefix}/#`);
    const proxy = await startTcpProxy(MQTT_PORT);
    // Counts what the sink sends, in front of the proxy that takes the broker away.
    const wire = await countingProxy(proxy.port);
    const sink = mqttSink([`url: "mqtt://127.0.0.1:${wire.port}"`, `topic: "${prefix}/{table}"`, 'timeout: 20']);
    try {
      expect((await sink.send([message()]))[0]!.kind).toBe('success');
      // The broker stops answering with the PUBLISH on its way, then the connection goes.
      proxy.hang();
      const lost = message();
      const pending = sink.send([lost]);
      await waitUntil(() => wire.published() === 2, 5_000, 'the PUBLISH to leave the sink');
      await proxy.cut();
      const [r] = await pending;
      expect(r).toMatchObject({ kind: 'retry', endpointFailure: true, error: expect.stringMatching(/^CONNECTION_LOST: /) as unknown });
      expect(r!.durationMs).toBeLessThan(5_000);
      // Back: the next message goes on a new connection, and the one reported lost is not sent with it.
      await proxy.restore();
      const next = message();
      await waitUntil(async () => (await sink.send([next]))[0]!.kind === 'success', 10_000, 'a send to succeed once the broker is back');
      await waitUntil(() => sub.messages.some((m) => m.eventId === next.eventId), 5_000, 'the message after the outage');
      expect(sub.messages.map((m) => m.eventId)).not.toContain(lost.eventId);
      expect(wire.published()).toBe(3);
    } finally {
      await sink.close();
      await wire.close();
      await proxy.close();
    }
  });

  it('a connection lost while publishes wait for a Receive Maximum slot: every one of them fails with the reason at once, none waits for its deadline', async () => {
    const prefix = `${RUN}/waiting`;
    const proxy = await startTcpProxy(MQTT_PORT);
    const wire = await countingProxy(proxy.port);
    const sink = mqttSink([`url: "mqtt://127.0.0.1:${wire.port}"`, `topic: "${prefix}/{table}"`, 'timeout: 60', 'batch: { max_events: 500, max_wait: 0.01 }']);
    try {
      expect((await sink.send([message()]))[0]!.kind).toBe('success');
      proxy.hang();
      const pending = sink.send(Array.from({ length: 60 }, () => message()));
      // 20 on the wire (Mosquitto's Receive Maximum), 40 waiting for a slot.
      await waitUntil(() => wire.published() === 21, 5_000, 'the first 20 PUBLISHes to leave the sink');
      await proxy.cut();
      const results = await pending;
      expect(results).toHaveLength(60);
      for (const r of results) expect(r).toMatchObject({ kind: 'retry', endpointFailure: true, error: expect.stringMatching(/^CONNECTION_LOST: /) as unknown });
      expect(wire.published()).toBe(21);
    } finally {
      await sink.close();
      await wire.close();
      await proxy.close();
    }
  });

  it('check: ok against the broker, not ok on a port nothing listens on; never a credential, never a message', async () => {
    const prefix = `${RUN}/check`;
    const sub = await subscribe(`${prefix}/#`);
    const user = `user-${randomBytes(6).toString('hex')}`;
    const password = `pw-${randomBytes(12).toString('hex')}`;
    const up = mqttSink([`url: "mqtt://${user}:${password}@127.0.0.1:${MQTT_PORT}"`, `topic: "${prefix}/{table}"`]);
    const down = mqttSink([`url: "mqtt://${user}:${password}@127.0.0.1:${await closedPort()}"`, `topic: "${prefix}/{table}"`, 'timeout: 2']);
    const ok = await up.check();
    expect(ok).toMatchObject({ ok: true });
    expect(ok.detail).toContain(`mqtt://127.0.0.1:${MQTT_PORT}`);
    const bad = await down.check();
    expect(bad.ok).toBe(false);
    expect(bad.detail).toMatch(/not reachable \(ECONNREFUSED/);
    expect(bad.fix).toContain('destinations[0].url');
    for (const said of [ok, bad, { up: up.description, down: down.description }]) {
      expect(JSON.stringify(said)).not.toContain(password);
      expect(JSON.stringify(said)).not.toContain(user);
    }
    // A publish after the checks is the first thing the subscriber sees.
    const m = message();
    expect((await up.send([m]))[0]!.kind).toBe('success');
    await waitUntil(() => sub.messages.length > 0, 5_000, 'the message after the checks');
    expect(sub.messages.map((x) => x.eventId)).toEqual([m.eventId]);
  });

  it('a topic template with a wildcard is refused when the sink opens, not sent to a broker that would drop the connection', () => {
    const yaml = `database:\n  url: "postgres://u@127.0.0.1/db"\n  table: t\ndestinations:\n  - name: it\n    type: mqtt\n    url: "mqtt://127.0.0.1:${MQTT_PORT}"\n    topic: "db/+/{table}"\n`;
    expect(() => openMqttSink(parseConfig(yaml).config.destinations[0]!, 'destinations[0]')).toThrow(/destinations\[0\]\.topic .* wildcard/);
  });

  it('mqtts: delivers through TLS with ca_file; a certificate no trusted CA signed is a retry, and check says so', async () => {
    const pki = makeTestPki();
    if (!pki) return; // no openssl on this machine
    // TLS ends here, in front of the real broker.
    const tlsServer = createTlsServer({ key: pki.serverKey, cert: pki.serverCert }, (client) => {
      const upstream = netConnect(MQTT_PORT, '127.0.0.1');
      client.pipe(upstream).pipe(client);
      for (const [a, b] of [[client, upstream], [upstream, client]] as const) {
        a.on('error', () => b.destroy());
        a.on('close', () => b.destroy());
      }
    });
    await new Promise<void>((resolve) => tlsServer.listen(0, '127.0.0.1', resolve));
    const port = (tlsServer.address() as AddressInfo).port;
    const prefix = `${RUN}/tls`;
    const trusted = mqttSink([`url: "mqtts://localhost:${port}"`, `ca_file: ${JSON.stringify(pki.caFile)}`, `topic: "${prefix}/{table}"`, 'timeout: 5']);
    const untrusted = mqttSink([`url: "mqtts://localhost:${port}"`, `ca_file: ${JSON.stringify(pki.otherCaFile)}`, `topic: "${prefix}/{table}"`, 'timeout: 5']);
    try {
      const sub = await subscribe(`${prefix}/#`);
      const m = message();
      expect((await trusted.send([m]))[0]!.kind).toBe('success');
      expect((await trusted.check()).ok).toBe(true);
      const [r] = await untrusted.send([message()]);
      expect(r).toMatchObject({ kind: 'retry', endpointFailure: true });
      expect(r!.kind === 'retry' ? r!.error : '').toMatch(/CERT|certificate/i);
      const c = await untrusted.check();
      expect(c.ok).toBe(false);
      expect(c.detail).toContain('TLS verification failed');
      expect(c.fix).toContain('destinations[0].ca_file');
      await waitUntil(() => sub.messages.length > 0, 5_000, 'the message sent over TLS');
      expect(sub.messages.map((x) => x.eventId)).toEqual([m.eventId]);
    } finally {
      // The TLS server's close waits for its connections.
      await Promise.all([trusted.close(), untrusted.close()]);
      await new Promise<void>((resolve) => tlsServer.close(() => resolve()));
      pki.cleanup();
    }
  });
});

describe('mqtt destination: the daemon end to end (PostgreSQL)', () => {
  let driver: Driver;
  const daemons: RunningDaemon[] = [];
  const proxies: TcpProxy[] = [];

  afterAll(async () => {
    await Promise.all(daemons.map((d) => d.stop(2_000)));
    await Promise.all(proxies.map((p) => p.close()));
    await driver?.drop();
  });

  async function start(table: string, lines: readonly string[]): Promise<RunningDaemon> {
    driver ??= await postgresDriver('mqtt_sink');
    const extraYaml = ['destinations:', '  - name: mqtt', '    type: mqtt', ...lines.map((l) => `    ${l}`)].join('\n') + '\n';
    const d = await driver.startDaemon({ webhookUrl: 'http://127.0.0.1:9/unused', tables: [table], noWebhook: true, extraYaml, pollInterval: 0.1 });
    daemons.push(d);
    return d;
  }

  interface Change {
    readonly operation: string;
    readonly id: number;
    readonly v: number;
  }

  /** A message's change, from its body (whose `id` must be the event id it carries). */
  function changeOf(m: Received): Change {
    expect(m.body.startsWith(`{"id":"${m.eventId}"`)).toBe(true);
    const body = JSON.parse(m.body) as { id: string; operation: string; data: { id: number; v: number } };
    expect(body.id).toBe(m.eventId);
    return { operation: body.operation, id: body.data.id, v: body.data.v };
  }

  /** Per row, the changes in the order they arrived. */
  function perRow(messages: readonly Received[]): Map<number, string[]> {
    const rows = new Map<number, string[]>();
    for (const m of messages) {
      const c = changeOf(m);
      rows.set(c.id, [...(rows.get(c.id) ?? []), `${c.operation}:${c.v}`]);
    }
    return rows;
  }

  const queued = async (table: string) =>
    Number((await driver.rows<{ n: string }>(`SELECT count(*) AS n FROM app_db_listener.deliveries WHERE destination = 'mqtt' AND table_name = ?`, [table]))[0]!.n);

  it('every change arrives once, each row in commit order, with its event id in the user property and the body, on the templated topic', async () => {
    const prefix = `${RUN}/e2e`;
    const sub = await subscribe(`${prefix}/#`);
    const table = 'mqtt+odd items';
    driver ??= await postgresDriver('mqtt_sink');
    await driver.exec(`CREATE TABLE ${driver.quote(table)} (id integer PRIMARY KEY, v integer NOT NULL, big bigint NOT NULL)`);
    await start(table, [`url: "mqtt://127.0.0.1:${MQTT_PORT}"`, `topic: "${prefix}/{schema}/{table}/{operation}"`, 'timeout: 5', 'retry_delay: 0.05', 'retry_max_delay: 0.2']);
    const t = driver.quote(table);
    for (let i = 1; i <= 20; i++) await driver.exec(`INSERT INTO ${t} (id, v, big) VALUES (?, 0, 9007199254740993)`, [i]);
    // Rows interleaved: an order per row only holds if the sink keeps it.
    for (let v = 1; v <= 3; v++) for (let i = 1; i <= 20; i++) await driver.exec(`UPDATE ${t} SET v = ? WHERE id = ?`, [v, i]);
    for (let i = 1; i <= 5; i++) await driver.exec(`DELETE FROM ${t} WHERE id = ?`, [i]);
    const total = 20 + 60 + 5;
    await waitUntil(() => sub.messages.length >= total, AFTER_OUTAGE_MS, () => `${total} messages (got ${sub.messages.length})`);
    await waitUntil(async () => (await queued(table)) === 0, 10_000, 'the queue to empty');

    expect(sub.messages).toHaveLength(total);
    expect(new Set(sub.messages.map((m) => m.eventId)).size).toBe(total);
    for (const m of sub.messages) {
      const c = changeOf(m);
      expect(m.topic).toBe(`${prefix}/public/mqtt_odd_items/${c.operation.toLowerCase()}`);
      expect(m.body).toContain('"big":9007199254740993');
      expect(m.packet.properties?.contentType).toBe('application/json');
    }
    const rows = perRow(sub.messages);
    for (let i = 1; i <= 20; i++) {
      const expected = ['INSERT:0', 'UPDATE:1', 'UPDATE:2', 'UPDATE:3', ...(i <= 5 ? ['DELETE:3'] : [])];
      expect(rows.get(i)).toEqual(expected);
    }
  });

  it('nothing lost with the broker gone for 30 s: retried while it is away, every change delivered once it is back, each row in order', async () => {
    // The breaker opens, its probes fail for 30 s, and nothing is dead-lettered or lost.
    const prefix = `${RUN}/outage`;
    const sub = await subscribe(`${prefix}/#`);
    const proxy = await startTcpProxy(MQTT_PORT);
    proxies.push(proxy);
    driver ??= await postgresDriver('mqtt_sink');
    const table = 'outage';
    const t = driver.quote(table);
    await driver.exec(`CREATE TABLE ${t} (id integer PRIMARY KEY, v integer NOT NULL)`);
    const daemon = await start(table, [
      `url: "mqtt://127.0.0.1:${proxy.port}"`,
      `topic: "${prefix}/{table}"`,
      'timeout: 1',
      'retry_count: 3',
      'retry_delay: 0.05',
      'retry_max_delay: 0.2',
    ]);
    const failures: Array<{ at: number; error: string }> = [];
    let downAt: number | undefined;
    daemon.bus.on('delivery:failed', ({ event, error }) => {
      if (event.destination === 'mqtt') failures.push({ at: Date.now(), error });
    });
    daemon.bus.on('endpoint:down', ({ destination }) => {
      if (destination === 'mqtt') downAt ??= Date.now();
    });
    /** Failed probes: the breaker sends its first one a second after it opened (those before were in flight already). */
    const probesFailed = () => (downAt === undefined ? 0 : failures.filter((f) => f.at >= downAt! + 900).length);

    // Connected and delivering first, so the outage takes a live connection away.
    await driver.exec(`INSERT INTO ${t} (id, v) VALUES (0, 0)`);
    await waitUntil(() => sub.messages.length >= 1, 10_000, 'the first change');

        await proxy.cut();
    const cutAt = Date.now();
    for (let i = 1; i <= 10; i++) await driver.exec(`INSERT INTO ${t} (id, v) VALUES (?, 0)`, [i]);
    for (let v = 1; v <= 2; v++) for (let i = 1; i <= 10; i++) await driver.exec(`UPDATE ${t} SET v = ? WHERE id = ?`, [v, i]);
    // Down, then two probes failed after it (the breaker waits 1 s, then 2 s).
    await waitUntil(() => probesFailed() >= 2, 20_000, () => `the breaker open and two probes failed (${failures.length} failures)`);
    // Gone for BROKER_OUTAGE_MS in all (30 s), the daemon probing it meanwhile.
    await waitUntil(() => Date.now() - cutAt >= BROKER_OUTAGE_MS, BROKER_OUTAGE_MS + 10_000, 'the broker gone for 30 s');
    expect(sub.messages).toHaveLength(1);
    expect(failures.map((f) => f.error).filter((e) => !/^(ECONNREFUSED|CONNECTION_LOST): /.test(e))).toEqual([]);

    await proxy.restore();
    const restoredAt = Date.now();
    const total = 1 + 10 + 20;
    await waitUntil(() => sub.messages.length >= total, AFTER_OUTAGE_MS, () => `${total} messages (got ${sub.messages.length})`);
    await waitUntil(async () => (await queued(table)) === 0, 10_000, 'the queue to empty');
    expect(restoredAt - cutAt).toBeGreaterThanOrEqual(3_000);

    // Nothing was in flight when the broker went, so nothing comes twice.
    expect(sub.messages).toHaveLength(total);
    expect(new Set(sub.messages.map((m) => m.eventId)).size).toBe(total);
    expect(await driver.deadLetterCount(table)).toBe(0);
    const rows = perRow(sub.messages);
    expect(rows.get(0)).toEqual(['INSERT:0']);
    for (let i = 1; i <= 10; i++) expect(rows.get(i)).toEqual(['INSERT:0', 'UPDATE:1', 'UPDATE:2']);
  }, BROKER_OUTAGE_MS + AFTER_OUTAGE_MS + 30_000);
});
