/**
 * `npx tsx bench/log-capture.ts [--quick] [--db postgres|mysql]`: trigger capture
 * against log capture (listener.capture: log), on PostgreSQL (a private server with
 * wal_level = logical) and on MariaDB (a private mariadbd with a ROW binary log, full
 * row images and column names), the same settings for every mode of a database, so
 * the figures compare:
 *
 * - writer cost: single-row INSERTs per second of 16 writers on a plain table
 *   (none), with the capture trigger, and with log capture installed (PostgreSQL:
 *   publication, REPLICA IDENTITY FULL, slot; MariaDB: the triggers dropped, the
 *   binlog position stored), no daemon running;
 * - sustained delivery: events per second delivered while 16 writers run at full
 *   speed, as a ratio of the plain-table ceiling (target >= 0.5x with log capture);
 *   one event per request, then with log capture also batches of up to 100 events;
 * - drain: a backlog of changes committed while no daemon ran, delivered per second;
 * - one transaction of 1,000,000 rows: the daemon's peak RSS until it is journaled
 *   (target <= 100 MB).
 *
 * `--db` takes postgres, mysql or both (comma-separated; default both); `--only` some of
 * the scenarios writer, sustained, drain, large (comma-separated; default all; sustained
 * alone measures the plain-table ceiling once for its ratio); BENCH_DAEMON_FLAGS adds
 * Node.js flags to the daemon's (a CPU profile of each scenario). Prints the
 * figures and writes bench/results/<time>-log-capture.json. Run on an idle machine:
 * the figures are ratios measured in the same run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import type mysql from 'mysql2/promise';
import pg from 'pg';
import { createLogicalTestDatabase, startLogicalPostgres } from '../test/support/logical-postgres.js';
import { address, startBinlogMariaDb } from '../test/support/binlog-mariadb.js';
import { createMySqlTestDatabase } from '../test/support/mysql.js';
import { binlogStatus, type BinlogPosition } from '../src/capture/mysql/binlog/settings.js';
import { comparePositions } from '../src/capture/mysql/binlog/reader.js';
import { cliPath, exited, flag, has, median, now, peakRssMb, root, round, sleep, until } from './lib.js';
import { Receiver, track } from './processes.js';
import { shebangNodeFlags } from '../src/util/node-flags.js';

/** The daemon runs with the CLI's own Node.js flags, and BENCH_DAEMON_FLAGS (e.g. --cpu-prof --cpu-prof-dir=DIR). */
const DAEMON_NODE_FLAGS = [...shebangNodeFlags(cliPath), ...(process.env.BENCH_DAEMON_FLAGS ?? '').split(' ').filter(Boolean)];

const QUICK = has('quick');
const SIZE = QUICK ? { seconds: 4, drain: 20_000, million: 200_000 } : { seconds: 15, drain: 100_000, million: 1_000_000 };
const WRITERS = 16;
type Family = 'postgres' | 'mysql';
const FAMILIES = flag('db', 'postgres,mysql')
  .split(',')
  .filter((f): f is Family => f === 'postgres' || f === 'mysql');
if (FAMILIES.length === 0) throw new Error('--db takes postgres, mysql or both (postgres,mysql)');
const SCENARIOS = ['writer', 'sustained', 'drain', 'large'] as const;
const ONLY = new Set(flag('only', SCENARIOS.join(',')).split(','));
if (![...ONLY].every((s) => (SCENARIOS as readonly string[]).includes(s))) throw new Error(`--only takes some of ${SCENARIOS.join(', ')} (comma-separated)`);

type Capture = 'none' | 'trigger' | 'log';
type Captured = Exclude<Capture, 'none'>;
const results: Record<string, unknown> = { quick: QUICK, started: new Date().toISOString(), loadAverage: loadavg().map((l) => round(l, 2)) };

/** One single-row INSERT after another on a connection of its own. */
interface Writer {
  insert(): Promise<void>;
  close(): Promise<void>;
}

/** What the scenarios need of a database: the rest is the same for both. */
interface Target {
  readonly title: string;
  readonly version: string;
  /** The `database:` section of a config watching `table`. */
  databaseSection(table: string): string;
  createTable(name: string): Promise<void>;
  writer(table: string): Promise<Writer>;
  /** One row, in a transaction of its own. */
  insertOne(table: string): Promise<void>;
  /** `n` rows in one transaction. */
  insertMany(table: string, n: number): Promise<void>;
  /** After a transaction committed: true once the daemon's journal covers it. */
  journaledCheck(table: string): Promise<() => Promise<boolean>>;
  /** Frees what log capture keeps for tables no daemon reads any more (slots keep WAL). */
  release(tablePrefix: string | undefined): Promise<void>;
  close(): Promise<void>;
}

async function postgresTarget(): Promise<Target> {
  const server = await startLogicalPostgres({ shared_buffers: '256MB', max_wal_size: '2GB' });
  try {
    const db = await createLogicalTestDatabase(server, 'bench_logcap');
    const pool = new pg.Pool({ connectionString: db.url, max: WRITERS + 4 });
    const version = (await db.query<{ v: string }>('SELECT version() AS v')).rows[0]!.v.split(' on ')[0]!;
    return {
      title: 'PostgreSQL private server, wal_level = logical',
      version,
      databaseSection: (table) => `database:\n  url: ${JSON.stringify(db.url)}\n  table: ${table}\n`,
      async createTable(name) {
        await db.query(`CREATE TABLE ${name} (id bigserial PRIMARY KEY, amount numeric(12,2), note text, at timestamptz DEFAULT now())`);
      },
      async writer(table) {
        const c = await pool.connect();
        return {
          insert: async () => {
            await c.query({ name: `ins_${table}`, text: `INSERT INTO ${table} (amount, note) VALUES ($1, $2)`, values: ['12.50', 'bench'] });
          },
          close: async () => c.release(),
        };
      },
      async insertOne(table) {
        await db.query(`INSERT INTO ${table} (amount) VALUES (1)`);
      },
      async insertMany(table, n) {
        await db.query(`INSERT INTO ${table} (amount, note) SELECT g, 'row ' || g FROM generate_series(1, ${n}) g`);
      },
      async journaledCheck(table) {
        const lsn = (await db.query<{ lsn: string }>(`SELECT pg_current_wal_lsn()::text AS lsn`)).rows[0]!.lsn;
        return async () => {
          const r = await db.query<{ ok: boolean }>(`SELECT coalesce(max(end_lsn) >= $1::pg_lsn, false) AS ok FROM adl_${table}.capture_positions`, [lsn]);
          return r.rows[0]!.ok;
        };
      },
      async release(prefix) {
        await db.query(
          `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE NOT active${prefix ? ` AND slot_name LIKE 'adl_${prefix}%'` : ''}`,
        );
      },
      async close() {
        // A killed daemon's walsender holds its slot until the server sees the connection gone.
        await until(
          async () => (await db.query(`SELECT 1 FROM pg_replication_slots WHERE database = current_database() AND active`)).rowCount === 0,
          30_000,
          'the slots released',
          200,
        ).catch(() => undefined);
        await pool.end();
        await db.drop();
        await server.close();
      },
    };
  } catch (err) {
    await server.close();
    throw err;
  }
}


async function mysqlTarget(): Promise<Target> {
  // The test servers' 64 MB buffer pool and 16 MB redo log would bound the large
  // transaction and the backlogs by I/O: larger, the same for every mode.
  let lastGtid: string | undefined;
  const server = await startBinlogMariaDb({ 'innodb-buffer-pool-size': '512M', 'innodb-log-file-size': '256M', 'max-binlog-size': '256M' });
  try {
    const db = await createMySqlTestDatabase('bench_logcap', address(server));
    const version = String((await db.query<{ v: string }>('SELECT VERSION() AS v'))[0]!.v);
    return {
      title: 'MariaDB private server, log_bin, binlog_format = ROW, binlog_row_image = FULL, binlog_row_metadata = FULL',
      version,
      databaseSection: (table) =>
        `database:\n  type: mysql\n  host: ${JSON.stringify(server.host)}\n  port: ${server.port}\n  user: root\n  password: ""\n` +
        `  database: ${JSON.stringify(db.name)}\n  table: ${table}\n`,
      async createTable(name) {
        await db.exec(`CREATE TABLE ${name} (id BIGINT AUTO_INCREMENT PRIMARY KEY, amount DECIMAL(12,2), note TEXT, at TIMESTAMP(6) DEFAULT CURRENT_TIMESTAMP(6))`);
      },
      async writer(table) {
        const c: mysql.Connection = await db.connect();
        const sql = `INSERT INTO ${table} (amount, note) VALUES (?, ?)`;
        return {
          insert: async () => {
            await c.execute(sql, ['12.50', 'bench']);
          },
          close: () => c.end(),
        };
      },
      async insertOne(table) {
        await db.exec(`INSERT INTO ${table} (amount) VALUES (1)`);
      },
      async insertMany(table, n) {
        // MariaDB's sequence engine: one statement, one transaction; its GTID says when it is journaled.
        const c = await db.connect();
        try {
          await c.query(`INSERT INTO ${table} (amount, note) SELECT seq, CONCAT('row ', seq) FROM seq_1_to_${n}`);
          const [rows] = await c.query<mysql.RowDataPacket[]>('SELECT @@last_gtid AS g');
          lastGtid = String(rows[0]!.g);
        } finally {
          await c.end();
        }
      },
      async journaledCheck(table) {
        const c = await db.pool.getConnection();
        let end: BinlogPosition;
        try {
          end = await binlogStatus(c);
        } finally {
          c.release();
        }
        // The journal's own writes after the transaction are not read back (skip_replication),
        // so the stored position stops at the transaction's end: its GTID tells, or a later file.
        const gtid = lastGtid;
        return async () => {
          const rows = await db.query<{ f: string; p: number | string; g: string | null }>(`SELECT binlog_file AS f, binlog_pos AS p, gtid AS g FROM adl_${table}_capture_positions`);
          return rows.some((r) => comparePositions({ file: String(r.f), position: Number(r.p) }, end) >= 0 || (gtid !== undefined && r.g === gtid));
        };
      },
      // The binary log keeps nothing for its readers.
      release: async () => undefined,
      async close() {
        await db.drop();
        await server.close();
      },
    };
  } catch (err) {
    await server.close();
    throw err;
  }
}

async function bench(target: Target, receiver: Receiver): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = { version: target.version };
  const print = (name: string, value: number, unit: string, extra = ''): void => {
    console.log(`  ${name.padEnd(44)} ${String(round(value, value < 10 ? 2 : 0)).padStart(10)} ${unit}${extra}`);
    out[name] = value;
  };

  /** `batched`: one destination that sends up to 100 events per request instead of the webhook: section's one. */
  const configFor = (table: string, capture: Captured, batched = false): string => {
    const dir = mkdtempSync(path.join(tmpdir(), 'adl-bench-logcap-'));
    const file = path.join(dir, 'config.yaml');
    const destination = batched
      ? `destinations:\n  - name: batched\n    url: "${receiver.url}"\n    timeout: 10\n    batch: { max_events: 100, max_wait: 0.05 }\n`
      : `webhook:\n  url: "${receiver.url}"\n  timeout: 10\n`;
    writeFileSync(
      file,
      target.databaseSection(table) +
        `listener:\n  capture: ${capture}\n  schema: adl_${table}\n  poll_interval: 0.5\n` +
        `${destination}logging:\n  level: "warn"\nworker:\n  pool_size: 20\nhttp:\n  listen: "off"\n`,
    );
    return file;
  };
  const install = async (table: string, capture: Captured) => {
    const child = spawn(process.execPath, [cliPath, 'install', '--config', configFor(table, capture)], { stdio: ['ignore', 'ignore', 'inherit'] });
    await exited(child);
    if (child.exitCode !== 0) throw new Error(`install of ${table} (${capture}) exited ${child.exitCode}`);
  };
  const startDaemon = (table: string, capture: Captured, batched = false): ChildProcess =>
    track(spawn(process.execPath, [...DAEMON_NODE_FLAGS, cliPath, 'run', '--config', configFor(table, capture, batched)], { stdio: ['ignore', 'ignore', 'inherit'] }));
  const stopDaemon = async (child: ChildProcess) => {
    child.kill('SIGTERM');
    await exited(child);
  };

  /** 16 writers, single-row autocommit INSERTs, for `seconds`: inserts per second. */
  const write = async (table: string, seconds: number): Promise<number> => {
    let n = 0;
    const writers = await Promise.all(Array.from({ length: WRITERS }, () => target.writer(table)));
    const end = now() + seconds * 1000;
    try {
      await Promise.all(
        writers.map(async (w) => {
          while (now() < end) {
            await w.insert();
            n++;
          }
        }),
      );
    } finally {
      await Promise.all(writers.map((w) => w.close()));
    }
    return n / seconds;
  };

  console.log(`log capture bench (${QUICK ? 'quick' : 'full'}), ${target.title}: ${target.version}`);

  // Writer cost, no daemon running: three rounds, the modes alternating (a busy
  // machine's noise spreads over all three), the median of each.
  // (--only sustained: the plain table once, for the ratio.)
  const modes = ONLY.has('writer') ? (['none', 'trigger', 'log'] as const) : ONLY.has('sustained') ? (['none'] as const) : [];
  const samples: Record<Capture, number[]> = { none: [], trigger: [], log: [] };
  for (const capture of modes) {
    await target.createTable(`w_${capture}`);
    if (capture !== 'none') await install(`w_${capture}`, capture);
    await write(`w_${capture}`, 1); // warm-up
  }
  const rounds = ONLY.has('writer') ? 3 : ONLY.has('sustained') ? 1 : 0;
  for (let round = 0; round < rounds; round++) {
    for (const capture of modes) samples[capture].push(await write(`w_${capture}`, SIZE.seconds));
  }
  out.writerSamples = samples;
  const rates: Record<Capture, number> = { none: median(samples.none), trigger: median(samples.trigger), log: median(samples.log) };
  for (const capture of modes) {
    print(`writer: 16 writers, ${capture}`, rates[capture], 'inserts/s', capture === 'none' ? '' : `  (${(rates.none / rates[capture]).toFixed(2)}x the cost of none)`);
  }
  // PostgreSQL: the unread slots of the writer tables keep WAL: drop them now.
  await target.release(undefined);

  // Sustained delivery while 16 writers run at full speed: one event per request (the
  // webhook: section), then, with log capture, batches of up to 100 (a destination's batch:).
  const sustained = [
    { capture: 'trigger', batched: false },
    { capture: 'log', batched: false },
    { capture: 'log', batched: true },
  ] as const;
  for (const { capture, batched } of ONLY.has('sustained') ? sustained : []) {
    const t = batched ? `s_${capture}_batched` : `s_${capture}`;
    const label = batched ? `${capture}, batches of 100` : capture;
    await target.createTable(t);
    await install(t, capture);
    await receiver.reset();
    const daemon = startDaemon(t, capture, batched);
    await target.insertOne(t);
    await until(async () => (await receiver.distinct()) >= 1, 30_000, 'first delivery');
    const before = await receiver.distinct();
    const started = now();
    const writeRate = await write(t, SIZE.seconds);
    const delivered = ((await receiver.distinct()) - before) / ((now() - started) / 1000);
    print(`sustained: delivered while writing, ${label}`, delivered, 'events/s', `  (${(delivered / rates.none).toFixed(2)}x the plain-table ceiling; writers ${Math.round(writeRate)}/s)`);
    out[`sustained: writers, ${label}`] = writeRate;
    await stopDaemon(daemon);
    if (capture === 'log') await target.release(t);
  }

  // Drain of a backlog committed while no daemon ran.
  for (const capture of ONLY.has('drain') ? (['trigger', 'log'] as const) : []) {
    const t = `d_${capture}`;
    await target.createTable(t);
    await install(t, capture);
    await target.insertMany(t, SIZE.drain);
    await receiver.reset();
    const started = now();
    const daemon = startDaemon(t, capture);
    await until(async () => (await receiver.distinct()) >= SIZE.drain, 600_000, 'drain', 100);
    print(`drain ${SIZE.drain}: ${capture}`, SIZE.drain / ((now() - started) / 1000), 'events/s', '  (from the daemon start)');
    await stopDaemon(daemon);
    if (capture === 'log') await target.release('d_log');
  }

  // One large transaction: peak RSS until it is in the journal.
  if (ONLY.has('large')) {
    const t = 'big_tx';
    await target.createTable(t);
    await install(t, 'log');
    await receiver.reset();
    const daemon = startDaemon(t, 'log');
    await target.insertOne(t);
    await until(async () => (await receiver.distinct()) >= 1, 30_000, 'first delivery');
    // The daemon's own baseline: its peak so far, started and having delivered one event.
    await sleep(1_000);
    const before = peakRssMb(daemon.pid!);
    const started = now();
    await target.insertMany(t, SIZE.million);
    const committed = now();
    const journaled = await target.journaledCheck(t);
    let peak = 0;
    await until(
      async () => {
        peak = Math.max(peak, peakRssMb(daemon.pid!));
        return journaled();
      },
      900_000,
      'the large transaction journaled',
      200,
    );
    peak = Math.max(peak, peakRssMb(daemon.pid!));
    out[`one transaction of ${SIZE.million} rows: committed in`] = (committed - started) / 1000;
    print(`one transaction of ${SIZE.million} rows: journaled in`, (now() - started) / 1000, 's', `  (from the statement's start; it committed in ${((committed - started) / 1000).toFixed(1)} s)`);
    print(`one transaction of ${SIZE.million} rows: daemon peak RSS`, peak, 'MB', `  (target <= 100 MB: ${peak <= 100 ? 'met' : 'MISSED'}; ${before.toFixed(0)} MB before the transaction)`);
    out[`one transaction of ${SIZE.million} rows: daemon peak RSS before it`] = before;
    daemon.kill('SIGKILL');
    await exited(daemon);
  }
  return out;
}

const receiver = await Receiver.start();
try {
  mkdirSync(path.join(root, 'bench', 'results'), { recursive: true });
  const out = path.join(root, 'bench', 'results', `${new Date().toISOString().replace(/[:.]/g, '-')}-log-capture.json`);
  for (const family of FAMILIES) {
    const target = family === 'postgres' ? await postgresTarget() : await mysqlTarget();
    try {
      results[family] = await bench(target, receiver);
    } finally {
      await target.close().catch((err: unknown) => console.warn(`  (cleaning up ${family}: ${String(err)})`));
    }
    // Written after each database: a later failure keeps what was measured.
    results.loadAverageAfter = loadavg().map((l) => round(l, 2));
    writeFileSync(out, JSON.stringify(results, null, 2));
  }
  console.log(`written ${path.relative(root, out)}`);
} finally {
  await receiver.stop();
  await sleep(0);
}
