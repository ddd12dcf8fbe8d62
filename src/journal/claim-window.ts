/**
 * Where a claim's walk through the journal starts, and which busy rows it looks up
 * directly: the policy both databases' claims share (their SQL is in the query
 * modules).
 *
 * The walk goes oldest first through the primary key, within a window of
 * CLAIM_WINDOW ids from its floor, so a claim never reads more than that many
 * events, however many of them the ordering gate holds back (one row with a
 * backlog of 100,000 made every unbounded walk read all of them: ~0.5 s per claim).
 * - A walk that found a full claim's worth starts the next one at its lowest
 *   candidate: what lies below are delivered events (dead index entries, which a
 *   walk from the start would step over again) or events held by claims.
 * - A walk that came back short moves on to the first event past its window, so a
 *   long run of held-back events is crossed one window per claim; past the last
 *   event it starts again from the journal's lowest id.
 * - Every CLAIM_FROM_START_EVERY_MS, a walk starts from the lowest id anyway: a
 *   change that committed late under a lower id, or a retry that came due, below the
 *   floor, waits at most that long.
 * The rows the walk skips because an earlier event of theirs is in flight get their
 * turn through their heads: an instance that settles an event whose row had more
 * waiting passes the row's hash to its next claim, which takes the row's oldest event
 * through the gate's index. A hot row so moves on at one event per claim round trip.
 */
import type { Completion } from './types.js';

/**
 * Ids a walk covers at most. An event held back by the gate costs the walk ~1 µs
 * (PostgreSQL 15: a heap fetch and a probe of the gate's index), so a window of
 * blocked events costs ~0.3 ms, and a run of 10,000 is crossed in 40 claims.
 */
export const CLAIM_WINDOW = 256;

/** How often a walk starts from the journal's lowest id whatever the floor. */
export const CLAIM_FROM_START_EVERY_MS = 250;

/** Busy rows whose heads one claim looks up at most; the rest wait for the next claim. */
export const MAX_HEADS_PER_CLAIM = 64;

/** After outcomes were written: the rows of delivered and dead-lettered events that had more waiting. */
export function hintBusyRows(cursor: ClaimCursor, written: readonly Completion[]): void {
  for (const c of written) if (c.kind !== 'retry' && c.rowHash !== undefined) cursor.hint(c.rowHash);
}

/** What a walk reports about itself (ids as decimal text, bigint). */
export interface WalkReport {
  /** The window's first id; null when the journal was empty. */
  readonly lo: string | null;
  /** Candidates the walk found (before SKIP LOCKED), at most the claim's limit. */
  readonly walked: number;
  /** The lowest of them. */
  readonly walkMin: string | null;
  /** When the walk came back short: the first id past its window, null if none. */
  readonly nextLo: string | null;
}

/** The floor of the next walk ('0': from the lowest id). */
export function nextFloor(report: WalkReport, limit: number): string {
  if (report.lo === null) return '0';
  if (report.walked >= limit && report.walkMin !== null) return report.walkMin;
  return report.nextLo ?? '0';
}

/**
 * The walk floor and the busy rows of one journal: `hint` is called as outcomes are
 * written, `next` before each claim, `report` with what the walk found.
 */
export class ClaimCursor {
  private floor = '0';
  private lastFromStart = 0;
  private ahead = false;
  /**
   * Where the walk had got to when a walk from the start interrupted it: once that walk
   * came back short (it found what was due down there), the next one resumes here, so
   * a long run of events that are not due (a busy row behind a retrying head) is crossed
   * once, not again after every walk from the start, and the rows beyond it get their turn.
   */
  private resume: string | undefined;
  private readonly heads = new Set<string>();

  constructor(private readonly now: () => number = Date.now) {}

  /** A row whose event was settled while more of its events waited. */
  hint(rowHash: string): void {
    this.heads.add(rowHash);
  }

  /** The floor and heads for the next claim; the heads are taken (give them back on failure). */
  next(): { floor: string; heads: string[] } {
    const t = this.now();
    let floor = this.floor;
    if (floor === '0' || t - this.lastFromStart >= CLAIM_FROM_START_EVERY_MS) {
      if (floor !== '0') this.resume = floor;
      floor = '0';
      this.lastFromStart = t;
    }
    const heads: string[] = [];
    for (const h of this.heads) {
      if (heads.length >= MAX_HEADS_PER_CLAIM) break;
      heads.push(h);
      this.heads.delete(h);
    }
    return { floor, heads };
  }

  /** After a claim that failed: its heads are looked up next time. */
  giveBack(heads: readonly string[]): void {
    for (const h of heads) this.heads.add(h);
  }

  report(walk: WalkReport, limit: number): void {
    let floor = nextFloor(walk, limit);
    const resume = this.resume;
    this.resume = undefined;
    if (resume !== undefined && walk.walked < limit && BigInt(floor) < BigInt(resume)) floor = resume;
    this.floor = floor;
    this.ahead = walk.walked < limit && (walk.nextLo !== null || floor !== nextFloor(walk, limit));
  }

  /**
   * The last walk came back short with events past its window: the next claim should
   * come at once (it starts there), not after a poll interval, or a claim every poll
   * would start from the lowest id each time and never get past a window of events
   * that are not due (retries waiting for later) to the due ones beyond.
   */
  get moreAhead(): boolean {
    return this.ahead;
  }
}
