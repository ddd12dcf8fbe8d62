/**
 * The MySQL/MariaDB journal: the router (capture inbox -> destination queues), each
 * destination's claims and outcomes, over a mysql2 pool.
 */
import { createHash } from 'node:crypto';
import type mysql from 'mysql2/promise';
import type { Operation } from '../../config/types.js';
import type { AttemptRow } from '../../journal/attempt-log.js';
import type { Completion, Journal, JournalEvent, Route, Router, RouteResult } from '../../journal/types.js';
import { backfillFromRow, type BackfillRow } from './backfill.js';
import type { BackfillRecord } from '../backfill/types.js';
import { BACKLOG_SCAN_LIMIT, type SourceJournal, type TableBacklog } from '../source.js';
import { CLAIM_FROM_START_EVERY_MS, CLAIM_WINDOW, ClaimCursor, hintBusyRows } from '../../journal/claim-window.js';
import { AppError } from '../../util/errors.js';
import { CLAIM_ISOLATION, CLAIM_SESSION_ISOLATION, makeQueries, type Queries } from './queries.js';

interface ClaimRow {
  id: string;
  op: Operation;
  schema_name: string;
  table_name: string;
  ts: string;
  new_row: string | null;
  old_row: string | null;
  attempts: string | number;
  token: string;
  row_hash: string | null;
  has_next: string | number;
}

export interface MySqlJournalOptions {
  readonly instanceId: string;
  /** How long a claim stays valid; past it another instance may take the event over. */
  readonly leaseMs: number;
  /** Keep delivered events (listener.retention > 0) instead of deleting them. */
  readonly keepDelivered: boolean;
  /** Prefix of event ids: evt_<installation id>_. */
  readonly eventIdPrefix: string;
  /** What names this installation server-wide (database and prefix), for the route locks' names. */
  readonly lockScope: string;
  /** listener.poll_interval in ms: the router's session must outlive its idle polls. */
  readonly pollIntervalMs?: number;
  /** The watched tables (database and name): this daemon claims only their events. */
  readonly tables: ReadonlyArray<{ readonly schema: string; readonly name: string }>;
}

/** Times a claim transaction chosen as a deadlock victim is run again before the error surfaces. */
const DEADLOCK_RETRIES = 5;

/** last_error is TEXT (64 KB); an error message is cut well below that, whatever its characters. */
const MAX_ERROR_CHARS = 8_000;

/** The journal of one database, shared by the router and every destination's queue. */
export class MySqlJournal implements SourceJournal {
  private readonly queues = new Map<string, MySqlDestinationJournal>();
  private readonly tx: Transactions;

  constructor(
    private readonly pool: mysql.Pool,
    private readonly q: Queries,
    private readonly opts: MySqlJournalOptions,
  ) {
    this.tx = new Transactions(pool);
  }

  destination(name: string): Journal {
    let queue = this.queues.get(name);
    if (!queue) {
      queue = new MySqlDestinationJournal(this.pool, this.q, this.opts, this.tx, name);
      this.queues.set(name, queue);
    }
    return queue;
  }

  router(routes: readonly Route[]): Router {
    return new MySqlRouter(this.pool, this.q, this.opts, routes);
  }

  /** Scans the queues (claimed_by is not indexed), so it runs in READ COMMITTED: no gap locks on the router's way. */
  async releaseClaims(): Promise<number> {
    return this.tx.run(async (conn) => {
      const [r] = await conn.execute<mysql.ResultSetHeader>(this.q.releaseClaims, [this.opts.instanceId]);
      return r.affectedRows;
    });
  }

  /**
   * Releases claims held by earlier processes of this host that no longer run
   * (a crash or kill -9 followed by a restart), so their events go out at once
   * instead of after the lease. Instance ids are scope:pid:random; a pid that is
   * alive (even if reused by another program) is left alone, to be safe.
   */
  async releaseClaimsOfDeadLocalProcesses(scope: string, isAlive: (pid: number) => boolean): Promise<number> {
    const likeScope = scope.replace(/[!%_]/g, (c) => '!' + c);
    const [r] = await this.pool.execute<mysql.RowDataPacket[]>(this.q.claimHolders, [`${likeScope}:%`]);
    const dead = r
      .map((row) => String(row.claimed_by))
      .filter((id) => {
        if (id === this.opts.instanceId) return false;
        const pid = Number(id.slice(scope.length + 1).split(':')[0]);
        return Number.isInteger(pid) && pid > 0 && !isAlive(pid);
      });
    if (dead.length === 0) return 0;
    return this.tx.run(async (conn) => {
      const [released] = await conn.execute<mysql.ResultSetHeader>(this.q.releaseClaimsOf, [JSON.stringify(dead)]);
      return released.affectedRows;
    });
  }

  /** In READ COMMITTED too: a range delete under REPEATABLE READ would lock the gap where delivered events are being added. */
  async purgeDelivered(retentionSeconds: number): Promise<number> {
    return this.tx.run(async (conn) => {
      const [r] = await conn.execute<mysql.ResultSetHeader>(this.q.purgeDelivered, [Math.round(retentionSeconds)]);
      return r.affectedRows;
    });
  }

  async backfills(): Promise<BackfillRecord[]> {
    const [rows] = await this.pool.query<BackfillRow[]>(this.q.backfillsRunning);
    return rows.map(backfillFromRow);
  }

  async writeAttempts(rows: readonly AttemptRow[]): Promise<void> {
    if (rows.length === 0) return;
    const json = JSON.stringify(
      rows.map((r) => [
        r.destination, r.id, r.schema, r.table, r.op, r.rowKey, r.attempt, new Date(r.atMs).toISOString().replace('T', ' ').replace('Z', ''), r.durationMs,
        r.address, r.requestHeaders, r.requestBody, r.responseStatus, r.responseBody, r.error, r.outcome,
      ]),
    );
    await this.pool.execute(this.q.insertAttempts, [json]);
  }

  async pruneAttempts(maxRows: number, maxAgeSeconds: number): Promise<number> {
    // Strings: MySQL 8.0.22+ rejects a LIMIT parameter sent as a double.
    const [r] = await this.pool.execute<mysql.ResultSetHeader>(this.q.pruneAttempts, [String(Math.floor(maxRows)), String(maxAgeSeconds)]);
    return r.affectedRows;
  }

  async backlog(destinations: readonly string[]): Promise<TableBacklog[]> {
    // Strings: MySQL 8.0.22+ rejects a LIMIT parameter sent as a double.
    const limit = String(BACKLOG_SCAN_LIMIT);
    const [rows] = await this.pool.execute<mysql.RowDataPacket[]>(this.q.backlog(destinations.length), [
      ...destinations.flatMap((d) => [d, d, limit]),
      limit,
      ...destinations.flatMap((d) => [d, d, limit]),
    ]);
    const found = new Map<string, { pending: number; oldestUs: number; dead: number }>();
    for (const row of rows) {
      const key = JSON.stringify([row.destination, row.schema_name, row.table_name]);
      const entry = found.get(key) ?? { pending: 0, oldestUs: 0, dead: 0 };
      if (row.kind === 'dead') entry.dead = Number(row.n);
      else {
        entry.pending = Number(row.n);
        entry.oldestUs = Number(row.oldest_us ?? 0);
      }
      found.set(key, entry);
    }
    return ['', ...destinations].flatMap((destination) =>
      this.opts.tables.map((t) => {
        const entry = found.get(JSON.stringify([destination, t.schema, t.name]));
        return {
          destination,
          schema: t.schema,
          table: t.name,
          pending: entry?.pending ?? 0,
          oldestPendingSeconds: Math.max(0, (entry?.oldestUs ?? 0) / 1e6),
          deadLetters: entry?.dead ?? 0,
        };
      }),
    );
  }
}

/** How often an instance that leads none (or not all) of its tables tries to take them over. */
const LEAD_RETRY_MS = 2_000;

/**
 * Moves changes of the tables this instance leads from the inbox into the
 * destinations' queues, one transaction per move (walk, copy, delete; see the
 * queries). Leading a table means holding its route lock, a named lock (GET_LOCK) of
 * the router's own connection: it ends with the connection, and another instance
 * takes the table over at its next try, within LEAD_RETRY_MS. Moves of one table so
 * never run side by side.
 */
class MySqlRouter implements Router {
  private conn: mysql.PoolConnection | undefined;
  private readonly led = new Set<number>();
  private lastLeadTry = 0;
  private floor = '0';
  private fromStartAt = 0;
  private readonly lockNames: string[];
  private readonly routesJson: string;
  private readonly routes: readonly Route[];
  /** wait_timeout of the router's session: a few poll intervals, at least 30 s. */
  private readonly idleTimeoutSeconds: number;

  constructor(
    private readonly pool: mysql.Pool,
    private readonly q: Queries,
    private readonly opts: MySqlJournalOptions,
    routes: readonly Route[],
  ) {
    this.routes = routes;
    // GET_LOCK names are at most 64 characters, and server-wide: the database is part of the hash.
    this.lockNames = opts.tables.map(
      (t) => `adl_route_${createHash('sha1').update(`${opts.lockScope}:${t.schema}.${t.name}`).digest('hex')}`,
    );
    this.routesJson = JSON.stringify(routes.flatMap((r) => r.operations.map((op) => [r.destination, r.schema, r.table, op])));
    this.idleTimeoutSeconds = Math.max(30, Math.ceil((opts.pollIntervalMs ?? 1_000) / 1000) * 5);
  }

  async route(limit: number): Promise<RouteResult> {
    const conn = await this.connection();
    await this.lead(conn);
    if (this.led.size === 0) return { moved: 0, destinations: [], leading: false };
    const tables = this.opts.tables.filter((_, i) => this.led.has(i));
    if (Date.now() >= this.fromStartAt) {
      // A change committed late, under an id below the floor, is moved by this walk.
      this.floor = '0';
      this.fromStartAt = Date.now() + CLAIM_FROM_START_EVERY_MS;
    }
    let walked: Array<{ id: string | number; op: string; schema_name: string; table_name: string }>;
    try {
      const [found] = await conn.execute<mysql.RowDataPacket[]>(this.q.routeWalk(tables.length), [
        this.floor,
        ...tables.flatMap((t) => [t.schema, t.name]),
        this.floor,
        this.floor,
        String(limit),
      ]);
      walked = found as typeof walked;
      if (walked.length > 0) {
        const ids = JSON.stringify(walked.map((r) => String(r.id)));
        await conn.execute(this.q.routeCopy, [ids, this.routesJson]);
        await conn.execute(this.q.routeDelete, [ids]);
      }
      await conn.query('COMMIT');
    } catch (err) {
      this.drop(conn);
      throw err;
    }
    if (walked.length === 0) return { moved: 0, destinations: [], leading: true };
    this.floor = (BigInt(walked[walked.length - 1]!.id) + 1n).toString();
    const destinations = new Set<string>();
    for (const row of walked) {
      for (const r of this.routes) {
        if (r.schema === row.schema_name && r.table === row.table_name && r.operations.includes(row.op as Operation)) destinations.add(r.destination);
      }
    }
    return { moved: walked.length, destinations: [...destinations], leading: true };
  }

  async close(): Promise<void> {
    const conn = this.conn;
    this.conn = undefined;
    this.led.clear();
    // Ending the session releases its named locks.
    conn?.destroy();
    return Promise.resolve();
  }

  /** Takes the route locks of the tables nobody leads, now and then. */
  private async lead(conn: mysql.PoolConnection): Promise<void> {
    if (this.led.size === this.lockNames.length || Date.now() - this.lastLeadTry < LEAD_RETRY_MS) return;
    this.lastLeadTry = Date.now();
    for (let i = 0; i < this.lockNames.length; i++) {
      if (this.led.has(i)) continue;
      let ok: unknown;
      try {
        const [r] = await conn.query<mysql.RowDataPacket[]>(this.q.tryRouteLock, [this.lockNames[i]]);
        ok = r[0]?.ok;
      } catch (err) {
        this.drop(conn);
        throw err;
      }
      if (Number(ok) === 1) {
        this.led.add(i);
        // A new leader walks from the start: the previous one may have left anything.
        this.floor = '0';
      }
    }
  }

  /** The router's connection: out of the pool, READ COMMITTED, autocommit off (a move is one transaction). */
  private async connection(): Promise<mysql.PoolConnection> {
    if (this.conn) return this.conn;
    const conn = await this.pool.getConnection();
    try {
      await conn.query(CLAIM_SESSION_ISOLATION);
      await conn.query('SET autocommit = 0');
      // The server ends a session idle this long, and with it the route locks: the time
      // another instance waits to take the tables over after this host is gone (the
      // default, 8 hours). The router uses its connection at least every poll interval.
      await conn.query('SET SESSION wait_timeout = ?', [this.idleTimeoutSeconds]);
    } catch (err) {
      conn.destroy();
      throw err;
    }
    this.conn = conn;
    this.lastLeadTry = 0;
    return conn;
  }

  /** The connection is gone or in an unknown state: so are the locks it held. */
  private drop(conn: mysql.PoolConnection): void {
    if (this.conn !== conn) return;
    this.conn = undefined;
    this.led.clear();
    conn.destroy();
  }
}

/** One destination's queue: its claims and outcome writes. */
class MySqlDestinationJournal implements Journal {
  /** Where the next walk starts, and the busy rows whose heads to claim (see claim-window.ts). */
  private readonly cursor = new ClaimCursor();

  get moreAhead(): boolean {
    return this.cursor.moreAhead;
  }
  /** The claims' own connection (see claimTransaction), and the claim in progress. */
  private claimConn: mysql.PoolConnection | undefined;
  private claiming: Promise<void> = Promise.resolve();
  private readonly walkSql: string;
  private readonly headsSql: string;
  private readonly retryNowSql: string;
  private readonly tableParams: string[];

  constructor(
    private readonly pool: mysql.Pool,
    private readonly q: Queries,
    private readonly opts: MySqlJournalOptions,
    private readonly tx: Transactions,
    readonly destination: string,
  ) {
    this.walkSql = q.claimWalk(opts.tables.length);
    this.headsSql = q.claimHeads(opts.tables.length);
    this.retryNowSql = q.retryNow(opts.tables.length);
    this.tableParams = opts.tables.flatMap((t) => [t.schema, t.name]);
  }

  /**
   * Claims at most `limit` due events, at most one per row, oldest first. MySQL
   * has no UPDATE … FROM (SELECT … SKIP LOCKED), so a claim is a short transaction:
   * lock the candidates with FOR UPDATE SKIP LOCKED (the heads of busy rows, then the
   * walk; see journal/claim-window.ts), mark those the ordering gate still lets
   * through (one UPDATE), commit. READ COMMITTED keeps it free of gap locks: under
   * REPEATABLE READ the scan would lock the end of the index and hold up the router.
   */
  async claim(limit: number): Promise<JournalEvent[]> {
    if (limit <= 0 || this.opts.tables.length === 0) return [];
    const { floor, heads } = this.cursor.next();
    const leaseUs = Math.round(this.opts.leaseMs * 1000);
    let rows: ClaimRow[];
    try {
      rows = await this.claimTransaction(async (conn) => {
        const claimed: ClaimRow[] = [];
        if (heads.length > 0) {
          const [found] = await conn.execute<mysql.RowDataPacket[]>(this.headsSql, [
            leaseUs,
            this.destination,
            this.destination,
            JSON.stringify(heads),
            ...this.tableParams,
          ]);
          claimed.push(...(found as ClaimRow[]).slice(0, limit));
        }
        const room = limit - claimed.length;
        if (room > 0) {
          // A floor of 0 starts at the lowest id, read in this transaction: a late commit below any earlier floor is seen.
          const lo = floor === '0' ? await this.firstIdFrom(conn, '0') : floor;
          let walked = 0;
          let walkMin: string | null = null;
          let nextLo: string | null = null;
          if (lo !== null) {
            const [found] = await conn.execute<mysql.RowDataPacket[]>(this.walkSql, [
              leaseUs,
              this.destination,
              lo,
              (BigInt(lo) + BigInt(CLAIM_WINDOW)).toString(),
              ...this.tableParams,
              // A string: MySQL 8.0.22+ rejects a LIMIT parameter sent as a double.
              String(room),
            ]);
            const walk = found as ClaimRow[];
            walked = walk.length;
            walkMin = walk[0] ? String(walk[0].id) : null;
            if (walked < room) nextLo = await this.firstIdFrom(conn, (BigInt(lo) + BigInt(CLAIM_WINDOW)).toString());
            // Rows this transaction already locked as heads are not skipped by SKIP LOCKED.
            const taken = new Set(claimed.map((r) => String(r.id)));
            claimed.push(...walk.filter((r) => !taken.has(String(r.id))));
          }
          this.cursor.report({ lo, walked, walkMin, nextLo }, room);
        }
        if (claimed.length === 0) return claimed;
        // One token for the whole claim: the first statement's lease end.
        const token = claimed[0]!.token;
        for (const row of claimed) row.token = token;
        const ids = JSON.stringify(claimed.map((r) => String(r.id)));
        const [marked] = await conn.execute<mysql.ResultSetHeader>(this.q.markClaimed, [ids, this.destination, this.opts.instanceId, token]);
        if (marked.affectedRows === claimed.length) return claimed;
        // The gate held some back: an earlier event of their row is queued (another
        // instance was claiming it while the walk skipped it as locked).
        const [mine] = await conn.execute<mysql.RowDataPacket[]>(this.q.claimedOf, [ids, this.destination, this.opts.instanceId, token]);
        const taken = new Set(mine.map((r) => String(r.id)));
        return claimed.filter((r) => taken.has(String(r.id)));
      });
    } catch (err) {
      this.cursor.giveBack(heads);
      throw err;
    }
    return rows.map((row) => ({
      destination: this.destination,
      id: String(row.id),
      eventId: this.opts.eventIdPrefix + String(row.id),
      op: row.op,
      schema: row.schema_name,
      table: row.table_name,
      timestamp: row.ts,
      createdAtMs: Date.parse(row.ts),
      newRow: row.new_row,
      oldRow: row.old_row,
      attempts: Number(row.attempts),
      claimToken: row.token,
      ...(Number(row.has_next) === 1 && row.row_hash !== null ? { rowHash: String(row.row_hash) } : {}),
    }));
  }

  /**
   * Runs a claim on the claims' own connection, kept out of the pool with READ
   * COMMITTED and autocommit off set once: a claim is then its statements and a
   * COMMIT, two round trips fewer than SET TRANSACTION and START TRANSACTION each
   * time. Between claims no transaction is open, so it holds back neither InnoDB's
   * purge nor anyone's locks. A deadlock victim is run again; a connection that
   * broke is replaced, and the claim tried once more on the new one.
   */
  private async claimTransaction<T>(fn: (conn: mysql.PoolConnection) => Promise<T>): Promise<T> {
    const previous = this.claiming;
    let done!: () => void;
    this.claiming = new Promise<void>((resolve) => (done = resolve));
    await previous;
    try {
      for (let attempt = 1; ; attempt++) {
        let conn: mysql.PoolConnection | undefined;
        try {
          conn = await this.claimConnection();
          const result = await fn(conn);
          await conn.query('COMMIT');
          return result;
        } catch (err) {
          const e = err as { code?: string; fatal?: boolean };
          if (conn && !e.fatal) await conn.query('ROLLBACK').catch(() => this.dropClaimConnection());
          if (e.fatal) this.dropClaimConnection();
          const retryable = e.code === 'ER_LOCK_DEADLOCK' || e.code === 'ER_LOCK_WAIT_TIMEOUT' || (e.fatal === true && attempt === 1);
          if (!retryable || attempt >= DEADLOCK_RETRIES) throw err;
          await new Promise((resolve) => setTimeout(resolve, attempt * 5 * Math.random()));
        }
      }
    } finally {
      done();
    }
  }

  private async claimConnection(): Promise<mysql.PoolConnection> {
    if (this.claimConn) return this.claimConn;
    const conn = await this.pool.getConnection();
    try {
      await conn.query(CLAIM_SESSION_ISOLATION);
      await conn.query('SET autocommit = 0');
    } catch (err) {
      conn.destroy();
      throw err;
    }
    this.claimConn = conn;
    return conn;
  }

  private dropClaimConnection(): void {
    this.claimConn?.destroy();
    this.claimConn = undefined;
  }

  private async firstIdFrom(conn: mysql.PoolConnection, from: string): Promise<string | null> {
    const [r] = await conn.execute<mysql.RowDataPacket[]>(this.q.firstIdFrom, [this.destination, from]);
    const id = r[0]?.id as string | number | null | undefined;
    return id === null || id === undefined ? null : String(id);
  }

  /**
   * Records outcomes, one statement (or one short transaction) per kind. Every
   * write is guarded by the claim: the event must still be held by this instance
   * with the same lease end (the token), so a late outcome of an earlier claim
   * never acts on a newer one. Writing the same batch twice changes nothing.
   */
  async complete(batch: readonly Completion[]): Promise<void> {
    const delivered: unknown[] = [];
    const retry: unknown[] = [];
    const dead: unknown[] = [];
    for (const c of batch) {
      if (c.kind === 'delivered') {
        delivered.push([c.id, c.token]);
      } else if (c.kind === 'retry') {
        retry.push([c.id, c.token, Math.max(0, Math.round(c.delayMs)), c.refund ? 1 : 0, c.status ?? null, c.error === undefined ? null : cut(c.error)]);
      } else {
        dead.push([c.id, c.token, c.status ?? null, cut(c.error)]);
      }
    }
    const me = this.opts.instanceId;
    const work: Promise<unknown>[] = [];
    if (delivered.length > 0) {
      const json = JSON.stringify(delivered);
      work.push(this.opts.keepDelivered ? this.move(this.q.copyDelivered, json) : this.pool.execute(this.q.deleteHeld, [json, this.destination, me]));
    }
    if (retry.length > 0) work.push(this.pool.execute(this.q.scheduleRetry, [JSON.stringify(retry), this.destination, me]));
    if (dead.length > 0) work.push(this.move(this.q.copyDead, JSON.stringify(dead)));
    // The three kinds touch disjoint events, so they may run side by side.
    const results = await Promise.allSettled(work);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    hintBusyRows(this.cursor, batch);
  }

  /** Copies the held events of `json` with `copySql`, then deletes them, in one transaction. */
  private async move(copySql: string, json: string): Promise<void> {
    const me = this.opts.instanceId;
    await this.tx.run(async (conn) => {
      const [held] = await conn.execute<mysql.RowDataPacket[]>(this.q.lockHeld, [json, this.destination, me]);
      if (held.length === 0) return;
      await conn.execute(copySql, [json, this.destination, me]);
      await conn.execute(this.q.deleteHeld, [json, this.destination, me]);
    });
  }

  /** Makes every retry of this daemon's tables that waits for a later time due now (the endpoint is back). */
  async retryNow(): Promise<number> {
    if (this.opts.tables.length === 0) return 0;
    return this.tx.run(async (conn) => {
      const [r] = await conn.execute<mysql.ResultSetHeader>(this.retryNowSql, [this.destination, ...this.tableParams]);
      return r.affectedRows;
    });
  }

  async touchLastDelivery(schema: string, table: string): Promise<void> {
    await this.pool.execute(this.q.touchLastDelivery, [this.destination, schema, table]);
  }
}

/** Short READ COMMITTED transactions on pooled connections, shared by the journal's parts. */
class Transactions {
  constructor(private readonly pool: mysql.Pool) {}

  /**
   * Runs `fn` in a READ COMMITTED transaction on one pooled connection
   * (SET TRANSACTION applies to the next transaction only, so the session is left
   * as it was). A
   * connection whose rollback failed is destroyed rather than reused: its
   * transaction state is unknown.
   */
  /**
   * Runs `fn` in a short transaction. InnoDB may pick it as a deadlock victim when
   * instances claim at the same moment (their row locks meet in the gate's index):
   * nothing was done, so it is simply run again, a few times, before giving up.
   */
  async run<T>(fn: (conn: mysql.PoolConnection) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.transactionOnce(fn);
      } catch (err) {
        const code = (err as { code?: string }).code;
        const retryable = code === 'ER_LOCK_DEADLOCK' || code === 'ER_LOCK_WAIT_TIMEOUT';
        if (!retryable || attempt >= DEADLOCK_RETRIES) throw err;
        await new Promise((resolve) => setTimeout(resolve, attempt * 5 * Math.random()));
      }
    }
  }

  private async transactionOnce<T>(fn: (conn: mysql.PoolConnection) => Promise<T>): Promise<T> {
    const conn = await this.pool.getConnection();
    let open = false;
    try {
      await conn.query(CLAIM_ISOLATION);
      await conn.query('START TRANSACTION');
      open = true;
      const result = await fn(conn);
      await conn.query('COMMIT');
      open = false;
      conn.release();
      return result;
    } catch (err) {
      if (open) {
        try {
          await conn.query('ROLLBACK');
          conn.release();
        } catch {
          conn.destroy();
        }
      } else {
        conn.release();
      }
      throw err;
    }
  }
}

function cut(text: string): string {
  return text.length > MAX_ERROR_CHARS ? text.slice(0, MAX_ERROR_CHARS) + '…' : text;
}

/** `evt_<installation id>_`: the prefix of this installation's event ids. */
export async function readEventIdPrefix(pool: mysql.Pool | mysql.Connection, prefix: string): Promise<string> {
  const [r] = await pool.query<mysql.RowDataPacket[]>(makeQueries(prefix).installationId);
  const id = r[0]?.value;
  if (typeof id !== 'string') {
    throw new AppError('NOT_INSTALLED', `the installation id is missing from ${prefix}_meta`, {
      hint: 'run "app-db-listener install" (or start with listener.auto_install: true)',
    });
  }
  return `evt_${id}_`;
}
