/** The sink conformance suite against the webhook sink and a real HTTP receiver on a loopback port. */
import { randomBytes } from 'node:crypto';
import { startReceiver, type ReceivedRequest } from '../support/receiver.js';
import { openConformanceSink, sinkSuite, type AcceptedMessage, type SinkHarness } from './sink-suite.js';

/** The event ids a request carried: its webhook-id, or for a batch the ids inside the array. */
function eventIdsOf(r: ReceivedRequest): string[] {
  const id = String(r.headers['webhook-id'] ?? '');
  if (!id.startsWith('batch_')) return [id];
  return (JSON.parse(r.body) as Array<{ id: string }>).map((e) => e.id);
}

async function webhookSinkHarness(): Promise<SinkHarness> {
  const rx = await startReceiver({ path: '/hook' });
  const token = `conformance-${randomBytes(8).toString('hex')}`;
  const signing = `whsec_${randomBytes(24).toString('base64')}`;
  return {
    refusedIs: 'dead',
    batches: true,
    secret: token,
    open: (o) => openConformanceSink([`url: "${rx.url}"`, `secret: "${signing}"`, `headers: { Authorization: "Bearer ${token}" }`], o),
    accepted: (): Promise<AcceptedMessage[]> =>
      Promise.resolve(
        rx.events
          .filter((r) => r.method === 'POST' && typeof r.response === 'number' && r.response >= 200 && r.response < 300)
          .map((r) => ({ eventIds: eventIdsOf(r), body: r.body })),
      ),
    behave(b) {
      rx.setMode(b === 'ok' ? 'ok' : b === 'refuse' ? 400 : b === 'unavailable' ? 503 : 'hang');
    },
    stop: () => rx.down(),
    start: () => rx.up(),
    reset() {
      rx.events.length = 0;
      rx.setMode('ok');
      return Promise.resolve();
    },
    close: () => rx.close(),
  };
}

sinkSuite(webhookSinkHarness, 'webhook');
