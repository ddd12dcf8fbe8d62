/**
 * A quick benchmark: latency at steady offered loads and the rate of draining a
 * backlog, against the real PostgreSQL, with the receiver in its own process.
 *   npx tsx bench/quick.ts [--drain N] [--rates 200,1000] [--seconds S]
 * Needs `npm run build` (it runs the built CLI).
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { ask, flag, peakRssMb, type ReceiverMessage } from './lib.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DRAIN = Number(flag('drain', '50000'));
const RATES = flag('rates', '200,1000').split(',').filter(Boolean).map(Number);
const SECONDS = Number(flag('seconds', '10'));
const POOL = Number(flag('pool', '10'));
const DB = 'adl_bench_quick';
const PROFILE_DIR = flag('cpu-prof', '');
const now = () => performance.timeOrigin + performance.now();

async function until(fn: () => Promise<boolean>, timeoutMs: number, what: string) {
  const end = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function main() {
  const admin = new pg.Client({ host: '127.0.0.1', user: 'postgres', database: 'postgres' });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${DB}`);
  await admin.end();
  const pool = new pg.Pool({ host: '127.0.0.1', user: 'postgres', database: DB, max: 8 });
  await pool.query(`CREATE TABLE items (id bigserial PRIMARY KEY, name text, amount numeric(12,2))`);

  const receiver = fork(path.join(root, 'bench', 'receiver.ts'), { execArgv: ['--import', 'tsx'] });
  const ready = await new Promise<ReceiverMessage>((resolve) => receiver.once('message', resolve));
  const dir = mkdtempSync(path.join(tmpdir(), 'adl-bench-'));
  const configPath = path.join(dir, 'config.yaml');
  writeFileSync(
    configPath,
    `database:\n  url: "postgres://postgres@127.0.0.1:5432/${DB}"\n  table: "items"\n` +
      `webhook:\n  url: "http://127.0.0.1:${ready.port}/hook"\n  timeout: 10\n` +
      `logging:\n  level: "warn"\nworker:\n  pool_size: ${POOL}\n`,
  );
  let daemon: ChildProcess | undefined;
  const startDaemon = async () => {
    daemon = spawn(process.execPath, [...(PROFILE_DIR ? ['--cpu-prof', '--cpu-prof-dir', PROFILE_DIR] : []), path.join(root, 'dist', 'cli', 'main.js'), 'run', '--config', configPath], { stdio: ['ignore', 'inherit', 'inherit'] });
    await until(async () => (await pool.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'app-db-listener:listen'`)).rows[0].n > 0, 20_000, 'daemon start');
  };
  const stopDaemon = async () => {
    const d = daemon!;
    const exited = new Promise((r) => d.once('exit', r));
    d.kill('SIGTERM');
    await exited;
  };
  const received = async () => (await ask(receiver, 'count')).count ?? 0;

  const results: Record<string, unknown> = {};
  await startDaemon();
  for (const rate of RATES) {
    await ask(receiver, 'reset');
    const commits = new Map<number, number>();
    const total = rate * SECONDS;
    const writers = Math.max(1, Math.ceil(rate / 250));
    const start = now();
    await Promise.all(
      Array.from({ length: writers }, async (_, w) => {
        for (let i = w; i < total; i += writers) {
          const due = start + (i * 1000) / rate;
          const wait = due - now();
          if (wait > 1) await new Promise((r) => setTimeout(r, wait));
          const r = await pool.query<{ id: string }>(`INSERT INTO items (name, amount) VALUES ('x', 12.50) RETURNING id`);
          commits.set(Number(r.rows[0]!.id), now());
        }
      }),
    );
    await until(async () => (await received()) >= total, 60_000, `delivery of ${total} events`);
    const stats = await ask(receiver, 'stats');
    const lat = (stats.received ?? []).map(([id, at]) => at - (commits.get(id) ?? at)).sort((a, b) => a - b);
    results[`latency_${rate}`] = {
      offered_per_s: rate,
      events: lat.length,
      p50_ms: +percentile(lat, 50).toFixed(2),
      p95_ms: +percentile(lat, 95).toFixed(2),
      p99_ms: +percentile(lat, 99).toFixed(2),
      max_ms: +lat[lat.length - 1]!.toFixed(2),
    };
    console.log(`latency @${rate}/s`, results[`latency_${rate}`]);
  }
  await stopDaemon();

  await ask(receiver, 'reset');
  await pool.query(`INSERT INTO items (name, amount) SELECT 'drain', 12.50 FROM generate_series(1, ${DRAIN})`);
  const t0 = now();
  await startDaemon();
  await until(async () => (await received()) >= DRAIN, 600_000, `drain of ${DRAIN}`);
  const secs = (now() - t0) / 1000;
  results.drain = { events: DRAIN, seconds: +secs.toFixed(2), events_per_s: Math.round(DRAIN / secs), peak_rss_mb: +peakRssMb(daemon!.pid!).toFixed(1) };
  console.log('drain', results.drain);
  await stopDaemon();
  receiver.send({ type: 'stop' });
  await pool.end();
  console.log(JSON.stringify(results));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
