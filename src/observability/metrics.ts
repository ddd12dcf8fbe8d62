/**
 * Prometheus metrics. Counters and histograms are fed by the event bus only, so the
 * hot path never touches a metric; gauges of the journal are read when scraped,
 * from one cheap backlog query cached for a second. docs/metrics.md says which
 * question each metric answers.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { TableBacklog } from '../capture/source.js';
import type { BackfillRecord } from '../capture/backfill/types.js';
import { progressOf, runRate } from '../capture/backfill/pacing.js';
import { describeError } from '../util/errors.js';
import { settleWithin } from '../util/wake.js';
import type { DatabaseStatus } from './database-status.js';
import type { DaemonEventBus } from './events.js';
import type { JournalEvent } from '../journal/types.js';

/** What the scrape-time gauges read, once the daemon has it. */
export interface MetricsSources {
  backlog(): Promise<TableBacklog[]>;
  deliveriesInFlight(): number;
  /** The unfinished backfills (whoever runs them). */
  backfills?(): Promise<BackfillRecord[]>;
  /** Log capture only: how far behind the log the journal is (undefined: not known now). */
  captureLag?(): Promise<{ readonly bytes: number | undefined; readonly seconds: number } | undefined>;
}

/** A scrape reuses a backlog younger than this, so frequent scrapes do not load the database. */
const BACKLOG_MAX_AGE_MS = 1_000;
/** A backlog query slower than this counts as failed for the scrape (it may still finish later). */
const BACKLOG_TIMEOUT_MS = 2_000;

/** One webhook request: milliseconds to the webhook timeout (30 s by default, at most minutes). */
const REQUEST_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
/** Commit to delivery: milliseconds when all is well, minutes to hours through retries and outages. */
const LATENCY_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];

const PREFIX = 'app_db_listener_';

/** The `table` label: `schema.table`. */
export function tableLabel(e: { readonly schema: string; readonly table: string }): string {
  return `${e.schema}.${e.table}`;
}

export class DaemonMetrics {
  readonly registry = new Registry();
  private sources: MetricsSources | undefined;
  private last: TableBacklog[] = [];
  private fetchedAt = 0;
  private fetching: Promise<void> | undefined;
  private lastBackfills: BackfillRecord[] = [];
  private backfillsAt = 0;
  private fetchingBackfills: Promise<void> | undefined;

  constructor(
    private readonly bus: DaemonEventBus,
    private readonly status: DatabaseStatus,
    version: string,
    /** The configured destinations (their endpoint_up starts at 1). */
    destinations: readonly string[] = [],
  ) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    // Gauges named like counters (promtool rejects them); nodejs_active_handles and
    // nodejs_active_resources give the same by type.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
      this.registry.removeSingleMetric(name);
    }
    const byOp = ['destination', 'table', 'operation'] as const;
    const counter = (name: string, help: string) => new Counter({ name: PREFIX + name, help, labelNames: byOp, registers });
    const captured = counter(
      'changes_captured_total',
      'Changes claimed by this instance for their first attempt (an attempt given back during an endpoint outage or a shutdown is claimed, and counted, again).',
    );
    const succeeded = counter('deliveries_succeeded_total', 'Events delivered (the endpoint answered 2xx).');
    const failed = counter('deliveries_failed_total', 'Failed delivery attempts, each one (including the last attempt of an event moved to dead letters).');
    const retried = counter('deliveries_retried_total', 'Delivery attempts after the first attempt of an event.');
    const dead = counter('dead_letters_total', 'Events moved to dead letters (refused with a 4xx, or retries used up).');
    const filtered = counter('events_filtered_total', "Events a destination's filter did not take (not sent there), including those it failed on.");
    const filterErrors = new Counter({
      name: PREFIX + 'filter_errors_total',
      help: "Events a destination's filter failed on at run time (a missing field, a wrong type): treated as not matching.",
      labelNames: ['destination'],
      registers,
    });
    const latency = new Histogram({
      name: PREFIX + 'delivery_latency_seconds',
      help: 'Time from the change (its journal write, in the writer transaction) to its successful delivery.',
      labelNames: ['destination', 'table'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    const requestDuration = new Histogram({
      name: PREFIX + 'webhook_request_duration_seconds',
      help: 'Duration of each webhook request, whatever its outcome.',
      labelNames: ['destination'],
      buckets: REQUEST_BUCKETS,
      registers,
    });
    const endpointUp = new Gauge({
      name: PREFIX + 'endpoint_up',
      help: "1 while the destination's endpoint is considered up, 0 during an outage (its delivery paused, probing).",
      labelNames: ['destination'],
      registers,
    });
    for (const name of destinations) endpointUp.set({ destination: name }, 1);
    const reconnects = new Counter({ name: PREFIX + 'listen_reconnects_total', help: 'Times the LISTEN connection to the database was re-established after a loss.', registers });
    new Gauge({ name: PREFIX + 'info', help: 'Always 1; the version label says which version runs.', labelNames: ['version'], registers }).set({ version }, 1);

    // One label object per table (and operation), made once: these run for every event,
    // looked up without building a key string.
    type TableLabels = { destination: string; table: string };
    type OpLabels = TableLabels & { operation: string };
    const perTable = new Map<string, Map<string, Map<string, { table: TableLabels; byOp: Map<string, OpLabels> }>>>();
    const tableEntry = (e: JournalEvent) => {
      let inDestination = perTable.get(e.destination);
      if (!inDestination) perTable.set(e.destination, (inDestination = new Map()));
      let inSchema = inDestination.get(e.schema);
      if (!inSchema) inDestination.set(e.schema, (inSchema = new Map()));
      let entry = inSchema.get(e.table);
      if (!entry) inSchema.set(e.table, (entry = { table: { destination: e.destination, table: tableLabel(e) }, byOp: new Map() }));
      return entry;
    };
    const labels = (e: JournalEvent) => {
      const entry = tableEntry(e);
      let l = entry.byOp.get(e.op);
      if (!l) entry.byOp.set(e.op, (l = { ...entry.table, operation: e.op }));
      return l;
    };
    const perDestination = new Map<string, { destination: string }>();
    const destinationOnly = (e: JournalEvent) => {
      let l = perDestination.get(e.destination);
      if (!l) perDestination.set(e.destination, (l = { destination: e.destination }));
      return l;
    };
    const tableOnly = (e: JournalEvent) => tableEntry(e).table;
    bus.on('events:claimed', ({ events }) => {
      for (const e of events) (e.attempts <= 1 ? captured : retried).inc(labels(e));
    });
    bus.on('delivery:succeeded', ({ event, durationMs, latencyMs }) => {
      succeeded.inc(labels(event));
      requestDuration.observe(destinationOnly(event), durationMs / 1000);
      latency.observe(tableOnly(event), Math.max(0, latencyMs) / 1000);
    });
    bus.on('delivery:failed', ({ event, durationMs }) => {
      failed.inc(labels(event));
      requestDuration.observe(destinationOnly(event), durationMs / 1000);
    });
    bus.on('delivery:dead', ({ event, durationMs }) => {
      failed.inc(labels(event));
      dead.inc(labels(event));
      requestDuration.observe(destinationOnly(event), durationMs / 1000);
    });
    bus.on('delivery:filtered', ({ event, error }) => {
      filtered.inc(labels(event));
      if (error !== undefined) filterErrors.inc(destinationOnly(event));
    });
    bus.on('endpoint:down', ({ destination }) => endpointUp.set({ destination }, 0));
    bus.on('endpoint:up', ({ destination }) => endpointUp.set({ destination }, 1));
    bus.on('listen:connected', ({ reconnect }) => {
      if (reconnect) reconnects.inc();
    });

    const attemptsWritten = new Counter({
      name: PREFIX + 'attempt_log_written_total',
      help: 'Delivery attempts written to the attempt log (the web console\'s Deliveries page).',
      registers,
    });
    const attemptsSkipped = new Counter({
      name: PREFIX + 'attempt_log_skipped_total',
      help: 'Delivery attempts the attempt log skipped (its buffer was full or a write failed); deliveries never wait for it.',
      registers,
    });
    bus.on('attempts:written', ({ count }) => attemptsWritten.inc(count));
    bus.on('attempts:skipped', ({ count }) => attemptsSkipped.inc(count));

    // Read when scraped.
    const inFlight = () => this.sources?.deliveriesInFlight() ?? 0;
    const backlog = () => this.backlog();
    new Gauge({
      name: PREFIX + 'deliveries_in_flight',
      help: 'Webhook requests in progress now.',
      registers,
      collect() {
        this.set(inFlight());
      },
    });
    const backlogGauge = (name: string, help: string, value: (b: TableBacklog) => number) =>
      new Gauge({
        name: PREFIX + name,
        help,
        labelNames: ['destination', 'table'],
        registers,
        async collect() {
          const rows = await backlog();
          this.reset();
          for (const b of rows) if (b.destination !== '') this.set({ destination: b.destination, table: tableLabel(b) }, value(b));
        },
      });
    backlogGauge(
      'journal_pending',
      "Events of the table still in the destination's queue: waiting, retrying or in flight (counted among its oldest 100000).",
      (b) => b.pending,
    );
    backlogGauge(
      'journal_oldest_pending_age_seconds',
      "Age of the oldest event of the table in the destination's queue; 0 when there is none.",
      (b) => b.oldestPendingSeconds,
    );
    backlogGauge('dead_letters', "Events of the table in the destination's dead letters now (counted among the oldest 100000 dead letters).", (b) => b.deadLetters);
    new Gauge({
      name: PREFIX + 'journal_unrouted',
      help: 'Changes of the table captured but not yet moved into the destinations\' queues (counted among the oldest 100000).',
      labelNames: ['table'],
      registers,
      async collect() {
        const rows = await backlog();
        this.reset();
        for (const b of rows) if (b.destination === '') this.set({ table: tableLabel(b) }, b.pending);
      },
    });
    // Backfills: one series per unfinished backfill (destination "*": every destination of the table).
    const backfills = () => this.backfills();
    const backfillGauge = (name: string, help: string, value: (b: BackfillRecord) => number | null) =>
      new Gauge({
        name: PREFIX + name,
        help,
        labelNames: ['backfill', 'table', 'destination'],
        registers,
        async collect() {
          const rows = await backfills();
          this.reset();
          for (const b of rows) {
            const v = value(b);
            if (v !== null) this.set({ backfill: b.id, table: tableLabel(b), destination: b.destination ?? '*' }, v);
          }
        },
      });
    const rateOf = (b: BackfillRecord) => runRate(b.rowsDone, b.rowsAtResume, b.resumedAt, b.updatedAt);
    backfillGauge('backfill_rows', 'Rows an unfinished backfill has journaled so far.', (b) => b.rowsDone);
    backfillGauge('backfill_rows_estimated', "The database's estimate of the rows an unfinished backfill reads in all (at least the rows done).", (b) =>
      progressOf(b.rowsDone, b.rowsEstimated, 0).rowsTotal,
    );
    backfillGauge('backfill_rate', 'Rows per second of the current run of an unfinished backfill (0 while none runs it).', (b) =>
      Date.now() - b.updatedAt.getTime() > 30_000 ? 0 : rateOf(b),
    );
    backfillGauge('backfill_eta_seconds', 'Seconds an unfinished backfill needs at its current rate; absent when not known.', (b) =>
      progressOf(b.rowsDone, b.rowsEstimated, Date.now() - b.updatedAt.getTime() > 30_000 ? 0 : rateOf(b)).etaSeconds,
    );
    new Gauge({
      name: PREFIX + 'database_connected',
      help: '1 while the database answers every query of this instance and its LISTEN connection is in place, else 0.',
      registers,
      async collect() {
        await backlog();
        this.set(status.connected() ? 1 : 0);
      },
    });
  }

  /** Connects the scrape-time gauges to the running daemon. */
  attach(sources: MetricsSources): void {
    this.sources = sources;
    if (sources.captureLag) this.registerCapture(sources);
  }
  /** Log capture's gauges and counter: registered only when the daemon has a log reader. */
  private registerCapture(sources: MetricsSources): void {
    const registers = [this.registry];
    const captureLag = async () => {
      try {
        return await sources.captureLag?.();
      } catch {
        return undefined;
      }
    };
    new Gauge({
      name: PREFIX + 'capture_slot_lag_bytes',
      help: 'Log capture: bytes of the database log not yet journaled (PostgreSQL: WAL the replication slot holds, what an unread slot keeps on disk; MySQL: binlog written after the stored position). Absent with trigger capture.',
      registers,
      async collect() {
        const lag = await captureLag();
        this.reset();
        if (lag?.bytes !== undefined) this.set(lag.bytes);
      },
    });
    new Gauge({
      name: PREFIX + 'capture_lag_seconds',
      help: 'Log capture, on the instance reading the log: 0 when caught up, else the age of the last source transaction read. Absent with trigger capture.',
      registers,
      async collect() {
        const lag = await captureLag();
        this.reset();
        if (lag !== undefined) this.set(lag.seconds);
      },
    });
    const journaled = new Counter({
      name: PREFIX + 'capture_changes_journaled_total',
      help: 'Log capture: changes the reader of this instance wrote into the journal.',
      registers,
    });
    this.bus.on('capture:journaled', ({ rows }) => journaled.inc(rows));
  }


  /** The Prometheus text and its content type. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  /** The unfinished backfills, at most a second old; a failing query keeps the last ones. */
  async backfills(): Promise<BackfillRecord[]> {
    const read = this.sources?.backfills?.bind(this.sources);
    if (!read || Date.now() - this.backfillsAt < BACKLOG_MAX_AGE_MS) return this.lastBackfills;
    const fetching = (this.fetchingBackfills ??= read()
      .then(
        (rows) => {
          this.lastBackfills = rows;
        },
        () => undefined,
      )
      .finally(() => {
        this.backfillsAt = Date.now();
        this.fetchingBackfills = undefined;
      }));
    await settleWithin(fetching, BACKLOG_TIMEOUT_MS);
    return this.lastBackfills;
  }

  /**
   * The backlog, at most a second old. A query that fails (or takes too long) keeps
   * the last values and marks the database unreachable until one answers again.
   */
  async backlog(): Promise<TableBacklog[]> {
    const sources = this.sources;
    if (!sources) return this.last;
    if (Date.now() - this.fetchedAt < BACKLOG_MAX_AGE_MS) return this.last;
    const fetching = (this.fetching ??= sources
      .backlog()
      .then(
        (rows) => {
          this.last = rows;
          this.status.recordProbe(undefined);
        },
        (err: unknown) => this.status.recordProbe(describeError(err)),
      )
      .finally(() => {
        this.fetchedAt = Date.now();
        this.fetching = undefined;
      }));
    if (!(await settleWithin(fetching, BACKLOG_TIMEOUT_MS))) {
      this.status.recordProbe(`no answer to a query within ${BACKLOG_TIMEOUT_MS / 1000} s`);
    }
    return this.last;
  }
}
