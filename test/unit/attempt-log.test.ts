/** The attempt log's buffer: sampling, bounds, and a store that fails (an in-memory store). */
import { describe, expect, it } from 'vitest';
import { AttemptLog, DELIVERED_PER_SECOND, type AttemptRow, type AttemptStore } from '../../src/journal/attempt-log.js';
import type { SinkMessage, SinkResult } from '../../src/delivery/sink.js';
import type { JournalEvent } from '../../src/journal/types.js';
import { DaemonEventBus } from '../../src/observability/events.js';

function event(id: number): JournalEvent {
  return {
    destination: 'billing', id: String(id), eventId: `evt_x_${id}`, op: 'INSERT', schema: 'public', table: 'orders',
    timestamp: '2026-12-06T00:00:00.000000Z', createdAtMs: 0, newRow: `{"id":${id}}`, oldRow: null, attempts: 1, claimToken: 't',
  };
}
const message: SinkMessage = { eventId: 'evt_x_1', body: '{"id":1}', contentType: 'application/json', headers: {}, schema: 'public', table: 'orders', operation: 'insert' };
const ok: SinkResult = { kind: 'success', status: 200, durationMs: 1, detail: { address: 'https://h/x', requestHeaders: ['authorization', 'Bearer zzz', 'webhook-id', 'evt_x_1'], responseBody: 'fine' } };
const failed: SinkResult = { kind: 'retry', status: 503, error: 'HTTP 503 Service Unavailable', endpointFailure: true, durationMs: 2 };

class MemoryStore implements AttemptStore {
  rows: AttemptRow[] = [];
  fail = false;
  async writeAttempts(rows: readonly AttemptRow[]): Promise<void> {
    if (this.fail) throw new Error('connection refused');
    this.rows.push(...rows);
  }
  async pruneAttempts(): Promise<number> {
    return 0;
  }
}

function setup(opts: { maxBuffered?: number } = {}) {
  const bus = new DaemonEventBus();
  const store = new MemoryStore();
  const errors: string[] = [];
  let skipped = 0;
  bus.on('journal:error', (e) => errors.push(e.operation));
  bus.on('attempts:skipped', ({ count }) => (skipped += count));
  const log = new AttemptLog(store, bus, { maxRows: 10_000, maxAgeSeconds: 86_400, ...opts });
  const rec = log.forDestination('billing', 'https://h/x', { rowKey: (e) => e.id }, ['zzz-secret']);
  return { log, store, rec, bus, errors, skipped: () => skipped };
}

describe('attempt log', () => {
  it('writes rows with the outcome, the row key and redacted headers', async () => {
    const { log, store, rec } = setup();
    rec.record(event(1), message, ok, 'delivered');
    rec.record(event(2), message, failed, 'retry');
    await log.flush();
    expect(store.rows.map((r) => [r.id, r.outcome, r.rowKey, r.responseStatus])).toEqual([['1', 'delivered', '1', 200], ['2', 'retry', '2', 503]]);
    expect(JSON.parse(store.rows[0]!.requestHeaders)).toEqual({ authorization: '[redacted]', 'webhook-id': 'evt_x_1' });
    expect(store.rows[0]!.responseBody).toBe('fine');
    expect(store.rows[1]!.error).toBe('HTTP 503 Service Unavailable');
  });

  it('keeps every failure but only the first delivered attempts of each second', async () => {
    const { log, store, rec, skipped } = setup();
    for (let i = 0; i < DELIVERED_PER_SECOND + 50; i++) rec.record(event(i), message, ok, 'delivered');
    for (let i = 0; i < 30; i++) rec.record(event(1000 + i), message, failed, 'retry');
    await log.flush();
    // A second boundary may fall inside the loop: then a few more delivered ones are kept.
    const delivered = store.rows.filter((r) => r.outcome === 'delivered').length;
    expect(delivered).toBeGreaterThanOrEqual(DELIVERED_PER_SECOND);
    expect(delivered).toBeLessThan(DELIVERED_PER_SECOND + 50);
    expect(store.rows.filter((r) => r.outcome === 'retry')).toHaveLength(30);
    expect(skipped()).toBe(DELIVERED_PER_SECOND + 50 - delivered);
  });

  it('skips and counts what does not fit, and what a failing store could not take, reporting the failure once', async () => {
    const { log, store, rec, errors, skipped } = setup({ maxBuffered: 5 });
    for (let i = 0; i < 8; i++) rec.record(event(i), message, failed, 'dead');
    expect(skipped()).toBe(3);
    store.fail = true;
    await log.flush();
    rec.record(event(9), message, failed, 'dead');
    await log.flush();
    expect(skipped()).toBe(3 + 5 + 1);
    expect(errors).toEqual(['write the attempt log']);
    store.fail = false;
    rec.record(event(10), message, failed, 'dead');
    await log.flush();
    expect(store.rows.map((r) => r.id)).toEqual(['10']);
    expect(log.skipped).toBe(9);
  });

  it('does not stay failing once nothing waits: readiness must not hang on a dropped batch (also for prune)', async () => {
    const { log, store, rec, bus } = setup();
    const failing = new Set<string>();
    bus.on('journal:error', (e) => failing.add(e.operation));
    bus.on('journal:recovered', (e) => failing.delete(e.operation));
    store.fail = true;
    rec.record(event(1), message, failed, 'dead');
    await log.flush();
    const prune = store.pruneAttempts.bind(store);
    store.pruneAttempts = () => Promise.reject(new Error('connection refused'));
    await log.prune();
    expect([...failing].sort()).toEqual(['prune the attempt log', 'write the attempt log']);
    // The database is back; no delivery happens: the next flush and prune clear both.
    store.fail = false;
    store.pruneAttempts = prune;
    await log.flush();
    await log.prune();
    expect([...failing]).toEqual([]);
  });
});
