import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { failureLatch } from '../../src/util/wake.js';

describe('failureLatch', () => {
  it('rejects with the first failure only', async () => {
    const latch = failureLatch(new AbortController().signal);
    latch.fail(new Error('first'));
    latch.fail(new Error('second'));
    await expect(latch.failed).rejects.toThrow('first');
  });

  it('rejects with "stopping" when the signal aborts', async () => {
    const stop = new AbortController();
    const latch = failureLatch(stop.signal);
    stop.abort();
    await expect(latch.failed).rejects.toThrow('stopping');
  });

  it('rejects at once when the signal had already aborted: a stop during set-up is not missed', async () => {
    const stop = new AbortController();
    stop.abort();
    await expect(failureLatch(stop.signal).failed).rejects.toThrow('stopping');
  });

  it('leaves no listener on the signal once disposed, and a later abort does not reject it', async () => {
    const stop = new AbortController();
    const latch = failureLatch(stop.signal);
    expect(getEventListeners(stop.signal, 'abort')).toHaveLength(1);
    latch.dispose();
    expect(getEventListeners(stop.signal, 'abort')).toHaveLength(0);
    let rejected = false;
    latch.failed.catch(() => (rejected = true));
    stop.abort();
    await new Promise(setImmediate);
    expect(rejected).toBe(false);
  });
});
