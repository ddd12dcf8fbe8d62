/** PostgreSQL as a capture source: a small pool, the installer, the journal and LISTEN. */
import pg from 'pg';
import type { Logger } from 'pino';
import type { Config } from '../../config/types.js';
import type { DaemonEventBus } from '../../observability/events.js';
import { AppError, describeError } from '../../util/errors.js';
import type { WakeSignal } from '../../util/wake.js';
import { installAtStart, type CaptureReader, type CaptureSource, type JournalOptions, type ResolvedTable, type SourceJournal, type SourceWaiter } from '../source.js';
import { connectionError, pgClientConfig } from './connection.js';
import { applyInstall, capturePublicationName, captureSlotName, planInstall } from './install.js';
import { PgJournal } from './journal.js';
import { LogicalReader } from './logical/reader.js';
import { captureLeaseKey, makeQueries, type Queries } from './queries.js';
import { PgWaker } from './waker.js';

/** Longest a runtime query may take before its connection is considered gone. */
const QUERY_TIMEOUT_MS = 30_000;
/** Oldest PostgreSQL we support: EXECUTE FUNCTION in triggers and generated identity columns. */
export const MIN_PG_VERSION = 120000;

/** The router session's TCP keepalives: a silent peer is given up after ~25 s (10 s idle, then 3 probes 5 s apart). */
export const ROUTER_SESSION_SETTINGS = ['tcp_keepalives_idle=10', 'tcp_keepalives_interval=5', 'tcp_keepalives_count=3', 'tcp_user_timeout=25000'] as const;

/** Settings of the journal pool's sessions (see the constructor). */
export const JOURNAL_SESSION_SETTINGS = [
  'enable_seqscan=off',
  'enable_bitmapscan=off',
  'jit=off',
  'synchronous_commit=off',
  'plan_cache_mode=force_generic_plan',
] as const;

export class PostgresSource implements CaptureSource {
  private readonly clientConfig: pg.ClientConfig;
  private readonly pool: pg.Pool;
  private readonly q: Queries;

  constructor(
    private readonly config: Config,
    log: Logger,
  ) {
    this.clientConfig = pgClientConfig(config.database);
    this.q = makeQueries(config.listener.schema);
    // query_timeout: a connection that went half-open (a failover behind a virtual IP)
    // would otherwise hold a claim or an outcome write, and with it the whole loop,
    // until TCP gives up many minutes later.
    //
    // enable_seqscan off: the journal's statistics are stale by nature (empty when
    // analyzed, 100,000 rows a minute later), and a stale "nearly empty" estimate makes
    // the planner read the whole journal and sort it for every claim (30 ms at 20,000
    // rows instead of 0.5 ms). enable_bitmapscan off: likewise, a bitmap scan of
    // "id >= floor" (see the claim) sorts every event above the floor (390 ms at
    // 200,000). Every query of this pool has an index to walk in order; this only
    // removes the wrong choices.
    //
    // jit off: JIT compiles a statement on every execution once its estimated cost passes
    // jit_above_cost, and the walks' estimates do on a large journal (an index range
    // the planner cannot bound), though they read a few hundred rows: each move of a
    // 1,000,000 inbox spent ~24 ms compiling for ~3 ms of work (8,000 changes/s routed
    // instead of ~40,000).
    //
    // plan_cache_mode force_generic_plan: every statement is written to take the same
    // plan whatever its parameters (the test of the claim's plan checks the generic
    // one), but the planner's cost estimates kept the claim on custom plans, planned
    // again at every execution: ~350 µs of the database's CPU per claim, more than the
    // claim itself (a drain of 50,000 ran at 0.8x the one-statement claim before it).
    //
    // synchronous_commit off: these statements only record progress (claims, outcomes)
    // over changes the application's own transactions made durable; a database crash
    // that loses the last of them repeats those deliveries, never loses one
    // (docs/architecture.md). ~15% faster drains.
    this.pool = new pg.Pool({
      ...this.clientConfig,
      options: [this.clientConfig.options, ...JOURNAL_SESSION_SETTINGS.map((s) => `-c ${s}`)].filter(Boolean).join(' '),
      // Claims and outcome writes of every destination (the router has a connection of its own).
      max: 3 + config.destinations.length,
      idleTimeoutMillis: 30_000,
      query_timeout: QUERY_TIMEOUT_MS,
    });
    // A connection killed while idle surfaces here; the pool replaces it on next use.
    this.pool.on('error', (err) => log.warn({ error: describeError(err) }, 'Database connection lost (idle); it will be replaced'));
  }

  prepare(install: boolean, bus: DaemonEventBus, log: Logger): Promise<ResolvedTable[]> {
    return prepareDatabase(this.pool, this.config, install, bus, log);
  }

  async openJournal(opts: JournalOptions): Promise<SourceJournal> {
    const installId = (await this.pool.query<{ value: string }>(this.q.installationId)).rows[0]?.value ?? 'unknown';
    // Only the table's owner may analyze it; autovacuum does it later otherwise.
    await this.pool.query(this.q.analyzeJournal).catch(() => undefined);
    // The router's own connection: the journal pool's settings (plans), and keepalives so
    // the server ends the session, and with it the route locks, soon after this host
    // is gone (by default a lost peer holds its session for about two hours).
    const routerConfig: pg.ClientConfig = {
      ...this.clientConfig,
      options: [
        this.clientConfig.options,
        ...JOURNAL_SESSION_SETTINGS.map((s) => `-c ${s}`),
        ...ROUTER_SESSION_SETTINGS.map((s) => `-c ${s}`),
      ]
        .filter(Boolean)
        .join(' '),
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
      query_timeout: QUERY_TIMEOUT_MS,
    };
    return new PgJournal(this.pool, this.q, { ...opts, clientConfig: routerConfig, eventIdPrefix: `evt_${installId}_` });
  }

  waiter(wake: WakeSignal, bus: DaemonEventBus): SourceWaiter {
    const q = this.q;
    return new PgWaker(
      this.clientConfig,
      { listen: q.listenChannel, tryWaitLock: q.tryWaitLock, releaseWaitLock: q.releaseWaitLock, waitLockKey: q.waitLockKey },
      wake,
      bus,
    );
  }

  reader(tables: readonly ResolvedTable[], bus: DaemonEventBus, log: Logger): CaptureReader | undefined {
    if (this.config.listener.capture !== 'log') return undefined;
    const slot = captureSlotName(this.config);
    const reader = new LogicalReader(
      this.clientConfig,
      this.q,
      {
        slot,
        publication: capturePublicationName(this.config),
        leaseKey: captureLeaseKey(this.config.listener.schema),
        waitLockKey: this.q.waitLockKey,
        tables,
      },
      bus,
      log,
    );
    const pool = this.pool;
    const q = this.q;
    return {
      start: () => reader.start(),
      stop: () => reader.stop(),
      async lag() {
        const r = await pool.query<{ lag_bytes: number | null }>(q.slotLag, [slot]);
        const row = r.rows[0];
        if (!row) return undefined;
        const progress = reader.progress();
        // Only the reader knows how old its position is; another instance reports bytes only.
        return { bytes: row.lag_bytes ?? undefined, seconds: progress.lagSeconds };
      },
    };
  }

  async close(): Promise<void> {
    await this.pool.end().catch(() => undefined);
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
    return await installAtStart(
      install,
      { plan: () => planInstall(client, config), apply: () => applyInstall(client, config) },
      bus,
      log,
    );
  } finally {
    client.release();
  }
}

