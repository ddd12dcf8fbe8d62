/**
 * The MySQL/MariaDB journal at its own level: what the triggers capture (type
 * fidelity, big rows), retention and the hot-row walk. Claims, the gate, outcomes,
 * tokens and concurrency are the journal conformance suite's
 * (test/conformance/journal-suite.ts), shared with PostgreSQL.
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

  it('reads the installation id for event ids', async () => {
    expect(await readEventIdPrefix(db.pool, 'adl_j')).toMatch(/^evt_[0-9a-f]{12}_$/);
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

  it("the gate reads one index entry for a busy row's head, not the row's whole queue", async () => {
    await db.exec(`CREATE TABLE hot_gate (id INT PRIMARY KEY, n INT)`);
    await install(['hot_gate'], 'adl_hot_gate');
    await db.exec(`INSERT INTO hot_gate VALUES (1, 0)`);
    await hotBacklog('hot_gate', 2000);
    // Routed into the queue; the row's head is then claimed and its claim given back.
    const j = journal('adl_hot_gate', ['hot_gate']);
    const [head] = await j.claim(10);
    expect(head).toBeDefined();
    await j.complete([{ kind: 'retry', id: head!.id, token: head!.claimToken, delayMs: 0, refund: true }]);
    const q = makeQueries('adl_hot_gate');
    // The reads of the gate's subquery (alias p), as the server reports them.
    const gateReads = (analyzed: string): number[] =>
      [...analyzed.matchAll(/\\"table_name\\":\s*\\"p\\"[\s\S]*?\\"r_rows\\":\s*([\d.]+)/g)].map((m) => Number(m[1]));
    const analyzed = await withConnection(db.pool, async (c) => {
      await c.query('START TRANSACTION');
      try {
        const [walk] = await c.query<mysql.RowDataPacket[]>(`ANALYZE FORMAT=JSON ${q.claimWalk(1)}`, [
          60_000_000, 'default', Number(head!.id), Number(head!.id) + 10, db.name, 'hot_gate', 10,
        ]);
        const [mark] = await c.query<mysql.RowDataPacket[]>(`ANALYZE FORMAT=JSON ${q.markClaimed}`, [
          JSON.stringify([head!.id]), 'default', 'x', '2030-01-01 00:00:00.000000',
        ]);
        return { walk: JSON.stringify(walk), mark: JSON.stringify(mark) };
      } finally {
        await c.query('ROLLBACK');
      }
    });
    // The walk passes the head (the oldest of its row) and holds back the 9 behind it;
    // the mark lets the head through: each look is the row's first index entry (with
    // "no earlier id", MariaDB read every queued event of the row for its head).
    for (const [what, text] of Object.entries(analyzed)) {
      const reads = gateReads(text);
      expect(reads.length, `${what}: ${text}`).toBeGreaterThan(0);
      for (const r of reads) expect(r, `${what}: ${text}`).toBeLessThanOrEqual(2);
    }
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
