/**
 * The daemon, assembled: connect, install what is missing, then capture -> journal
 * -> dispatch -> delivery until stopped. The CLI's `run` is a thin shell over
 * `startDaemon`; a program embedding app-db-listener calls the same function.
 */
import { readlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Config, DestinationConfig, HttpListen } from './config/types.js';
import { sameTable } from './config/schema.js';
import type { CaptureSource, ResolvedTable, SourceJournal } from './capture/source.js';
import { EndpointHealth } from './delivery/health.js';
import { openSink } from './delivery/sinks.js';
import { compileDestination } from './dispatch/destination.js';
import { Dispatcher } from './dispatch/dispatcher.js';
import { RouteLoop } from './dispatch/routing.js';
import type { Route } from './journal/types.js';
import { Completer } from './journal/completer.js';
import { batchPlan } from './dispatch/batching.js';
import { DatabaseStatus } from './observability/database-status.js';
import { DaemonEventBus } from './observability/events.js';
import { logDaemonEvents } from './observability/log-events.js';
import { DaemonMetrics } from './observability/metrics.js';
import { AdminServer, formatAddress } from './server/admin-server.js';
import { checkConsoleExposure } from './console/auth.js';
import { RateRing } from './console/rate.js';
import { AttemptLog, RESPONSE_BODY_BYTES, type AttemptRecorder } from './journal/attempt-log.js';
import { describeError } from './util/errors.js';
import { WakeSignal } from './util/wake.js';
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
  /** The daemon's Prometheus metrics (also served on /metrics when http.listen is set). */
  readonly metrics: DaemonMetrics;
  /** Where the admin server listens (the port actually bound); undefined when http.listen is off. */
  readonly httpAddress: HttpListen | undefined;
  /** True while the database answers (as of its last use) and the LISTEN connection is in place. */
  isConnected(): boolean;
  /** Graceful stop: stop claiming, finish in-flight deliveries within `graceMs`, record outcomes. */
  stop(graceMs?: number): Promise<void>;
}

/** How much longer than the longest delivery (webhook.timeout) a claim lasts. */
const LEASE_MARGIN_MS = 15_000;

export async function startDaemon(config: Config, options: DaemonOptions): Promise<RunningDaemon> {
  const log = options.logger;
  const bus = options.bus ?? new DaemonEventBus();
  logDaemonEvents(bus, log, new Map(config.destinations.map((d) => [d.name, d.type])));
  // scope:pid:random. The pid lets a restarted daemon release a crashed predecessor's claims.
  const instanceId = `${localScope()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  const status = new DatabaseStatus(bus);
  const metrics = new DaemonMetrics(bus, status, VERSION, config.destinations.map((d) => d.name));
  /** Set once the destinations run: which broker destinations cannot reach their broker. */
  let brokersProblem: () => string | undefined = () => undefined;
  // The console beyond loopback needs a token: refused before anything is bound or touched.
  checkConsoleExposure(config.http);
  const serveConsole = config.http.listen !== null && config.http.console;
  /** Delivered per second over 15 minutes, for the console's chart. */
  const rate = new RateRing(config.destinations.map((d) => d.name));
  if (serveConsole) bus.on('delivery:succeeded', ({ event }) => rate.note(event.destination));
  /** Set once the destinations run: each one's endpoint health. */
  let endpoints: () => Record<string, 'up' | 'down'> = () => ({});
  // Loaded only when served: its pages and the operator queries are not a daemon's baseline.
  const webConsole = serveConsole
    ? new (await import('./console/console.js')).WebConsole({ config, version: VERSION, live: { rate, endpoints: () => endpoints() } })
    : undefined;
  // Bound first: a busy port fails the start before the database is touched, and
  // /healthz answers (and /readyz says "starting") while installing.
  const admin = config.http.listen
    ? new AdminServer(config.http.listen, {
        metrics: () => metrics.render(),
        readinessProblem: async () => {
          await metrics.backlog();
          return status.readinessProblem() ?? brokersProblem();
        },
        ...(webConsole ? { console: (req, res) => webConsole.handle(req, res) } : {}),
      })
    : undefined;
  const httpAddress = await admin?.start();
  if (httpAddress) {
    const what = webConsole ? 'the web console at /, /metrics, /healthz, /readyz' : '/metrics, /healthz, /readyz';
    log.info({ address: formatAddress(httpAddress) }, `Admin server listening on http://${formatAddress(httpAddress)} (${what})`);
  }
  const source = await createSource(config, log);

  try {
    const tables = await source.prepare(options.install ?? config.listener.auto_install, bus, log);
    const longestTimeoutMs = Math.max(...config.destinations.map((d) => d.webhook.timeout * 1000));
    const journal = await source.openJournal({
      instanceId,
      // The lease outlives the longest delivery (the per-attempt timeout) with a margin.
      leaseMs: Math.round(longestTimeoutMs + LEASE_MARGIN_MS),
      keepDelivered: config.listener.retention > 0,
      tables,
    });
    const released = await journal.releaseClaimsOfDeadLocalProcesses(localScope(), isProcessAlive);
    if (released > 0) log.info({ events: released }, 'Released the claims of a previous process of this host that is gone');
    // The attempt log: on with the console (http.attempt_log), written off the delivery path.
    const attemptLog =
      webConsole && config.http.attempt_log
        ? new AttemptLog(journal, bus, { maxRows: config.http.attempt_log_max_rows, maxAgeSeconds: config.http.attempt_log_max_age })
        : undefined;
    // The webhook: section, when it has a url, is the first destination ("default").
    const listedFrom = config.webhook.url !== '' ? 1 : 0;
    const destinations = config.destinations.map((d, i) =>
      startDestination(d, config, tables, journal, bus, log, i < listedFrom ? 'webhook' : `destinations[${i - listedFrom}]`, attemptLog),
    );
    endpoints = () => Object.fromEntries(destinations.map((d) => [d.name, d.health.state === 'down' ? 'down' : 'up']));
    attemptLog?.start();
    void attemptLog?.prune();
    const byName = new Map(destinations.map((d) => [d.name, d]));
    // A broker is infrastructure the daemon connects to, like its database: while a broker
    // destination's connection is down (its breaker open), the daemon is not ready. A
    // webhook's receiver being down is the receiver's state, shown by endpoint_up only.
    brokersProblem = () => {
      const down = destinations.filter((d) => d.type !== 'webhook' && d.health.state === 'down');
      return down.length === 0 ? undefined : `cannot reach the broker of ${down.map((d) => `destination ${d.name} (${d.type})`).join(', ')}`;
    };
    const wake = new WakeSignal();
    const waker = source.waiter(wake, bus);
    // Log capture: the reader journals what the log says (only one instance reads it).
    const reader = source.reader?.(tables, bus, log);
    const routeLoop = new RouteLoop(journal.router(routesOf(config.destinations, tables, config.listener.capture === 'log')), waker, wake, bus, {
      pollIntervalMs: config.listener.poll_interval * 1000,
      routed: (names) => {
        for (const name of names) byName.get(name)?.dispatcher.routed();
      },
    });
    metrics.attach({
      backlog: () => journal.backlog(config.destinations.map((d) => d.name)),
      backfills: () => journal.backfills(),
      deliveriesInFlight: () => destinations.reduce((n, d) => n + d.dispatcher.deliveriesInFlight, 0),
      ...(reader ? { captureLag: () => reader.lag() } : {}),
    });
    status.watchChannel(() => waker.connected);
    waker.start();
    reader?.start();
    for (const d of destinations) d.dispatcher.start();
    routeLoop.start();
    status.phase = 'running';

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
        database: `${config.database.type}://${config.database.host}:${config.database.port}/${config.database.database}`,
        tables: tables.map((t) => `${t.schema}.${t.name}`),
        destinations: destinations.map((d) => `${d.name}=${d.url}`),
      },
      `app-db-listener ${VERSION} started`,
    );

    let stopped: Promise<void> | undefined;
    return {
      instanceId,
      bus,
      metrics,
      httpAddress,
      isConnected: () => status.connected(),
      stop(graceMs = config.worker.shutdown_timeout * 1000) {
        stopped ??= (async () => {
          status.phase = 'stopping';
          if (purgeTimer) clearInterval(purgeTimer);
          await reader?.stop();
          await routeLoop.stop(graceMs);
          await Promise.all(destinations.map((d) => d.dispatcher.stop(graceMs)));
          await attemptLog?.stop();
          await journal.releaseClaims().catch((err: unknown) => {
            log.warn({ error: describeError(err) }, 'Could not release claims; they expire with their lease');
          });
          await waker.stop();
          await Promise.all(destinations.map((d) => d.sender.close().catch(() => undefined)));
          await source.close();
          await admin?.stop();
          await webConsole?.close();
          log.info('app-db-listener stopped');
        })();
        return stopped;
      },
    };
  } catch (err) {
    await source.close();
    await admin?.stop();
    await webConsole?.close();
    throw err;
  }
}

/** One destination's delivery side: its queue, sender, endpoint health, completer and dispatcher. */
function startDestination(
  d: DestinationConfig,
  config: Config,
  tables: readonly ResolvedTable[],
  journal: SourceJournal,
  bus: DaemonEventBus,
  log: Logger,
  where: string,
  attemptLog: AttemptLog | undefined,
) {
  const queue = journal.destination(d.name);
  const wake = new WakeSignal();
  const health = new EndpointHealth({
    probeInitialMs: Math.max(1_000, Math.min(d.webhook.retry_delay * 1000, 10_000)),
    onTransition: (t) => {
      if (t.type === 'down') {
        bus.emit('endpoint:down', { destination: d.name, consecutiveFailures: t.consecutiveFailures, lastError: t.lastError ?? '' });
      } else {
        bus.emit('endpoint:up', { destination: d.name, downForMs: t.downForMs });
        // Resume at full speed: what backed off during the outage goes out now.
        queue
          .retryNow()
          .then(() => wake.notify())
          .catch((err: unknown) => log.warn({ destination: d.name, error: describeError(err) }, 'Could not make waiting retries due'));
      }
    },
  });
  const sender = openSink(d, where, VERSION, attemptLog ? { keepResponseBytes: RESPONSE_BODY_BYTES, keepOkResponse: () => attemptLog.wantsDelivered() } : {});
  const plan = batchPlan(d.pool_size);
  const delivery = compileDestination(d, tables, config.database.database, where);
  const attempts: AttemptRecorder | undefined = attemptLog?.forDestination(d.name, sender.description, delivery, destinationSecrets(d));
  const completer: Completer = new Completer(queue, bus, () => dispatcher.outcomesWritten(), {
    outcomesPerWrite: plan.outcomesPerWrite,
    moreComing: (): boolean => dispatcher.deliveriesInFlight > 0,
  });
  const dispatcher: Dispatcher = new Dispatcher(queue, sender, delivery, health, completer, wake, bus, {
    destination: d.name,
    poolSize: d.pool_size,
    pollIntervalMs: config.listener.poll_interval * 1000,
    retry: d.webhook,
    // An event claimed ahead must still hold its lease at the end of its delivery.
    maxWaitForSlotMs: LEASE_MARGIN_MS - 5_000,
    ...(attempts ? { attempts } : {}),
  });
  return { name: d.name, type: d.type, url: sender.description, sender, dispatcher, health };
}

/** What the attempt log masks wherever it appears: the destination's signing secrets, header values, URL password. */
function destinationSecrets(d: DestinationConfig): string[] {
  const out = [...d.webhook.secrets, ...d.webhook.secrets.map((s) => s.replace(/^whsec_/, '')), ...Object.values(d.webhook.headers)];
  try {
    const password = new URL(d.webhook.url).password;
    if (password !== '') out.push(password, decodeURIComponent(password));
  } catch {
    // Not a URL: nothing more to mask.
  }
  return out.filter((s) => s.length >= 6);
}

/**
 * The routes of every destination over the resolved watched tables. Log capture also
 * reports TRUNCATE: a destination that takes DELETE takes it (the rows are gone).
 */
function routesOf(destinations: readonly DestinationConfig[], tables: readonly ResolvedTable[], truncates: boolean): Route[] {
  const routes: Route[] = [];
  for (const d of destinations) {
    for (const t of tables) {
      const named = d.tables === undefined || d.tables.some((ref) => sameTable(ref, { schema: t.schema, name: t.name }));
      // READ: the rows of a backfill go to every destination of the table (or the one it names).
      const operations = [...d.operations, 'READ' as const, ...(truncates && d.operations.includes('DELETE') ? ['TRUNCATE' as const] : [])];
      if (named) routes.push({ destination: d.name, schema: t.schema, table: t.name, operations });
    }
  }
  return routes;
}

/** The capture source for the configured database family; only its driver is loaded. */
async function createSource(config: Config, log: Logger): Promise<CaptureSource> {
  switch (config.database.type) {
    case 'postgres':
      return new (await import('./capture/postgres/source.js')).PostgresSource(config, log);
    case 'mysql':
      return new (await import('./capture/mysql/source.js')).MySqlSource(config);
  }
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
