/**
 * The seam between dispatch and a destination's transport. The dispatcher hands a
 * sink messages (one, or a batch), already formatted (formats.ts), and gets one
 * outcome per message; retries, backoff, endpoint health and dead letters stay in
 * dispatch, so a new transport (a broker) is one file implementing this.
 */
import type { Outcome } from './policy.js';

/** One event as a sink sends it. */
export interface SinkMessage {
  /** The event id, the same for every destination and every attempt (receivers dedupe on it). */
  readonly eventId: string;
  readonly body: string;
  readonly contentType: string;
  /** The format's own headers (binary CloudEvents' ce-*), lower case. */
  readonly headers: Readonly<Record<string, string>>;
  /** Where the change happened, for a broker's subject, routing key, stream or topic (address.ts). */
  readonly schema: string;
  readonly table: string;
  readonly operation: 'insert' | 'update' | 'delete' | 'read' | 'truncate';
}

/** Whether the destination can be reached, found without sending an event (doctor). */
export interface SinkCheck {
  readonly ok: boolean;
  /** What was found, safe to show (no credentials). */
  readonly detail: string;
  /** When not ok: what to change or try. */
  readonly fix?: string;
}

/**
 * What a sink can tell the attempt log about one attempt, when asked to (the webhook's
 * `keepResponseBytes`). Never used for delivery decisions.
 */
export interface AttemptDetail {
  /** Where it went, without credentials. */
  readonly address?: string;
  /** The request headers as sent, flat [name, value, …] (unredacted: the log redacts them). */
  readonly requestHeaders?: readonly string[];
  /** The start of the response body. */
  readonly responseBody?: string;
}

/** What one attempt at one message came to, and how long the attempt took. */
export type SinkResult = Outcome & { readonly durationMs: number; readonly detail?: AttemptDetail };

export interface Sink {
  /** Where it sends, safe to log (no credentials). */
  readonly description: string;
  /**
   * Sends the messages and resolves with one result per message, in order. Never
   * rejects for a transport or endpoint problem: those are outcomes. `signal` cancels
   * (shutdown): the results are then retries.
   */
  send(messages: readonly SinkMessage[], signal?: AbortSignal): Promise<SinkResult[]>;
  /** Can the destination be reached and would it accept us? Never sends an event. */
  check(): Promise<SinkCheck>;
  /** Waits for attempts in progress, then releases connections. */
  close(): Promise<void>;
}
