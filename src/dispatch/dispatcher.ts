/**
 * The dispatcher of one destination: claims due events from the destination's queue,
 * never more than it has free delivery slots, delivers each one, and hands the
 * outcome to the completer.
 *
 * Idle and busy: when a claim comes back empty and nothing is in flight, the
 * dispatcher sleeps until the router moves changes into its queue, a finished
 * delivery, or the jittered poll timer (the floor: retries coming due, and changes
 * another instance routed, are found within one poll interval). The router (see
 * routing.ts) is the one that waits for the database's wake-ups.
 *
 * Claiming ahead: while deliveries are quick, claimed events wait in memory (up to
 * two claims' worth, see batching.ts), so a finished delivery starts the next one at
 * once instead of after a claim round trip, and each claim brings a batch. Waiting events are not delivered, so a crash cannot
 * duplicate them; it only leaves them claimed until their lease runs out. An event
 * that waited too long for a slot (its lease must outlast its delivery) is given
 * back instead.
 *
 * Retries: policy lives in delivery/policy.ts (classification, backoff) and
 * delivery/health.ts (outage detection). While the endpoint is down, only one
 * probe event is sent at a time, and failures give their attempt back. Each
 * destination has its own health: one that is down pauses only itself.
 */
import { setMaxListeners } from 'node:events';
import type { Config } from '../config/types.js';
import { batchPlan, type BatchPlan } from './batching.js';
import type { EndpointHealth } from '../delivery/health.js';
import { isExhausted, retryDelayMs } from '../delivery/policy.js';
import type { Sink, SinkResult } from '../delivery/sink.js';
import type { DeliveryPlan } from './destination.js';
import type { Completer } from '../journal/completer.js';
import type { AttemptOutcome, AttemptRecorder } from '../journal/attempt-log.js';
import type { Journal, JournalEvent } from '../journal/types.js';
import type { DaemonEventBus } from '../observability/events.js';
import { describeError } from '../util/errors.js';
import { delay, jitter, settleWithin, type WakeSignal } from '../util/wake.js';

export interface DispatcherOptions {
  /** The destination's name, in events on the bus. */
  readonly destination: string;
  readonly poolSize: number;
  readonly pollIntervalMs: number;
  readonly retry: Pick<Config['webhook'], 'retry_count' | 'retry_delay' | 'retry_max_delay'>;
  /**
   * Longest a claimed event may wait in memory for a free slot and still be sent:
   * its lease minus the longest delivery. Default 10 s.
   */
  readonly maxWaitForSlotMs?: number;
  /** Where each attempt is logged (http.attempt_log); none when off. */
  readonly attempts?: AttemptRecorder;
}

/** Claim ahead only while deliveries take less than this on average. */
const CLAIM_AHEAD_MAX_DELIVERY_MS = 1_000;

const CLAIM_RETRY_MIN_MS = 100;
/** Empty claims in a row that may go straight on to the next window (see ClaimCursor.moreAhead). */
const MAX_AHEAD_CLAIMS = 16;
/** Longest wait for more free slots before a claim while deliveries are in flight. */
const CLAIM_GATHER_MS = 2;
const CLAIM_RETRY_MAX_MS = 5_000;

export class Dispatcher {
  /** Requests in flight, and the events they carry (more than one per request when batching). */
  private inFlight = 0;
  private inFlightEvents = 0;
  /** Events one request carries at most. */
  private readonly perRequest: number;
  /** Set while a partial batch waits for company (batch.max_wait). */
  private batchTimer: NodeJS.Timeout | undefined;
  private stopping = false;
  private loopDone: Promise<void> | undefined;
  private probeInFlight = false;
  private claimFailing = false;
  private batchDeadline = 0;
  /**
   * The last claim came back short while deliveries were in flight: claiming again
   * before one of their outcomes is written would find nothing new (the rows they
   * hold are still gated), so the next claim waits for a write (or a poll interval).
   */
  private awaitingWrite = false;
  /** Claimed events waiting for a free slot, oldest first, with the time of their claim. */
  private ready: Array<{ event: JournalEvent; claimedAt: number }> = [];
  /** Moving average of delivery durations, ms. */
  private avgDeliveryMs = 0;
  /** Aborts in-flight requests when a graceful stop runs out of time. */
  private readonly abortDeliveries = new AbortController();
  private readonly stopSleep = new AbortController();
  private readonly plan: BatchPlan;

  constructor(
    private readonly journal: Journal,
    private readonly sink: Sink,
    private readonly destination: DeliveryPlan,
    private readonly health: EndpointHealth,
    private readonly completer: Completer,
    private readonly wake: WakeSignal,
    private readonly bus: DaemonEventBus,
    private readonly opts: DispatcherOptions,
  ) {
    // Every in-flight request listens on this signal: pool_size listeners is normal.
    setMaxListeners(0, this.abortDeliveries.signal);
    this.plan = batchPlan(opts.poolSize);
    this.perRequest = destination.batch?.maxEvents ?? 1;
  }

  get deliveriesInFlight(): number {
    return this.inFlight;
  }

  /** The completer wrote outcomes: rows they held may now be claimed (their next events, busy rows' heads). */
  outcomesWritten(): void {
    this.awaitingWrite = false;
    this.wake.notify();
  }

  start(): void {
    this.loopDone ??= this.loop().catch((err: unknown) => {
      // A bug, not a database or endpoint problem (those are handled in the loop).
      this.bus.emit('journal:error', { operation: 'dispatch loop (stopped)', error: describeError(err), retryInMs: 0 });
    });
  }

  /**
   * Stops claiming, waits up to `graceMs` for in-flight deliveries, aborts the
   * rest (their attempt is given back), and writes every outcome. Idempotent.
   */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    clearTimeout(this.batchTimer);
    this.giveBackReady();
    this.stopSleep.abort();
    this.wake.notify();
    const end = Date.now() + graceMs;
    // The loop ends at its next step; a query stuck on a dead connection ends by its timeout.
    await settleWithin(this.loopDone ?? Promise.resolve(), graceMs);
    while (this.inFlight > 0 && Date.now() < end) await this.wake.wait(end - Date.now());
    if (this.inFlight > 0) {
      this.abortDeliveries.abort();
      while (this.inFlight > 0) await this.wake.wait(1_000);
    }
    await this.completer.drain(Math.max(5_000, end - Date.now()));
  }

  /** Changes were moved into this destination's queue. */
  routed(): void {
    this.wake.notify();
  }

  private async loop(): Promise<void> {
    let claimBackoff = CLAIM_RETRY_MIN_MS;
    let aheadClaims = 0;
    while (!this.stopping) {
      if (this.health.state === 'down') {
        this.giveBackReady();
        await this.probeStep();
        continue;
      }
      // Waiting events held back by unwritten outcomes go as soon as a write lands.
      this.startReady();
      // Backpressure: no free slot, or pool_size outcomes not yet written (the database
      // is slow). What a crash can turn into duplicates (requests in flight and outcomes
      // not yet written) is bounded in startReady.
      const per = this.perRequest;
      const free = (this.opts.poolSize + this.claimAheadLimit()) * per - this.inFlightEvents - this.ready.length;
      if (free <= 0 || this.completer.backlog >= this.opts.poolSize * per) {
        await this.wake.wait(this.pollMs());
        continue;
      }
      if (this.awaitingWrite && this.inFlightEvents + this.completer.backlog > 0) {
        // A hot row's next event is claimable only once its predecessor's outcome is
        // written: a claim in between cost a round trip and delayed the one that finds it.
        if (!(await this.wake.wait(this.pollMs()))) this.awaitingWrite = false;
        continue;
      }
      this.awaitingWrite = false;
      // Under load, gather free slots before claiming, so one round trip brings a
      // batch instead of one event per finished delivery. Bounded by a short
      // deadline so a slow delivery never holds back the others.
      if (this.inFlight > 0 && free < this.plan.minClaim) {
        this.batchDeadline ||= Date.now() + CLAIM_GATHER_MS;
        const left = this.batchDeadline - Date.now();
        if (left > 0) {
          await this.wake.wait(left);
          continue;
        }
      }
      this.batchDeadline = 0;
      let batch: JournalEvent[];
      try {
        batch = await this.claim(free);
        claimBackoff = CLAIM_RETRY_MIN_MS;
      } catch (err) {
        this.bus.emit('journal:error', { operation: 'claim', error: describeError(err), retryInMs: claimBackoff });
        await delay(claimBackoff, this.stopSleep.signal);
        claimBackoff = Math.min(claimBackoff * 2, CLAIM_RETRY_MAX_MS);
        continue;
      }
      if (batch.length < free && this.inFlightEvents + batch.length > 0) this.awaitingWrite = true;
      if (batch.length > 0) {
        const claimedAt = Date.now();
        for (const event of batch) if (this.wanted(event)) this.ready.push({ event, claimedAt });
        this.startReady();
        continue;
      }
      // The walk stopped at its window with more events beyond: look there now, for a
      // few windows at most per poll (a queue of retries that are not due must not keep
      // the database busy with walks that find nothing).
      if (this.journal.moreAhead === true && aheadClaims < MAX_AHEAD_CLAIMS) {
        aheadClaims++;
        continue;
      }
      aheadClaims = 0;
      await this.wake.wait(this.pollMs());
    }
  }

  /** While the endpoint is down: one probe event at a time, at the breaker's pace. */
  private async probeStep(): Promise<void> {
    if (this.probeInFlight || !this.health.beginProbe()) {
      const untilProbe = Math.max(10, this.health.nextProbeAt() - Date.now());
      await this.wake.wait(Math.min(untilProbe, this.pollMs()));
      return;
    }
    let batch: JournalEvent[] = [];
    try {
      batch = this.inFlight < this.opts.poolSize ? await this.claim(1) : [];
    } catch (err) {
      this.bus.emit('journal:error', { operation: 'claim', error: describeError(err), retryInMs: CLAIM_RETRY_MAX_MS });
    }
    const event = batch.find((e) => this.wanted(e));
    if (!event) {
      // Nothing to probe with: give the slot back (the interval does not grow) and look again later.
      this.health.probeSkipped();
      await this.wake.wait(this.pollMs());
      return;
    }
    this.probeInFlight = true;
    void this.deliver([event], true).finally(() => {
      this.probeInFlight = false;
    });
  }

  /** A claim, reported on the bus: what was claimed, and the end of a run of failed claims. */
  private async claim(limit: number): Promise<JournalEvent[]> {
    try {
      const batch = await this.journal.claim(limit);
      if (this.claimFailing) {
        this.claimFailing = false;
        this.bus.emit('journal:recovered', { operation: 'claim' });
      }
      if (batch.length > 0) this.bus.emit('events:claimed', { events: batch });
      return batch;
    } catch (err) {
      this.claimFailing = true;
      throw err;
    }
  }

  /**
   * Whether the destination's filter takes the event. One it does not take (or whose
   * filter failed on its row, reported) is settled at once, never sent: it leaves
   * this destination's queue, and only this one's.
   */
  private wanted(e: JournalEvent): boolean {
    const filter = this.destination.filter;
    if (filter === undefined) return true;
    const result = filter.matches(e);
    if (result.match) return true;
    this.completer.push({ kind: 'delivered', id: e.id, token: e.claimToken, ...rowOf(e) });
    this.bus.emit('delivery:filtered', { event: e, ...(result.error !== undefined ? { error: result.error } : {}) });
    return false;
  }

  /** One request: one event, or a batch; every event of it gets the request's outcome. */
  private async deliver(events: readonly JournalEvent[], probe: boolean): Promise<void> {
    this.inFlight++;
    this.inFlightEvents += events.length;
    let results: SinkResult[];
    const messages = events.map((e) => this.destination.message(e));
    try {
      results = await this.sink.send(messages, this.abortDeliveries.signal);
    } catch (err) {
      // send() reports transport problems as outcomes; this is a bug or a bad row.
      // Keep the events: retry them later, counting the attempt.
      const failed: SinkResult = { kind: 'retry', error: `internal error: ${describeError(err)}`, endpointFailure: false, durationMs: 0 };
      results = events.map(() => failed);
    } finally {
      // Before the outcomes are pushed: the completer asks whether more are on their way.
      this.inFlight--;
      this.inFlightEvents -= events.length;
    }
    try {
      // The endpoint's health counts requests, not events: the worst answer of this one.
      const worst = results.find((r) => r.kind === 'retry') ?? results.find((r) => r.kind === 'dead') ?? results[0]!;
      this.avgDeliveryMs += (worst.durationMs - this.avgDeliveryMs) * 0.1;
      const interrupted = worst.kind === 'retry' && this.abortDeliveries.signal.aborted;
      const spared = interrupted ? false : this.health.record(worst, probe);
      events.forEach((e, i) => {
        const result = results[i] ?? worst;
        const outcome = this.settle(e, result, probe, spared);
        this.opts.attempts?.record(e, messages[i]!, result, outcome);
      });
    } catch (err) {
      // A bug: the outcome is not recorded, so the event stays claimed until its lease
      // ends and is delivered again. Reported, never an unhandled rejection.
      this.bus.emit('journal:error', { operation: 'record an outcome (internal error)', error: describeError(err), retryInMs: 0 });
    } finally {
      this.startReady();
      this.wake.notify();
    }
  }

  /**
   * Starts waiting events while slots are free; gives back those that waited too long.
   * Requests in flight plus outcomes not yet written never exceed 2 x pool_size: what
   * a crash can turn into duplicates.
   */
  private startReady(): void {
    const maxWait = this.opts.maxWaitForSlotMs ?? 10_000;
    const pool = this.opts.poolSize;
    const batch = this.destination.batch;
    while (
      this.ready.length > 0 &&
      this.inFlight < pool &&
      this.inFlightEvents + this.completer.backlog < 2 * pool * this.perRequest &&
      !this.stopping &&
      this.health.state !== 'down'
    ) {
      if (batch === undefined) {
        const { event, claimedAt } = this.ready.shift()!;
        if (Date.now() - claimedAt > maxWait) this.giveBack(event);
        else void this.deliver([event], false);
        continue;
      }
      // A batch goes when it is full or its first event waited batch.max_wait.
      const waited = Date.now() - this.ready[0]!.claimedAt;
      if (this.ready.length < batch.maxEvents && waited < batch.maxWaitMs) {
        this.batchTimer ??= setTimeout(() => {
          this.batchTimer = undefined;
          this.startReady();
        }, batch.maxWaitMs - waited);
        break;
      }
      const events: JournalEvent[] = [];
      for (const { event, claimedAt } of this.ready.splice(0, batch.maxEvents)) {
        if (Date.now() - claimedAt > maxWait) this.giveBack(event);
        else events.push(event);
      }
      if (events.length > 0) void this.deliver(events, false);
    }
    if (this.stopping) this.giveBackReady();
  }

  private giveBackReady(): void {
    for (const { event } of this.ready.splice(0)) this.giveBack(event);
  }

  /** Returns a claimed, unsent event to the journal, due at once, its attempt refunded, its last error kept. */
  private giveBack(e: JournalEvent): void {
    this.completer.push({ kind: 'retry', id: e.id, token: e.claimToken, delayMs: 0, refund: true });
  }

  /** How many events may wait claimed in memory: none while deliveries are slow. */
  private claimAheadLimit(): number {
    return this.avgDeliveryMs < CLAIM_AHEAD_MAX_DELIVERY_MS ? this.plan.claimAhead : 0;
  }

  /** Records one event's outcome; `spared`: the endpoint's health took the failure on itself (see EndpointHealth.record). */
  private settle(e: JournalEvent, outcome: SinkResult, probe: boolean, spared: boolean): AttemptOutcome {
    if (outcome.kind === 'success') {
      this.completer.push({ kind: 'delivered', id: e.id, token: e.claimToken, schema: e.schema, table: e.table, ...rowOf(e) });
      this.bus.emit('delivery:succeeded', {
        event: e,
        status: outcome.status,
        durationMs: outcome.durationMs,
        latencyMs: Date.now() - e.createdAtMs,
      });
      return 'delivered';
    }
    if (outcome.kind === 'dead') {
      this.completer.push({ kind: 'dead', id: e.id, token: e.claimToken, status: outcome.status, error: outcome.error, ...rowOf(e) });
      this.bus.emit('delivery:dead', { event: e, status: outcome.status, error: outcome.error, durationMs: outcome.durationMs });
      return 'dead';
    }
    if (this.abortDeliveries.signal.aborted) {
      // Cut short by shutdown: not the event's fault, try again at once after restart.
      this.completer.push({ kind: 'retry', id: e.id, token: e.claimToken, delayMs: 0, refund: true, status: outcome.status, error: 'interrupted by shutdown' });
      return 'retry';
    }
    let delayMs: number;
    if (spared) {
      // Endpoint suspect or down: the attempt does not count, but the event still
      // backs off (no burst of re-sends before the breaker opens), and once the
      // breaker is open it paces what is sent. A failed probe event sits out the next
      // probe, so that one event the endpoint cannot take (a poison event, alone
      // failing with a 5xx) does not hide whether the endpoint takes the others.
      // When the endpoint answers again, every waiting retry is made due at once.
      const untilNextProbe = probe ? Math.max(0, this.health.nextProbeAt() - Date.now()) * 2 : 0;
      delayMs = Math.max(retryDelayMs(e.attempts, this.opts.retry, Math.random, outcome.retryAfterMs), untilNextProbe);
    } else if (isExhausted(e.attempts, this.opts.retry.retry_count)) {
      this.completer.push({ kind: 'dead', id: e.id, token: e.claimToken, status: outcome.status, error: outcome.error, ...rowOf(e) });
      this.bus.emit('delivery:dead', { event: e, status: outcome.status, error: outcome.error, durationMs: outcome.durationMs });
      return 'dead';
    } else {
      delayMs = retryDelayMs(e.attempts, this.opts.retry, Math.random, outcome.retryAfterMs);
    }
    this.completer.push({ kind: 'retry', id: e.id, token: e.claimToken, delayMs, refund: spared, status: outcome.status, error: outcome.error });
    this.bus.emit('delivery:failed', {
      event: e,
      status: outcome.status,
      error: outcome.error,
      durationMs: outcome.durationMs,
      retryInMs: delayMs,
      counted: !spared,
    });
    return 'retry';
  }

  private pollMs(): number {
    return jitter(this.opts.pollIntervalMs);
  }
}

/** The row hash an outcome carries when the row had more events waiting (its next one is looked up at once). */
function rowOf(e: JournalEvent): { rowHash?: string } {
  return e.rowHash === undefined ? {} : { rowHash: e.rowHash };
}
