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
  readonly shutdownTimeout?: number;
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
    'webhook:',
    `  url: ${JSON.stringify(o.webhookUrl)}`,
    `  timeout: ${o.timeout ?? 5}`,
    `  retry_count: ${o.retryCount ?? 3}`,
    `  retry_delay: ${o.retryDelay ?? 0.05}`,
    `  retry_max_delay: ${o.retryMaxDelay ?? 1}`,
    ...(o.secret ? [`  secret: ${JSON.stringify(o.secret)}`] : []),
    'logging:',
    `  level: ${JSON.stringify(o.logLevel ?? 'info')}`,
    ...(o.logFile ? [`  file: ${JSON.stringify(o.logFile)}`] : []),
    'worker:',
    `  pool_size: ${o.poolSize ?? 10}`,
    ...(o.shutdownTimeout !== undefined ? [`  shutdown_timeout: ${o.shutdownTimeout}`] : []),
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

const cliPath = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'cli', 'main.js');

export interface DaemonProcess {
  readonly child: ChildProcess;
  readonly configPath: string;
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Waits until the log shows the daemon started. */
  ready(timeoutMs?: number): Promise<void>;
}

/** The built CLI (`npm run build` first: the test command does it) as a child process. */
export function spawnDaemon(o: ConfigOptions, extraArgs: string[] = []): DaemonProcess {
  const dir = mkdtempSync(path.join(tmpdir(), 'adl-daemon-'));
  const configPath = path.join(dir, 'config.yaml');
  writeFileSync(configPath, configYaml(o));
  return spawnCli(['run', '--config', configPath, ...extraArgs], configPath);
}

export function spawnCli(args: string[], configPath = ''): DaemonProcess {
  const child = spawn(process.execPath, [cliPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }));
  });
  return {
    child,
    configPath,
    output: () => out,
    exited,
    ready: async (timeoutMs = 20_000) => {
      await waitUntil(() => out.includes(' started') || child.exitCode !== null, timeoutMs, () => `daemon start; output so far:\n${out}`);
      if (child.exitCode !== null) throw new Error(`daemon exited with ${child.exitCode}:\n${out}`);
    },
  };
}
