/**
 * PostgreSQL backfills (see src/capture/backfill/): one session of its own, which
 * holds the running backfill's lease (a session advisory lock: it ends with the
 * process), reads the table and journals each batch in one transaction.
 */
import pg from 'pg';
import type { Config } from '../../config/types.js';
import { AppError } from '../../util/errors.js';
import type { BackfillListing, BackfillRecord, BackfillSpec, BackfillStore, BackfillTable, StepResult } from '../backfill/types.js';
import { existsError, keyProblem, leaseRetakeError, whereError } from '../backfill/errors.js';
import { connectionError, pgClientConfig } from './connection.js';
import { resolveTables } from './install.js';
import { backfillLeaseKey, makeQueries, type Queries } from './queries.js';
import { qualify } from './sql.js';

/** Our own statements wait this long for a lock (the backfill's row, during a cancel). */
const LOCK_TIMEOUT_MS = 10_000;
const STATEMENT_TIMEOUT_MS = 120_000;

/**
 * Errors that pass: a lost connection, conflicts, lock waits, a server shutting down,
 * timeouts, our lease still held by our previous session. Not: a refused login or a
 * missing database (nothing will change by waiting), a wrong --where, any other error.
 */
export function isTransientPgError(err: unknown): boolean {
  if (err instanceof AppError) {
    const cause = (err.cause as { code?: unknown } | undefined)?.code;
    return err.code === 'BACKFILL_LEASE_BUSY' || (err.code === 'DATABASE_CONNECT' && !/^(28|3D)/.test(String(cause)));
  }
  const code = (err as { code?: unknown }).code;
  if (typeof code !== 'string') return err instanceof Error && /Connection terminated|connection/i.test(err.message);
  return /^(08|40|53|57P0)/.test(code) || code === '55P03' || code === '57014' || /^E(CONNRESET|CONNREFUSED|PIPE|TIMEDOUT|HOSTUNREACH)$/.test(code);
}

interface BackfillRow {
  id: string;
  schema_name: string;
  table_name: string;
  destination: string | null;
  condition: string | null;
  key_columns: string[];
  last_key: string[] | null;
  rows_done: number;
  rows_estimated: number | null;
  batch_size: number;
  rate: number | null;
  max_backlog: number;
  state: BackfillRecord['state'];
  error: string | null;
  started_at: Date;
  resumed_at: Date;
  rows_at_resume: number;
  updated_at: Date;
  finished_at: Date | null;
}

export function backfillFromRow(r: BackfillRow): BackfillRecord {
  return {
    id: r.id,
    schema: r.schema_name,
    table: r.table_name,
    destination: r.destination ?? undefined,
    condition: r.condition ?? undefined,
    keyColumns: r.key_columns,
    lastKey: r.last_key,
    rowsDone: Number(r.rows_done),
    rowsEstimated: r.rows_estimated === null ? null : Number(r.rows_estimated),
    batchSize: r.batch_size,
    rate: r.rate ?? undefined,
    maxBacklog: r.max_backlog,
    state: r.state,
    error: r.error,
    startedAt: r.started_at,
    resumedAt: r.resumed_at,
    rowsAtResume: Number(r.rows_at_resume),
    updatedAt: r.updated_at,
    finishedAt: r.finished_at,
  };
}

export class PgBackfillStore implements BackfillStore {
  private client: pg.Client | undefined;
  /** The backfill whose lease this store holds (taken again on a new session). */
  private leased: string | undefined;
  private readonly q: Queries;
  private readonly stepTexts = new Map<string, string>();
  /** Since when taking the lease again on a new session has failed (the old session may linger on the server). */
  private leaseBusySince: number | undefined;

  constructor(private readonly config: Config) {
    this.q = makeQueries(config.listener.schema);
  }

  /** The session, connected (again, after a lost connection: then the lease is taken again). */
  private async session(): Promise<pg.Client> {
    if (this.client) return this.client;
    const client = new pg.Client({
      ...pgClientConfig(this.config.database, 'app-db-listener:backfill'),
      options: `-c lock_timeout=${LOCK_TIMEOUT_MS} -c statement_timeout=${STATEMENT_TIMEOUT_MS}`,
    });
    client.on('error', () => {
      if (this.client === client) this.client = undefined;
    });
    client.on('end', () => {
      if (this.client === client) this.client = undefined;
    });
    await client.connect().catch((err: unknown) => {
      throw connectionError(err, this.config);
    });
    this.client = client;
    if (this.leased !== undefined && !(await this.tryLease(client, this.leased))) {
      this.client = undefined;
      await client.end().catch(() => undefined);
      throw leaseRetakeError(this.leased, (this.leaseBusySince ??= Date.now()));
    }
    this.leaseBusySince = undefined;
    return client;
  }

  private async tryLease(client: pg.Client, id: string): Promise<boolean> {
    const r = await client.query<{ ok: boolean }>(this.q.backfillTryLease, [backfillLeaseKey(this.q.schemaName, id)]);
    return r.rows[0]?.ok === true;
  }

  /** Checks that this version's schema is installed (the backfills table). */
  async checkInstalled(): Promise<void> {
    const c = await this.session();
    const r = await c.query<{ ok: boolean }>(`SELECT to_regclass($1) IS NOT NULL AS ok`, [qualify(this.q.schemaName, 'backfills')]);
    if (r.rows[0]?.ok !== true) {
      throw new AppError('NOT_INSTALLED', `this database has no ${this.q.schemaName}.backfills table: its installation predates backfills`, {
        hint: 'run "app-db-listener install" (or restart the daemon of this version, which installs it)',
      });
    }
  }

  async resolveTable(schema: string | undefined, name: string, key: readonly string[] | undefined): Promise<BackfillTable & { keyColumns: readonly string[] }> {
    const c = await this.session();
    const [t] = await resolveTables(c, [{ schema, name }]);
    const table = { schema: t!.schema, name: t!.name, primaryKey: t!.keyColumns };
    if (key === undefined || key.length === 0) return { ...table, keyColumns: table.primaryKey };
    const r = await c.query<{ missing: string[]; nullable: string[]; is_unique: boolean }>(this.q.backfillKeyCheck, [qualify(table.schema, table.name), [...key]]);
    const row = r.rows[0]!;
    const problem = keyProblem(table, key, { missing: row.missing, unique: row.is_unique, nullable: row.nullable });
    if (problem) throw problem;
    return { ...table, keyColumns: [...key] };
  }

  async estimate(table: BackfillTable, condition: string | undefined): Promise<number | null> {
    const c = await this.session();
    try {
      // FOR SHARE: the plan checks the privilege a batch needs (UPDATE on the table).
      // Extended protocol: one statement only, whatever the condition holds.
      const explain = {
        text: `EXPLAIN (FORMAT JSON) SELECT 1 FROM ${qualify(table.schema, table.name)} t WHERE (${condition ?? 'true'}) FOR SHARE`,
        queryMode: 'extended',
      } as pg.QueryConfig;
      const r = await c.query<{ 'QUERY PLAN': Array<{ Plan: { 'Plan Rows': number } }> }>(explain);
      const rows = r.rows[0]?.['QUERY PLAN'][0]?.Plan['Plan Rows'];
      return typeof rows === 'number' ? Math.round(rows) : null;
    } catch (err) {
      if (condition !== undefined && !isTransientPgError(err)) {
        throw whereError(condition, table, err, "created_at > now() - interval '30 days'");
      }
      throw err;
    }
  }

  async create(spec: BackfillSpec, estimate: number | null): Promise<BackfillRecord> {
    const c = await this.session();
    try {
      const r = await c.query<BackfillRow>(this.q.backfillCreate, [
        spec.schema,
        spec.table,
        spec.destination ?? null,
        spec.condition ?? null,
        [...spec.keyColumns],
        estimate,
        spec.batchSize,
        spec.rate ?? null,
        spec.maxBacklog,
      ]);
      return backfillFromRow(r.rows[0]!);
    } catch (err) {
      if ((err as { code?: string }).code === '23505') throw existsError(spec.schema, spec.table, spec.destination);
      throw err;
    }
  }

  async unfinished(schema: string, table: string, destination: string | undefined): Promise<BackfillListing | undefined> {
    const c = await this.session();
    const r = await c.query<BackfillRow>(this.q.backfillUnfinished, [schema, table, destination ?? '']);
    const row = r.rows[0];
    return row === undefined ? undefined : (await this.withLeases([backfillFromRow(row)]))[0];
  }

  async acquire(id: string): Promise<boolean> {
    const c = await this.session();
    if (!(await this.tryLease(c, id))) return false;
    this.leased = id;
    return true;
  }

  async resume(id: string, pacing: Pick<BackfillSpec, 'batchSize' | 'rate' | 'maxBacklog'>): Promise<BackfillRecord> {
    const c = await this.session();
    const r = await c.query<BackfillRow>(this.q.backfillResume, [id, pacing.batchSize, pacing.rate ?? null, pacing.maxBacklog]);
    if (!r.rows[0]) throw new AppError('BACKFILL_NOT_RUNNING', `backfill ${id} is no longer unfinished`);
    return backfillFromRow(r.rows[0]);
  }

  async step(record: BackfillRecord, table: BackfillTable, limit: number): Promise<StepResult> {
    const c = await this.session();
    const after = record.lastKey !== null;
    const keyValues = record.lastKey ?? [];
    await c.query('BEGIN');
    try {
      const state = await c.query<{ state: BackfillRecord['state'] }>(this.q.backfillLock, [record.id]);
      const now = state.rows[0]?.state ?? 'cancelled';
      if (now !== 'running') {
        await c.query('ROLLBACK');
        return { rows: 0, lastKey: record.lastKey, state: now === 'done' ? 'done' : now === 'failed' ? 'failed' : 'cancelled' };
      }
      const bound = await c.query<{ bound: string[] }>(this.text('bound', record, table, after, false), [limit, ...keyValues]);
      const upTo = bound.rows[0]?.bound;
      let rows: number;
      try {
        await c.query('SAVEPOINT batch');
        const r = await c.query<{ rows: number }>(this.text('journal', record, table, after, upTo !== undefined), [
          table.schema,
          table.name,
          record.destination ?? null,
          ...keyValues,
          ...(upTo ?? []),
        ]);
        rows = r.rows[0]?.rows ?? 0;
      } catch (err) {
        // A writer holds one of the rows: nothing was done; try again shortly.
        if ((err as { code?: string }).code !== '55P03') throw err;
        await c.query('ROLLBACK');
        return { rows: 0, lastKey: record.lastKey, state: 'busy' };
      }
      // No bound: fewer rows than a batch remained, and this batch read them all.
      const done = upTo === undefined;
      const lastKey = upTo ?? record.lastKey;
      await c.query(this.q.backfillProgress, [record.id, upTo ?? null, rows, done]);
      if (rows > 0) await c.query(this.q.backfillWake, [this.q.waitLockKey]);
      await c.query('COMMIT');
      return { rows, lastKey, state: done ? 'done' : 'running' };
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  }

  /** The batch's statements, made once per shape. */
  private text(kind: 'bound' | 'journal', record: BackfillRecord, table: BackfillTable, after: boolean, bounded: boolean): string {
    const shape = JSON.stringify([kind, record.keyColumns, table.primaryKey, record.condition ?? null, after, bounded]);
    let text = this.stepTexts.get(shape);
    if (text === undefined) {
      text =
        kind === 'bound'
          ? this.q.backfillBound(table, record.keyColumns, record.condition, after)
          : this.q.backfillJournal(table, table.primaryKey, record.keyColumns, record.condition, after, bounded);
      this.stepTexts.set(shape, text);
    }
    return text;
  }

  async reload(id: string): Promise<BackfillRecord> {
    const c = await this.session();
    const r = await c.query<BackfillRow>(this.q.backfillById, [id]);
    if (!r.rows[0]) throw new AppError('BACKFILL_NOT_FOUND', `no backfill ${id}`);
    return backfillFromRow(r.rows[0]);
  }

  async latestFailed(schema: string, table: string, destination: string | undefined): Promise<BackfillRecord | undefined> {
    const c = await this.session();
    const r = await c.query<BackfillRow>(this.q.backfillLatestFailed, [schema, table, destination ?? '']);
    return r.rows[0] === undefined ? undefined : backfillFromRow(r.rows[0]);
  }

  async backlog(schema: string, table: string, destinations: readonly string[], cap: number): Promise<number> {
    const c = await this.session();
    const r = await c.query<{ queued: number }>(this.q.backfillBacklog, [schema, table, [...destinations], cap]);
    return r.rows[0]?.queued ?? 0;
  }

  async fail(id: string, error: string): Promise<void> {
    const c = await this.session();
    await c.query(this.q.backfillFail, [id, error]);
  }

  async cancel(schema: string, table: string, destination: string | undefined): Promise<BackfillRecord[]> {
    const c = await this.session();
    const r = await c.query<BackfillRow>(this.q.backfillCancel, [schema, table, destination ?? null]);
    return r.rows.map(backfillFromRow);
  }

  async list(limit = 20): Promise<BackfillListing[]> {
    const c = await this.session();
    const r = await c.query<BackfillRow>(this.q.backfillList, [limit]);
    return this.withLeases(r.rows.map(backfillFromRow));
  }

  /** Whether a process holds each running backfill's lease (tried and given back at once). */
  private async withLeases(records: BackfillRecord[]): Promise<BackfillListing[]> {
    const c = await this.session();
    const out: BackfillListing[] = [];
    for (const b of records) {
      if (b.state !== 'running') {
        out.push({ ...b, leased: false });
        continue;
      }
      if (this.leased === b.id) {
        out.push({ ...b, leased: true });
        continue;
      }
      const key = backfillLeaseKey(this.q.schemaName, b.id);
      const free = (await c.query<{ ok: boolean }>(this.q.backfillTryLease, [key])).rows[0]?.ok === true;
      if (free) await c.query(this.q.backfillReleaseLease, [key]);
      out.push({ ...b, leased: !free });
    }
    return out;
  }

  async close(): Promise<void> {
    const c = this.client;
    this.client = undefined;
    this.leased = undefined;
    await c?.end().catch(() => undefined);
  }
}
