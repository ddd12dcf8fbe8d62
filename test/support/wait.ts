/**
 * Waiting in tests: poll a condition until it holds or a deadline passes.
 * Tests never sleep for a fixed time; they wait for what they expect, and a
 * timeout fails with a message saying what was expected and what was seen.
 */

/**
 * How long the broker sinks' tests keep a broker away (its connections cut, new ones
 * refused) while the daemon keeps trying: nothing may be lost or dead-lettered over it.
 */
export const BROKER_OUTAGE_MS = 30_000;
/**
 * How long, once the broker is back, everything may take to arrive: over a 30 s outage
 * the breaker's probe interval has doubled to 32 s (1, 2, 4, 8, 16, 32 s; at most 60 s),
 * so the first probe to find the broker back may come that long after it returned.
 */
export const AFTER_OUTAGE_MS = 75_000;

export interface WaitOptions {
  /** Deadline in ms. Default 5000. */
  readonly timeoutMs?: number;
  /** Poll interval in ms. Default 10. */
  readonly intervalMs?: number;
}

/**
 * Resolves with the first truthy value `fn` returns (sync or async). An error
 * thrown by `fn` counts as "not yet" and is reported if the deadline passes.
 * `message` (or a function computing it at failure time, to show the latest
 * state) says what was awaited.
 */
export async function waitUntil<T>(
  fn: () => T | Promise<T>,
  timeoutMs = 5000,
  message: string | (() => string) = 'condition',
  intervalMs = 10,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  let lastValue: unknown;
  for (;;) {
    try {
      const value = await fn();
      if (value) return value as NonNullable<T>;
      lastValue = value;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const what = typeof message === 'function' ? message() : message;
      const last =
        lastError !== undefined
          ? `last error: ${lastError instanceof Error ? lastError.message : String(lastError)}`
          : `last value: ${describe(lastValue)}`;
      throw new Error(`waitUntil: timed out after ${timeoutMs} ms waiting for ${what} (${last})`);
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(intervalMs, Math.max(1, deadline - Date.now()))));
  }
}

function describe(value: unknown): string {
  try {
    const text = JSON.stringify(value);
    return text === undefined ? String(value) : text.length > 200 ? text.slice(0, 200) + '…' : text;
  } catch {
    return String(value);
  }
}
