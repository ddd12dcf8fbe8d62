/**
 * Whether the daemon can use its database right now, as its own work sees it: the
 * wake-up channel (LISTEN) is in place, no journal operation is failing, and the
 * last backlog query answered. Readiness (/readyz) and the database_connected gauge
 * both read it, so they never disagree.
 */
import type { DaemonEventBus } from './events.js';

export type DaemonPhase = 'starting' | 'running' | 'stopping';

export interface DatabaseFacts {
  readonly phase: DaemonPhase;
  /** The wake-up channel (LISTEN) is in place; always true where there is none. */
  readonly channelUp: boolean;
  /** Journal operations failing now, with their last error. */
  readonly failing: ReadonlyMap<string, string>;
  /** Error of the last backlog query; undefined when it answered. */
  readonly probeError: string | undefined;
}

/** Why the database cannot be used now; undefined when it can. */
export function databaseProblem(f: Omit<DatabaseFacts, 'phase'>): string | undefined {
  if (f.probeError !== undefined) return `database unreachable: ${f.probeError}`;
  for (const [operation, error] of f.failing) return `database error during ${operation}: ${error}`;
  if (!f.channelUp) return 'the LISTEN connection to the database is down (reconnecting)';
  return undefined;
}

/** Why the daemon is not ready to serve; undefined when it is. */
export function readinessProblem(f: DatabaseFacts): string | undefined {
  if (f.phase === 'starting') return 'starting: connecting to the database and checking the installed schema';
  if (f.phase === 'stopping') return 'stopping';
  return databaseProblem(f);
}

export class DatabaseStatus {
  phase: DaemonPhase = 'starting';
  private readonly failing = new Map<string, string>();
  private probeError: string | undefined;
  private channelUp: () => boolean = () => false;

  constructor(bus: DaemonEventBus) {
    bus.on('journal:error', ({ operation, error }) => this.failing.set(operation, error));
    bus.on('journal:recovered', ({ operation }) => this.failing.delete(operation));
  }

  /** Where to read the state of the wake-up channel, once the daemon has one. */
  watchChannel(up: () => boolean): void {
    this.channelUp = up;
  }

  /** The outcome of a backlog query: its error, or undefined when it answered. */
  recordProbe(error: string | undefined): void {
    this.probeError = error;
  }

  private facts(): DatabaseFacts {
    return { phase: this.phase, channelUp: this.channelUp(), failing: this.failing, probeError: this.probeError };
  }

  /** Connected: started, and the database serves every operation. */
  connected(): boolean {
    return this.phase !== 'starting' && databaseProblem(this.facts()) === undefined;
  }

  readinessProblem(): string | undefined {
    return readinessProblem(this.facts());
  }
}
