/**
 * What the two log readers (postgres/logical, mysql/binlog) share: one reader per
 * journal, under a lease in the database, that reconnects until stopped.
 *
 *   standby ──(lease free)──> take the lease ──> prepare ──> stream ──(error)──> back off, again
 *      ^                          │ (taken by another)                   │ (stop)
 *      └──────────────────────────┘                                      └──> clients closed
 *
 * - An instance without the lease waits, and takes the log over within
 *   LEASE_RETRY_MS of its reader's end (its lease ends with the reader's session).
 * - A lost connection is reported (capture:lost) and retried with a doubling back-off.
 * - stop() ends the stream: at once when it starts if the stop came during set-up
 *   (failureLatch), and waits for the loop to have closed its clients.
 * Each reader supplies the database's part: the lease, the set-up, the stream, and
 * closing its clients (an open journal transaction is rolled back with them).
 */
import type { Logger } from 'pino';
import type { DaemonEventBus } from '../observability/events.js';
import { describeError } from '../util/errors.js';
import { delay, failureLatch, jitter, type FailureLatch } from '../util/wake.js';

const LEASE_RETRY_MS = 2_000;
const RECONNECT_MIN_MS = 250;
const RECONNECT_MAX_MS = 10_000;

export abstract class LeasedLogReader {
  private readonly stopController = new AbortController();
  private running: Promise<void> | undefined;
  /** Ends the current stream with an error (set while a stream runs: for errors of its connections). */
  protected failure: ((err: unknown) => void) | undefined;
  /** The pump writing the stream's messages into the journal, if one runs. */
  protected pumping: Promise<void> | undefined;
  /** True while this instance holds the lease and streams. */
  leading = false;

  protected constructor(
    protected readonly bus: DaemonEventBus,
    protected readonly log: Logger,
    /** What is read, for the log: "the binary log", "the replication slot". */
    private readonly what: string,
  ) {}

  start(): void {
    this.running ??= this.supervise();
  }

  async stop(): Promise<void> {
    this.stopController.abort();
    this.failure?.(new Error('stopping'));
    await this.running;
  }

  /** True while another session holds the lease (false when that cannot be known: then the lease is tried). */
  protected abstract leaseHeldElsewhere(): Promise<boolean>;
  /** Connects and tries the lease; false when another session holds it. */
  protected abstract takeLease(): Promise<boolean>;
  /** With the lease: the stream's starting point and state. */
  protected abstract prepare(): Promise<void>;
  /**
   * Streams until the connection fails (throws) or the reader stops (returns). `end.failed`
   * rejects on the stream's first `end.fail(err)`, or with "stopping" once the reader stops.
   */
  protected abstract stream(signal: AbortSignal, end: Pick<FailureLatch, 'failed' | 'fail'>): Promise<void>;
  protected abstract closeClients(): Promise<void>;
  /** After the last stream, once stopped. */
  protected async closed(): Promise<void> {}
  /** What an error means for the operator, as capture:lost reports it. */
  protected explain(err: unknown): unknown {
    return err;
  }

  private async supervise(): Promise<void> {
    const signal = this.stopController.signal;
    let backoff = RECONNECT_MIN_MS;
    let waitingLogged = false;
    const standby = async () => {
      if (!waitingLogged) this.log.info(`Another instance reads ${this.what}; this one will take over if it stops`);
      waitingLogged = true;
      await delay(jitter(LEASE_RETRY_MS), signal);
    };
    while (!signal.aborted) {
      if (await this.leaseHeldElsewhere()) {
        await standby();
        continue;
      }
      try {
        if (!(await this.takeLease())) {
          await this.closeClients();
          backoff = RECONNECT_MIN_MS;
          await standby();
          continue;
        }
        waitingLogged = false;
        if (signal.aborted) break;
        await this.prepare();
        if (signal.aborted) break;
        // The stream's end, and `failure` while it runs: a stop from here on is seen at
        // once, also one that comes before the stream has started (failureLatch).
        const latch = failureLatch(signal);
        this.failure = latch.fail;
        try {
          await this.stream(signal, latch);
        } finally {
          latch.dispose();
          this.failure = undefined;
        }
        if (signal.aborted) break;
      } catch (err) {
        if (signal.aborted) break;
        const wait = jitter(backoff);
        this.bus.emit('capture:lost', { error: describeError(this.explain(err)), retryInMs: Math.round(wait) });
        this.leading = false;
        await this.closeClients();
        // The pump of the lost connection ends once its writer query fails.
        await this.pumping?.catch(() => undefined);
        await delay(wait, signal);
        backoff = Math.min(backoff * 2, RECONNECT_MAX_MS);
        continue;
      }
      backoff = RECONNECT_MIN_MS;
    }
    this.leading = false;
    await this.closeClients();
    await this.closed();
  }
}
