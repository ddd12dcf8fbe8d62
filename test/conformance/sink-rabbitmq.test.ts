/**
 * The sink conformance suite against the RabbitMQ sink and the machine's real broker
 * (127.0.0.1:5672), reached through a loopback TCP proxy so a case can take the broker
 * away (cut) or make it stop answering (hang) without touching the shared server.
 *
 * The endpoint's behaviours are the broker's own answers:
 * - ok: a queue bound to the exchange for every routing key takes the messages;
 * - refuse: no queue bound, so the mandatory message is returned (a retry, by design);
 * - unavailable: the only queue bound is full (max-length 0, overflow reject-publish),
 *   so the broker nacks (a retry counted as the endpoint failing);
 * - hang: the proxy holds connections open and forwards nothing.
 */
import { randomBytes } from 'node:crypto';
import { connect, type Channel, type ChannelModel } from 'amqplib';
import { startTcpProxy } from '../support/tcp-proxy.js';
import { openConformanceSink, sinkSuite, type AcceptedMessage, type EndpointBehaviour, type SinkHarness } from './sink-suite.js';

const BROKER = 'amqp://guest:guest@127.0.0.1:5672/';

async function rabbitMqSinkHarness(): Promise<SinkHarness> {
  const run = randomBytes(4).toString('hex');
  const exchange = `adl.conformance.${run}`;
  const acceptedQueue = `${exchange}.accepted`;
  const fullQueue = `${exchange}.full`;
  const proxy = await startTcpProxy(5672);
  // The harness's own connection goes straight to the broker: cut and hang are for the sink.
  const admin: ChannelModel = await connect(BROKER);
  admin.on('error', () => undefined);
  const ch: Channel = await admin.createChannel();
  await ch.assertExchange(exchange, 'topic', { durable: true });
  await ch.assertQueue(acceptedQueue, { exclusive: true });
  await ch.assertQueue(fullQueue, { exclusive: true, maxLength: 0, overflow: 'reject-publish' });

  const bound = { accepted: false, full: false };
  const bind = async (queue: 'accepted' | 'full', on: boolean) => {
    if (bound[queue] === on) return;
    const name = queue === 'accepted' ? acceptedQueue : fullQueue;
    await (on ? ch.bindQueue(name, exchange, '#') : ch.unbindQueue(name, exchange, '#'));
    bound[queue] = on;
  };
  const apply = async (b: EndpointBehaviour) => {
    await bind('accepted', b === 'ok' || b === 'hang');
    await bind('full', b === 'unavailable');
  };
  // Bindings take a round trip: changes are applied one after another.
  let settled: Promise<void> = apply('ok');

  const received: AcceptedMessage[] = [];
  /** Takes what the queue holds: after a confirm, a routed persistent message is in it. */
  const drain = async () => {
    for (;;) {
      const m = await ch.get(acceptedQueue, { noAck: true });
      if (m === false) return;
      received.push({ eventIds: [String(m.properties.messageId)], body: m.content.toString('utf8') });
    }
  };

  return {
    refusedIs: 'retry',
    batches: true,
    secret: 'guest',
    open: (o) => openConformanceSink(['type: rabbitmq', `url: "amqp://guest:guest@127.0.0.1:${proxy.port}/"`, `exchange: "${exchange}"`], o),
    async accepted() {
      await settled;
      await drain();
      return [...received];
    },
    behave(b) {
      if (b === 'hang') proxy.hang();
      settled = settled.then(() => apply(b));
      return settled;
    },
    stop: () => proxy.cut(),
    start: () => proxy.restore(),
    async reset() {
      settled = settled.then(() => apply('ok'));
      await settled;
      await ch.purgeQueue(acceptedQueue);
      received.length = 0;
    },
    async close() {
      await settled.catch(() => undefined);
      await ch.deleteQueue(acceptedQueue);
      await ch.deleteQueue(fullQueue);
      await ch.deleteExchange(exchange);
      await admin.close();
      await proxy.close();
    },
  };
}

sinkSuite(rabbitMqSinkHarness, 'rabbitmq');
