/**
 * The operator's side of log capture from the built CLI: install / uninstall (and
 * --dry-run) on a private PostgreSQL with wal_level = logical, status with the slot,
 * and doctor, there and on the shared server (wal_level = replica).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configYaml, spawnCli, writeTempConfig } from '../support/daemon.js';
import { createLogicalTestDatabase, startLogicalPostgres } from '../support/logical-postgres.js';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';
import type { PrivatePostgres } from '../support/private-servers.js';

let server: PrivatePostgres;
let db: TestDatabase;
let shared: TestDatabase;
let configPath: string;
let sharedConfigPath: string;

beforeAll(async () => {
  server = await startLogicalPostgres();
  db = await createLogicalTestDatabase(server, 'cli_logcap');
  await db.query(`CREATE TABLE "Customer Orders" (id bigint PRIMARY KEY, total numeric)`);
  configPath = writeTempConfig(
    configYaml({ dbUrl: db.url, webhookUrl: 'http://127.0.0.1:9/hook', tables: ['Customer Orders'], schema: 'adl_cli', capture: 'log' }),
  );
  shared = await createTestDatabase('cli_logcap_shared');
  await shared.query(`CREATE TABLE orders (id bigint PRIMARY KEY)`);
  sharedConfigPath = writeTempConfig(configYaml({ dbUrl: shared.url, webhookUrl: 'http://127.0.0.1:9/hook', tables: ['orders'], capture: 'log' }));
}, 120_000);
afterAll(async () => {
  await db?.drop();
  await shared?.drop();
  await server?.close();
});

async function cli(args: string[]) {
  const p = spawnCli(args);
  const exit = await p.closed;
  return { ...exit, stdout: p.stdout(), stderr: p.stderr() };
}

const slots = async () =>
  (await db.query<{ slot_name: string }>(`SELECT slot_name FROM pg_replication_slots WHERE database = current_database()`)).rows.map((r) => r.slot_name);
const publications = async () => (await db.query<{ pubname: string }>(`SELECT pubname FROM pg_publication`)).rows.map((r) => r.pubname);

describe('log capture: install, status, uninstall', () => {
  it('install --dry-run prints the publication, replica identity and slot, and no trigger', async () => {
    const r = await cli(['install', '--config', configPath, '--dry-run']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('CREATE PUBLICATION "adl_cli" FOR TABLE "public"."Customer Orders" WITH (publish = \'insert, update, delete, truncate\', publish_via_partition_root = true);');
    expect(r.stdout).toContain('ALTER TABLE "public"."Customer Orders" REPLICA IDENTITY FULL;');
    expect(r.stdout).toMatch(/SELECT pg_create_logical_replication_slot\('adl_cli_[0-9a-f]{8}', 'pgoutput'\);/);
    expect(r.stdout).not.toContain('CREATE TRIGGER');
    expect(await slots()).toEqual([]);
    expect(await publications()).toEqual([]);
  });

  it('install creates them once; a second install has nothing to do', async () => {
    const first = await cli(['install', '--config', configPath]);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(await slots()).toHaveLength(1);
    expect(await publications()).toEqual(['adl_cli']);
    const triggers = await db.query(`SELECT 1 FROM pg_trigger WHERE tgrelid = '"Customer Orders"'::regclass AND NOT tgisinternal`);
    expect(triggers.rowCount).toBe(0);
    const second = await cli(['install', '--config', configPath]);
    expect(second.stdout).toContain('Nothing to do');
  });

  it('status shows the slot, not read by any daemon', async () => {
    const r = await cli(['status', '--config', configPath]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Log capture: slot adl_cli_[0-9a-f]{8} NOT READ by any daemon, \d+ kB behind/);
    const json = JSON.parse((await cli(['status', '--json', '--config', configPath])).stdout) as { capture: { active: boolean } };
    expect(json.capture.active).toBe(false);
  });

  it('doctor finds the settings right and warns of an unlimited max_slot_wal_keep_size', async () => {
    const r = await cli(['doctor', '--json', '--config', configPath]);
    const report = JSON.parse(r.stdout) as { checks: { name: string; status: string; detail: string; fix?: string }[] };
    const capture = report.checks.find((c) => c.name === 'capture')!;
    expect(capture.status).toBe('warning');
    expect(capture.detail).toContain('max_slot_wal_keep_size is unlimited');
    expect(report.checks.find((c) => c.name === 'triggers')).toBeUndefined();
  });

  it('uninstall --dry-run prints the drops; uninstall drops slot and publication', async () => {
    const dry = await cli(['uninstall', '--config', configPath, '--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/SELECT pg_drop_replication_slot\('adl_cli_[0-9a-f]{8}'\);/);
    expect(dry.stdout).toContain('DROP PUBLICATION IF EXISTS "adl_cli";');
    expect(await slots()).toHaveLength(1);
    const r = await cli(['uninstall', '--config', configPath]);
    expect(r.code).toBe(0);
    expect(await slots()).toEqual([]);
    expect(await publications()).toEqual([]);
  });
});

describe('doctor, log capture on a server with wal_level = replica', () => {
  it('reports wal_level with the exact fix', async () => {
    const r = await cli(['doctor', '--json', '--config', sharedConfigPath]);
    expect(r.code).not.toBe(0);
    const report = JSON.parse(r.stdout) as { checks: { name: string; status: string; detail: string; fix?: string }[] };
    const capture = report.checks.find((c) => c.name === 'capture')!;
    expect(capture.status).toBe('problem');
    expect(capture.detail).toContain('wal_level is replica; log capture needs logical');
    expect(capture.fix).toContain('ALTER SYSTEM SET wal_level = logical;');
    expect(capture.fix).toContain('restart PostgreSQL');
  });

  it('install stops with the wal_level fix instead of a bare server error', async () => {
    const r = await cli(['install', '--config', sharedConfigPath]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('cannot create the replication slot');
    expect(r.stderr).toContain('ALTER SYSTEM SET wal_level = logical');
    const slots = await shared.query(`SELECT 1 FROM pg_replication_slots WHERE database = current_database()`);
    expect(slots.rowCount).toBe(0);
  });
});
