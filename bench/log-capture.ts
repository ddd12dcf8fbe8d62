/**
 * `npx tsx bench/log-capture.ts [--quick]`: trigger capture against log capture
 * (listener.capture: log) on PostgreSQL, on a private server with wal_level =
 * logical (the same settings for every mode, so the figures compare):
 *
 * - writer cost: single-row INSERTs per second of 16 writers on a plain table
 *   (none), with the capture trigger, and with log capture (publication, REPLICA
 *   IDENTITY FULL, slot), no daemon running;
 * - sustained delivery: events per second delivered while 16 writers run at full
 *   speed, as a ratio of the plain-table ceiling (target >= 0.5x with log capture);
 * - drain: a backlog of changes committed while no daemon ran, delivered per second;
 * - one transaction of 1,000,000 rows: the daemon's peak RSS until it is journaled
 *   (target <= 100 MB).
 *
 * Prints the figures and writes bench/results/<time>-log-capture.json. Run on an
 * idle machine: the figures are ratios measured in the same run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { createLogicalTestDatabase, startLogicalPostgres } from '../test/support/logical-postgres.js';
import { cliPath, exited, has, median, now, peakRssMb, root, round, sleep, until } from './lib.js';
import { Receiver } from './processes.js';
import { shebangNodeFlags } from '../src/util/node-flags.js';

const DEPLOYED_NODE_FLAGS = shebangNodeFlags(cliPath);

const QUICK = has('quick');
const SIZE = QUICK ? { seconds: 4, drain: 20_000, million: 200_000 } : { seconds: 15, drain: 100_000, million: 1_000_000 };
const WRITERS = 16;

type Capture = 'none' | 'trigger' | 'log';
const results: Record<string, unknown> = { quick: QUICK };

function print(name: string, value: number, unit: string, extra = ''): void {
  console.log(`  ${name.padEnd(44)} ${String(round(value, value < 10 ? 2 : 0)).padStart(10)} ${unit}${extra}`);
  results[name] = value;
}

const server = await startLogicalPostgres({ shared_buffers: '256MB', max_wal_size: '2GB' });
const receiver = await Receiver.start();
try {
  const db = await createLogicalTestDatabase(server, 'bench_logcap');
  const pool = new pg.Pool({ connectionString: db.url, max: WRITERS + 4 });

  const configFor = (table: string, capture: Exclude<Capture, 'none'>): string => {
    const dir = mkdtempSync(path.join(tmpdir(), 'adl-bench-logcap-'));
    const file = path.join(dir, 'config.yaml');
    writeFileSync(
      file,
      `database:\n  url: ${JSON.stringify(db.url)}\n  table: ${table}\nlistener:\n  capture: ${capture}\n  schema: adl_${table}\n  poll_interval: 0.5\n` +
        `webhook:\n  url: "${receiver.url}"\n  timeout: 10\nlogging:\n  level: "warn"\nworker:\n  pool_size: 20\nhttp:\n  listen: "off"\n`,
    );
    return file;
  };
  const install = async (table: string, capture: Exclude<Capture, 'none'>) => {
    const child = spawn(process.execPath, [cliPath, 'install', '--config', configFor(table, capture)], { stdio: 'inherit' });
    await exited(child);
  };
  const startDaemon = (table: string, capture: Exclude<Capture, 'none'>): ChildProcess =>
    spawn(process.execPath, [...DEPLOYED_NODE_FLAGS, cliPath, 'run', '--config', configFor(table, capture)], { stdio: ['ignore', 'ignore', 'inherit'] });
  const stopDaemon = async (child: ChildProcess) => {
    child.kill('SIGTERM');
    await exited(child);
  };

  /** 16 writers, single-row autocommit INSERTs, for `seconds`: inserts per second. */
  const write = async (table: string, seconds: number): Promise<number> => {
    let n = 0;
    const end = now() + seconds * 1000;
    await Promise.all(
      Array.from({ length: WRITERS }, async () => {
        const c = await pool.connect();
        try {
          while (now() < end) {
            await c.query({ name: `ins_${table}`, text: `INSERT INTO ${table} (amount, note) VALUES ($1, $2)`, values: ['12.50', 'bench'] });
            n++;
          }
        } finally {
          c.release();
        }
      }),
    );
    return n / seconds;
  };
  const table = async (name: string) => {
    await db.query(`CREATE TABLE ${name} (id bigserial PRIMARY KEY, amount numeric(12,2), note text, at timestamptz DEFAULT now())`);
  };

  console.log(`log capture bench (${QUICK ? 'quick' : 'full'}), PostgreSQL private server, wal_level = logical`);

  // Writer cost, no daemon running: three rounds, the modes alternating (a busy
  // machine's noise spreads over all three), the median of each.
  const samples: Record<Capture, number[]> = { none: [], trigger: [], log: [] };
  for (const capture of ['none', 'trigger', 'log'] as const) {
    await table(`w_${capture}`);
    if (capture !== 'none') await install(`w_${capture}`, capture);
    await write(`w_${capture}`, 1); // warm-up
  }
  for (let round = 0; round < 3; round++) {
    for (const capture of ['none', 'trigger', 'log'] as const) samples[capture].push(await write(`w_${capture}`, SIZE.seconds));
  }
  const rates: Record<Capture, number> = { none: median(samples.none), trigger: median(samples.trigger), log: median(samples.log) };
  for (const capture of ['none', 'trigger', 'log'] as const) {
    print(`writer: 16 writers, ${capture}`, rates[capture], 'inserts/s', capture === 'none' ? '' : `  (${(rates.none / rates[capture]).toFixed(2)}x the cost of none)`);
  }
  // The unread slots of the writer tables keep WAL: drop them now.
  await db.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE NOT active`);

  // Sustained delivery while 16 writers run at full speed.
  for (const capture of ['trigger', 'log'] as const) {
    const t = `s_${capture}`;
    await table(t);
    await install(t, capture);
    await receiver.reset();
    const daemon = startDaemon(t, capture);
    await db.query(`INSERT INTO ${t} (amount) VALUES (1)`);
    await until(async () => (await receiver.distinct()) >= 1, 30_000, 'first delivery');
    const before = await receiver.distinct();
    const started = now();
    const writeRate = await write(t, SIZE.seconds);
    const delivered = ((await receiver.distinct()) - before) / ((now() - started) / 1000);
    print(`sustained: delivered while writing, ${capture}`, delivered, 'events/s', `  (${(delivered / rates.none).toFixed(2)}x the plain-table ceiling; writers ${Math.round(writeRate)}/s)`);
    await stopDaemon(daemon);
    await db.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE NOT active AND slot_name LIKE 'adl_s_log%'`);
  }

  // Drain of a backlog committed while no daemon ran.
  for (const capture of ['trigger', 'log'] as const) {
    const t = `d_${capture}`;
    await table(t);
    await install(t, capture);
    await db.query(`INSERT INTO ${t} (amount) SELECT g FROM generate_series(1, ${SIZE.drain}) g`);
    await receiver.reset();
    const started = now();
    const daemon = startDaemon(t, capture);
    await until(async () => (await receiver.distinct()) >= SIZE.drain, 600_000, 'drain', 100);
    print(`drain ${SIZE.drain}: ${capture}`, SIZE.drain / ((now() - started) / 1000), 'events/s', '  (from the daemon start)');
    await stopDaemon(daemon);
    if (capture === 'log') await db.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE NOT active AND slot_name LIKE 'adl_d_log%'`);
  }

  // One large transaction: peak RSS until it is in the journal.
  {
    const t = 'big_tx';
    await table(t);
    await install(t, 'log');
    await receiver.reset();
    const daemon = startDaemon(t, 'log');
    await db.query(`INSERT INTO ${t} (amount) VALUES (1)`);
    await until(async () => (await receiver.distinct()) >= 1, 30_000, 'first delivery');
    const started = now();
    await db.query(`INSERT INTO ${t} (amount, note) SELECT g, 'row ' || g FROM generate_series(1, ${SIZE.million}) g`);
    const lsn = (await db.query<{ lsn: string }>(`SELECT pg_current_wal_lsn()::text AS lsn`)).rows[0]!.lsn;
    let peak = 0;
    await until(
      async () => {
        peak = Math.max(peak, peakRssMb(daemon.pid!));
        const r = await db.query<{ ok: boolean }>(`SELECT coalesce(max(end_lsn) >= $1::pg_lsn, false) AS ok FROM adl_big_tx.capture_positions`, [lsn]);
        return r.rows[0]!.ok;
      },
      900_000,
      'the large transaction journaled',
      200,
    );
    peak = Math.max(peak, peakRssMb(daemon.pid!));
    print(`one transaction of ${SIZE.million} rows: journaled in`, (now() - started) / 1000, 's');
    print(`one transaction of ${SIZE.million} rows: daemon peak RSS`, peak, 'MB', `  (target <= 100 MB: ${peak <= 100 ? 'met' : 'MISSED'})`);
    daemon.kill('SIGKILL');
    await exited(daemon);
  }

  await pool.end();
  await db.drop();
  mkdirSync(path.join(root, 'bench', 'results'), { recursive: true });
  const out = path.join(root, 'bench', 'results', `${new Date().toISOString().replace(/[:.]/g, '-')}-log-capture.json`);
  writeFileSync(out, JSON.stringify(results, null, 2));
  console.log(`written ${path.relative(root, out)}`);
} finally {
  await receiver.stop();
  await server.close();
  await sleep(0);
}
