import type { EventOperation } from '../config/types.js';

export type { EventOperation };

/** One claimed event, as the dispatcher sees it. Row values stay raw JSON text. */
export interface JournalEvent {
  /** The destination whose queue it was claimed from. */
  readonly destination: string;
  /** Journal row id (a bigint, kept as text). */
  readonly id: string;
  /** Stable event id sent as `id` and `webhook-id`: the same on every attempt and after restarts. */
  readonly eventId: string;
  readonly op: EventOperation;
  readonly schema: string;
  readonly table: string;
  /** Time of the change, RFC 3339 in UTC with microseconds. */
  readonly timestamp: string;
  /** Milliseconds since the epoch of the change (for latency metrics). */
  readonly createdAtMs: number;
  readonly newRow: string | null;
  readonly oldRow: string | null;
  /** Attempts including the one this claim starts. */
  readonly attempts: number;
  /** Identifies this claim of the event; outcomes are written only while it holds. */
  readonly claimToken: string;
  /**
   * The row's hash, when more events of the same row waited at claim time: once this
   * one is delivered or dead-lettered, the journal looks up the row's next event
   * directly (see claim-window.ts) instead of waiting for its walk to reach it.
   */
  readonly rowHash?: string;
}

/** The recorded outcome of one claimed event. */
export type Completion =
  | {
      readonly kind: 'delivered';
      readonly id: string;
      readonly token: string;
      /** The event's table, for the table's "last delivery" time. */
      readonly schema?: string;
      readonly table?: string;
      /** JournalEvent.rowHash: the row has more events waiting. */
      readonly rowHash?: string;
    }
  | {
      readonly kind: 'retry';
      readonly id: string;
      readonly token: string;
      /** Milliseconds from now (database clock) before the next attempt. */
      readonly delayMs: number;
      /** The attempt is given back (endpoint outage, shutdown): it does not count. */
      readonly refund: boolean;
      readonly status?: number;
      /** Undefined for an event given back unsent: its previous status and error stay. */
      readonly error?: string;
    }
  | {
      readonly kind: 'dead';
      readonly id: string;
      readonly token: string;
      readonly status?: number;
      readonly error: string;
      /** JournalEvent.rowHash: the row has more events waiting. */
      readonly rowHash?: string;
    };

/**
 * One destination's queue in the durable journal. Every method that changes an event
 * is guarded by ownership: it only touches events this instance has claimed.
 */
export interface Journal {
  /** The destination whose queue this is. */
  readonly destination: string;
  /** Claims at most `limit` due events, at most one per row key, oldest first. */
  claim(limit: number): Promise<JournalEvent[]>;
  /** After a claim: events lie past the window its walk covered (claim again at once, see ClaimCursor.moreAhead). */
  readonly moreAhead?: boolean;
  /** Records a batch of outcomes in one round trip per kind. */
  complete(batch: readonly Completion[]): Promise<void>;
  /** Makes every retry waiting for a later time due now (the endpoint is back). */
  retryNow(): Promise<number>;
  /** Sets the destination's "last delivery" time of a table to now (best effort, see LastDeliveryRecorder). */
  touchLastDelivery?(schema: string, table: string): Promise<void>;
}

/** Where a change goes: a destination takes the changes of these tables and operations. */
export interface Route {
  readonly destination: string;
  readonly schema: string;
  readonly table: string;
  readonly operations: readonly EventOperation[];
}

/** What one move from the capture inbox did. */
export interface RouteResult {
  /** Changes taken out of the inbox (routed to one or more destinations, or to none). */
  readonly moved: number;
  /** Destinations whose queues received changes. */
  readonly destinations: readonly string[];
  /** False when this instance leads none of its tables (another instance routes them). */
  readonly leading: boolean;
}

/**
 * The router: moves captured changes from the capture inbox into the queue of each
 * destination they route to. For each table, one instance at a time routes (it holds
 * the table's route lock); the others deliver what it routed.
 */
export interface Router {
  /** Moves at most `limit` changes, oldest first. */
  route(limit: number): Promise<RouteResult>;
  /** Gives up the route locks (stop). */
  close(): Promise<void>;
}

/**
 * The wake-up side: while marked waiting, writers send a NOTIFY for each change;
 * otherwise they do not (the daemon is busy and will look anyway).
 */
export interface Waiter {
  /** True while the mark holds (it is lost with the connection that holds it). */
  readonly marked: boolean;
  /**
   * Marks this daemon waiting. False when it cannot be marked now (a writer is
   * mid-transaction, another daemon already waits, or the connection is down):
   * the caller looks again soon instead of sleeping long.
   */
  markWaiting(): Promise<boolean>;
  /** Ends the waiting mark. */
  clearWaiting(): Promise<void>;
  /**
   * After a failed markWaiting: true when another daemon already waits (it gets
   * the wake-ups, so this one can sleep a poll interval), false when a writer was
   * mid-transaction (look again soon).
   */
  readonly otherWaiting?: boolean;
}
