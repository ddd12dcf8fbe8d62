/**
 * Running the daemon in tests: in-process through the library (`startDaemon`), or
 * as the built CLI in a child process when a test needs signals or kill -9.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { startDaemon, type RunningDaemon } from '../../src/app.js';
import { parseConfig } from '../../src/config/index.js';
import type { Config } from '../../src/config/types.js';
import { shebangNodeFlags } from '../../src/util/node-flags.js';
import { spawned } from './children.js';
import { waitUntil } from './wait.js';

export interface ConfigOptions {
  readonly dbUrl: string;
  readonly webhookUrl: string;
  readonly tables: readonly string[];
  readonly poolSize?: number;
  readonly timeout?: number;
  readonly retryCount?: number;
  readonly retryDelay?: number;
  readonly retryMaxDelay?: number;
  readonly pollInterval?: number;
  readonly secret?: string;
  readonly schema?: string;
  readonly modes?: string;
  readonly logFile?: string;
  readonly logLevel?: string;
  /** logging.format: 'text' (the default) or 'json'. */
  readonly logFormat?: string;
  readonly shutdownTimeout?: number;
  readonly retention?: number;
  /** http.listen; default "off" so that tests running side by side never contend for a port. */
  readonly httpListen?: string;
  /** listener.capture: 'trigger' (the default) or 'log'. */
  readonly capture?: 'trigger' | 'log';
}

export function configYaml(o: ConfigOptions): string {
  const lines = [
    'database:',
    '  type: "postgres"',
    `  url: ${JSON.stringify(o.dbUrl)}`,
    '  tables:',
    ...o.tables.map((t) => `    - ${JSON.stringify(t)}`),
    'listener:',
    `  modes: ${JSON.stringify(o.modes ?? 'insert,update,delete')}`,
    `  poll_interval: ${o.pollInterval ?? 0.5}`,
    ...(o.schema ? [`  schema: ${JSON.stringify(o.schema)}`] : []),
    ...(o.retention !== undefined ? [`  retention: ${o.retention}`] : []),
    ...(o.capture ? [`  capture: ${JSON.stringify(o.capture)}`] : []),
    'webhook:',
    `  url: ${JSON.stringify(o.webhookUrl)}`,
    `  timeout: ${o.timeout ?? 5}`,
    `  retry_count: ${o.retryCount ?? 3}`,
    `  retry_delay: ${o.retryDelay ?? 0.05}`,
    `  retry_max_delay: ${o.retryMaxDelay ?? 1}`,
    ...(o.secret ? [`  secret: ${JSON.stringify(o.secret)}`] : []),
    'logging:',
    `  level: ${JSON.stringify(o.logLevel ?? 'info')}`,
    ...(o.logFormat ? [`  format: ${JSON.stringify(o.logFormat)}`] : []),
    ...(o.logFile ? [`  file: ${JSON.stringify(o.logFile)}`] : []),
    'worker:',
    `  pool_size: ${o.poolSize ?? 10}`,
    ...(o.shutdownTimeout !== undefined ? [`  shutdown_timeout: ${o.shutdownTimeout}`] : []),
    'http:',
    `  listen: ${JSON.stringify(o.httpListen ?? 'off')}`,
  ];
  return lines.join('\n') + '\n';
}

export function testConfig(o: ConfigOptions): Config {
  return parseConfig(configYaml(o), {}, 'test config').config;
}

/** The daemon in this process; logs are silent unless ADL_TEST_LOG names a level. */
export async function startTestDaemon(o: ConfigOptions): Promise<RunningDaemon> {
  const logger = pino({ level: process.env.ADL_TEST_LOG ?? 'silent' });
  return startDaemon(testConfig(o), { logger });
}

export const cliPath = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'cli', 'main.js');

export interface DaemonProcess {
  readonly child: ChildProcess;
  readonly configPath: string;
  /** Standard output and standard error, interleaved as they arrived. */
  output(): string;
  /** Standard output only. */
  stdout(): string;
  /** Standard error only. */
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /**
   * Like `exited`, but resolves once the child's stdout and stderr are closed too,
   * so `output()` then holds everything it wrote ('exit' can come before the last data).
   */
  closed: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Waits until the log shows the daemon started. */
  ready(timeoutMs?: number): Promise<void>;
}

/** The built CLI (`npm run build` first: the test command does it) as a child process. */
export function spawnDaemon(o: ConfigOptions, extraArgs: string[] = []): DaemonProcess {
  const configPath = writeTempConfig(configYaml(o));
  return spawnCli(['run', '--config', configPath, ...extraArgs], configPath);
}

/** Writes `text` to `config.yaml` in a new temporary directory; returns its path. */
export function writeTempConfig(text: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'adl-daemon-'));
  const configPath = path.join(dir, 'config.yaml');
  writeFileSync(configPath, text);
  return configPath;
}

export interface SpawnCliOptions {
  /** The child's whole environment (default: this process's). */
  readonly env?: NodeJS.ProcessEnv;
  /** The child's working directory (default: this process's). */
  readonly cwd?: string;
}

export function spawnCli(args: string[], configPath = '', options: SpawnCliOptions = {}): DaemonProcess {
  // As deployed: with the Node.js flags of the CLI's first line.
  const child = spawn(process.execPath, [...shebangNodeFlags(cliPath), cliPath, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(options.env ? { env: options.env } : {}),
    ...(options.cwd ? { cwd: options.cwd } : {}),
  });
  spawned.add(child);
  child.once('exit', () => spawned.delete(child));
  let out = '';
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => {
    const text = d.toString();
    out += text;
    stdout += text;
  });
  child.stderr?.on('data', (d: Buffer) => {
    const text = d.toString();
    out += text;
    stderr += text;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }));
  });
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal }));
  });
  return {
    child,
    configPath,
    output: () => out,
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
    closed,
    ready: async (timeoutMs = 20_000) => {
      await waitUntil(() => out.includes(' started') || child.exitCode !== null, timeoutMs, () => `daemon start; output so far:\n${out}`);
      if (child.exitCode !== null) throw new Error(`daemon exited with ${child.exitCode}:\n${out}`);
    },
  };
}
