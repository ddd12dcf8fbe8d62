/**
 * The broker sinks' drains: one backlog delivered to a single destination of each
 * type (the webhook beside them, measured the same way), against the brokers on this
 * machine. A drain ends when the journal has nothing left (every event acknowledged
 * and its outcome written) and the broker holds every message.
 */
import { randomBytes } from 'node:crypto';
import type { BenchDatabase } from './databases.js';
import { now, until } from './lib.js';
import { Daemon, type DaemonOptions, type Receiver } from './processes.js';

export const SINK_TYPES = ['webhook', 'nats', 'rabbitmq', 'redis', 'mqtt'] as const;
export type SinkType = (typeof SINK_TYPES)[number];

/** One broker's destination for the drain, and how to count what it holds. */
interface BrokerTarget {
  /** The `destinations:` entry, as YAML lines. */
  readonly yaml: string;
  /** Messages the broker holds. */
  count(): Promise<number>;
  close(): Promise<void>;
}

export interface SinkDrain {
  readonly type: SinkType;
  readonly events: number;
  /** From the daemon's start to the last outcome written, events/s. */
  readonly perSecond: number;
  readonly seconds: number;
  readonly peakRssMb: number;
}

export async function sinkDrain(
  db: BenchDatabase,
  receiver: Receiver,
  type: SinkType,
  n: number,
  options: (extra: DaemonOptions) => DaemonOptions,
): Promise<SinkDrain> {
  await db.reset();
  await db.backlog(n);
  const target = await openTarget(type, receiver);
  try {
    if (type === 'webhook') await receiver.reset({ record: true });
    const started = now();
    const daemon = await Daemon.start(db, receiver, options({ onlyDestination: target.yaml }));
    try {
      await until(async () => (await db.pending()) === 0 && (await target.count()) >= n, Math.max(180_000, n * 3), `${n} events through the ${type} sink`, 50);
    } finally {
      await daemon.stop();
    }
    const seconds = (now() - started) / 1000;
    return { type, events: n, perSecond: n / seconds, seconds, peakRssMb: daemon.peakRssMb() };
  } finally {
    await target.close();
  }
}

async function openTarget(type: SinkType, receiver: Receiver): Promise<BrokerTarget> {
  const tag = `bench_${randomBytes(4).toString('hex')}`;
  const entry = (lines: string) => `  - name: ${type}\n    type: ${type}\n    timeout: 10\n${lines}`;
  switch (type) {
    case 'webhook':
      return { yaml: `  - name: webhook\n    url: "${receiver.url}"\n    timeout: 10\n`, count: () => receiver.distinct(), close: async () => undefined };
    case 'nats': {
      const { connect } = await import('@nats-io/transport-node');
      const { jetstreamManager } = await import('@nats-io/jetstream');
      const nc = await connect({ servers: '127.0.0.1:4222' });
      const jsm = await jetstreamManager(nc);
      const stream = tag.toUpperCase();
      return {
        yaml: entry(`    url: "nats://127.0.0.1:4222"\n    subject: "${tag}.{table}"\n    create_stream: { name: ${stream}, subjects: ["${tag}.>"] }\n`),
        count: async () => (await jsm.streams.info(stream).catch(() => undefined))?.state.messages ?? 0,
        close: async () => {
          await jsm.streams.delete(stream).catch(() => undefined);
          await nc.close();
        },
      };
    }
    case 'rabbitmq': {
      const amqp = await import('amqplib');
      const conn = await amqp.connect('amqp://guest:guest@127.0.0.1:5672/');
      const ch = await conn.createChannel();
      const exchange = `${tag}.changes`;
      await ch.assertExchange(exchange, 'topic', { durable: true });
      await ch.assertQueue(tag, { durable: true });
      await ch.bindQueue(tag, exchange, '#');
      return {
        yaml: entry(`    url: "amqp://guest:guest@127.0.0.1:5672/"\n    exchange: "${exchange}"\n`),
        count: async () => (await ch.checkQueue(tag)).messageCount,
        close: async () => {
          await ch.deleteQueue(tag).catch(() => undefined);
          await ch.deleteExchange(exchange).catch(() => undefined);
          await conn.close();
        },
      };
    }
    case 'redis': {
      const { createClient } = await import('@redis/client');
      const client = createClient({ url: 'redis://127.0.0.1:6379/0' });
      await client.connect();
      const key = `${tag}:items`;
      return {
        yaml: entry(`    url: "redis://127.0.0.1:6379/0"\n    stream: "${tag}:{table}"\n`),
        count: () => client.xLen(key),
        close: async () => {
          await client.del(key).catch(() => undefined);
          await client.close();
        },
      };
    }
    case 'mqtt': {
      const mqtt = await import('mqtt');
      const sub = await mqtt.connectAsync('mqtt://127.0.0.1:1883', { protocolVersion: 5, clientId: `${tag}_sub`, clean: true });
      let received = 0;
      sub.on('message', () => received++);
      await sub.subscribeAsync(`${tag}/#`, { qos: 1 });
      return {
        yaml: entry(`    url: "mqtt://127.0.0.1:1883"\n    topic: "${tag}/{schema}/{table}"\n`),
        count: () => Promise.resolve(received),
        close: () => sub.endAsync(),
      };
    }
  }
}
