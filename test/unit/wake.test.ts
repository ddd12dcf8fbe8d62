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

  it('stays pending, and leaves no listener, once disposed', async () => {
    const stop = new AbortController();
    const latch = failureLatch(stop.signal);
    latch.dispose();
    stop.abort();
    const settled = await Promise.race([latch.failed.then(() => 'settled', () => 'settled'), Promise.resolve('pending')]);
    expect(settled).toBe('pending');
  });
});
