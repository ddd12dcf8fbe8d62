import { describe, expect, it } from 'vitest';
import { LastDeliveryRecorder } from '../../src/journal/last-delivery.js';
import type { Completion } from '../../src/journal/types.js';
import { waitUntil } from '../support/wait.js';

const delivered = (table: string, id = '1'): Completion => ({ kind: 'delivered', id, token: 't', schema: 'public', table });

function recorder(fail = false) {
  let clock = 0;
  const touched: string[] = [];
  const pending: Array<() => void> = [];
  const r = new LastDeliveryRecorder(
    (schema, table) =>
      new Promise<void>((resolve, reject) => {
        touched.push(`${schema}.${table}`);
        pending.push(() => (fail ? reject(new Error('permission denied')) : resolve()));
      }),
    1_000,
    () => clock,
  );
  /** Completes every write, including those started by the completion of earlier ones. */
  const settle = async () => {
    for (let round = 0; round < 10; round++) {
      while (pending.length > 0) pending.shift()!();
      await new Promise((resolve) => setImmediate(resolve));
    }
  };
  return { r, touched, settle, advance: (ms: number) => (clock += ms) };
}

describe('LastDeliveryRecorder', () => {
  it('touches each delivered table once per interval, and nothing for retries or dead letters', async () => {
    const { r, touched, settle, advance } = recorder();
    r.note([delivered('a'), delivered('a', '2'), delivered('b'), { kind: 'dead', id: '3', token: 't', error: 'x' }]);
    await settle();
    expect(touched).toEqual(['public.a', 'public.b']);
    advance(500);
    r.note([delivered('a'), delivered('c')]);
    await settle();
    expect(touched).toEqual(['public.a', 'public.b', 'public.c']);
    advance(600);
    r.note([delivered('a')]);
    await settle();
    expect(touched).toEqual(['public.a', 'public.b', 'public.c', 'public.a']);
  });

  it('writes one batch at a time, and a failed write never throws', async () => {
    const { r, touched, settle, advance } = recorder(true);
    r.note([delivered('a')]);
    advance(5_000);
    r.note([delivered('b')]); // the write of "a" is still running: skipped
    expect(touched).toEqual(['public.a']);
    await settle();
    advance(5_000);
    r.note([delivered('b')]);
    await waitUntil(() => touched.length === 2, 1_000, 'the second write');
    await settle();
    expect(touched).toEqual(['public.a', 'public.b']);
  });
});
