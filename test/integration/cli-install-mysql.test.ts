/** `install` and `uninstall` from the built CLI against the real MariaDB. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnCli, writeTempConfig } from '../support/daemon.js';
import { MYSQL_HOST, MYSQL_PORT, createMySqlTestDatabase, type MySqlTestDatabase } from '../support/mysql.js';

let db: MySqlTestDatabase;
let configPath: string;

beforeAll(async () => {
  db = await createMySqlTestDatabase('cli_install');
  await db.exec('CREATE TABLE `Customer Orders` (id BIGINT PRIMARY KEY, total DECIMAL(10,2))');
  configPath = writeTempConfig(
    [
      'database:',
      '  type: "mysql"',
      `  host: "${MYSQL_HOST}"`,
      `  port: ${MYSQL_PORT}`,
      '  user: "root"',
      '  password: ""',
      `  database: "${db.name}"`,
      '  table: "Customer Orders"',
      'webhook:',
      '  url: "http://127.0.0.1:9/hook"',
      '',
    ].join('\n'),
  );
});
afterAll(async () => {
  await db?.drop();
});

async function cli(args: string[]) {
  const p = spawnCli([...args, '--config', configPath]);
  const exit = await p.closed;
  return { ...exit, stdout: p.stdout(), stderr: p.stderr() };
}

const triggers = async () =>
  (await db.query<{ n: number }>(`SELECT count(*) AS n FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?`, [db.name]))[0]!.n;

describe('install and uninstall with MySQL', () => {
  it('dry-run prints the SQL, install applies it once, uninstall --drop-schema removes everything', async () => {
    const dry = await cli(['install', '--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain('`Customer Orders`');
    expect(dry.stdout).toMatch(/CREATE TRIGGER/);
    expect(Number(await triggers())).toBe(0);

    const first = await cli(['install']);
    expect(first.code).toBe(0);
    expect(Number(await triggers())).toBe(3);
    const second = await cli(['install']);
    expect(second.stdout).toContain('Nothing to do');

    const drop = await cli(['uninstall', '--drop-schema']);
    expect(drop.code).toBe(0);
    expect(Number(await triggers())).toBe(0);
    const left = await db.query<{ n: number }>(
      `SELECT count(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME LIKE 'app\\_db\\_listener\\_%'`,
      [db.name],
    );
    expect(Number(left[0]!.n)).toBe(0);
  });
});
