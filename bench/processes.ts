/**
 * The processes a benchmark scenario runs: the receiver (its own process, so its
 * CPU is not the daemon's) and the daemon (the built CLI, as an operator runs it).
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Pool } from 'undici';
import type { BenchDatabase } from './databases.js';
import { exited, now, peakRssMb, root, rssMb, sleep, until } from './lib.js';
import type { ReceiverMessage, ReceiverRequest } from './receiver.js';

/** Every child this run started: none may outlive it, or it would keep claiming events of the next run. */
const children = new Set<ChildProcess>();
export function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}
process.once('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => process.exit(130));
}

export class Receiver {
  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
  ) {}

  static async start(): Promise<Receiver> {
    const child = track(fork(path.join(root, 'bench', 'receiver.ts'), { execArgv: ['--import', 'tsx'] }));
    const ready = await new Promise<ReceiverMessage>((resolve) => child.once('message', resolve));
    return new Receiver(child, ready.port!);
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/hook`;
  }

  ask(request: ReceiverRequest): Promise<ReceiverMessage> {
    return new Promise((resolve) => {
      const on = (m: ReceiverMessage) => {
        if (m.type !== request.type) return;
        this.child.off('message', on);
        resolve(m);
      };
      this.child.on('message', on);
      this.child.send(request);
    });
  }

  async reset(options: { delayMs?: number; record?: boolean; status?: number } = {}): Promise<void> {
    await this.ask({ type: 'reset', ...options });
  }

  /** Distinct event ids received since the last reset. */
  async distinct(): Promise<number> {
    return (await this.ask({ type: 'count' })).distinct ?? 0;
  }

  async stop(): Promise<void> {
    this.child.send({ type: 'stop' });
    await exited(this.child);
  }
}

/** Every daemon's peak resident memory, with the scenario it ran in (see `inScenario`). */
export const peaks: Array<{ scenario: string; mb: number }> = [];
let scenario = '';
/** Names the scenario the daemons started from now on belong to. */
export function inScenario(name: string): void {
  scenario = name;
}

export interface DaemonOptions {
  readonly poolSize?: number;
  /** listener.poll_interval in seconds (default: the database's bench default, see BenchDatabase). */
  readonly pollInterval?: number;
  /** logging.level (default warn) and logging.file (default: standard output, discarded). */
  readonly logLevel?: 'warn' | 'info';
  readonly logFile?: string;
  /** Extra Node.js flags (e.g. --cpu-prof). */
  readonly nodeFlags?: readonly string[];
  /** More destinations beside the webhook: section's (`destinations:`), each to its own receiver. */
  readonly destinations?: ReadonlyArray<{ readonly name: string; readonly url: string }>;
  /** Instead of the webhook: section's receiver: this one destination, as YAML lines of a `destinations:` entry. */
  readonly onlyDestination?: string;
  /**
   * The admin server with the web console on a free loopback port, with the attempt
   * log on (true) or off (false); undefined: no admin server (http.listen off).
   */
  readonly attemptLog?: boolean;
}

/** One daemon process; samples its resident memory every 250 ms while it runs. */
export class Daemon {
  private samples: Array<{ at: number; mb: number }> = [];
  private sampler?: NodeJS.Timeout;
  private lastPeak = NaN;

  private readonly scenario = scenario;

  private constructor(private readonly child: ChildProcess) {
    this.sampler = setInterval(() => {
      const mb = rssMb(this.pid);
      if (Number.isFinite(mb)) this.samples.push({ at: now(), mb });
      this.lastPeak = peakRssMb(this.pid);
    }, 250);
  }

  static async start(db: BenchDatabase, receiver: Receiver, options: DaemonOptions = {}): Promise<Daemon> {
    const dir = mkdtempSync(path.join(tmpdir(), 'adl-bench-daemon-'));
    const configPath = path.join(dir, 'config.yaml');
    writeFileSync(
      configPath,
      db.configSections() +
        `listener:\n  poll_interval: ${options.pollInterval ?? db.pollInterval}\n` +
        (options.onlyDestination ? `destinations:\n${options.onlyDestination}` : `webhook:\n  url: "${receiver.url}"\n  timeout: 10\n`) +
        `logging:\n  level: "${options.logLevel ?? 'warn'}"\n${options.logFile ? `  file: ${JSON.stringify(options.logFile)}\n` : ''}` +
        `worker:\n  pool_size: ${options.poolSize ?? 10}\n` +
        (options.attemptLog === undefined ? 'http:\n  listen: "off"\n' : `http:\n  listen: "127.0.0.1:0"\n  attempt_log: ${options.attemptLog}\n`) +
        (options.destinations?.length
          ? `destinations:\n${options.destinations.map((d) => `  - name: ${d.name}\n    url: "${d.url}"\n    timeout: 10\n`).join('')}`
          : ''),
    );
    const child = track(spawn(process.execPath, [...(options.nodeFlags ?? []), db.cli, 'run', '--config', configPath], {
      stdio: ['ignore', process.env.BENCH_DAEMON_OUT ? 'inherit' : 'ignore', 'inherit'],
    }));
    return new Daemon(child);
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Peak resident memory so far, MB. */
  peakRssMb(): number {
    const peak = peakRssMb(this.pid);
    return Number.isFinite(peak) ? peak : this.lastPeak;
  }

  /** Resident memory samples taken between two instants. */
  rssBetween(from: number, to: number): number[] {
    return this.samples.filter((s) => s.at >= from && s.at <= to).map((s) => s.mb);
  }

  async stop(): Promise<void> {
    clearInterval(this.sampler);
    this.lastPeak = peakRssMb(this.pid);
    peaks.push({ scenario: this.scenario, mb: this.lastPeak });
    this.child.kill('SIGTERM');
    await exited(this.child);
  }
}

/** Waits until the receiver has `n` distinct events; returns when that happened. */
export async function waitForDistinct(receiver: Receiver, n: number, timeoutMs: number): Promise<number> {
  await until(async () => (await receiver.distinct()) >= n, timeoutMs, `${n} distinct events at the receiver`, 20);
  return now();
}

/**
 * The HTTP ceiling: requests per second a bare undici client with `connections`
 * concurrent requests reaches against the receiver, with a body like an event's,
 * the receiver answering after `delayMs`.
 */
export async function httpCeiling(receiver: Receiver, connections: number, seconds: number, delayMs = 0): Promise<number> {
  const pool = new Pool(`http://127.0.0.1:${receiver.port}`, { connections, pipelining: 1 });
  const body = JSON.stringify({
    id: 'evt_0123456789ab_1',
    table: 'items',
    schema: 'public',
    action: 'INSERT',
    data: { id: 1, name: 'user', amount: '12.50', created: '2026-11-26T00:00:00.000000+00:00' },
    timestamp: '2026-11-26T00:00:00.000Z',
  });
  await receiver.reset({ delayMs });
  const end = now() + seconds * 1000;
  let sent = 0;
  const t0 = now();
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (now() < end) {
        const r = await pool.request({ path: '/hook', method: 'POST', body, headers: { 'content-type': 'application/json', 'webhook-id': `c${sent}` } });
        await r.body.dump();
        sent++;
      }
    }),
  );
  const elapsed = (now() - t0) / 1000;
  await pool.close();
  await sleep(50);
  return sent / elapsed;
}
