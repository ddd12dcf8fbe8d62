/**
 * The PostgreSQL journal: the router (capture inbox -> destination queues), each
 * destination's claims and outcomes, over a small pool.
 */
import pg from 'pg';
import type { Operation } from '../../config/types.js';
import type { AttemptRow } from '../../journal/attempt-log.js';
import type { Completion, Journal, JournalEvent, Route, Router, RouteResult } from '../../journal/types.js';
import { backfillFromRow } from './backfill.js';
import type { BackfillRecord } from '../backfill/types.js';
import { BACKLOG_SCAN_LIMIT, type SourceJournal, type TableBacklog } from '../source.js';
import { CLAIM_WINDOW, CLAIM_FROM_START_EVERY_MS, ClaimCursor, hintBusyRows } from '../../journal/claim-window.js';
import { routeLockKey, type Queries } from './queries.js';

/** A claimed event, or (id null) only the walk's report when nothing was claimed. */
interface ClaimRow {
  id: string;
  op: Operation;
  schema_name: string;
  table_name: string;
  ts: string;
  created_ms: number;
  new_row: string | null;
  old_row: string | null;
  attempts: number;
  token: string;
  row_hash: string | null;
  has_next: boolean | null;
  lo: string | null;
  walked: number;
  walk_min: string | null;
  next_lo: string | null;
}

export interface PgJournalOptions {
  /** How the router connects (it holds its tables' route locks on a connection of its own). */
  readonly clientConfig: pg.ClientConfig;
  readonly instanceId: string;
  /** How long a claim stays valid; past it another instance may take the event over. */
  readonly leaseMs: number;
  /** Keep delivered events (listener.retention > 0) instead of deleting them. */
  readonly keepDelivered: boolean;
  /** Prefix of event ids: evt_<installation id>_. */
  readonly eventIdPrefix: string;
  /** The watched tables (resolved schema and name): this daemon claims only their events. */
  readonly tables: ReadonlyArray<{ readonly schema: string; readonly name: string }>;
}

/** The journal of one database, shared by the router and every destination's queue. */
export class PgJournal implements SourceJournal {
  private readonly schemas: string[];
  private readonly tableNames: string[];
  private readonly queues = new Map<string, PgDestinationJournal>();

  constructor(
    private readonly pool: pg.Pool,
    private readonly q: Queries,
    private readonly opts: PgJournalOptions,
  ) {
    this.schemas = opts.tables.map((t) => t.schema);
    this.tableNames = opts.tables.map((t) => t.name);
  }

  destination(name: string): Journal {
    let queue = this.queues.get(name);
    if (!queue) {
      queue = new PgDestinationJournal(this.pool, this.q, this.opts, name);
      this.queues.set(name, queue);
    }
    return queue;
  }

  router(routes: readonly Route[]): Router {
    return new PgRouter(this.q, this.opts, routes);
  }

  async releaseClaims(): Promise<number> {
    const r = await this.pool.query(this.q.releaseClaims, [this.opts.instanceId]);
    return r.rowCount ?? 0;
  }

  /**
   * Releases claims held by earlier processes of this host that no longer run
   * (a crash or kill -9 followed by a restart), so their events go out at once
   * instead of after the lease. Instance ids are host:pid:random; a pid that is
   * alive (even if reused by another program) is left alone, to be safe.
   */
  async releaseClaimsOfDeadLocalProcesses(host: string, isAlive: (pid: number) => boolean): Promise<number> {
    const likeHost = host.replace(/[\\%_]/g, (c) => '\\' + c);
    const r = await this.pool.query<{ claimed_by: string }>(this.q.claimHolders, [`${likeHost}:%`]);
    const dead = r.rows
      .map((row) => row.claimed_by)
      .filter((id) => {
        if (id === this.opts.instanceId) return false;
        const pid = Number(id.slice(host.length + 1).split(':')[0]);
        return Number.isInteger(pid) && pid > 0 && !isAlive(pid);
      });
    if (dead.length === 0) return 0;
    const released = await this.pool.query(this.q.releaseClaimsOf, [dead]);
    return released.rowCount ?? 0;
  }

  async purgeDelivered(retentionSeconds: number): Promise<number> {
    const r = await this.pool.query(this.q.purgeDelivered, [Math.round(retentionSeconds)]);
    return r.rowCount ?? 0;
  }

  async backfills(): Promise<BackfillRecord[]> {
    const r = await this.pool.query({ name: `adl_${this.q.schemaKey}_backfills`, text: this.q.backfillsRunning });
    return r.rows.map(backfillFromRow);
  }

  async writeAttempts(rows: readonly AttemptRow[]): Promise<void> {
    if (rows.length === 0) return;
    const col = <T>(f: (r: AttemptRow) => T): T[] => rows.map(f);
    await this.pool.query(this.q.insertAttempts, [
      col((r) => r.destination),
      col((r) => r.id),
      col((r) => r.schema),
      col((r) => r.table),
      col((r) => r.op),
      col((r) => r.rowKey),
      col((r) => r.attempt),
      col((r) => r.atMs),
      col((r) => r.durationMs),
      col((r) => r.address),
      col((r) => r.requestHeaders),
      col((r) => r.requestBody),
      col((r) => r.responseStatus),
      col((r) => r.responseBody),
      col((r) => r.error),
      col((r) => r.outcome),
    ]);
  }

  async pruneAttempts(maxRows: number, maxAgeSeconds: number): Promise<number> {
    const r = await this.pool.query(this.q.pruneAttempts, [maxRows, maxAgeSeconds]);
    return r.rowCount ?? 0;
  }

  async backlog(destinations: readonly string[]): Promise<TableBacklog[]> {
    const r = await this.pool.query<{ destination: string; schema_name: string; table_name: string; pending: number; oldest_s: number; dead_letters: number }>({
      name: `adl_${this.q.schemaKey}_backlog`,
      text: this.q.backlog,
      values: [this.schemas, this.tableNames, BACKLOG_SCAN_LIMIT, destinations],
    });
    return r.rows.map((row) => ({
      destination: row.destination,
      schema: row.schema_name,
      table: row.table_name,
      pending: row.pending,
      oldestPendingSeconds: Math.max(0, row.oldest_s),
      deadLetters: row.dead_letters,
    }));
  }
}

/** How often an instance that leads none (or not all) of its tables tries to take them over. */
const LEAD_RETRY_MS = 2_000;

/**
 * Moves changes of the tables this instance leads from the inbox into the
 * destinations' queues (see the route statement). Leading a table means holding its
 * route lock, a session advisory lock on the router's own connection: it ends with
 * the connection (a crash, a cut), and another instance takes the table over at its
 * next try, within LEAD_RETRY_MS. Moves of one table so never run side by side, and
 * a move is one statement, so a change is never in two places or lost between them.
 */
class PgRouter implements Router {
  private client: pg.Client | undefined;
  private connecting: Promise<pg.Client> | undefined;
  private readonly led = new Set<number>();
  private lastLeadTry = 0;
  private floor = '0';
  private fromStartAt = 0;
  private readonly lockKeys: string[];
  private readonly routeArgs: string[][];
  private closed = false;

  constructor(
    private readonly q: Queries,
    private readonly opts: PgJournalOptions,
    routes: readonly Route[],
  ) {
    this.lockKeys = opts.tables.map((t) => routeLockKey(q.schemaName, t.schema, t.name));
    const flat = routes.flatMap((r) => r.operations.map((op) => [r.destination, r.schema, r.table, op] as const));
    this.routeArgs = [flat.map((r) => r[0]), flat.map((r) => r[1]), flat.map((r) => r[2]), flat.map((r) => r[3])];
  }

  async route(limit: number): Promise<RouteResult> {
    const client = await this.connection();
    await this.lead(client);
    if (this.led.size === 0) return { moved: 0, destinations: [], leading: false };
    const tables = this.opts.tables.filter((_, i) => this.led.has(i));
    if (Date.now() >= this.fromStartAt) {
      // A change committed late, under an id below the floor, is moved by this walk.
      this.floor = '0';
      this.fromStartAt = Date.now() + CLAIM_FROM_START_EVERY_MS;
    }
    let r: pg.QueryResult<{ moved: number; max_id: string | null; destinations: string[] }>;
    try {
      r = await client.query({
        name: `adl_${this.q.schemaKey}_route_${tables.length}`,
        text: this.q.route(tables.length),
        values: [limit, this.floor, ...tables.flatMap((t) => [t.schema, t.name]), ...this.routeArgs],
      });
    } catch (err) {
      this.drop(client);
      throw err;
    }
    const row = r.rows[0]!;
    if (row.max_id !== null) this.floor = (BigInt(row.max_id) + 1n).toString();
    return { moved: row.moved, destinations: row.destinations, leading: true };
  }

  async close(): Promise<void> {
    this.closed = true;
    const client = this.client;
    this.client = undefined;
    this.led.clear();
    // Ending the session releases its route locks.
    await client?.end().catch(() => undefined);
  }

  /** Takes the route locks of the tables nobody leads, now and then. */
  private async lead(client: pg.Client): Promise<void> {
    if (this.led.size === this.lockKeys.length || Date.now() - this.lastLeadTry < LEAD_RETRY_MS) return;
    this.lastLeadTry = Date.now();
    for (let i = 0; i < this.lockKeys.length; i++) {
      if (this.led.has(i)) continue;
      const r = await client.query<{ ok: boolean }>(this.q.tryRouteLock, [this.lockKeys[i]]).catch((err: unknown) => {
        this.drop(client);
        throw err;
      });
      if (r.rows[0]?.ok) {
        this.led.add(i);
        // A new leader walks from the start: the previous one may have left anything.
        this.floor = '0';
      }
    }
  }

  private async connection(): Promise<pg.Client> {
    if (this.closed) throw new Error('the router is closed');
    if (this.client) return this.client;
    this.connecting ??= (async () => {
      const client = new pg.Client({
        ...this.opts.clientConfig,
        application_name: `${this.opts.clientConfig.application_name ?? 'app-db-listener'}:route`,
      });
      client.on('error', () => this.drop(client));
      client.on('end', () => this.drop(client));
      try {
        await client.connect();
      } catch (err) {
        await client.end().catch(() => undefined);
        throw err;
      }
      this.client = client;
      this.lastLeadTry = 0;
      return client;
    })().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  /** The connection is gone or unusable: so are the locks it held. */
  private drop(client: pg.Client): void {
    if (this.client !== client) return;
    this.client = undefined;
    this.led.clear();
    client.end().catch(() => undefined);
  }
}

/** One destination's queue: its claims and outcome writes. */
class PgDestinationJournal implements Journal {
  /** Where the next walk starts, and the busy rows whose heads to claim (see claim-window.ts). */
  private readonly cursor = new ClaimCursor();

  get moreAhead(): boolean {
    return this.cursor.moreAhead;
  }
  private readonly statementPrefix: string;
  private readonly claimSql: string;
  private readonly tablePairs: string[];
  private readonly schemas: string[];
  private readonly tableNames: string[];

  constructor(
    private readonly pool: pg.Pool,
    private readonly q: Queries,
    private readonly opts: PgJournalOptions,
    readonly destination: string,
  ) {
    this.statementPrefix = `adl_${q.schemaKey}_`;
    this.claimSql = q.claim(opts.tables.length);
    this.tablePairs = opts.tables.flatMap((t) => [t.schema, t.name]);
    this.schemas = opts.tables.map((t) => t.schema);
    this.tableNames = opts.tables.map((t) => t.name);
  }

  async claim(limit: number): Promise<JournalEvent[]> {
    if (limit <= 0) return [];
    const { floor, heads } = this.cursor.next();
    let r: pg.QueryResult<ClaimRow>;
    try {
      // A prepared statement: parsing and planning this one took ~0.6 ms a claim. Its
      // generic plan, made whatever the journal looks like (often empty), is safe: the
      // walk is a primary key range of at most CLAIM_WINDOW ids, every other lookup is
      // by id or by row hash, and the pool never plans a sequential or bitmap scan
      // (test/integration/pg-journal.test.ts checks the generic plan on a filled journal).
      r = await this.pool.query<ClaimRow>({
        name: `${this.statementPrefix}claim_${this.opts.tables.length}`,
        text: this.claimSql,
        values: [limit, this.opts.instanceId, this.opts.leaseMs, ...this.tablePairs, floor, CLAIM_WINDOW, heads, this.destination],
      });
    } catch (err) {
      this.cursor.giveBack(heads);
      throw err;
    }
    const walk = r.rows[0]!;
    this.cursor.report({ lo: walk.lo, walked: walk.walked, walkMin: walk.walk_min, nextLo: walk.next_lo }, limit);
    return r.rows
      .filter((row) => row.id !== null)
      .map((row) => ({
        destination: this.destination,
        id: row.id,
        eventId: this.opts.eventIdPrefix + row.id,
        op: row.op,
        schema: row.schema_name,
        table: row.table_name,
        timestamp: row.ts,
        createdAtMs: row.created_ms,
        newRow: row.new_row,
        oldRow: row.old_row,
        attempts: row.attempts,
        claimToken: row.token,
        ...(row.has_next && row.row_hash !== null ? { rowHash: row.row_hash } : {}),
      }));
  }

  async complete(batch: readonly Completion[]): Promise<void> {
    const delivered = { ids: [] as string[], tokens: [] as string[] };
    const retry = { ids: [] as string[], tokens: [] as string[], delays: [] as number[], refunds: [] as number[], statuses: [] as (number | null)[], errors: [] as (string | null)[] };
    const dead = { ids: [] as string[], tokens: [] as string[], statuses: [] as (number | null)[], errors: [] as string[] };
    for (const c of batch) {
      if (c.kind === 'delivered') {
        delivered.ids.push(c.id);
        delivered.tokens.push(c.token);
      } else if (c.kind === 'retry') {
        retry.ids.push(c.id);
        retry.tokens.push(c.token);
        retry.delays.push(Math.max(0, Math.round(c.delayMs)));
        retry.refunds.push(c.refund ? 1 : 0);
        retry.statuses.push(c.status ?? null);
        retry.errors.push(c.error ?? null);
      } else {
        dead.ids.push(c.id);
        dead.tokens.push(c.token);
        dead.statuses.push(c.status ?? null);
        dead.errors.push(c.error);
      }
    }
    const me = this.opts.instanceId;
    const work: Promise<unknown>[] = [];
    if (delivered.ids.length > 0) {
      work.push(
        this.pool.query({
          name: this.statementPrefix + (this.opts.keepDelivered ? 'move_delivered' : 'delete_delivered'),
          text: this.opts.keepDelivered ? this.q.moveDelivered : this.q.deleteDelivered,
          values: [delivered.ids, delivered.tokens, me, this.destination],
        }),
      );
    }
    if (retry.ids.length > 0) {
      work.push(
        this.pool.query({
          name: this.statementPrefix + 'schedule_retry',
          text: this.q.scheduleRetry,
          values: [retry.ids, retry.tokens, retry.delays, retry.refunds, retry.statuses, retry.errors, me, this.destination],
        }),
      );
    }
    if (dead.ids.length > 0) {
      work.push(
        this.pool.query({
          name: this.statementPrefix + 'dead_letter',
          text: this.q.moveToDeadLetters,
          values: [dead.ids, dead.tokens, dead.statuses, dead.errors, me, this.destination],
        }),
      );
    }
    // The three kinds touch disjoint events, so they may run side by side.
    const results = await Promise.allSettled(work);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    hintBusyRows(this.cursor, batch);
  }

  async retryNow(): Promise<number> {
    const r = await this.pool.query(this.q.retryNow, [this.schemas, this.tableNames, this.destination]);
    return r.rowCount ?? 0;
  }

  async touchLastDelivery(schema: string, table: string): Promise<void> {
    await this.pool.query(this.q.touchLastDelivery, [this.destination, schema, table]);
  }
}
