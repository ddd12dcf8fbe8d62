/**
 * The sink conformance suite against the MQTT sink and the machine's Mosquitto
 * (127.0.0.1:1883), reached through a loopback TCP proxy that the harness cuts or hangs,
 * so the shared broker keeps serving the other test files.
 *
 * What the broker accepted is read by a subscriber of this run's topics (MQTT 5, QoS 1).
 * To know it has everything the sink was acknowledged for, it publishes a marker of its
 * own and waits for it to come back: Mosquitto forwards a message to its subscribers
 * before it acknowledges it, and sends each subscriber its messages in order.
 *
 * A refusal: Mosquitto as configured here takes every publish except under `$SYS/`,
 * which it keeps for itself (PUBACK 0x87 Not authorized, a retry for the sink). The suite
 * opens a sink before it asks for a refusal, so the sink behind the one `open()` returns
 * is opened (by openSink, as the daemon opens it) at its first use, with a topic under
 * `$SYS/` when the behaviour then is 'refuse'.
 */
import { randomBytes } from 'node:crypto';
import { connectAsync, type IPublishPacket } from 'mqtt';
import type { Sink } from '../../src/delivery/sink.js';
import { startTcpProxy } from '../support/tcp-proxy.js';
import { waitUntil } from '../support/wait.js';
import { openConformanceSink, sinkSuite, type AcceptedMessage, type EndpointBehaviour, type SinkHarness } from './sink-suite.js';

const MQTT_PORT = Number(process.env.MQTT_PORT_TEST ?? 1883);

/** The `event-id` user property of a received message. */
function eventIdOf(packet: IPublishPacket): string {
  const id = packet.properties?.userProperties?.['event-id'];
  return Array.isArray(id) ? id.join(',') : String(id);
}

async function mqttSinkHarness(): Promise<SinkHarness> {
  const proxy = await startTcpProxy(MQTT_PORT);
  const prefix = `adl-conformance-${randomBytes(6).toString('hex')}`;
  const password = `conformance-${randomBytes(8).toString('hex')}`;
  const subscriber = await connectAsync({ host: '127.0.0.1', port: MQTT_PORT, protocolVersion: 5, clientId: `${prefix}-subscriber`, reconnectPeriod: 0 });
  let received: AcceptedMessage[] = [];
  let markers = 0;
  let markerSeen = 0;
  subscriber.on('message', (topic, payload, packet) => {
    if (topic.startsWith(`${prefix}/marker/`)) markerSeen = Number(payload.toString());
    else received.push({ eventIds: [eventIdOf(packet)], body: payload.toString('utf8') });
  });
  await subscriber.subscribeAsync(`${prefix}/#`, { qos: 1 });
  let behaviour: EndpointBehaviour = 'ok';


  return {
    refusedIs: 'retry',
    batches: true,
    secret: password,
    open({ timeoutMs, batched }): Sink {
      let sink: Sink | undefined;
      const real = () => {
        const topic = behaviour === 'refuse' ? `$SYS/${prefix}/{table}` : `${prefix}/{schema}/{table}`;
        sink ??= openConformanceSink(['type: mqtt', `url: "mqtt://adl:${password}@127.0.0.1:${proxy.port}"`, `topic: "${topic}"`], { timeoutMs, batched: batched === true });
        return sink;
      };
      return {
        get description() {
          return real().description;
        },
        send: (messages, signal) => real().send(messages, signal),
        check: () => real().check(),
        close: () => sink?.close() ?? Promise.resolve(),
      };
    },
    async accepted() {
      const marker = ++markers;
      await subscriber.publishAsync(`${prefix}/marker/${marker}`, String(marker), { qos: 1 });
      await waitUntil(() => markerSeen >= marker, 5_000, 'the subscriber to receive its marker');
      return [...received];
    },
    behave(b) {
      behaviour = b;
      // cut() stops accepting before it returns its promise: the next connect is refused.
      if (b === 'unavailable') void proxy.cut();
      if (b === 'hang') proxy.hang();
    },
    stop: () => proxy.cut(),
    start: () => proxy.restore(),
    async reset() {
      received = [];
      behaviour = 'ok';
      await proxy.restore();
    },
    async close() {
      await subscriber.endAsync();
      await proxy.close();
    },
  };
}

sinkSuite(mqttSinkHarness, 'mqtt');
