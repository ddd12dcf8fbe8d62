/** Installing into MariaDB/MySQL: migrations, triggers, concurrency, drift, errors and hostile names. */
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  applyInstall,
  applyUninstall,
  planInstall,
  planUninstall,
  staleTables,
  translateInstallError,
  triggerColumnsCurrent,
} from '../../src/capture/mysql/install.js';
import { MySqlJournal } from '../../src/capture/mysql/journal.js';
import { makeQueries } from '../../src/capture/mysql/queries.js';
import { closeTestQueues, testQueue } from '../support/queue.js';
import { checkServerVersion, parseServerVersion } from '../../src/capture/mysql/server.js';
import { createMySqlPool, MAX_PREPARED_STATEMENTS, mysqlPoolOptions } from '../../src/capture/mysql/connection.js';
import { quoteIdent, quoteLiteral, splitStatements } from '../../src/capture/mysql/sql.js';
import { triggerName } from '../../src/capture/mysql/triggers.js';
import { AppError } from '../../src/util/errors.js';
import { loadMigrations } from '../../src/schema/migrations.js';
import {
  configTableName,
  createMySqlTestDatabase,
  mysqlConfig,
  MYSQL_HOST,
  MYSQL_PORT,
  withConnection,
  type MySqlTestDatabase,
} from '../support/mysql.js';

let db: MySqlTestDatabase;

beforeAll(async () => {
  db = await createMySqlTestDatabase('install');
});
afterAll(async () => {
  await closeTestQueues();
  await db?.drop();
});

/** The destination "default"'s queue of the journal with `prefix` (claims route first). */
function journal(prefix: string, tables: Array<{ schema: string; name: string }>, instanceId = 'test:1:a') {
  const j = new MySqlJournal(db.pool, makeQueries(prefix), {
    instanceId,
    leaseMs: 60_000,
    keepDelivered: false,
    eventIdPrefix: 'evt_t_',
    tables,
    lockScope: `${db.name}:${prefix}`,
  });
  return testQueue(j, tables);
}

async function triggersOn(table: string): Promise<string[]> {
  const r = await db.query<{ name: string }>(
    `SELECT TRIGGER_NAME AS name FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? AND EVENT_OBJECT_TABLE = ? ORDER BY 1`,
    [db.name, table],
  );
  return r.map((t) => t.name);
}

describe('MySQL install', () => {
  it('installs once even when several installers race, and plans nothing afterwards', async () => {
    await db.exec(`CREATE TABLE accounts (id INT PRIMARY KEY, name VARCHAR(50))`);
    const config = db.config({ tables: ['accounts'], schema: 'adl_race' });
    const results = await Promise.all(Array.from({ length: 4 }, () => withConnection(db.pool, (c) => applyInstall(c, config))));
    // Exactly one installer did the work; the others waited on GET_LOCK and found it done.
    expect(results.filter((p) => p.steps.length > 0)).toHaveLength(1);
    const again = await withConnection(db.pool, (c) => planInstall(c, config));
    expect(again.steps).toEqual([]);
    expect(await db.query(`SELECT version FROM adl_race_migrations ORDER BY 1`)).toEqual(loadMigrations('mysql').map((m) => ({ version: m.version })));
    expect(await triggersOn('accounts')).toEqual(['adl_race_del_accounts', 'adl_race_ins_accounts', 'adl_race_upd_accounts']);
    const meta = await db.query<{ value: string }>('SELECT `value` FROM adl_race_meta');
    expect(meta).toHaveLength(1);
    expect(meta[0]!.value).toMatch(/^[0-9a-f]{12}$/);
  });

  it('plans SQL without changing anything (dry run), and every step can run twice', async () => {
    await db.exec(`CREATE TABLE dry (id INT PRIMARY KEY, v TEXT)`);
    const config = db.config({ tables: ['dry'], schema: 'adl_dry' });
    const plan = await withConnection(db.pool, (c) => planInstall(c, config));
    expect(plan.steps.map((s) => s.description)).toEqual([
      'create table adl_dry_migrations',
      ...loadMigrations('mysql').map((m) => `migration ${String(m.version).padStart(6, '0')}_${m.name}`),
      `capture triggers on ${db.name}.dry (INSERT, UPDATE, DELETE)`,
    ]);
    const sql = plan.steps.map((s) => s.sql).join('\n');
    expect(sql).toContain(`CREATE TABLE IF NOT EXISTS \`${db.name}\`.\`adl_dry_events\``);
    expect(sql).toContain(`CREATE TRIGGER \`${db.name}\`.\`adl_dry_ins_dry\` AFTER INSERT ON \`${db.name}\`.\`dry\``);
    expect(sql).not.toContain('{{');
    // Nothing was created by planning.
    expect(await db.query(`SHOW TABLES LIKE 'adl\\_dry\\_%'`)).toEqual([]);
    // MySQL DDL is not transactional: a half-done install is finished by running the steps again.
    await withConnection(db.pool, async (c) => {
      for (let round = 0; round < 2; round++) {
        for (const step of plan.steps) for (const statement of splitStatements(step.sql)) await c.query(statement);
      }
      await c.query(`SET SESSION sql_mode = DEFAULT`);
    });
    const meta = await db.query('SELECT `key` FROM adl_dry_meta');
    expect(meta).toHaveLength(1);
    expect(await triggersOn('dry')).toHaveLength(3);
    // The installed state is current: nothing left to do.
    expect((await withConnection(db.pool, (c) => planInstall(c, config))).steps).toEqual([]);
  });

  it('quotes hostile table and column names, and names triggers within 64 characters', async () => {
    const table = "Order `Items`; DROP 'x' \"y\" select";
    const cols = ['Key Col', 'select', 'we`ird', "it's", 'back\\slash', '"dq"'];
    await db.exec(
      `CREATE TABLE ${quoteIdent(table)} (${cols.map((c, i) => `${quoteIdent(c)} ${i === 0 ? 'INT' : 'VARCHAR(20)'}`).join(', ')}, PRIMARY KEY (${quoteIdent(cols[0]!)}))`,
    );
    const long = 'l'.repeat(64);
    await db.exec(`CREATE TABLE ${quoteIdent(long)} (id INT PRIMARY KEY)`);
    const config = db.config({ tables: [configTableName(table), long], schema: 'adl_weird' });
    const plan = await withConnection(db.pool, (c) => applyInstall(c, config));
    expect(plan.tables.map((t) => t.name)).toEqual([table, long]);

    const longTriggers = await triggersOn(long);
    expect(longTriggers).toHaveLength(3);
    for (const name of longTriggers) expect([...name].length).toBeLessThanOrEqual(64);
    expect(triggerName('adl_weird', 'INSERT', long)).toBe(triggerName('adl_weird', 'INSERT', long));
    expect(longTriggers).toContain(triggerName('adl_weird', 'INSERT', long));

    await db.exec(`INSERT INTO ${quoteIdent(table)} VALUES (7, 'a', 'b', 'c''d', 'e\\\\f', 'g"h')`);
    const [event] = await journal('adl_weird', [{ schema: db.name, name: table }]).claim(10);
    expect(event).toMatchObject({ table, schema: db.name, op: 'INSERT' });
    expect(JSON.parse(event!.newRow!)).toEqual({ 'Key Col': 7, select: 'a', 'we`ird': 'b', "it's": "c'd", 'back\\slash': 'e\\f', '"dq"': 'g"h' });
  });

  it('fails clearly for a missing table, warns for a table without primary key', async () => {
    const missing = db.config({ tables: ['nope'], schema: 'adl_missing' });
    await expect(withConnection(db.pool, (c) => planInstall(c, missing))).rejects.toMatchObject({
      code: 'TABLE_NOT_FOUND',
      message: expect.stringContaining(`"${db.name}.nope" does not exist`),
    });
    await db.exec(`CREATE TABLE nokey (v INT)`);
    const plan = await withConnection(db.pool, (c) => applyInstall(c, db.config({ tables: ['nokey'], schema: 'adl_nokey' })));
    expect(plan.warnings.join('\n')).toMatch(/has no primary key: its events carry no row identity/);
    await db.exec(`INSERT INTO nokey VALUES (1), (1)`);
    const rows = await db.query<{ row_hash: string | null }>(`SELECT row_hash FROM adl_nokey_events`);
    expect(rows).toEqual([{ row_hash: null }, { row_hash: null }]);
    // Without a row identity both are claimable at once.
    expect(await journal('adl_nokey', [{ schema: db.name, name: 'nokey' }]).claim(10)).toHaveLength(2);
  });

  it('re-creates the triggers when the captured operations change', async () => {
    await db.exec(`CREATE TABLE modes_t (id INT PRIMARY KEY)`);
    await withConnection(db.pool, (c) => applyInstall(c, db.config({ tables: ['modes_t'], schema: 'adl_modes', modes: 'insert' })));
    expect(await triggersOn('modes_t')).toEqual(['adl_modes_ins_modes_t']);
    const config = db.config({ tables: ['modes_t'], schema: 'adl_modes', modes: 'insert,delete' });
    expect(await withConnection(db.pool, (c) => triggerColumnsCurrent(c, config))).toBe(false);
    const plan = await withConnection(db.pool, (c) => applyInstall(c, config));
    expect(plan.steps.map((s) => s.description)).toEqual([`capture triggers on ${db.name}.modes_t (INSERT, DELETE)`]);
    expect(await triggersOn('modes_t')).toEqual(['adl_modes_del_modes_t', 'adl_modes_ins_modes_t']);
  });

  it('detects schema drift and regenerates the triggers, so a new column appears in events', async () => {
    await db.exec(`CREATE TABLE drift (id INT PRIMARY KEY, a INT)`);
    const config = db.config({ tables: ['drift'], schema: 'adl_drift' });
    await withConnection(db.pool, (c) => applyInstall(c, config));
    expect(await withConnection(db.pool, (c) => triggerColumnsCurrent(c, config))).toBe(true);

    await db.exec(`ALTER TABLE drift ADD COLUMN b VARCHAR(10)`);
    await db.exec(`INSERT INTO drift VALUES (1, 1, 'before')`);
    expect(await withConnection(db.pool, (c) => staleTables(c, config))).toEqual([`${db.name}.drift`]);
    const plan = await withConnection(db.pool, (c) => applyInstall(c, config));
    expect(plan.steps).toHaveLength(1);
    expect(await withConnection(db.pool, (c) => triggerColumnsCurrent(c, config))).toBe(true);
    await db.exec(`INSERT INTO drift VALUES (2, 2, 'after')`);
    const rows = await db.query<{ new_row: string }>(`SELECT new_row FROM adl_drift_events ORDER BY id`);
    expect(rows.map((r) => JSON.parse(r.new_row))).toEqual([
      { id: 1, a: 1 }, // written in the drift window: the old triggers did not know b
      { id: 2, a: 2, b: 'after' },
    ]);

    // A dropped column makes the old trigger fail the application's writes (MySQL resolves
    // NEW.col when the trigger runs) until the triggers are regenerated.
    await db.exec(`ALTER TABLE drift DROP COLUMN a`);
    await expect(db.exec(`INSERT INTO drift VALUES (3, 'x')`)).rejects.toMatchObject({ errno: 1054 });
    expect(await withConnection(db.pool, (c) => triggerColumnsCurrent(c, config))).toBe(false);
    await withConnection(db.pool, (c) => applyInstall(c, config));
    await db.exec(`INSERT INTO drift VALUES (3, 'x')`);
    const last = await db.query<{ new_row: string }>(`SELECT new_row FROM adl_drift_events ORDER BY id DESC LIMIT 1`);
    expect(JSON.parse(last[0]!.new_row)).toEqual({ id: 3, b: 'x' });
  });

  it('gives up after lock_wait_timeout while a transaction holds a watched table, and installs once it ends', async () => {
    await db.exec(`CREATE TABLE busy (id INT PRIMARY KEY)`);
    const config = db.config({ tables: ['busy'], schema: 'adl_busy' });
    // The journal first, so only the trigger step has to wait.
    await withConnection(db.pool, (c) => applyInstall(c, db.config({ tables: ['accounts'], schema: 'adl_busy' })));
    const holder = await db.connect();
    try {
      await holder.query('START TRANSACTION');
      await holder.query('INSERT INTO busy VALUES (0)'); // a metadata lock until commit: LOCK TABLES must wait
      const started = Date.now();
      await expect(withConnection(db.pool, (c) => applyInstall(c, config))).rejects.toMatchObject({ code: 'INSTALL_LOCK_TIMEOUT' });
      expect(Date.now() - started).toBeLessThan(10_000);
    } finally {
      await holder.query('ROLLBACK');
      await holder.end();
    }
    await db.exec(`INSERT INTO busy VALUES (1)`);
    await withConnection(db.pool, (c) => applyInstall(c, config));
    expect(await triggersOn('busy')).toHaveLength(3);
  });

  it('says which privilege is missing when the user may not create triggers', async () => {
    await db.exec(`CREATE TABLE guarded (id INT PRIMARY KEY)`);
    const user = `adl_${Math.random().toString(36).slice(2, 8)}`;
    const password = 'pw-' + Math.random().toString(36).slice(2);
    await db.exec(`CREATE USER ?@'%' IDENTIFIED BY ?`, [user, password]);
    await db.exec(`CREATE USER ?@'127.0.0.1' IDENTIFIED BY ?`, [user, password]);
    try {
      for (const host of ['%', '127.0.0.1']) {
        await db.exec(
          `GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, INDEX, DROP, LOCK TABLES ON ${quoteIdent(db.name)}.* TO ?@?`,
          [user, host],
        );
      }
      const config = db.config({ tables: ['guarded'], schema: 'adl_guarded', user, password });
      const conn = await mysql.createConnection({ host: MYSQL_HOST, port: MYSQL_PORT, user, password, database: db.name, charset: 'utf8mb4' });
      try {
        const err = await applyInstall(conn, config).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(AppError);
        expect(err).toMatchObject({ code: 'INSTALL_PRIVILEGES', hint: expect.stringContaining('GRANT TRIGGER ON') });
      } finally {
        await conn.end();
      }
    } finally {
      await db.exec(`DROP USER IF EXISTS ?@'%'`, [user]);
      await db.exec(`DROP USER IF EXISTS ?@'127.0.0.1'`, [user]);
    }
  });

  it('explains the binary-logging error (1419) and a server too old for SKIP LOCKED', () => {
    const config = db.config({ tables: ['accounts'] });
    const binlog = translateInstallError(
      Object.assign(new Error('You do not have the SUPER privilege and binary logging is enabled'), { errno: 1419, code: 'ER_BINLOG_CREATE_ROUTINE_NEED_SUPER' }),
      config,
    );
    expect(binlog).toMatchObject({ code: 'INSTALL_BINLOG', hint: expect.stringContaining('log_bin_trust_function_creators') });

    expect(() => checkServerVersion(parseServerVersion('10.5.22-MariaDB'))).toThrow(/MariaDB 10\.5\.22-MariaDB is too old.*SKIP LOCKED/);
    expect(() => checkServerVersion(parseServerVersion('5.7.44-log'))).toThrow(/MySQL 5\.7\.44-log is too old/);
    expect(() => checkServerVersion(parseServerVersion('8.0.0-dmr'))).toThrow(AppError);
    for (const ok of ['10.6.0-MariaDB', '10.11.19-MariaDB-0+deb12u1', '11.4.2-MariaDB', '8.0.36', '8.4.0', '9.1.0']) {
      expect(() => checkServerVersion(parseServerVersion(ok))).not.toThrow();
    }
  });

  it('uninstalls the triggers (and the tables when asked); the application keeps writing', async () => {
    await db.exec(`CREATE TABLE gone (id INT PRIMARY KEY)`);
    await db.exec(`CREATE TABLE gone2 (id INT PRIMARY KEY)`);
    await withConnection(db.pool, (c) => applyInstall(c, db.config({ tables: ['gone', 'gone2'], schema: 'adl_gone' })));
    // Only "gone" is still configured: the triggers of gone2 are ours too and are removed.
    const config = db.config({ tables: ['gone'], schema: 'adl_gone' });
    const planned = await withConnection(db.pool, (c) => planUninstall(c, config, false));
    expect(planned.map((s) => s.description)).toEqual([
      `remove capture triggers from ${db.name}.gone`,
      `remove capture triggers from ${db.name}.gone2`,
    ]);
    const steps = await withConnection(db.pool, (c) => applyUninstall(c, config, true));
    expect(steps.map((s) => s.description)).toEqual([
      `remove capture triggers from ${db.name}.gone`,
      `remove capture triggers from ${db.name}.gone2`,
      'drop tables adl_gone_* (journal, dead letters)',
    ]);
    expect(await triggersOn('gone')).toEqual([]);
    expect(await triggersOn('gone2')).toEqual([]);
    expect(await db.query(`SHOW TABLES LIKE 'adl\\_gone\\_%'`)).toEqual([]);
    await db.exec(`INSERT INTO gone VALUES (1)`); // the application's writes still work
    // Triggers of other installations are left alone.
    expect((await triggersOn('accounts')).filter((n) => n.startsWith('adl_race_'))).toHaveLength(3);
  });

  it('watches a table in another database of the same server, with the journal in database.database', async () => {
    const other = `${db.name}_other`;
    await db.exec(`CREATE DATABASE ${quoteIdent(other)}`);
    try {
      await db.exec(`CREATE TABLE ${quoteIdent(other)}.elsewhere (id INT PRIMARY KEY)`);
      const config = db.config({ tables: [configTableName('elsewhere', other)], schema: 'adl_else' });
      const plan = await withConnection(db.pool, (c) => applyInstall(c, config));
      expect(plan.tables.map((t) => [t.schema, t.name])).toEqual([[other, 'elsewhere']]);
      await db.exec(`INSERT INTO ${quoteIdent(other)}.elsewhere VALUES (5)`);
      const [e] = await journal('adl_else', [{ schema: other, name: 'elsewhere' }]).claim(10);
      expect(e).toMatchObject({ schema: other, table: 'elsewhere', newRow: '{"id": 5}' });
      const steps = await withConnection(db.pool, (c) => applyUninstall(c, config, false));
      expect(steps.map((s) => s.description)).toEqual([`remove capture triggers from ${other}.elsewhere`]);
    } finally {
      await db.exec(`DROP DATABASE ${quoteIdent(other)}`);
    }
  });
});

describe('MySQL connection and SQL helpers', () => {
  it("keeps a connection's prepared statements in a small cache: mysql2 allocates its whole capacity per connection", async () => {
    const pool = createMySqlPool(mysqlConfig('test', { tables: ['t'] }).database, { connectionLimit: 1 });
    try {
      const c = await pool.getConnection();
      try {
        for (let i = 0; i < 3; i++) expect((await c.execute<mysql.RowDataPacket[]>('SELECT ? + 1 AS n', [i]))[0][0]!.n).toBe(i + 1);
        // The cache the connection holds (mysql2 internals: its size is what the option sets).
        const cache = (c as unknown as { connection: { _statements: { max: number; size: number } } }).connection._statements;
        expect(cache.max).toBe(MAX_PREPARED_STATEMENTS);
        expect(cache.size).toBe(1);
      } finally {
        c.release();
      }
    } finally {
      await pool.end();
    }
  });

  it('maps the config to pool options, sslmode included', () => {
    const base = mysqlConfig('shop', { tables: ['t'], password: 'p w"d' });
    const options = mysqlPoolOptions(base.database);
    expect(options).toMatchObject({
      host: MYSQL_HOST,
      port: MYSQL_PORT,
      password: 'p w"d',
      database: 'shop',
      charset: 'utf8mb4',
      timezone: 'Z',
      supportBigNumbers: true,
      bigNumberStrings: true,
      dateStrings: true,
      enableKeepAlive: true,
    });
    expect(options.ssl).toBeUndefined();
    const withMode = (sslmode: string, sslrootcert?: string) =>
      mysqlPoolOptions({ ...base.database, host: 'db.internal', sslmode: sslmode as 'disable', ...(sslrootcert ? { sslrootcert } : {}) }).ssl;
    expect(withMode('prefer')).toBeUndefined();
    expect(withMode('require')).toEqual({ rejectUnauthorized: false });
    expect(withMode('verify-ca')).toEqual({ rejectUnauthorized: true, verifyIdentity: false });
    expect(withMode('verify-full')).toEqual({ rejectUnauthorized: true, verifyIdentity: true });
    expect(() => withMode('verify-full', '/nonexistent/ca.pem')).toThrow(/cannot read database.sslrootcert/);
  });

  it('quotes identifiers and literals, and splits scripts only where statements end', () => {
    expect(quoteIdent('a`b')).toBe('`a``b`');
    expect(() => quoteIdent('a\u0000b')).toThrow(/NUL/);
    expect(() => quoteIdent('')).toThrow(/empty/);
    expect(quoteLiteral("it's a \\ test")).toBe("'it''s a \\\\ test'");
    expect(
      splitStatements(`-- a comment; with a semicolon
CREATE TABLE \`x;y\` (a TEXT COMMENT 'one; two', b INT); # another; comment
/* block; */ INSERT INTO t VALUES ('it''s; fine', "dq; \\" x");
`),
    ).toEqual([
      "CREATE TABLE `x;y` (a TEXT COMMENT 'one; two', b INT)",
      `INSERT INTO t VALUES ('it''s; fine', "dq; \\" x")`,
    ]);
  });
});
