import type { Outcome } from './policy.js';

/**
 * Circuit breaker for one webhook endpoint: pure state, an injected clock, no
 * timers. The caller (the dispatcher) asks it what to do and reports results.
 *
 * Why: when the receiver is down, every event fails the same way. Counting
 * those failures against each event would burn its retries in minutes and fill
 * the dead letters with events that were never wrong (loss 12 of the original
 * was the opposite sin: a dead endpoint stalled every worker). So an outage is
 * detected once, delivery holds back, one probe at a time checks for recovery,
 * and the events keep their retries for failures that are really theirs.
 *
 * Rules:
 * 1. Only endpoint failures count (timeouts, refused/reset connections, DNS,
 *    TLS, 408/425/429/5xx). Any answer from the endpoint, even a 3xx or a
 *    4xx that dead-letters the event, proves it is reachable: it resets the
 *    streak and, if the breaker is open, closes it.
 * 2. Suspect: after `suspectAfter` (2) endpoint failures in a row, further
 *    endpoint failures do not consume a retry (recordFailure returns true). One
 *    failure alone may be the event's own fault (a payload that makes the
 *    receiver time out), so it still counts; two in a row, across whatever
 *    events, look like the endpoint.
 * 3. Down: after `threshold` (5) endpoint failures in a row the breaker opens
 *    and emits `{type:'down'}` once. While down, only one probe is in flight at
 *    a time (beginProbe); the first is allowed `probeInitialMs` (1 s) after
 *    opening, and each failed probe doubles the wait up to `probeMaxMs` (60 s):
 *    a short blip recovers within a second or two, a long outage costs one
 *    request a minute. A probe whose result is never reported is forgotten
 *    after `probeLeaseMs` so a lost callback cannot wedge delivery forever.
 * 4. Up: the first success (or any answer, rule 1) closes the breaker and emits
 *    `{type:'up', downForMs}` once, so the outage is logged at its start and end
 *    instead of once per event.
 */
export type HealthState = 'up' | 'down';

export type HealthTransition =
  | {
      type: 'down';
      /** When the failure streak that opened the breaker began (clock ms). */
      since: number;
      consecutiveFailures: number;
      /** Error of the failure that opened the breaker, when given. */
      lastError?: string;
    }
  | {
      type: 'up';
      /** Same `since` as the matching `down`. */
      since: number;
      /** From the start of the failure streak to the success that closed it. */
      downForMs: number;
      /** Endpoint failures counted during the outage, the opening streak included. */
      consecutiveFailures: number;
    };

export interface EndpointHealthOptions {
  /** Clock in milliseconds. Default Date.now. */
  readonly now?: () => number;
  /** Consecutive endpoint failures that open the breaker. Default 5. */
  readonly threshold?: number;
  /** Consecutive endpoint failures after which failures stop consuming retries. Default 2. */
  readonly suspectAfter?: number;
  /** Wait before the first probe once down, ms. Default 1000. */
  readonly probeInitialMs?: number;
  /** Longest wait between probes, ms. Default 60000. */
  readonly probeMaxMs?: number;
  /** A probe not reported within this time is considered failed, ms. Default 600000. */
  readonly probeLeaseMs?: number;
  /** Called synchronously on each transition. */
  readonly onTransition?: (t: HealthTransition) => void;
}

export class EndpointHealth {
  readonly #now: () => number;
  readonly #threshold: number;
  readonly #suspectAfter: number;
  readonly #probeInitialMs: number;
  readonly #probeMaxMs: number;
  readonly #probeLeaseMs: number;
  readonly #onTransition: ((t: HealthTransition) => void) | undefined;

  #state: HealthState = 'up';
  #streak = 0;
  #streakSince = 0;
  #probeIntervalMs: number;
  #nextProbeAt = 0;
  #probeStartedAt: number | undefined;

  constructor(opts: EndpointHealthOptions = {}) {
    this.#now = opts.now ?? Date.now;
    this.#threshold = positive('threshold', opts.threshold ?? 5);
    this.#suspectAfter = positive('suspectAfter', opts.suspectAfter ?? 2);
    this.#probeInitialMs = positive('probeInitialMs', opts.probeInitialMs ?? 1000);
    this.#probeMaxMs = Math.max(this.#probeInitialMs, opts.probeMaxMs ?? 60_000);
    this.#probeLeaseMs = positive('probeLeaseMs', opts.probeLeaseMs ?? 600_000);
    this.#onTransition = opts.onTransition;
    this.#probeIntervalMs = this.#probeInitialMs;
  }

  get state(): HealthState {
    return this.#state;
  }

  /** Endpoint failures in a row (reset by any answer). */
  get consecutiveFailures(): number {
    return this.#streak;
  }

  /** True when failures no longer consume retries (rule 2) or the breaker is open. */
  get suspect(): boolean {
    return this.#state === 'down' || this.#streak >= this.#suspectAfter;
  }

  /** A 2xx: the endpoint works. Closes the breaker if it was open. */
  recordSuccess(): void {
    this.#answered();
  }

  /**
   * A failed attempt. `endpointFailure` false (3xx, or a 4xx dead outcome)
   * means the endpoint answered: the streak resets (rule 1).
   * Returns true when this failure should NOT consume one of the event's
   * retries, because the endpoint is suspect or down.
   */
  recordFailure(endpointFailure: boolean, error?: string): boolean {
    if (!endpointFailure) {
      this.#answered();
      return false;
    }
    const now = this.#now();
    if (this.#streak === 0) this.#streakSince = now;
    this.#streak += 1;
    if (this.#state === 'up' && this.#streak >= this.#threshold) {
      this.#state = 'down';
      this.#probeIntervalMs = this.#probeInitialMs;
      this.#nextProbeAt = now + this.#probeInitialMs;
      this.#probeStartedAt = undefined;
      const t: HealthTransition = { type: 'down', since: this.#streakSince, consecutiveFailures: this.#streak };
      if (error !== undefined) t.lastError = error;
      this.#onTransition?.(t);
    }
    return this.suspect;
  }

  /**
   * Reports an outcome of WebhookClient.send; `probe` says this attempt was
   * granted by beginProbe(). Returns what recordFailure returns (false on success).
   */
  record(outcome: Outcome, probe = false): boolean {
    switch (outcome.kind) {
      case 'success':
        this.recordSuccess();
        return false;
      case 'dead':
        return this.recordFailure(false);
      case 'retry': {
        const spared = this.recordFailure(outcome.endpointFailure, outcome.error);
        if (probe && outcome.endpointFailure) this.probeFailed();
        return spared;
      }
    }
  }

  /**
   * While down: asks to send one probe. True when a probe is due and none is in
   * flight; the caller must then report its result (record(outcome, true), or
   * recordSuccess / recordFailure(false) / probeFailed). False when up (send
   * normally, no probe needed) or when it is not time yet.
   */
  beginProbe(): boolean {
    if (this.#state === 'up') return false;
    const now = this.#now();
    if (this.#probeStartedAt !== undefined) {
      if (now < this.#probeStartedAt + this.#probeLeaseMs) return false;
      // Lease expired: the result was lost. Count it as a failed probe and let
      // this caller probe now (the lease already made it wait long enough).
      this.#probeIntervalMs = Math.min(this.#probeIntervalMs * 2, this.#probeMaxMs);
    } else if (now < this.#nextProbeAt) {
      return false;
    }
    this.#probeStartedAt = now;
    return true;
  }

  /**
   * Clock time at which beginProbe() may next return true. Up: now (no
   * waiting). Down with a probe in flight: when its lease expires (the
   * result normally comes long before).
   */
  nextProbeAt(): number {
    if (this.#state === 'up') return this.#now();
    if (this.#probeStartedAt !== undefined) return this.#probeStartedAt + this.#probeLeaseMs;
    return this.#nextProbeAt;
  }

  /** The probe was granted but nothing was sent (nothing due): free the slot, keep the interval. */
  probeSkipped(): void {
    if (this.#state === 'up') return;
    this.#probeStartedAt = undefined;
    this.#nextProbeAt = this.#now() + this.#probeIntervalMs;
  }

  /** The probe failed with an endpoint failure: double the wait (up to probeMaxMs) and free the slot. */
  probeFailed(): void {
    if (this.#state === 'up') return;
    this.#probeStartedAt = undefined;
    this.#probeIntervalMs = Math.min(this.#probeIntervalMs * 2, this.#probeMaxMs);
    this.#nextProbeAt = this.#now() + this.#probeIntervalMs;
  }

  #answered(): void {
    if (this.#state === 'down') {
      const t: HealthTransition = {
        type: 'up',
        since: this.#streakSince,
        downForMs: this.#now() - this.#streakSince,
        consecutiveFailures: this.#streak,
      };
      this.#state = 'up';
      this.#probeStartedAt = undefined;
      this.#probeIntervalMs = this.#probeInitialMs;
      this.#streak = 0;
      this.#onTransition?.(t);
      return;
    }
    this.#streak = 0;
  }
}

function positive(name: string, value: number): number {
  if (!Number.isFinite(value) || value < 1) {
    throw new RangeError(`EndpointHealth: ${name} must be a number >= 1, got ${value}`);
  }
  return value;
}
