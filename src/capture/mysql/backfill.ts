/**
 * MySQL/MariaDB backfills (see src/capture/backfill/): one session of its own, which
 * holds the running backfill's lease (a GET_LOCK: it ends with the session), reads
 * the table and journals each batch in one READ COMMITTED transaction.
 */
import { createHash } from 'node:crypto';
import type mysql from 'mysql2/promise';
import type { Config } from '../../config/types.js';
import { AppError } from '../../util/errors.js';
import type { BackfillListing, BackfillRecord, BackfillSpec, BackfillStore, BackfillTable, StepResult } from '../backfill/types.js';
import { existsError, keyProblem, leaseRetakeError, whereError } from '../backfill/errors.js';
import { createMySqlPool, mysqlConnectionError } from './connection.js';
import { resolveTables, type MySqlTable } from './install.js';
import { keyCodec, keyParams, keysetParams, makeQueries, type Queries } from './queries.js';
import { readServerInfo } from './server.js';
import { qualify } from './sql.js';
import { objectNames, TRIGGER_SQL_MODE } from './triggers.js';

/** Our own statements wait this long for a lock (the backfill's row, during a cancel). */
const LOCK_WAIT_TIMEOUT_S = 10;

/**
 * Deadlocks, lock waits, lost connections and our lease still held by our previous
 * session pass; a refused login, a missing database and the rest fail the backfill.
 */
export function isTransientMySqlError(err: unknown): boolean {
  if (err instanceof AppError) {
    const cause = String((err.cause as { code?: unknown } | undefined)?.code);
    return err.code === 'BACKFILL_LEASE_BUSY' || (err.code === 'DATABASE_CONNECT' && !/^ER_(ACCESS_DENIED|DBACCESS_DENIED|BAD_DB)/.test(cause));
  }
  const e = err as { code?: unknown; fatal?: unknown };
  if (e.fatal === true) return true;
  return (
    typeof e.code === 'string' &&
    /^(ER_LOCK_DEADLOCK|ER_LOCK_WAIT_TIMEOUT|ER_LOCK_NOWAIT|PROTOCOL_CONNECTION_LOST|ER_SERVER_SHUTDOWN|ER_CON_COUNT_ERROR|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE)$/.test(e.code)
  );
}

/** A NOWAIT locking read that met a row held by another transaction (MariaDB: 1205, MySQL 8: 3572). */
function isLockBusy(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return code === 'ER_LOCK_WAIT_TIMEOUT' || code === 'ER_LOCK_NOWAIT';
}

export type BackfillRow = mysql.RowDataPacket & {
  id: string | number;
  schema_name: string;
  table_name: string;
  destination: string | null;
  condition: string | null;
  key_columns: string;
  last_key: string | null;
  rows_done: string | number;
  rows_estimated: string | number | null;
  batch_size: number;
  rate: number | null;
  max_backlog: number;
  state: BackfillRecord['state'];
  error: string | null;
  started_at: string;
  resumed_at: string;
  rows_at_resume: string | number;
  updated_at: string;
  finished_at: string | null;
};

const utc = (text: string): Date => new Date(`${text.replace(' ', 'T')}Z`);

export function backfillFromRow(r: BackfillRow): BackfillRecord {
  return {
    id: String(r.id),
    schema: r.schema_name,
    table: r.table_name,
    destination: r.destination ?? undefined,
    condition: r.condition ?? undefined,
    keyColumns: JSON.parse(r.key_columns) as string[],
    lastKey: r.last_key === null ? null : (JSON.parse(r.last_key) as string[]),
    rowsDone: Number(r.rows_done),
    rowsEstimated: r.rows_estimated === null ? null : Number(r.rows_estimated),
    batchSize: Number(r.batch_size),
    rate: r.rate === null ? undefined : Number(r.rate),
    maxBacklog: Number(r.max_backlog),
    state: r.state,
    error: r.error,
    startedAt: utc(r.started_at),
    resumedAt: utc(r.resumed_at),
    rowsAtResume: Number(r.rows_at_resume),
    updatedAt: utc(r.updated_at),
    finishedAt: r.finished_at === null ? null : utc(r.finished_at),
  };
}

export class MySqlBackfillStore implements BackfillStore {
  private readonly pool: mysql.Pool;
  private conn: mysql.PoolConnection | undefined;
  private leased: string | undefined;
  private readonly q: Queries;
  /** The watched tables' columns, as the batches' statements need them. */
  private readonly tables = new Map<string, MySqlTable>();
  private lockSql: string | undefined;
  /** Since when taking the lease again on a new session has failed (the old session may linger on the server). */
  private leaseBusySince: number | undefined;

  constructor(private readonly config: Config) {
    this.pool = createMySqlPool(config.database, { connectionLimit: 1, applicationName: 'app-db-listener:backfill' });
    this.q = makeQueries(config.listener.schema);
  }

  private leaseName(id: string): string {
    const key = createHash('sha1').update(`${this.config.database.database}\u0000${this.config.listener.schema}`).digest('hex');
    return `app-db-listener:backfill:${key.slice(0, 24)}:${id}`;
  }

  private async session(): Promise<mysql.PoolConnection> {
    if (this.conn) return this.conn;
    const conn = await this.pool.getConnection().catch((err: unknown) => {
      throw mysqlConnectionError(err, this.config);
    });
    const drop = () => {
      if (this.conn === conn) this.conn = undefined;
    };
    conn.connection.once('error', drop);
    conn.connection.once('end', drop);
    await conn.query('SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED');
    // UTC: a TIMESTAMP key travels as text, unambiguous only without daylight saving.
    await conn.query(`SET SESSION innodb_lock_wait_timeout = ${LOCK_WAIT_TIMEOUT_S}, sql_mode = '${TRIGGER_SQL_MODE}', time_zone = '+00:00'`);
    this.conn = conn;
    if (this.leased !== undefined && !(await this.tryLease(conn, this.leased))) {
      this.conn = undefined;
      conn.destroy();
      throw leaseRetakeError(this.leased, (this.leaseBusySince ??= Date.now()));
    }
    this.leaseBusySince = undefined;
    return conn;
  }

  private async query<T extends mysql.RowDataPacket>(sql: string, values: unknown[] = []): Promise<T[]> {
    const conn = await this.session();
    try {
      const [rows] = await conn.query<T[]>(sql, values);
      return rows;
    } catch (err) {
      if ((err as { fatal?: boolean }).fatal) {
        this.conn = undefined;
        conn.destroy();
      }
      throw err;
    }
  }

  private async tryLease(conn: mysql.PoolConnection, id: string): Promise<boolean> {
    const [rows] = await conn.query<mysql.RowDataPacket[]>(this.q.backfillTryLease, [this.leaseName(id)]);
    return Number(rows[0]?.ok) === 1;
  }

  async checkInstalled(): Promise<void> {
    const name = objectNames(this.config.listener.schema).backfills;
    const r = await this.query<mysql.RowDataPacket>('SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [
      this.config.database.database,
      name,
    ]);
    if (Number(r[0]?.n ?? 0) === 0) {
      throw new AppError('NOT_INSTALLED', `this database has no table ${name}: its installation predates backfills`, {
        hint: 'run "app-db-listener install" (or restart the daemon of this version, which installs it)',
      });
    }
  }

  async resolveTable(schema: string | undefined, name: string, key: readonly string[] | undefined): Promise<BackfillTable & { keyColumns: readonly string[] }> {
    const conn = await this.session();
    const [t] = await resolveTables(conn, { ...this.config, database: { ...this.config.database, tables: [{ schema, name }] } });
    const table = t!;
    this.tables.set(`${table.schema}.${table.name}`, table);
    const base = { schema: table.schema, name: table.name, primaryKey: table.keyColumns };
    if (key === undefined || key.length === 0) {
      // Checks that a batch can be read in this key's order (an approximate number cannot).
      for (const k of base.primaryKey) keyCodec(table.columns.find((c) => c.name === k)!);
      return { ...base, keyColumns: base.primaryKey };
    }
    const missing = key.filter((k) => !table.columns.some((c) => c.name === k));
    // A unique index of exactly these columns, whole (no prefix, no expression part).
    const idx =
      missing.length > 0
        ? []
        : await this.query<mysql.RowDataPacket>(
            `SELECT INDEX_NAME AS name, JSON_ARRAYAGG(COLUMN_NAME) AS cols, SUM(NULLABLE = 'YES') AS nullable
               FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND NON_UNIQUE = 0
              GROUP BY INDEX_NAME
             HAVING SUM(SUB_PART IS NOT NULL OR COLUMN_NAME IS NULL) = 0`,
            [table.schema, table.name],
          );
    const wanted = [...key].sort().join('\u0000');
    const match = idx.find((i) => ((typeof i.cols === 'string' ? JSON.parse(i.cols) : i.cols) as string[]).slice().sort().join('\u0000') === wanted);
    const problem = keyProblem(table, key, { missing, unique: match !== undefined, nullable: Number(match?.nullable ?? 0) > 0 ? key : [] });
    if (problem) throw problem;
    for (const k of key) keyCodec(table.columns.find((c) => c.name === k)!);
    return { ...base, keyColumns: [...key] };
  }

  async estimate(table: BackfillTable, condition: string | undefined): Promise<number | null> {
    try {
      const r = await this.query<mysql.RowDataPacket>(`EXPLAIN SELECT 1 FROM ${qualify(table.schema, table.name)} r WHERE (${condition ?? 'TRUE'})`);
      const row = r[0];
      if (!row || row.rows === null || row.rows === undefined) return null;
      const filtered = row.filtered === undefined || row.filtered === null ? 100 : Number(row.filtered);
      return Math.round((Number(row.rows) * filtered) / 100);
    } catch (err) {
      if (condition !== undefined && !isTransientMySqlError(err)) {
        throw whereError(condition, table, err, 'created_at > NOW() - INTERVAL 30 DAY');
      }
      throw err;
    }
  }

  async create(spec: BackfillSpec, estimate: number | null): Promise<BackfillRecord> {
    let id: string;
    try {
      const conn = await this.session();
      const [res] = await conn.query<mysql.ResultSetHeader>(this.q.backfillCreate, [
        spec.schema,
        spec.table,
        spec.destination ?? null,
        spec.condition ?? null,
        JSON.stringify(spec.keyColumns),
        estimate,
        spec.batchSize,
        spec.rate ?? null,
        spec.maxBacklog,
      ]);
      id = String(res.insertId);
    } catch (err) {
      if ((err as { code?: string }).code === 'ER_DUP_ENTRY') throw existsError(spec.schema, spec.table, spec.destination);
      throw err;
    }
    return this.byId(id);
  }

  private async byId(id: string): Promise<BackfillRecord> {
    const r = await this.query<BackfillRow>(this.q.backfillById, [id]);
    if (!r[0]) throw new AppError('BACKFILL_NOT_FOUND', `no backfill ${id}`);
    return backfillFromRow(r[0]);
  }

  async unfinished(schema: string, table: string, destination: string | undefined): Promise<BackfillListing | undefined> {
    const r = await this.query<BackfillRow>(this.q.backfillUnfinished, [schema, table, destination ?? '']);
    return r[0] === undefined ? undefined : (await this.withLeases([backfillFromRow(r[0])]))[0];
  }

  async acquire(id: string): Promise<boolean> {
    const conn = await this.session();
    if (!(await this.tryLease(conn, id))) return false;
    this.leased = id;
    return true;
  }

  async resume(id: string, pacing: Pick<BackfillSpec, 'batchSize' | 'rate' | 'maxBacklog'>): Promise<BackfillRecord> {
    await this.query(this.q.backfillResume, [pacing.batchSize, pacing.rate ?? null, pacing.maxBacklog, id]);
    const b = await this.byId(id);
    if (b.state !== 'running') throw new AppError('BACKFILL_NOT_RUNNING', `backfill ${id} is no longer unfinished`);
    return b;
  }

  async step(record: BackfillRecord, table: BackfillTable, limit: number): Promise<StepResult> {
    const t = this.tables.get(`${table.schema}.${table.name}`);
    if (!t) throw new Error(`backfill: table ${table.schema}.${table.name} was not resolved`);
    const conn = await this.session();
    const after = record.lastKey !== null;
    try {
      await conn.query('START TRANSACTION');
      const [state] = await conn.query<mysql.RowDataPacket[]>(this.q.backfillLock, [record.id]);
      const now = (state[0]?.state as BackfillRecord['state'] | undefined) ?? 'cancelled';
      if (now !== 'running') {
        await conn.query('ROLLBACK');
        return { rows: 0, lastKey: record.lastKey, state: now === 'done' ? 'done' : now === 'failed' ? 'failed' : 'cancelled' };
      }
      let found: mysql.RowDataPacket[];
      try {
        [found] = await conn.query<mysql.RowDataPacket[]>(this.q.backfillKeys(t, record.keyColumns, record.condition, after, await this.lockClause()), [
          ...keysetParams(record.lastKey ?? [], '>'),
          limit,
        ]);
      } catch (err) {
        // A writer holds one of the rows (NOWAIT): nothing was done; try again shortly.
        if (!isLockBusy(err)) throw err;
        await conn.query('ROLLBACK');
        return { rows: 0, lastKey: record.lastKey, state: 'busy' };
      }
      const keys = found.map((row) => record.keyColumns.map((_, i) => String(row[`k${i}`])));
      let rows = 0;
      if (keys.length > 0) {
        const [res] = await conn.query<mysql.ResultSetHeader>(this.q.backfillJournal(t, record.keyColumns, keys.length), [
          table.schema,
          table.name,
          record.destination ?? null,
          ...keyParams(keys),
        ]);
        rows = res.affectedRows;
      }
      // Fewer rows than asked: the batch read the last of them.
      const done = keys.length < limit ? 1 : 0;
      const lastKey = keys.at(-1) ?? record.lastKey;
      await conn.query(this.q.backfillProgress, [keys.length > 0 ? JSON.stringify(lastKey) : null, rows, done, done, done, record.id]);
      await conn.query('COMMIT');
      return { rows, lastKey, state: done ? 'done' : 'running' };
    } catch (err) {
      await conn.query('ROLLBACK').catch(() => undefined);
      if ((err as { fatal?: boolean }).fatal) {
        this.conn = undefined;
        conn.destroy();
      }
      throw err;
    }
  }

  /** The server's locking read that does not wait: MariaDB's and MySQL 8's spellings differ. */
  private async lockClause(): Promise<string> {
    if (this.lockSql === undefined) {
      const info = await readServerInfo(await this.session());
      this.lockSql = info.flavor === 'mariadb' ? 'LOCK IN SHARE MODE NOWAIT' : 'FOR SHARE NOWAIT';
    }
    return this.lockSql;
  }

  async reload(id: string): Promise<BackfillRecord> {
    return this.byId(id);
  }

  async latestFailed(schema: string, table: string, destination: string | undefined): Promise<BackfillRecord | undefined> {
    const r = await this.query<BackfillRow>(this.q.backfillLatestFailed, [schema, table, destination ?? '']);
    return r[0] === undefined ? undefined : backfillFromRow(r[0]);
  }

  async backlog(schema: string, table: string, destinations: readonly string[], cap: number): Promise<number> {
    const r = await this.query<mysql.RowDataPacket>(this.q.backfillBacklog, [schema, table, cap, JSON.stringify(destinations), cap]);
    return Number(r[0]?.queued ?? 0);
  }

  async fail(id: string, error: string): Promise<void> {
    await this.query(this.q.backfillFail, [error, id]);
  }

  async cancel(schema: string, table: string, destination: string | undefined): Promise<BackfillRecord[]> {
    const conn = await this.session();
    const dest = destination ?? null;
    await conn.query('START TRANSACTION');
    try {
      const [found] = await conn.query<BackfillRow[]>(this.q.backfillCancelable, [schema, table, dest, dest]);
      const ids = found.map((r) => String(r.id));
      if (ids.length > 0) await conn.query(this.q.backfillCancel, [JSON.stringify(ids)]);
      await conn.query('COMMIT');
      return found.map((r) => ({ ...backfillFromRow(r), state: 'cancelled' as const }));
    } catch (err) {
      await conn.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  }

  async list(limit = 20): Promise<BackfillListing[]> {
    const r = await this.query<BackfillRow>(this.q.backfillList, [limit]);
    return this.withLeases(r.map(backfillFromRow));
  }

  private async withLeases(records: BackfillRecord[]): Promise<BackfillListing[]> {
    const out: BackfillListing[] = [];
    for (const b of records) {
      if (b.state !== 'running') out.push({ ...b, leased: false });
      else if (this.leased === b.id) out.push({ ...b, leased: true });
      else {
        const r = await this.query<mysql.RowDataPacket>(this.q.backfillLeaseFree, [this.leaseName(b.id)]);
        out.push({ ...b, leased: Number(r[0]?.free) !== 1 });
      }
    }
    return out;
  }

  async close(): Promise<void> {
    const conn = this.conn;
    this.conn = undefined;
    this.leased = undefined;
    conn?.release();
    await this.pool.end().catch(() => undefined);
  }
}
