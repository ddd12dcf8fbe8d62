/** `status` and `dead-letters` from the built CLI, against the real MariaDB and a running daemon. */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type RunningDaemon } from '../../src/app.js';
import { parseConfig } from '../../src/config/index.js';
import { spawnCli, writeTempConfig } from '../support/daemon.js';
import { MYSQL_HOST, MYSQL_PASSWORD, MYSQL_PORT, MYSQL_USER, createMySqlTestDatabase, type MySqlTestDatabase } from '../support/mysql.js';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { waitUntil } from '../support/wait.js';

let db: MySqlTestDatabase;
let rx: Receiver;
let daemon: RunningDaemon;
let configPath: string;

function configText(database: string, webhookUrl: string): string {
  return [
    'database:',
    '  type: "mysql"',
    `  host: ${JSON.stringify(MYSQL_HOST)}`,
    `  port: ${MYSQL_PORT}`,
    `  user: ${JSON.stringify(MYSQL_USER)}`,
    `  password: ${JSON.stringify(MYSQL_PASSWORD)}`,
    `  database: ${JSON.stringify(database)}`,
    '  tables: ["accounts", "notes"]',
    'listener:',
    '  poll_interval: 0.2',
    '  schema: "adl_admin"',
    'webhook:',
    `  url: ${JSON.stringify(webhookUrl)}`,
    '  timeout: 5',
    '  retry_delay: 0.05',
    '  retry_max_delay: 1',
    'http:',
    '  listen: "off"',
    '',
  ].join('\n');
}

async function cli(args: string[]) {
  const p = spawnCli([...args, '--config', configPath]);
  const exit = await p.closed;
  return { ...exit, stdout: p.stdout(), stderr: p.stderr() };
}

const count = async (table: string) => Number((await db.query<{ n: number }>(`SELECT count(*) AS n FROM ${table}`))[0]!.n);
const deadCount = () => count('adl_admin_dead_letters');

beforeAll(async () => {
  db = await createMySqlTestDatabase('cli_admin');
  rx = await startReceiver();
  await db.exec(`CREATE TABLE accounts (id BIGINT PRIMARY KEY, balance BIGINT)`);
  await db.exec(`CREATE TABLE notes (id INT PRIMARY KEY, body TEXT)`);
  const text = configText(db.name, rx.url);
  configPath = writeTempConfig(text);
  daemon = await startDaemon(parseConfig(text, {}, 'test').config, { logger: pino({ level: process.env.ADL_TEST_LOG ?? 'silent' }) });
  // The receiver refuses everything (410): each change goes straight to dead letters.
  rx.setMode(410);
  await db.exec(`INSERT INTO accounts VALUES (1, 9007199254740993), (2, 5)`);
  await db.exec(`INSERT INTO notes VALUES (1, 'a'), (2, 'b'), (3, 'c')`);
  await waitUntil(async () => (await deadCount()) === 5, 15_000, 'five dead letters');
  rx.setMode('ok');
});
afterAll(async () => {
  await daemon?.stop(2_000);
  await rx?.close();
  await db?.drop();
});

describe('status and dead-letters commands with MySQL', () => {
  it('status gives the per-table counts, as JSON and as a table', async () => {
    const r = await cli(['status', '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const { tables } = JSON.parse(r.stdout) as { tables: Array<Record<string, unknown>> };
    expect(tables).toEqual([
      expect.objectContaining({ schema: db.name, table: 'accounts', operations: ['INSERT', 'UPDATE', 'DELETE'], pending: 0, retrying: 0, inFlight: 0, deadLetters: 2, lastDeliveryAt: null }),
      expect.objectContaining({ schema: db.name, table: 'notes', pending: 0, retrying: 0, inFlight: 0, deadLetters: 3, oldestPendingSeconds: null }),
    ]);
    const human = await cli(['status']);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/TABLE\s+OPERATIONS\s+PENDING/);
    expect(human.stdout).toMatch(new RegExp(`${db.name}\\.notes\\s+INSERT,UPDATE,DELETE\\s+0\\s+0\\s+0\\s+3`));
  });

  it('status counts pending changes and their age while the daemon is away', async () => {
    await daemon.stop(2_000);
    await db.exec(`INSERT INTO notes VALUES (10, 'waiting')`);
    const r = await cli(['status', '--json']);
    const { tables } = JSON.parse(r.stdout) as { tables: Array<{ table: string; pending: number; oldestPendingSeconds: number | null }> };
    const notes = tables.find((t) => t.table === 'notes')!;
    expect(notes.pending).toBe(1);
    expect(notes.oldestPendingSeconds).not.toBeNull();
    expect(notes.oldestPendingSeconds!).toBeGreaterThanOrEqual(0);
    daemon = await startDaemon(parseConfig(configText(db.name, rx.url), {}, 'test').config, { logger: pino({ level: 'silent' }) });
    await waitUntil(async () => (await count('adl_admin_deliveries')) === 0, 15_000, 'pending note delivered');
  });

  it('list and show tell what failed and why, with the rows exactly as captured', async () => {
    const list = await cli(['dead-letters', 'list', '--json', '--table', 'accounts']);
    expect(list.code).toBe(0);
    const { dead_letters } = JSON.parse(list.stdout) as {
      dead_letters: Array<{ eventId: string; lastStatus: number; attempts: number; failedAt: string }>;
    };
    expect(dead_letters).toHaveLength(2);
    expect(dead_letters[0]).toMatchObject({ lastStatus: 410, attempts: 1 });
    expect(dead_letters[0]!.eventId).toMatch(/^evt_[0-9a-f]+_\d+$/);
    expect(dead_letters[0]!.failedAt).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/);
    const qualified = await cli(['dead-letters', 'list', '--json', '--table', `${db.name}.notes`]);
    expect((JSON.parse(qualified.stdout) as { dead_letters: unknown[] }).dead_letters).toHaveLength(3);

    const show = await cli(['dead-letters', 'show', dead_letters[0]!.eventId, '--json']);
    expect(show.code).toBe(0);
    expect(show.stdout).toContain('"balance": 9007199254740993');
    expect(JSON.parse(show.stdout)).toMatchObject({ eventId: dead_letters[0]!.eventId, table: 'accounts', op: 'INSERT', oldRow: null });
    const human = await cli(['dead-letters', 'list']);
    expect(human.stdout).toMatch(/EVENT ID\s+DESTINATION\s+OPERATION\s+TABLE/);
    expect(human.stdout.trim().split('\n')).toHaveLength(6);
    const future = await cli(['dead-letters', 'list', '--since', '2999-01-01T00:00:00Z']);
    expect(future.stdout).toContain('No dead letters.');
  });

  it('replay delivers a dead letter again under the same event id', async () => {
    const list = JSON.parse((await cli(['dead-letters', 'list', '--json', '--table', 'accounts'])).stdout) as {
      dead_letters: Array<{ id: string; eventId: string }>;
    };
    const { id, eventId } = list.dead_letters[0]!;
    const r = await cli(['dead-letters', 'replay', eventId]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Replayed 1 dead letter');
    await rx.waitFor((evs) => evs.some((e) => e.headers['webhook-id'] === eventId && e.response === 200), 15_000);
    const delivered = rx.events.find((e) => e.headers['webhook-id'] === eventId && e.response === 200)!;
    expect(delivered.body).toContain('"balance": 9007199254740993');
    expect(await deadCount()).toBe(4);
    const left = await db.query<{ id: string }>(`SELECT id FROM adl_admin_dead_letters WHERE id = ?`, [id]);
    expect(left).toHaveLength(0);

    const byTable = await cli(['dead-letters', 'replay', '--table', 'notes']);
    expect(byTable.stdout).toContain('Replayed 3 dead letters');
    await waitUntil(async () => (await deadCount()) === 1, 15_000, 'notes replayed');
    await waitUntil(async () => (await count('adl_admin_deliveries')) === 0, 15_000, 'replayed events delivered');
  });

  it('status shows when each table last had an event delivered', async () => {
    type Row = { table: string; lastDeliveryAt: string | null };
    const watched = async () =>
      (JSON.parse((await cli(['status', '--json'])).stdout) as { tables: Row[] }).tables.filter((x) => x.table === 'accounts' || x.table === 'notes');
    // Written apart from the outcomes, a moment after them.
    await waitUntil(async () => (await watched()).every((t) => t.lastDeliveryAt !== null), 15_000, 'a last delivery time for both tables');
    const tables = await watched();
    expect(tables).toHaveLength(2);
    for (const t of tables) {
      // Their replayed dead letters were delivered a moment ago.
      expect(t.lastDeliveryAt, t.table).not.toBeNull();
      expect(Math.abs(Date.now() - Date.parse(t.lastDeliveryAt!)), t.table).toBeLessThan(120_000);
    }
    expect((await cli(['status'])).stdout).toMatch(/LAST DELIVERY[\s\S]*\d+s ago/);
  });

  it('purge removes dead letters; a selection is required', async () => {
    const none = await cli(['dead-letters', 'purge']);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('say which dead letters');
    const past = await cli(['dead-letters', 'purge', '--before', '2000-01-01T00:00:00Z']);
    expect(past.stdout).toContain('Purged 0 dead letters');
    const purge = await cli(['dead-letters', 'purge', '--all']);
    expect(purge.code).toBe(0);
    expect(purge.stdout).toContain('Purged 1 dead letter.');
    expect(await deadCount()).toBe(0);
    expect((await cli(['dead-letters', 'list'])).stdout).toContain('No dead letters.');
  });

  it('says what to do when nothing is installed', async () => {
    const other = writeTempConfig(configText(db.name, rx.url).replace('schema: "adl_admin"', 'schema: "adl_none"'));
    const p = spawnCli(['status', '--config', other]);
    const exit = await p.closed;
    expect(exit.code).toBe(1);
    expect(p.stderr()).toContain('nothing is installed');
    expect(p.stderr()).toContain('app-db-listener install');
  });
});
