/**
 * `npm run bench`: throughput, latency and memory of the daemon against this
 * machine's own ceilings, measured in the same run, on PostgreSQL and MySQL.
 *
 *   npm run bench                     full run (under 15 minutes)
 *   npm run bench -- --quick          short run (under 2 minutes)
 *   npm run bench -- --db postgres    one database only
 *   npm run bench -- --million-mysql  also drain 1,000,000 on MySQL (long)
 *   npm run bench -- --cpu-prof DIR   write the daemon's CPU profiles to DIR
 *   npm run bench -- --only hot,multirow   some scenarios only (see ONLY)
 *   npm run bench -- --only sinks --sinks webhook,mqtt   the broker sinks' drains, some types only
 *   npm run bench -- --db postgres --only attemptlog   the attempt log's cost: drains with it on and off, alternated
 *   npm run bench -- --baseline DIR   also drain with another build (a checkout of an
 *                                     earlier release, after npm ci && npm run build),
 *                                     on a database of its own, in the same run
 *
 * Prints a table and writes bench/results/<time>-<mode>.json.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import path from 'node:path';
import { shebangNodeFlags } from '../src/util/node-flags.js';
import { HOT_ROW_ID, openMySql, openPostgres, type BenchDatabase, type Family } from './databases.js';
import { cliPath, exited, flag, has, machineBusySeconds, median, now, percentile, root, round, sleep, until } from './lib.js';
import { Daemon, httpCeiling, inScenario, peaks, Receiver, track, waitForDistinct, type DaemonOptions } from './processes.js';
import { SINK_TYPES, sinkDrain, type SinkDrain, type SinkType } from './sinks.js';

const QUICK = has('quick');
const FAMILIES = flag('db', 'postgres,mysql').split(',').filter(Boolean) as Family[];
const PROFILE_DIR = flag('cpu-prof', '');
/** `--only hot,multirow`: run only the scenarios named (ceilings, sustained, drain, multirow, latency, hot, slow, instances, fanout, isolation, sinks, backfill, attemptlog). */
const ONLY = flag('only', '').split(',').filter(Boolean);
/** `--baseline DIR`: a built checkout whose drains the single-destination rows compare against. */
const BASELINE = flag('baseline', '');
/** `--sinks nats,redis`: the sink types the sinks scenario drains (the webhook's figure is the ratios' reference). */
const SINKS = flag('sinks', SINK_TYPES.join(',')).split(',').filter((t): t is SinkType => (SINK_TYPES as readonly string[]).includes(t));
const want = (name: string): boolean => ONLY.length === 0 || ONLY.includes(name);

/** Sizes of each scenario, full and quick. */
const SIZE = QUICK
  ? { clients: 16, ceilingSeconds: 3, ceilingRounds: 1, httpSeconds: 2, sustainedSeconds: 6, drain: 20_000, million: 0, rates: [200, 1000], latencySeconds: 4, slowSeconds: 3, slowCeilingSeconds: 2, fanOut: 20_000, hotUpdates: 10_000, multiRow: 20_000, sinks: 20_000, backfill: 30_000, backfillIdleSeconds: 5 }
  : { clients: 16, ceilingSeconds: 8, ceilingRounds: 3, httpSeconds: 5, sustainedSeconds: 30, drain: 200_000, million: 1_000_000, rates: [100, 200, 1000], latencySeconds: 10, slowSeconds: 8, slowCeilingSeconds: 5, fanOut: 50_000, hotUpdates: 10_000, multiRow: 50_000, sinks: 100_000, backfill: 200_000, backfillIdleSeconds: 10 };

type Row = { family: Family; scenario: string; value: number; unit: string; ratio?: number; ratioOf?: string; target?: string; met?: boolean; detail?: string };
const rows: Row[] = [];
const results: Record<string, Record<string, unknown>> = {};

function record(row: Row): void {
  rows.push(row);
  const ratio = row.ratio === undefined ? '' : `  (${row.ratio.toFixed(2)} × ${row.ratioOf})`;
  const target = row.target ? `  target ${row.target}: ${row.met ? 'met' : 'MISSED'}` : '';
  console.log(`  ${row.scenario.padEnd(38)} ${fmt(row.value).padStart(10)} ${row.unit}${ratio}${target}${row.detail ? `  [${row.detail}]` : ''}`);
}

const fmt = (x: number): string => (Math.abs(x) >= 100 ? Math.round(x).toLocaleString('en-US') : Math.abs(x) >= 10 ? x.toFixed(1) : x.toFixed(2));

/**
 * The daemon runs with the Node.js flags it is deployed with: those of the CLI's first
 * line (the systemd units and deploy/bin repeat them; test/unit/deploy-files.test.ts).
 */
export const DEPLOYED_NODE_FLAGS = shebangNodeFlags(cliPath);

function daemonOptions(extra: DaemonOptions = {}): DaemonOptions {
  const logFile = extra.logLevel === 'info' && !extra.logFile ? path.join(mkdtempSync(path.join(tmpdir(), 'adl-bench-log-')), 'app.log') : extra.logFile;
  return { ...extra, ...(logFile ? { logFile } : {}), nodeFlags: [...DEPLOYED_NODE_FLAGS, ...(PROFILE_DIR ? ['--cpu-prof', '--cpu-prof-dir', PROFILE_DIR] : [])] };
}

/** Starts a daemon and waits until it delivers (one probe change). */
async function startReady(db: BenchDatabase, receiver: Receiver, options: DaemonOptions = {}): Promise<Daemon> {
  await receiver.reset();
  const daemon = await Daemon.start(db, receiver, daemonOptions(options));
  await db.insertOne();
  await waitForDistinct(receiver, 1, 30_000);
  return daemon;
}

/**
 * From the receipt times of a drain: events per second between 10% and 90% of the
 * receipts (start-up and tail excluded), from the first receipt to the last (what a
 * user watching the receiver sees), and per second of the drain.
 */
function rates(times: number[]): { perSecond: number; firstToLast: number; firstToLastSeconds: number; seconds: number[] } {
  const sorted = [...times].sort((a, b) => a - b);
  const lo = sorted[Math.floor(sorted.length * 0.1)]!;
  const hi = sorted[Math.floor(sorted.length * 0.9)]!;
  const first = sorted[0]!;
  const span = (sorted.at(-1)! - first) / 1000;
  const seconds: number[] = [];
  for (const t of sorted) {
    const s = Math.floor((t - first) / 1000);
    seconds[s] = (seconds[s] ?? 0) + 1;
  }
  return { perSecond: (sorted.length * 0.8) / ((hi - lo) / 1000), firstToLast: sorted.length / span, firstToLastSeconds: span, seconds: Array.from(seconds, (n) => n ?? 0) };
}

/** The whole seconds of a drain (its last, partial second left out): median and slowest. */
function secondsSummary(seconds: number[]): { median: number; min: number; minOverMedian: number } {
  const whole = seconds.slice(0, -1);
  if (whole.length === 0) return { median: seconds[0] ?? 0, min: seconds[0] ?? 0, minOverMedian: 1 };
  const med = median(whole);
  const min = Math.min(...whole);
  return { median: med, min, minOverMedian: min / med };
}

interface DrainOptions extends DaemonOptions {
  readonly instances?: number;
  readonly delayMs?: number;
  /** Write the backlog as transactions of this many rows (INSERT … SELECT), instead of the bulk load. */
  readonly transactionRows?: number;
}

/** A committed backlog of `n`, then `instances` daemons drain it; rate and memory. */
async function drain(db: BenchDatabase, receiver: Receiver, n: number, options: DrainOptions = {}) {
  await db.reset();
  if (options.transactionRows) await db.backlogTransactions(n, options.transactionRows);
  else await db.backlog(n);
  await receiver.reset({ record: true, delayMs: options.delayMs ?? 0 });
  const started = now();
  const busyBefore = machineBusySeconds();
  const daemons: Daemon[] = [];
  for (let i = 0; i < (options.instances ?? 1); i++) daemons.push(await Daemon.start(db, receiver, daemonOptions(options)));
  const done = await waitForDistinct(receiver, n, Math.max(120_000, n * 2));
  // Machine CPU per event: the daemon, the database's work for it, and the receiver.
  const cpuPerEventUs = ((machineBusySeconds() - busyBefore) / n) * 1e6;
  const stats = await receiver.ask({ type: 'stats' });
  const r = rates((stats.received ?? []).map(([, at]) => at));
  const rss = daemons.map((d) => {
    const mid = started + (done - started) / 2;
    const first = Math.max(...d.rssBetween(started, mid));
    const second = Math.max(...d.rssBetween(mid, done));
    return { peak: d.peakRssMb(), firstHalfPeak: first, secondHalfPeak: second };
  });
  for (const d of daemons) await d.stop();
  return {
    events: n, cpuPerEventUs, seconds: (done - started) / 1000, perSecond: r.perSecond, firstToLast: r.firstToLast,
    overall: n / ((done - started) / 1000), perSecondOfDrain: r.seconds, rss, duplicates: (stats.count ?? 0) - (stats.distinct ?? 0),
  };
}

async function ceilings(db: BenchDatabase, receiver: Receiver) {
  const plain: number[] = [];
  const watched: number[] = [];
  for (let round = 0; round < SIZE.ceilingRounds; round++) {
    await db.reset();
    plain.push(await db.insertRate('plain', SIZE.clients, SIZE.ceilingSeconds));
    await db.reset();
    watched.push(await db.insertRate('items', SIZE.clients, SIZE.ceilingSeconds));
  }
  const c = { plain: median(plain), watched: median(watched), http: await httpCeiling(receiver, 10, SIZE.httpSeconds) };
  record({ family: db.family, scenario: `capture ceiling, plain table, ${SIZE.clients} writers`, value: c.plain, unit: 'inserts/s' });
  record({
    family: db.family, scenario: `capture ceiling, watched table`, value: c.watched, unit: 'inserts/s',
    ratio: c.plain / c.watched, ratioOf: 'cost', target: 'cost ≤ 1.5×', met: c.plain / c.watched <= 1.5,
  });
  record({ family: db.family, scenario: 'HTTP ceiling, bare undici, 10 connections', value: c.http, unit: 'requests/s' });
  return c;
}

async function sustained(db: BenchDatabase, receiver: Receiver, ceiling: number) {
  await db.reset();
  const daemon = await startReady(db, receiver);
  await receiver.reset();
  const t0 = now();
  const writeRate = await db.insertRate('items', SIZE.clients, SIZE.sustainedSeconds);
  const t1 = now();
  const delivered = await receiver.distinct();
  const backlogAtEnd = await db.pending();
  await until(async () => (await db.pending()) === 0, 300_000, 'the sustained backlog to drain', 100);
  const caughtUp = now();
  const perSecond = delivered / ((t1 - t0) / 1000);
  const peak = daemon.peakRssMb();
  await daemon.stop();
  record({
    family: db.family, scenario: `sustained, ${SIZE.clients} writers ${SIZE.sustainedSeconds} s`, value: perSecond, unit: 'delivered/s',
    ratio: perSecond / ceiling, ratioOf: 'capture ceiling', target: '≥ 0.5×', met: perSecond / ceiling >= 0.5,
    detail: `writers ${Math.round(writeRate)}/s, backlog at end ${backlogAtEnd}, caught up ${round((caughtUp - t1) / 1000, 1)} s after`,
  });
  return { writeRate, deliveredPerSecond: perSecond, ratio: perSecond / ceiling, backlogAtEnd, catchUpSeconds: (caughtUp - t1) / 1000, peakRssMb: peak };
}

async function latency(db: BenchDatabase, receiver: Receiver) {
  await db.reset();
  const daemon = await startReady(db, receiver);
  const out: Record<string, unknown> = {};
  for (const rate of SIZE.rates) {
    await receiver.reset({ record: true });
    const commits = new Map<number, number>();
    const total = rate * SIZE.latencySeconds;
    const writers = Math.max(1, Math.ceil(rate / 250));
    const start = now();
    await Promise.all(
      Array.from({ length: writers }, async (_, w) => {
        for (let i = w; i < total; i += writers) {
          const wait = start + (i * 1000) / rate - now();
          if (wait > 1) await sleep(wait);
          const c = await db.insertOne();
          commits.set(c.id, c.committedAt);
        }
      }),
    );
    await waitForDistinct(receiver, total, 60_000);
    const stats = await receiver.ask({ type: 'stats' });
    const lat = (stats.received ?? []).filter(([id]) => commits.has(id)).map(([id, at]) => at - commits.get(id)!).sort((a, b) => a - b);
    const r = { offered: rate, events: lat.length, p50: percentile(lat, 50), p95: percentile(lat, 95), p99: percentile(lat, 99), max: lat.at(-1)! };
    out[`${rate}`] = r;
    const target = db.family === 'postgres' ? (rate <= 200 ? 10 : rate <= 1000 ? 25 : undefined) : 100 + 25; // MySQL: poll interval 0.1 s + 25 ms
    record({
      family: db.family, scenario: `latency p99 at ${rate} changes/s`, value: r.p99, unit: 'ms',
      ...(target !== undefined ? { target: `≤ ${target} ms`, met: r.p99 <= target } : {}),
      detail: `p50 ${r.p50.toFixed(1)}, p95 ${r.p95.toFixed(1)}, max ${r.max.toFixed(1)} ms`,
    });
  }
  await daemon.stop();
  return out;
}

/**
 * One hot row: `updates` quick UPDATEs of one row, one after another, while other
 * rows change at 50/s. The other rows' commit-to-receipt latency, the hot row's
 * delivery rate (first to last receipt), and whether its changes arrived in order.
 */
async function hotRow(db: BenchDatabase, receiver: Receiver, updates: number) {
  await db.reset();
  const daemon = await startReady(db, receiver);
  await db.insertHotRow();
  await waitForDistinct(receiver, 2, 30_000);
  await receiver.reset({ record: true });
  const commits = new Map<number, number>();
  let writing = true;
  const others = (async () => {
    const start = now();
    for (let i = 0; writing; i++) {
      const wait = start + i * 20 - now();
      if (wait > 1) await sleep(wait);
      const c = await db.insertOne();
      commits.set(c.id, c.committedAt);
    }
  })();
  const t0 = now();
  await db.updateHotRow(updates);
  const written = now();
  await until(async () => {
    const s = await receiver.ask({ type: 'stats' });
    return (s.received ?? []).filter(([id]) => id === HOT_ROW_ID).length >= updates;
  }, 300_000, `${updates} changes of the hot row`, 100);
  writing = false;
  await others;
  await waitForDistinct(receiver, updates + commits.size, 60_000);
  const stats = await receiver.ask({ type: 'stats' });
  await daemon.stop();
  const received = stats.received ?? [];
  const hot = received.filter(([id]) => id === HOT_ROW_ID);
  let outOfOrder = 0;
  for (let i = 1; i < hot.length; i++) if (!(hot[i]![2] > hot[i - 1]![2])) outOfOrder++;
  const lat = received.filter(([id]) => commits.has(id)).map(([id, at]) => at - commits.get(id)!).sort((a, b) => a - b);
  const hotSeconds = (hot.at(-1)![1] - hot[0]![1]) / 1000;
  return {
    updates,
    writeSeconds: (written - t0) / 1000,
    hotPerSecond: hot.length / hotSeconds,
    hotOutOfOrder: outOfOrder,
    others: lat.length,
    othersP50: percentile(lat, 50),
    othersP99: percentile(lat, 99),
    othersMax: lat.at(-1) ?? 0,
  };
}

/**
 * What a user of the original sees: a backlog written as transactions of 1,000 rows
 * while the daemon is stopped, then the daemon started with the original's settings
 * (`poll_interval` 1 and 2, `pool_size` 10, one log line per delivery at `info` to a
 * file, and the same at `warn`), the receiver in its own process. Every second of the
 * drain is kept, so a collapse mid-drain shows.
 */
async function multiRowDrain(db: BenchDatabase, receiver: Receiver) {
  const runs: Array<{ name: string; poll: number; level: 'info' | 'warn' }> = [
    { name: 'info, poll 1 s', poll: 1, level: 'info' },
    { name: 'info, poll 2 s', poll: 2, level: 'info' },
    { name: 'warn, poll 1 s', poll: 1, level: 'warn' },
  ];
  const out: Record<string, unknown> = {};
  for (const run of runs) {
    const d = await drain(db, receiver, SIZE.multiRow, { transactionRows: 1_000, pollInterval: run.poll, logLevel: run.level });
    const secs = secondsSummary(d.perSecondOfDrain);
    record({
      family: db.family, scenario: `multi-row backlog of ${SIZE.multiRow.toLocaleString('en-US')}, ${run.name}`, value: d.firstToLast, unit: 'events/s',
      target: 'no second < ½ median', met: secs.minOverMedian >= 0.5,
      detail: `first to last receipt; 10-90% window ${Math.round(d.perSecond)}/s; seconds: median ${secs.median}, slowest ${secs.min} (${secs.minOverMedian.toFixed(2)}×); ${d.duplicates} duplicates`,
    });
    out[run.name] = { ...d, secondsSummary: secs };
  }
  const info = out['info, poll 1 s'] as { firstToLast: number };
  const warn = out['warn, poll 1 s'] as { firstToLast: number };
  record({
    family: db.family, scenario: 'logging every delivery (info vs warn)', value: info.firstToLast / warn.firstToLast, unit: '× the drain at warn',
    target: '≥ 0.9×', met: info.firstToLast / warn.firstToLast >= 0.9,
  });
  return out;
}

/** Live changes at the latency scenario's lowest rate while a backfill runs. */
const BACKFILL_LIVE_RATE = 100;

/**
 * Live single-row inserts at `rate`/s until `stop()` says so; their ids and commit
 * times. One writer: at 100/s, each insert has 10 ms.
 */
async function liveWrites(db: BenchDatabase, rate: number, stop: () => boolean): Promise<Map<number, number>> {
  const commits = new Map<number, number>();
  const start = now();
  for (let i = 0; !stop(); i++) {
    const wait = start + (i * 1000) / rate - now();
    if (wait > 1) await sleep(wait);
    const c = await db.insertOne();
    commits.set(c.id, c.committedAt);
  }
  return commits;
}

/** Commit-to-receipt latencies of `commits` (the first receipt of each row: a backfill may read a live row again later). */
async function liveLatencies(receiver: Receiver, commits: Map<number, number>): Promise<number[]> {
  const stats = await receiver.ask({ type: 'stats' });
  const first = new Map<number, number>();
  for (const [id, at] of stats.received ?? []) if (commits.has(id) && !first.has(id)) first.set(id, at);
  return [...first].map(([id, at]) => at - commits.get(id)!).sort((a, b) => a - b);
}

/**
 * Backfill: a table of SIZE.backfill rows whose changes were delivered long ago (the
 * journal is empty), a daemon running, and live changes at 100/s. First the live
 * changes' p99 alone, then while `backfill` runs with its defaults (no rate limit, the
 * backlog gate only) and with --rate: the backfill's rows/s, and the live p99 against
 * the idle one (the target: within 2x).
 */
async function backfillScenario(db: BenchDatabase, receiver: Receiver) {
  await db.reset();
  await db.backlog(SIZE.backfill);
  await db.clearJournal();
  const daemon = await startReady(db, receiver);
  const dir = mkdtempSync(path.join(tmpdir(), 'adl-bench-backfill-'));
  const configPath = path.join(dir, 'config.yaml');
  writeFileSync(configPath, `${db.configSections()}webhook:\n  url: "${receiver.url}"\n  timeout: 10\nlogging:\n  level: "warn"\n`);

  await receiver.reset({ record: true });
  const idleEnd = now() + SIZE.backfillIdleSeconds * 1000;
  const idleCommits = await liveWrites(db, BACKFILL_LIVE_RATE, () => now() >= idleEnd);
  await waitForDistinct(receiver, idleCommits.size, 60_000);
  const idle = await liveLatencies(receiver, idleCommits);
  const idleP99 = percentile(idle, 99);
  record({
    family: db.family, scenario: `backfill: live changes at ${BACKFILL_LIVE_RATE}/s alone, p99`, value: idleP99, unit: 'ms',
    detail: `${idle.length} changes, p50 ${percentile(idle, 50).toFixed(1)} ms`,
  });
  const out: Record<string, unknown> = { rows: SIZE.backfill, idle: { p50: percentile(idle, 50), p99: idleP99, events: idle.length } };

  const variants: Array<[string, string[]]> = [
    ['defaults', []],
    ['--rate 2000', ['--rate', '2000']],
    ['--max-backlog 200', ['--max-backlog', '200']],
  ];
  for (const [label, args] of variants) {
    await receiver.reset({ record: true });
    const started = now();
    const child = track(spawn(process.execPath, [db.cli, 'backfill', '--config', configPath, '--table', 'items', ...args], { stdio: ['ignore', 'ignore', 'inherit'] }));
    let finished = 0;
    const exitedAt = exited(child).then(() => (finished = now()));
    const commits = await liveWrites(db, BACKFILL_LIVE_RATE, () => finished !== 0);
    await exitedAt;
    const seconds = (finished - started) / 1000;
    // Every row read, and every live change, delivered.
    const delivered = await waitForDistinct(receiver, SIZE.backfill + commits.size, Math.max(120_000, SIZE.backfill * 2));
    const lat = await liveLatencies(receiver, commits);
    const p99 = percentile(lat, 99);
    record({
      family: db.family, scenario: `backfill of ${SIZE.backfill.toLocaleString('en-US')} rows, ${label}`, value: SIZE.backfill / seconds, unit: 'rows/s',
      detail: `journaled in ${seconds.toFixed(1)} s, all delivered after ${((delivered - started) / 1000).toFixed(1)} s`,
    });
    record({
      family: db.family, scenario: `backfill ${label}: live changes p99`, value: p99, unit: 'ms', ratio: p99 / idleP99, ratioOf: 'alone',
      target: '≤ 2× alone', met: p99 <= 2 * idleP99, detail: `${lat.length} changes, p50 ${percentile(lat, 50).toFixed(1)} ms, max ${lat.at(-1)?.toFixed(1)} ms`,
    });
    out[label] = { seconds, rowsPerSecond: SIZE.backfill / seconds, deliveredSeconds: (delivered - started) / 1000, live: { p50: percentile(lat, 50), p99, events: lat.length } };
    // The next variant reads the table again: a new backfill once this one is done.
  }
  await daemon.stop();
  return out;
}

async function benchDatabase(db: BenchDatabase, receiver: Receiver) {
  console.log(`\n${db.family} (${db.version})`);
  const out: Record<string, unknown> = { version: db.version };
  const firstPeak = peaks.length;
  const c = want('ceilings') || want('sustained') || want('drain') ? await ceilings(db, receiver) : undefined;
  out.ceilings = c;
  if (c && want('sustained')) {
    inScenario('sustained');
    out.sustained = await sustained(db, receiver, c.watched);
  }
  if (c && want('drain')) await drainScenarios(db, receiver, c, out);
  if (want('multirow')) {
    inScenario('multi-row backlog');
    out.multiRow = await multiRowDrain(db, receiver);
  }
  if (want('latency')) {
    inScenario('latency');
    out.latency = await latency(db, receiver);
  }
  if (want('hot')) {
    inScenario('hot row');
    const h = await hotRow(db, receiver, SIZE.hotUpdates);
    record({
      family: db.family, scenario: `hot row: ${SIZE.hotUpdates.toLocaleString('en-US')} updates of one row`, value: h.hotPerSecond, unit: 'events/s',
      target: '≥ 200/s, in order', met: h.hotPerSecond >= 200 && h.hotOutOfOrder === 0,
      detail: `written in ${round(h.writeSeconds, 1)} s, ${h.hotOutOfOrder} out of order`,
    });
    record({
      family: db.family, scenario: 'hot row: other rows at 50/s, latency p99', value: h.othersP99, unit: 'ms',
      target: '≤ 1,000 ms', met: h.othersP99 <= 1000,
      detail: `${h.others} changes, p50 ${h.othersP50.toFixed(1)}, max ${h.othersMax.toFixed(1)} ms`,
    });
    out.hotRow = h;
  }
  if (want('slow')) out.slowReceiver = await slowReceiver(db, receiver);
  if (want('backfill')) {
    inScenario('backfill');
    out.backfill = await backfillScenario(db, receiver);
  }
  if (want('fanout')) {
    inScenario('three destinations');
    out.fanOutDestinations = await threeDestinations(db, receiver);
  }
  if (want('sinks') && db.family === 'postgres') {
    // The brokers do not depend on the database: measured once, on PostgreSQL.
    inScenario('sinks');
    const drains: SinkDrain[] = [];
    for (const type of SINKS) drains.push(await sinkDrain(db, receiver, type, SIZE.sinks, daemonOptions));
    const webhook = drains.find((d) => d.type === 'webhook');
    for (const d of drains) {
      record({
        family: db.family, scenario: `${d.type} sink, backlog of ${d.events.toLocaleString('en-US')}`, value: d.perSecond, unit: 'events/s',
        ...(webhook ? { ratio: d.perSecond / webhook.perSecond, ratioOf: 'webhook' } : {}), detail: `daemon start to last outcome, ${d.seconds.toFixed(1)} s; peak RSS ${Math.round(d.peakRssMb)} MB`,
      });
    }
    out.sinks = drains;
  }
  if (want('isolation')) {
    inScenario('isolation');
    out.isolation = await isolation(db, receiver);
  }
  if (want('attemptlog')) {
    inScenario('attempt log');
    // The console on in both; the attempt log on, off, on, off (same hour, alternated).
    const on1 = await drain(db, receiver, SIZE.drain, { attemptLog: true });
    const off1 = await drain(db, receiver, SIZE.drain, { attemptLog: false });
    const on2 = await drain(db, receiver, SIZE.drain, { attemptLog: true });
    const off2 = await drain(db, receiver, SIZE.drain, { attemptLog: false });
    const on = (on1.perSecond + on2.perSecond) / 2;
    const off = (off1.perSecond + off2.perSecond) / 2;
    record({
      family: db.family, scenario: `attempt log on vs off, drain of ${SIZE.drain.toLocaleString('en-US')}`, value: on, unit: 'events/s',
      ratio: on / off, ratioOf: 'log off', target: '≥ 0.9×', met: on / off >= 0.9,
      detail: `on ${Math.round(on1.perSecond)}, ${Math.round(on2.perSecond)}/s; off ${Math.round(off1.perSecond)}, ${Math.round(off2.perSecond)}/s, alternated`,
    });
    out.attemptLog = { on: [on1, on2], off: [off1, off2] };
  }
  if (want('instances')) {
    inScenario('two instances');
    const one = await drain(db, receiver, SIZE.fanOut);
    const two = await drain(db, receiver, SIZE.fanOut, { instances: 2 });
    record({
      family: db.family, scenario: 'two instances on one database', value: two.perSecond, unit: 'events/s',
      ratio: two.perSecond / one.perSecond, ratioOf: 'one instance', detail: `one instance ${Math.round(one.perSecond)}/s, ${two.duplicates} duplicates`,
    });
    out.fanOut = { one, two };
  }

  const mine = peaks.slice(firstPeak);
  const top = mine.reduce((a, b) => (b.mb > a.mb ? b : a), { scenario: '', mb: 0 });
  const byScenario = new Map<string, number>();
  for (const p of mine) byScenario.set(p.scenario, Math.max(byScenario.get(p.scenario) ?? 0, p.mb));
  record({
    family: db.family, scenario: 'peak RSS, every scenario', value: top.mb, unit: 'MB', target: '≤ 100 MB', met: top.mb <= 100,
    detail: [...byScenario].map(([name, mb]) => `${name} ${Math.round(mb)}`).join(', '),
  });
  out.peakRss = Object.fromEntries(byScenario);
  return out;
}

async function drainScenarios(db: BenchDatabase, receiver: Receiver, c: { watched: number; http: number }, out: Record<string, unknown>) {
  inScenario('drain');
  const d = await drain(db, receiver, SIZE.drain);
  const drainTarget = db.family === 'postgres' ? 5_000 : 2_500;
  record({
    family: db.family, scenario: `backlog drain of ${SIZE.drain.toLocaleString('en-US')}`, value: d.perSecond, unit: 'events/s',
    ratio: d.perSecond / c.http, ratioOf: 'HTTP ceiling', target: `≥ ${drainTarget}/s`, met: d.perSecond >= drainTarget,
    detail: `first to last receipt ${Math.round(d.firstToLast)}/s, overall ${Math.round(d.overall)}/s with start-up, ${d.duplicates} duplicates`,
  });
  record({ family: db.family, scenario: 'peak RSS during that drain', value: d.rss[0]!.peak, unit: 'MB', target: '≤ 100 MB', met: d.rss[0]!.peak <= 100 });
  out.drain = d;
  // How fast writers and delivery together could go on this machine's cores: a writer
  // costs cores / capture ceiling of CPU per change, a delivery what the drain measured.
  const cores = cpus().length;
  const writerUs = (cores / c.watched) * 1e6;
  const bound = cores / ((writerUs + d.cpuPerEventUs) / 1e6);
  record({
    family: db.family, scenario: 'CPU bound on keeping up with writers', value: bound, unit: 'changes/s',
    ratio: bound / c.watched, ratioOf: 'capture ceiling',
    detail: `per change: writer ${Math.round(writerUs)} µs + delivery ${Math.round(d.cpuPerEventUs)} µs of CPU (daemon, database, receiver) on ${cores} cores`,
  });
  out.keepUpBound = { writerUs, deliveryUs: d.cpuPerEventUs, changesPerSecond: bound, ratio: bound / c.watched };

  if (SIZE.million > 0 && (db.family === 'postgres' || has('million-mysql'))) {
    inScenario('drain 1M');
    const m = await drain(db, receiver, SIZE.million);
    const r = m.rss[0]!;
    const flat = r.secondHalfPeak <= r.firstHalfPeak * 1.1 + 5;
    record({
      family: db.family, scenario: `peak RSS draining ${SIZE.million.toLocaleString('en-US')}`, value: r.peak, unit: 'MB',
      target: '≤ 100 MB and flat', met: r.peak <= 100 && flat,
      detail: `first half ${r.firstHalfPeak.toFixed(0)} MB, second half ${r.secondHalfPeak.toFixed(0)} MB, ${Math.round(m.perSecond)} events/s`,
    });
    out.million = m;
  }

  if (BASELINE) await baselineDrains(db, receiver, d, out.million as { perSecond: number } | undefined, out);
}

/**
 * The same drains, one destination, with the build at `--baseline` on a database of
 * its own, right after this build's: the single-destination drain as a ratio of that
 * release's, measured in the same run.
 */
async function baselineDrains(db: BenchDatabase, receiver: Receiver, d: { perSecond: number }, m: { perSecond: number } | undefined, out: Record<string, unknown>) {
  inScenario('baseline drain');
  const cli = path.join(path.resolve(BASELINE), 'dist', 'cli', 'main.js');
  const open = db.family === 'postgres' ? openPostgres : openMySql;
  const base = await open({ name: 'adl_bench_base', cli });
  try {
    // Alternated, this build / baseline / this build / baseline, so neither build always
    // drains first (the first drain after the ceilings was the run's slowest) or last.
    const b = await drain(base, receiver, SIZE.drain);
    const d2 = await drain(db, receiver, SIZE.drain);
    const b2 = await drain(base, receiver, SIZE.drain);
    const ours = [d.perSecond, d2.perSecond];
    const theirs = [b.perSecond, b2.perSecond];
    const mean = (xs: number[]) => xs.reduce((x, y) => x + y, 0) / xs.length;
    const ratio = mean(ours) / mean(theirs);
    record({
      family: db.family, scenario: `drain of ${SIZE.drain.toLocaleString('en-US')}, vs baseline build`, value: mean(ours), unit: 'events/s',
      ratio, ratioOf: 'baseline', target: '≥ 0.9×', met: ratio >= 0.9,
      detail: `this build ${ours.map(Math.round).join(', ')}/s, baseline ${theirs.map(Math.round).join(', ')}/s, alternated (${BASELINE})`,
    });
    const baseline: Record<string, unknown> = { dir: BASELINE, drain: b, drains: [b, b2], ours: [d, d2] };
    if (m) {
      const bm = await drain(base, receiver, SIZE.million);
      record({
        family: db.family, scenario: `drain of ${SIZE.million.toLocaleString('en-US')}, vs baseline build`, value: m.perSecond, unit: 'events/s',
        ratio: m.perSecond / bm.perSecond, ratioOf: 'baseline', target: '≥ 0.9×', met: m.perSecond / bm.perSecond >= 0.9,
        detail: `baseline ${Math.round(bm.perSecond)}/s`,
      });
      baseline.million = bm;
    }
    out.baseline = baseline;
  } finally {
    await base.close();
  }
}

/**
 * One backlog to three destinations (the webhook: section and two more, each with its
 * own receiver), beside one destination in the same run: events/s per destination,
 * and every destination's deliveries together. The writers pay the same trigger
 * either way (one inbox row per change), so the capture ceilings above stand.
 */
async function threeDestinations(db: BenchDatabase, receiver: Receiver) {
  const n = SIZE.fanOut;
  const one = await drain(db, receiver, n);
  const others = [await Receiver.start(), await Receiver.start()];
  try {
    await db.reset();
    await db.backlog(n);
    for (const r of [receiver, ...others]) await r.reset({ record: true });
    const started = now();
    const daemon = await Daemon.start(db, receiver, daemonOptions({ destinations: others.map((r, i) => ({ name: `extra${i + 1}`, url: r.url })) }));
    const done = await Promise.all([receiver, ...others].map((r) => waitForDistinct(r, n, Math.max(120_000, n * 6))));
    const perDestination = await Promise.all(
      [receiver, ...others].map(async (r) => rates(((await r.ask({ type: 'stats' })).received ?? []).map(([, at]) => at)).perSecond),
    );
    await daemon.stop();
    const slowest = Math.min(...perDestination);
    const all = (3 * n) / ((Math.max(...done) - started) / 1000);
    record({
      family: db.family, scenario: `three destinations, ${n.toLocaleString('en-US')} each`, value: slowest, unit: 'events/s per destination',
      ratio: slowest / one.perSecond, ratioOf: 'one destination',
      detail: `per destination ${perDestination.map((x) => Math.round(x)).join(', ')}/s; all deliveries ${Math.round(all)}/s; one destination ${Math.round(one.perSecond)}/s`,
    });
    return { one, perDestination, allDeliveriesPerSecond: all };
  } finally {
    for (const r of others) await r.stop();
  }
}

/**
 * Isolation: two destinations drain one backlog, first both answering, then with the
 * second answering 503 to everything throughout: the first's rate as a ratio of its
 * rate beside a healthy one. The refused destination's events wait in its own queue
 * (retries, then its outage probe) and must not slow the other.
 */
async function isolation(db: BenchDatabase, receiver: Receiver) {
  const n = SIZE.fanOut;
  const other = await Receiver.start();
  try {
    const run = async (otherStatus: number) => {
      await db.reset();
      await db.backlog(n);
      await receiver.reset({ record: true });
      await other.reset({ status: otherStatus });
      const daemon = await Daemon.start(db, receiver, daemonOptions({ destinations: [{ name: 'other', url: other.url }] }));
      await waitForDistinct(receiver, n, Math.max(120_000, n * 6));
      const perSecond = rates(((await receiver.ask({ type: 'stats' })).received ?? []).map(([, at]) => at)).perSecond;
      const otherRequests = (await other.ask({ type: 'count' })).count ?? 0;
      await daemon.stop();
      return { perSecond, otherRequests };
    };
    const healthy = await run(200);
    const refused = await run(503);
    const ratio = refused.perSecond / healthy.perSecond;
    record({
      family: db.family, scenario: 'isolation: beside a destination answering 503', value: refused.perSecond, unit: 'events/s',
      ratio, ratioOf: 'beside a healthy one', target: '≥ 0.9×', met: ratio >= 0.9,
      detail: `beside a healthy one ${Math.round(healthy.perSecond)}/s; the refused one got ${refused.otherRequests} requests`,
    });
    return { healthy, refused, ratio };
  } finally {
    await other.stop();
  }
}

async function slowReceiver(db: BenchDatabase, receiver: Receiver) {
  const slow: Record<string, unknown> = {};
  for (const pool of [10, 100]) {
    const ideal = pool / 0.02;
    // What a bare undici client with as many connections gets from the same slow
    // receiver: the receiver's timers fire late under load, which no client can beat.
    const bare = await httpCeiling(receiver, pool, SIZE.slowCeilingSeconds, 20);
    inScenario(`slow receiver, pool ${pool}`);
    const s = await drain(db, receiver, Math.round(ideal * SIZE.slowSeconds), { poolSize: pool, delayMs: 20 });
    record({
      family: db.family, scenario: `slow receiver (20 ms), pool_size ${pool}`, value: s.perSecond, unit: 'events/s',
      ratio: s.perSecond / ideal, ratioOf: 'pool_size / 20 ms', ...(pool === 100 ? { target: '≥ 0.9×', met: s.perSecond / ideal >= 0.9 } : {}),
      detail: `bare undici, ${pool} connections: ${Math.round(bare)}/s = ${(bare / ideal).toFixed(2)}×; the daemon ${(s.perSecond / bare).toFixed(2)}× of it`,
    });
    slow[`pool_${pool}`] = { ...s, ideal, bareClient: bare };
  }
  return slow;
}

async function main(): Promise<void> {
  const started = Date.now();
  const receiver = await Receiver.start();
  const machine = { cores: cpus().length, cpu: cpus()[0]?.model ?? '', memoryGb: round(totalmem() / 2 ** 30, 1), node: process.version };
  console.log(`app-db-listener benchmark (${QUICK ? 'quick' : 'full'}): ${machine.cores} cores, ${machine.memoryGb} GB, Node ${machine.node}`);
  try {
    for (const family of FAMILIES) {
      const db = family === 'postgres' ? await openPostgres() : await openMySql();
      try {
        results[family] = await benchDatabase(db, receiver);
      } finally {
        await db.close();
      }
    }
  } finally {
    await receiver.stop();
  }
  const multi = (family: Family) => (results[family]?.multiRow as Record<string, { firstToLast: number }> | undefined)?.['info, poll 1 s']?.firstToLast;
  const pgRate = multi('postgres');
  const myRate = multi('mysql');
  if (pgRate && myRate) {
    record({
      family: 'mysql', scenario: 'multi-row drain, MySQL vs PostgreSQL', value: myRate / pgRate, unit: '× PostgreSQL (info, poll 1 s)',
      target: '≥ 0.7×', met: myRate / pgRate >= 0.7, detail: `${Math.round(myRate)} vs ${Math.round(pgRate)} events/s, same run`,
    });
  }
  const minutes = (Date.now() - started) / 60_000;
  const missed = rows.filter((r) => r.met === false);
  console.log(`\n${rows.filter((r) => r.met !== undefined).length - missed.length} targets met, ${missed.length} missed; ${minutes.toFixed(1)} minutes`);
  const dir = path.join(root, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${new Date().toISOString().replace(/[:.]/g, '-')}-${QUICK ? 'quick' : 'full'}.json`);
  writeFileSync(file, JSON.stringify({ mode: QUICK ? 'quick' : 'full', machine, minutes: round(minutes, 1), rows, results }, null, 2) + '\n');
  console.log(`results: ${path.relative(process.cwd(), file)}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
