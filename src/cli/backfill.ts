/**
 * `backfill`: sends the rows a watched table already holds, as READ events, beside
 * its live changes (docs/backfill.md). The command runs the backfill itself, in the
 * foreground, with a progress bar on a terminal and plain lines otherwise; killed or
 * stopped, `backfill --resume` continues after the last batch it committed.
 */
import { openBackfills, progressLine, progressOf, runBackfill, formatDuration, type BackfillRecord, type BackfillStore } from '../capture/backfill/index.js';
import { parseTableName } from '../config/index.js';
import { sameTable } from '../config/schema.js';
import type { Config, DestinationConfig } from '../config/types.js';
import { AppError } from '../util/errors.js';
import { ExitCode, loadConfigOrExit } from './common.js';
import { EXIT, printError } from './output.js';

export interface BackfillOptions {
  readonly config: string;
  readonly table?: string;
  readonly destination?: string;
  readonly where?: string;
  readonly key?: string;
  readonly batchSize?: string;
  readonly rate?: string;
  readonly maxBacklog?: string;
  readonly resume?: boolean;
  readonly cancel?: boolean;
}

export const BACKFILL_DEFAULTS = { batchSize: 500 } as const;

/** Errors in what the command was asked (exit 2), not in what it met. */
const USAGE_ERRORS = new Set(['BAD_FLAG', 'BAD_TABLE', 'BAD_DESTINATION']);

/**
 * --max-backlog by default: twice the worker pool. A live change then waits behind
 * that many READ events at most (a few ms of deliveries), which keeps its latency
 * near its idle value; a larger backlog backfills faster and delays live changes more.
 */
export function defaultMaxBacklog(config: Config): number {
  return 2 * config.worker.pool_size;
}
/** A line of progress every this often when the output is not a terminal. */
const LINE_EVERY_MS = 5_000;
const BAR_EVERY_MS = 200;

function integerFlag(flag: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new AppError('BAD_FLAG', `${flag} ${JSON.stringify(value)} must be a whole number from ${min} to ${max.toLocaleString('en-US')}`);
  }
  return n;
}

/** The destinations that take the table, or the one named (which must take it). */
export function backfillDestinations(config: Config, table: { schema: string; name: string }, named: string | undefined): DestinationConfig[] {
  const takes = (d: DestinationConfig) => d.tables === undefined || d.tables.some((ref) => sameTable(ref, table));
  if (named !== undefined) {
    const d = config.destinations.find((x) => x.name === named);
    if (!d) {
      throw new AppError('BAD_DESTINATION', `--destination ${JSON.stringify(named)} is not a configured destination`, {
        hint: `configured: ${config.destinations.map((x) => x.name).join(', ')}`,
      });
    }
    if (!takes(d)) throw new AppError('BAD_DESTINATION', `destination ${named} does not take table ${table.schema}.${table.name} (see its tables:)`);
    return [d];
  }
  const all = config.destinations.filter(takes);
  if (all.length === 0) throw new AppError('BAD_DESTINATION', `no destination takes table ${table.schema}.${table.name}`);
  return all;
}

export async function backfillCommand(opts: BackfillOptions): Promise<number> {
  const { config } = loadConfigOrExit(opts.config);
  let store: BackfillStore | undefined;
  try {
    if (opts.table === undefined) throw new AppError('BAD_FLAG', 'say which table: --table [schema.]name (one of database.tables)');
    const parsed = parseTableName(opts.table);
    if (!parsed.ok) throw new AppError('BAD_TABLE', `--table ${JSON.stringify(opts.table)} ${parsed.problem}`);
    const watched = config.database.tables.find((t) => sameTable(t, parsed.table) || sameTable(parsed.table, t));
    if (!watched) {
      throw new AppError('BAD_TABLE', `table ${opts.table} is not watched by this configuration`, {
        hint: `database.tables: ${config.database.tables.map((t) => (t.schema ? `${t.schema}.${t.name}` : t.name)).join(', ')}`,
      });
    }
    if (opts.cancel && opts.resume) throw new AppError('BAD_FLAG', '--cancel and --resume cannot go together');
    const batchSize = integerFlag('--batch-size', opts.batchSize, 1, 10_000);
    // --rate 0: no limit (on --resume, removes one).
    const rateFlag = integerFlag('--rate', opts.rate, 0, 1_000_000);
    const rate = rateFlag === 0 ? undefined : rateFlag;
    const maxBacklog = integerFlag('--max-backlog', opts.maxBacklog, 1, 10_000_000);
    const key = opts.key === undefined ? undefined : opts.key.split(',').map((k) => k.trim()).filter((k) => k !== '');
    if (key !== undefined && key.length === 0) throw new AppError('BAD_FLAG', '--key must name one or more columns, separated by commas');
    const condition = opts.where === undefined || opts.where.trim() === '' ? undefined : opts.where;

    const opened = await openBackfills(config);
    store = opened.store;
    const table = await store.resolveTable(parsed.table.schema ?? watched.schema, parsed.table.name, key);
    const shown = `${table.schema}.${table.name}`;
    const destinations = backfillDestinations(config, table, opts.destination).map((d) => d.name);

    if (opts.cancel) {
      const cancelled = await store.cancel(table.schema, table.name, opts.destination);
      if (cancelled.length === 0) {
        process.stderr.write(`error: no unfinished backfill of ${shown}${opts.destination ? ` for destination ${opts.destination}` : ''}\n`);
        return EXIT.runtime;
      }
      for (const b of cancelled) process.stdout.write(`Cancelled backfill ${b.id} of ${shown} (${describeScope(b)}) after ${b.rowsDone.toLocaleString('en-US')} rows.\n`);
      return EXIT.ok;
    }

    let record: BackfillRecord;
    const existing = await store.unfinished(table.schema, table.name, opts.destination);
    if (opts.resume) {
      // An interrupted backfill, or else the last one that failed (its cause fixed).
      const failed = existing ? undefined : await store.latestFailed(table.schema, table.name, opts.destination);
      const resumable = existing ?? (failed ? { ...failed, leased: false } : undefined);
      if (!resumable) throw new AppError('BACKFILL_NONE', `no unfinished or failed backfill of ${shown}${opts.destination ? ` for destination ${opts.destination}` : ''} to resume`);
      await resumeChecks(store, resumable, condition, key, shown);
      record = await store.resume(resumable.id, {
        batchSize: batchSize ?? resumable.batchSize,
        rate: opts.rate === undefined ? resumable.rate : rate,
        maxBacklog: maxBacklog ?? resumable.maxBacklog,
      });
      process.stdout.write(`Resuming backfill ${record.id} of ${shown} (${describeScope(record)}) after ${record.rowsDone.toLocaleString('en-US')} rows.\n`);
    } else {
      if (existing) {
        if (existing.leased) throw runningError(existing.id, shown);
        throw new AppError('BACKFILL_EXISTS', `backfill ${existing.id} of ${shown} was interrupted after ${existing.rowsDone.toLocaleString('en-US')} rows`, {
          hint: `continue it with "backfill --table ${opts.table}${opts.destination ? ` --destination ${opts.destination}` : ''} --resume", or cancel it with --cancel`,
        });
      }
      if (table.keyColumns.length === 0) {
        throw new AppError('BACKFILL_NO_KEY', `table ${shown} has no primary key: a backfill reads a table in key order, batch after batch`, {
          hint: 'give the columns of a unique index of NOT NULL columns with --key col[,col]',
        });
      }
      const estimate = await store.estimate(table, condition);
      record = await store.create(
        {
          schema: table.schema,
          table: table.name,
          destination: opts.destination,
          condition,
          keyColumns: table.keyColumns,
          batchSize: batchSize ?? BACKFILL_DEFAULTS.batchSize,
          rate,
          maxBacklog: maxBacklog ?? defaultMaxBacklog(config),
        },
        estimate,
      );
      if (!(await store.acquire(record.id))) throw runningError(record.id, shown);
      process.stdout.write(
        `Backfill ${record.id} of ${shown} (${describeScope(record)}): about ${(estimate ?? 0).toLocaleString('en-US')} rows, ${record.rate === undefined ? 'no rate limit' : `at most ${record.rate.toLocaleString('en-US')} rows/s`}.\n`,
      );
    }
    return await run(store, record, table, destinations, opened.isTransient, shown, opts);
  } catch (err) {
    if (err instanceof ExitCode) throw err;
    printError(err);
    return err instanceof AppError && USAGE_ERRORS.has(err.code) ? EXIT.usage : EXIT.runtime;
  } finally {
    await store?.close();
  }
}

/** What --resume may not change, and the lease (refused while another process runs it). */
async function resumeChecks(store: BackfillStore, b: BackfillRecord & { leased: boolean }, condition: string | undefined, key: string[] | undefined, shown: string): Promise<void> {
  if (condition !== undefined && condition !== b.condition) {
    throw new AppError('BAD_FLAG', `--where cannot change on --resume (backfill ${b.id} reads ${b.condition === undefined ? 'every row' : `where ${b.condition}`})`);
  }
  if (key !== undefined && key.join(',') !== b.keyColumns.join(',')) throw new AppError('BAD_FLAG', `--key cannot change on --resume (backfill ${b.id} reads by ${b.keyColumns.join(', ')})`);
  if (b.leased || !(await store.acquire(b.id))) throw runningError(b.id, shown);
}

function describeScope(b: Pick<BackfillRecord, 'destination' | 'condition'>): string {
  const to = b.destination === undefined ? 'every destination of the table' : `destination ${b.destination}`;
  return b.condition === undefined ? to : `${to}, where ${b.condition}`;
}

function runningError(id: string, table: string): AppError {
  return new AppError('BACKFILL_RUNNING', `backfill ${id} of ${table} is running in another process`, {
    hint: 'wait for it, or stop it (its progress is kept) and resume it here with --resume; --cancel ends it',
  });
}

async function run(
  store: BackfillStore,
  record: BackfillRecord,
  table: { schema: string; name: string; primaryKey: readonly string[] },
  destinations: string[],
  isTransient: (err: unknown) => boolean,
  shown: string,
  opts: BackfillOptions,
): Promise<number> {
  const stop = new AbortController();
  let signals = 0;
  const onSignal = () => {
    signals++;
    if (signals > 1) process.exit(EXIT.forced);
    stop.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const tty = process.stdout.isTTY === true;
  const started = Date.now();
  const startRows = record.rowsDone;
  // The recent rate: rows over the last few seconds.
  const samples: Array<[number, number]> = [[started, startRows]];
  let shownAt = 0;
  let lastPaused: string | undefined;
  const show = (rows: number, paused: string | undefined, final = false) => {
    const now = Date.now();
    samples.push([now, rows]);
    while (samples.length > 2 && now - samples[0]![0] > 5_000) samples.shift();
    if (!final && now - shownAt < (tty ? BAR_EVERY_MS : LINE_EVERY_MS) && paused === lastPaused) return;
    shownAt = now;
    lastPaused = paused;
    const [t0, r0] = samples[0]!;
    const rate = now - t0 > 0 ? ((rows - r0) * 1000) / (now - t0) : 0;
    const line = progressLine(progressOf(rows, record.rowsEstimated, rate, final), { bar: tty ? 30 : undefined, paused });
    process.stdout.write(tty ? `\r\u001b[2K${line}` : `${line}\n`);
  };
  try {
    let rowsDone = record.rowsDone;
    const outcome = await runBackfill(store, record, table, {
      destinations,
      signal: stop.signal,
      isTransient,
      onProgress: (rows, paused) => {
        rowsDone = rows;
        show(rows, paused);
      },
      onRetry: (error, inMs) => {
        if (tty) process.stdout.write('\n');
        process.stderr.write(`warning: a batch failed (${error}); trying again in ${formatDuration(inMs / 1000)}\n`);
      },
    });
    if (tty) process.stdout.write('\n');
    const seconds = (Date.now() - started) / 1000;
    const sent = rowsDone - startRows;
    const rate = seconds > 0 ? Math.round(sent / seconds) : sent;
    switch (outcome) {
      case 'done':
        process.stdout.write(`Backfill ${record.id} of ${shown} done: ${rowsDone.toLocaleString('en-US')} rows journaled in ${formatDuration(seconds)} (${rate.toLocaleString('en-US')} rows/s); they are delivered like any change.\n`);
        return EXIT.ok;
      case 'cancelled':
        process.stderr.write(`Backfill ${record.id} of ${shown} was cancelled after ${rowsDone.toLocaleString('en-US')} rows.\n`);
        return EXIT.runtime;
      case 'stopped':
        process.stdout.write(
          `Backfill ${record.id} of ${shown} stopped after ${rowsDone.toLocaleString('en-US')} rows; continue it with "backfill --table ${opts.table}${opts.destination ? ` --destination ${opts.destination}` : ''} --resume".\n`,
        );
        return EXIT.forced;
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** A backfill as `status` shows it. */
export interface BackfillStatus {
  readonly id: string;
  readonly table: string;
  readonly destination: string | null;
  readonly condition: string | null;
  /** running, interrupted (running, but no process runs it), done, cancelled or failed. */
  readonly state: string;
  readonly rowsDone: number;
  readonly rowsTotal: number | null;
  readonly ratePerSecond: number;
  readonly etaSeconds: number | null;
  readonly updatedAt: string;
  readonly error: string | null;
}

/** The latest backfills, for `status`; none when this installation predates them. */
export async function backfillStatuses(config: Config, limit = 10): Promise<BackfillStatus[]> {
  let opened;
  try {
    opened = await openBackfills(config);
  } catch (err) {
    if (err instanceof AppError && err.code === 'NOT_INSTALLED') return [];
    throw err;
  }
  try {
    const list = await opened.store.list(limit);
    return list.map((b) => {
      const finished = b.state !== 'running';
      const rate = finished || !b.leased ? 0 : runRateOf(b);
      const p = progressOf(b.rowsDone, b.rowsEstimated, rate, b.state === 'done');
      return {
        id: b.id,
        table: `${b.schema}.${b.table}`,
        destination: b.destination ?? null,
        condition: b.condition ?? null,
        state: b.state === 'running' && !b.leased ? 'interrupted' : b.state,
        rowsDone: b.rowsDone,
        rowsTotal: p.rowsTotal,
        ratePerSecond: Math.round(rate),
        etaSeconds: finished ? null : p.etaSeconds,
        updatedAt: b.updatedAt.toISOString(),
        error: b.error,
      };
    });
  } finally {
    await opened.store.close();
  }
}

function runRateOf(b: BackfillRecord): number {
  const seconds = (b.updatedAt.getTime() - b.resumedAt.getTime()) / 1000;
  return seconds < 1 ? 0 : (b.rowsDone - b.rowsAtResume) / seconds;
}

/** The BACKFILL rows of `status`. */
export function backfillStatusRows(list: readonly BackfillStatus[]): string[][] {
  return list.map((b) => [
    b.id,
    b.table,
    b.destination ?? '(all)',
    b.state,
    b.rowsTotal === null ? `${b.rowsDone.toLocaleString('en-US')}` : `${b.rowsDone.toLocaleString('en-US')}/${b.rowsTotal.toLocaleString('en-US')}`,
    b.ratePerSecond > 0 ? `${b.ratePerSecond.toLocaleString('en-US')}/s` : '-',
    b.etaSeconds === null ? '-' : formatDuration(b.etaSeconds),
    b.state === 'interrupted' ? 'resume with backfill --resume' : b.error ?? (b.condition === null ? '' : `where ${b.condition}`),
  ]);
}
