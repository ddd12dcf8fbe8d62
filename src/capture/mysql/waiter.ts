/**
 * MySQL has no LISTEN/NOTIFY: nothing can wake the daemon when a change commits,
 * so the dispatcher's poll (listener.poll_interval) is the only wake-up when idle.
 * This waiter only records the dispatcher's "waiting" mark, so the dispatcher
 * sleeps a poll interval after an empty claim instead of retrying the mark. Work
 * found by a claim, a finished delivery and a recorded outcome still wake the
 * dispatcher at once (they go through the WakeSignal, not through here).
 */
import type { SourceWaiter } from '../source.js';

export class PollingWaiter implements SourceWaiter {
  marked = false;
  /** There is no wake-up connection to lose. */
  readonly connected = true;

  markWaiting(): Promise<boolean> {
    this.marked = true;
    return Promise.resolve(true);
  }

  clearWaiting(): Promise<void> {
    this.marked = false;
    return Promise.resolve();
  }

  start(): void {}

  stop(): Promise<void> {
    return Promise.resolve();
  }
}
