/**
 * The operator's side of binlog capture from the built CLI: install / uninstall (and
 * --dry-run) on a private MariaDB with a ROW binary log, status with the stored
 * position, and doctor, there (also for a user without the replication privileges)
 * and on the shared server (no binary log).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnCli, writeTempConfig } from '../support/daemon.js';
import { address, startBinlogMariaDb } from '../support/binlog-mariadb.js';
import { createMySqlTestDatabase, mysqlConfigYaml, type MySqlTestDatabase } from '../support/mysql.js';
import type { PrivateMariaDb } from '../support/private-servers.js';

let server: PrivateMariaDb;
let db: MySqlTestDatabase;
let shared: MySqlTestDatabase;
let configPath: string;
let sharedConfigPath: string;
let limitedConfigPath: string;

beforeAll(async () => {
  server = await startBinlogMariaDb();
  db = await createMySqlTestDatabase('cli_logcap', address(server));
  await db.exec('CREATE TABLE `Customer Orders` (id BIGINT PRIMARY KEY, total DECIMAL(10,2))');
  configPath = writeTempConfig(mysqlConfigYaml(db.name, { tables: ['Customer Orders'], schema: 'adl_cli', capture: 'log' }, address(server)));
  // A user with every privilege on the database, none for replication.
  await db.exec(`CREATE USER 'limited'@'%' IDENTIFIED BY 'secret-pw'`);
  await db.exec(`GRANT ALL PRIVILEGES ON \`${db.name}\`.* TO 'limited'@'%'`);
  limitedConfigPath = writeTempConfig(
    mysqlConfigYaml(db.name, { tables: ['Customer Orders'], schema: 'adl_cli', capture: 'log', user: 'limited', password: 'secret-pw' }, address(server)),
  );
  shared = await createMySqlTestDatabase('cli_logcap_shared');
  await shared.exec('CREATE TABLE orders (id BIGINT PRIMARY KEY)');
  sharedConfigPath = writeTempConfig(mysqlConfigYaml(shared.name, { tables: ['orders'], capture: 'log' }));
}, 120_000);
afterAll(async () => {
  await db?.drop().catch(() => undefined);
  await shared?.drop();
  await server?.close();
});

async function cli(args: string[]) {
  const p = spawnCli(args);
  const exit = await p.closed;
  return { ...exit, stdout: p.stdout(), stderr: p.stderr() };
}

interface Report {
  checks: { name: string; status: string; detail: string; fix?: string }[];
}
const triggers = async () =>
  (await db.query<{ name: string }>(`SELECT TRIGGER_NAME AS name FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?`, [db.name])).map((r) => r.name);
const positions = async () => db.query<{ f: string; p: number }>('SELECT binlog_file AS f, binlog_pos AS p FROM `adl_cli_capture_positions`').catch(() => []);

describe('binlog capture: install, status, doctor, uninstall', () => {
  it('install --dry-run prints the start position and no trigger', async () => {
    const r = await cli(['install', '--config', configPath, '--dry-run']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/start log capture at binlog binlog\.\d{6}:\d+/);
    expect(r.stdout).toMatch(/INSERT IGNORE INTO `[^`]+`\.`adl_cli_capture_positions`/);
    expect(r.stdout).not.toContain('CREATE TRIGGER');
    expect(await positions()).toEqual([]);
  });

  it('install stores the position once; a second install has nothing to do', async () => {
    const first = await cli(['install', '--config', configPath]);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(await positions()).toHaveLength(1);
    expect(await triggers()).toEqual([]);
    const second = await cli(['install', '--config', configPath]);
    expect(second.stdout).toContain('Nothing to do');
  });

  it('status shows the position, not read by any daemon', async () => {
    await db.exec('INSERT INTO `Customer Orders` VALUES (1, 12.50)');
    const r = await cli(['status', '--config', configPath]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Log capture: binlog from binlog\.\d{6}:\d+ NOT READ by any daemon, \d+ kB behind/);
    const json = JSON.parse((await cli(['status', '--json', '--config', configPath])).stdout) as { capture: { active: boolean; source: string; lagBytes: number } };
    expect(json.capture).toMatchObject({ active: false, source: 'binlog' });
    expect(json.capture.lagBytes).toBeGreaterThan(0);
  });

  it('doctor finds the settings and privileges right, and checks no trigger', async () => {
    const r = await cli(['doctor', '--json', '--config', configPath]);
    const report = JSON.parse(r.stdout) as Report;
    const capture = report.checks.find((c) => c.name === 'capture')!;
    expect(capture.status).toBe('ok');
    expect(capture.detail).toMatch(/log capture: binlog_format ROW, full row images with column names, from binlog\.\d{6}:\d+/);
    expect(report.checks.find((c) => c.name === 'triggers')).toBeUndefined();
    expect(report.checks.find((c) => c.name === 'privileges')!.status).toBe('ok');
  });

  it('doctor names the missing replication privileges with the GRANT that fixes them', async () => {
    const r = await cli(['doctor', '--json', '--config', limitedConfigPath]);
    const privileges = (JSON.parse(r.stdout) as Report).checks.find((c) => c.name === 'privileges')!;
    expect(privileges.status).toBe('problem');
    expect(privileges.detail).toContain('no REPLICATION SLAVE, REPLICATION CLIENT');
    expect(privileges.fix).toContain(`GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO 'limited'@'%';`);
    // No TRIGGER privilege is asked for: log capture installs none.
    expect(privileges.detail).not.toContain('TRIGGER');
  });

  it('uninstall --dry-run prints it; uninstall forgets the position', async () => {
    const dry = await cli(['uninstall', '--config', configPath, '--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain('forget the binlog position of log capture');
    expect(await positions()).toHaveLength(1);
    const r = await cli(['uninstall', '--config', configPath]);
    expect(r.code).toBe(0);
    expect(await positions()).toEqual([]);
  });
});

describe('doctor, binlog capture on a server without a binary log', () => {
  it('reports log_bin and binlog_format with the exact fixes', async () => {
    const r = await cli(['doctor', '--json', '--config', sharedConfigPath]);
    expect(r.code).not.toBe(0);
    const capture = (JSON.parse(r.stdout) as Report).checks.find((c) => c.name === 'capture')!;
    expect(capture.status).toBe('problem');
    expect(capture.detail).toContain('the binary log is off (log_bin)');
    expect(capture.detail).toContain('binlog_format is MIXED, not ROW');
    expect(capture.fix).toContain('SET GLOBAL binlog_format = ROW');
    expect(capture.fix).toContain('SET GLOBAL binlog_row_metadata = FULL');
  });

  it('install stops with the fix instead of a bare server error', async () => {
    const r = await cli(['install', '--config', sharedConfigPath]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('cannot read this server');
    expect(r.stderr).toContain('log_bin');
  });
});
