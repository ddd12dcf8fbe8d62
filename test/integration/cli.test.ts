/**
 * The built CLI (dist/cli/main.js) as a child process, end to end: the
 * original's command line, exit codes and messages for config and runtime
 * errors, log lines and files, SIGHUP, secrets kept out of every output, and a
 * second signal during a graceful stop. Real PostgreSQL, real receiver.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, renameSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { configYaml, spawnCli, writeTempConfig, type ConfigOptions, type DaemonProcess } from '../support/daemon.js';
import { createTestDatabase, PG_HOST, PG_PORT, PG_USER, type TestDatabase } from '../support/pg.js';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { waitUntil } from '../support/wait.js';

let db: TestDatabase;
let rx: Receiver;
const children: DaemonProcess[] = [];

beforeAll(async () => {
  db = await createTestDatabase('cli');
  rx = await startReceiver();
});
afterEach(async () => {
  // A test that failed half-way must not leave a daemon behind.
  await Promise.all(
    children.splice(0).map(async (d) => {
      if (d.child.exitCode === null && d.child.signalCode === null) d.child.kill('SIGKILL');
      await d.exited;
    }),
  );
  rx.events.length = 0;
  rx.setMode('ok');
});
afterAll(async () => {
  await rx?.close();
  await db?.drop();
});

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const TEXT_LINE = /^\[\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\] (DEBUG|INFO|WARN|ERROR): /;
/** A stack frame line, as Node prints them. */
const STACK_FRAME = /^\s+at /m;

function cli(args: string[], options: Parameters<typeof spawnCli>[2] = {}): DaemonProcess {
  const d = spawnCli(args, '', options);
  children.push(d);
  return d;
}

function opts(o: Partial<ConfigOptions> & { tables: string[] }): ConfigOptions {
  return { dbUrl: db.url, webhookUrl: rx.url, ...o };
}

function tempDir(): string {
  return mkdtempSync(path.join(tmpdir(), 'adl-cli-'));
}

const readText = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8') : '');
const lines = (text: string) => text.split('\n').filter((l) => l !== '');
const forTable = (table: string) => rx.events.filter((e) => e.body.includes(`"table":"${table}"`));

/** Waits until the receiver got a 200 for an event of `table` whose body contains `fragment`. */
async function delivered(table: string, fragment: string, timeoutMs = 10_000): Promise<void> {
  await rx.waitFor((evs) => evs.some((e) => e.response === 200 && e.body.includes(`"table":"${table}"`) && e.body.includes(fragment)), timeoutMs);
}

/** Waits until `file` contains `text` (a daemon logging to a file prints nothing on stdout). */
async function fileContains(file: string, text: string, d?: DaemonProcess, timeoutMs = 10_000): Promise<void> {
  await waitUntil(
    () => {
      if (d && d.child.exitCode !== null) throw new Error(`daemon exited with ${d.child.exitCode}: ${d.output()}`);
      return readText(file).includes(text);
    },
    timeoutMs,
    () => `${JSON.stringify(text)} in ${file}; it holds:\n${readText(file)}\noutput:\n${d?.output() ?? ''}`,
  );
}

/** Events of `table` still in the journal. */
async function pending(table: string): Promise<number> {
  const r = await db.query<{ n: number }>(
    `SELECT (SELECT count(*)::int FROM app_db_listener.events WHERE table_name = $1) + (SELECT count(*)::int FROM app_db_listener.deliveries WHERE table_name = $1) AS n`,
    [table],
  );
  return r.rows[0]!.n;
}

/**
 * Waits until every event of `table` is out of the journal: the outcome is
 * committed. Stopping only then also keeps the tests clear of the completer's
 * drain timer (see the skipped test under 'signals').
 */
async function settled(table: string): Promise<void> {
  await waitUntil(async () => (await pending(table)) === 0, 10_000, `no event of ${table} left in the journal`);
}

/** Sends SIGTERM and returns the exit, with every byte of output read. */
async function stop(d: DaemonProcess) {
  d.child.kill('SIGTERM');
  return d.closed;
}

/** The exit of a process expected to end by itself within `timeoutMs`. */
async function exitOf(d: DaemonProcess, timeoutMs = 15_000) {
  await waitUntil(() => d.child.exitCode !== null || d.child.signalCode !== null, timeoutMs, () => `the CLI to exit; output:\n${d.output()}`);
  return d.closed;
}

async function schemaExists(name: string): Promise<boolean> {
  return (await db.query(`SELECT 1 FROM pg_namespace WHERE nspname = $1`, [name])).rowCount === 1;
}

async function userTriggers(table: string): Promise<number> {
  const r = await db.query<{ n: string }>(`SELECT count(*) AS n FROM pg_trigger WHERE tgrelid = $1::regclass AND NOT tgisinternal`, [table]);
  return Number(r.rows[0]!.n);
}

/** A TCP port on 127.0.0.1 where nothing listens. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** The connection keys written out (no url), for configs that must carry a password. */
function databaseKeys(database = db.name): string[] {
  return [`  host: ${PG_HOST}`, `  port: ${PG_PORT}`, `  user: ${PG_USER}`, `  database: ${JSON.stringify(database)}`];
}

/** Daemons started here never take the default admin port. */
const HTTP_OFF = ['http:', '  listen: "off"'];

describe('command line of the original', () => {
  const variants: { name: string; table: string; args: (config: string) => string[]; cwd?: boolean }[] = [
    { name: '-config PATH', table: 'flag_space', args: (c) => ['-config', c] },
    { name: '-config=PATH', table: 'flag_equals', args: (c) => [`-config=${c}`] },
    { name: '--config PATH without a command (run is the default)', table: 'flag_nocmd', args: (c) => ['--config', c] },
    { name: 'no arguments: ./config.yaml', table: 'flag_default', args: () => [], cwd: true },
  ];
  it.each(variants)('$name runs the daemon: a change is delivered, SIGTERM exits 0', async ({ table, args, cwd }) => {
    await db.query(`CREATE TABLE ${table} (id int PRIMARY KEY, v text)`);
    const config = writeTempConfig(configYaml(opts({ tables: [table] })));
    const d = cli(args(config), cwd ? { cwd: path.dirname(config) } : {});
    await d.ready();
    await db.query(`INSERT INTO ${table} VALUES (1, 'via ${table}')`);
    await delivered(table, `"v":"via ${table}"`);
    await settled(table);
    expect(await stop(d)).toEqual({ code: 0, signal: null });
    expect(d.output()).toContain('app-db-listener stopped');
  });
});

describe('config errors: exit 2, the key named, no stack trace, nothing installed', () => {
  const valid = (schema: string) => ({
    database: ['database:', ...databaseKeys(), '  table: cfgerr'],
    listener: ['listener:', `  schema: ${schema}`],
    webhook: ['webhook:', `  url: ${JSON.stringify(rx.url)}`],
  });
  const join = (...parts: string[][]) => parts.flat().join('\n') + '\n';
  const cases: { name: string; yaml?: (schema: string) => string; expected: string[] }[] = [
    { name: 'missing file', expected: ['no-such-config.yaml', 'not found'] },
    {
      name: 'YAML syntax error',
      yaml: (s) => join(['database:', ...databaseKeys(), '  table: [cfgerr'], valid(s).listener, valid(s).webhook),
      expected: ['not valid YAML', '(line '],
    },
    {
      name: 'port out of range',
      yaml: (s) => {
        const v = valid(s);
        return join(v.database.map((l) => (l.startsWith('  port:') ? '  port: 70000' : l)), v.listener, v.webhook);
      },
      expected: ['database.port', '70000'],
    },
    {
      name: 'unset ${VAR}',
      yaml: (s) => join(valid(s).database, valid(s).listener, ['webhook:', '  url: "http://127.0.0.1:${ADL_CLI_TEST_UNSET_PORT}/webhook"']),
      expected: ['webhook.url', 'ADL_CLI_TEST_UNSET_PORT'],
    },
    {
      name: 'ftp:// webhook url',
      yaml: (s) => join(valid(s).database, valid(s).listener, ['webhook:', '  url: "ftp://127.0.0.1/webhook"']),
      expected: ['webhook.url', 'http://'],
    },
  ];

  beforeAll(async () => {
    await db.query(`CREATE TABLE cfgerr (id int PRIMARY KEY)`);
  });

  it.each(cases)('$name', async ({ name, yaml, expected }) => {
    const schema = `adl_cfgerr_${name.replace(/[^a-z0-9]/gi, '_').toLowerCase()}`.slice(0, 40);
    const config = yaml ? writeTempConfig(yaml(schema)) : path.join(tempDir(), 'no-such-config.yaml');
    const env = { ...process.env };
    delete env.ADL_CLI_TEST_UNSET_PORT;
    const d = cli(['-config', config], { env });
    const exit = await exitOf(d);
    expect(exit, d.output()).toEqual({ code: 2, signal: null });
    const err = d.stderr();
    expect(err).toMatch(/^error: /);
    for (const text of expected) expect(err).toContain(text);
    expect(d.output()).not.toMatch(STACK_FRAME);
    expect(d.stdout()).toBe('');
    expect(await schemaExists(schema)).toBe(false);
    expect(await userTriggers('cfgerr')).toBe(0);
  });
});

describe('runtime errors: exit 1, a clear message, no stack trace', () => {
  const cases: { name: string; database: (port: number) => string[]; table: string; expected: (port: number) => string[] }[] = [
    {
      name: 'database unreachable (closed port)',
      database: (port) => databaseKeys().map((l) => (l.startsWith('  port:') ? `  port: ${port}` : l)),
      table: 'rt_unreachable',
      expected: (port) => ['cannot connect', `127.0.0.1:${port}`, 'ECONNREFUSED'],
    },
    {
      name: 'table does not exist',
      database: () => databaseKeys(),
      table: 'rt_no_such_table',
      expected: () => ['rt_no_such_table', 'does not exist'],
    },
    {
      name: 'database does not exist',
      database: () => databaseKeys('adl_cli_no_such_database'),
      table: 'rt_nodb',
      expected: () => ['cannot connect', 'adl_cli_no_such_database', 'does not exist'],
    },
  ];

  it.each(cases)('$name', async ({ database, table, expected }) => {
    const port = await closedPort();
    const yaml = ['database:', ...database(port), `  table: ${table}`, 'webhook:', `  url: ${JSON.stringify(rx.url)}`, ...HTTP_OFF].join('\n');
    const d = cli(['--config', writeTempConfig(yaml + '\n')]);
    const exit = await exitOf(d, 30_000);
    expect(exit, d.output()).toEqual({ code: 1, signal: null });
    const out = d.output();
    expect(out).toContain('Start failed');
    for (const text of expected(port)) expect(out).toContain(text);
    expect(out).not.toMatch(STACK_FRAME);
    // Logged in the usual line shape, not as a dump.
    for (const line of lines(d.stdout())) expect(line).toMatch(TEXT_LINE);
  });

  it('--no-install with nothing installed: exit 1, says what is missing, creates nothing', async () => {
    await db.query(`CREATE TABLE rt_noinstall (id int PRIMARY KEY)`);
    const yaml = ['database:', ...databaseKeys(), '  table: rt_noinstall', 'listener:', '  schema: adl_cli_noinstall', 'webhook:', `  url: ${JSON.stringify(rx.url)}`, ...HTTP_OFF];
    const d = cli(['--no-install', '--config', writeTempConfig(yaml.join('\n') + '\n')]);
    expect(await exitOf(d), d.output()).toEqual({ code: 1, signal: null });
    expect(d.output()).toContain('adl_cli_noinstall');
    expect(d.output()).toContain('rt_noinstall');
    expect(d.output()).not.toMatch(STACK_FRAME);
    expect(await schemaExists('adl_cli_noinstall')).toBe(false);
    expect(await userTriggers('rt_noinstall')).toBe(0);
  });

  it('with logging.file, the message is in the log file and on stderr', async () => {
    const file = path.join(tempDir(), 'app.log');
    const yaml = [
      'database:',
      ...databaseKeys(),
      '  table: rt_missing_logged',
      'webhook:',
      `  url: ${JSON.stringify(rx.url)}`,
      'logging:',
      `  file: ${JSON.stringify(file)}`,
      ...HTTP_OFF,
    ].join('\n');
    const d = cli(['--config', writeTempConfig(yaml + '\n')]);
    expect(await exitOf(d), d.output()).toEqual({ code: 1, signal: null });
    expect(d.stderr()).toMatch(/^error: table "rt_missing_logged" does not exist/);
    expect(readText(file)).toContain('rt_missing_logged');
    expect(d.output()).not.toMatch(STACK_FRAME);
  });
});

describe('logs', () => {
  it('text format: every line in the original shape, a delivery logged at INFO with operation and table', async () => {
    await db.query(`CREATE TABLE log_text (id int PRIMARY KEY, v text)`);
    const d = cli(['--config', writeTempConfig(configYaml(opts({ tables: ['log_text'], logLevel: 'debug' })))]);
    await d.ready();
    await db.query(`INSERT INTO log_text VALUES (1, 'a')`);
    await db.query(`UPDATE log_text SET v = 'b' WHERE id = 1`);
    await waitUntil(() => d.stdout().includes('UPDATE on table log_text'), 10_000, () => `the UPDATE delivery logged; output:\n${d.output()}`);
    await settled('log_text');
    expect(await stop(d)).toEqual({ code: 0, signal: null });
    const out = lines(d.stdout());
    expect(out.length).toBeGreaterThan(3);
    for (const line of out) expect(line).toMatch(TEXT_LINE);
    expect(out.some((l) => / DEBUG: /.test(l))).toBe(true);
    for (const op of ['INSERT', 'UPDATE']) {
      expect(out.filter((l) => l.includes(` INFO: Webhook delivered: ${op} on table log_text `))).toHaveLength(1);
    }
    expect(d.stderr()).toBe('');
  });

  it('json format to a file in a directory that does not exist yet', async () => {
    await db.query(`CREATE TABLE log_json (id int PRIMARY KEY)`);
    const dir = path.join(tempDir(), 'not', 'yet');
    const file = path.join(dir, 'app.log');
    expect(existsSync(dir)).toBe(false);
    const d = cli(['--config', writeTempConfig(configYaml(opts({ tables: ['log_json'], logFormat: 'json', logFile: file })))]);
    await fileContains(file, ' started', d);
    await db.query(`INSERT INTO log_json VALUES (7)`);
    await fileContains(file, 'INSERT on table log_json', d);
    await settled('log_json');
    expect(await stop(d)).toEqual({ code: 0, signal: null });
    const records = lines(readText(file)).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(records.length).toBeGreaterThan(1);
    for (const r of records) {
      expect(typeof r.level).toBe('number');
      expect(typeof r.msg).toBe('string');
      expect(String(r.time)).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    }
    const deliveries = records.filter((r) => r.msg === 'Webhook delivered: INSERT on table log_json');
    expect(deliveries).toHaveLength(1);
    expect(deliveries[0]!.level).toBe(30);
    expect(records.some((r) => String(r.msg).includes('stopped'))).toBe(true);
    // With a log file, nothing goes to the terminal.
    expect(d.output()).toBe('');
  });

  it('a burst of deliveries logged to a file: every line is there after SIGTERM, one per event', async () => {
    await db.query(`CREATE TABLE log_burst (id int PRIMARY KEY)`);
    const file = path.join(tempDir(), 'app.log');
    const d = cli(['--config', writeTempConfig(configYaml(opts({ tables: ['log_burst'], logFile: file })))]);
    await fileContains(file, ' started', d);
    await db.query(`INSERT INTO log_burst SELECT generate_series(1, 500)`);
    await rx.waitFor((evs) => new Set(evs.filter((e) => e.response === 200 && e.body.includes('"table":"log_burst"')).map((e) => String(e.headers['webhook-id']))).size >= 500, 30_000);
    await settled('log_burst');
    // Stopped at once: lines still in the buffer are written by the graceful stop.
    expect(await stop(d)).toEqual({ code: 0, signal: null });
    const logged = lines(readText(file));
    expect(logged.filter((l) => l.includes(' INFO: Webhook delivered: INSERT on table log_burst '))).toHaveLength(500);
    expect(logged.at(-1)).toMatch(/stopped/);
  });

  it('SIGHUP reopens the log file after it was renamed', async () => {
    await db.query(`CREATE TABLE log_hup (id int PRIMARY KEY, v text)`);
    const file = path.join(tempDir(), 'app.log');
    const rotated = `${file}.1`;
    const d = cli(['--config', writeTempConfig(configYaml(opts({ tables: ['log_hup'], logFile: file })))]);
    await fileContains(file, ' started', d);
    await db.query(`INSERT INTO log_hup VALUES (1, 'a')`);
    await fileContains(file, 'INSERT on table log_hup', d);

    renameSync(file, rotated);
    d.child.kill('SIGHUP');
    // The reopen creates the file at the configured path; only then make the next change.
    await waitUntil(() => existsSync(file), 10_000, `${file} re-created after SIGHUP`);
    await db.query(`UPDATE log_hup SET v = 'b' WHERE id = 1`);
    await fileContains(file, 'UPDATE on table log_hup', d);
    await settled('log_hup');
    expect(await stop(d)).toEqual({ code: 0, signal: null });

    const old = readText(rotated);
    const now = readText(file);
    expect(old).toContain(' started');
    expect(old).toContain('INSERT on table log_hup');
    expect(old).not.toContain('UPDATE on table log_hup');
    expect(now).not.toContain('INSERT on table log_hup');
    expect(now).toContain('stopped');
    for (const line of [...lines(old), ...lines(now)]) expect(line).toMatch(TEXT_LINE);
    expect(d.output()).toBe('');
  });
});

describe('secrets', () => {
  const PASSWORD = 'S3cr3t-Pa55';
  const HOOK_PASSWORD = 'H00kPass';
  const basic = `Basic ${Buffer.from(`hookuser:${HOOK_PASSWORD}`).toString('base64')}`;

  it.each([
    { where: 'standard output, text', table: 'sec_stdout', format: 'text', toFile: false },
    { where: 'a log file, json', table: 'sec_file', format: 'json', toFile: true },
  ])('never appear in any output ($where)', async ({ table, format, toFile }) => {
    await db.query(`CREATE TABLE ${table} (id int PRIMARY KEY)`);
    const secretB64 = randomBytes(32).toString('base64');
    const file = toFile ? path.join(tempDir(), 'app.log') : undefined;
    const yaml = [
      'database:',
      ...databaseKeys(),
      `  password: ${JSON.stringify(PASSWORD)}`,
      `  table: ${table}`,
      '  colour: blue', // unknown key: a config warning
      'listener:',
      '  poll_interval: 0.5',
      'webhook:',
      `  url: "http://hookuser:${HOOK_PASSWORD}@127.0.0.1:${rx.port}/webhook"`,
      `  secret: "whsec_${secretB64}"`,
      '  retry_delay: 0.05',
      '  retry_max_delay: 1',
      'logging:',
      '  level: debug',
      `  format: ${format}`,
      ...(file ? [`  file: ${JSON.stringify(file)}`] : []),
      ...HTTP_OFF,
    ].join('\n');
    const config = writeTempConfig(yaml + '\n');
    rx.queue(500);
    const d = cli(['-config', config]);
    const log = () => (file ? readText(file) : d.stdout());
    await waitUntil(() => log().includes(' started') || d.child.exitCode !== null, 20_000, () => `start; output:\n${d.output()}`);
    await db.query(`INSERT INTO ${table} VALUES (1)`);
    await rx.waitFor((evs) => evs.filter((e) => e.body.includes(`"table":"${table}"`) && e.response === 200).length === 1, 10_000);
    await waitUntil(() => log().includes(`Webhook delivered: INSERT on table ${table}`), 10_000, () => `the delivery logged; log:\n${log()}`);
    await settled(table);
    expect(await stop(d)).toEqual({ code: 0, signal: null });

    // The receiver got the URL's credentials as basic auth, and signed requests.
    const got = forTable(table);
    expect(got.map((e) => e.response)).toEqual([500, 200]);
    for (const e of got) {
      expect(e.headers.authorization).toBe(basic);
      expect(String(e.headers['webhook-signature'])).toMatch(/^v1,/);
    }
    // What was logged: debug lines, the warning, the failed and the delivered attempt.
    const text = log();
    expect(text).toContain(format === 'json' ? 'unknown key \\"database.colour\\"' : 'unknown key "database.colour"');
    expect(text).toMatch(/Webhook failed: INSERT on table sec_/);
    expect(text).toMatch(/Webhook delivered: INSERT on table sec_/);
    expect(text).toMatch(format === 'json' ? /"level":20/ : / DEBUG: /);

    const everything = d.output() + (file ? readText(file) : '');
    for (const secret of [PASSWORD, HOOK_PASSWORD, secretB64, basic.slice('Basic '.length)]) {
      expect(everything).not.toContain(secret);
    }
  });
});

describe('signals', () => {
  it('a second SIGTERM during a graceful stop exits at once with 130; a new daemon delivers the event', async () => {
    await db.query(`CREATE TABLE sig_twice (id int PRIMARY KEY, v text)`);
    rx.setMode('hang');
    const o = opts({ tables: ['sig_twice'], timeout: 60, retryCount: 3 });
    const d = cli(['--config', writeTempConfig(configYaml(o))]);
    await d.ready();
    await db.query(`INSERT INTO sig_twice VALUES (1, 'held')`);
    await rx.waitFor((evs) => evs.some((e) => e.body.includes('"table":"sig_twice"')), 10_000);
    const eventId = JSON.parse(forTable('sig_twice')[0]!.body).id as string;

    d.child.kill('SIGTERM');
    await waitUntil(() => d.output().includes('Received SIGTERM') || d.child.exitCode !== null, 10_000, () => `the first signal logged; output:\n${d.output()}`);
    // Graceful stop waits for the hanging delivery (up to shutdown_timeout = 65 s).
    expect(d.child.exitCode).toBeNull();
    d.child.kill('SIGTERM');
    expect(await exitOf(d, 10_000)).toEqual({ code: 130, signal: null });
    expect(d.output()).toContain('Second signal');
    expect(d.output()).not.toMatch(STACK_FRAME);

    // The event is still in the journal, and the next daemon delivers it.
    expect(await pending('sig_twice')).toBe(1);
    rx.setMode('ok');
    const again = cli(['--config', writeTempConfig(configYaml(o))]);
    await again.ready();
    await rx.waitFor((evs) => evs.some((e) => e.response === 200 && e.body.includes('"table":"sig_twice"')), 10_000);
    const ok = forTable('sig_twice').filter((e) => e.response === 200);
    expect(ok.map((e) => JSON.parse(e.body).id)).toEqual([eventId]);
    await settled('sig_twice');
    expect(await stop(again)).toEqual({ code: 0, signal: null });
  });

  // A stop that finds an outcome being written must not wait out shutdown_timeout.
  it('SIGTERM during an in-flight delivery: it finishes, is recorded, and the process exits without waiting out shutdown_timeout', async () => {
    await db.query(`CREATE TABLE sig_inflight (id int PRIMARY KEY)`);
    rx.setMode({ kind: 'delay', ms: 300 });
    const d = cli(['--config', writeTempConfig(configYaml(opts({ tables: ['sig_inflight'], shutdownTimeout: 60 })))]);
    await d.ready();
    await db.query(`INSERT INTO sig_inflight VALUES (1)`);
    await rx.waitFor((evs) => evs.some((e) => e.body.includes('"table":"sig_inflight"')), 10_000);
    d.child.kill('SIGTERM');
    // The delivery takes 300 ms; the grace period is 60 s.
    expect(await exitOf(d, 10_000)).toEqual({ code: 0, signal: null });
    expect(forTable('sig_inflight').map((e) => e.response)).toEqual([200]);
    expect(await pending('sig_inflight')).toBe(0);
  });
});

describe('version and help', () => {
  const pkgVersion = (JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;

  it('version prints the package.json version', async () => {
    const d = cli(['version']);
    expect(await exitOf(d)).toEqual({ code: 0, signal: null });
    expect(d.stdout()).toBe(`${pkgVersion}\n`);
    const v = cli(['--version']);
    expect(await exitOf(v)).toEqual({ code: 0, signal: null });
    expect(v.stdout().trim()).toBe(pkgVersion);
  });

  it('--help exits 0 and lists the commands', async () => {
    const d = cli(['--help']);
    expect(await exitOf(d)).toEqual({ code: 0, signal: null });
    expect(d.stdout()).toContain('Usage: app-db-listener');
    expect(d.stdout()).toContain('run');
    const r = cli(['run', '--help']);
    expect(await exitOf(r)).toEqual({ code: 0, signal: null });
    expect(r.stdout()).toContain('--config');
  });

  it('an unknown option is a usage error: exit 2', async () => {
    const d = cli(['--no-such-option']);
    expect(await exitOf(d)).toEqual({ code: 2, signal: null });
    expect(d.stderr()).toContain('unknown option');
  });

  it('an unknown command is named as such: exit 2', async () => {
    const d = cli(['start']);
    expect(await exitOf(d)).toEqual({ code: 2, signal: null });
    expect(d.stderr()).toContain("unknown command 'start'");
    expect(d.stderr()).toContain('dead-letters');
  });
});
