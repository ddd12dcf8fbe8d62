/**
 * The MySQL/MariaDB journal at its own level: what the triggers capture (type
 * fidelity, big rows), claims, outcomes, tokens, ordering and concurrency.
 */
import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyInstall } from '../../src/capture/mysql/install.js';
import { MySqlJournal, readEventIdPrefix, type MySqlJournalOptions } from '../../src/capture/mysql/journal.js';
import { makeQueries } from '../../src/capture/mysql/queries.js';
import { closeTestQueues, testQueue } from '../support/queue.js';
import { CLAIM_WINDOW } from '../../src/journal/claim-window.js';
import type { JournalEvent } from '../../src/journal/types.js';
import { createMySqlTestDatabase, withConnection, type MySqlTestDatabase } from '../support/mysql.js';
import { waitUntil } from '../support/wait.js';

let db: MySqlTestDatabase;

beforeAll(async () => {
  db = await createMySqlTestDatabase('journal');
});
afterAll(async () => {
  await closeTestQueues();
  await db?.drop();
});

async function install(tables: string[], prefix: string, modes?: string) {
  return withConnection(db.pool, (c) => applyInstall(c, db.config({ tables, schema: prefix, ...(modes ? { modes } : {}) })));
}

/** The destination "default"'s queue of the journal with `prefix` (claims route first). */
function journal(prefix: string, tables: string[], options: Partial<MySqlJournalOptions> = {}) {
  const refs = tables.map((name) => ({ schema: db.name, name }));
  const j = new MySqlJournal(db.pool, makeQueries(prefix), {
    instanceId: 'test:1:a',
    leaseMs: 60_000,
    keepDelivered: false,
    eventIdPrefix: 'evt_t_',
    tables: refs,
    lockScope: `${db.name}:${prefix}`,
    ...options,
  });
  return testQueue(j, refs);
}

async function count(table: string): Promise<number> {
  const r = await db.query<{ n: string }>(`SELECT COUNT(*) AS n FROM \`${table}\``);
  return Number(r[0]!.n);
}

const delivered = (e: JournalEvent) => ({ kind: 'delivered' as const, id: e.id, token: e.claimToken });

describe('capture fidelity', () => {
  beforeAll(async () => {
    await db.exec(`CREATE TABLE fidelity (
      id     BIGINT UNSIGNED PRIMARY KEY,
      price  DECIMAL(10,2),
      big    BIGINT,
      small  BIGINT,
      ubig   BIGINT UNSIGNED,
      dt     DATETIME(6),
      ts     TIMESTAMP(6) NULL DEFAULT NULL,
      ts0    TIMESTAMP NULL DEFAULT NULL,
      ts3    TIMESTAMP(3) NULL DEFAULT NULL,
      flag   TINYINT(1),
      doc    JSON,
      txt    VARCHAR(100),
      lat    VARCHAR(20) CHARACTER SET latin1,
      bin    BLOB,
      vb     VARBINARY(10),
      color  ENUM('red','green'),
      tags   SET('a','b','c'),
      bits   BIT(10),
      zf     INT(6) UNSIGNED ZEROFILL,
      d      DATE,
      tm     TIME(3),
      y      YEAR,
      f      FLOAT,
      dbl    DOUBLE,
      pt     POINT NULL,
      nothing VARCHAR(5) NULL
    )`);
    await db.exec(`CREATE TABLE big_rows (id INT PRIMARY KEY, body LONGTEXT, data LONGBLOB)`);
    await install(['fidelity', 'big_rows'], 'adl_fid');
  });

  it('keeps every type exact, with a writer in a non-UTC session time zone', async () => {
    const writer = await db.connect();
    try {
      await writer.query(`SET time_zone = '+05:00'`);
      await writer.query(
        `INSERT INTO fidelity VALUES (1, 12.50, 9223372036854775807, -9223372036854775808, 18446744073709551615,
          '2026-11-26 18:00:33.268907', '2026-11-26 18:00:33.268907', '2026-11-26 18:00:33', '2026-11-26 18:00:33.268', 1,
          '{"a": {"b": [1, 2.50, "x"]}, "n": 12345678901234567890123}', ?, 'café',
          X'00FF10FE', X'DEAD', 'green', 'a,c', b'1000000001', 42, '2026-02-28', '12:34:56.789', 2026,
          1.5, 0.1, POINT(1, 2), NULL)`,
        ['emoji 😀 "quoted" back\\slash\ttab'],
      );
    } finally {
      await writer.end();
    }
    const events = await journal('adl_fid', ['fidelity']).claim(10);
    expect(events).toHaveLength(1);
    const e = events[0]!;
    const text = e.newRow!;
    expect(text).toContain('"price": 12.50');
    expect(text).toContain('"big": 9223372036854775807');
    expect(text).toContain('"small": -9223372036854775808');
    expect(text).toContain('"ubig": 18446744073709551615');
    expect(text).toContain('"dt": "2026-11-26 18:00:33.268907"');
    // 18:00:33 at +05:00 is 13:00:33 UTC, whatever the writer's session said.
    expect(text).toContain('"ts": "2026-11-26T13:00:33.268907Z"');
    expect(text).toContain('"ts0": "2026-11-26T13:00:33Z"');
    expect(text).toContain('"ts3": "2026-11-26T13:00:33.268Z"');
    expect(text).toContain('"flag": 1');
    expect(text).toContain('2.50');
    expect(text).toContain('12345678901234567890123');
    expect(text).toContain('😀');
    expect(text).toContain('"zf": 42');
    expect(text).toContain('"tm": "12:34:56.789"');
    expect(text).toContain('"nothing": null');

    const row = JSON.parse(text) as Record<string, unknown>;
    // Column order is kept.
    expect(Object.keys(row)).toEqual([
      'id', 'price', 'big', 'small', 'ubig', 'dt', 'ts', 'ts0', 'ts3', 'flag', 'doc', 'txt', 'lat', 'bin', 'vb',
      'color', 'tags', 'bits', 'zf', 'd', 'tm', 'y', 'f', 'dbl', 'pt', 'nothing',
    ]);
    expect(row).toMatchObject({
      id: 1,
      doc: { a: { b: [1, 2.5, 'x'] } }, // nested JSON, not a string
      txt: 'emoji 😀 "quoted" back\\slash\ttab',
      lat: 'café',
      bin: Buffer.from([0x00, 0xff, 0x10, 0xfe]).toString('base64'),
      vb: Buffer.from([0xde, 0xad]).toString('base64'),
      color: 'green',
      tags: 'a,c',
      bits: 513,
      d: '2026-02-28',
      y: 2026,
      f: 1.5,
      dbl: 0.1,
      pt: 'POINT(1 2)',
      nothing: null,
    });
    expect(e.oldRow).toBeNull();
    expect(e).toMatchObject({ op: 'INSERT', schema: db.name, table: 'fidelity', attempts: 1, eventId: `evt_t_${e.id}` });
    // The change time: UTC with microseconds, close to now (not shifted by the writer's +05:00).
    expect(e.timestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    expect(Math.abs(e.createdAtMs - Date.now())).toBeLessThan(60_000);
    expect(e.createdAtMs).toBe(Date.parse(e.timestamp));
  });

  it('captures UPDATE with both rows and DELETE with the old row, and nothing from a rollback', async () => {
    await db.exec(`INSERT INTO fidelity (id, price) VALUES (2, 1.00)`);
    await db.exec(`UPDATE fidelity SET price = 2.00 WHERE id = 2`);
    await db.exec(`DELETE FROM fidelity WHERE id = 2`);
    const writer = await db.connect();
    try {
      await writer.query('START TRANSACTION');
      await writer.query(`INSERT INTO fidelity (id) VALUES (3)`);
      await writer.query('ROLLBACK');
    } finally {
      await writer.end();
    }
    const j = journal('adl_fid', ['fidelity']);
    const seen: JournalEvent[] = [];
    // One row: its events come one at a time, in order.
    for (let i = 0; i < 3; i++) {
      const [e] = await j.claim(10);
      expect(e).toBeDefined();
      seen.push(e!);
      await j.complete([delivered(e!)]);
    }
    expect(await j.claim(10)).toEqual([]);
    expect(seen.map((e) => e.op)).toEqual(['INSERT', 'UPDATE', 'DELETE']);
    expect(JSON.parse(seen[1]!.newRow!)).toMatchObject({ id: 2, price: 2 });
    expect(seen[1]!.newRow).toContain('"price": 2.00');
    expect(seen[1]!.oldRow).toContain('"price": 1.00');
    expect(seen[2]!.newRow).toBeNull();
    expect(seen[2]!.oldRow).toContain('"id": 2');
  });

  it('captures a 1 MB row', async () => {
    const body = 'é'.repeat(300_000) + 'x'.repeat(400_000) + '😀';
    const data = Buffer.alloc(1024 * 1024, 0xab);
    await db.exec(`INSERT INTO big_rows VALUES (1, ?, ?)`, [body, data]);
    const [e] = await journal('adl_fid', ['big_rows']).claim(10);
    expect(e).toBeDefined();
    expect(e!.newRow!.length).toBeGreaterThan(2_000_000);
    const row = JSON.parse(e!.newRow!) as { body: string; data: string };
    expect(row.body).toBe(body);
    expect(Buffer.from(row.data, 'base64').equals(data)).toBe(true);
  });
});

describe('claims and outcomes', () => {
  beforeAll(async () => {
    await db.exec(`CREATE TABLE items (id INT PRIMARY KEY, v INT)`);
    await db.exec(`CREATE TABLE other (id INT PRIMARY KEY)`);
    await install(['items', 'other'], 'adl_j');
  });

  async function drain(prefix = 'adl_j') {
    await db.exec(`DELETE FROM \`${prefix}_events\``);
    await db.exec(`DELETE FROM \`${prefix}_deliveries\``);
  }

  it('delivered deletes the event, or keeps it for the retention, then purges it', async () => {
    await drain();
    await db.exec(`INSERT INTO items VALUES (1, 0), (2, 0)`);
    const [a, b] = await journal('adl_j', ['items']).claim(10);
    await journal('adl_j', ['items']).complete([delivered(a!)]);
    expect(await count('adl_j_deliveries')).toBe(1);
    const keeping = journal('adl_j', ['items'], { keepDelivered: true });
    await keeping.complete([delivered(b!)]);
    expect(await count('adl_j_deliveries')).toBe(0);
    const kept = await db.query<{ id: string; attempts: number }>(`SELECT id, attempts FROM adl_j_delivered_events`);
    expect(kept).toEqual([{ id: b!.id, attempts: 1 }]);
    await waitUntil(async () => (await keeping.journal.purgeDelivered(0)) === 1, 5_000, 'the delivered event to pass its retention');
    expect(await count('adl_j_delivered_events')).toBe(0);
  });

  it('retry schedules the event, refunds when asked; dead moves it to dead letters', async () => {
    await drain();
    await db.exec(`INSERT INTO items VALUES (10, 0), (11, 0), (12, 0)`);
    const j = journal('adl_j', ['items']);
    const [r1, r2, d] = await j.claim(10);
    await j.complete([
      { kind: 'retry', id: r1!.id, token: r1!.claimToken, delayMs: 0, refund: false, status: 503, error: 'unavailable' },
      { kind: 'retry', id: r2!.id, token: r2!.claimToken, delayMs: 60_000, refund: true, error: 'outage' },
      { kind: 'dead', id: d!.id, token: d!.claimToken, status: 410, error: 'gone' },
    ]);
    const again = await j.claim(10);
    // r1 is due again with its attempt counted; r2 waits a minute, its attempt refunded.
    expect(again.map((e) => [e.id, e.attempts])).toEqual([[r1!.id, 2]]);
    const rows = await db.query<{ id: string; attempts: number; last_status: number | null; last_error: string; due_later: number }>(
      `SELECT id, attempts, last_status, last_error, run_at > UTC_TIMESTAMP(6) AS due_later FROM adl_j_deliveries WHERE id = ?`,
      [r2!.id],
    );
    expect(rows).toEqual([{ id: r2!.id, attempts: 0, last_status: null, last_error: 'outage', due_later: 1 }]);
    // The endpoint is back: waiting retries become due at once (only this daemon's tables).
    expect(await journal('adl_j', ['other']).retryNow()).toBe(0);
    expect(await j.retryNow()).toBe(1);
    expect((await j.claim(10)).map((e) => e.id)).toEqual([r2!.id]);
    const dead = await db.query<Record<string, unknown>>(
      `SELECT id, op, table_name, attempts, last_status, last_error, new_row FROM adl_j_dead_letters`,
    );
    expect(dead).toEqual([
      { id: d!.id, op: 'INSERT', table_name: 'items', attempts: 1, last_status: 410, last_error: 'gone', new_row: d!.newRow },
    ]);
    expect(await count('adl_j_deliveries')).toBe(2);
  });

  it('an event given back unsent keeps its last error and status, and its attempt is refunded', async () => {
    await drain();
    await db.exec(`INSERT INTO items VALUES (90, 0)`);
    const j = journal('adl_j', ['items']);
    const [first] = await j.claim(10);
    await j.complete([{ kind: 'retry', id: first!.id, token: first!.claimToken, delayMs: 0, refund: false, status: 503, error: 'HTTP 503' }]);
    const [second] = await j.claim(10);
    expect(second!.attempts).toBe(2);
    await j.complete([{ kind: 'retry', id: second!.id, token: second!.claimToken, delayMs: 0, refund: true }]);
    const rows = await db.query<Record<string, unknown>>(`SELECT attempts, last_status, last_error, claimed_by FROM adl_j_deliveries WHERE id = ?`, [first!.id]);
    expect(rows).toEqual([{ attempts: 1, last_status: 503, last_error: 'HTTP 503', claimed_by: null }]);
    await j.complete([delivered((await j.claim(10))[0]!)]);
  });

  it('only the oldest event of a row is claimable; other rows are not held up', async () => {
    await drain();
    await db.exec(`INSERT INTO items VALUES (20, 1)`);
    await db.exec(`UPDATE items SET v = 2 WHERE id = 20`);
    await db.exec(`INSERT INTO items VALUES (21, 1)`);
    const a = journal('adl_j', ['items'], { instanceId: 'a:1:a' });
    const b = journal('adl_j', ['items'], { instanceId: 'b:1:b' });
    const first = await a.claim(10);
    expect(first.map((e) => [e.op, JSON.parse(e.newRow!).id])).toEqual([['INSERT', 20], ['INSERT', 21]]);
    // The update of row 20 waits for its insert, whoever asks.
    expect(await b.claim(10)).toEqual([]);
    // A failing event blocks its row: retried, it is still first.
    await a.complete([{ kind: 'retry', id: first[0]!.id, token: first[0]!.claimToken, delayMs: 0, refund: false, error: 'x' }]);
    const retried = await b.claim(10);
    expect(retried.map((e) => e.id)).toEqual([first[0]!.id]);
    await b.complete([delivered(retried[0]!)]);
    const next = await b.claim(10);
    expect(next.map((e) => e.op)).toEqual(['UPDATE']);
    expect(JSON.parse(next[0]!.newRow!)).toEqual({ id: 20, v: 2 });
  });

  it('an outcome from an expired claim never acts on the newer claim of the event', async () => {
    await drain();
    await db.exec(`INSERT INTO items VALUES (30, 0)`);
    const a = journal('adl_j', ['items'], { instanceId: 'a:1:a', leaseMs: 300 });
    const b = journal('adl_j', ['items'], { instanceId: 'b:1:b' });
    const [first] = await a.claim(10);
    expect(first).toBeDefined();
    expect(await b.claim(10)).toEqual([]);
    // a's lease runs out (a stuck delivery): b takes the event over.
    const [taken] = await waitUntil(async () => {
      const got = await b.claim(10);
      return got.length > 0 ? got : undefined;
    }, 10_000, 'the lease to expire');
    expect(taken!.id).toBe(first!.id);
    expect(taken!.attempts).toBe(2);
    expect(taken!.claimToken).not.toBe(first!.claimToken);
    // a's late outcomes land: none of them touches b's claim.
    const deadBefore = await count('adl_j_dead_letters');
    await a.complete([delivered(first!)]);
    await a.complete([{ kind: 'dead', id: first!.id, token: first!.claimToken, error: 'late' }]);
    await a.complete([{ kind: 'retry', id: first!.id, token: first!.claimToken, delayMs: 0, refund: true, error: 'late' }]);
    expect(await count('adl_j_deliveries')).toBe(1);
    expect(await count('adl_j_dead_letters')).toBe(deadBefore);
    const held = await db.query<{ claimed_by: string }>(`SELECT claimed_by FROM adl_j_deliveries`);
    expect(held).toEqual([{ claimed_by: 'b:1:b' }]);

    // The same instance claiming again after its own lease ran out: the old token is void too.
    const self = journal('adl_j', ['items'], { instanceId: 'b:1:b', leaseMs: 300 });
    await db.exec(`UPDATE adl_j_deliveries SET claimed_until = UTC_TIMESTAMP(6) - INTERVAL 1 SECOND`);
    const [again] = await self.claim(10);
    expect(again!.claimToken).not.toBe(taken!.claimToken);
    await self.complete([delivered(taken!)]);
    expect(await count('adl_j_deliveries')).toBe(1);
    await self.complete([delivered(again!)]);
    expect(await count('adl_j_deliveries')).toBe(0);
  });

  it('claims only the configured tables, and gives claims back on stop and after a crash', async () => {
    await drain();
    await db.exec(`INSERT INTO items VALUES (40, 0)`);
    await db.exec(`INSERT INTO other VALUES (1)`);
    expect((await journal('adl_j', ['other'], { instanceId: 'o:1:o' }).claim(10)).map((e) => e.table)).toEqual(['other']);
    const mine = journal('adl_j', ['items'], { instanceId: 'host-x:4242:aa' });
    expect((await mine.claim(10)).map((e) => e.table)).toEqual(['items']);
    expect(await mine.journal.releaseClaims()).toBe(1);
    const [back] = await mine.claim(10);
    expect(back!.attempts).toBe(1); // the released attempt was refunded
    // A restarted process on the same host releases the claims of its dead predecessor (pid 4242)...
    const successor = journal('adl_j', ['items'], { instanceId: 'host-x:5000:bb' });
    expect(await successor.journal.releaseClaimsOfDeadLocalProcesses('host-x', (pid) => pid !== 4242)).toBe(1);
    // ...but never those of a live one, nor of another host.
    await mine.claim(10);
    expect(await successor.journal.releaseClaimsOfDeadLocalProcesses('host-x', () => true)).toBe(0);
    expect(await successor.journal.releaseClaimsOfDeadLocalProcesses('host-y', () => false)).toBe(0);
    expect(await successor.journal.releaseClaimsOfDeadLocalProcesses('host_x', () => false)).toBe(0); // _ is not a wildcard
  });

  it('reads the installation id for event ids', async () => {
    expect(await readEventIdPrefix(db.pool, 'adl_j')).toMatch(/^evt_[0-9a-f]{12}_$/);
  });
});

describe('concurrency', () => {
  it('two instances claiming at once never share an event and keep per-row order', async () => {
    await db.exec(`CREATE TABLE busy_rows (id INT PRIMARY KEY, n INT NOT NULL)`);
    await install(['busy_rows'], 'adl_cc');
    const rowsCount = 20;
    const updates = 10;
    // Concurrent writers: one per row, each a sequence of committed changes.
    await Promise.all(
      Array.from({ length: rowsCount }, async (_, r) => {
        const w = await db.connect();
        try {
          await w.query(`INSERT INTO busy_rows VALUES (?, 0)`, [r]);
          for (let n = 1; n <= updates; n++) await w.query(`UPDATE busy_rows SET n = ? WHERE id = ?`, [n, r]);
        } finally {
          await w.end();
        }
      }),
    );
    const total = rowsCount * (updates + 1);
    const inFlight = new Map<number, string>(); // row -> event id in flight
    const claimedIds = new Set<string>();
    const perRow = new Map<number, number[]>();
    const problems: string[] = [];
    const worker = async (instanceId: string) => {
      const j = journal('adl_cc', ['busy_rows'], { instanceId });
      const deadline = Date.now() + 30_000;
      while (claimedIds.size < total && Date.now() < deadline) {
        const batch = await j.claim(7);
        if (batch.length === 0) {
          await new Promise((resolve) => setImmediate(resolve));
          continue;
        }
        for (const e of batch) {
          const row = JSON.parse(e.newRow!) as { id: number; n: number };
          if (claimedIds.has(e.id)) problems.push(`${instanceId} claimed ${e.id} again`);
          if (inFlight.has(row.id)) problems.push(`row ${row.id}: ${e.id} claimed while ${inFlight.get(row.id)} in flight`);
          claimedIds.add(e.id);
          inFlight.set(row.id, e.id);
          perRow.set(row.id, [...(perRow.get(row.id) ?? []), row.n]);
        }
        // Deliver (a little later, so the two instances' claims interleave), then free the rows.
        await new Promise((resolve) => setImmediate(resolve));
        for (const e of batch) inFlight.delete((JSON.parse(e.newRow!) as { id: number }).id);
        await j.complete(batch.map(delivered));
      }
    };
    await Promise.all([worker('a:1:a'), worker('b:2:b')]);
    expect(problems).toEqual([]);
    expect(claimedIds.size).toBe(total);
    for (let r = 0; r < rowsCount; r++) expect(perRow.get(r)).toEqual(Array.from({ length: updates + 1 }, (_, n) => n));
    expect(await count('adl_cc_deliveries')).toBe(0);
  });
});

describe('a row with a long backlog (hot row)', () => {
  /** `n` changes of row 1 of `table` (column n counting them), in one transaction. */
  async function hotBacklog(table: string, n: number): Promise<void> {
    await withConnection(db.pool, async (c) => {
      await c.query('START TRANSACTION');
      for (let i = 0; i < n; i++) await c.query(`UPDATE \`${table}\` SET n = n + 1 WHERE id = 1`);
      await c.query('COMMIT');
    });
  }

  it('a walk reads at most the window of its waiting events, and the other rows are reached window by window', async () => {
    await db.exec(`CREATE TABLE hot_walk (id INT PRIMARY KEY, n INT)`);
    await install(['hot_walk'], 'adl_hot_walk');
    await db.exec(`INSERT INTO hot_walk VALUES (1, 0)`);
    await hotBacklog('hot_walk', 2000);
    await db.exec(`INSERT INTO hot_walk VALUES (2, 0), (3, 0), (4, 0), (5, 0), (6, 0)`);
    const j = journal('adl_hot_walk', ['hot_walk']);
    const first = await j.claim(10);
    expect(first.map((e) => (JSON.parse(e.newRow!) as { id: number }).id)).toEqual([1]);
    expect(first[0]!.rowHash).toBeDefined();

    // What the walk reads from the journal, as the server reports it.
    const [minRow] = await db.query<{ id: string }>(`SELECT MIN(id) AS id FROM adl_hot_walk_deliveries WHERE destination = 'default'`);
    const lo = Number(minRow!.id);
    const analyzed = await withConnection(db.pool, async (c) => {
      await c.query('START TRANSACTION');
      const [r] = await c.query<mysql.RowDataPacket[]>(`ANALYZE FORMAT=JSON ${makeQueries('adl_hot_walk').claimWalk(1)}`, [
        60_000_000,
        'default',
        lo,
        lo + CLAIM_WINDOW,
        db.name,
        'hot_walk',
        10,
      ]);
      await c.query('ROLLBACK');
      return JSON.stringify(r);
    });
    const read = /\\"table_name\\":\s*\\"e\\"[\s\S]*?\\"r_rows\\":\s*([\d.]+)/.exec(analyzed);
    expect(read, analyzed).not.toBeNull();
    expect(Number(read![1])).toBeGreaterThan(100);
    expect(Number(read![1])).toBeLessThanOrEqual(CLAIM_WINDOW);

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

  it('settling the head of a busy row claims its next event in the very next claim, in commit order', async () => {
    await db.exec(`CREATE TABLE hot_heads (id INT PRIMARY KEY, n INT)`);
    await install(['hot_heads'], 'adl_hot_heads');
    await db.exec(`INSERT INTO hot_heads VALUES (1, 0)`);
    await hotBacklog('hot_heads', 600);
    const j = journal('adl_hot_heads', ['hot_heads']);
    const seen: number[] = [];
    for (let claims = 0; claims < 601; claims++) {
      const batch = await j.claim(10);
      expect(batch.length, `claim ${claims}`).toBe(1);
      const e = batch[0]!;
      seen.push((JSON.parse(e.newRow!) as { n: number }).n);
      await j.complete([{ ...delivered(e), ...(e.rowHash ? { rowHash: e.rowHash } : {}) }]);
    }
    expect(seen).toEqual(Array.from({ length: 601 }, (_, i) => i));
    expect(await j.claim(10)).toEqual([]);
  });
});
