/**
 * Log capture (listener.capture: log) on a private PostgreSQL with wal_level =
 * logical: what the reader journals must be what the trigger journals, value for
 * value. Both capture the same table at once here (two installations, two schemas),
 * and every delivered body's data and old_data are compared as text.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { startDaemon, type RunningDaemon } from '../../src/app.js';
import { startTestDaemon, testConfig, type ConfigOptions } from '../support/daemon.js';
import { createLogicalTestDatabase, startLogicalPostgres } from '../support/logical-postgres.js';
import type { TestDatabase } from '../support/pg.js';
import type { PrivatePostgres } from '../support/private-servers.js';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { waitUntil } from '../support/wait.js';

let server: PrivatePostgres;
let db: TestDatabase;
let rxLog: Receiver;
let rxTrigger: Receiver;
const running: RunningDaemon[] = [];

beforeAll(async () => {
  server = await startLogicalPostgres();
  db = await createLogicalTestDatabase(server, 'logcap');
  rxLog = await startReceiver();
  rxTrigger = await startReceiver();
}, 120_000);
afterAll(async () => {
  await Promise.all(running.splice(0).map((d) => d.stop(2_000)));
  await rxLog?.close();
  await rxTrigger?.close();
  await db?.drop();
  await server?.close();
});

async function daemon(o: Partial<ConfigOptions> & { tables: string[]; webhookUrl: string }) {
  const d = await startTestDaemon({ dbUrl: db.url, ...o });
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
  data: unknown;
  old_data: unknown;
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

describe('log capture', () => {
  it('journals every type exactly as the trigger does, with old_data, in commit order', async () => {
    await db.query(`CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')`);
    await db.query(`CREATE TYPE pair AS (x int, y text)`);
    await db.query(`CREATE DOMAIN posint AS int CHECK (VALUE > 0)`);
    await db.query(`CREATE TABLE fidelity (
      id bigint PRIMARY KEY, i2 smallint, i4 integer, i8 bigint, n numeric, n2 numeric(12,2), r real, d double precision,
      b boolean, t text, vc varchar(10), ch char(3), by bytea, j json, jb jsonb, u uuid,
      ts timestamp, tstz timestamptz, dt date, tm time, iv interval, ia int[], ta text[], inet_ inet, m mood,
      big text, nothing text, p pair, pi posint, nan double precision, ts_arr timestamptz[])`);
    await daemon({ tables: ['fidelity'], webhookUrl: rxTrigger.url, schema: 'adl_trigger' });
    await daemon({ tables: ['fidelity'], webhookUrl: rxLog.url, schema: 'adl_log', capture: 'log' });
    await db.query(`INSERT INTO fidelity VALUES (
      1, 32767, 2147483647, 9007199254740993, 12.50, 12.5, 1.5, 0.1, true, 'h\u00e9llo "w" \\ \u{1F600}', 'short', 'ab',
      '\\x00ff10', '{"a": [1, 2.50], "b" : null}', '{"z": 1, "a": 12.50}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
      '2026-12-06 10:11:12.123456', '2026-12-06 10:11:12.123456+02', '2026-12-06', '23:59:59.5', '1 day 02:03:04',
      '{1,NULL,3}', '{"a b",c}', '10.0.0.1/8', 'happy', repeat('x', 300000), NULL, ROW(1, 'a "b"'), 5, 'NaN',
      ARRAY['2026-01-01 00:00:00+00'::timestamptz, NULL])`);
    // The large value is TOASTed: an UPDATE that does not touch it must still carry it.
    await db.query(`UPDATE fidelity SET i4 = i4 - 1, n = 0.001 WHERE id = 1`);
    await db.query(`UPDATE fidelity SET big = 'small now' WHERE id = 1`);
    await db.query(`BEGIN; INSERT INTO fidelity (id, t) VALUES (2, 'two'); UPDATE fidelity SET t = 'two!' WHERE id = 2; DELETE FROM fidelity WHERE id = 1; COMMIT`);
    await rxTrigger.waitFor((evs) => evs.filter((e) => e.body.includes('"table":"fidelity"')).length >= 6, 20_000);
    await rxLog.waitFor((evs) => evs.filter((e) => e.body.includes('"table":"fidelity"')).length >= 6, 20_000);
    const fromTrigger = bodies(rxTrigger, 'fidelity');
    const fromLog = bodies(rxLog, 'fidelity');
    expect(fromLog.map((b) => (JSON.parse(b) as Body).operation)).toEqual(['INSERT', 'UPDATE', 'UPDATE', 'INSERT', 'UPDATE', 'DELETE']);
    // Column by column, as text.
    for (let i = 0; i < fromTrigger.length; i++) expect(rowsText(fromLog[i]!)).toBe(rowsText(fromTrigger[i]!));
    const update = JSON.parse(fromLog[1]!) as { data: Record<string, unknown>; old_data: Record<string, unknown> };
    expect((update.data.big as string).length).toBe(300000);
    expect((update.old_data.big as string).length).toBe(300000);
    expect(fromLog[0]).toContain('"i8":9007199254740993');
    expect(fromLog[0]).toContain('"n":12.50');
  }, 60_000);

  it('computes the row hash and the txid exactly as the trigger does (single, composite and no key)', async () => {
    await db.query(`CREATE TABLE keys1 (id text PRIMARY KEY, v int)`);
    await db.query(`CREATE TABLE keys2 (a int, b text, v int, PRIMARY KEY (b, a))`);
    await db.query(`CREATE TABLE keys0 (v int)`);
    const tables = ['keys1', 'keys2', 'keys0'];
    await daemon({ tables, webhookUrl: rxTrigger.url, schema: 'adl_keys_trigger', retention: 3600 });
    await daemon({ tables, webhookUrl: rxLog.url, schema: 'adl_keys_log', capture: 'log', retention: 3600 });
    // One transaction: every event has the same txid, in both modes.
    await db.query(`BEGIN; INSERT INTO keys1 VALUES ('it''s', 1), ('x', 2); INSERT INTO keys2 VALUES (1, 'o''k', 1), (2, '', 2); INSERT INTO keys0 VALUES (1); COMMIT`);
    await db.query(`UPDATE keys2 SET v = v + 1`);
    await db.query(`DELETE FROM keys1 WHERE id = 'x'`);
    const delivered = (schema: string) =>
      db.query<{ table_name: string; op: string; row_hash: string | null; txid: string }>(
        `SELECT table_name, op, row_hash::text AS row_hash, txid::text AS txid FROM ${schema}.delivered_events ORDER BY id`,
      );
    await waitUntil(async () => (await delivered('adl_keys_trigger')).rowCount === 8 && (await delivered('adl_keys_log')).rowCount === 8, 20_000, '8 events delivered in both modes');
    const fromTrigger = (await delivered('adl_keys_trigger')).rows;
    const fromLog = (await delivered('adl_keys_log')).rows;
    expect(fromLog).toEqual(fromTrigger);
    expect(fromLog.find((r) => r.table_name === 'keys0')!.row_hash).toBeNull();
    expect(fromLog.find((r) => r.table_name === 'keys2')!.row_hash).not.toBeNull();
  }, 40_000);

  it('records the position with the events and leaves no trigger on the table', async () => {
    const pos = await db.query<{ n: string }>(`SELECT count(*) AS n FROM adl_log.capture_positions`);
    expect(Number(pos.rows[0]!.n)).toBe(1);
    const triggers = await db.query<{ tgname: string }>(`SELECT tgname FROM pg_trigger WHERE tgrelid = 'fidelity'::regclass AND NOT tgisinternal`);
    expect(triggers.rows.map((r) => r.tgname)).toEqual(['adl_trigger_capture']);
    const ident = await db.query<{ relreplident: string }>(`SELECT relreplident FROM pg_class WHERE oid = 'fidelity'::regclass`);
    expect(ident.rows[0]!.relreplident).toBe('f');
  });

  it('reports a TRUNCATE as an event with no rows, to destinations that take DELETE', async () => {
    await db.query(`CREATE TABLE trunc (id int PRIMARY KEY)`);
    await daemon({ tables: ['trunc'], webhookUrl: rxLog.url, schema: 'adl_trunc', capture: 'log' });
    await db.query(`INSERT INTO trunc VALUES (1), (2)`);
    await db.query(`TRUNCATE trunc`);
    await rxLog.waitFor((evs) => evs.filter((e) => e.body.includes('"table":"trunc"')).length >= 3, 20_000);
    const got = bodies(rxLog, 'trunc').map((b) => JSON.parse(b) as Body);
    expect(got.map((b) => b.operation)).toEqual(['INSERT', 'INSERT', 'TRUNCATE']);
    expect(got[2]).toMatchObject({ data: null, old_data: null, schema: 'public', table: 'trunc' });
  }, 40_000);

  it('does not deliver a TRUNCATE to a destination without DELETE', async () => {
    await db.query(`CREATE TABLE trunc_ins (id int PRIMARY KEY)`);
    await daemon({ tables: ['trunc_ins'], webhookUrl: rxLog.url, schema: 'adl_trunc_ins', capture: 'log', modes: 'insert' });
    await db.query(`INSERT INTO trunc_ins VALUES (1)`);
    await db.query(`TRUNCATE trunc_ins`);
    await db.query(`INSERT INTO trunc_ins VALUES (2)`);
    await rxLog.waitFor((evs) => evs.filter((e) => e.body.includes('"table":"trunc_ins"')).length >= 2, 20_000);
    // The inbox is empty once the TRUNCATE was routed (to nobody).
    await waitUntil(async () => Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM adl_trunc_ins.events`)).rows[0]!.n) === 0, 20_000, 'empty inbox');
    expect(bodies(rxLog, 'trunc_ins').map((b) => (JSON.parse(b) as Body).operation)).toEqual(['INSERT', 'INSERT']);
  }, 40_000);

  it('reports the slot lag in the metrics', async () => {
    const d = running.find((r) => r.metrics !== undefined && r !== running[0])!;
    const { body } = await d.metrics.render();
    expect(body).toMatch(/^app_db_listener_capture_slot_lag_bytes \d+/m);
    expect(body).toMatch(/^app_db_listener_capture_lag_seconds [\d.]+/m);
    expect(body).toMatch(/^app_db_listener_capture_changes_journaled_total [1-9]\d*/m);
    // The trigger daemon has no slot: no capture gauges.
    expect((await running[0]!.metrics.render()).body).not.toMatch(/^app_db_listener_capture_slot_lag_bytes /m);
  });

  it('without install, refuses to start and names what is missing', async () => {
    await db.query(`CREATE TABLE noinstall (id int PRIMARY KEY)`);
    const config = testConfig({ dbUrl: db.url, webhookUrl: rxLog.url, tables: ['noinstall'], schema: 'adl_noinstall', capture: 'log' });
    const start = startDaemon(config, { logger: pino({ level: 'silent' }), install: false });
    await expect(start).rejects.toThrow(/replica identity full on public\.noinstall.*publication adl_noinstall.*replication slot adl_noinstall_[0-9a-f]{8}/);
  });

  it('reports a partitioned table under its own name, with a type of another schema', async () => {
    await db.query(`CREATE SCHEMA other`);
    await db.query(`CREATE TYPE other.level AS ENUM ('low', 'high')`);
    await db.query(`CREATE TABLE parted (id int, region text, lvl other.level, PRIMARY KEY (id, region)) PARTITION BY LIST (region)`);
    await db.query(`CREATE TABLE parted_eu PARTITION OF parted FOR VALUES IN ('eu')`);
    await db.query(`CREATE TABLE parted_us PARTITION OF parted FOR VALUES IN ('us')`);
    await daemon({ tables: ['parted'], webhookUrl: rxLog.url, schema: 'adl_parted', capture: 'log' });
    await db.query(`INSERT INTO parted VALUES (1, 'eu', 'low'), (2, 'us', 'high')`);
    await db.query(`UPDATE parted SET lvl = 'high' WHERE id = 1`);
    await rxLog.waitFor((evs) => evs.filter((e) => e.body.includes('"table":"parted"')).length >= 3, 20_000);
    const got = bodies(rxLog, 'parted').map((b) => JSON.parse(b) as Body);
    expect(got.map((b) => [b.operation, b.data])).toEqual([
      ['INSERT', { id: 1, region: 'eu', lvl: 'low' }],
      ['INSERT', { id: 2, region: 'us', lvl: 'high' }],
      ['UPDATE', { id: 1, region: 'eu', lvl: 'high' }],
    ]);
    expect(got[2]!.old_data).toEqual({ id: 1, region: 'eu', lvl: 'low' });
  }, 40_000);

  it('switching an installation from trigger to log capture removes the trigger: no change is journaled twice', async () => {
    await db.query(`CREATE TABLE switched (id int PRIMARY KEY)`);
    const before = await daemon({ tables: ['switched'], webhookUrl: rxLog.url, schema: 'adl_switched' });
    await db.query(`INSERT INTO switched VALUES (1)`);
    await rxLog.waitFor((evs) => evs.some((e) => e.body.includes('"table":"switched"')), 20_000);
    await before.stop(2_000);
    running.splice(running.indexOf(before), 1);
    await daemon({ tables: ['switched'], webhookUrl: rxLog.url, schema: 'adl_switched', capture: 'log' });
    const triggers = await db.query(`SELECT 1 FROM pg_trigger WHERE tgrelid = 'switched'::regclass AND NOT tgisinternal`);
    expect(triggers.rowCount).toBe(0);
    await db.query(`INSERT INTO switched VALUES (2), (3)`);
    await rxLog.waitFor((evs) => evs.filter((e) => e.body.includes('"table":"switched"')).length >= 3, 20_000);
    const ids = bodies(rxLog, 'switched').map((b) => (JSON.parse(b) as Body & { data: { id: number } }).data.id);
    expect(ids).toEqual([1, 2, 3]);
    // Same installation: event ids keep counting in the same journal.
    expect(new Set(bodies(rxLog, 'switched').map((b) => (JSON.parse(b) as Body).id)).size).toBe(3);
  }, 40_000);

  it('without REPLICA IDENTITY FULL: UPDATE without old_data, DELETE with the key only, as documented', async () => {
    await db.query(`CREATE TABLE ident (id int PRIMARY KEY, v text)`);
    await daemon({ tables: ['ident'], webhookUrl: rxLog.url, schema: 'adl_ident', capture: 'log' });
    await db.query(`ALTER TABLE ident REPLICA IDENTITY DEFAULT`);
    await db.query(`INSERT INTO ident VALUES (1, 'a')`);
    await db.query(`UPDATE ident SET v = 'b' WHERE id = 1`);
    await db.query(`DELETE FROM ident WHERE id = 1`);
    await rxLog.waitFor((evs) => evs.filter((e) => e.body.includes('"table":"ident"')).length >= 3, 20_000);
    const got = bodies(rxLog, 'ident').map((b) => JSON.parse(b) as Body);
    expect(got.map((b) => [b.operation, b.data, b.old_data])).toEqual([
      ['INSERT', { id: 1, v: 'a' }, null],
      ['UPDATE', { id: 1, v: 'b' }, null],
      ['DELETE', { id: 1, v: null }, null],
    ]);
  }, 40_000);

  it('a stop while the reader is still setting up its stream: the stop still ends', async () => {
    await db.query(`CREATE TABLE early (id int PRIMARY KEY)`);
    const o = { webhookUrl: rxLog.url, tables: ['early'], schema: 'adl_early', capture: 'log' as const };
    const first = await daemon(o);
    // The first instance reads the slot (a change of the table delivered), then the second waits for it.
    await db.query(`INSERT INTO early VALUES (1)`);
    await rxLog.waitFor((evs) => evs.some((e) => e.body.includes('"table":"early"')), 20_000);
    const second = await daemon(o);
    const readers = async () =>
      Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM pg_replication_slots WHERE starts_with(slot_name, 'adl_early_') AND active`)).rows[0]!.n);
    // The reader that takes over reads its stored position as it sets up: held here by a table lock.
    const locker = await db.pool.connect();
    try {
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE adl_early.capture_positions IN ACCESS EXCLUSIVE MODE');
      await stopDaemon(first);
      await waitUntil(
        async () =>
          Number(
            (
              await db.query<{ n: string }>(
                `SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%adl_early%capture_positions%' AND pid <> pg_backend_pid()`,
              )
            ).rows[0]!.n,
          ) > 0,
        20_000,
        'the second instance to take the lease and wait for its stored position',
      );
      let stopped = false;
      const stopping = stopDaemon(second).then(() => (stopped = true));
      await locker.query('COMMIT');
      await waitUntil(async () => stopped, 20_000, 'the second instance to stop');
      await stopping;
    } finally {
      // Its session ends, and with it the transaction and the lock, whatever happened.
      locker.release(true);
    }
    await waitUntil(async () => (await readers()) === 0, 20_000, 'no reader left');
  }, 60_000);

  it('keeps an idle slot advancing', async () => {
    const confirmed = async () =>
      (await db.query<{ lsn: string }>(`SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE database = current_database()`)).rows[0]!.lsn;
    const before = await confirmed();
    // Traffic in a table nobody watches moves the server's position; the slot follows.
    await db.query(`CREATE TABLE unwatched (id int)`);
    await db.query(`INSERT INTO unwatched SELECT generate_series(1, 1000)`);
    const target = (await db.query<{ lsn: string }>(`SELECT pg_current_wal_lsn()::text AS lsn`)).rows[0]!.lsn;
    await waitUntil(
      async () => (await db.query<{ ok: boolean }>(`SELECT $1::pg_lsn >= $2::pg_lsn AS ok`, [await confirmed(), target])).rows[0]!.ok,
      30_000,
      () => `slot to pass ${target} (was ${before})`,
    );
  }, 40_000);
});
