/**
 * The attempt log: one entry per delivery attempt (where it went, the request with
 * its secrets redacted, the answer's start, the outcome), for the web console's
 * Deliveries and Event pages (docs/console.md).
 *
 * It is a diagnostic log, never part of delivery: the dispatcher hands each attempt
 * to `record`, which only keeps references in a bounded buffer (no formatting, no
 * copy). A timer writes the buffer in one statement per batch, formatting and
 * redacting there, and prunes the table to its bounds (rows and age) with one
 * statement now and then. When the buffer is full (the database is slow or
 * unreachable) new entries are skipped and counted (`attempts:skipped`): a delivery
 * never waits for its log entry, and memory stays bounded.
 *
 * Under load it samples: every failed attempt (retry, dead) is kept, but only the
 * first DELIVERED_PER_SECOND delivered attempts of each second; the rest are skipped
 * and counted. At that rate the default bound (10,000 rows) holds about a minute of a
 * busy daemon's deliveries, where logging every one would hold two seconds of a drain
 * at 5,000 events/s and double the database's writes per event: a drain of 200,000
 * on PostgreSQL ran at 0.68x with every delivered attempt logged (docs/performance.md).
 */
import type { DeliveryPlan } from '../dispatch/destination.js';
import type { SinkMessage, SinkResult } from '../delivery/sink.js';
import type { DaemonEventBus } from '../observability/events.js';
import { redactSecrets } from '../observability/redact.js';
import { describeError } from '../util/errors.js';
import type { JournalEvent } from './types.js';

/** One row of the attempt log, as written. */
export interface AttemptRow {
  readonly destination: string;
  /** Journal id (the number of the event id). */
  readonly id: string;
  readonly schema: string;
  readonly table: string;
  readonly op: string;
  readonly rowKey: string | null;
  readonly attempt: number;
  /** Milliseconds since the epoch, when the attempt ended. */
  readonly atMs: number;
  readonly durationMs: number;
  readonly address: string;
  /** JSON object of the request headers, secrets redacted. */
  readonly requestHeaders: string;
  readonly requestBody: string;
  readonly responseStatus: number | null;
  readonly responseBody: string | null;
  readonly error: string | null;
  readonly outcome: AttemptOutcome;
}

export type AttemptOutcome = 'delivered' | 'retry' | 'dead';

/** Where the log is kept: the journal's database. */
export interface AttemptStore {
  writeAttempts(rows: readonly AttemptRow[]): Promise<void>;
  /** Removes all but the newest `maxRows`, and those older than `maxAgeSeconds`; returns how many. */
  pruneAttempts(maxRows: number, maxAgeSeconds: number): Promise<number>;
}

export interface AttemptLogOptions {
  readonly maxRows: number;
  readonly maxAgeSeconds: number;
  /** Entries waiting to be written at most; beyond, new ones are skipped. Default 2,000. */
  readonly maxBuffered?: number;
  /** Milliseconds between writes. Default 1,000. */
  readonly flushMs?: number;
  /** Milliseconds between prunes. Default 30,000. */
  readonly pruneMs?: number;
  /** Delivered attempts kept per second at most. Default DELIVERED_PER_SECOND. */
  readonly deliveredPerSecond?: number;
}

/** Bytes of a request body kept (a batch's body can be large); the rest is cut, with a marker. */
export const REQUEST_BODY_BYTES = 16 * 1024;
/** Bytes of a response body kept. */
export const RESPONSE_BODY_BYTES = 4 * 1024;
/** Delivered attempts logged per second at most (failed ones are always logged); see above. */
export const DELIVERED_PER_SECOND = 200;
/** Entries per statement: a bigger buffer is written in several. */
const ROWS_PER_WRITE = 500;
const REDACTED = '[redacted]';

/**
 * Header names whose values are credentials: authorization, the signature, cookies,
 * and any name that says token, secret, key, password, auth or signature.
 */
const SECRET_HEADER = /authorization|signature|cookie|token|secret|password|passwd|api[-_]?key|auth|session|^x-.*key$/i;

/** The request headers (flat [name, value, …]) as a JSON object, secret values replaced. */
export function redactRequestHeaders(flat: readonly string[] | undefined, secrets: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  if (flat === undefined) return out;
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const name = flat[i]!.toLowerCase();
    out[name] = SECRET_HEADER.test(name) ? REDACTED : redactSecrets(flat[i + 1]!, secrets);
  }
  return out;
}

/** `text` cut to `bytes` of UTF-8 (never in the middle of a character), with a marker when cut. */
export function truncateUtf8(text: string, bytes: number): string {
  if (text.length * 3 <= bytes || Buffer.byteLength(text) <= bytes) return text;
  const cut = Buffer.from(text).subarray(0, bytes).toString('utf8').replace(/\uFFFD+$/, '');
  return `${cut}… [cut at ${bytes} bytes]`;
}

interface Pending {
  readonly destination: AttemptRecorder;
  readonly event: JournalEvent;
  readonly message: SinkMessage;
  readonly result: SinkResult;
  readonly outcome: AttemptOutcome;
  readonly atMs: number;
}

/** One destination's side of the log: what the dispatcher calls. */
export class AttemptRecorder {
  constructor(
    private readonly log: AttemptLog,
    readonly name: string,
    /** Where it sends (no credentials), when the sink does not say. */
    readonly address: string,
    readonly plan: Pick<DeliveryPlan, 'rowKey'>,
    /** Literal secrets of the destination (signing secrets, credentials), masked wherever they appear. */
    readonly secrets: readonly string[],
  ) {}

  /** Keeps one attempt for the next write. Cheap: references only. */
  record(event: JournalEvent, message: SinkMessage, result: SinkResult, outcome: AttemptOutcome): void {
    this.log.push({ destination: this, event, message, result, outcome, atMs: Date.now() });
  }
}

export class AttemptLog {
  private buffer: Pending[] = [];
  private timer: NodeJS.Timeout | undefined;
  private pruneTimer: NodeJS.Timeout | undefined;
  private writing: Promise<void> | undefined;
  private failing = false;
  private pruneFailing = false;
  /** The second (Date.now() / 1000) whose delivered attempts `admitted` counts. */
  private second = 0;
  private admitted = 0;
  /** Skipped entries not yet reported on the bus. */
  private unreported = 0;
  /** Entries skipped because the buffer was full, since start. */
  skipped = 0;
  written = 0;

  constructor(
    private readonly store: AttemptStore,
    private readonly bus: DaemonEventBus,
    private readonly opts: AttemptLogOptions,
  ) {}

  forDestination(name: string, address: string, plan: Pick<DeliveryPlan, 'rowKey'>, secrets: readonly string[]): AttemptRecorder {
    return new AttemptRecorder(this, name, address, plan, secrets.filter((s) => s.length > 0));
  }

  push(p: Pending): void {
    if (p.outcome === 'delivered') {
      const second = Math.floor(p.atMs / 1000);
      if (second !== this.second) {
        this.second = second;
        this.admitted = 0;
      }
      if (this.admitted >= (this.opts.deliveredPerSecond ?? DELIVERED_PER_SECOND)) {
        // Counted here, reported with the next write: one event per second, not per delivery.
        this.skipped++;
        this.unreported++;
        return;
      }
      this.admitted++;
    }
    if (this.buffer.length >= (this.opts.maxBuffered ?? 2_000)) {
      this.skipped++;
      this.bus.emit('attempts:skipped', { count: 1 });
      return;
    }
    this.buffer.push(p);
  }

  start(): void {
    this.timer ??= setInterval(() => void this.flush(), this.opts.flushMs ?? 1_000);
    this.timer.unref();
    this.pruneTimer ??= setInterval(() => void this.prune(), this.opts.pruneMs ?? 30_000);
    this.pruneTimer.unref();
  }

  /** Writes what is buffered (stop calls it last). */
  flush(): Promise<void> {
    this.writing ??= this.write().finally(() => {
      this.writing = undefined;
    });
    return this.writing;
  }

  async prune(): Promise<void> {
    try {
      await this.store.pruneAttempts(this.opts.maxRows, this.opts.maxAgeSeconds);
      if (this.pruneFailing) {
        this.pruneFailing = false;
        this.bus.emit('journal:recovered', { operation: 'prune the attempt log' });
      }
    } catch (err) {
      this.pruneFailing = true;
      this.bus.emit('journal:error', { operation: 'prune the attempt log', error: describeError(err), retryInMs: this.opts.pruneMs ?? 30_000 });
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    clearInterval(this.pruneTimer);
    await this.writing;
    await this.flush();
  }

  /**
   * Whether a delivered attempt ending now would be logged: the webhook keeps a 2xx
   * answer's body only then (reading it costs a copy per response).
   */
  wantsDelivered(): boolean {
    return Math.floor(Date.now() / 1000) !== this.second || this.admitted < (this.opts.deliveredPerSecond ?? DELIVERED_PER_SECOND);
  }

  private async write(): Promise<void> {
    if (this.failing && this.buffer.length === 0) {
      // What failed was dropped, and nothing waits: this log fails at nothing now. (Whether
      // the database answers is the backlog probe's to say; otherwise, with no delivery
      // after an outage, the daemon would stay "not ready" for ever.)
      this.failing = false;
      this.bus.emit('journal:recovered', { operation: 'write the attempt log' });
    }
    if (this.unreported > 0) {
      this.bus.emit('attempts:skipped', { count: this.unreported });
      this.unreported = 0;
    }
    while (this.buffer.length > 0) {
      const batch = this.buffer.splice(0, ROWS_PER_WRITE);
      try {
        await this.store.writeAttempts(batch.map(toRow));
        this.written += batch.length;
        this.bus.emit('attempts:written', { count: batch.length });
        if (this.failing) {
          this.failing = false;
          this.bus.emit('journal:recovered', { operation: 'write the attempt log' });
        }
      } catch (err) {
        // A diagnostic log: what could not be written is dropped (and counted), never retried
        // ahead of new entries, so a database outage cannot grow it.
        this.skipped += batch.length;
        this.bus.emit('attempts:skipped', { count: batch.length });
        if (!this.failing) {
          this.failing = true;
          this.bus.emit('journal:error', { operation: 'write the attempt log', error: describeError(err), retryInMs: this.opts.flushMs ?? 1_000 });
        }
        return;
      }
    }
  }
}

/** The row of one attempt: formatting and redaction happen here, off the delivery path. */
export function toRow(p: Pending): AttemptRow {
  const d = p.destination;
  const { event: e, result: r } = p;
  const headers = redactRequestHeaders(r.detail?.requestHeaders, d.secrets);
  if (r.detail?.requestHeaders === undefined) {
    headers['content-type'] = p.message.contentType;
    for (const [name, value] of Object.entries(p.message.headers)) headers[name] = SECRET_HEADER.test(name) ? REDACTED : value;
  }
  const status = r.kind === 'success' ? r.status : (r.status ?? null);
  const answer = r.detail?.responseBody ?? (r.kind === 'success' && r.detail === undefined ? 'ack' : null);
  return {
    destination: d.name,
    id: e.id,
    schema: e.schema,
    table: e.table,
    op: e.op,
    rowKey: d.plan.rowKey(e) ?? null,
    attempt: e.attempts,
    atMs: p.atMs,
    durationMs: r.durationMs,
    address: r.detail?.address ?? d.address,
    requestHeaders: JSON.stringify(headers),
    requestBody: truncateUtf8(p.message.body, REQUEST_BODY_BYTES),
    responseStatus: status,
    responseBody: answer === null ? null : truncateUtf8(redactSecrets(answer, d.secrets), RESPONSE_BODY_BYTES),
    error: r.kind === 'success' ? null : redactSecrets(r.error, d.secrets),
    outcome: p.outcome,
  };
}
