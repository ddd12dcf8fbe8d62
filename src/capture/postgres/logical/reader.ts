/**
 * The log reader (listener.capture: log): reads the replication slot over the
 * streaming replication protocol (pgoutput) and writes every change of the watched
 * tables into the journal's inbox (events), where the router takes it exactly as it
 * takes the trigger's rows. Nothing downstream knows how a change was captured.
 *
 * Why our own reader on `pg`'s replication connection rather than a library
 * (pg-logical-replication 2.x): the position we confirm must follow our journal's
 * commit, never the receipt of a message; we need the raw text of every value with
 * the column's type OID and typmod (to let the server rebuild the JSON exactly as the
 * trigger does), the 32-bit xid and commit LSN of each transaction, and the keepalives
 * (to keep an idle slot advancing). pgoutput version 1 is a small documented format
 * (protocol.ts); driving it directly keeps all of that in our hands with no new
 * dependency.
 *
 * Guarantees:
 * - The journal transaction that writes a source transaction's changes also records
 *   its commit LSN (capture_positions). The slot's position is confirmed only after
 *   that commit. On a restart the server sends again everything after the confirmed
 *   position, and transactions whose commit LSN is at or below the recorded one are
 *   skipped: each source transaction is journaled exactly once, whatever fails when.
 * - Several source transactions may share one journal transaction (group commit: one
 *   fsync for a burst of small transactions); a source transaction is never split, so
 *   a large one is written in batches into one journal transaction, never held in
 *   memory. The server spills a transaction larger than logical_decoding_work_mem to
 *   disk and sends it at its commit (pgoutput streaming, which sends in-progress
 *   transactions that may still abort, is not used).
 * - One reader per slot: the reader holds an advisory lock (the lease) on its
 *   replication connection; other instances look for it every ~2 s on an ordinary
 *   connection (waiting takes no WAL sender) and take over as soon as the holder's
 *   connection is gone.
 * - Backpressure: while more than MAX_QUEUED_BYTES (1 MB) of messages wait, the socket is
 *   paused and the server waits.
 */
import { createHash } from 'node:crypto';
import pg from 'pg';
import Denque from 'denque';
import type { Logger } from 'pino';
import type { DaemonEventBus } from '../../../observability/events.js';
import { LeasedLogReader } from '../../log-reader.js';
import type { FailureLatch } from '../../../util/wake.js';
import type { ResolvedTable } from '../../source.js';
import type { Queries } from '../queries.js';
import { quoteIdent, quoteLiteral } from '../sql.js';
import {
  UNCHANGED,
  formatLsn,
  parseLsn,
  parseStreamMessage,
  pgTimeToIso,
  pgTimeToMs,
  standbyStatusUpdate,
  type LogicalMessage,
  type RelationMessage,
  type StreamMessage,
  type TupleValue,
} from './protocol.js';

/** Rows sent to the journal in one statement. */
const BATCH_ROWS = 500;
/** Bytes of values sent in one statement at most (a batch of wide rows is cut earlier). */
const BATCH_BYTES = 4 * 1024 * 1024;
/** A journal transaction (group of source transactions) is committed after this many rows... */
const GROUP_ROWS = 5_000;
/** ...or this long after it began, whatever still comes. */
const GROUP_MS = 200;
/** Messages received but not processed yet: above this the socket is paused. */
const MAX_QUEUED_BYTES = 1024 * 1024;
/** The confirmed position is sent at least this often (the server's wal_sender_timeout is 60 s by default). */
const STATUS_INTERVAL_MS = 1_000;

export interface LogicalReaderOptions {
  readonly slot: string;
  readonly publication: string;
  readonly leaseKey: string;
  readonly waitLockKey: string;
  readonly tables: readonly ResolvedTable[];
}

interface Shape {
  readonly schema: string;
  readonly table: string;
  readonly columns: readonly { readonly name: string; readonly type: string }[];
  readonly keyColumns: readonly string[];
  readonly statement: { readonly name: string; readonly text: string };
}

interface Batch {
  readonly shape: Shape;
  readonly xids: number[];
  readonly times: string[];
  readonly ops: string[];
  readonly hasOld: boolean[];
  readonly newCols: (string | null)[][];
  readonly oldCols: (string | null)[][];
  bytes: number;
}

interface SourceTx {
  readonly commitLsn: bigint;
  readonly xid: number;
  readonly commitTime: string;
  readonly skip: boolean;
}

/** What the metrics and status show about the reader. */
export interface CaptureProgress {
  /** True while this instance holds the lease and streams. */
  readonly leading: boolean;
  /** Last position confirmed to the slot. */
  readonly confirmedLsn: string | undefined;
  /** Seconds behind: 0 when caught up, else the age of the last commit journaled. */
  readonly lagSeconds: number;
}

export class LogicalReader extends LeasedLogReader {
  private repl: pg.Client | undefined;
  /** Settles with the replication connection's error or end. */
  private lost: Promise<unknown> | undefined;
  private writer: pg.Client | undefined;
  /** An ordinary connection on which an instance without the lease watches for it to be free. */
  private probe: pg.Client | undefined;
  private readonly watched: Map<string, ResolvedTable>;
  private readonly relations = new Map<number, Shape | null>();
  /** Tables already warned about for changes without their old row. */
  private readonly warnedNoOldRow = new Set<string>();
  // The stream's state, reset on every connection.
  /** A ring buffer: Array.prototype.shift copies what is left of a long array at every call. */
  private readonly queue = new Denque<{ readonly msg: StreamMessage; readonly bytes: number }>();
  private queuedBytes = 0;
  private paused = false;
  /** Counts connections: a pump of an earlier connection stops instead of reading this one's queue. */
  private generation = 0;
  private tx: SourceTx | undefined;
  private batch: Batch | undefined;
  /** A journal transaction is open on the writer connection. */
  private journalOpen = false;
  /** Rows written in the open journal transaction (batched rows not counted). */
  private groupRows = 0;
  /** When the group's first source transaction committed (0: no group). */
  private groupStarted = 0;
  /** The last source transaction of the group: what the next journal commit records and confirms. */
  private groupEnd: { commitLsn: bigint; endLsn: bigint; commitTime: string } | undefined;
  /** Commit LSN of the last source transaction in the journal (read at connect, then ours). */
  private journaledCommitLsn = 0n;
  /** What may be confirmed to the slot; only ever grows (within a connection). */
  private confirmed = 0n;
  /** The position last sent in a standby status update. */
  private sent = -1n;
  private lastSentAt = 0;
  private caughtUp = true;
  private lastCommitMs = 0;

  constructor(
    private readonly clientConfig: pg.ClientConfig,
    private readonly q: Queries,
    private readonly opts: LogicalReaderOptions,
    bus: DaemonEventBus,
    log: Logger,
  ) {
    super(bus, log, 'the replication slot');
    this.watched = new Map(opts.tables.map((t) => [`${t.schema}.${t.name}`, t]));
  }

  progress(): CaptureProgress {
    return {
      leading: this.leading,
      confirmedLsn: this.confirmed > 0n ? formatLsn(this.confirmed) : undefined,
      lagSeconds: this.caughtUp || this.lastCommitMs === 0 ? 0 : Math.max(0, (Date.now() - this.lastCommitMs) / 1000),
    };
  }

  private get name(): string {
    return this.clientConfig.application_name ?? 'app-db-listener';
  }

  protected async takeLease(): Promise<boolean> {
    const repl = new pg.Client({ ...this.clientConfig, application_name: `${this.name}:capture`, replication: 'database' } as pg.ClientConfig);
    this.repl = repl;
    this.lost = new Promise<unknown>((resolve) => {
      repl.on('error', resolve);
      repl.on('end', () => resolve(new Error('replication connection ended')));
    });
    await repl.connect();
    const lease = await repl.query<{ ok: boolean }>(this.q.tryCaptureLease(this.opts.leaseKey));
    return lease.rows[0]?.ok === true;
  }

  protected async prepare(): Promise<void> {
    await this.probe?.end().catch(() => undefined);
    this.probe = undefined;
    const writer = new pg.Client({ ...this.clientConfig, application_name: `${this.name}:capture-journal` });
    this.writer = writer;
    writer.on('error', (err) => this.failure?.(err));
    await writer.connect();
    const pos = await writer.query<{ commit_lsn: string; end_lsn: string }>(this.q.capturePosition, [this.opts.slot]);
    this.journaledCommitLsn = pos.rows[0] ? parseLsn(pos.rows[0].commit_lsn) : 0n;
    this.resetStream();
  }

  protected override async closed(): Promise<void> {
    await this.probe?.end().catch(() => undefined);
    this.probe = undefined;
  }

  protected async leaseHeldElsewhere(): Promise<boolean> {
    const name = this.name;
    try {
      if (!this.probe) {
        const probe = new pg.Client({ ...this.clientConfig, application_name: `${name}:capture-standby` });
        probe.on('error', () => {
          if (this.probe === probe) this.probe = undefined;
        });
        await probe.connect();
        this.probe = probe;
      }
      const r = await this.probe.query<{ held: boolean }>(this.q.captureLeaseHeld, [this.opts.leaseKey]);
      return r.rows[0]?.held === true;
    } catch {
      await this.probe?.end().catch(() => undefined);
      this.probe = undefined;
      return false;
    }
  }

  protected async closeClients(): Promise<void> {
    const writer = this.writer;
    this.writer = undefined;
    if (writer) {
      // An open journal transaction is rolled back with its connection: its source
      // transactions were not confirmed, the slot sends them again.
      await writer.end().catch(() => undefined);
    }
    const repl = this.repl;
    this.repl = undefined;
    await repl?.end().catch(() => undefined);
  }

  private resetStream(): void {
    this.generation++;
    this.pumping = undefined;
    this.queue.clear();
    this.queuedBytes = 0;
    this.paused = false;
    this.tx = undefined;
    this.batch = undefined;
    this.journalOpen = false;
    this.groupRows = 0;
    this.groupStarted = 0;
    this.groupEnd = undefined;
    this.relations.clear();
    this.confirmed = 0n;
    this.sent = -1n;
  }

  protected async stream(signal: AbortSignal, end: Pick<FailureLatch, 'failed' | 'fail'>): Promise<void> {
    const repl = this.repl!;
    const connection = (repl as unknown as { connection: ReplicationConnection }).connection;
    void this.lost!.then(end.fail);
    connection.on('copyData', (msg: { chunk: Buffer }) => {
      try {
        this.enqueue(parseStreamMessage(msg.chunk), msg.chunk.length, connection);
      } catch (err) {
        end.fail(err);
      }
    });
    const started = new Promise<void>((resolve) => connection.once('replicationStart', () => resolve()));
    const sql = `START_REPLICATION SLOT ${quoteIdent(this.opts.slot)} LOGICAL 0/0 (proto_version '1', publication_names ${quoteLiteral(
      quoteIdent(this.opts.publication),
    )})`;
    // The query's own callback runs only when the stream ends (an error, or CopyDone).
    repl.query(sql).then(
      () => end.fail(new Error('the replication stream ended')),
      (err: unknown) => end.fail(err),
    );
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([started, end.failed]);
      this.leading = true;
      this.bus.emit('capture:connected', { slot: this.opts.slot });
      timer = setInterval(() => {
        this.sendStatus(connection, false);
      }, STATUS_INTERVAL_MS);
      await end.failed;
    } catch (err) {
      if (!signal.aborted) throw err;
      // Stopping: let the message being written finish, then confirm what is journaled
      // (nothing to confirm on a stream stopped before it started).
      await this.pumping?.catch(() => undefined);
      if (this.leading) this.sendStatus(connection, true);
    } finally {
      clearInterval(timer);
      this.leading = false;
    }
  }

  private enqueue(msg: StreamMessage, bytes: number, connection: ReplicationConnection): void {
    this.queue.push({ msg, bytes });
    this.queuedBytes += bytes;
    if (!this.paused && this.queuedBytes > MAX_QUEUED_BYTES) {
      this.paused = true;
      connection.stream.pause();
    }
    if (this.pumping) return;
    const pumping = this.pump(connection, this.generation).finally(() => {
      if (this.pumping === pumping) this.pumping = undefined;
    });
    this.pumping = pumping;
  }

  private async pump(connection: ReplicationConnection, generation: number): Promise<void> {
    try {
      while (generation === this.generation) {
        const next = this.queue.shift();
        if (next === undefined) break;
        this.queuedBytes -= next.bytes;
        await this.handle(next.msg, connection);
        if (this.paused && this.queuedBytes < MAX_QUEUED_BYTES / 2) {
          this.paused = false;
          connection.stream.resume();
        }
        // Nothing else waits: a finished group of source transactions commits now.
        if (this.queue.length === 0 && this.tx === undefined && this.pendingJournal()) await this.commitJournal(connection);
      }
    } catch (err) {
      if (generation === this.generation) this.failure?.(err);
    }
  }

  private async handle(msg: StreamMessage, connection: ReplicationConnection): Promise<void> {
    if (msg.tag === 'keepalive') {
      // Idle (nothing received is unjournaled): everything up to the server's position
      // is done, so the slot advances on a database with no changes of ours.
      if (this.tx === undefined && !this.pendingJournal() && this.queue.length === 0) {
        this.caughtUp = true;
        if (msg.walEnd > this.confirmed) this.confirmed = msg.walEnd;
      }
      if (msg.replyRequested) this.sendStatus(connection, true);
      return;
    }
    await this.handleLogical(msg.message, connection);
  }

  private async handleLogical(m: LogicalMessage, connection: ReplicationConnection): Promise<void> {
    switch (m.tag) {
      case 'begin':
        this.caughtUp = false;
        this.tx = {
          commitLsn: m.finalLsn,
          xid: m.xid,
          commitTime: pgTimeToIso(m.commitTimeUs),
          skip: m.finalLsn <= this.journaledCommitLsn,
        };
        this.lastCommitMs = pgTimeToMs(m.commitTimeUs);
        return;
      case 'relation':
        this.relations.set(m.relid, await this.shapeOf(m));
        return;
      case 'insert':
      case 'update':
      case 'delete':
        return this.addRow(m);
      case 'truncate': {
        const tx = this.tx;
        if (!tx || tx.skip) return;
        await this.flushBatch();
        for (const relid of m.relids) {
          const shape = this.relations.get(relid);
          if (!shape) continue;
          await this.openJournal();
          await this.writer!.query(this.q.insertCapturedTruncate, [shape.schema, shape.table, tx.xid, tx.commitTime]);
          this.groupRows++;
        }
        return;
      }
      case 'commit': {
        const tx = this.tx;
        this.tx = undefined;
        if (!tx || tx.skip) {
          // Already in the journal (sent again after a restart), or nothing of ours.
          if (m.endLsn > this.confirmed && !this.pendingJournal()) this.confirmed = m.endLsn;
          return;
        }
        if (this.pendingJournal()) {
          // Its rows are written or batched; the next journal commit covers it.
          this.groupEnd = { commitLsn: m.commitLsn, endLsn: m.endLsn, commitTime: tx.commitTime };
          this.journaledCommitLsn = m.commitLsn;
          this.groupStarted ||= Date.now();
          const rows = this.groupRows + (this.batch?.ops.length ?? 0);
          if (rows >= GROUP_ROWS || Date.now() - this.groupStarted >= GROUP_MS) await this.commitJournal(connection);
        } else if (m.endLsn > this.confirmed) {
          this.confirmed = m.endLsn;
        }
        return;
      }
      case 'other':
        return;
    }
  }

  private addRow(m: Extract<LogicalMessage, { tag: 'insert' | 'update' | 'delete' }>): Promise<void> | undefined {
    const tx = this.tx;
    if (!tx || tx.skip) return undefined;
    const shape = this.relations.get(m.relid);
    if (!shape) return undefined; // not a watched table
    let newTuple: readonly TupleValue[] | undefined;
    let oldTuple: readonly TupleValue[] | undefined;
    let op: string;
    if (m.tag === 'insert') {
      op = 'INSERT';
      newTuple = m.newTuple;
    } else if (m.tag === 'update') {
      op = 'UPDATE';
      newTuple = m.newTuple;
      oldTuple = m.oldKind === 'O' ? m.oldTuple : undefined;
    } else {
      op = 'DELETE';
      // Without REPLICA IDENTITY FULL only the key columns are sent ('K'): the event
      // carries them, the other columns null (docs/capture.md).
      oldTuple = m.oldTuple;
    }
    if (op !== 'INSERT' && (m.tag === 'insert' || m.oldKind !== 'O')) this.warnNoOldRow(shape);
    let batch = this.batch;
    const flushFirst = batch !== undefined && batch.shape !== shape;
    const push = (): Promise<void> | undefined => {
      batch = this.batch ??= { shape, xids: [], times: [], ops: [], hasOld: [], newCols: shape.columns.map(() => []), oldCols: shape.columns.map(() => []), bytes: 0 };
      batch.xids.push(tx.xid);
      batch.times.push(tx.commitTime);
      batch.ops.push(op);
      batch.hasOld.push(oldTuple !== undefined);
      for (let i = 0; i < shape.columns.length; i++) {
        const oldValue = text(oldTuple?.[i]);
        // An unchanged TOASTed value is not sent again: with REPLICA IDENTITY FULL the
        // old row has it (install sets FULL); without, it is null (docs/capture.md).
        const raw = newTuple?.[i];
        const newValue = raw === UNCHANGED ? oldValue : text(raw);
        batch.newCols[i]!.push(newValue);
        batch.oldCols[i]!.push(oldValue);
        batch.bytes += (newValue?.length ?? 0) + (oldValue?.length ?? 0);
      }
      if (batch.ops.length >= BATCH_ROWS || batch.bytes >= BATCH_BYTES) return this.flushBatch();
      return undefined;
    };
    if (flushFirst) return this.flushBatch().then(push);
    return push();
  }

  private async flushBatch(): Promise<void> {
    const batch = this.batch;
    if (!batch || batch.ops.length === 0) return;
    this.batch = undefined;
    await this.openJournal();
    await this.writer!.query({
      name: batch.shape.statement.name,
      text: batch.shape.statement.text,
      values: [batch.shape.schema, batch.shape.table, batch.xids, batch.times, batch.ops, batch.hasOld, ...batch.newCols, ...batch.oldCols],
    });
    this.groupRows += batch.ops.length;
  }

  private async openJournal(): Promise<void> {
    if (this.journalOpen) return;
    await this.writer!.query('BEGIN');
    this.journalOpen = true;
    this.groupRows = 0;
  }

  /** Rows of ours not committed to the journal yet (written in the open transaction, or batched). */
  private pendingJournal(): boolean {
    return this.journalOpen || (this.batch !== undefined && this.batch.ops.length > 0);
  }

  /** Commits the journal transaction with its position, then confirms that position to the slot. */
  private async commitJournal(connection: ReplicationConnection): Promise<void> {
    await this.flushBatch();
    const end = this.groupEnd;
    const writer = this.writer!;
    if (end) {
      await writer.query({ name: 'adl_capture_position', text: this.q.saveCapturePosition, values: [this.opts.slot, formatLsn(end.commitLsn), formatLsn(end.endLsn), end.commitTime] });
      await writer.query({ name: 'adl_capture_wake', text: this.q.captureWake, values: [this.opts.waitLockKey] });
    }
    await writer.query('COMMIT');
    const rows = this.groupRows;
    this.journalOpen = false;
    this.groupRows = 0;
    this.groupStarted = 0;
    this.groupEnd = undefined;
    if (end) {
      if (end.endLsn > this.confirmed) this.confirmed = end.endLsn;
      this.bus.emit('capture:journaled', { rows });
      this.sendStatus(connection, false);
    }
  }

  private sendStatus(connection: ReplicationConnection, force: boolean): void {
    if (this.confirmed === 0n) return;
    const now = Date.now();
    if (!force && this.confirmed === this.sent && now - this.lastSentAt < 10_000) return;
    try {
      connection.sendCopyFromChunk(standbyStatusUpdate(this.confirmed, now));
      this.sent = this.confirmed;
      this.lastSentAt = now;
    } catch (err) {
      this.failure?.(err);
    }
  }

  private warnNoOldRow(shape: Shape): void {
    const table = `${shape.schema}.${shape.table}`;
    if (this.warnedNoOldRow.has(table)) return;
    this.warnedNoOldRow.add(table);
    this.log.warn(
      { table },
      'A change of a watched table came without its old row (a table or partition is not REPLICA IDENTITY FULL): its old_data is missing; run "install"',
    );
  }

  /** The journal statement of a relation, or null for a table we do not watch. */
  private async shapeOf(m: RelationMessage): Promise<Shape | null> {
    const table = this.watched.get(`${m.schema}.${m.name}`);
    if (!table) return null;
    const types = await this.writer!.query<{ type: string }>(this.q.formatTypes, [m.columns.map((c) => c.typeOid), m.columns.map((c) => c.typmod)]);
    const columns = m.columns.map((c, i) => ({ name: c.name, type: types.rows[i]!.type }));
    if (m.replicaIdentity !== 'f') {
      this.log.warn(
        { table: `${m.schema}.${m.name}`, replicaIdentity: m.replicaIdentity },
        'A watched table is not REPLICA IDENTITY FULL: its UPDATE and DELETE events carry no old_data, and unchanged large values arrive as null (run "install")',
      );
    }
    const text = this.q.insertCapturedRows(columns, table.keyColumns);
    const name = `adl_capture_${createHash('sha1').update(text).digest('hex').slice(0, 16)}`;
    return { schema: table.schema, table: table.name, columns, keyColumns: table.keyColumns, statement: { name, text } };
  }
}

function text(v: TupleValue | undefined): string | null {
  return v === undefined || v === UNCHANGED ? null : v;
}

/** The parts of pg's Connection the reader drives (CopyBoth is not in its typings). */
interface ReplicationConnection {
  on(event: 'copyData', listener: (msg: { chunk: Buffer }) => void): void;
  once(event: 'replicationStart', listener: () => void): void;
  sendCopyFromChunk(chunk: Buffer): void;
  readonly stream: { pause(): void; resume(): void };
}
