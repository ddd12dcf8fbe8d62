/** `demo` from the built CLI, against the real PostgreSQL. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnCli } from '../support/daemon.js';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';
import { waitUntil } from '../support/wait.js';

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase('cli_demo');
});
afterAll(async () => {
  await db?.drop();
});

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
});
