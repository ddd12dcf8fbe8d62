/**
 * Hostile input through the built CLI, on PostgreSQL and MariaDB: names that need
 * quoting (mixed case, spaces, quotes, backticks, keywords, a semicolon), a
 * table without a primary key, an UPDATE that changes the primary key,
 * TRUNCATE, and a 10 MB row. Committed changes are the row counts the database
 * reported for each statement; every one of them must arrive intact.
 *
 * Documented here and in docs/reliability.md: TRUNCATE fires no row trigger, so
 * it produces no event; events of a table without a primary key carry the row
 * only and are not ordered; an UPDATE of the key is ordered with the new key.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { numberPlaceholders } from '../conformance/drivers.js';
import { configYaml, spawnCli, writeTempConfig, type DaemonProcess } from '../support/daemon.js';
import { eventIdOf, eventsRow, report } from '../support/fault.js';
import { configTableName, createMySqlTestDatabase, MYSQL_HOST, MYSQL_PASSWORD, MYSQL_PORT, MYSQL_USER, type MySqlTestDatabase } from '../support/mysql.js';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';
import { startReceiver, type ReceivedRequest, type Receiver } from '../support/receiver.js';
import { waitUntil } from '../support/wait.js';

type DbName = 'postgres' | 'mysql';

interface Db {
  readonly name: DbName;
  quote(name: string): string;
  /** Runs a statement (`?` placeholders); returns the rows it changed, as the database reports them. */
  exec(sql: string, params?: unknown[]): Promise<number>;
  /** Events of `table` still in the journal. */
  journalCount(table: string): Promise<number>;
  readonly longText: string;
  /** The schema events carry, and the config's name for a table in it. */
  readonly schema: string;
  configName(table: string): string;
}

/** The weird names: every quoting hazard at once. */
const WEIRD = {
  pgSchema: 'Odd "Schema"; x',
  table: 'select ; "Order" `Tab`',
  key: 'Key "Col"',
  columns: ['select', 'Mixed Case', 'semi;colon', 'back`tick', 'with "quotes"'],
} as const;

const T = { nokey: 'hi_nokey', pk: 'hi_pkchange', trunc: 'hi_truncate', big: 'hi_big' } as const;
const BIG_BYTES = 10 * 1024 * 1024;

let pgDb: TestDatabase;
let myDb: MySqlTestDatabase;
let rx: Receiver;
const dbs = {} as Record<DbName, Db>;
const daemons: DaemonProcess[] = [];

function pgAdapter(db: TestDatabase): Db {
  const quote = (n: string) => `"${n.replace(/"/g, '""')}"`;
  return {
    name: 'postgres',
    quote,
    exec: async (sql, params = []) => (await db.query(numberPlaceholders(sql), params)).rowCount ?? 0,
    journalCount: async (table) =>
      Number((await db.query<{ n: string }>('SELECT (SELECT count(*) FROM app_db_listener.events WHERE table_name = $1) + (SELECT count(*) FROM app_db_listener.deliveries WHERE table_name = $1) AS n', [table])).rows[0]!.n),
    longText: 'text',
    schema: 'public',
    configName: (table) => configTableName(table),
  };
}

function myAdapter(db: MySqlTestDatabase): Db {
  return {
    name: 'mysql',
    quote: (n) => `\`${n.replace(/`/g, '``')}\``,
    exec: (sql, params = []) => db.exec(sql, params),
    journalCount: async (table) =>
      Number((await db.query<{ n: number }>('SELECT (SELECT count(*) FROM `app_db_listener_events` WHERE table_name = ?) + (SELECT count(*) FROM `app_db_listener_deliveries` WHERE table_name = ?) AS n', [table, table]))[0]!.n),
    longText: 'LONGTEXT',
    schema: db.name,
    configName: (table) => configTableName(table),
  };
}

async function createTables(db: Db): Promise<string[]> {
  const q = db.quote;
  const weird =
    db.name === 'postgres' ? `${q(WEIRD.pgSchema)}.${q(WEIRD.table)}` : q(WEIRD.table);
  if (db.name === 'postgres') await db.exec(`CREATE SCHEMA ${q(WEIRD.pgSchema)}`);
  await db.exec(`CREATE TABLE ${weird} (${q(WEIRD.key)} int PRIMARY KEY, ${WEIRD.columns.map((c) => `${q(c)} ${db.longText}`).join(', ')})`);
  await db.exec(`CREATE TABLE ${q(T.nokey)} (v ${db.longText}, n int)`);
  await db.exec(`CREATE TABLE ${q(T.pk)} (id int PRIMARY KEY, v ${db.longText})`);
  await db.exec(`CREATE TABLE ${q(T.trunc)} (id int PRIMARY KEY)`);
  await db.exec(`CREATE TABLE ${q(T.big)} (id int PRIMARY KEY, doc ${db.longText})`);
  const weirdName = db.name === 'postgres' ? `${configTableName(WEIRD.pgSchema)}.${configTableName(WEIRD.table)}` : configTableName(WEIRD.table);
  return [weirdName, ...Object.values(T).map((t) => db.configName(t))];
}

function mysqlYaml(tables: string[]): string {
  return [
    'database:',
    '  type: "mysql"',
    `  host: ${JSON.stringify(MYSQL_HOST)}`,
    `  port: ${MYSQL_PORT}`,
    `  user: ${JSON.stringify(MYSQL_USER)}`,
    `  password: ${JSON.stringify(MYSQL_PASSWORD)}`,
    `  database: ${JSON.stringify(myDb.name)}`,
    '  tables:',
    ...tables.map((t) => `    - ${JSON.stringify(t)}`),
    'listener:',
    '  poll_interval: 0.2',
    'webhook:',
    `  url: ${JSON.stringify(rx.url)}`,
    '  timeout: 10',
    '  retry_delay: 0.05',
    '  retry_max_delay: 1',
    'http:',
    '  listen: "off"',
  ].join('\n') + '\n';
}

beforeAll(async () => {
  [pgDb, myDb, rx] = await Promise.all([createTestDatabase('hostile'), createMySqlTestDatabase('hostile'), startReceiver()]);
  dbs.postgres = pgAdapter(pgDb);
  dbs.mysql = myAdapter(myDb);
  const pgTables = await createTables(dbs.postgres);
  const myTables = await createTables(dbs.mysql);
  const configs = [
    writeTempConfig(configYaml({ dbUrl: pgDb.url, webhookUrl: rx.url, tables: pgTables, timeout: 10 })),
    writeTempConfig(mysqlYaml(myTables)),
  ];
  for (const path of configs) daemons.push(spawnCli(['run', '--config', path], path));
  await Promise.all(daemons.map((d) => d.ready()));
});
afterAll(async () => {
  for (const d of daemons) {
    if (d.child.exitCode === null && d.child.signalCode === null) d.child.kill('SIGTERM');
    await d.exited;
  }
  await rx?.close();
  await Promise.all([pgDb?.drop(), myDb?.drop()]);
});

/** The schema events of `table` carry. */
const schemaOf = (db: Db, table: string) => (db.name === 'postgres' && table === WEIRD.table ? WEIRD.pgSchema : db.schema);

/** 2xx-answered requests for `table` of database `db`, in arrival order. */
function delivered(db: Db, table: string): ReceivedRequest[] {
  return rx.events.filter((e) => e.response === 200 && bodyOf(e).table === table && bodyOf(e).schema === schemaOf(db, table));
}

const bodyOf = (e: ReceivedRequest) => JSON.parse(e.body) as { id: string; operation: string; schema: string; table: string; data: Record<string, unknown> | null; old_data: Record<string, unknown> | null };

async function allDelivered(db: Db, table: string, committed: number): Promise<ReceivedRequest[]> {
  await waitUntil(() => new Set(delivered(db, table).map((e) => eventIdOf(e.body))).size >= committed, 60_000, () => `${committed} events of ${table} (got ${delivered(db, table).length})`, 20);
  await waitUntil(async () => (await db.journalCount(table)) === 0, 15_000, `the journal of ${table} to be empty`);
  return delivered(db, table);
}

describe.each(['postgres', 'mysql'] as const)('hostile input: %s', (name) => {
  const db = () => dbs[name];

  it('names that need quoting: every column and value intact, the names exactly as created', async () => {
    const d = db();
    const q = d.quote;
    const target = d.name === 'postgres' ? `${q(WEIRD.pgSchema)}.${q(WEIRD.table)}` : q(WEIRD.table);
    const values = ["'; DROP TABLE x; --", 'Zoé 日本語 🦄', 'a;b', '`x`', '"y"'];
    const cols = [WEIRD.key, ...WEIRD.columns].map(q).join(', ');
    let committed = await d.exec(`INSERT INTO ${target} (${cols}) VALUES (?, ?, ?, ?, ?, ?)`, [1, ...values]);
    committed += await d.exec(`UPDATE ${target} SET ${q('select')} = ? WHERE ${q(WEIRD.key)} = ?`, ['updated', 1]);
    committed += await d.exec(`DELETE FROM ${target} WHERE ${q(WEIRD.key)} = ?`, [1]);
    expect(committed).toBe(3);
    const got = await allDelivered(d, WEIRD.table, committed);
    const bodies = got.map(bodyOf);
    expect(bodies.map((b) => b.operation)).toEqual(['INSERT', 'UPDATE', 'DELETE']);
    for (const b of bodies) {
      expect(b.table).toBe(WEIRD.table);
      expect(b.schema).toBe(schemaOf(d, WEIRD.table));
      expect(Object.keys(b.data!)).toEqual([WEIRD.key, ...WEIRD.columns]);
    }
    expect(Object.values(bodies[0]!.data!)).toEqual([1, ...values]);
    expect(bodies[1]!.data!.select).toBe('updated');
    expect(bodies[1]!.old_data!.select).toBe(values[0]);
    report(eventsRow('names that need quoting', d.name, committed, got));
  });

  it('a table without a primary key: every change delivered, the row is its only identity', async () => {
    const d = db();
    const q = d.quote;
    let committed = await d.exec(`INSERT INTO ${q(T.nokey)} (v, n) VALUES ('same', 1), ('same', 1)`);
    committed += await d.exec(`UPDATE ${q(T.nokey)} SET n = 2`);
    committed += await d.exec(`DELETE FROM ${q(T.nokey)}`);
    expect(committed).toBe(6);
    const got = await allDelivered(d, T.nokey, committed);
    const ops = got.map((e) => bodyOf(e).operation).sort();
    expect(ops).toEqual(['DELETE', 'DELETE', 'INSERT', 'INSERT', 'UPDATE', 'UPDATE']);
    // The two identical rows give identical bodies but different event ids: nothing folded.
    expect(new Set(got.map((e) => eventIdOf(e.body))).size).toBe(6);
    for (const e of got) expect(bodyOf(e).data).toEqual(expect.objectContaining({ v: 'same' }));
    report(eventsRow('table without a primary key', d.name, committed, got, 0, 'delivered without ordering'));
  });

  it('an UPDATE that changes the primary key: old and new key in the event, ordered with the new key', async () => {
    const d = db();
    const q = d.quote;
    let committed = await d.exec(`INSERT INTO ${q(T.pk)} (id, v) VALUES (1, 'a')`);
    committed += await d.exec(`UPDATE ${q(T.pk)} SET id = 2 WHERE id = 1`);
    committed += await d.exec(`UPDATE ${q(T.pk)} SET v = 'b' WHERE id = 2`);
    committed += await d.exec(`DELETE FROM ${q(T.pk)} WHERE id = 2`);
    expect(committed).toBe(4);
    const events = await allDelivered(d, T.pk, committed);
    const got = events.map(bodyOf);
    const keyChange = got.find((b) => b.operation === 'UPDATE' && b.old_data?.id === 1);
    expect(keyChange?.data).toEqual({ id: 2, v: 'a' });
    // The new key's events arrive in commit order.
    const newKey = got.filter((b) => b.data?.id === 2).map((b) => `${b.operation} ${String(b.data?.v)}`);
    expect(newKey).toEqual(['UPDATE a', 'UPDATE b', 'DELETE b']);
    report(eventsRow('UPDATE changing the primary key', d.name, committed, events, 0, 'ordered with the new key'));
  });

  it('TRUNCATE fires no row trigger: no event for it, the changes around it all delivered', async () => {
    const d = db();
    const q = d.quote;
    let committed = await d.exec(`INSERT INTO ${q(T.trunc)} (id) VALUES (1), (2), (3)`);
    await d.exec(`TRUNCATE TABLE ${q(T.trunc)}`);
    committed += await d.exec(`INSERT INTO ${q(T.trunc)} (id) VALUES (1)`);
    expect(committed).toBe(4);
    const got = await allDelivered(d, T.trunc, committed);
    expect(got.map((e) => bodyOf(e).operation)).toEqual(['INSERT', 'INSERT', 'INSERT', 'INSERT']);
    // The 3 rows TRUNCATE removed produce no DELETE (documented): nothing more arrives.
    expect(got).toHaveLength(4);
    report(eventsRow('TRUNCATE', d.name, committed, got, 0, 'TRUNCATE itself produces no event'));
  });

  it('a 10 MB row: delivered intact (INSERT and UPDATE)', async () => {
    const d = db();
    const q = d.quote;
    // Mostly ASCII, with multi-byte characters and JSON escapes spread through it.
    const chunk = 'abcdefghij"\\é日🦄\n\t'.padEnd(1024, 'x');
    const doc = chunk.repeat(Math.ceil(BIG_BYTES / Buffer.byteLength(chunk))).slice(0, BIG_BYTES);
    const hash = (text: string) => createHash('sha256').update(text).digest('hex');
    let committed = await d.exec(`INSERT INTO ${q(T.big)} (id, doc) VALUES (1, ?)`, [doc]);
    committed += await d.exec(`UPDATE ${q(T.big)} SET doc = ? WHERE id = 1`, [doc + 'updated']);
    expect(committed).toBe(2);
    const got = await allDelivered(d, T.big, committed);
    const [insert, update] = got.map(bodyOf);
    expect(insert!.operation).toBe('INSERT');
    expect(hash(String(insert!.data!.doc))).toBe(hash(doc));
    expect(update!.operation).toBe('UPDATE');
    expect(hash(String(update!.data!.doc))).toBe(hash(doc + 'updated'));
    expect(hash(String(update!.old_data!.doc))).toBe(hash(doc));
    report(eventsRow('a 10 MB row (INSERT, then UPDATE: 20 MB body)', d.name, committed, got));
  });
});
