/**
 * Secrets never leave the process, on PostgreSQL and MariaDB, with the built CLI:
 * a database password (PostgreSQL: a role with a password — the test server
 * trusts loopback, so it is sent but not needed; MariaDB: a user with a
 * password), a webhook signing secret, and `user:password@` in the webhook URL.
 *
 * The daemon runs at level debug, once with text logs and once with JSON logs,
 * through deliveries that fail: a 410 (a dead letter) and a 500 whose bodies echo
 * the webhook URL with its credentials and the Authorization header, and the
 * receiver down (connection refused). Then `status`, `doctor` and `dead-letters
 * list/show`, each as text and --json, and the daemon's /metrics. None of those
 * outputs holds a secret, the secret's base64 body, the URL's password, or the
 * Authorization value built from it.
 *
 * To show that the secrets were in play: the receiver got the URL's credentials
 * as Basic authentication and signatures that verify with the secret.
 */
import { randomBytes } from 'node:crypto';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { spawnCli, writeTempConfig, type DaemonProcess } from '../support/daemon.js';
import { eventIdOf } from '../support/fault.js';
import { MYSQL_HOST, MYSQL_PORT, createMySqlTestDatabase, type MySqlTestDatabase } from '../support/mysql.js';
import { PG_HOST, PG_PORT, PG_USER, createTestDatabase, type TestDatabase } from '../support/pg.js';
import { startReceiver, type Receiver, type ReceiverModeInput } from '../support/receiver.js';
import { waitUntil } from '../support/wait.js';

const suffix = randomBytes(6).toString('hex');
const DB_PASSWORD = `DbPw-${suffix}-db`;
const URL_USER = 'hookuser';
const URL_PASSWORD = `UrlPw-${suffix}-url`;
const SECRET_BODY = randomBytes(32).toString('base64');
const WEBHOOK_SECRET = `whsec_${SECRET_BODY}`;
const BASIC_AUTH = Buffer.from(`${URL_USER}:${URL_PASSWORD}`).toString('base64');

/** What must never be printed, by name (for the failure message). */
const SECRETS: Record<string, string> = {
  'database password': DB_PASSWORD,
  'webhook secret': WEBHOOK_SECRET,
  "webhook secret's base64 body": SECRET_BODY,
  "webhook URL's password": URL_PASSWORD,
  'Basic authorization from the URL': BASIC_AUTH,
};

/** The secrets `text` holds, by name. */
const leaks = (text: string) => Object.entries(SECRETS).filter(([, secret]) => text.includes(secret)).map(([name]) => name);

/** A plain name: the same unquoted in both dialects. */
const TABLE = 'secret_rows';

interface Database {
  readonly name: 'postgres' | 'mysql';
  /** The `database:` section, with the password. */
  readonly yaml: readonly string[];
  exec(sql: string): Promise<void>;
  close(): Promise<void>;
}

async function postgresWithPassword(): Promise<Database> {
  const db: TestDatabase = await createTestDatabase('secrets');
  const role = `${db.name}_role`;
  await db.query(`CREATE ROLE "${role}" LOGIN PASSWORD '${DB_PASSWORD}'`);
  await db.query(`ALTER DATABASE "${db.name}" OWNER TO "${role}"`);
  // The role owns the watched table, so it may put its triggers on it.
  const asRole = new pg.Client({ host: PG_HOST, port: PG_PORT, user: role, password: DB_PASSWORD, database: db.name });
  await asRole.connect();
  const url = `postgres://${role}:${DB_PASSWORD}@${PG_HOST}:${PG_PORT}/${db.name}`;
  return {
    name: 'postgres',
    yaml: ['type: "postgres"', `url: ${JSON.stringify(url)}`],
    exec: async (sql) => void (await asRole.query(sql)),
    async close() {
      await asRole.end().catch(() => undefined);
      await db.drop();
      const admin = new pg.Client({ host: PG_HOST, port: PG_PORT, user: PG_USER, database: 'postgres' });
      await admin.connect();
      await admin.query(`DROP ROLE IF EXISTS "${role}"`).finally(() => admin.end());
    },
  };
}

async function mysqlWithPassword(): Promise<Database> {
  const db: MySqlTestDatabase = await createMySqlTestDatabase('secrets');
  const user = `adl_secret_${suffix}`;
  await db.exec(`CREATE USER ?@'%' IDENTIFIED BY ?`, [user, DB_PASSWORD]);
  await db.exec(`GRANT ALL PRIVILEGES ON \`${db.name}\`.* TO ?@'%'`, [user]);
  const asUser = await mysql.createConnection({ host: MYSQL_HOST, port: MYSQL_PORT, user, password: DB_PASSWORD, database: db.name });
  return {
    name: 'mysql',
    yaml: [
      'type: "mysql"',
      `host: ${JSON.stringify(MYSQL_HOST)}`,
      `port: ${MYSQL_PORT}`,
      `user: ${JSON.stringify(user)}`,
      `password: ${JSON.stringify(DB_PASSWORD)}`,
      `database: ${JSON.stringify(db.name)}`,
    ],
    exec: async (sql) => void (await asUser.query(sql)),
    async close() {
      await asUser.end().catch(() => undefined);
      await db.exec(`DROP USER IF EXISTS ?@'%'`, [user]);
      await db.drop();
    },
  };
}

function configText(db: Database, rx: Receiver, format: 'text' | 'json'): string {
  const url = new URL(rx.url);
  url.username = URL_USER;
  url.password = URL_PASSWORD;
  return [
    'database:',
    ...db.yaml.map((l) => `  ${l}`),
    '  tables:',
    `    - ${JSON.stringify(TABLE)}`,
    'listener:',
    '  poll_interval: 0.2',
    'webhook:',
    `  url: ${JSON.stringify(url.href)}`,
    `  secret: ${JSON.stringify(WEBHOOK_SECRET)}`,
    '  timeout: 2',
    '  retry_count: 5',
    '  retry_delay: 0.05',
    '  retry_max_delay: 0.2',
    'logging:',
    '  level: "debug"',
    `  format: "${format}"`,
    'worker:',
    '  pool_size: 4',
    'http:',
    // A free port, read from the log: /metrics is checked too.
    '  listen: "127.0.0.1:0"',
  ].join('\n') + '\n';
}

/** A failing answer whose body repeats what a careless receiver might: the URL with its credentials, and the Authorization header. */
const echoing = (status: number): ReceiverModeInput => (req, res) => {
  res.writeHead(status, { 'content-type': 'text/plain' });
  res.end(`refused POST http://${URL_USER}:${URL_PASSWORD}@127.0.0.1${req.url} (authorization: ${String(req.headers.authorization)})`);
};

async function cli(args: string[]): Promise<string> {
  const p = spawnCli(args);
  const exit = await p.closed;
  return `exit ${exit.code}\n${p.output()}`;
}

/**
 * One daemon run: a 410 (dead letter) and a 500 with echoing bodies, then the
 * receiver down for a while; returns its whole output and /metrics.
 */
async function daemonRun(db: Database, rx: Receiver, format: 'text' | 'json', firstId: number) {
  const configPath = writeTempConfig(configText(db, rx, format));
  const d: DaemonProcess = spawnCli(['run', '--config', configPath], configPath);
  try {
    await d.ready();
    const address = await waitUntil(() => /listening on http:\/\/([\d.]+:\d+)/.exec(d.output())?.[1], 20_000, () => `the admin address in:\n${d.output()}`);
    const before = rx.events.length;
    const ok = () => rx.events.slice(before).filter((e) => e.response === 200).length;
    rx.queue(echoing(410), echoing(500));
    await db.exec(`INSERT INTO ${TABLE} (id) VALUES (${firstId})`);
    await waitUntil(() => rx.events.length > before, 20_000, 'the 410');
    await db.exec(`INSERT INTO ${TABLE} (id) VALUES (${firstId + 1})`);
    // The 500, then the retry answered 200.
    await waitUntil(() => ok() >= 1, 20_000, () => `a delivery after the 500 (${rx.events.length - before} requests)`);
    await rx.down();
    await db.exec(`INSERT INTO ${TABLE} (id) VALUES (${firstId + 2})`);
    await waitUntil(() => /ECONNREFUSED/.test(d.output()), 20_000, () => `a refused delivery in the log:\n${d.output().slice(-2000)}`);
    await rx.up();
    await waitUntil(() => ok() >= 2, 20_000, 'the delivery after the receiver came back');
    const metrics = await (await fetch(`http://${address}/metrics`)).text();
    d.child.kill('SIGTERM');
    await d.closed;
    return { configPath, output: d.output(), metrics };
  } finally {
    if (d.child.exitCode === null && d.child.signalCode === null) d.child.kill('SIGKILL');
  }
}

const databases: Partial<Record<'postgres' | 'mysql', Database>> = {};
beforeAll(async () => {
  [databases.postgres, databases.mysql] = await Promise.all([postgresWithPassword(), mysqlWithPassword()]);
});
afterAll(async () => {
  await Promise.all([databases.postgres?.close(), databases.mysql?.close()]);
});

describe.concurrent('no secret in logs, CLI output or /metrics (over 10 s each)', () => {
  it.for(['postgres', 'mysql'] as const)('%s: debug logs (text and json), status, doctor, dead-letters, /metrics', async (name, { expect }) => {
    const db = databases[name]!;
    await db.exec(`CREATE TABLE ${TABLE} (id INT PRIMARY KEY)`);
    const rx = await startReceiver();
    try {
      const outputs: Record<string, string> = {};
      const text = await daemonRun(db, rx, 'text', 1);
      outputs['log (text, debug)'] = text.output;
      outputs['/metrics after the text run'] = text.metrics;
      const json = await daemonRun(db, rx, 'json', 11);
      outputs['log (json, debug)'] = json.output;
      outputs['/metrics after the json run'] = json.metrics;

      const config = ['--config', text.configPath];
      const deadId = eventIdOf(rx.events.find((e) => e.response === 'handler')!.body);
      for (const args of [
        ['status'],
        ['status', '--json'],
        ['doctor'],
        ['doctor', '--json'],
        ['dead-letters', 'list'],
        ['dead-letters', 'list', '--json'],
        ['dead-letters', 'show', deadId],
        ['dead-letters', 'show', deadId, '--json'],
      ]) {
        outputs[args.join(' ')] = await cli([...args, ...config]);
      }

      // The secrets were in play: Basic authentication from the URL, signatures from the secret.
      // (doctor's HEAD is no delivery: it carries neither.)
      const delivered = rx.events.filter((e) => e.response === 200 && e.method === 'POST');
      expect(delivered.length).toBeGreaterThanOrEqual(4);
      for (const e of delivered) {
        expect(e.headers.authorization).toBe(`Basic ${BASIC_AUTH}`);
        expect(() => new Webhook(WEBHOOK_SECRET).verify(e.body, e.headers as Record<string, string>)).not.toThrow();
      }
      // And the outputs are the real ones: the failures were logged, the dead letter is listed.
      expect(outputs['log (text, debug)']).toMatch(/410/);
      expect(outputs['log (json, debug)']).toMatch(/"level"/);
      expect(outputs['dead-letters show ' + deadId + ' --json']).toContain(deadId);
      // doctor connected with the password and reached the receiver; status read the journal.
      expect(outputs['doctor --json']).toMatch(/^exit 0\n[\s\S]*"ok": true/);
      expect(outputs['status --json']).toMatch(/"deadLetters": 2/);
      expect(outputs['/metrics after the json run']).toMatch(/^# HELP /m);

      const found = Object.entries(outputs)
        .map(([where, out]) => ({ where, leaked: leaks(out) }))
        .filter((x) => x.leaked.length > 0);
      expect(found, Object.entries(outputs).filter(([, o]) => leaks(o).length > 0).map(([w, o]) => `--- ${w}\n${o.slice(0, 3000)}`).join('\n')).toEqual([]);
    } finally {
      await rx.close();
    }
  });
});
