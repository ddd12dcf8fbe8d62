/**
 * A quick MySQL-mode measurement: the rate of draining a backlog of committed
 * changes, against the real MariaDB/MySQL, with the receiver in its own process.
 *   npx tsx bench/quick-mysql.ts [--drain N] [--pool 10]
 * Needs `npm run build` (it runs the built CLI).
 */
import { fork, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import mysql from 'mysql2/promise';
import { ask, flag, peakRssMb, type ReceiverMessage } from './lib.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DRAIN = Number(flag('drain', '30000'));
const POOL = Number(flag('pool', '10'));
const DB = 'adl_bench_quick_mysql';

async function main() {
  const admin = await mysql.createConnection({ host: '127.0.0.1', user: 'root', password: '' });
  await admin.query(`DROP DATABASE IF EXISTS ${DB}`);
  await admin.query(`CREATE DATABASE ${DB}`);
  await admin.query(`CREATE TABLE ${DB}.items (id BIGINT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(50), amount DECIMAL(12,2))`);
  const receiver = fork(path.join(root, 'bench', 'receiver.ts'), { execArgv: ['--import', 'tsx'] });
  const ready = await new Promise<ReceiverMessage>((resolve) => receiver.once('message', resolve));
  const dir = mkdtempSync(path.join(tmpdir(), 'adl-bench-mysql-'));
  const configPath = path.join(dir, 'config.yaml');
  writeFileSync(
    configPath,
    `database:\n  type: "mysql"\n  host: "127.0.0.1"\n  port: 3306\n  user: "root"\n  password: ""\n  database: "${DB}"\n  table: "items"\n` +
      `listener:\n  poll_interval: 0.2\nwebhook:\n  url: "http://127.0.0.1:${ready.port}/hook"\n  timeout: 10\n` +
      `logging:\n  level: "warn"\nworker:\n  pool_size: ${POOL}\n`,
  );
  const cli = path.join(root, 'dist', 'cli', 'main.js');
  await new Promise((resolve) => spawn(process.execPath, [cli, 'install', '--config', configPath], { stdio: 'inherit' }).on('exit', resolve));
  // The backlog, committed with the daemon stopped (the triggers fill the journal).
  for (let done = 0; done < DRAIN; done += 1000) {
    const n = Math.min(1000, DRAIN - done);
    await admin.query(`INSERT INTO ${DB}.items (name, amount) VALUES ${Array.from({ length: n }, () => "('drain', 12.50)").join(',')}`);
  }
  const t0 = performance.now();
  const daemon = spawn(process.execPath, [cli, 'run', '--config', configPath], { stdio: ['ignore', 'inherit', 'inherit'] });
  for (;;) {
    if (((await ask(receiver, 'count')).count ?? 0) >= DRAIN) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const secs = (performance.now() - t0) / 1000;
  const result = { events: DRAIN, seconds: +secs.toFixed(2), events_per_s: Math.round(DRAIN / secs), peak_rss_mb: +peakRssMb(daemon.pid!).toFixed(1) };
  console.log(JSON.stringify({ mysql_drain: result }));
  const exited = new Promise((r) => daemon.once('exit', r));
  daemon.kill('SIGTERM');
  await exited;
  receiver.send({ type: 'stop' });
  await admin.query(`DROP DATABASE IF EXISTS ${DB}`);
  await admin.end();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
