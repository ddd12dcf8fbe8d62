/** Log lines name the destination's transport: the original's "Webhook …" for webhooks, the broker for the others. */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { JournalEvent } from '../../src/journal/types.js';
import { DaemonEventBus } from '../../src/observability/events.js';
import { logDaemonEvents } from '../../src/observability/log-events.js';

function capture() {
  const lines: Array<{ msg: string; destination?: string }> = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l) as { msg: string });
      done();
    },
  });
  return { log: pino({ level: 'info' }, stream), lines };
}

const event = (destination: string): JournalEvent => ({
  destination, id: '1', eventId: 'evt_a_1', op: 'INSERT', schema: 'public', table: 'orders',
  timestamp: '2026-12-04T00:00:00.000000Z', createdAtMs: 0, newRow: '{}', oldRow: null, attempts: 1, claimToken: 't',
});

describe('delivery log lines', () => {
  it('say Webhook for webhooks and the broker for broker destinations', async () => {
    const { log, lines } = capture();
    const bus = new DaemonEventBus();
    logDaemonEvents(bus, log, new Map([['default', 'webhook'], ['stream', 'nats'], ['queue', 'rabbitmq']]));
    bus.emit('delivery:succeeded', { event: event('default'), status: 200, durationMs: 1, latencyMs: 2 });
    bus.emit('delivery:succeeded', { event: event('stream'), status: 200, durationMs: 1, latencyMs: 2 });
    bus.emit('delivery:failed', { event: event('queue'), error: 'AMQP_NACK', durationMs: 1, retryInMs: 100, counted: true });
    bus.emit('endpoint:down', { destination: 'stream', consecutiveFailures: 5, lastError: 'TIMEOUT' });
    bus.emit('endpoint:up', { destination: 'default', downForMs: 10 });
    log.flush();
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines.map((l) => l.msg)).toEqual([
      'Webhook delivered: INSERT on table orders',
      'NATS delivered: INSERT on table orders',
      'RabbitMQ failed: INSERT on table orders, will retry',
      'NATS server is down (destination stream): its delivery paused, probing with one event at a growing interval; retries are not consumed',
      'Webhook endpoint is back (destination default): delivery resumed',
    ]);
  });
});
