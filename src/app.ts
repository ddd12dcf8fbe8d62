/**
 * The daemon, assembled: connect, install what is missing, then capture -> journal
 * -> dispatch -> delivery until stopped. The CLI's `run` is a thin shell over
 * `startDaemon`; a program embedding app-db-listener calls the same function.
 */
import { readlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Logger } from 'pino';
import type { Config } from './config/types.js';
import { pgClientConfig } from './capture/postgres/connection.js';
import { applyInstall, planInstall, type ResolvedTable } from './capture/postgres/install.js';
import { PgJournal } from './capture/postgres/journal.js';
import { makeQueries } from './capture/postgres/queries.js';
import { PgWaker } from './capture/postgres/waker.js';
import { EndpointHealth } from './delivery/health.js';
import { WebhookClient } from './delivery/webhook.js';
import { Dispatcher } from './dispatch/dispatcher.js';
import { Completer } from './journal/completer.js';
import { DaemonEventBus } from './observability/events.js';
import { logDaemonEvents } from './observability/log-events.js';
import { AppError, describeError } from './util/errors.js';
import { delay, WakeSignal } from './util/wake.js';
import { VERSION } from './version.js';

export interface DaemonOptions {
  readonly logger: Logger;
  /** Install missing migrations and triggers (default: listener.auto_install). */
  readonly install?: boolean;
  /** Event bus to attach metrics or tests to; one is created when omitted. */
  readonly bus?: DaemonEventBus;
}

export interface RunningDaemon {
  readonly instanceId: string;
  readonly bus: DaemonEventBus;
  /** True while the database answers and the LISTEN connection is in place. */
  isConnected(): boolean;
  /** Graceful stop: stop claiming, finish in-flight deliveries within `graceMs`, record outcomes. */
  stop(graceMs?: number): Promise<void>;
}

/** Longest a runtime query may take before its connection is considered gone. */
const QUERY_TIMEOUT_MS = 30_000;
/** Installs tried at start when a watched table is busy. */
const INSTALL_ATTEMPTS = 5;

/** Oldest PostgreSQL we support: EXECUTE FUNCTION in triggers and generated identity columns. */
const MIN_PG_VERSION = 120000;

export async function startDaemon(config: Config, options: DaemonOptions): Promise<RunningDaemon> {
  if (config.database.type !== 'postgres') {
    throw new AppError('UNSUPPORTED_DATABASE', `database.type "${config.database.type}" is not supported by this version`, {
      hint: 'use database.type: postgres',
    });
  }
  const log = options.logger;
  const bus = options.bus ?? new DaemonEventBus();
  logDaemonEvents(bus, log);
  // host:pid:random. The pid lets a restarted daemon release a crashed predecessor's claims.
  const instanceId = `${localScope()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  const clientConfig = pgClientConfig(config.database);
  // query_timeout: a connection that went half-open (a failover behind a virtual IP)
  // would otherwise hold a claim or an outcome write, and with it the whole loop,
  // until TCP gives up many minutes later.
  const pool = new pg.Pool({ ...clientConfig, max: 4, idleTimeoutMillis: 30_000, query_timeout: QUERY_TIMEOUT_MS });
  // A connection killed while idle surfaces here; the pool replaces it on next use.
  pool.on('error', (err) => log.warn({ error: describeError(err) }, 'Database connection lost (idle); it will be replaced'));

  try {
    const tables = await prepareDatabase(pool, config, options.install ?? config.listener.auto_install, bus, log);
    const q = makeQueries(config.listener.schema);
    const installId = (await pool.query<{ value: string }>(q.installationId)).rows[0]?.value ?? 'unknown';
    const webhookTimeoutMs = config.webhook.timeout * 1000;
    const journal = new PgJournal(pool, q, {
      instanceId,
      // The lease outlives the longest delivery (the per-attempt timeout) with a margin.
      leaseMs: Math.round(webhookTimeoutMs + 15_000),
      keepDelivered: config.listener.retention > 0,
      eventIdPrefix: `evt_${installId}_`,
      tables,
    });
    const released = await journal.releaseClaimsOfDeadLocalProcesses(localScope(), isProcessAlive);
    if (released > 0) log.info({ events: released }, 'Released the claims of a previous process of this host that is gone');
    const wake = new WakeSignal();
    const health = new EndpointHealth({
      probeInitialMs: Math.max(1_000, Math.min(config.webhook.retry_delay * 1000, 10_000)),
      onTransition: (t) => {
        if (t.type === 'down') bus.emit('endpoint:down', { consecutiveFailures: t.consecutiveFailures, lastError: t.lastError ?? '' });
        else bus.emit('endpoint:up', { downForMs: t.downForMs });
      },
    });
    const sender = new WebhookClient(config.webhook, config.worker.pool_size, VERSION);
    const completer = new Completer(journal, bus, () => wake.notify());
    const waker = new PgWaker(
      clientConfig,
      { listen: q.listenChannel, tryWaitLock: q.tryWaitLock, releaseWaitLock: q.releaseWaitLock, waitLockKey: q.waitLockKey },
      wake,
      bus,
    );
    const dispatcher = new Dispatcher(journal, waker, sender, health, completer, wake, bus, {
      poolSize: config.worker.pool_size,
      pollIntervalMs: config.listener.poll_interval * 1000,
      retry: config.webhook,
    });
    waker.start();
    dispatcher.start();

    let sweeping = false;
    const purgeTimer =
      config.listener.retention > 0
        ? setInterval(() => {
            if (sweeping) return; // a slow sweep must not pile up and starve the pool
            sweeping = true;
            journal
              .purgeDelivered(config.listener.retention)
              .catch((err: unknown) => {
                log.warn({ error: describeError(err) }, 'Could not remove delivered events past their retention');
              })
              .finally(() => {
                sweeping = false;
              });
          }, retentionSweepMs(config.listener.retention))
        : undefined;
    purgeTimer?.unref();

    log.info(
      {
        instance: instanceId,
        tables: config.database.tables.map((t) => (t.schema ? `${t.schema}.${t.name}` : t.name)),
        pool_size: config.worker.pool_size,
      },
      `app-db-listener ${VERSION} started`,
    );

    let stopped: Promise<void> | undefined;
    return {
      instanceId,
      bus,
      isConnected: () => waker.connected,
      stop(graceMs = config.worker.shutdown_timeout * 1000) {
        stopped ??= (async () => {
          if (purgeTimer) clearInterval(purgeTimer);
          await dispatcher.stop(graceMs);
          await journal.releaseClaims().catch((err: unknown) => {
            log.warn({ error: describeError(err) }, 'Could not release claims; they expire with their lease');
          });
          await waker.stop();
          await sender.close().catch(() => undefined);
          await pool.end().catch(() => undefined);
          log.info('app-db-listener stopped');
        })();
        return stopped;
      },
    };
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw err;
  }
}

/**
 * Checks the server, then installs what is missing (or verifies nothing is, with
 * install off). Returns the watched tables as the database names them. An install
 * that meets a busy table gives up quickly (so the application is not held up) and
 * is tried again a few times.
 */
async function prepareDatabase(
  pool: pg.Pool,
  config: Config,
  install: boolean,
  bus: DaemonEventBus,
  log: Logger,
): Promise<ResolvedTable[]> {
  const client = await pool.connect().catch((err: unknown) => {
    throw connectionError(err, config);
  });
  try {
    const v = await client.query<{ server_version_num: string }>('SHOW server_version_num');
    if (Number(v.rows[0]?.server_version_num) < MIN_PG_VERSION) {
      throw new AppError('DATABASE_TOO_OLD', `PostgreSQL ${v.rows[0]?.server_version_num} is too old; version 12 or newer is required`);
    }
    if (!install) {
      const plan = await planInstall(client, config);
      for (const w of plan.warnings) bus.emit('install:warning', { message: w });
      if (plan.steps.length > 0) {
        throw new AppError('NOT_INSTALLED', `the database is missing: ${plan.steps.map((s) => s.description).join('; ')}`, {
          hint: 'run "app-db-listener install --config <file>" (or allow listener.auto_install)',
        });
      }
      return [...plan.tables];
    }
    for (let attempt = 1; ; attempt++) {
      try {
        const plan = await applyInstall(client, config);
        for (const w of plan.warnings) bus.emit('install:warning', { message: w });
        for (const s of plan.steps) bus.emit('install:step', { description: s.description });
        return [...plan.tables];
      } catch (err) {
        if (!(err instanceof AppError && err.code === 'INSTALL_LOCK_TIMEOUT') || attempt >= INSTALL_ATTEMPTS) throw err;
        log.warn({ attempt, error: err.message }, 'A watched table is busy; installing again shortly');
        await delay(attempt * 2_000);
      }
    }
  } finally {
    client.release();
  }
}

export function connectionError(err: unknown, config: Config): AppError {
  const db = config.database;
  const where = db.url ? 'the database at database.url' : `PostgreSQL at ${db.host}:${db.port} (database "${db.database}", user "${db.user}")`;
  const code = (err as { code?: string }).code;
  const hint =
    code === '28P01' || code === '28000'
      ? 'check database.user and database.password'
      : code === '3D000'
        ? 'check database.database'
        : code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'ETIMEDOUT'
          ? 'check database.host and database.port, and that the server is running'
          : undefined;
  return new AppError('DATABASE_CONNECT', `cannot connect to ${where}: ${describeError(err)}`, { cause: err, hint });
}

/**
 * Where a process id means something: the host name and, on Linux, the pid
 * namespace (two containers on one host network share the name, not the pids).
 */
function localScope(): string {
  let ns = '';
  try {
    ns = /\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/pid'))?.[1] ?? '';
  } catch {
    // Not Linux: the host name alone.
  }
  return ns ? `${hostname()}#${ns}` : hostname();
}

function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** How often delivered events past their retention are removed: half the retention, 1 s to 60 s. */
function retentionSweepMs(retentionSeconds: number): number {
  return Math.min(60_000, Math.max(1_000, retentionSeconds * 500));
}
