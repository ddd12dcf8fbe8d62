/**
 * The daemon's typed event stream. Logs (and later metrics) subscribe here, so the
 * hot path only emits facts and never formats a log line or touches a counter itself.
 */
import { EventEmitter } from 'node:events';
import type { JournalEvent } from '../journal/types.js';

export interface DaemonEvents {
  'delivery:succeeded': [{ event: JournalEvent; status: number; durationMs: number; latencyMs: number }];
  'delivery:failed': [{ event: JournalEvent; status?: number; error: string; durationMs: number; retryInMs: number; counted: boolean }];
  'delivery:dead': [{ event: JournalEvent; status?: number; error: string }];
  'endpoint:down': [{ consecutiveFailures: number; lastError: string }];
  'endpoint:up': [{ downForMs: number }];
  'listen:connected': [{ reconnect: boolean }];
  'listen:lost': [{ error: string; retryInMs: number }];
  'journal:error': [{ operation: string; error: string; retryInMs: number }];
  'journal:recovered': [{ operation: string }];
  'install:step': [{ description: string }];
  'install:warning': [{ message: string }];
}

export class DaemonEventBus extends EventEmitter<DaemonEvents> {}
