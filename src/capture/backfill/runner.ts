/**
 * Runs one backfill to its end: batch after batch, paced (pacing.ts), waiting while
 * the destinations' queues are deep or a writer holds a row of the next batch, and
 * stopping cleanly when asked (the progress of every committed batch is kept:
 * `backfill --resume` continues). A batch that fails for a passing reason (the
 * connection, a deadlock, the lease still held by a lost session) is tried again with
 * backoff, from the stored progress; any other error, or too many in a row, ends the
 * backfill as failed, with the error kept. While paused, the stored state is read
 * every second, so a cancel (or an end recorded elsewhere) is seen.
 */
import { delay } from '../../util/wake.js';
import { AppError, describeError } from '../../util/errors.js';
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

/** How long a backfill waits between looks at a full backlog, or before trying a batch a writer held up again: a few ms, up to this. */
const POLL_MIN_MS = 2;
const POLL_MAX_MS = 100;
/** While paused, the backfill's state is read this often: a cancel is seen even while nothing moves. */
const STATE_CHECK_MS = 1_000;
const RETRY_MIN_MS = 200;
const RETRY_MAX_MS = 10_000;
/** Failures in a row (each passing, by its kind) after which the backfill fails: about five minutes of them. */
const MAX_RETRIES = 35;

export async function runBackfill(store: BackfillStore, start: BackfillRecord, table: BackfillTable, opts: RunOptions): Promise<RunOutcome> {
  let record = start;
  const pacer = new Pacer(record.rate, record.batchSize, Date.now());
  let pollMs = POLL_MIN_MS;
  let retryMs = RETRY_MIN_MS;
  let failures = 0;
  let checkedAt = Date.now();
  /** After a failure, the stored record is the truth: the batch may have committed before its answer was lost. */
  let reload = false;
  const stopped = () => opts.signal?.aborted === true;
  /** Waits while nothing moves; reads the state now and then (a cancel, or an end another process recorded). */
  const pause = async (reason: string): Promise<RunOutcome | undefined> => {
    opts.onProgress?.(record.rowsDone, reason);
    await delay(pollMs, opts.signal);
    pollMs = Math.min(pollMs * 2, POLL_MAX_MS);
    if (Date.now() - checkedAt < STATE_CHECK_MS) return undefined;
    checkedAt = Date.now();
    record = await store.reload(record.id);
    return ended(record);
  };
  while (!stopped()) {
    try {
      if (reload) {
        record = await store.reload(record.id);
        reload = false;
        const end = ended(record);
        if (end) return end;
      }
      // The queues are kept below maxBacklog due events: a live change committed now
      // waits behind that many READ events at most, wherever the backfill is.
      const queued = await store.backlog(record.schema, record.table, opts.destinations, record.maxBacklog);
      if (queued >= record.maxBacklog) {
        const end = await pause(`${record.maxBacklog} or more events waiting for delivery`);
        if (end) return end;
        continue;
      }
      // A batch takes what the queues have room for, within the rate's slice, and waits
      // only for the tokens of what it takes.
      const take = Math.min(pacer.slice, record.maxBacklog - queued);
      const wait = pacer.waitMs(Date.now(), take);
      if (wait > 0) {
        await delay(wait, opts.signal);
        if (stopped()) break;
      }
      const r = await store.step(record, table, take);
      failures = 0;
      retryMs = RETRY_MIN_MS;
      if (r.state === 'busy') {
        const end = await pause('a writer holds a row of the next batch');
        if (end) return end;
        continue;
      }
      pollMs = POLL_MIN_MS;
      checkedAt = Date.now();
      pacer.spend(r.rows, Date.now());
      record = { ...record, rowsDone: record.rowsDone + r.rows, lastKey: r.lastKey, updatedAt: new Date() };
      opts.onProgress?.(record.rowsDone, undefined);
      if (r.state === 'failed') throw new AppError('BACKFILL_FAILED', `backfill ${record.id} was ended as failed by another process`);
      if (r.state !== 'running') return r.state;
    } catch (err) {
      if (err instanceof AppError && (err.code === 'BACKFILL_LEASE_LOST' || err.code === 'BACKFILL_FAILED')) throw err;
      if (!opts.isTransient(err) || ++failures > MAX_RETRIES) {
        await store.fail(record.id, describeError(err)).catch(() => undefined);
        throw err;
      }
      reload = true;
      opts.onRetry?.(describeError(err), retryMs);
      await delay(retryMs, opts.signal);
      retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
    }
  }
  return 'stopped';
}

/** How a backfill that is no longer running ended, as a run's outcome. */
function ended(b: BackfillRecord): RunOutcome | undefined {
  switch (b.state) {
    case 'running':
      return undefined;
    case 'done':
      return 'done';
    case 'cancelled':
      return 'cancelled';
    case 'failed':
      throw new AppError('BACKFILL_FAILED', `backfill ${b.id} failed: ${b.error ?? 'no error recorded'}`);
  }
}
