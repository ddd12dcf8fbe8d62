/**
 * The PostgreSQL journal at its own level: its plans, the waiting mark, table scoping,
 * and what we install. Claims, the gate, outcomes, tokens and concurrency are the
 * journal conformance suite's (test/conformance/journal-suite.ts), shared with MySQL.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyInstall } from '../../src/capture/postgres/install.js';
import { PgJournal } from '../../src/capture/postgres/journal.js';
import { makeQueries } from '../../src/capture/postgres/queries.js';
import { JOURNAL_SESSION_SETTINGS } from '../../src/capture/postgres/source.js';
import { PgWaker } from '../../src/capture/postgres/waker.js';
import { CLAIM_WINDOW } from '../../src/journal/claim-window.js';
import { DaemonEventBus } from '../../src/observability/events.js';
import { WakeSignal } from '../../src/util/wake.js';
import { waitUntil } from '../support/wait.js';
import { testConfig } from '../support/daemon.js';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';
import { closeTestQueues, testQueue } from '../support/queue.js';

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase('journal');
});
afterAll(async () => {
  await closeTestQueues();
  await db?.drop();
});

async function install(tables: string[], schema: string) {
  const config = testConfig({ dbUrl: db.url, webhookUrl: 'http://127.0.0.1:9/h', tables, schema });
  const c = await db.pool.connect();
  try {
    return await applyInstall(c, config);
  } finally {
    c.release();
  }
}

/** The destination "default"'s queue of the journal in `schema` (claims route first). */
function journal(schema: string, tables: Array<{ schema: string; name: string }>, instanceId = 'test:1:a') {
  const j = new PgJournal(db.pool as unknown as pg.Pool, makeQueries(schema), {
    instanceId,
    leaseMs: 60_000,
    keepDelivered: false,
    eventIdPrefix: 'evt_t_',
    tables,
    clientConfig: { connectionString: db.url },
  });
  return testQueue(j, tables);
}

describe('journal', () => {
  it('a claim above the floor still finds a late commit and a due retry below it', async () => {
    await db.query(`CREATE TABLE floor_t (id int PRIMARY KEY)`);
    await install(['floor_t'], 'adl_floor');
    await db.query(`INSERT INTO floor_t SELECT g FROM generate_series(1, 30) g`);
    const j = journal('adl_floor', [{ schema: 'public', name: 'floor_t' }]);
    const first = await j.claim(5);
    await j.complete(first.map((e) => ({ kind: 'delivered' as const, id: e.id, token: e.claimToken })));
    const second = await j.claim(5); // the floor is now above the first five
    const low = second[0]!;
    // A retry of the lowest one, due at once, and a change that committed late under a low id.
    await j.complete([
      { kind: 'retry', id: low.id, token: low.claimToken, delayMs: 0, refund: false, error: 'x' },
      ...second.slice(1).map((e) => ({ kind: 'delivered' as const, id: e.id, token: e.claimToken })),
    ]);
    await db.query(
      `INSERT INTO adl_floor.events (id, op, schema_name, table_name, row_hash, new_row, txid)
       OVERRIDING SYSTEM VALUE VALUES (1, 'INSERT', 'public', 'floor_t', 424242, '{"id": 0}', 0)`,
    );
    const seen = new Set<string>();
    for (let i = 0; i < 10; i++) {
      const batch = await j.claim(5);
      for (const e of batch) seen.add(e.id);
      await j.complete(batch.map((e) => ({ kind: 'delivered' as const, id: e.id, token: e.claimToken })));
    }
    expect(seen).toContain('1');
    expect(seen).toContain(low.id);
    expect((await db.query(`SELECT count(*)::int AS n FROM adl_floor.deliveries`)).rows[0]!.n).toBe(0);
  });

  it('the claim walks the primary key in order, whatever the statistics say (no sort, no bitmap)', async () => {
    await db.query(`CREATE TABLE plan_t (id int PRIMARY KEY)`);
    await install(['plan_t'], 'adl_plan');
    const q = makeQueries('adl_plan');
    const c = await db.pool.connect();
    try {
      // The journal pool's settings (src/capture/postgres/source.ts), and the plan a
      // prepared statement settles on.
      for (const setting of JOURNAL_SESSION_SETTINGS) await c.query(`SET ${setting.replace('=', ' = ')}`);
      await c.query('SET plan_cache_mode = force_generic_plan');
      // Analyzed and planned while empty (a daemon started on an idle journal), then filled.
      await c.query(`ANALYZE adl_plan.events`);
      await c.query(`ANALYZE adl_plan.deliveries`);
      await c.query(`PREPARE route_plan AS ${q.route(1)}`);
      await c.query(`PREPARE claim_plan AS ${q.claim(1)}`);
      await c.query(`PREPARE delete_plan AS ${q.deleteDelivered}`);
      await c.query(`PREPARE retry_plan AS ${q.scheduleRetry}`);
      const routeArgs = `256, 0, 'public', 'plan_t', ARRAY['default'], ARRAY['public'], ARRAY['plan_t'], ARRAY['INSERT']`;
      const claimArgs = `10, 'x', 1000, 'public', 'plan_t', 0, 1000, ARRAY[]::bigint[], 'default'`;
      const retryArgs = `ARRAY[1,2]::bigint[], ARRAY[now(), now()], ARRAY[0,0], ARRAY[0,0], ARRAY[NULL,NULL]::int[], ARRAY['x','x'], 'x', 'default'`;
      await c.query('BEGIN');
      await c.query(`EXECUTE route_plan(${routeArgs})`);
      await c.query(`EXECUTE claim_plan(${claimArgs})`);
      await c.query(`EXECUTE delete_plan(ARRAY[1,2]::bigint[], ARRAY[now(), now()], 'x', 'default')`);
      await c.query(`EXECUTE retry_plan(${retryArgs})`);
      await c.query('ROLLBACK');
      await c.query(`INSERT INTO plan_t SELECT g FROM generate_series(1, 5000) g`);
      await c.query('BEGIN');
      // The move walks the inbox's primary key from the floor, and stops at its limit.
      const route = JSON.stringify((await c.query(`EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE route_plan(${routeArgs})`)).rows);
      expect(route).toContain('events_pkey');
      expect(route).not.toMatch(/"Node Type":\s*"(Seq Scan|Bitmap Heap Scan)"/);
      // It deletes what it walked by ctid: no index is read again for that.
      expect(route).toMatch(/"Node Type":\s*"Tid Scan"/);
      // The rest of the inbox too: the claim then has 5,000 queued to choose from.
      for (let i = 0; i < 20; i++) await c.query(`EXECUTE route_plan(${routeArgs})`);
      const rows = (await c.query(`EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE claim_plan(${claimArgs})`)).rows;
      await c.query('ROLLBACK');
      const plan = JSON.stringify(rows);
      expect(plan).toContain('deliveries_pkey');
      expect(plan).not.toMatch(/"Node Type":\s*"(Seq Scan|Bitmap Heap Scan|Hash)"/);
      // The one sort orders the claim's own candidates (busy rows' heads first), never the queue.
      const sorts = [...plan.matchAll(/"Node Type":\s*"Sort"[^{]*?"Actual Rows":\s*(\d+)/g)];
      expect(sorts.length).toBeLessThanOrEqual(1);
      for (const m of sorts) expect(Number(m[1])).toBeLessThanOrEqual(10);
      // No node reads the queue to filter it: the walk reads at most its window, the rest go by ctid.
      const filtered = [...plan.matchAll(/"Rows Removed by (?:Join )?Filter":\s*(\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
      expect(filtered, plan).toBeLessThanOrEqual(CLAIM_WINDOW);
      // The gate probes its index per candidate, never reads it whole.
      expect(plan).not.toMatch(/"Join Filter"/);
      const gate = /"Index Name":\s*"deliveries_row_hash_idx"[^}]*?"Actual Rows":\s*(\d+)/.exec(plan);
      expect(gate, plan).not.toBeNull();
      expect(Number(gate![1])).toBe(0);
      // Outcome writes look their events up by (destination, id), never walk the queue.
      for (const statement of [`delete_plan(ARRAY[1,2]::bigint[], ARRAY[now(), now()], 'x', 'default')`, `retry_plan(${retryArgs})`]) {
        await c.query('BEGIN');
        const outcome = JSON.stringify((await c.query(`EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE ${statement}`)).rows);
        await c.query('ROLLBACK');
        expect(outcome, statement).toMatch(/"Index Cond":\s*"\(\(destination = \$\d\) AND \(id = x\.id\)\)"/);
        expect(outcome, statement).toMatch(/"Node Type":\s*"Tid Scan"/);
        const removed = [...outcome.matchAll(/"Rows Removed by (?:Join )?Filter":\s*(\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
        expect(removed, statement).toBeLessThan(10);
      }
    } finally {
      await c.query('DEALLOCATE ALL; RESET ALL').catch(() => undefined);
      c.release();
    }
  });

  it('a second daemon sees that another one waits, and a writer mid-transaction is not mistaken for one', async () => {
    await db.query(`CREATE TABLE waiters (id int PRIMARY KEY)`);
    await install(['waiters'], 'adl_waiters');
    const q = makeQueries('adl_waiters');
    const sql = { listen: q.listenChannel, tryWaitLock: q.tryWaitLock, releaseWaitLock: q.releaseWaitLock, waitLockKey: q.waitLockKey };
    const config = testConfig({ dbUrl: db.url, webhookUrl: 'http://127.0.0.1:9/h', tables: ['waiters'], schema: 'adl_waiters' });
    const { pgClientConfig } = await import('../../src/capture/postgres/connection.js');
    const [a, b] = [0, 1].map(() => new PgWaker(pgClientConfig(config.database), sql, new WakeSignal(), new DaemonEventBus()));
    a!.start();
    b!.start();
    try {
      await waitUntil(() => a!.connected && b!.connected, 10_000, 'both LISTEN connections');
      // A writer in its transaction holds the lock shared: nobody can mark, and nobody waits.
      const writer = await db.pool.connect();
      try {
        await writer.query('BEGIN');
        await writer.query(`INSERT INTO waiters VALUES (1)`);
        expect(await a!.markWaiting()).toBe(false);
        expect(a!.otherWaiting).toBe(false);
        await writer.query('COMMIT');
      } finally {
        writer.release();
      }
      expect(await a!.markWaiting()).toBe(true);
      expect(await b!.markWaiting()).toBe(false);
      expect(b!.otherWaiting).toBe(true);
      await a!.clearWaiting();
      expect(await b!.markWaiting()).toBe(true);
    } finally {
      await a!.stop();
      await b!.stop();
    }
  });

  it('claims only the tables it is configured for, when configs share one journal', async () => {
    await db.query(`CREATE TABLE share_a (id int PRIMARY KEY)`);
    await db.query(`CREATE TABLE share_b (id int PRIMARY KEY)`);
    await install(['share_a'], 'adl_share');
    await install(['share_b'], 'adl_share');
    await db.query(`INSERT INTO share_a VALUES (1), (2)`);
    await db.query(`INSERT INTO share_b VALUES (1)`);
    const a = await journal('adl_share', [{ schema: 'public', name: 'share_a' }], 'a:1:a').claim(10);
    const b = await journal('adl_share', [{ schema: 'public', name: 'share_b' }], 'b:1:b').claim(10);
    expect(a.map((e) => e.table)).toEqual(['share_a', 'share_a']);
    expect(b.map((e) => e.table)).toEqual(['share_b']);
  });

  it('reports a partitioned table under its own name, not the partition', async () => {
    await db.query(`CREATE TABLE parted (id int, region text, PRIMARY KEY (id, region)) PARTITION BY LIST (region)`);
    await db.query(`CREATE TABLE parted_eu PARTITION OF parted FOR VALUES IN ('eu')`);
    await db.query(`CREATE TABLE parted_us PARTITION OF parted FOR VALUES IN ('us')`);
    await install(['parted'], 'adl_parted');
    await db.query(`INSERT INTO parted VALUES (1, 'eu'), (2, 'us')`);
    const events = await journal('adl_parted', [{ schema: 'public', name: 'parted' }]).claim(10);
    expect(events.map((e) => e.table)).toEqual(['parted', 'parted']);
  });

  it("lets an application role without any privilege on our schema write to a watched table", async () => {
    const role = `adl_app_${Math.random().toString(36).slice(2, 8)}`;
    await db.query(`CREATE TABLE app_owned (id int PRIMARY KEY, v text)`);
    await install(['app_owned'], 'adl_roles');
    await db.query(`CREATE ROLE ${role}`);
    try {
      await db.query(`GRANT INSERT, UPDATE, DELETE, SELECT ON app_owned TO ${role}`);
      const c = await db.pool.connect();
      try {
        await c.query(`SET ROLE ${role}`);
        await c.query(`INSERT INTO app_owned VALUES (1, 'by the app')`);
        await c.query(`UPDATE app_owned SET v = 'again'`);
        // The journal itself stays out of the application's reach.
        await expect(c.query(`SELECT * FROM adl_roles.events`)).rejects.toThrow(/permission denied/);
        await c.query('RESET ROLE');
      } finally {
        c.release();
      }
      expect((await db.query(`SELECT count(*)::int AS n FROM adl_roles.events`)).rows[0]!.n).toBe(2);
    } finally {
      await db.query(`DROP OWNED BY ${role}`);
      await db.query(`DROP ROLE ${role}`);
    }
  });

  it('gives up installing quickly when a long transaction holds a watched table, without holding writers', async () => {
    await db.query(`CREATE TABLE busy (id int PRIMARY KEY)`);
    const holder = await db.pool.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('INSERT INTO busy VALUES (0)'); // ROW EXCLUSIVE until commit: CREATE TRIGGER must wait
      await expect(install(['busy'], 'adl_busy')).rejects.toMatchObject({ code: 'INSTALL_LOCK_TIMEOUT' });
    } finally {
      await holder.query('ROLLBACK');
      holder.release();
    }
    await db.query(`INSERT INTO busy VALUES (1)`);
    await install(['busy'], 'adl_busy');
  });
});

interface PlanNode {
  Alias?: string;
  'Index Name'?: string;
  'Actual Rows'?: number;
  'Rows Removed by Filter'?: number;
  'Actual Loops'?: number;
  'Shared Hit Blocks'?: number;
  'Shared Read Blocks'?: number;
  'Parent Relationship'?: string;
  Plans?: PlanNode[];
}
const planNodes = (n: PlanNode): PlanNode[] => [n, ...(n.Plans ?? []).flatMap(planNodes)];

describe('a row with a long backlog (hot row)', () => {
  it('a claim reads at most the window of its waiting events, and the other rows are reached window by window', async () => {
    await db.query(`CREATE TABLE hot_walk (id int PRIMARY KEY, n int)`);
    await install(['hot_walk'], 'adl_hot_walk');
    await db.query(`INSERT INTO hot_walk VALUES (1, 0)`);
    // 2,000 changes of row 1, in one transaction, then one change of each of 5 other rows.
    await db.query(`DO $$ BEGIN FOR i IN 1..2000 LOOP UPDATE hot_walk SET n = n + 1 WHERE id = 1; END LOOP; END $$`);
    await db.query(`INSERT INTO hot_walk SELECT g, 0 FROM generate_series(2, 6) g`);
    const j = journal('adl_hot_walk', [{ schema: 'public', name: 'hot_walk' }]);
    // The row's first event is its head; the rest wait behind it.
    const first = await j.claim(10);
    expect(first.map((e) => JSON.parse(e.newRow!).id)).toEqual([1]);
    expect(first[0]!.rowHash).toBeDefined();

    // What one claim reads: the walk's scan of the journal (alias e) looks at most at
    // CLAIM_WINDOW events, those it keeps and those it filters out together.
    const q = makeQueries('adl_hot_walk');
    const c = await db.pool.connect();
    try {
      for (const setting of JOURNAL_SESSION_SETTINGS) await c.query(`SET ${setting.replace('=', ' = ')}`);
      await c.query('BEGIN');
      const [plan] = (await c.query<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>(`EXPLAIN (ANALYZE, FORMAT JSON) ${q.claim(1)}`, [10, 'other', 60_000, 'public', 'hot_walk', '0', CLAIM_WINDOW, [], 'default'])).rows[0]!['QUERY PLAN'];
      await c.query('ROLLBACK');
      const walk = planNodes(plan!.Plan).find((n) => n.Alias === 'e');
      expect(walk?.['Index Name'], JSON.stringify(plan)).toBe('deliveries_pkey');
      const looked = walk!['Actual Rows']! + (walk!['Rows Removed by Filter'] ?? 0);
      expect(looked).toBeGreaterThan(100);
      expect(looked).toBeLessThanOrEqual(CLAIM_WINDOW);
    } finally {
      await c.query('RESET ALL').catch(() => undefined);
      c.release();
    }

    // While the head is in flight, further claims cross the waiting events a window at a
    // time and reach the other rows; none of the waiting events is ever claimed.
    const others = new Set<number>();
    for (let i = 0; i < Math.ceil(2000 / CLAIM_WINDOW) + 2 && others.size < 5; i++) {
      for (const e of await j.claim(10)) {
        const row = JSON.parse(e.newRow!) as { id: number };
        expect(row.id).not.toBe(1);
        others.add(row.id);
      }
    }
    expect([...others].sort()).toEqual([2, 3, 4, 5, 6]);
  });

  it("the gate looks at a waiting event's nearest earlier one, not over the delivered events the row left behind", async () => {
    await db.query(`CREATE TABLE hot_gate (id int PRIMARY KEY, n int)`);
    await install(['hot_gate'], 'adl_hot_gate');
    // Dead index entries stay until vacuum: keep them, as a busy queue has them.
    await db.query(`ALTER TABLE adl_hot_gate.deliveries SET (autovacuum_enabled = false)`);
    await db.query(`INSERT INTO hot_gate VALUES (1, 0)`);
    await db.query(`DO $$ BEGIN FOR i IN 1..3000 LOOP UPDATE hot_gate SET n = n + 1 WHERE id = 1; END LOOP; END $$`);
    const j = journal('adl_hot_gate', [{ schema: 'public', name: 'hot_gate' }]);
    expect(await j.claim(1)).toHaveLength(1);
    // The row's first 2,990 changes were delivered (their rows deleted, not yet vacuumed).
    await db.query(`DELETE FROM adl_hot_gate.deliveries WHERE id IN (SELECT id FROM adl_hot_gate.deliveries ORDER BY id LIMIT 2990)`);
    // Its next change is claimed (the walk gets there window by window), and the walk
    // then finds the 9 left, all held back behind it.
    let next: unknown[] = [];
    for (let i = 0; i < 20 && next.length === 0; i++) next = await j.claim(1);
    expect(next).toHaveLength(1);
    const q = makeQueries('adl_hot_gate');
    const c = await db.pool.connect();
    try {
      for (const setting of JOURNAL_SESSION_SETTINGS) await c.query(`SET ${setting.replace('=', ' = ')}`);
      await c.query('BEGIN');
      const [plan] = (
        await c.query<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${q.claim(1)}`, [
          10, 'other', 60_000, 'public', 'hot_gate', '0', CLAIM_WINDOW, [], 'default',
        ])
      ).rows[0]!['QUERY PLAN'];
      await c.query('ROLLBACK');
      const walk = planNodes(plan!.Plan).find((n) => n.Alias === 'e');
      const gate = planNodes(walk!).find((n) => n['Index Name'] === 'deliveries_row_hash_idx');
      expect(gate?.['Actual Loops'], JSON.stringify(plan)).toBeGreaterThanOrEqual(9);
      // One probe: the index's path to the nearest earlier entry, and its row. A probe from
      // the row's start steps over every dead entry: ~4 more pages per 1,000.
      const pages = ((gate!['Shared Hit Blocks'] ?? 0) + (gate!['Shared Read Blocks'] ?? 0)) / gate!['Actual Loops']!;
      expect(pages, JSON.stringify(gate)).toBeLessThanOrEqual(6);
    } finally {
      await c.query('RESET ALL').catch(() => undefined);
      c.release();
    }
  });

  it('settling the head of a busy row claims its next event in the very next claim, in commit order', async () => {
    await db.query(`CREATE TABLE hot_heads (id int PRIMARY KEY, n int)`);
    await install(['hot_heads'], 'adl_hot_heads');
    await db.query(`INSERT INTO hot_heads VALUES (1, 0)`);
    await db.query(`DO $$ BEGIN FOR i IN 1..600 LOOP UPDATE hot_heads SET n = n + 1 WHERE id = 1; END LOOP; END $$`);
    const j = journal('adl_hot_heads', [{ schema: 'public', name: 'hot_heads' }]);
    const seen: number[] = [];
    for (let claims = 0; claims < 601; claims++) {
      const batch = await j.claim(10);
      // One event at a time: the row's next one only once the previous is settled.
      expect(batch.length, `claim ${claims}`).toBe(1);
      const e = batch[0]!;
      seen.push((JSON.parse(e.newRow!) as { n: number }).n);
      await j.complete([{ kind: 'delivered', id: e.id, token: e.claimToken, ...(e.rowHash ? { rowHash: e.rowHash } : {}) }]);
    }
    expect(seen).toEqual(Array.from({ length: 601 }, (_, i) => i));
    expect(await j.claim(10)).toEqual([]);
  });
});
