/**
 * Runs one backfill to its end: batch after batch, paced (pacing.ts), waiting while
 * the destinations' queues are deep, and stopping cleanly when asked (the progress of
 * every committed batch is kept: `backfill --resume` continues). A batch that fails
 * for a passing reason (the connection, a deadlock, a lock wait) is tried again with
 * backoff; any other error ends the backfill as failed, with the error kept.
 */
import { delay } from '../../util/wake.js';
import { describeError } from '../../util/errors.js';
import { Pacer } from './pacing.js';
import type { BackfillRecord, BackfillStore, BackfillTable } from './types.js';

export type RunOutcome = 'done' | 'cancelled' | 'stopped';

export interface RunOptions {
  /** The destinations the rows go to: their queues are the backlog a batch waits on. */
  readonly destinations: readonly string[];
  /** Aborting stops after the batch in progress. */
  readonly signal?: AbortSignal;
  /** After every batch, and while paused (with the reason). */
  readonly onProgress?: (rowsDone: number, paused: string | undefined) => void;
  /** A batch failed and will be tried again. */
  readonly onRetry?: (error: string, retryInMs: number) => void;
  /** Whether an error may pass (the database's transient errors); the rest fail the backfill. */
  readonly isTransient: (err: unknown) => boolean;
}

/** How long a backfill waits between looks at a full backlog: from a few ms (a queue drains fast), up to this. */
const BACKLOG_POLL_MIN_MS = 2;
const BACKLOG_POLL_MAX_MS = 100;
const RETRY_MIN_MS = 200;
const RETRY_MAX_MS = 10_000;

export async function runBackfill(store: BackfillStore, start: BackfillRecord, table: BackfillTable, opts: RunOptions): Promise<RunOutcome> {
  let record = start;
  const pacer = new Pacer(record.rate, record.batchSize, Date.now());
  let pollMs = BACKLOG_POLL_MIN_MS;
  let retryMs = RETRY_MIN_MS;
  const stopped = () => opts.signal?.aborted === true;
  while (!stopped()) {
    try {
      // The queues are kept at most maxBacklog deep: a live change committed now waits
      // behind that many READ events at most, wherever the backfill is.
      const queued = await store.backlog(record.schema, record.table, opts.destinations, record.maxBacklog);
      if (queued >= record.maxBacklog) {
        opts.onProgress?.(record.rowsDone, `${record.maxBacklog} or more events waiting for delivery`);
        await delay(pollMs, opts.signal);
        pollMs = Math.min(pollMs * 2, BACKLOG_POLL_MAX_MS);
        continue;
      }
      pollMs = BACKLOG_POLL_MIN_MS;
      const wait = pacer.waitMs(Date.now());
      if (wait > 0) {
        await delay(wait, opts.signal);
        if (stopped()) break;
      }
      const r = await store.step(record, table, Math.min(pacer.slice, record.maxBacklog - queued));
      pacer.spend(r.rows, Date.now());
      retryMs = RETRY_MIN_MS;
      record = { ...record, rowsDone: record.rowsDone + r.rows, lastKey: r.lastKey, updatedAt: new Date() };
      opts.onProgress?.(record.rowsDone, undefined);
      if (r.state !== 'running') return r.state;
    } catch (err) {
      if (!opts.isTransient(err)) {
        await store.fail(record.id, describeError(err)).catch(() => undefined);
        throw err;
      }
      opts.onRetry?.(describeError(err), retryMs);
      await delay(retryMs, opts.signal);
      retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
    }
  }
  return 'stopped';
}
