/**
 * The daemon's typed event stream. Logs and metrics subscribe here, so the hot path
 * only emits facts and never formats a log line or touches a counter itself.
 */
import { EventEmitter } from 'node:events';
import type { JournalEvent } from '../journal/types.js';

export interface DaemonEvents {
  /** Events this instance just claimed; `attempts` is 1 for a first attempt. */
  'events:claimed': [{ events: readonly JournalEvent[] }];
  'delivery:succeeded': [{ event: JournalEvent; status: number; durationMs: number; latencyMs: number }];
  'delivery:failed': [{ event: JournalEvent; status?: number; error: string; durationMs: number; retryInMs: number; counted: boolean }];
  'delivery:dead': [{ event: JournalEvent; status?: number; error: string; durationMs: number }];
  /** The destination's filter did not take the event (or failed on its row: `error`); it is not sent there. */
  'delivery:filtered': [{ event: JournalEvent; error?: string }];
  'endpoint:down': [{ destination: string; consecutiveFailures: number; lastError: string }];
  'endpoint:up': [{ destination: string; downForMs: number }];
  'listen:connected': [{ reconnect: boolean }];
  'listen:lost': [{ error: string; retryInMs: number }];
  'journal:error': [{ operation: string; error: string; retryInMs: number }];
  'journal:recovered': [{ operation: string }];
  /** Log capture: this instance took the lease and streams the replication slot. */
  'capture:connected': [{ slot: string }];
  /** Log capture: the replication connection failed; it is opened again after `retryInMs`. */
  'capture:lost': [{ error: string; retryInMs: number }];
  /** Log capture: a journal transaction of `rows` captured changes committed (and its position was confirmed). */
  'capture:journaled': [{ rows: number }];
  'install:step': [{ description: string }];
  'install:warning': [{ message: string }];
  /** Entries written to the attempt log (docs/console.md). */
  'attempts:written': [{ count: number }];
  /** Entries the attempt log skipped: its buffer was full or its write failed. */
  'attempts:skipped': [{ count: number }];
}

/**
 * Listeners (logs, metrics, an embedding program's own) are isolated: one that
 * throws is reported as a warning and never breaks delivery or the other listeners.
 */
export class DaemonEventBus extends EventEmitter<DaemonEvents> {
  override emit<K extends keyof DaemonEvents>(event: K, ...args: DaemonEvents[K]): boolean {
    const listeners = this.rawListeners(event) as Array<(...a: DaemonEvents[K]) => void>;
    for (const listener of listeners) {
      try {
        listener(...args);
      } catch (err) {
        process.emitWarning(`app-db-listener: a listener of "${String(event)}" threw: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    return listeners.length > 0;
  }
}
