/**
 * A capture source: one database family's way of installing what it needs, keeping
 * the journal and waking the dispatcher. The daemon (src/app.ts) is written against
 * this interface only; PostgreSQL and the MySQL family each implement it.
 */
import type { Logger } from 'pino';
import { AppError } from '../util/errors.js';
import { delay } from '../util/wake.js';
import type { Journal, Route, Router, Waiter } from '../journal/types.js';
import type { BackfillRecord } from './backfill/types.js';
import type { DaemonEventBus } from '../observability/events.js';
import type { WakeSignal } from '../util/wake.js';
import type { AttemptRow } from '../journal/attempt-log.js';

/** A watched table as the database names it. */
export interface ResolvedTable {
  readonly schema: string;
  readonly name: string;
  /** Primary key columns in key order; empty when the table has none. */
  readonly keyColumns: readonly string[];
}

export interface JournalOptions {
  readonly instanceId: string;
  /** How long a claim stays valid; past it another instance may take the event over. */
  readonly leaseMs: number;
  /** Keep delivered events (listener.retention > 0) instead of deleting them. */
  readonly keepDelivered: boolean;
  /** The watched tables: this daemon claims only their events. */
  readonly tables: readonly ResolvedTable[];
}

/** One destination's backlog of one watched table, for the metrics. */
export interface TableBacklog {
  /** The destination; '' for changes captured but not routed yet. */
  readonly destination: string;
  readonly schema: string;
  readonly table: string;
  /** Events still in the journal: waiting, retrying or in flight (counted up to BACKLOG_SCAN_LIMIT). */
  readonly pending: number;
  /** Age of the oldest of them; 0 when there is none. */
  readonly oldestPendingSeconds: number;
  /** Events in dead letters (counted up to BACKLOG_SCAN_LIMIT). */
  readonly deadLetters: number;
}

/**
 * Rows of the journal (and of dead letters) a backlog query reads at most, oldest
 * first: the cost of a scrape stays bounded however large the journal grows.
 */
export const BACKLOG_SCAN_LIMIT = 100_000;

/** The journal of one database: the capture inbox, its router, and every destination's queue. */
export interface SourceJournal {
  /** The queue of one destination. */
  destination(name: string): Journal;
  /** The router of this daemon's tables, moving changes along `routes`. */
  router(routes: readonly Route[]): Router;
  /** Gives back every claim this instance still holds (graceful stop), refunding the attempt. */
  releaseClaims(): Promise<number>;
  /** Releases claims of earlier processes in this pid scope that no longer run. */
  releaseClaimsOfDeadLocalProcesses(scope: string, isAlive: (pid: number) => boolean): Promise<number>;
  /** Removes delivered events older than the retention. */
  purgeDelivered(retentionSeconds: number): Promise<number>;
  /** The attempt log's writes and prunes (http.attempt_log). */
  writeAttempts(rows: readonly AttemptRow[]): Promise<void>;
  pruneAttempts(maxRows: number, maxAgeSeconds: number): Promise<number>;
  /** The backlog of each destination and watched table, in one cheap query (see BACKLOG_SCAN_LIMIT). */
  backlog(destinations: readonly string[]): Promise<TableBacklog[]>;
  /** The unfinished backfills of this journal, whoever runs them (for the metrics). */
  backfills(): Promise<BackfillRecord[]>;
}

export interface SourceWaiter extends Waiter {
  start(): void;
  stop(): Promise<void>;
  /** True while the wake-up channel (e.g. LISTEN) is in place. */
  readonly connected: boolean;
}

/** A capture part that runs beside the journal (log capture's reader): started after prepare, stopped first. */
export interface CaptureReader {
  start(): void;
  stop(): Promise<void>;
  /** How far behind the log the journal is, for the metrics (undefined: not known now). */
  lag(): Promise<{ readonly bytes: number | undefined; readonly seconds: number } | undefined>;
}

export interface CaptureSource {
  /** Connects, checks the server, installs what is missing (or, without install, verifies). */
  prepare(install: boolean, bus: DaemonEventBus, log: Logger): Promise<ResolvedTable[]>;
  /** The journal, with event ids of this installation. */
  openJournal(opts: JournalOptions): Promise<SourceJournal>;
  waiter(wake: WakeSignal, bus: DaemonEventBus): SourceWaiter;
  /** The log reader, with listener.capture: log; undefined when triggers capture. */
  reader?(tables: readonly ResolvedTable[], bus: DaemonEventBus, log: Logger): CaptureReader | undefined;
  close(): Promise<void>;
}

/** What an installer plans or did: the steps, the tables found, and warnings. */
export interface PlanLike {
  readonly steps: ReadonlyArray<{ readonly description: string }>;
  readonly tables: readonly ResolvedTable[];
  readonly warnings: readonly string[];
}

/** Installs tried at start when a watched table is busy. */
const INSTALL_ATTEMPTS = 5;

/**
 * The start-up install shared by every source. With `install` off, it only checks
 * that nothing is missing. An install that meets a busy table gives up quickly (so
 * the application is not held up) and is tried again a few times.
 */
export async function installAtStart(
  install: boolean,
  ops: { readonly plan: () => Promise<PlanLike>; readonly apply: () => Promise<PlanLike> },
  bus: DaemonEventBus,
  log: Logger,
): Promise<ResolvedTable[]> {
  if (!install) {
    const plan = await ops.plan();
    for (const w of plan.warnings) bus.emit('install:warning', { message: w });
    if (plan.steps.length > 0) {
      throw new AppError('NOT_INSTALLED', `the database is missing: ${plan.steps.map((s) => s.description).join('; ')}`, {
        hint: 'run "app-db-listener install --config <file>" (or allow listener.auto_install)',
      });
    }
    return [...plan.tables];
  }
  for (let attempt = 1; ; attempt++) {
    try {
      const plan = await ops.apply();
      for (const w of plan.warnings) bus.emit('install:warning', { message: w });
      for (const s of plan.steps) bus.emit('install:step', { description: s.description });
      return [...plan.tables];
    } catch (err) {
      if (!(err instanceof AppError && err.code === 'INSTALL_LOCK_TIMEOUT') || attempt >= INSTALL_ATTEMPTS) throw err;
      log.warn({ attempt, error: err.message }, 'A watched table is busy; installing again shortly');
      await delay(attempt * 2_000);
    }
  }
}
