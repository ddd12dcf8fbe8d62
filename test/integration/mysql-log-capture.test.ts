/**
 * Log capture (listener.capture: log) on a private MariaDB with a ROW binary log: what
 * the binlog reader journals must be what the triggers journal, value for value. Both
 * capture the same table at once here (two installations, two prefixes), and every
 * delivered body's data and old_data are compared as text, and the row hashes too.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import type mysql from 'mysql2/promise';
import { startDaemon, type RunningDaemon } from '../../src/app.js';
import { address, startBinlogMariaDb } from '../support/binlog-mariadb.js';
import { createMySqlTestDatabase, mysqlConfig, type MySqlConfigOptions, type MySqlTestDatabase } from '../support/mysql.js';
import type { PrivateMariaDb } from '../support/private-servers.js';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { waitUntil } from '../support/wait.js';

let server: PrivateMariaDb;
let db: MySqlTestDatabase;
let rxLog: Receiver;
let rxTrigger: Receiver;
const running: RunningDaemon[] = [];

beforeAll(async () => {
  server = await startBinlogMariaDb();
  db = await createMySqlTestDatabase('logcap', address(server));
  rxLog = await startReceiver();
  rxTrigger = await startReceiver();
}, 120_000);
afterAll(async () => {
  await Promise.all(running.splice(0).map((d) => d.stop(2_000)));
  await rxLog?.close();
  await rxTrigger?.close();
  await db?.drop().catch(() => undefined);
  await server?.close();
  // Stopping the daemons and the private server took over a minute on a loaded machine.
}, 180_000);

/** Tables whose row events a binlog dump from `from` sends, read to the end of the log (a heartbeat). */
async function tablesInLog(from: { file: string; position: number }, filtered: boolean): Promise<Set<string>> {
  const { default: ZongJi } = (await import('@vlasky/zongji')) as unknown as { default: new (dsn: unknown) => TestStream };
  const z = new ZongJi({ host: server.host, port: server.port, user: server.user, password: server.password });
  const tables = new Set<string>();
  let atEnd = false;
  z.on('binlog', (e) => {
    if (e.getEventName() === 'tablemap' && e.tableName) tables.add(e.tableName);
    if (e.getEventName() === 'heartbeat') atEnd = true;
  });
  z.on('error', () => undefined);
  z.start({ serverId: filtered ? 7_770_001 : 7_770_002, filename: from.file, position: from.position, includeEvents: ['tablemap', 'heartbeat'] });
  if (filtered) z.connection.query('SET skip_replication = 1', () => undefined);
  // Sent when the dump has nothing more to send: the reader is at the end of the log.
  z.connection.query('SET @master_heartbeat_period = 200000000', () => undefined);
  try {
    await waitUntil(async () => atEnd, 20_000, 'the test reader to reach the end of the binary log');
  } finally {
    z.stop();
  }
  return tables;
}

interface TestStream {
  on(event: 'binlog', listener: (e: { getEventName(): string; tableName?: string }) => void): void;
  on(event: 'error', listener: (err: unknown) => void): void;
  start(options: Record<string, unknown>): void;
  stop(): void;
  readonly connection: { query(sql: string, callback: (err: unknown) => void): void };
}

const silent = () => pino({ level: process.env.ADL_TEST_LOG ?? 'silent' });

async function daemon(o: Omit<MySqlConfigOptions, 'webhookUrl'> & { webhookUrl: string }) {
  const d = await startDaemon(db.config(o), { logger: silent() });
  running.push(d);
  return d;
}

async function stopDaemon(d: RunningDaemon) {
  await d.stop(2_000);
  running.splice(running.indexOf(d), 1);
}

interface Body {
  id: string;
  operation: string;
  schema: string;
  table: string;
  data: Record<string, unknown> | null;
  old_data: Record<string, unknown> | null;
}
/** The bodies of `table`, in journal order (rows are delivered side by side; each row's in order). */
const bodies = (rx: Receiver, table: string) =>
  rx.events
    .map((e) => e.body)
    .filter((b) => b.includes(`"table":"${table}"`))
    .sort((a, b) => seq(a) - seq(b));
const seq = (body: string) => Number(/"id":"evt_[a-z0-9]+_(\d+)"/.exec(body)![1]);
/** data and old_data as the raw text of the body, so 12.50 and big integers are compared as sent. */
const rowsText = (body: string) => body.slice(body.indexOf(',"data":'));
const count = async (sql: string, params: unknown[] = []) => Number((await db.query<{ n: number | string }>(sql, params))[0]!.n);

describe('binlog capture', () => {
  it('journals every type exactly as the triggers do, with old_data, in commit order', async () => {
    await db.exec(`CREATE TABLE fidelity (
      id BIGINT UNSIGNED PRIMARY KEY, ti TINYINT, si SMALLINT UNSIGNED, mi MEDIUMINT, i INT, bi BIGINT, zf INT(6) UNSIGNED ZEROFILL,
      b BOOLEAN, d DECIMAL(12,2), d0 DECIMAL(30,10), f FLOAT, db DOUBLE, bt BIT(10),
      vc VARCHAR(40), ch CHAR(3), tx TEXT, lt LONGTEXT, l1 VARCHAR(20) CHARACTER SET latin1, e ENUM('red','green'), st SET('a','b','c'),
      dt DATE, dtm DATETIME(6), dtm0 DATETIME, ts TIMESTAMP(3) NULL, tm TIME(3), tm0 TIME, y YEAR,
      j JSON, bn BINARY(4), vb VARBINARY(10), bl BLOB,
      u UUID, i4 INET4, i6 INET6, nothing INT)`);
    await daemon({ tables: ['fidelity'], webhookUrl: rxTrigger.url, schema: 'adl_trigger' });
    await daemon({ tables: ['fidelity'], webhookUrl: rxLog.url, schema: 'adl_log', capture: 'log' });
    const writer = await db.connect();
    try {
      // A writer in another time zone: TIMESTAMP must still arrive as the same UTC instant.
      await writer.query(`SET time_zone = '+05:00'`);
      await writer.query(
        `INSERT INTO fidelity VALUES (18446744073709551615, -128, 65535, -8388608, -2147483648, -9223372036854775808, 42,
          TRUE, 12.50, -12345678901234567890.0123456789, 0.1, 1.5e300, b'1000000001',
          'Zoé "w" \\\\ 😀', 'ab', ?, ?, 'café €', 'green', 'a,c',
          '2026-02-28', '2026-11-26 18:00:33.268907', '2026-11-26 18:00:33', '2026-11-26 18:00:33.268', '-12:34:56.789', '-01:00:00', 2026,
          '{"a": [1, 2.50, 9007199254740993], "b": null, "s": "é"}', X'00FF10FE', X'DEADBEEF', ?,
          'b2c1a0e4-1234-4abc-8def-000000000001', '10.0.0.1', '::1', NULL)`,
        ['line\nnext\ttab', 'x'.repeat(300_000), Buffer.from([0, 1, 2, 255])],
      );
      await writer.query(`UPDATE fidelity SET i = i + 1, d = 0.01, ts = '1970-01-01 05:00:01.000', vc = NULL WHERE id = 18446744073709551615`);
      await writer.query(`UPDATE fidelity SET lt = 'small now' WHERE id = 18446744073709551615`);
      await writer.query('START TRANSACTION');
      await writer.query(`INSERT INTO fidelity (id, vc) VALUES (2, 'two')`);
      await writer.query(`UPDATE fidelity SET vc = 'two!' WHERE id = 2`);
      await writer.query(`DELETE FROM fidelity WHERE id = 18446744073709551615`);
      await writer.query('COMMIT');
    } finally {
      await writer.end();
    }
    const six = (rx: Receiver) => rx.waitFor((evs) => evs.filter((e) => e.body.includes('"table":"fidelity"')).length >= 6, 20_000);
    await six(rxTrigger);
    await six(rxLog);
    const fromTrigger = bodies(rxTrigger, 'fidelity');
    const fromLog = bodies(rxLog, 'fidelity');
    expect(fromLog.map((b) => (JSON.parse(b) as Body).operation)).toEqual(['INSERT', 'UPDATE', 'UPDATE', 'INSERT', 'UPDATE', 'DELETE']);
    // Column by column, as text: the very bytes the triggers wrote.
    for (let i = 0; i < fromTrigger.length; i++) expect(rowsText(fromLog[i]!)).toBe(rowsText(fromTrigger[i]!));
    expect(fromLog[0]).toContain('"id": 18446744073709551615');
    expect(fromLog[0]).toContain('"d": 12.50');
    expect(fromLog[0]).toContain('"ts": "2026-11-26T13:00:33.268Z"');
    expect(fromLog[0]).toContain('"u": "b2c1a0e4-1234-4abc-8def-000000000001"');
    const update = JSON.parse(fromLog[1]!) as { data: Record<string, unknown>; old_data: Record<string, unknown> };
    expect((update.data.lt as string).length).toBe(300_000);
    expect(update.old_data.vc).toBe('Zoé "w" \\ 😀');
  }, 60_000);

  it('computes the row hash exactly as the triggers do (single, composite, TIMESTAMP and no key)', async () => {
    await db.exec(`CREATE TABLE keys1 (id VARCHAR(20) CHARACTER SET latin1 PRIMARY KEY, v INT)`);
    await db.exec(`CREATE TABLE keys2 (a INT, b VARCHAR(10), t TIMESTAMP(6) NOT NULL DEFAULT '2026-01-01 00:00:00', v INT, PRIMARY KEY (b, a, t))`);
    await db.exec(`CREATE TABLE keys0 (v INT)`);
    const tables = ['keys1', 'keys2', 'keys0'];
    await daemon({ tables, webhookUrl: rxTrigger.url, schema: 'adl_keys_trigger', retention: 3600 });
    await daemon({ tables, webhookUrl: rxLog.url, schema: 'adl_keys_log', capture: 'log', retention: 3600 });
    const writer = await db.connect();
    try {
      await writer.query(`SET time_zone = '-03:00'`);
      await writer.query('START TRANSACTION');
      await writer.query(`INSERT INTO keys1 VALUES ('it''s é', 1), ('x', 2)`);
      await writer.query(`INSERT INTO keys2 (a, b, t, v) VALUES (1, 'o''k', '2026-06-01 12:00:00.5', 1), (2, '', DEFAULT, 2)`);
      await writer.query(`INSERT INTO keys0 VALUES (1)`);
      await writer.query('COMMIT');
      await writer.query(`UPDATE keys2 SET v = v + 1`);
      await writer.query(`DELETE FROM keys1 WHERE id = 'x'`);
    } finally {
      await writer.end();
    }
    const delivered = (prefix: string) =>
      db.query<{ table_name: string; op: string; row_hash: string | null }>(
        `SELECT table_name, op, CAST(row_hash AS CHAR) AS row_hash FROM \`${prefix}_delivered_events\` ORDER BY id`,
      );
    await waitUntil(
      async () => (await delivered('adl_keys_trigger')).length === 8 && (await delivered('adl_keys_log')).length === 8,
      20_000,
      '8 events delivered in both modes',
    );
    const fromLog = await delivered('adl_keys_log');
    expect(fromLog).toEqual(await delivered('adl_keys_trigger'));
    expect(fromLog.find((r) => r.table_name === 'keys0')!.row_hash).toBeNull();
    expect(fromLog.filter((r) => r.table_name === 'keys2').every((r) => r.row_hash !== null)).toBe(true);
  }, 40_000);

  it('records the position with the events and leaves no trigger on the table', async () => {
    expect(await count('SELECT count(*) AS n FROM `adl_log_capture_positions`')).toBe(1);
    const triggers = await db.query<{ name: string }>(
      `SELECT TRIGGER_NAME AS name FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? AND EVENT_OBJECT_TABLE = 'fidelity' ORDER BY 1`,
      [db.name],
    );
    expect(triggers.map((t) => t.name)).toEqual(['adl_trigger_del_fidelity', 'adl_trigger_ins_fidelity', 'adl_trigger_upd_fidelity']);
  });

  it('reports a TRUNCATE as an event with no rows', async () => {
    await db.exec(`CREATE TABLE trunc (id INT PRIMARY KEY)`);
    await daemon({ tables: ['trunc'], webhookUrl: rxLog.url, schema: 'adl_trunc', capture: 'log' });
    await db.exec(`INSERT INTO trunc VALUES (1), (2)`);
    await db.exec(`TRUNCATE TABLE trunc`);
    await db.exec(`INSERT INTO trunc VALUES (3)`);
    await rxLog.waitFor((evs) => evs.filter((e) => e.body.includes('"table":"trunc"')).length >= 4, 20_000);
    const got = bodies(rxLog, 'trunc').map((b) => JSON.parse(b) as Body);
    expect(got.map((b) => b.operation)).toEqual(['INSERT', 'INSERT', 'TRUNCATE', 'INSERT']);
    expect(got[2]).toMatchObject({ data: null, old_data: null, schema: db.name, table: 'trunc' });
  }, 40_000);

  it('sends spatial values as the decoded points, as documented', async () => {
    await db.exec(`CREATE TABLE shapes (id INT PRIMARY KEY, p POINT, l LINESTRING)`);
    await daemon({ tables: ['shapes'], webhookUrl: rxLog.url, schema: 'adl_shapes', capture: 'log' });
    await db.exec(`INSERT INTO shapes VALUES (1, ST_GeomFromText('POINT(1 2)'), ST_GeomFromText('LINESTRING(0 0, 1.5 2)'))`);
    await rxLog.waitFor((evs) => evs.some((e) => e.body.includes('"table":"shapes"')), 20_000);
    const [got] = bodies(rxLog, 'shapes').map((b) => JSON.parse(b) as Body);
    expect(got!.data).toEqual({ id: 1, p: { x: 1, y: 2 }, l: [{ x: 0, y: 0 }, { x: 1.5, y: 2 }] });
  }, 40_000);

  it('journals an XA transaction committed in one phase', async () => {
    await db.exec(`CREATE TABLE xa1 (id INT PRIMARY KEY)`);
    await daemon({ tables: ['xa1'], webhookUrl: rxLog.url, schema: 'adl_xa1', capture: 'log' });
    const c = await db.connect();
    try {
      await c.query(`XA START 'one'`);
      await c.query(`INSERT INTO xa1 VALUES (1), (2)`);
      await c.query(`XA END 'one'`);
      await c.query(`XA COMMIT 'one' ONE PHASE`);
      await c.query(`INSERT INTO xa1 VALUES (3)`);
    } finally {
      await c.end();
    }
    await rxLog.waitFor((evs) => evs.filter((e) => e.body.includes('"table":"xa1"')).length >= 3, 20_000);
    expect(bodies(rxLog, 'xa1').map((b) => (JSON.parse(b) as Body).data!.id)).toEqual([1, 2, 3]);
  }, 40_000);

  it('reports the binlog lag in the metrics', async () => {
    const d = running.find((r) => r !== running[0])!;
    const { body } = await d.metrics.render();
    expect(body).toMatch(/^app_db_listener_capture_slot_lag_bytes \d+/m);
    expect(body).toMatch(/^app_db_listener_capture_lag_seconds [\d.]+/m);
    expect(body).toMatch(/^app_db_listener_capture_changes_journaled_total [1-9]\d*/m);
    // The trigger daemon reads no log: no capture gauges.
    expect((await running[0]!.metrics.render()).body).not.toMatch(/^app_db_listener_capture_slot_lag_bytes /m);
  });

  it('without install, refuses to start and names what is missing', async () => {
    await db.exec(`CREATE TABLE noinstall (id INT PRIMARY KEY)`);
    const start = startDaemon(db.config({ tables: ['noinstall'], webhookUrl: rxLog.url, schema: 'adl_noinstall', capture: 'log' }), {
      logger: silent(),
      install: false,
    });
    await expect(start).rejects.toThrow(/watch .*noinstall.*log capture.*start log capture at binlog/);
  });

  it('on a server without a binary log, refuses to install with the exact fix', async () => {
    const shared = await createMySqlTestDatabase('logcap_nobinlog');
    try {
      await shared.exec('CREATE TABLE t (id INT PRIMARY KEY)');
      const start = startDaemon(mysqlConfig(shared.name, { tables: ['t'], capture: 'log' }), { logger: silent() });
      await expect(start).rejects.toThrow(/the binary log is off \(log_bin\)/);
      await expect(start).rejects.toMatchObject({ hint: expect.stringMatching(/log_bin = mysql-bin.*binlog_format = ROW/) });
    } finally {
      await shared.drop();
    }
  });

  it('switching an installation from trigger to log capture removes the triggers: no change is journaled twice', async () => {
    await db.exec(`CREATE TABLE switched (id INT PRIMARY KEY)`);
    const before = await daemon({ tables: ['switched'], webhookUrl: rxLog.url, schema: 'adl_switched' });
    await db.exec(`INSERT INTO switched VALUES (1)`);
    await rxLog.waitFor((evs) => evs.some((e) => e.body.includes('"table":"switched"')), 20_000);
    await stopDaemon(before);
    await daemon({ tables: ['switched'], webhookUrl: rxLog.url, schema: 'adl_switched', capture: 'log' });
    expect(await count(`SELECT count(*) AS n FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? AND EVENT_OBJECT_TABLE = 'switched'`, [db.name])).toBe(0);
    await db.exec(`INSERT INTO switched VALUES (2), (3)`);
    await rxLog.waitFor((evs) => evs.filter((e) => e.body.includes('"table":"switched"')).length >= 3, 20_000);
    const got = bodies(rxLog, 'switched').map((b) => JSON.parse(b) as Body);
    expect(got.map((b) => b.data!.id)).toEqual([1, 2, 3]);
    expect(new Set(got.map((b) => b.id)).size).toBe(3);
  }, 40_000);

  it('keeps the stored position advancing through other tables’ changes', async () => {
    const stored = async () =>
      (await db.query<{ f: string; p: string | number }>('SELECT binlog_file AS f, binlog_pos AS p FROM `adl_log_capture_positions`'))[0]!;
    const before = await stored();
    await db.exec(`CREATE TABLE unwatched (id INT)`);
    for (let i = 0; i < 20; i++) await db.exec(`INSERT INTO unwatched VALUES (?)`, [i]);
    const [status] = await db.query<{ File: string; Position: string | number }>('SHOW MASTER STATUS');
    await waitUntil(
      async () => {
        const now = await stored();
        return now.f === status!.File && Number(now.p) >= Number(status!.Position);
      },
      30_000,
      () => `stored position to reach ${status!.File}:${status!.Position} (was ${before.f}:${before.p})`,
    );
  }, 40_000);
  it('writes its journal flagged skip_replication: kept in the binary log, and not sent to its reader', async () => {
    const [start] = await db.query<{ File: string; Position: string | number }>('SHOW MASTER STATUS');
    for (let i = 0; i < 5; i++) await db.exec('INSERT INTO fidelity (id) VALUES (?)', [9_001 + i]);
    // Journaled, routed and delivered: the log daemon's queues are empty again.
    await waitUntil(
      async () => (await count('SELECT count(*) AS n FROM `adl_log_deliveries`')) === 0 && (await count('SELECT count(*) AS n FROM `adl_log_events`')) === 0,
      30_000,
      'the five changes delivered',
    );
    const from = { file: start!.File, position: Number(start!.Position) };
    const unfiltered = await tablesInLog(from, false);
    const filtered = await tablesInLog(from, true);
    // The journal's writes are in the binary log (a replica applies them)...
    expect([...unfiltered].filter((t) => t.startsWith('adl_log_'))).not.toEqual([]);
    // ...flagged, so a reader that asks the server to leave them out receives none of them.
    expect([...filtered].filter((t) => t.startsWith('adl_log_'))).toEqual([]);
    expect(filtered.has('fidelity')).toBe(true);
  }, 90_000);

  it('reports no lag once idle: heartbeats carry the position past its own unsent writes', async () => {
    const d = running.find((r) => r !== running[0])!;
    let last = '';
    await waitUntil(
      async () => {
        last = /^app_db_listener_capture_slot_lag_bytes .*$/m.exec((await d.metrics.render()).body)?.[0] ?? '';
        return last === 'app_db_listener_capture_slot_lag_bytes 0';
      },
      30_000,
      () => `the lag to reach 0 bytes (${last})`,
      100,
    );
  }, 40_000);
  it('moves its stored position into a new binlog file with nothing of its own to read (old files can go)', async () => {
    await db.exec('FLUSH BINARY LOGS');
    const [status] = await db.query<{ File: string }>('SHOW MASTER STATUS');
    let stored = '';
    await waitUntil(
      async () => {
        stored = String((await db.query<{ f: string }>('SELECT binlog_file AS f FROM `adl_log_capture_positions`'))[0]!.f);
        return stored === status!.File;
      },
      30_000,
      () => `the stored position to move to ${status!.File} (at ${stored})`,
      100,
    );
  }, 40_000);
});

describe('binlog capture under change', () => {
  it('ADD, RENAME and DROP COLUMN under continuous writes: no write fails, every change has the columns it had at commit', async () => {
    await db.exec(`CREATE TABLE evolving (id INT PRIMARY KEY, phase INT NOT NULL, n INT NOT NULL DEFAULT 0, a VARCHAR(10))`);
    await daemon({ tables: ['evolving'], webhookUrl: rxLog.url, schema: 'adl_evolving', capture: 'log' });
    // The columns each phase writes with; a writer reads the phase it writes under from the table's shape.
    const shapes = [['id', 'phase', 'n', 'a'], ['id', 'phase', 'n', 'a', 'b'], ['id', 'phase', 'n', 'a2', 'b'], ['id', 'phase', 'n', 'b']];
    let phase = 0;
    let stop = false;
    let written = 0;
    const errors: unknown[] = [];
    const writers = Array.from({ length: 4 }, async (_, w) => {
      const c: mysql.Connection = await db.connect();
      try {
        for (let i = 0; !stop; i++) {
          const id = w * 1_000_000 + i;
          // The phase is read inside the statement's transaction: the DDL waits for it, so the
          // row's shape is the one of its phase.
          await c.query('START TRANSACTION');
          const p = phase;
          await c.query(`INSERT INTO evolving (id, phase) VALUES (?, ?)`, [id, p]);
          // An UPDATE that changes no value is not in the binlog (docs/capture.md): this one does.
          await c.query(`UPDATE evolving SET n = n + 1 WHERE id = ?`, [id]);
          await c.query('COMMIT');
          written++;
        }
      } catch (err) {
        errors.push(err);
      } finally {
        await c.end();
      }
    });
    const atLeast = async (n: number) => waitUntil(() => written >= n, 20_000, `${n} writes`);
    await atLeast(200);
    for (const [next, ddl] of [
      [1, 'ALTER TABLE evolving ADD COLUMN b INT DEFAULT 7'],
      [2, 'ALTER TABLE evolving RENAME COLUMN a TO a2'],
      [3, 'ALTER TABLE evolving DROP COLUMN a2'],
    ] as const) {
      // The phase moves after the DDL committed: a row of phase p was written after the DDL that opens p.
      await db.exec(ddl);
      phase = next;
      await atLeast(written + 200);
    }
    stop = true;
    await Promise.all(writers);
    expect(errors).toEqual([]);
    await rxLog.waitFor((evs) => evs.filter((e) => e.body.includes('"table":"evolving"')).length >= written * 2, 60_000);
    const got = bodies(rxLog, 'evolving').map((b) => JSON.parse(b) as Body);
    expect(got.length).toBe(written * 2);
    for (const b of got) {
      const keys = Object.keys(b.data!);
      const p = b.data!.phase as number;
      // A row written under phase p has the shape of p; the DDL into p+1 may already have
      // committed when it was written (the phase variable moves after it).
      expect([shapes[p]!.join(','), shapes[p + 1]?.join(',')]).toContain(keys.join(','));
      if (b.operation === 'UPDATE') expect(Object.keys(b.old_data!)).toEqual(keys);
    }
    // Each change once: the journal has no duplicate of any write.
    expect(new Set(got.map((b) => `${b.operation}:${b.data!.id}`)).size).toBe(written * 2);
  }, 120_000);

  it('a second instance takes the log over when the reader stops, nothing lost', async () => {
    await db.exec(`CREATE TABLE handover (id INT PRIMARY KEY)`);
    const first = await daemon({ tables: ['handover'], webhookUrl: rxLog.url, schema: 'adl_handover', capture: 'log' });
    await daemon({ tables: ['handover'], webhookUrl: rxLog.url, schema: 'adl_handover', capture: 'log' });
    for (let i = 1; i <= 50; i++) await db.exec(`INSERT INTO handover VALUES (?)`, [i]);
    await rxLog.waitFor((evs) => evs.filter((e) => e.body.includes('"table":"handover"')).length >= 50, 20_000);
    await stopDaemon(first);
    for (let i = 51; i <= 100; i++) await db.exec(`INSERT INTO handover VALUES (?)`, [i]);
    await rxLog.waitFor((evs) => evs.filter((e) => e.body.includes('"table":"handover"')).length >= 100, 30_000);
    const ids = bodies(rxLog, 'handover').map((b) => (JSON.parse(b) as Body).data!.id as number);
    expect(new Set(ids).size).toBe(100);
    expect(ids.length).toBe(100);
  }, 60_000);

  it('a stop while the reader is still setting up its stream: the stop still ends', async () => {
    await db.exec(`CREATE TABLE early (id INT PRIMARY KEY)`);
    const o = { tables: ['early'], webhookUrl: rxLog.url, schema: 'adl_early', capture: 'log' as const };
    const first = await daemon(o);
    // The first instance reads the log (a change of the table delivered), then the second waits for it.
    await db.exec(`INSERT INTO early VALUES (1)`);
    await rxLog.waitFor((evs) => evs.some((e) => e.body.includes('"table":"early"')), 20_000);
    const second = await daemon(o);
    // The reader that takes over reads its stored position as it sets up: held here by a table lock.
    const locker = await db.connect();
    try {
      await locker.query('LOCK TABLES `adl_early_capture_positions` WRITE');
      await stopDaemon(first);
      await waitUntil(
        async () =>
          (await count(
            `SELECT count(*) AS n FROM information_schema.PROCESSLIST WHERE STATE LIKE 'Waiting for table metadata lock' AND INFO LIKE '%adl_early_capture_positions%'`,
          )) > 0,
        20_000,
        'the second instance to take the lease and wait for its stored position',
      );
      let stopped = false;
      const stopping = stopDaemon(second).then(() => (stopped = true));
      await locker.query('UNLOCK TABLES');
      await waitUntil(async () => stopped, 20_000, 'the second instance to stop');
      await stopping;
    } finally {
      // Ending the session releases its lock, whatever happened.
      await locker.end();
    }
  }, 60_000);

  it('a killed replication connection: the reader reconnects and resumes, nothing lost or doubled', async () => {
    await db.exec(`CREATE TABLE killed (id INT PRIMARY KEY)`);
    await daemon({ tables: ['killed'], webhookUrl: rxLog.url, schema: 'adl_killed', capture: 'log', retention: 3600 });
    for (let i = 1; i <= 100; i++) await db.exec(`INSERT INTO killed VALUES (?)`, [i]);
    const dumps = await db.query<{ id: number }>(`SELECT ID AS id FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'`);
    expect(dumps.length).toBeGreaterThan(0);
    for (const d of dumps) await db.exec(`KILL ${Number(d.id)}`);
    for (let i = 101; i <= 200; i++) await db.exec(`INSERT INTO killed VALUES (?)`, [i]);
    const journaled = () => count('SELECT count(*) AS n FROM `adl_killed_delivered_events` WHERE table_name = ?', ['killed']);
    await waitUntil(async () => (await journaled()) >= 200, 30_000, '200 changes delivered');
    expect(await count('SELECT count(DISTINCT new_row) AS n FROM `adl_killed_delivered_events`')).toBe(200);
    expect(await journaled()).toBe(200);
  }, 60_000);

  it('a database restart while changes are written: the reader resumes from the stored position, each change journaled once', async () => {
    await db.exec(`CREATE TABLE restarted (id INT PRIMARY KEY, v INT)`);
    await daemon({ tables: ['restarted'], webhookUrl: rxLog.url, schema: 'adl_restarted', capture: 'log', retention: 3600 });
    for (let i = 1; i <= 300; i++) await db.exec(`INSERT INTO restarted VALUES (?, 0)`, [i]);
    await server.restart();
    // The test's own pool meets the restart too: wait until it can write again.
    await waitUntil(async () => (await db.exec('DO 1').then(() => true, () => false)), 20_000, 'the server back');
    await db.exec(`UPDATE restarted SET v = 1`);
    for (let i = 301; i <= 400; i++) await db.exec(`INSERT INTO restarted VALUES (?, 1)`, [i]);
    const journaled = () => count('SELECT count(*) AS n FROM `adl_restarted_delivered_events` WHERE table_name = ?', ['restarted']);
    await waitUntil(async () => (await journaled()) >= 700, 60_000, '700 changes delivered');
    // Exactly once into the journal: no change of a row twice.
    const dup = await db.query<{ n: number | string }>(
      `SELECT count(*) AS n FROM (SELECT op, new_row FROM \`adl_restarted_delivered_events\` GROUP BY op, new_row HAVING count(*) > 1) d`,
    );
    expect(Number(dup[0]!.n)).toBe(0);
    expect(await journaled()).toBe(700);
  }, 120_000);
});
