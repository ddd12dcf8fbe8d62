/** `doctor` from the built CLI, against the real PostgreSQL and MariaDB and a real receiver. */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadMigrations } from '../../src/schema/migrations.js';
import { configYaml, spawnCli, writeTempConfig } from '../support/daemon.js';
import { MYSQL_HOST, MYSQL_PASSWORD, MYSQL_PORT, MYSQL_USER, createMySqlTestDatabase, type MySqlTestDatabase } from '../support/mysql.js';
import { PG_HOST, PG_PORT, createTestDatabase, type TestDatabase } from '../support/pg.js';
import { startReceiver, type Receiver } from '../support/receiver.js';

interface Report {
  ok: boolean;
  problems: number;
  warnings: number;
  checks: Array<{ name: string; status: string; detail: string; fix?: string; sql?: string }>;
}

// Secrets that must never be printed.
const DB_PASSWORD = 'Db-Pa55-7f3kq';
const URL_PASSWORD = 'Url-Pa55-9x2mw';
const WEBHOOK_SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';

let rx: Receiver;
let refusedUrl: string;

async function cli(args: string[]) {
  const p = spawnCli(args);
  const exit = await p.closed;
  return { ...exit, stdout: p.stdout(), stderr: p.stderr() };
}

async function doctor(configPath: string) {
  const json = await cli(['doctor', '--json', '--config', configPath]);
  const human = await cli(['doctor', '--config', configPath]);
  expect(human.code).toBe(json.code);
  const report = JSON.parse(json.stdout) as Report;
  const byName = Object.fromEntries(report.checks.map((c) => [c.name, c]));
  return { code: json.code, report, byName, human: human.stdout + human.stderr, raw: json.stdout + json.stderr };
}

const statuses = (r: Report) => Object.fromEntries(r.checks.map((c) => [c.name, c.status]));


beforeAll(async () => {
  rx = await startReceiver();
  // Port 9 (discard): below the ephemeral range, so no other test's server can take it
  // between two doctor runs, as a port freed a moment before could be.
  refusedUrl = 'http://127.0.0.1:9/hook';
});
afterAll(async () => {
  await rx?.close();
});

describe('doctor with PostgreSQL', () => {
  let db: TestDatabase;
  let configPath: string;
  const role = `adl_doctor_${randomBytes(4).toString('hex')}`;

  beforeAll(async () => {
    db = await createTestDatabase('cli_doctor');
    await db.query(`CREATE TABLE accounts (id bigint PRIMARY KEY, balance bigint)`);
    configPath = writeTempConfig(configYaml({ dbUrl: db.url, webhookUrl: rx.url, tables: ['accounts'], schema: 'adl_doc' }));
  });
  afterAll(async () => {
    await db?.drop();
    const { default: pg } = await import('pg');
    const admin = new pg.Client({ host: PG_HOST, port: PG_PORT, user: 'postgres', database: 'postgres' });
    await admin.connect();
    await admin.query(`DROP ROLE IF EXISTS ${role}`).finally(() => admin.end());
  });

  it('before install: migrations and trigger are problems, each with the install command', async () => {
    const d = await doctor(configPath);
    expect(d.code).toBe(1);
    expect(statuses(d.report)).toEqual({ config: 'ok', database: 'ok', privileges: 'ok', migrations: 'problem', triggers: 'problem', webhook: 'ok' });
    expect(d.byName.migrations!.fix).toContain(`app-db-listener install --config ${configPath}`);
    expect(d.byName.triggers!.detail).toContain('capture trigger missing on public.accounts');
    expect(d.byName.triggers!.sql).toContain('CREATE TRIGGER');
    expect(d.human).toMatch(/^problem\s+migrations\s+nothing is installed/m);
    expect(d.human).toMatch(/fix: app-db-listener install --config/);
    expect(d.human).toContain('2 problems, 0 warnings.');
  });

  it('after install everything is ok (exit 0), and the webhook check sent no event', async () => {
    expect((await cli(['install', '--config', configPath])).code).toBe(0);
    rx.events.length = 0;
    const d = await doctor(configPath);
    expect(d.report).toMatchObject({ ok: true, problems: 0, warnings: 0 });
    expect(d.code).toBe(0);
    expect(d.report.checks.map((c) => c.name)).toEqual(['config', 'database', 'privileges', 'migrations', 'triggers', 'webhook']);
    expect(d.report.checks.every((c) => c.status === 'ok')).toBe(true);
    expect(d.human).toContain('No problems found.');
    expect(rx.events.length).toBeGreaterThan(0);
    expect(rx.events.every((e) => e.method === 'HEAD' && e.body === '')).toBe(true);
  });

  it('a column added after install needs nothing: the trigger sends whole rows', async () => {
    await db.query(`ALTER TABLE accounts ADD COLUMN note text`);
    const d = await doctor(configPath);
    expect(d.code).toBe(0);
    expect(d.byName.triggers!.status).toBe('ok');
  });

  it('a trigger dropped or disabled by hand is a problem, with its fix', async () => {
    await db.query(`DROP TRIGGER adl_doc_capture ON accounts`);
    const dropped = await doctor(configPath);
    expect(dropped.code).toBe(1);
    expect(dropped.byName.triggers).toMatchObject({ status: 'problem', detail: 'capture trigger missing on public.accounts' });
    expect(dropped.byName.triggers!.fix).toContain('app-db-listener install --config');
    expect((await cli(['install', '--config', configPath])).code).toBe(0);

    await db.query(`ALTER TABLE accounts DISABLE TRIGGER adl_doc_capture`);
    const disabled = await doctor(configPath);
    expect(disabled.code).toBe(1);
    expect(disabled.byName.triggers!.fix).toBe('ALTER TABLE "public"."accounts" ENABLE TRIGGER "adl_doc_capture";');
    await db.query(disabled.byName.triggers!.fix!);
    expect((await doctor(configPath)).code).toBe(0);
  });

  it('a webhook that refuses connections is a problem', async () => {
    const refused = writeTempConfig(configYaml({ dbUrl: db.url, webhookUrl: refusedUrl, tables: ['accounts'], schema: 'adl_doc' }));
    const d = await doctor(refused);
    expect(d.code).toBe(1);
    expect(statuses(d.report)).toMatchObject({ database: 'ok', triggers: 'ok', webhook: 'problem' });
    expect(d.byName.webhook!.detail).toContain('ECONNREFUSED');
    expect(d.byName.webhook!.fix).toContain('check webhook.url');
  });

  it('a role without privileges gets the GRANTs it needs, and no secret is printed', async () => {
    await db.query(`CREATE ROLE ${role} LOGIN PASSWORD '${DB_PASSWORD}'`);
    const text = [
      'database:',
      '  type: "postgres"',
      `  host: "${PG_HOST}"`,
      `  port: ${PG_PORT}`,
      `  user: "${role}"`,
      `  password: "${DB_PASSWORD}"`,
      `  database: "${db.name}"`,
      '  table: "accounts"',
      'listener:',
      '  schema: "adl_doc"',
      'webhook:',
      `  url: "http://hook-user:${URL_PASSWORD}@127.0.0.1:${rx.port}/webhook"`,
      `  secret: "${WEBHOOK_SECRET}"`,
      'http:',
      '  listen: "off"',
      '',
    ].join('\n');
    const d = await doctor(writeTempConfig(text));
    expect(d.code).toBe(1);
    expect(d.byName.privileges!.status).toBe('problem');
    const fix = d.byName.privileges!.fix!;
    expect(fix).toContain(`GRANT USAGE ON SCHEMA "adl_doc" TO "${role}";`);
    expect(fix).toContain(`GRANT TRIGGER ON "public"."accounts" TO "${role}";`);
    expect(fix).toContain(`ALTER SCHEMA "adl_doc" OWNER TO "${role}";`);
    expect(d.byName.webhook!.status).toBe('ok');
    for (const out of [d.human, d.raw]) {
      expect(out).not.toContain(DB_PASSWORD);
      expect(out).not.toContain(URL_PASSWORD);
      expect(out).not.toContain(WEBHOOK_SECRET);
      expect(out).not.toContain(WEBHOOK_SECRET.slice('whsec_'.length));
    }
  });

  it('an unusable config exits 2 with the problem', async () => {
    const bad = writeTempConfig('database:\n  type: "postgres"\n  port: "abc"\nhttp:\n  listen: "off"\n');
    const d = await doctor(bad);
    expect(d.code).toBe(2);
    expect(d.report.checks).toEqual([expect.objectContaining({ name: 'config', status: 'problem' })]);
    expect(d.byName.config!.detail).toContain('database.port');
    expect(d.human).toMatch(/^problem\s+config\s+/m);
  });
});

describe('doctor with MariaDB', () => {
  let db: MySqlTestDatabase;
  let configPath: string;
  const user = `adl_doc_${randomBytes(4).toString('hex')}`;

  const configText = (o: { user?: string; password?: string; webhookUrl?: string; secret?: string } = {}) =>
    [
      'database:',
      '  type: "mysql"',
      `  host: ${JSON.stringify(MYSQL_HOST)}`,
      `  port: ${MYSQL_PORT}`,
      `  user: ${JSON.stringify(o.user ?? MYSQL_USER)}`,
      `  password: ${JSON.stringify(o.password ?? MYSQL_PASSWORD)}`,
      `  database: ${JSON.stringify(db.name)}`,
      '  table: "accounts"',
      'listener:',
      '  schema: "adl_doc"',
      'webhook:',
      `  url: ${JSON.stringify(o.webhookUrl ?? rx.url)}`,
      ...(o.secret ? [`  secret: ${JSON.stringify(o.secret)}`] : []),
      'http:',
      '  listen: "off"',
      '',
    ].join('\n');

  beforeAll(async () => {
    db = await createMySqlTestDatabase('cli_doctor');
    await db.exec(`CREATE TABLE accounts (id BIGINT PRIMARY KEY, balance BIGINT)`);
    configPath = writeTempConfig(configText());
  });
  afterAll(async () => {
    await db?.exec(`DROP USER IF EXISTS '${user}'@'%'`).catch(() => undefined);
    await db?.drop();
  });

  it('before install: migrations and triggers are problems, each with the install command', async () => {
    const d = await doctor(configPath);
    expect(d.code).toBe(1);
    expect(statuses(d.report)).toEqual({ config: 'ok', database: 'ok', privileges: 'ok', migrations: 'problem', triggers: 'problem', webhook: 'ok' });
    expect(d.byName.database!.detail).toMatch(/^MariaDB 10\./);
    expect(d.byName.migrations!.fix).toContain(`app-db-listener install --config ${configPath}`);
    expect(d.byName.triggers!.detail).toContain(`capture triggers missing on ${db.name}.accounts (INSERT, UPDATE, DELETE)`);
  });

  it('after install everything is ok (exit 0)', async () => {
    expect((await cli(['install', '--config', configPath])).code).toBe(0);
    const d = await doctor(configPath);
    expect(d.report.checks.every((c) => c.status === 'ok')).toBe(true);
    expect(d.code).toBe(0);
    expect(d.byName.migrations!.detail).toContain(`at version ${loadMigrations('mysql').length}, current`);
  });

  it('a column added after install makes the triggers stale', async () => {
    await db.exec(`ALTER TABLE accounts ADD COLUMN note TEXT`);
    const d = await doctor(configPath);
    expect(d.code).toBe(1);
    expect(d.byName.triggers!.status).toBe('problem');
    expect(d.byName.triggers!.detail).toContain(`capture triggers on ${db.name}.accounts are out of date`);
    expect(d.byName.triggers!.sql).toContain('`note`');
    expect((await cli(['install', '--config', configPath])).code).toBe(0);
    expect((await doctor(configPath)).code).toBe(0);
  });

  it('a trigger dropped by hand is a problem', async () => {
    await db.exec('DROP TRIGGER `adl_doc_upd_accounts`');
    const d = await doctor(configPath);
    expect(d.code).toBe(1);
    expect(d.byName.triggers!.detail).toBe(`capture triggers missing on ${db.name}.accounts (UPDATE)`);
    expect((await cli(['install', '--config', configPath])).code).toBe(0);
  });

  it('a webhook that refuses connections is a problem', async () => {
    const d = await doctor(writeTempConfig(configText({ webhookUrl: refusedUrl })));
    expect(d.code).toBe(1);
    expect(statuses(d.report)).toMatchObject({ database: 'ok', triggers: 'ok', webhook: 'problem' });
  });

  it('a user without privileges gets the GRANTs it needs, and no secret is printed', async () => {
    await db.exec(`CREATE USER '${user}'@'%' IDENTIFIED BY '${DB_PASSWORD}'`);
    await db.exec(`GRANT SELECT ON \`${db.name}\`.* TO '${user}'@'%'`);
    const d = await doctor(
      writeTempConfig(
        configText({
          user,
          password: DB_PASSWORD,
          webhookUrl: `http://hook-user:${URL_PASSWORD}@127.0.0.1:${rx.port}/webhook`,
          secret: WEBHOOK_SECRET,
        }),
      ),
    );
    expect(d.code).toBe(1);
    expect(d.byName.database!.status).toBe('ok');
    expect(d.byName.privileges!.status).toBe('problem');
    const fix = d.byName.privileges!.fix!;
    expect(fix).toContain(`GRANT CREATE, LOCK TABLES ON \`${db.name}\`.* TO '${user}'@'%';`);
    expect(fix).toContain(`GRANT TRIGGER ON \`${db.name}\`.\`accounts\` TO '${user}'@'%';`);
    expect(fix).toContain(`GRANT SELECT, INSERT, UPDATE, DELETE ON \`${db.name}\`.* TO '${user}'@'%';`);
    for (const out of [d.human, d.raw]) {
      expect(out).not.toContain(DB_PASSWORD);
      expect(out).not.toContain(URL_PASSWORD);
      expect(out).not.toContain(WEBHOOK_SECRET.slice('whsec_'.length));
    }
  });
});
