/**
 * How fast a backfill goes: a token bucket of `rate` rows per second, spent in
 * slices small enough that each batch is a short burst (a live change waits behind
 * at most one slice), and the progress figures the CLI and `status` show.
 * Pure functions: no clock of their own, no database.
 */

/** A paced backfill runs at most this many batches a second: its slice is rate / this. */
export const STEPS_PER_SECOND = 20;

export class Pacer {
  private tokens: number;
  private at: number;
  /** Rows each batch asks for. */
  readonly slice: number;

  constructor(
    /** Rows per second at most; undefined: no limit. */
    private readonly rate: number | undefined,
    batchSize: number,
    nowMs: number,
  ) {
    this.slice = rate === undefined ? batchSize : Math.max(1, Math.min(batchSize, Math.ceil(rate / STEPS_PER_SECOND)));
    this.tokens = this.slice;
    this.at = nowMs;
  }

  /** Milliseconds to wait before the next batch may take `rows` (at most a slice; default a whole one). */
  waitMs(nowMs: number, rows = this.slice): number {
    if (this.rate === undefined) return 0;
    this.refill(nowMs);
    const want = Math.min(rows, this.slice);
    return this.tokens >= want ? 0 : Math.ceil(((want - this.tokens) * 1000) / this.rate);
  }

  /** Records the rows a batch read. */
  spend(rows: number, nowMs: number): void {
    if (this.rate === undefined) return;
    this.refill(nowMs);
    this.tokens -= rows;
  }

  private refill(nowMs: number): void {
    const rate = this.rate!;
    // Never more than one slice saved up: no burst after a pause.
    this.tokens = Math.min(this.slice, this.tokens + ((nowMs - this.at) * rate) / 1000);
    this.at = nowMs;
  }
}

/** A backfill's progress as people read it. */
export interface Progress {
  readonly rowsDone: number;
  /** Rows to read in all, as the database estimated it (raised to rowsDone when short); null when unknown. */
  readonly rowsTotal: number | null;
  /** Rows per second recently; 0 when unknown. */
  readonly ratePerSecond: number;
  /** Seconds left at that rate; null when unknown. */
  readonly etaSeconds: number | null;
  /** 0..1; null when the total is unknown. */
  readonly fraction: number | null;
}

export function progressOf(rowsDone: number, rowsEstimated: number | null, ratePerSecond: number, finished = false): Progress {
  const rowsTotal = finished ? rowsDone : rowsEstimated === null ? null : Math.max(rowsEstimated, rowsDone);
  const left = rowsTotal === null ? null : rowsTotal - rowsDone;
  return {
    rowsDone,
    rowsTotal,
    ratePerSecond,
    etaSeconds: left === null ? null : left === 0 ? 0 : ratePerSecond > 0 ? Math.ceil(left / ratePerSecond) : null,
    fraction: rowsTotal === null ? null : rowsTotal === 0 ? 1 : Math.min(1, rowsDone / rowsTotal),
  };
}

/** A run's rate: rows since the run began over its duration (0 before a second has passed). */
export function runRate(rowsDone: number, rowsAtResume: number, resumedAt: Date, updatedAt: Date): number {
  const seconds = (updatedAt.getTime() - resumedAt.getTime()) / 1000;
  return seconds < 1 ? 0 : (rowsDone - rowsAtResume) / seconds;
}

/** "1h02m", "3m05s", "42s". */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3_600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3_600)}h${String(Math.floor((s % 3_600) / 60)).padStart(2, '0')}m`;
}

const count = new Intl.NumberFormat('en-US');

/**
 * One line of progress: `[#########...........]  45%  45,000/100,000 rows  1,200 rows/s  ETA 46s`,
 * without the bar when the total is unknown; `paused` says why nothing moves.
 */
export function progressLine(p: Progress, opts: { bar?: number; paused?: string } = {}): string {
  const parts: string[] = [];
  if (opts.bar !== undefined && p.fraction !== null) {
    const filled = Math.round(p.fraction * opts.bar);
    parts.push(`[${'#'.repeat(filled)}${'.'.repeat(opts.bar - filled)}]`);
  }
  if (p.fraction !== null) parts.push(`${String(Math.floor(p.fraction * 100)).padStart(3)}%`);
  parts.push(p.rowsTotal === null ? `${count.format(p.rowsDone)} rows` : `${count.format(p.rowsDone)}/${count.format(p.rowsTotal)} rows`);
  parts.push(`${count.format(Math.round(p.ratePerSecond))} rows/s`);
  if (opts.paused !== undefined) parts.push(`paused: ${opts.paused}`);
  else if (p.etaSeconds !== null) parts.push(`ETA ${formatDuration(p.etaSeconds)}`);
  return parts.join('  ');
}
