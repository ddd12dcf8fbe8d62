/** `install` and `uninstall` from the built CLI, against the real PostgreSQL. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configYaml, spawnCli, writeTempConfig } from '../support/daemon.js';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';

let db: TestDatabase;
let configPath: string;

beforeAll(async () => {
  db = await createTestDatabase('cli_install');
  await db.query(`CREATE TABLE "Customer Orders" (id bigint PRIMARY KEY, total numeric)`);
  configPath = writeTempConfig(
    configYaml({ dbUrl: db.url, webhookUrl: 'http://127.0.0.1:9/hook', tables: ['Customer Orders'], schema: 'adl_cli' }),
  );
});
afterAll(async () => {
  await db?.drop();
});

async function cli(args: string[]) {
  const p = spawnCli(args);
  const exit = await p.closed;
  return { ...exit, stdout: p.stdout(), stderr: p.stderr() };
}

const schemaExists = async () => (await db.query(`SELECT 1 FROM pg_namespace WHERE nspname = 'adl_cli'`)).rowCount === 1;
const triggerExists = async () => (await db.query(`SELECT 1 FROM pg_trigger WHERE tgname = 'adl_cli_capture'`)).rowCount === 1;

describe('install and uninstall commands', () => {
  it('install --dry-run prints the exact SQL and changes nothing', async () => {
    const r = await cli(['install', '--config', configPath, '--dry-run']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('CREATE SCHEMA IF NOT EXISTS "adl_cli"');
    expect(r.stdout).toContain('CREATE TABLE "adl_cli".events');
    expect(r.stdout).toContain('CREATE TRIGGER "adl_cli_capture" AFTER INSERT OR UPDATE OR DELETE ON "public"."Customer Orders"');
    expect(await schemaExists()).toBe(false);
  });

  it('install applies the plan once; a second install has nothing to do', async () => {
    const first = await cli(['install', '--config', configPath]);
    expect(first.code).toBe(0);
    expect(first.stdout).toContain('Installed: migration 000001_journal');
    expect(await triggerExists()).toBe(true);
    const second = await cli(['install', '--config', configPath]);
    expect(second).toMatchObject({ code: 0 });
    expect(second.stdout).toContain('Nothing to do');
    const dry = await cli(['install', '--config', configPath, '--dry-run']);
    expect(dry.stdout).toContain('nothing to do');
  });

  it('uninstall removes the trigger and keeps the journal; --drop-schema removes it too', async () => {
    const dry = await cli(['uninstall', '--config', configPath, '--dry-run', '--drop-schema']);
    expect(dry.stdout).toContain('DROP TRIGGER IF EXISTS "adl_cli_capture" ON "public"."Customer Orders";');
    expect(dry.stdout).toContain('DROP SCHEMA IF EXISTS "adl_cli" CASCADE;');
    expect(await triggerExists()).toBe(true);

    const keep = await cli(['uninstall', '--config', configPath]);
    expect(keep.code).toBe(0);
    expect(await triggerExists()).toBe(false);
    expect(await schemaExists()).toBe(true);

    const drop = await cli(['uninstall', '--config', configPath, '--drop-schema']);
    expect(drop.code).toBe(0);
    expect(await schemaExists()).toBe(false);
  });

  it('a bad config is exit 2, an unreachable database exit 1', async () => {
    const bad = await cli(['install', '--config', writeTempConfig('database:\n  port: "abc"\n')]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('database.port');
    const down = await cli([
      'install',
      '--config',
      writeTempConfig(configYaml({ dbUrl: 'postgres://postgres@127.0.0.1:9/x', webhookUrl: 'http://127.0.0.1:9/h', tables: ['t'] })),
    ]);
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/cannot connect/);
    expect(down.stderr).not.toMatch(/\n\s+at /);
  });
});
