/**
 * A level-triggered wake-up: `notify()` before anyone waits is remembered, so a
 * waiter never misses a hint that arrived while it was busy. Hints carry no data.
 */
export class WakeSignal {
  private pending = false;
  private waiters: Array<() => void> = [];

  notify(): void {
    if (this.waiters.length === 0) {
      this.pending = true;
      return;
    }
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** Resolves true when notified, false when `timeoutMs` passed first. */
  wait(timeoutMs: number): Promise<boolean> {
    if (this.pending) {
      this.pending = false;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      let done = false;
      const waiter = () => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        if (done) return;
        done = true;
        this.waiters = this.waiters.filter((w) => w !== waiter);
        resolve(false);
      }, Math.max(0, timeoutMs));
      this.waiters.push(waiter);
    });
  }
}

/** A promise that settles after `ms`, or at once when `signal` aborts. */
export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, Math.max(0, ms));
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** `ms` scaled by a random factor in [1 - spread, 1 + spread]. */
export function jitter(ms: number, spread = 0.2, random = Math.random): number {
  return ms * (1 - spread + 2 * spread * random());
}

/** Waits for `promise` at most `ms`; the timer never outlives the wait. True if it settled in time. */
export async function settleWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  const timer = new AbortController();
  try {
    return await Promise.race([promise.then(() => true), delay(ms, timer.signal).then(() => false)]);
  } finally {
    timer.abort();
  }
}

/**
 * A stream's end, as a promise that rejects with the first `fail(err)`, or with
 * "stopping" once `signal` aborts: at once if it already has, so a stop that came
 * while the stream was being set up is never missed. `dispose()` when the stream is over.
 */
export interface FailureLatch {
  readonly failed: Promise<never>;
  fail(err: unknown): void;
  dispose(): void;
}

export function failureLatch(signal: AbortSignal): FailureLatch {
  let reject!: (err: unknown) => void;
  const failed = new Promise<never>((_, r) => {
    reject = r;
  });
  failed.catch(() => undefined);
  const onAbort = () => reject(new Error('stopping'));
  if (signal.aborted) onAbort();
  else signal.addEventListener('abort', onAbort, { once: true });
  return { failed, fail: reject, dispose: () => signal.removeEventListener('abort', onAbort) };
}
