/**
 * The binlog reader (listener.capture: log on MySQL/MariaDB): reads the server's
 * binary log as a replica does and writes every change of the watched tables into the
 * journal's inbox (events), where the router takes it exactly as it takes the
 * triggers' rows. Nothing downstream knows how a change was captured.
 *
 * The replication protocol and the row decoding are @vlasky/zongji's (a maintained
 * zongji fork that follows MariaDB's and MySQL's binlogs, reads binlog_row_metadata=FULL
 * and decodes BIGINT and DECIMAL exactly). What it lacks is ours: positions stored in
 * the journal transaction, backpressure, the lease, and rebuilding each row exactly as
 * the trigger would (columns.ts).
 *
 * Guarantees:
 * - The journal transaction that writes a source transaction's changes also records
 *   the binlog position just after that transaction (capture_positions). A reader that
 *   starts, or starts again after a crash, reads the binlog from that position: each
 *   source transaction is journaled exactly once, whatever fails when. Positions are
 *   transaction boundaries only, so a transaction is never half journaled.
 * - Several source transactions may share one journal transaction (group commit); a
 *   source transaction is never split, so a large one is written in batches into one
 *   journal transaction and never held in memory.
 * - The binlog describes each row with the columns it had when it was written
 *   (binlog_row_metadata=FULL): a column added, dropped or renamed under load is
 *   reported as it was at commit, and the application's writes never depend on us.
 * - One reader per journal: the reader holds a named lock (GET_LOCK, the lease) on its
 *   journal connection; other instances look for it every ~2 s and take over as soon
 *   as the holder's connection is gone.
 * - Backpressure: while more than MAX_QUEUED_BYTES or MAX_QUEUED_ROWS of events wait, the
 *   binlog connection is paused and the server waits.
 * - The journal's own writes are not read back (MariaDB): every daemon connection that
 *   writes the journal sets skip_replication, and the binlog connection asks the server
 *   not to send events so flagged. They stay in the binary log for replicas; without this
 *   the reader received each change several times over (the journal's insert, the
 *   router's move, the delivery), only to skip it. Heartbeats (every second when idle)
 *   carry the server's position past them: the lag is measured from there, and it is
 *   stored once per new binlog file only (see tick).
 *   MySQL has no skip_replication: there the reader receives the journal's writes and
 *   skips them (the tables are not watched).
 * - XA transactions with changes of ours are refused (BINLOG_XA): a prepared XA
 *   transaction's rows are in the binlog before it commits or rolls back.
 * - Position advance with no changes of ours: the position passes other tables'
 *   transactions in memory and is stored at most every IDLE_SAVE_MS, so a restart does
 *   not read them again. (The server removes binlog files by age, whoever has read
 *   them: a reader stopped longer than binlog_expire_logs_seconds loses its place;
 *   `doctor` and `status` say so.)
 */
import Denque from 'denque';
import mysql from 'mysql2/promise';
import type { Logger } from 'pino';
import type { Config } from '../../../config/types.js';
import type { DaemonEventBus } from '../../../observability/events.js';
import { AppError } from '../../../util/errors.js';
import { LeasedLogReader } from '../../log-reader.js';
import type { FailureLatch } from '../../../util/wake.js';
import type { ResolvedTable } from '../../source.js';
import { mysqlPoolOptions, SKIP_REPLICATION_SQL } from '../connection.js';
import { resolveTables } from '../install.js';
import type { CapturedShape, Queries } from '../queries.js';
import { TRIGGER_SQL_MODE, type MySqlColumn } from '../triggers.js';
import { capturedColumns, type BinlogColumn } from './columns.js';
import { binlogStatus, describeBinlogSettings, readBinlogSettings, type BinlogPosition } from './settings.js';

/** Rows sent to the journal in one statement. */
const BATCH_ROWS = 500;
/** Bytes of values sent in one statement at most (a batch of wide rows is cut earlier). */
const BATCH_BYTES = 2 * 1024 * 1024;
/** A journal transaction (group of source transactions) is committed after this many rows... */
const GROUP_ROWS = 5_000;
/** ...or this long after it began, whatever still comes. */
const GROUP_MS = 200;
/**
 * Binlog events received but not journaled yet: above this many bytes or rows the binlog
 * connection is paused (a decoded row costs several times its bytes in memory).
 */
const MAX_QUEUED_BYTES = 2 * 1024 * 1024;
const MAX_QUEUED_ROWS = 2_000;
/** The position reached through other tables' transactions is stored this often at most. */
const IDLE_SAVE_MS = 5_000;
/** The journal connection's wait_timeout: the longest a dead host's lease outlives it. */
const LEASE_IDLE_S = 30;
/** The journal connection is used at least this often (a ping when idle), well within LEASE_IDLE_S. */
const PING_MS = 10_000;

export interface BinlogReaderOptions {
  /** capture_positions' key. */
  readonly stream: string;
  /** The lease's GET_LOCK name (server-wide, at most 64 characters). */
  readonly leaseName: string;
  /** The replica server id the reader announces (unique among the server's replicas). */
  readonly serverId: number;
  /** capture_positions' table name (in the journal's database). */
  readonly positionsTable: string;
  readonly tables: readonly ResolvedTable[];
}

/** What the metrics and status show about the reader. */
export interface BinlogProgress {
  /** True while this instance holds the lease and streams. */
  readonly leading: boolean;
  /** The binlog position the journal covers. */
  readonly position: BinlogPosition | undefined;
  /** Seconds behind: 0 when caught up, else the age of the last change read. */
  readonly lagSeconds: number;
}

/** The parts of a zongji instance the reader drives. */
interface BinlogStream {
  on(event: 'binlog', listener: (e: BinlogEvent) => void): void;
  on(event: 'error', listener: (err: unknown) => void): void;
  on(event: 'ready', listener: () => void): void;
  start(options: Record<string, unknown>): void;
  stop(): void;
  readonly connection: { pause(): void; resume(): void; query(sql: string, callback: (err: unknown) => void): void } | null;
}

interface TableMapEntry {
  readonly parentSchema: string;
  readonly tableName: string;
  readonly columns?: ReadonlyArray<{ name: string; type: number; charset: string | null; metadata?: Record<string, unknown> }>;
  readonly columnSchemas?: ReadonlyArray<{ COLUMN_TYPE?: string; UNSIGNED?: boolean }>;
}

interface BinlogEvent {
  getEventName(): string;
  readonly timestamp: number;
  readonly nextPosition: number;
  readonly binlogName?: string;
  readonly position?: number;
  readonly query?: string;
  readonly schema?: string;
  readonly slaveProxyId?: number;
  readonly gtid?: string;
  readonly seqNo?: number | string;
  readonly standalone?: boolean;
  /** MariaDB GTID event of a prepared XA transaction. */
  readonly preparedXa?: boolean;
  readonly tableId?: number;
  readonly tableMap?: Record<number, TableMapEntry>;
  readonly rows?: ReadonlyArray<Record<string, unknown>>;
  /** The event's length in the binlog. */
  readonly size?: number;
}

interface Batch {
  readonly shape: CapturedShape;
  readonly op: 'INSERT' | 'UPDATE' | 'DELETE';
  readonly params: unknown[];
  count: number;
  bytes: number;
}

interface SourceTx {
  gtid: string | undefined;
  txid: string;
  /** Inside BEGIN … COMMIT (or a MariaDB transactional group): ends at XID or COMMIT. */
  open: boolean;
  /** Has changes of ours in the journal transaction. */
  ours: boolean;
  /** Writes our own stored position (this reader's transaction). */
  self?: boolean;
  /** An XA transaction (XA START … XA END): its rows may be prepared, not committed. */
  xa?: boolean;
}

type Item = { readonly event: BinlogEvent; readonly bytes: number; readonly rows: number } | { readonly tick: true };

export class BinlogReader extends LeasedLogReader {
  private writer: mysql.Connection | undefined;
  private zongji: BinlogStream | undefined;
  private readonly watched: Map<string, ResolvedTable>;
  /** The watched tables' columns as they are now, by table then name (MariaDB's JSON, UUID, INET). */
  private current = new Map<string, Map<string, MySqlColumn>>();
  private readonly shapes = new WeakMap<TableMapEntry, CapturedShape | null>();
  /** The same shape for every TABLE_MAP of the same columns (each transaction has its own), so batches span transactions. */
  private readonly shapesBySignature = new Map<string, CapturedShape>();
  // The stream's state, reset on every connection.
  /** A ring buffer: Array.prototype.shift copies what is left of a long array at every call. */
  private readonly queue = new Denque<Item>();
  private queuedBytes = 0;
  private queuedRows = 0;
  /** Set when the stream ends: nothing more is queued. */
  private closing = false;
  private paused = false;
  private generation = 0;
  private file = '';
  private tx: SourceTx | undefined;
  /** A MySQL GTID event's id, for the transaction it opens. */
  private nextGtid: string | undefined;
  private batch: Batch | undefined;
  private journalOpen = false;
  private groupRows = 0;
  private groupStarted = 0;
  /** The end of the last source transaction of the group: what the next journal commit records. */
  private groupEnd: { position: BinlogPosition; gtid: string | undefined; commitTime: string } | undefined;
  /** The position the journal covers (stored). */
  private stored: BinlogPosition | undefined;
  private storedAt = 0;
  /** The end of the last source transaction read (ours or not). */
  private seen: BinlogPosition | undefined;
  /** The server's position from its last heartbeat while idle: past the journal's own (unsent) writes. */
  private heard: BinlogPosition | undefined;
  private lastEventMs = 0;
  private writerUsedAt = 0;
  /** Tables and column lists the table's current columns were read again for (once each). */
  private readonly reloadedFor = new Set<string>();
  private caughtUp = true;

  constructor(
    private readonly config: Config,
    private readonly pool: mysql.Pool,
    private readonly q: Queries,
    private readonly opts: BinlogReaderOptions,
    bus: DaemonEventBus,
    log: Logger,
  ) {
    super(bus, log, 'the binary log');
    this.watched = new Map(opts.tables.map((t) => [`${t.schema}.${t.name}`, t]));
  }

  progress(): BinlogProgress {
    return {
      leading: this.leading,
      position: this.lagFrom(),
      lagSeconds: !this.leading || this.caughtUp || this.lastEventMs === 0 ? 0 : Math.max(0, (Date.now() - this.lastEventMs) / 1000),
    };
  }

  /** Where the lag is measured from: the stored position, or a later heartbeat's while nothing waits. */
  private lagFrom(): BinlogPosition | undefined {
    const stored = this.stored;
    const heard = this.heard;
    if (!stored || !heard || this.tx !== undefined || this.pendingJournal() || this.queue.length > 0) return stored;
    return comparePositions(heard, stored) > 0 ? heard : stored;
  }

  protected async takeLease(): Promise<boolean> {
    const writer = await mysql.createConnection({
      ...mysqlPoolOptions(this.config.database, { applicationName: 'app-db-listener:capture' }),
      connectionLimit: undefined,
      maxIdle: undefined,
      idleTimeout: undefined,
    } as mysql.ConnectionOptions);
    this.writer = writer;
    writer.on('error', (err) => this.failure?.(err));
    const lease = await writer.query<mysql.RowDataPacket[]>(this.q.tryCaptureLease, [this.opts.leaseName]);
    return Number(lease[0][0]?.ok) === 1;
  }

  protected async prepare(): Promise<void> {
    const writer = this.writer!;
    // The trigger's sql_mode (zero dates, as the trigger casts them) and UTC, so a
    // TIMESTAMP's UTC text reads back as its instant (columns.ts).
    // wait_timeout: if this host dies without closing the connection (power, network), the
    // server ends the session, and with it the lease, within LEASE_IDLE_S (the tick pings).
    await writer.query(`SET SESSION sql_mode = ?, time_zone = '+00:00', wait_timeout = ?`, [TRIGGER_SQL_MODE, LEASE_IDLE_S]);
    await writer.query('SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED');
    await writer.query(SKIP_REPLICATION_SQL).catch(() => undefined);
    const settings = await readBinlogSettings(writer);
    const problem = describeBinlogSettings(settings);
    if (problem) throw new AppError('BINLOG_SETTINGS', problem.message, { hint: problem.hint });
    this.resetStream();
    this.stored = await this.readPosition(writer);
    this.seen = this.stored;
    this.file = this.stored.file;
    await this.loadCurrentColumns(writer);
  }

  /** What a replication error means for the operator (a purged binlog file: changes lost). */
  protected override explain(err: unknown): unknown {
    const e = err as { errno?: number; code?: string; message?: string };
    if (e.errno !== 1236 && e.code !== 'ER_MASTER_FATAL_ERROR_READING_BINLOG') return err;
    const at = this.stored ? `${this.stored.file}:${this.stored.position}` : 'the stored position';
    return new AppError(
      'BINLOG_POSITION_LOST',
      `the server cannot send the binary log from ${at} (${e.message ?? 'error 1236'}): if its file was removed (binlog_expire_logs_seconds, PURGE BINARY LOGS), the changes since were lost`,
      { cause: err, hint: 'run "uninstall" then "install" to capture from now on, and "backfill" the watched tables; "status" and "doctor" show the position' },
    );
  }

  /** The stored position; a journal without one (installed before log capture) starts at the log's end now. */
  private async readPosition(writer: mysql.Connection): Promise<BinlogPosition> {
    const [rows] = await writer.query<mysql.RowDataPacket[]>(this.q.capturePosition, [this.opts.stream]);
    const row = rows[0];
    if (row) return { file: String(row.binlog_file), position: Number(row.binlog_pos) };
    const end = await binlogStatus(writer);
    await writer.query(this.q.initCapturePosition, [this.opts.stream, end.file, end.position]);
    this.log.warn({ file: end.file, position: end.position }, 'No binlog position was stored (run "install"): log capture starts at the end of the binary log');
    return end;
  }

  protected async leaseHeldElsewhere(): Promise<boolean> {
    try {
      const [rows] = await this.pool.query<mysql.RowDataPacket[]>(this.q.captureLeaseHolder, [this.opts.leaseName]);
      return rows[0]?.holder !== null && rows[0]?.holder !== undefined;
    } catch {
      return false;
    }
  }

  private async loadCurrentColumns(writer: mysql.Connection): Promise<void> {
    const tables = await resolveTables(writer, this.config);
    this.current = new Map(tables.map((t) => [`${t.schema}.${t.name}`, new Map(t.columns.map((c) => [c.name, c]))]));
  }

  protected async closeClients(): Promise<void> {
    const z = this.zongji;
    this.zongji = undefined;
    try {
      z?.stop();
    } catch {
      // already stopped
    }
    const writer = this.writer;
    this.writer = undefined;
    // An open journal transaction is rolled back with its connection: its source
    // transactions were not recorded, the binlog is read again from the stored position.
    if (writer) await writer.end().catch(() => writer.destroy());
  }

  private resetStream(): void {
    this.generation++;
    this.pumping = undefined;
    this.queue.clear();
    this.queuedBytes = 0;
    this.queuedRows = 0;
    this.closing = false;
    this.paused = false;
    this.tx = undefined;
    this.nextGtid = undefined;
    // A heartbeat of the previous stream may be past changes that stream never committed.
    this.heard = undefined;
    this.batch = undefined;
    this.journalOpen = false;
    this.groupRows = 0;
    this.groupStarted = 0;
    this.groupEnd = undefined;
  }

  protected async stream(signal: AbortSignal, end: Pick<FailureLatch, 'failed' | 'fail'>): Promise<void> {
    const { default: ZongJi } = (await import('@vlasky/zongji')) as unknown as { default: new (dsn: unknown) => BinlogStream };
    if (signal.aborted) return;
    const base = mysqlPoolOptions(this.config.database, { applicationName: 'app-db-listener:binlog' });
    const z = new ZongJi({
      host: base.host,
      port: base.port,
      user: base.user,
      password: base.password,
      ssl: base.ssl,
      charset: 'utf8mb4',
      connectTimeout: base.connectTimeout,
      maxPreparedStatements: base.maxPreparedStatements,
      // A dump connection whose peer vanished is found by TCP keepalives, not in hours.
      enableKeepAlive: true,
      keepAliveInitialDelay: 10_000,
      // Values as text wherever a Date would change them; TIMESTAMP as its UTC text.
      dateStrings: true,
      timezone: 'Z',
      jsonStrings: true,
    });
    this.zongji = z;
    z.on('error', end.fail);
    const generation = this.generation;
    z.on('binlog', (event) => {
      if (generation !== this.generation) return;
      this.enqueue({ event, bytes: Math.max(64, event.size ?? 0), rows: event.rows?.length ?? 0 });
    });
    const ready = new Promise<void>((resolve) => z.on('ready', resolve));
    const schemas: Record<string, string[]> = {};
    for (const t of this.opts.tables) (schemas[t.schema] ??= []).push(t.name);
    // Our own position writes, to tell them apart (see endTransaction).
    (schemas[this.config.database.database] ??= []).push(this.opts.positionsTable);
    z.start({
      serverId: this.opts.serverId,
      filename: this.stored!.file,
      position: this.stored!.position,
      includeEvents: ['rotate', 'tablemap', 'writerows', 'updaterows', 'deleterows', 'xid', 'xaprepare', 'query', 'mariadbgtid', 'gtid', 'heartbeat'],
      includeSchema: schemas,
    });
    // Before the dump command, which start() queues once its own queries are answered: the
    // server leaves out the journal's flagged writes (MariaDB; an error elsewhere, ignored)
    // and sends a heartbeat after a second of nothing (in nanoseconds).
    z.connection?.query(SKIP_REPLICATION_SQL, () => undefined);
    z.connection?.query('SET @master_heartbeat_period = 1000000000', () => undefined);
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([ready, end.failed]);
      this.leading = true;
      this.bus.emit('capture:connected', { slot: `binlog ${this.stored!.file}:${this.stored!.position}` });
      timer = setInterval(() => this.enqueue({ tick: true }), 1_000);
      await end.failed;
    } catch (err) {
      if (!signal.aborted) throw err;
      // Stopping: no more events (nor ticks); let the one being written finish, then commit
      // what is whole (a source transaction half read is read again at the next start).
      clearInterval(timer);
      this.closing = true;
      z.connection?.pause();
      this.generation++;
      this.queue.clear();
      await this.pumping?.catch(() => undefined);
      if (this.tx === undefined && this.groupEnd && this.writer) await this.commitJournal().catch(() => undefined);
    } finally {
      clearInterval(timer);
      this.leading = false;
    }
  }

  private enqueue(item: Item): void {
    if (this.closing) return;
    this.queue.push(item);
    if ('event' in item) {
      this.queuedBytes += item.bytes;
      this.queuedRows += item.rows;
      if (!this.paused && (this.queuedBytes > MAX_QUEUED_BYTES || this.queuedRows > MAX_QUEUED_ROWS)) {
        this.paused = true;
        this.zongji?.connection?.pause();
      }
    }
    if (this.pumping) return;
    const pumping = this.pump(this.generation).finally(() => {
      if (this.pumping === pumping) this.pumping = undefined;
    });
    this.pumping = pumping;
  }

  private async pump(generation: number): Promise<void> {
    try {
      while (generation === this.generation) {
        const next = this.queue.shift();
        if (next === undefined) break;
        if ('tick' in next) {
          await this.tick();
          continue;
        }
        this.queuedBytes -= next.bytes;
        this.queuedRows -= next.rows;
        await this.handle(next.event);
        if (this.paused && this.queuedBytes < MAX_QUEUED_BYTES / 2 && this.queuedRows < MAX_QUEUED_ROWS / 2) {
          this.paused = false;
          this.zongji?.connection?.resume();
        }
        // Nothing else waits: a finished group of source transactions commits now.
        if (this.queue.length === 0 && this.tx === undefined && this.groupEnd) await this.commitJournal();
      }
    } catch (err) {
      if (generation === this.generation) this.failure?.(err);
    }
  }

  /** Once a second: caught up? and the position reached through others' transactions, stored now and then. */
  private async tick(): Promise<void> {
    if (this.writer && Date.now() - this.writerUsedAt >= PING_MS) {
      await this.writer.query('DO 0');
      this.writerUsedAt = Date.now();
    }
    // A group whose time is up commits between transactions, even while others' changes keep coming.
    if (this.tx === undefined && this.groupEnd && Date.now() - this.groupStarted >= GROUP_MS) await this.commitJournal();
    if (this.tx !== undefined || this.pendingJournal()) return;
    this.caughtUp = this.queue.length === 0;
    // The binary log went on to a new file with only the journal's own (unsent) writes since
    // the stored position: the last heartbeat's position is stored, once per file, so the
    // server can remove old files without taking our place with them. (Within a file nothing
    // is stored for heartbeats: each store is a write, and an idle server stays idle.)
    const heard = this.heard;
    if (this.caughtUp && heard && this.stored && compareFiles(heard.file, this.stored.file) > 0 && (!this.seen || compareFiles(heard.file, this.seen.file) > 0)) {
      this.seen = heard;
    }
    const seen = this.seen;
    if (!seen || !this.writer || samePosition(seen, this.stored) || Date.now() - this.storedAt < IDLE_SAVE_MS) return;
    await this.writer.query(this.q.saveCapturePosition, [this.opts.stream, seen.file, seen.position, null, null]);
    this.stored = seen;
    this.storedAt = Date.now();
  }

  private async handle(e: BinlogEvent): Promise<void> {
    this.lastEventMs = e.timestamp || this.lastEventMs;
    switch (e.getEventName()) {
      case 'rotate':
        // Between transactions: the next events are in this file.
        if (e.binlogName) this.file = e.binlogName;
        if (this.tx === undefined && e.binlogName && e.position !== undefined && e.position > 4) {
          this.seen = { file: e.binlogName, position: e.position };
        }
        return;
      case 'heartbeat': {
        const position = e.position ?? e.nextPosition;
        if (e.binlogName && position > 4) this.heard = { file: e.binlogName, position };
        return;
      }
      case 'mariadbgtid':
        this.caughtUp = false;
        if (this.tx?.ours) throw xaRefused(this.tx.gtid);
        this.tx = { gtid: e.gtid, txid: String(e.seqNo ?? 0), open: e.standalone !== true, ours: false, xa: e.preparedXa === true };
        return;
      case 'xaprepare':
        // The end of a prepared XA transaction's group; it commits (or not) later.
        if (this.tx?.ours) throw xaRefused(this.tx.gtid);
        return this.endTransaction(e);
      case 'gtid':
        this.nextGtid = e.gtid;
        return;
      case 'query':
        return this.handleQuery(e);
      case 'writerows':
      case 'updaterows':
      case 'deleterows':
        return this.addRows(e);
      case 'xid':
        return this.endTransaction(e);
      default:
        return;
    }
  }

  private async handleQuery(e: BinlogEvent): Promise<void> {
    const sql = (e.query ?? '').trim();
    if (/^XA\s+(END|PREPARE)\b/i.test(sql)) {
      if (this.tx) this.tx.xa = true;
      if (/^XA\s+PREPARE\b/i.test(sql) && this.tx?.ours) throw xaRefused(this.tx.gtid);
      if (/^XA\s+PREPARE\b/i.test(sql)) return this.endTransaction(e);
      return;
    }
    if (/^BEGIN$/i.test(sql) || /^XA\s+START\b/i.test(sql)) {
      this.caughtUp = false;
      // MySQL: BEGIN opens the transaction; its thread id is the writer's CONNECTION_ID(), the trigger's txid.
      this.tx ??= { gtid: this.nextGtid, txid: '0', open: true, ours: false };
      this.tx.open = true;
      if (/^XA/i.test(sql)) this.tx.xa = true;
      if (e.slaveProxyId !== undefined) this.tx.txid = String(e.slaveProxyId);
      this.nextGtid = undefined;
      return;
    }
    const tx = (this.tx ??= { gtid: this.nextGtid, txid: String(e.slaveProxyId ?? 0), open: false, ours: false });
    this.nextGtid = undefined;
    const truncated = truncatedTable(sql, e.schema ?? '');
    if (truncated && this.watched.has(`${truncated.schema}.${truncated.table}`)) {
      await this.flushBatch();
      await this.openJournal();
      const table = this.watched.get(`${truncated.schema}.${truncated.table}`)!;
      await this.writer!.query(this.q.insertCapturedTruncate, [table.schema, table.name, tx.txid, commitTime(e.timestamp)]);
      this.groupRows++;
      tx.ours = true;
    }
    // COMMIT (a transaction on tables without transactions) ends it; any other statement
    // outside BEGIN … COMMIT (DDL) is a transaction of its own.
    if (!tx.open || /^(COMMIT|ROLLBACK|XA COMMIT|XA ROLLBACK)\b/i.test(sql)) await this.endTransaction(e);
  }

  private async endTransaction(e: BinlogEvent): Promise<void> {
    const tx = this.tx;
    this.tx = undefined;
    const position = { file: this.file, position: e.nextPosition };
    if (!position.file || !(position.position > 4)) return;
    // A transaction that only stored our position is not progress to store again: an idle
    // server would otherwise get a write of ours every IDLE_SAVE_MS, for ever.
    if (!(tx?.self && !tx.ours)) this.seen = position;
    if (!tx?.ours) {
      if (this.groupEnd && Date.now() - this.groupStarted >= GROUP_MS) await this.commitJournal();
      return;
    }
    // Its rows stay batched: the batch spans source transactions of one shape (one statement for
    // a burst of single-row writers); the group's commit writes it before the position.
    this.groupEnd = { position, gtid: tx.gtid, commitTime: commitTime(e.timestamp) };
    this.groupStarted ||= Date.now();
    if (this.groupRows + (this.batch?.count ?? 0) >= GROUP_ROWS || Date.now() - this.groupStarted >= GROUP_MS) await this.commitJournal();
  }

  private async addRows(e: BinlogEvent): Promise<void> {
    const entry = e.tableId !== undefined ? e.tableMap?.[e.tableId] : undefined;
    if (!entry || !e.rows) return;
    if (entry.parentSchema === this.config.database.database && entry.tableName === this.opts.positionsTable) {
      (this.tx ??= { gtid: this.nextGtid, txid: '0', open: true, ours: false }).self = true;
      return;
    }
    const shape = await this.shapeOf(entry);
    if (!shape) return;
    const name = e.getEventName();
    const op = name === 'writerows' ? 'INSERT' : name === 'updaterows' ? 'UPDATE' : 'DELETE';
    if (!this.config.listener.modes.includes(op)) return;
    const tx = (this.tx ??= { gtid: this.nextGtid, txid: '0', open: true, ours: false });
    tx.ours = true;
    const created = commitTime(e.timestamp);
    for (const row of e.rows) {
      let batch = this.batch;
      if (batch && (batch.shape !== shape || batch.op !== op)) {
        await this.flushBatch();
        batch = undefined;
      }
      batch = this.batch ??= { shape, op, params: [], count: 0, bytes: 0 };
      batch.params.push(tx.txid, created);
      const newRow = op === 'INSERT' ? row : op === 'UPDATE' ? (row.after as Record<string, unknown>) : undefined;
      const oldRow = op === 'DELETE' ? row : op === 'UPDATE' ? (row.before as Record<string, unknown>) : undefined;
      for (const values of [newRow, oldRow]) {
        if (!values) continue;
        for (const c of shape.columns) {
          const v = c.encode(values[c.name]);
          batch.params.push(v);
          batch.bytes += typeof v === 'string' ? v.length : Buffer.isBuffer(v) ? v.length * 2 : 8;
        }
      }
      batch.count++;
      if (batch.count >= BATCH_ROWS || batch.bytes >= BATCH_BYTES) await this.flushBatch();
    }
  }

  private async flushBatch(): Promise<void> {
    const batch = this.batch;
    if (!batch || batch.count === 0) return;
    this.batch = undefined;
    await this.openJournal();
    await this.writer!.query(this.q.insertCapturedRows(batch.shape, batch.op, batch.count), [batch.shape.schema, batch.shape.table, ...batch.params]);
    this.groupRows += batch.count;
  }

  private async openJournal(): Promise<void> {
    this.writerUsedAt = Date.now();
    if (this.journalOpen) return;
    await this.writer!.query('BEGIN');
    this.journalOpen = true;
    this.groupRows = 0;
  }

  private pendingJournal(): boolean {
    return this.journalOpen || (this.batch !== undefined && this.batch.count > 0);
  }

  /** Commits the journal transaction with the position it covers. */
  private async commitJournal(): Promise<void> {
    await this.flushBatch();
    const end = this.groupEnd;
    const writer = this.writer!;
    if (end) {
      await this.openJournal();
      await writer.query(this.q.saveCapturePosition, [this.opts.stream, end.position.file, end.position.position, end.gtid ?? null, end.commitTime]);
    }
    if (this.journalOpen) await writer.query('COMMIT');
    const rows = this.groupRows;
    this.journalOpen = false;
    this.groupRows = 0;
    this.groupStarted = 0;
    this.groupEnd = undefined;
    if (end) {
      this.stored = end.position;
      this.storedAt = Date.now();
      this.bus.emit('capture:journaled', { rows });
    }
  }

  /** The journal statement's shape of a TABLE_MAP, or null for a table we do not watch. */
  private async shapeOf(entry: TableMapEntry): Promise<CapturedShape | null> {
    const known = this.shapes.get(entry);
    if (known !== undefined) return known;
    const key = `${entry.parentSchema}.${entry.tableName}`;
    const table = this.watched.get(key);
    if (!table || !entry.columns) {
      this.shapes.set(entry, null);
      return null;
    }
    const names = entry.columns.map((c) => c.name);
    if (names.some((n) => typeof n !== 'string')) {
      throw new AppError('BINLOG_METADATA', `the binary log does not name the columns of ${key}`, {
        hint: 'log capture needs binlog_row_metadata = FULL (MySQL 8.0.1+, MariaDB 10.5+): SET GLOBAL binlog_row_metadata = FULL, and set it in the server configuration',
      });
    }
    // A column the table has not (any more, or yet) is read from the table as it is now.
    const signature = `${key}\u0000${names.join('\u0000')}`;
    if (this.writer && names.some((n) => !this.current.get(key)?.has(n)) && !this.reloadedFor.has(signature)) {
      this.reloadedFor.add(signature);
      await this.loadCurrentColumns(this.writer).catch(() => undefined);
    }
    const columns: BinlogColumn[] = entry.columns.map((c, i) => ({
      name: c.name,
      type: c.type,
      charset: c.charset ?? null,
      metadata: c.metadata,
      unsigned: entry.columnSchemas?.[i]?.UNSIGNED ?? /\bunsigned\b/i.test(entry.columnSchemas?.[i]?.COLUMN_TYPE ?? ''),
    }));
    const current = this.current.get(key) ?? new Map<string, MySqlColumn>();
    const shapeKey = JSON.stringify([key, columns, columns.map((c) => [current.get(c.name)?.dataType, current.get(c.name)?.json])]);
    let shape = this.shapesBySignature.get(shapeKey);
    if (!shape) {
      shape = { schema: table.schema, table: table.name, keyColumns: table.keyColumns, columns: capturedColumns(columns, current) };
      // Bounded: a table gets a new shape only when its columns change.
      if (this.shapesBySignature.size >= 1_000) this.shapesBySignature.clear();
      this.shapesBySignature.set(shapeKey, shape);
    }
    this.shapes.set(entry, shape);
    return shape;
  }
}

function samePosition(a: BinlogPosition, b: BinlogPosition | undefined): boolean {
  return b !== undefined && a.file === b.file && a.position === b.position;
}

let commitTimeMs = 0;
let commitTimeText = '';

/** A binlog event's time (ms since the epoch) as the journal's UTC DATETIME text. */
function commitTime(ms: number): string {
  const at = ms > 0 ? ms : Date.now();
  // Binlog times are whole seconds: the rows of a second share one text.
  if (at !== commitTimeMs) {
    commitTimeMs = at;
    commitTimeText = new Date(at).toISOString().replace('T', ' ').replace('Z', '');
  }
  return commitTimeText;
}

/** Binlog files in order: the numeric extension (binlog.999999 comes before binlog.1000000). */
export function compareFiles(a: string, b: string): number {
  const n = (f: string) => Number(/\.(\d+)$/.exec(f)?.[1] ?? NaN);
  const [x, y] = [n(a), n(b)];
  if (Number.isNaN(x) || Number.isNaN(y)) return a < b ? -1 : a > b ? 1 : 0;
  return x - y;
}

/** Binlog positions in order: the file (compareFiles), then the offset. */
export function comparePositions(a: BinlogPosition, b: BinlogPosition): number {
  return compareFiles(a.file, b.file) || a.position - b.position;
}

const NAME = '(?:`((?:[^`]|``)+)`|([A-Za-z0-9_$]+))';
const TRUNCATE_RE = new RegExp(`^TRUNCATE\\s+(?:TABLE\\s+)?${NAME}(?:\\s*\\.\\s*${NAME})?\\s*;?\\s*$`, 'i');

/** The table a `TRUNCATE [TABLE] [db.]t` statement empties; undefined for any other statement. */
export function truncatedTable(sql: string, defaultSchema: string): { schema: string; table: string } | undefined {
  const m = TRUNCATE_RE.exec(sql.replace(/^\/\*.*?\*\/\s*/s, ''));
  if (!m) return undefined;
  const first = (m[1] ?? m[2] ?? '').replace(/``/g, '`');
  const second = m[3] ?? m[4];
  if (second === undefined) return { schema: defaultSchema, table: first };
  return { schema: first, table: second.replace(/``/g, '`') };
}

/** An XA transaction with changes of a watched table: not supported (docs/capture.md). */
function xaRefused(gtid: string | undefined): AppError {
  return new AppError(
    'BINLOG_XA',
    `a transaction in the binary log${gtid ? ` (GTID ${gtid})` : ''} changed a watched table as an XA transaction, or did not end: its rows are written to the binary log when it is prepared, before it commits or rolls back`,
    { hint: 'log capture does not support XA transactions on watched tables; use listener.capture: trigger for these tables' },
  );
}
