/**
 * The route loop: moves captured changes from the capture inbox into the queues of
 * the destinations they route to (journal Router), and wakes those destinations'
 * dispatchers. It is the part of the daemon that waits for the database's wake-ups.
 *
 * Idle and busy:
 * - When a move comes back empty, the loop marks itself waiting (it takes the wait
 *   lock, see the first migration), looks once more, then sleeps until a NOTIFY or
 *   the jittered poll timer. The lock cannot be taken while a writer that did not
 *   notify is still in its transaction, so the second look sees every change that
 *   will not notify. The poll is the floor: a lost notification costs at most one
 *   poll interval.
 * - As soon as a move finds changes, the mark is cleared, so writers stop paying
 *   for notifications while the daemon is busy, and the loop moves batch after batch
 *   while they come full.
 * - An instance that leads none of its tables (another instance routes them) only
 *   polls: its dispatchers deliver what the leader routed, and it takes a table over
 *   when its leader is gone (see the journal's router).
 * Moving changes never waits for deliveries: a queue is as durable as the inbox, so
 * a destination that is slow or down keeps its backlog in its own queue, and the
 * others go on.
 */
import type { Router, Waiter } from '../journal/types.js';
import type { DaemonEventBus } from '../observability/events.js';
import { describeError } from '../util/errors.js';
import { delay, jitter, settleWithin, type WakeSignal } from '../util/wake.js';

/**
 * Changes one move takes at most. A move copies each change into its destinations'
 * queues in one transaction of a few statements, whose fixed cost (round trips, the
 * commit's log flush) 1,024 changes share: routing a deep inbox cost MariaDB ~25 µs
 * per change at 256, ~19 at 1,024, and one move stays ~20 ms. A short inbox makes
 * short moves, so this bounds only a backlog's moves.
 */
export const ROUTE_BATCH = 1024;

/** Waits between tries of the waiting mark when it could not be taken (a writer is mid-commit). */
const MARK_RETRY_MIN_MS = 1;
const MARK_RETRY_MAX_MS = 8;
const ROUTE_RETRY_MIN_MS = 100;
const ROUTE_RETRY_MAX_MS = 5_000;

export interface RouteLoopOptions {
  readonly pollIntervalMs: number;
  /** Called with the destinations whose queues received changes. */
  readonly routed: (destinations: readonly string[]) => void;
}

export class RouteLoop {
  private stopping = false;
  private loopDone: Promise<void> | undefined;
  private failing = false;
  private markChain: Promise<void> = Promise.resolve();
  private readonly stopSleep = new AbortController();

  constructor(
    private readonly router: Router,
    private readonly waiter: Waiter,
    /** Notified by the database's wake-ups (NOTIFY) and by stop(). */
    private readonly wake: WakeSignal,
    private readonly bus: DaemonEventBus,
    private readonly opts: RouteLoopOptions,
  ) {}

  start(): void {
    this.loopDone ??= this.loop().catch((err: unknown) => {
      this.bus.emit('journal:error', { operation: 'route loop (stopped)', error: describeError(err), retryInMs: 0 });
    });
  }

  /** Stops moving changes (a move in progress finishes), gives up the route locks. Idempotent. */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    this.stopSleep.abort();
    this.wake.notify();
    await settleWithin(this.loopDone ?? Promise.resolve(), graceMs);
    await this.markChain;
    await this.waiter.clearWaiting().catch(() => undefined);
    await this.router.close();
  }

  private async loop(): Promise<void> {
    let backoff = ROUTE_RETRY_MIN_MS;
    let markRetryMs = MARK_RETRY_MIN_MS;
    while (!this.stopping) {
      let moved: number;
      let leading: boolean;
      try {
        const r = await this.router.route(ROUTE_BATCH);
        if (this.failing) {
          this.failing = false;
          this.bus.emit('journal:recovered', { operation: 'route' });
        }
        backoff = ROUTE_RETRY_MIN_MS;
        moved = r.moved;
        leading = r.leading;
        if (r.destinations.length > 0) this.opts.routed(r.destinations);
      } catch (err) {
        this.failing = true;
        this.bus.emit('journal:error', { operation: 'route', error: describeError(err), retryInMs: backoff });
        await delay(backoff, this.stopSleep.signal);
        backoff = Math.min(backoff * 2, ROUTE_RETRY_MAX_MS);
        continue;
      }
      if (moved > 0) {
        if (this.waiter.marked) this.clearWaiting();
        markRetryMs = MARK_RETRY_MIN_MS;
        if (moved >= ROUTE_BATCH) continue;
        // A short move: what is left came in meanwhile, or nothing; one more look tells.
        continue;
      }
      if (!leading) {
        await this.wake.wait(this.pollMs());
        continue;
      }
      if (!this.waiter.marked) {
        // Mark, then move once more before sleeping (see the header comment). The mark
        // fails while a writer is mid-transaction: its change is about to be visible,
        // so look again soon rather than sleep a whole poll interval.
        if (await this.markWaiting()) continue;
        if (this.waiter.otherWaiting === true) {
          // Another daemon on this journal waits and gets the wake-ups; this one looks
          // at its next poll.
          await this.wake.wait(this.pollMs());
          continue;
        }
        await this.wake.wait(markRetryMs);
        markRetryMs = Math.min(markRetryMs * 2, MARK_RETRY_MAX_MS, this.opts.pollIntervalMs);
        continue;
      }
      await this.wake.wait(this.pollMs());
    }
  }

  /** Mark changes run one after another, so a late "clear" never undoes a newer "mark". */
  private async markWaiting(): Promise<boolean> {
    await this.markChain;
    return this.waiter.markWaiting();
  }

  private clearWaiting(): void {
    this.markChain = this.markChain.then(() => this.waiter.clearWaiting()).catch(() => undefined);
  }

  private pollMs(): number {
    return jitter(this.opts.pollIntervalMs);
  }
}
