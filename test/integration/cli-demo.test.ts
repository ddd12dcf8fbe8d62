/** `demo` from the built CLI, against the real PostgreSQL, and against the embedded one it starts itself. */
import { existsSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnCli } from '../support/daemon.js';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';
import { waitUntil } from '../support/wait.js';

let db: TestDatabase;
/** Embedded servers' directories that existed before this file ran (none, unless a demo runs elsewhere). */
let earlierDirs: Set<string>;

beforeAll(async () => {
  db = await createTestDatabase('cli_demo');
  earlierDirs = new Set(embeddedDirs());
});
afterAll(async () => {
  await db?.drop();
  // A failed test must not leave a server behind: stop what this file started, by pid.
  for (const dir of embeddedDirs().filter((d) => !earlierDirs.has(d))) {
    for (const pid of processesIn(dir)) process.kill(pid, 'SIGQUIT');
    rmSync(dir, { recursive: true, force: true });
  }
});

/** The demo's embedded servers put their cluster in `<tmp>/app-db-listener-demo-*`. */
function embeddedDirs(): string[] {
  return readdirSync(tmpdir())
    .filter((name) => name.startsWith('app-db-listener-demo-'))
    .map((name) => path.join(tmpdir(), name));
}

/**
 * Processes working in `dir` or naming it on their command line (Linux /proc): the postmaster
 * names its data directory, and every PostgreSQL process works inside it.
 */
function processesIn(dir: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ');
      const cwd = readlinkSync(`/proc/${entry}/cwd`);
      if (cmdline.includes(dir) || cwd === dir || cwd.startsWith(dir + path.sep)) found.push(Number(entry));
    } catch {
      // The process ended meanwhile.
    }
  }
  return found;
}

/** This environment without DATABASE_URL, so that the demo starts its embedded PostgreSQL. */
function envWithoutDatabaseUrl(): NodeJS.ProcessEnv {
  const { DATABASE_URL: _unused, ...rest } = process.env;
  return rest;
}

/** The embedded server's directory and port, from the psql commands the demo prints. */
function embeddedServer(stdout: string): { dir: string; port: number } {
  const match = /\?host=([^&\s']+)&port=(\d+)/.exec(stdout);
  if (!match) throw new Error(`no psql command with host and port in:\n${stdout}`);
  return { dir: match[1]!, port: Number(match[2]) };
}

/** The data directory the demo names in its header. */
function dataDirIn(stdout: string): string {
  const match = /data in (\S+)\)/.exec(stdout);
  if (!match) throw new Error(`no data directory in:\n${stdout}`);
  return match[1]!;
}

const STARTING = 'Starting a private PostgreSQL for the demo';

async function cli(args: string[], env?: NodeJS.ProcessEnv) {
  const p = spawnCli(args, '', env ? { env } : {});
  const exit = await p.closed;
  return { ...exit, stdout: p.stdout(), stderr: p.stderr() };
}

/** The header lines the demo's receiver prints, one per delivered webhook: `← OP schema.table id=…  signature ok`. */
function deliveries(stdout: string): string[] {
  return stdout.split('\n').filter((line) => line.startsWith('← '));
}

const schemaExists = async (name: string) => (await db.query(`SELECT 1 FROM pg_namespace WHERE nspname = $1`, [name])).rowCount === 1;

describe('demo command', () => {
  it('delivers the sample changes, signed and exact; runs again on the same database; --clean removes its schemas', async () => {
    const first = await cli(['demo', '--once', '--database-url', db.url]);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    const lines = deliveries(first.stdout);
    expect(lines.map((l) => l.split(' ').slice(0, 3).join(' '))).toEqual([
      '← INSERT app_db_listener_demo.users',
      '← INSERT app_db_listener_demo.users',
      '← UPDATE app_db_listener_demo.users',
      '← DELETE app_db_listener_demo.users',
    ]);
    for (const line of lines) expect(line).toMatch(/ id=evt_\w+_\d+ {2}signature ok$/);
    // Exact values: numeric keeps its trailing zero, a bigint beyond 2^53 is not rounded.
    expect(first.stdout).toContain('"balance": 12.50');
    expect(first.stdout).toContain('"id": 9007199254740993');
    expect(first.stdout).not.toContain('9007199254740992');

    // What the database committed: Zoé updated, Max deleted; the journal is delivered and empty.
    const rows = await db.query<{ id: string; name: string; balance: string }>(
      'SELECT id::text, name, balance::text FROM app_db_listener_demo.users ORDER BY id',
    );
    expect(rows.rows).toEqual([{ id: '1', name: 'Zoé', balance: '12.75' }]);
    expect((await db.query('SELECT count(*)::int AS n FROM app_db_listener_demo_journal.events')).rows[0]).toEqual({ n: 0 });
    expect(await schemaExists('app_db_listener_demo')).toBe(true);
    expect(await schemaExists('app_db_listener_demo_journal')).toBe(true);
    // The user's own installation is not touched.
    expect(await schemaExists('app_db_listener')).toBe(false);

    const second = await cli(['demo', '--once', '--database-url', db.url]);
    expect(second.stderr).toBe('');
    expect(second.code).toBe(0);
    expect(deliveries(second.stdout).map((l) => l.split(' ')[1])).toEqual(['INSERT', 'INSERT', 'UPDATE', 'DELETE']);
    expect(second.stdout.match(/signature ok/g)).toHaveLength(4);
    expect(second.stdout).toContain('"balance": 12.50');

    const clean = await cli(['demo', '--once', '--clean', '--database-url', db.url]);
    expect(clean.stderr).toBe('');
    expect(clean.code).toBe(0);
    expect(clean.stdout.match(/signature ok/g)).toHaveLength(4);
    expect(await schemaExists('app_db_listener_demo')).toBe(false);
    expect(await schemaExists('app_db_listener_demo_journal')).toBe(false);
  });

  it('keeps running and delivers changes made by hand; a second demo on the database is refused; SIGINT stops it with 0', async () => {
    const demo = spawnCli(['demo', '--database-url', db.url]);
    await waitUntil(
      () => demo.stdout().includes('The demo keeps running') || demo.child.exitCode !== null,
      30_000,
      () => `the demo to deliver its sample changes; output so far:\n${demo.output()}`,
    );
    expect(demo.child.exitCode).toBeNull();
    expect(demo.stdout()).toContain('psql ');

    await db.query(`INSERT INTO app_db_listener_demo.users (id, name, balance) VALUES (3, 'Ada', 7.00)`);
    await waitUntil(
      () => deliveries(demo.stdout()).length === 5,
      15_000,
      () => `the hand-made INSERT to be delivered; output so far:\n${demo.output()}`,
    );
    expect(deliveries(demo.stdout())[4]).toMatch(/^← INSERT app_db_listener_demo\.users id=evt_\w+ {2}signature ok$/);
    expect(demo.stdout()).toContain('"data": {"id": 3, "name": "Ada", "balance": 7.00');

    const second = await cli(['demo', '--once', '--clean', '--database-url', db.url]);
    expect(second.code).toBe(1);
    expect(second.stderr).toContain('another app-db-listener demo is running');
    expect(deliveries(second.stdout)).toEqual([]);
    // The refused demo did not clean up under the running one.
    expect(await schemaExists('app_db_listener_demo_journal')).toBe(true);

    demo.child.kill('SIGINT');
    const exit = await demo.closed;
    expect(exit).toEqual({ code: 0, signal: null });
    expect(demo.stdout()).toContain('Stopping');
    expect(demo.stdout()).toContain('Left in place');
    expect(demo.stderr()).toBe('');
  });

  it('an unreachable database is exit 1 with what was tried and how to point elsewhere, no stack trace', async () => {
    const down = await cli(['demo', '--once', '--database-url', 'postgres://postgres@127.0.0.1:9/x']);
    expect(down.code).toBe(1);
    expect(down.stderr).toContain('cannot connect to postgres://postgres@127.0.0.1:9/x (from --database-url)');
    expect(down.stderr).toContain('--database-url');
    expect(down.stderr).toContain('DATABASE_URL');
    expect(down.stderr).toMatch(/embedded PostgreSQL/);
    expect(down.stderr).not.toMatch(/\n\s+at /);
    expect(deliveries(down.stdout)).toEqual([]);

    const fromEnv = await cli(['demo', '--once'], { ...process.env, DATABASE_URL: 'postgres://postgres@127.0.0.1:9/y' });
    expect(fromEnv.code).toBe(1);
    expect(fromEnv.stderr).toContain('cannot connect to postgres://postgres@127.0.0.1:9/y (from DATABASE_URL)');
    expect(fromEnv.stderr).not.toMatch(/\n\s+at /);
  });

  it('without a URL or DATABASE_URL, --once runs on an embedded PostgreSQL and leaves no process or directory behind', async () => {
    const run = await cli(['demo', '--once'], envWithoutDatabaseUrl());
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout.split(STARTING)).toHaveLength(2);
    expect(deliveries(run.stdout).map((l) => l.split(' ').slice(0, 3).join(' '))).toEqual([
      '← INSERT app_db_listener_demo.users',
      '← INSERT app_db_listener_demo.users',
      '← UPDATE app_db_listener_demo.users',
      '← DELETE app_db_listener_demo.users',
    ]);
    expect(run.stdout.match(/signature ok/g)).toHaveLength(4);
    expect(run.stdout).toContain('"balance": 12.50');
    expect(run.stdout).toContain('"id": 9007199254740993');
    // The generated password is never shown.
    expect(run.stdout).toMatch(/postgres:\*\*\*@127\.0\.0\.1:\d+\/postgres/);

    const dir = dataDirIn(run.stdout);
    expect(dir.startsWith(path.join(tmpdir(), 'app-db-listener-demo-'))).toBe(true);
    expect(existsSync(dir)).toBe(false);
    expect(processesIn(dir)).toEqual([]);
    expect(run.stdout).toContain('Stopped the private PostgreSQL and removed its data directory.');
  });

  it('the embedded demo keeps running, takes changes through the socket it prints, and SIGINT removes it all', async () => {
    const demo = spawnCli(['demo'], '', { env: envWithoutDatabaseUrl() });
    await waitUntil(
      () => demo.stdout().includes('The demo keeps running') || demo.child.exitCode !== null,
      60_000,
      () => `the embedded demo to deliver its sample changes; output so far:\n${demo.output()}`,
    );
    expect(demo.child.exitCode).toBeNull();
    const { dir, port } = embeddedServer(demo.stdout());
    expect(dataDirIn(demo.stdout())).toBe(dir);
    // While it runs, the server and its directory are there: the checks below can see them.
    expect(existsSync(dir)).toBe(true);
    expect(processesIn(dir).length).toBeGreaterThan(0);

    // What the printed psql command does: the private socket needs no password.
    const byHand = new pg.Client({ host: dir, port, user: 'postgres', database: 'postgres' });
    await byHand.connect();
    try {
      await byHand.query(`INSERT INTO app_db_listener_demo.users (id, name, balance) VALUES (3, 'Ada', 7.00)`);
    } finally {
      await byHand.end();
    }
    await waitUntil(
      () => deliveries(demo.stdout()).length === 5,
      15_000,
      () => `the hand-made INSERT to be delivered; output so far:\n${demo.output()}`,
    );
    expect(demo.stdout()).toContain('"data": {"id": 3, "name": "Ada", "balance": 7.00');

    demo.child.kill('SIGINT');
    expect(await demo.closed).toEqual({ code: 0, signal: null });
    expect(demo.stderr()).toBe('');
    expect(demo.stdout()).toContain('Stopped the private PostgreSQL and removed its data directory.');
    expect(existsSync(dir)).toBe(false);
    expect(processesIn(dir)).toEqual([]);
  });

  it('a second signal while the embedded demo stops exits at once (130) and still removes the server', async () => {
    const demo = spawnCli(['demo'], '', { env: envWithoutDatabaseUrl() });
    await waitUntil(
      () => demo.stdout().includes('The demo keeps running') || demo.child.exitCode !== null,
      60_000,
      () => `the embedded demo to deliver its sample changes; output so far:\n${demo.output()}`,
    );
    const { dir } = embeddedServer(demo.stdout());
    expect(processesIn(dir).length).toBeGreaterThan(0);

    demo.child.kill('SIGINT');
    demo.child.kill('SIGTERM');
    expect(await demo.closed).toEqual({ code: 130, signal: null });
    expect(demo.stderr()).toContain('Second signal: exiting now.');
    expect(existsSync(dir)).toBe(false);
    await waitUntil(
      () => processesIn(dir).length === 0,
      10_000,
      () => `the embedded server's processes to end (immediate shutdown); still there: ${processesIn(dir).join(', ')}`,
    );
  });

  it('a signal while the embedded PostgreSQL starts stops the demo with 0 and leaves nothing behind', async () => {
    const before = new Set(embeddedDirs());
    const demo = spawnCli(['demo', '--once'], '', { env: envWithoutDatabaseUrl() });
    await waitUntil(
      () => demo.stdout().includes(STARTING) || demo.child.exitCode !== null,
      30_000,
      () => `the demo to start its embedded PostgreSQL; output so far:\n${demo.output()}`,
    );
    demo.child.kill('SIGINT');
    expect(await demo.closed).toEqual({ code: 0, signal: null });
    expect(demo.stderr()).toBe('');
    expect(demo.stdout()).toContain('Stopping');
    expect(deliveries(demo.stdout())).toEqual([]);
    const left = embeddedDirs().filter((d) => !before.has(d));
    expect(left).toEqual([]);
  });

  it('on a platform without embedded binaries, exit 1 says so and points to --database-url, leaving nothing behind', async () => {
    const before = new Set(embeddedDirs());
    const fixture = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'unsupported-platform.mjs');
    const nodeOptions = `${process.env.NODE_OPTIONS ?? ''} --import ${pathToFileURL(fixture).href}`.trim();
    const run = await cli(['demo', '--once'], { ...envWithoutDatabaseUrl(), NODE_OPTIONS: nodeOptions });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`no embedded PostgreSQL for this platform (${process.platform}-mips)`);
    expect(run.stderr).toContain('--database-url');
    expect(run.stderr).not.toMatch(/\n\s+at /);
    expect(deliveries(run.stdout)).toEqual([]);
    expect(embeddedDirs().filter((d) => !before.has(d))).toEqual([]);
  });
});
