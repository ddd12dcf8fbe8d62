/**
 * The sink conformance suite against the NATS JetStream sink and the machine's real
 * nats-server (127.0.0.1:4222), reached through a TCP proxy so a case can take the
 * server away (cut) or make it stop answering (hang) without touching the shared server.
 * What was accepted is read back from the stream this file creates (a unique name per
 * run, deleted at the end).
 *
 * The behaviours are JetStream states: unavailable = no stream takes the subject (the
 * stream is deleted), refuse = the stream is full and discards new messages.
 */
import { randomBytes } from 'node:crypto';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { DiscardPolicy, JetStreamApiError, jetstreamManager, StorageType, type JetStreamManager, type StreamConfig } from '@nats-io/jetstream';
import { startTcpProxy } from '../support/tcp-proxy.js';
import { openConformanceSink, sinkSuite, type AcceptedMessage, type SinkHarness } from './sink-suite.js';

const NATS_PORT = 4222;

const STREAM_NOT_FOUND = 10059;
const isNotFound = (err: unknown) => err instanceof JetStreamApiError && err.code === STREAM_NOT_FOUND;

/** Every message of the stream (none when there is no stream), in stream order: its Nats-Msg-Id and its body as text. */
async function readStream(jsm: JetStreamManager, stream: string): Promise<AcceptedMessage[]> {
  let state;
  try {
    ({ state } = await jsm.streams.info(stream));
  } catch (err) {
    if (isNotFound(err)) return [];
    throw err;
  }
  const out: AcceptedMessage[] = [];
  if (state.messages === 0) return out;
  for (let seq = state.first_seq; seq <= state.last_seq; seq++) {
    const m = await jsm.streams.getMessage(stream, { seq });
    if (m !== null) out.push({ eventIds: [m.header.get('Nats-Msg-Id')], body: new TextDecoder().decode(m.data) });
  }
  return out;
}

async function natsSinkHarness(): Promise<SinkHarness> {
  const run = randomBytes(4).toString('hex');
  const stream = `CONFORMANCE_${run}`;
  const prefix = `conformance_${run}`;
  const password = `pw-${randomBytes(8).toString('hex')}`;
  const admin: NatsConnection = await connect({ servers: `127.0.0.1:${NATS_PORT}` });
  const jsm = await jetstreamManager(admin);
  const proxy = await startTcpProxy(NATS_PORT);

  const drop = async () => {
    try {
      await jsm.streams.delete(stream);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  };
  const make = async (extra: Partial<StreamConfig> = {}) => {
    await drop();
    await jsm.streams.add({ name: stream, subjects: [`${prefix}.>`], storage: StorageType.Memory, ...extra });
  };
  // A full stream that discards new messages: it refuses every publish.
  const full = async () => {
    await make({ max_msgs: 1, discard: DiscardPolicy.New });
    await jsm.jetstream().publish(`${prefix}.filler`, 'filler');
  };
  await make();
  let change: Promise<void> = Promise.resolve();

  return {
    refusedIs: 'retry',
    batches: true,
    secret: password,
    open: (o) => openConformanceSink(['type: nats', `url: "nats://conformance:${password}@127.0.0.1:${proxy.port}"`, `subject: "${prefix}.{schema}.{table}"`], o),
    accepted: () => readStream(jsm, stream),
    behave(b) {
      if (b === 'hang') return proxy.hang();
      change = b === 'ok' ? make() : b === 'refuse' ? full() : drop();
      return change;
    },
    stop: () => proxy.cut(),
    start: () => proxy.restore(),
    async reset() {
      await change.catch(() => undefined);
      change = make();
      await change;
    },
    async close() {
      await drop().catch(() => undefined);
      await admin.close();
      await proxy.close();
    },
  };
}

sinkSuite(natsSinkHarness, 'nats');
