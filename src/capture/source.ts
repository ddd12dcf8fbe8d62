/**
 * A capture source: one database family's way of installing what it needs, keeping
 * the journal and waking the dispatcher. The daemon (src/app.ts) is written against
 * this interface only; PostgreSQL and the MySQL family each implement it.
 */
import type { Logger } from 'pino';
import type { Journal, Waiter } from '../journal/types.js';
import type { DaemonEventBus } from '../observability/events.js';
import type { WakeSignal } from '../util/wake.js';

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

export interface SourceJournal extends Journal {
  /** Releases claims of earlier processes in this pid scope that no longer run. */
  releaseClaimsOfDeadLocalProcesses(scope: string, isAlive: (pid: number) => boolean): Promise<number>;
}

export interface SourceWaiter extends Waiter {
  start(): void;
  stop(): Promise<void>;
  /** True while the wake-up channel (e.g. LISTEN) is in place. */
  readonly connected: boolean;
}

export interface CaptureSource {
  /** Connects, checks the server, installs what is missing (or, without install, verifies). */
  prepare(install: boolean, bus: DaemonEventBus, log: Logger): Promise<ResolvedTable[]>;
  /** The journal, with event ids of this installation. */
  openJournal(opts: JournalOptions): Promise<SourceJournal>;
  waiter(wake: WakeSignal, bus: DaemonEventBus): SourceWaiter;
  close(): Promise<void>;
}
