/**
 * A backfill: the rows a watched table already holds, journaled as READ events in
 * key order, a batch per transaction, beside the table's live changes. The runner
 * (runner.ts) paces it; each database's store journals the batches and keeps the
 * progress (src/capture/postgres/backfill.ts, src/capture/mysql/backfill.ts).
 */

export type BackfillState = 'running' | 'done' | 'cancelled' | 'failed';

/** What a new backfill reads and how it is paced. */
export interface BackfillSpec {
  readonly schema: string;
  readonly table: string;
  /** Only this destination; undefined: every destination that takes the table. */
  readonly destination: string | undefined;
  /** An SQL condition on the table's rows (--where), pasted as the operator wrote it. */
  readonly condition: string | undefined;
  /** The columns read in order (the primary key, or the unique key given with --key). */
  readonly keyColumns: readonly string[];
  readonly batchSize: number;
  /** Rows per second at most; undefined: as fast as the backlog gate allows. */
  readonly rate: number | undefined;
  /** The destinations' queues are kept below this many due events: a batch takes at most what is left, and waits at this. */
  readonly maxBacklog: number;
}

/** A backfill as stored. */
export interface BackfillRecord extends BackfillSpec {
  readonly id: string;
  /** Key of the last row journaled (each key column's text); null before the first batch. */
  readonly lastKey: readonly string[] | null;
  readonly rowsDone: number;
  /** The database's estimate of the rows to read when the backfill started; null if it had none. */
  readonly rowsEstimated: number | null;
  readonly state: BackfillState;
  readonly error: string | null;
  readonly startedAt: Date;
  /** When the current run (the first or the last resume) began, and rowsDone then. */
  readonly resumedAt: Date;
  readonly rowsAtResume: number;
  readonly updatedAt: Date;
  readonly finishedAt: Date | null;
}

/** A stored backfill and whether a process holds its lease (runs it) now. */
export interface BackfillListing extends BackfillRecord {
  /** True while a process runs it; a running backfill with no runner was interrupted. */
  readonly leased: boolean;
}

/** The table a backfill reads, as the database names it. */
export interface BackfillTable {
  readonly schema: string;
  readonly name: string;
  /** The primary key: events of one row are ordered by it (empty: the table has none). */
  readonly primaryKey: readonly string[];
}

/** What one batch did. */
export interface StepResult {
  /** Rows journaled by this batch. */
  readonly rows: number;
  /** Key of the batch's last row (unchanged when it read none). */
  readonly lastKey: readonly string[] | null;
  /**
   * running: more to read; done: the batch read the last rows; busy: a writer holds one
   * of the batch's rows (nothing was done: try again shortly); cancelled or failed: the
   * backfill ended meanwhile (by --cancel, or by another process's failure).
   */
  readonly state: 'running' | 'done' | 'busy' | 'cancelled' | 'failed';
}

/** One database's backfills, over one connection (and, while running one, its lease). */
export interface BackfillStore {
  /** Fails with NOT_INSTALLED when this database's installation predates backfills. */
  checkInstalled(): Promise<void>;
  /** The table, its primary key, and `key` checked as a unique key of non-null columns when given. */
  resolveTable(schema: string | undefined, name: string, key: readonly string[] | undefined): Promise<BackfillTable & { keyColumns: readonly string[] }>;
  /** The database's estimate of the rows matching the condition; checks the condition (clear error when wrong). */
  estimate(table: BackfillTable, condition: string | undefined): Promise<number | null>;
  /** Records a new backfill. Fails with BACKFILL_EXISTS while one is unfinished for the same table and destination. */
  create(spec: BackfillSpec, estimate: number | null): Promise<BackfillRecord>;
  /** The unfinished (running) backfill of the table for this destination (undefined: all destinations). */
  unfinished(schema: string, table: string, destination: string | undefined): Promise<BackfillListing | undefined>;
  /** The newest failed backfill of the table for this destination: --resume continues it. */
  latestFailed(schema: string, table: string, destination: string | undefined): Promise<BackfillRecord | undefined>;
  /** The backfill as stored now. */
  reload(id: string): Promise<BackfillRecord>;
  /** Takes the backfill's lease for this connection; false when another process holds it. */
  acquire(id: string): Promise<boolean>;
  /** Starts a run of an interrupted (or failed) backfill: new pacing, a new rate baseline. */
  resume(id: string, pacing: Pick<BackfillSpec, 'batchSize' | 'rate' | 'maxBacklog'>): Promise<BackfillRecord>;
  /**
   * One batch, in one transaction: at most `limit` rows after the record's last key,
   * locked without waiting, journaled as READ events, and the progress recorded. The
   * table's primary key orders the events with the row's changes.
   */
  step(record: BackfillRecord, table: BackfillTable, limit: number): Promise<StepResult>;
  /** Events waiting in the inbox for the table and in the destinations' queues, counted up to `cap`. */
  backlog(schema: string, table: string, destinations: readonly string[], cap: number): Promise<number>;
  /** Ends a backfill as failed, with the error. */
  fail(id: string, error: string): Promise<void>;
  /** Cancels the unfinished backfills of the table (for one destination, or all); returns them. */
  cancel(schema: string, table: string, destination: string | undefined): Promise<BackfillRecord[]>;
  /** Every backfill, newest first, at most `limit`. */
  list(limit?: number): Promise<BackfillListing[]>;
  close(): Promise<void>;
}
