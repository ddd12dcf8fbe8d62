/**
 * Records delivery outcomes in batches. While one batch is being written, new
 * outcomes queue up and go together in the next round trip (group commit), so a
 * quiet daemon writes each outcome at once and a busy one writes many per statement.
 * While deliveries are still in flight, a write of fewer than `outcomesPerWrite`
 * outcomes waits up to LINGER_MS for more (see dispatch/batching.ts): per event,
 * the statement costs the database far more than the wait costs anyone.
 * A failed write is retried with backoff, never dropped: until it succeeds the
 * events stay claimed, and if the process dies their lease runs out and they are
 * delivered again (at least once).
 */
import type { DaemonEventBus } from '../observability/events.js';
import { describeError } from '../util/errors.js';
import { delay, settleWithin } from '../util/wake.js';
import { LastDeliveryRecorder } from './last-delivery.js';
import type { Completion, Journal } from './types.js';

const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 5_000;
/** Longest a small batch of outcomes waits for more while deliveries are in flight. */
const LINGER_MS = 2;

export interface CompleterOptions {
  /** Outcomes worth one write on their own. Default 1 (never wait). */
  readonly outcomesPerWrite?: number;
  /** Whether more outcomes are on their way (deliveries in flight). */
  readonly moreComing?: () => boolean;
}

export class Completer {
  private queue: Completion[] = [];
  private flushing: Promise<void> | undefined;
  private readonly stopController = new AbortController();
  private failing = false;
  /** Size of the batch being written. */
  private writing = 0;
  private readonly lastDelivery: LastDeliveryRecorder | undefined;
  /** Ends the linger of a small batch as soon as enough outcomes are queued. */
  private onEnough: (() => void) | undefined;

  constructor(
    private readonly journal: Journal,
    private readonly bus: DaemonEventBus,
    /** Called after each successful write (a row key may now be free). */
    private readonly onFlushed: () => void,
    private readonly opts: CompleterOptions = {},
  ) {
    const touch = journal.touchLastDelivery?.bind(journal);
    this.lastDelivery = touch ? new LastDeliveryRecorder(touch) : undefined;
  }

  /** Outcomes not yet written: queued, or in the batch being written. */
  get backlog(): number {
    return this.queue.length + this.writing;
  }

  push(c: Completion): void {
    this.queue.push(c);
    if (this.onEnough && this.queue.length >= (this.opts.outcomesPerWrite ?? 1)) this.onEnough();
    this.startFlush();
  }

  /** Waits up to LINGER_MS for a batch worth writing, while more outcomes are on their way. */
  private async linger(): Promise<void> {
    const enough = this.opts.outcomesPerWrite ?? 1;
    if (this.queue.length >= enough || !this.opts.moreComing?.() || this.stopController.signal.aborted) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, LINGER_MS);
      this.onEnough = done;
      function done() {
        clearTimeout(timer);
        resolve();
      }
    });
    this.onEnough = undefined;
  }

  private startFlush(): void {
    this.flushing ??= this.flush().finally(() => {
      this.flushing = undefined;
      // An outcome pushed after the last look at the queue still gets written.
      if (this.queue.length > 0 && !this.stopController.signal.aborted) this.startFlush();
    });
  }

  /** Resolves when everything pushed so far is written, or `deadlineMs` passed. */
  async drain(deadlineMs: number): Promise<boolean> {
    const end = Date.now() + deadlineMs;
    while (this.flushing || this.queue.length > 0) {
      if (Date.now() >= end) {
        this.stopController.abort();
        return false;
      }
      await settleWithin(this.flushing ?? Promise.resolve(), Math.max(0, end - Date.now()));
    }
    return true;
  }

  private async flush(): Promise<void> {
    let backoff = RETRY_MIN_MS;
    while (this.queue.length > 0 && !this.stopController.signal.aborted) {
      await this.linger();
      const batch = this.queue;
      this.queue = [];
      this.writing = batch.length;
      try {
        await this.journal.complete(batch);
        this.writing = 0;
        if (this.failing) {
          this.failing = false;
          this.bus.emit('journal:recovered', { operation: 'record outcomes' });
        }
        backoff = RETRY_MIN_MS;
        this.lastDelivery?.note(batch);
        this.onFlushed();
      } catch (err) {
        // Put the batch back in front, keeping order, and try again later.
        this.writing = 0;
        this.queue = batch.concat(this.queue);
        this.failing = true;
        this.bus.emit('journal:error', { operation: 'record outcomes', error: describeError(err), retryInMs: backoff });
        await delay(backoff, this.stopController.signal);
        backoff = Math.min(backoff * 2, RETRY_MAX_MS);
      }
    }
  }
}
