/**
 * The journal conformance suite: the same claim, gate, outcome and refund cases
 * against every journal driver, through the interfaces the daemon uses (SourceJournal,
 * Router, Journal). What a case asserts comes from what the driver returns and from
 * the driver's own tables, read back by the harness.
 *
 *   journalSuite(postgresJournalHarness, 'postgres')   // test/conformance/journal-postgres.test.ts
 *   journalSuite(mysqlJournalHarness, 'mysql')         // test/conformance/journal-mysql.test.ts
 *
 * Each case installs capture of its own tables under a schema (or prefix) of its own.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Completion, JournalEvent } from '../../src/journal/types.js';
import { closeTestQueues, type TestQueue } from '../support/queue.js';
import { waitUntil } from '../support/wait.js';

/** A destination's queued delivery, as the driver stores it. */
export interface QueuedRow {
  readonly id: string;
  readonly attempts: number;
  readonly lastStatus: number | null;
  readonly lastError: string | null;
  readonly claimedBy: string | null;
  /** Waits for a later time (a retry with a delay). */
  readonly dueLater: boolean;
}

export interface DeadRow {
  readonly id: string;
  readonly op: string;
  readonly table: string;
  readonly attempts: number;
  readonly lastStatus: number | null;
  readonly lastError: string;
  /** The captured row, parsed. */
  readonly newRow: unknown;
}

export interface QueueOptions {
  readonly instanceId?: string;
  readonly leaseMs?: number;
  /** The queue's destination first, then the others the tables route to (default: ['default']). */
  readonly destinations?: readonly string[];
}

/** One installation: capture of some tables `(id INT PRIMARY KEY, v INT NOT NULL)`. */
export interface JournalFixture {
  /** Runs a statement of the dialects' common part (INSERT/UPDATE/DELETE with literals). */
  exec(sql: string): Promise<void>;
  /** A destination's queue (TestQueue: a claim routes the inbox first). */
  queue(tables: readonly string[], options?: QueueOptions): TestQueue;
  queued(destination?: string): Promise<QueuedRow[]>;
  deadLetters(destination?: string): Promise<DeadRow[]>;
  /** Changes not yet routed. */
  inbox(): Promise<number>;
  /** Ends the lease of every claim now (as if its holder had been stuck that long). */
  expireLeases(): Promise<void>;
}

export interface JournalHarness {
  /** Creates the tables and installs capture of them under a new schema or prefix. */
  install(tables: readonly string[]): Promise<JournalFixture>;
  drop(): Promise<void>;
}

const delivered = (e: JournalEvent): Completion => ({ kind: 'delivered', id: e.id, token: e.claimToken });
const rowOf = (e: JournalEvent) => JSON.parse(e.newRow!) as { id: number; v: number };

export function journalSuite(makeHarness: () => Promise<JournalHarness>, label: string): void {
  let h: JournalHarness;
  beforeAll(async () => {
    h = await makeHarness();
  });
  afterAll(async () => {
    await closeTestQueues();
    await h?.drop();
  });

  describe(`journal conformance: ${label}`, () => {
    it('claims oldest first, at most the limit and one event per row; the event id stays the same on every claim', async () => {
      const f = await h.install(['jc_order']);
      await f.exec(`INSERT INTO jc_order (id, v) VALUES (1, 0), (2, 0), (3, 0)`);
      await f.exec(`UPDATE jc_order SET v = 1 WHERE id = 1`);
      const q = f.queue(['jc_order']);
      const first = await q.claim(2);
      expect(first.map((e) => [e.op, rowOf(e).id])).toEqual([['INSERT', 1], ['INSERT', 2]]);
      for (const e of first) {
        expect(e.eventId).toMatch(/^evt_/);
        expect(e.eventId.endsWith(`_${e.id}`)).toBe(true);
        expect(e.attempts).toBe(1);
        expect(e.destination).toBe('default');
      }
      // Row 1's update waits for its insert; row 3 does not.
      const second = await q.claim(10);
      expect(second.map((e) => rowOf(e).id)).toEqual([3]);
      expect(await q.claim(10)).toEqual([]);
      await q.complete([{ kind: 'retry', id: first[0]!.id, token: first[0]!.claimToken, delayMs: 0, refund: false, status: 500, error: 'HTTP 500' }]);
      const again = await q.claim(10);
      expect(again.map((e) => [e.eventId, e.attempts])).toEqual([[first[0]!.eventId, 2]]);
      await q.complete([...again, first[1]!, second[0]!].map(delivered));
      const next = await q.claim(10);
      expect(next.map((e) => [e.op, rowOf(e)])).toEqual([['UPDATE', { id: 1, v: 1 }]]);
      await q.complete(next.map(delivered));
      expect(await f.queued()).toEqual([]);
      expect(await f.inbox()).toBe(0);
    });

    it('a retry waits for its time and counts its attempt, a refund does not; retryNow makes retries due; dead moves to dead letters', async () => {
      const f = await h.install(['jc_outcomes', 'jc_elsewhere']);
      await f.exec(`INSERT INTO jc_outcomes (id, v) VALUES (10, 0), (11, 0), (12, 0)`);
      const q = f.queue(['jc_outcomes']);
      const [r1, r2, d] = await q.claim(10);
      await q.complete([
        { kind: 'retry', id: r1!.id, token: r1!.claimToken, delayMs: 0, refund: false, status: 503, error: 'unavailable' },
        { kind: 'retry', id: r2!.id, token: r2!.claimToken, delayMs: 60_000, refund: true, error: 'outage' },
        { kind: 'dead', id: d!.id, token: d!.claimToken, status: 410, error: 'gone' },
      ]);
      // r1 is due again with its attempt counted; r2 waits a minute, its attempt refunded.
      expect((await q.claim(10)).map((e) => [e.id, e.attempts])).toEqual([[r1!.id, 2]]);
      expect((await f.queued()).find((r) => r.id === r2!.id)).toEqual({
        id: r2!.id, attempts: 0, lastStatus: null, lastError: 'outage', claimedBy: null, dueLater: true,
      });
      // The endpoint is back: waiting retries become due at once, only for this daemon's tables.
      expect(await f.queue(['jc_elsewhere']).retryNow()).toBe(0);
      expect(await q.retryNow()).toBe(1);
      expect((await q.claim(10)).map((e) => e.id)).toEqual([r2!.id]);
      expect(await f.deadLetters()).toEqual([
        { id: d!.id, op: 'INSERT', table: 'jc_outcomes', attempts: 1, lastStatus: 410, lastError: 'gone', newRow: { id: 12, v: 0 } },
      ]);
      expect((await f.queued()).map((r) => r.id)).toEqual([r1!.id, r2!.id]);
    });

    it('an event given back unsent keeps its last status and error, and its attempt is refunded', async () => {
      const f = await h.install(['jc_giveback']);
      await f.exec(`INSERT INTO jc_giveback (id, v) VALUES (1, 0)`);
      const q = f.queue(['jc_giveback']);
      const [first] = await q.claim(10);
      await q.complete([{ kind: 'retry', id: first!.id, token: first!.claimToken, delayMs: 0, refund: false, status: 503, error: 'HTTP 503' }]);
      const [second] = await q.claim(10);
      expect(second!.attempts).toBe(2);
      await q.complete([{ kind: 'retry', id: second!.id, token: second!.claimToken, delayMs: 0, refund: true }]);
      expect(await f.queued()).toEqual([{ id: first!.id, attempts: 1, lastStatus: 503, lastError: 'HTTP 503', claimedBy: null, dueLater: false }]);
    });

    it('only the oldest event of a row is claimable, whoever asks; a failing event blocks only its own row', async () => {
      const f = await h.install(['jc_gate']);
      await f.exec(`INSERT INTO jc_gate (id, v) VALUES (20, 1)`);
      await f.exec(`UPDATE jc_gate SET v = 2 WHERE id = 20`);
      await f.exec(`INSERT INTO jc_gate (id, v) VALUES (21, 1)`);
      const a = f.queue(['jc_gate'], { instanceId: 'a:1:a' });
      const b = f.queue(['jc_gate'], { instanceId: 'b:1:b' });
      const first = await a.claim(10);
      expect(first.map((e) => [e.op, rowOf(e).id])).toEqual([['INSERT', 20], ['INSERT', 21]]);
      expect(await b.claim(10)).toEqual([]);
      await a.complete([{ kind: 'retry', id: first[0]!.id, token: first[0]!.claimToken, delayMs: 0, refund: false, error: 'x' }]);
      const retried = await b.claim(10);
      expect(retried.map((e) => e.id)).toEqual([first[0]!.id]);
      // Dead-lettered, the failing event stops holding its row.
      await b.complete([{ kind: 'dead', id: retried[0]!.id, token: retried[0]!.claimToken, status: 422, error: 'refused' }]);
      const next = await b.claim(10);
      expect(next.map((e) => [e.op, rowOf(e)])).toEqual([['UPDATE', { id: 20, v: 2 }]]);
    });

    it('an outcome of an expired claim never acts on the newer claim of the event', async () => {
      const f = await h.install(['jc_token']);
      await f.exec(`INSERT INTO jc_token (id, v) VALUES (30, 0)`);
      const a = f.queue(['jc_token'], { instanceId: 'a:1:a', leaseMs: 300 });
      const b = f.queue(['jc_token'], { instanceId: 'b:1:b' });
      const [first] = await a.claim(10);
      expect(first).toBeDefined();
      expect(await b.claim(10)).toEqual([]);
      // a's lease runs out (a stuck delivery): b takes the event over.
      const [taken] = await waitUntil(async () => {
        const got = await b.claim(10);
        return got.length > 0 ? got : undefined;
      }, 10_000, 'the lease to run out');
      expect([taken!.id, taken!.eventId, taken!.attempts]).toEqual([first!.id, first!.eventId, 2]);
      expect(taken!.claimToken).not.toBe(first!.claimToken);
      // a's late outcomes land: none of them touches b's claim.
      await a.complete([delivered(first!)]);
      await a.complete([{ kind: 'dead', id: first!.id, token: first!.claimToken, error: 'late' }]);
      await a.complete([{ kind: 'retry', id: first!.id, token: first!.claimToken, delayMs: 0, refund: true, error: 'late' }]);
      expect((await f.queued()).map((r) => [r.id, r.claimedBy])).toEqual([[first!.id, 'b:1:b']]);
      expect(await f.deadLetters()).toEqual([]);
      // The same instance claiming again after its own lease ran out: the old token is void too.
      await f.expireLeases();
      const [again] = await b.claim(10);
      expect(again!.claimToken).not.toBe(taken!.claimToken);
      await b.complete([delivered(taken!)]);
      expect((await f.queued()).length).toBe(1);
      await b.complete([delivered(again!)]);
      expect(await f.queued()).toEqual([]);
    });

    it('claims only its tables; gives its claims back on stop, and those of a dead process of its host', async () => {
      const f = await h.install(['jc_mine', 'jc_theirs']);
      await f.exec(`INSERT INTO jc_mine (id, v) VALUES (40, 0)`);
      await f.exec(`INSERT INTO jc_theirs (id, v) VALUES (1, 0)`);
      expect((await f.queue(['jc_theirs'], { instanceId: 'o:1:o' }).claim(10)).map((e) => e.table)).toEqual(['jc_theirs']);
      const mine = f.queue(['jc_mine'], { instanceId: 'host-x:4242:aa' });
      expect((await mine.claim(10)).map((e) => e.table)).toEqual(['jc_mine']);
      expect(await mine.journal.releaseClaims()).toBe(1);
      const [back] = await mine.claim(10);
      expect(back!.attempts).toBe(1); // the given-back attempt was refunded
      // A restarted process on the same host releases the claims of its dead predecessor (pid 4242)...
      const successor = f.queue(['jc_mine'], { instanceId: 'host-x:5000:bb' });
      expect(await successor.journal.releaseClaimsOfDeadLocalProcesses('host-x', (pid) => pid !== 4242)).toBe(1);
      // ...never those of a live one, nor of another host.
      await mine.claim(10);
      expect(await successor.journal.releaseClaimsOfDeadLocalProcesses('host-x', () => true)).toBe(0);
      expect(await successor.journal.releaseClaimsOfDeadLocalProcesses('host-y', () => false)).toBe(0);
      expect(await successor.journal.releaseClaimsOfDeadLocalProcesses('host_x', () => false)).toBe(0); // _ is no wildcard
    });

    it('two destinations of one change are independent: own claims, retries, gate and dead letters; the same event id', async () => {
      const f = await h.install(['jc_two']);
      await f.exec(`INSERT INTO jc_two (id, v) VALUES (1, 0)`);
      await f.exec(`UPDATE jc_two SET v = 1 WHERE id = 1`);
      const a = f.queue(['jc_two'], { destinations: ['billing', 'search'] });
      const b = f.queue(['jc_two'], { destinations: ['search', 'billing'] });
      const [inA] = await a.claim(10);
      const [inB] = await b.claim(10);
      expect([inA!.destination, inB!.destination]).toEqual(['billing', 'search']);
      expect(inA!.eventId).toBe(inB!.eventId);
      expect(await f.inbox()).toBe(0);
      // billing refuses the insert for good; search fails it and retries later.
      await a.complete([{ kind: 'dead', id: inA!.id, token: inA!.claimToken, status: 400, error: 'bad request' }]);
      await b.complete([{ kind: 'retry', id: inB!.id, token: inB!.claimToken, delayMs: 60_000, refund: false, status: 503, error: 'HTTP 503' }]);
      // billing goes on with the row's update; search's row waits for its retry.
      expect((await a.claim(10)).map((e) => [e.op, e.destination])).toEqual([['UPDATE', 'billing']]);
      expect(await b.claim(10)).toEqual([]);
      expect((await f.deadLetters('billing')).map((r) => r.id)).toEqual([inA!.id]);
      expect(await f.deadLetters('search')).toEqual([]);
      expect((await f.queued('search')).map((r) => [r.id, r.attempts, r.dueLater])).toEqual([[inB!.id, 1, true], [expect.any(String), 0, false]]);
      // retryNow of one destination leaves the other's retries alone.
      expect(await a.retryNow()).toBe(0);
      expect(await b.retryNow()).toBe(1);
      expect((await b.claim(10)).map((e) => [e.id, e.attempts])).toEqual([[inB!.id, 2]]);
    });

    it('two instances claiming at once never share an event and keep per-row order, with retries among the outcomes', async () => {
      const f = await h.install(['jc_busy']);
      const rows = 20;
      const updates = 10;
      for (let r = 0; r < rows; r++) await f.exec(`INSERT INTO jc_busy (id, v) VALUES (${r}, 0)`);
      for (let n = 1; n <= updates; n++) await f.exec(`UPDATE jc_busy SET v = ${n}`);
      const total = rows * (updates + 1);
      const inFlight = new Map<number, string>();
      const claimedIds = new Set<string>();
      const deliveredIds = new Set<string>();
      const retried = new Set<string>();
      const perRow = new Map<number, number[]>();
      const problems: string[] = [];
      const worker = async (instanceId: string) => {
        const q = f.queue(['jc_busy'], { instanceId });
        const deadline = Date.now() + 30_000;
        while (deliveredIds.size < total && Date.now() < deadline) {
          const batch = await q.claim(7);
          if (batch.length === 0) {
            await new Promise((resolve) => setImmediate(resolve));
            continue;
          }
          for (const e of batch) {
            const row = rowOf(e);
            if (deliveredIds.has(e.id)) problems.push(`${instanceId} claimed ${e.id} after its delivery`);
            if (claimedIds.has(e.id) && !retried.has(e.id)) problems.push(`${instanceId} claimed ${e.id} again`);
            if (inFlight.has(row.id)) problems.push(`row ${row.id}: ${e.id} claimed while ${inFlight.get(row.id)} in flight`);
            // Every earlier change of the row is delivered already (a retry waits in the queue, not in flight).
            const done = perRow.get(row.id)?.length ?? 0;
            if (done !== row.v) problems.push(`row ${row.id}: change ${row.v} claimed after ${done} delivered`);
            claimedIds.add(e.id);
            inFlight.set(row.id, e.id);
          }
          // Settle a little later, so the two instances' claims interleave. Every third
          // event fails once and is retried at once: while one instance writes that
          // retry, the other must still see the event ahead of its row's next one.
          await new Promise((resolve) => setImmediate(resolve));
          const outcomes = batch.map((e): Completion => {
            if (Number(e.id) % 3 === 0 && !retried.has(e.id)) {
              retried.add(e.id);
              return { kind: 'retry', id: e.id, token: e.claimToken, delayMs: 0, refund: false, status: 503, error: 'HTTP 503' };
            }
            deliveredIds.add(e.id);
            const row = rowOf(e);
            perRow.set(row.id, [...(perRow.get(row.id) ?? []), row.v]);
            return delivered(e);
          });
          for (const e of batch) inFlight.delete(rowOf(e).id);
          await q.complete(outcomes);
        }
      };
      await Promise.all([worker('a:1:a'), worker('b:2:b')]);
      expect(problems).toEqual([]);
      expect(deliveredIds.size).toBe(total);
      expect(retried.size).toBeGreaterThan(0);
      for (let r = 0; r < rows; r++) expect(perRow.get(r)).toEqual(Array.from({ length: updates + 1 }, (_, n) => n));
      expect(await f.queued()).toEqual([]);
    });
  });
}
