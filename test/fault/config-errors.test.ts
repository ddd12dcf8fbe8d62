/**
 * Broken configs through the built CLI (`run --config`): each exits 2 (the config
 * is wrong) or 1 (the config is well formed but the database refuses it), with a
 * message naming the problem, no stack trace, no secret, and nothing written to
 * the database. The watched tables exist, so a config that got through would
 * install its schema and triggers: their absence afterwards is what proves it
 * stopped in time. (test/integration/cli.test.ts covers a missing file, port out
 * of range, an ftp:// URL and a missing PostgreSQL table; not repeated here.)
 */
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnCli, writeTempConfig, type DaemonProcess } from '../support/daemon.js';
import { STACK_FRAME } from '../support/fault.js';
import { createMySqlTestDatabase, MYSQL_HOST, MYSQL_PASSWORD, MYSQL_PORT, MYSQL_USER, type MySqlTestDatabase } from '../support/mysql.js';
import { createTestDatabase, PG_HOST, PG_PORT, PG_USER, type TestDatabase } from '../support/pg.js';
import { waitUntil } from '../support/wait.js';

let pg: TestDatabase;
let my: MySqlTestDatabase;
let closedPort: number;
/** A MariaDB account with a password, made for this file. */
const MY_USER = `adl_cfg_${process.pid}`;
const MY_PASSWORD = 'right horse battery';
/** Shown nowhere: every case that carries it checks the output for it. */
const SECRET = 's3cr3t-Pa55';

beforeAll(async () => {
  pg = await createTestDatabase('cfgerr');
  my = await createMySqlTestDatabase('cfgerr');
  await pg.query('CREATE TABLE watched (id int PRIMARY KEY, v text)');
  await my.exec('CREATE TABLE watched (id INT PRIMARY KEY, v TEXT)');
  await my.exec(`CREATE USER IF NOT EXISTS ?@'%' IDENTIFIED BY ?`, [MY_USER, MY_PASSWORD]);
  await my.exec(`GRANT ALL ON \`${my.name}\`.* TO ?@'%'`, [MY_USER]);
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closedPort = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
});
afterAll(async () => {
  await my?.exec(`DROP USER IF EXISTS ?@'%'`, [MY_USER]).catch(() => undefined);
  await pg?.drop();
  await my?.drop();
});

/** YAML sections as `key: raw YAML value` lines; `undefined` leaves a key out. */
type Sections = Record<string, Record<string, string | undefined> | undefined>;

function toYaml(sections: Sections): string {
  const lines: string[] = [];
  for (const [name, keys] of Object.entries(sections)) {
    if (keys === undefined) continue;
    lines.push(`${name}:`);
    for (const [key, value] of Object.entries(keys)) if (value !== undefined) lines.push(`  ${key}: ${value}`);
  }
  return lines.join('\n') + '\n';
}

const q = (text: string) => JSON.stringify(text);

/** A valid PostgreSQL config on the test database; `schema` is the case's own. */
function pgConfig(schema: string): Sections {
  return {
    database: { type: 'postgres', host: PG_HOST, port: String(PG_PORT), user: PG_USER, database: q(pg.name), table: 'watched' },
    listener: { schema, poll_interval: '0.5' },
    webhook: { url: q('http://127.0.0.1:9/hook'), timeout: '5' },
    http: { listen: q('off') },
  };
}

/** A valid MariaDB config on the test database, as the account with a password. */
function myConfig(schema: string): Sections {
  return {
    database: {
      type: 'mysql',
      host: MYSQL_HOST,
      port: String(MYSQL_PORT),
      user: q(MY_USER),
      password: q(MY_PASSWORD),
      database: q(my.name),
      table: 'watched',
    },
    listener: { schema },
    webhook: { url: q('http://127.0.0.1:9/hook') },
    http: { listen: q('off') },
  };
}

function patch(base: Sections, changes: Sections): Sections {
  const out: Sections = { ...base };
  for (const [name, keys] of Object.entries(changes)) out[name] = keys === undefined ? undefined : { ...base[name], ...keys };
  return out;
}

interface Case {
  readonly name: string;
  readonly db: 'postgres' | 'mysql';
  /** The config file's text (or a path when `file` says so), given the case's schema name. */
  readonly yaml: (schema: string) => string;
  readonly exit: 1 | 2;
  /** Phrases the message must hold. */
  readonly says: readonly string[];
  /** Text that must appear nowhere in the output. */
  readonly hides?: readonly string[];
  /** Give a directory instead of a file. */
  readonly directory?: boolean;
}

const pgCase = (name: string, changes: Sections, exit: 1 | 2, says: string[], hides?: string[]): Case => ({
  name,
  db: 'postgres',
  yaml: (schema) => toYaml(patch(pgConfig(schema), changes)),
  exit,
  says,
  ...(hides ? { hides } : {}),
});
const myCase = (name: string, changes: Sections, exit: 1 | 2, says: string[], hides?: string[]): Case => ({
  name,
  db: 'mysql',
  yaml: (schema) => toYaml(patch(myConfig(schema), changes)),
  exit,
  says,
  ...(hides ? { hides } : {}),
});
/** Raw text: a valid config edited by `edit`. */
const pgText = (name: string, edit: (yaml: string) => string, says: string[]): Case => ({
  name,
  db: 'postgres',
  yaml: (schema) => edit(toYaml(pgConfig(schema))),
  exit: 2,
  says,
});

const cases: Case[] = [
  // --- The config itself is wrong: exit 2, nothing connects.
  pgCase('port is not a number', { database: { port: 'abc' } }, 2, ['database.port', 'between 1 and 65535', '"abc"']),
  pgCase('pool_size is a word', { worker: { pool_size: 'ten' } }, 2, ['worker.pool_size', 'integer', '"ten"']),
  pgCase('negative pool_size', { worker: { pool_size: '-1' } }, 2, ['worker.pool_size', 'between 1 and 1000', '-1']),
  pgCase('unknown database type', { database: { type: 'oracle' } }, 2, ['database.type', '"postgres" or "mysql"', '"oracle"']),
  pgCase('missing webhook url', { webhook: { url: undefined } }, 2, ['webhook.url is required', 'http://']),
  pgCase('no webhook section at all', { webhook: undefined }, 2, ['webhook.url is required']),
  pgCase('unset ${VAR} in the password', { database: { password: q('${ADL_FAULT_UNSET_PASSWORD}') } }, 2, [
    'database.password',
    'ADL_FAULT_UNSET_PASSWORD',
    'is not set',
  ]),
  pgCase('webhook url without a scheme', { webhook: { url: q('127.0.0.1:8080/hook') } }, 2, ['webhook.url', 'http:// or https://']),
  pgCase('webhook url with a mailto: scheme', { webhook: { url: q('mailto:ops@example.com') } }, 2, ['webhook.url', 'http:// or https://']),
  pgCase('database url with an unknown scheme', { database: { url: q(`postgress://postgres:${SECRET}@127.0.0.1/x`) } }, 2, [
    'database.url',
    'postgres://, postgresql:// or mysql://',
  ], [SECRET]),
  pgCase('database url of another type', { database: { url: q(`mysql://root:${SECRET}@127.0.0.1/x`) } }, 2, [
    'database.url',
    'mysql URL but database.type is "postgres"',
  ], [SECRET]),
  pgCase('bad sslmode', { database: { sslmode: 'sometimes' } }, 2, ['database.sslmode', 'verify-full', '"sometimes"']),
  pgCase('bad sslmode in the url', { database: { url: q('postgres://postgres@127.0.0.1/x?sslmode=always') } }, 2, [
    'database.url',
    'sslmode=',
    'always',
  ]),
  pgCase('bad http.listen', { http: { listen: q('localhost') } }, 2, ['http.listen', 'host:port', '"localhost"']),
  pgCase('http.listen port out of range', { http: { listen: q('127.0.0.1:99999') } }, 2, ['http.listen', 'host:port']),
  pgCase('webhook.timeout 0', { webhook: { timeout: '0' } }, 2, ['webhook.timeout', 'greater than 0']),
  pgCase('fractional retry_count', { webhook: { retry_count: '2.5' } }, 2, ['webhook.retry_count', 'integer', '2.5']),
  pgCase('retry_max_delay below retry_delay', { webhook: { retry_delay: '10', retry_max_delay: '1' } }, 2, [
    'webhook.retry_max_delay',
    'at least webhook.retry_delay',
  ]),
  pgCase('an operation that does not exist', { listener: { modes: q('insert,upsert') } }, 2, ['listener.modes', '"upsert" is not an operation']),
  pgCase('listener.schema with SQL in it', { listener: { schema: q('x; DROP TABLE watched') } }, 2, ['listener.schema', 'letters, digits and underscores']),
  pgCase('malformed table name', { database: { table: q('a.b.c') } }, 2, ['database.table', '"schema.table"'], ['is required']),
  pgCase('a secret that is not whsec_', { webhook: { secret: q(SECRET) } }, 2, ['webhook.secret', 'whsec_'], [SECRET]),
  pgCase('a reserved header', { webhook: { headers: '{ "Content-Type": "text/plain" }' } }, 2, [
    'webhook.headers.Content-Type',
    'sets this header itself',
  ]),
  pgCase('logging.level misspelt', { logging: { level: 'verbose' } }, 2, ['logging.level', '"verbose"']),
  pgText('section name typo', (y) => y.replace(/^database:/m, 'databse:'), ['unknown key "databse"', 'did you mean "database"', 'database.table is required']),
  pgText('key typo (letters swapped)', (y) => y.replace(/^ {2}table:/m, '  tabel:'), ['unknown key "database.tabel"', 'did you mean "database.table"']),
  pgText('YAML syntax error: bad indentation', (y) => y.replace(/^ {2}table:/m, ' table:'), ['not valid YAML', 'same column', '(line ']),
  pgText('YAML syntax error: a tab', (y) => y.replace(/^ {2}table:/m, '\ttable:'), ['not valid YAML', 'Tabs', '(line ']),
  pgText('YAML syntax error: unclosed quote', (y) => y.replace('"off"', '"off'), ['not valid YAML', '(line ']),
  pgText('a key given twice', (y) => y + 'webhook:\n  url: "http://127.0.0.1:9/other"\n', ['not valid YAML', 'unique']),
  pgText('a section given as a scalar', (y) => y + 'worker: 5\n', ['worker must be a mapping of keys', '"5"']),
  pgText('a list instead of a mapping', () => '- database\n- webhook\n', ['must be a YAML mapping', 'got a list']),
  pgText('an empty file', () => '', ['database.table is required', 'webhook.url is required']),
  { name: 'a directory instead of a file', db: 'postgres', yaml: () => '', exit: 2, says: ['cannot read', 'is a directory'], directory: true },

  // --- Well formed, but the database or the host says no: exit 1 at start.
  pgCase('unreachable host (closed port)', { database: { port: '$PORT' } }, 1, ['cannot connect', 'ECONNREFUSED', 'database.host and database.port']),
  pgCase('PostgreSQL role that does not exist', { database: { user: 'adl_no_such_role', password: q(SECRET) } }, 1, [
    'cannot connect',
    'role "adl_no_such_role" does not exist',
    'database.user and database.password',
  ], [SECRET]),
  pgCase('sslmode require against a server without TLS', { database: { sslmode: 'require' } }, 1, ['does not support SSL', 'database.sslmode']),
  pgCase('unresolvable host name', { database: { host: 'no-such-host.invalid' } }, 1, ['cannot connect', 'ENOTFOUND', 'database.host']),
  pgCase('log file under a regular file', { logging: { file: q('/etc/hostname/app.log') } }, 1, ['cannot open log file', '/etc/hostname/app.log']),
  myCase('MariaDB: wrong password', { database: { password: q(SECRET) } }, 1, [
    'cannot connect to MySQL',
    'Access denied',
    'database.user and database.password',
  ], [SECRET]),
  myCase('MariaDB: database that does not exist', { database: { user: q(MYSQL_USER), password: q(MYSQL_PASSWORD), database: 'adl_cfg_no_such_db' } }, 1, [
    'Unknown database',
    'adl_cfg_no_such_db',
    'check database.database',
  ]),
  myCase('MariaDB: a database the user may not use', { database: { database: 'adl_cfg_no_such_db' } }, 1, [
    'Access denied',
    'adl_cfg_no_such_db',
    'check database.database, and that database.user is granted privileges',
  ]),
  myCase('MariaDB: table that does not exist', { database: { table: 'no_such_table' } }, 1, ['no_such_table', 'does not exist']),
  myCase('MariaDB: unreachable port', { database: { port: '$PORT' } }, 1, ['cannot connect to MySQL', 'ECONNREFUSED']),
];

/** Whether anything of ours is in the database: the schema (PostgreSQL) or prefixed tables, and triggers on `watched`. */
async function written(db: Case['db'], schema: string): Promise<string[]> {
  if (db === 'postgres') {
    const r = await pg.query<{ what: string }>(
      `SELECT 'schema ' || nspname AS what FROM pg_namespace WHERE nspname = $1
       UNION ALL SELECT 'trigger ' || tgname FROM pg_trigger WHERE tgrelid = 'watched'::regclass AND NOT tgisinternal`,
      [schema],
    );
    return r.rows.map((row) => row.what);
  }
  const tables = await my.query<{ what: string }>(
    `SELECT CONCAT('table ', table_name) AS what FROM information_schema.tables WHERE table_schema = ? AND table_name LIKE CONCAT(?, '%')
     UNION ALL SELECT CONCAT('trigger ', trigger_name) FROM information_schema.triggers WHERE trigger_schema = ?`,
    [my.name, schema, my.name],
  );
  return tables.map((row) => row.what);
}

async function run(c: Case, schema: string): Promise<DaemonProcess> {
  const configPath = c.directory
    ? mkdtempSync(path.join(tmpdir(), 'adl-cfg-dir-'))
    : writeTempConfig(c.yaml(schema).replaceAll('$PORT', String(closedPort)));
  const env = { ...process.env };
  delete env.ADL_FAULT_UNSET_PASSWORD;
  const d = spawnCli(['run', '--config', configPath], configPath, { env });
  await waitUntil(() => d.child.exitCode !== null || d.child.signalCode !== null, 30_000, () => `the CLI to exit; output:\n${d.output()}`);
  await d.closed;
  return d;
}

describe('broken configs through the CLI (over 10 s in all: one process each): the right exit code, the problem named, no stack trace, nothing written', () => {
  it('has at least 15 cases of each kind of database problem and config problem', () => {
    expect(cases.filter((c) => c.exit === 2).length).toBeGreaterThanOrEqual(15);
    expect(new Set(cases.map((c) => c.name)).size).toBe(cases.length);
  });

  it.concurrent.for(cases.map((c, i) => ({ ...c, i })))('$name (exit $exit)', async ({ i, ...c }, { expect }) => {
    const schema = `adl_cfg_${i}`;
    const d = await run(c, schema);
    const out = d.output();
    expect(d.child.exitCode, out).toBe(c.exit);
    expect(out).toMatch(c.exit === 2 ? /^error: / : /error|ERROR/);
    for (const phrase of c.says) expect(out).toContain(phrase);
    for (const hidden of c.hides ?? []) expect(out).not.toContain(hidden);
    expect(out).not.toMatch(STACK_FRAME);
    if (c.exit === 2) expect(d.stdout(), 'a config error starts nothing, so logs nothing').toBe('');
    expect(await written(c.db, schema)).toEqual([]);
  });
});
