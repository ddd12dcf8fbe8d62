/** The PostgreSQL journal: claims, outcomes and wake-up marks, over a small pool. */
import type pg from 'pg';
import type { Operation } from '../../config/types.js';
import type { Completion, Journal, JournalEvent } from '../../journal/types.js';
import { BACKLOG_SCAN_LIMIT, type TableBacklog } from '../source.js';
import { CLAIM_WINDOW, ClaimCursor, hintBusyRows } from '../../journal/claim-window.js';
import type { Queries } from './queries.js';

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

export class PgJournal implements Journal {
  /** Where the next walk starts, and the busy rows whose heads to claim (see claim-window.ts). */
  private readonly cursor = new ClaimCursor();
  private readonly statementPrefix: string;
  private readonly claimSql: string;
  private readonly tablePairs: string[];
  private readonly schemas: string[];
  private readonly tableNames: string[];

  constructor(
    private readonly pool: pg.Pool,
    private readonly q: Queries,
    private readonly opts: PgJournalOptions,
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
        values: [limit, this.opts.instanceId, this.opts.leaseMs, ...this.tablePairs, floor, CLAIM_WINDOW, heads],
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
          values: [delivered.ids, delivered.tokens, me],
        }),
      );
    }
    if (retry.ids.length > 0) {
      work.push(
        this.pool.query({
          name: this.statementPrefix + 'schedule_retry',
          text: this.q.scheduleRetry,
          values: [retry.ids, retry.tokens, retry.delays, retry.refunds, retry.statuses, retry.errors, me],
        }),
      );
    }
    if (dead.ids.length > 0) {
      work.push(
        this.pool.query({
          name: this.statementPrefix + 'dead_letter',
          text: this.q.moveToDeadLetters,
          values: [dead.ids, dead.tokens, dead.statuses, dead.errors, me],
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
    const r = await this.pool.query(this.q.retryNow, [this.schemas, this.tableNames]);
    return r.rowCount ?? 0;
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

  async touchLastDelivery(schema: string, table: string): Promise<void> {
    await this.pool.query(this.q.touchLastDelivery, [schema, table]);
  }

  async purgeDelivered(retentionSeconds: number): Promise<number> {
    const r = await this.pool.query(this.q.purgeDelivered, [Math.round(retentionSeconds)]);
    return r.rowCount ?? 0;
  }

  async backlog(): Promise<TableBacklog[]> {
    const r = await this.pool.query<{ schema_name: string; table_name: string; pending: number; oldest_s: number; dead_letters: number }>({
      name: this.statementPrefix + 'backlog',
      text: this.q.backlog,
      values: [this.schemas, this.tableNames, BACKLOG_SCAN_LIMIT],
    });
    return r.rows.map((row) => ({
      schema: row.schema_name,
      table: row.table_name,
      pending: row.pending,
      oldestPendingSeconds: Math.max(0, row.oldest_s),
      deadLetters: row.dead_letters,
    }));
  }
}
