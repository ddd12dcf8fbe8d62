/**
 * What we install in a PostgreSQL database, as a plan that can be printed, applied
 * or removed: our schema's numbered migrations, then one capture trigger per watched
 * table. Applying takes a transaction-scoped advisory lock, so two daemons starting
 * at once install one after the other and the second finds nothing left to do.
 */
import { createHash } from 'node:crypto';
import type pg from 'pg';
import type { Config, Operation, TableRef } from '../../config/types.js';
import type { ResolvedTable } from '../source.js';
import { loadMigrations, render } from '../../schema/migrations.js';
import { AppError } from '../../util/errors.js';
import { waitLockKey } from './queries.js';
import { qualify, quoteIdent, quoteLiteral } from './sql.js';

export type { ResolvedTable };

export interface InstallStep {
  readonly description: string;
  readonly sql: string;
  /**
   * Runs after the install transaction commits, on its own: creating (or dropping) a
   * replication slot is not allowed in a transaction that has written anything.
   */
  readonly afterCommit?: boolean;
}

export interface InstallPlan {
  readonly steps: readonly InstallStep[];
  readonly tables: readonly ResolvedTable[];
  readonly warnings: readonly string[];
}

/** How long one install waits for a table lock before giving up (it is retried by the caller). */
export const INSTALL_LOCK_TIMEOUT_MS = 3_000;

/** Name of the capture trigger on watched tables (one per installation schema). */
export function triggerName(ourSchema: string): string {
  return `${ourSchema}_capture`.slice(0, 63);
}

/**
 * The replication slot of log capture (listener.capture: log). Slots are the
 * server's, not the database's: the name carries a hash of the database and our
 * schema, so installations in two databases of one server never share one.
 */
export function captureSlotName(config: Config): string {
  const ourSchema = config.listener.schema;
  const base = ourSchema.toLowerCase().replace(/[^a-z0-9_]/g, '_').slice(0, 50);
  const hash = createHash('sha1').update(`${config.database.database}\u0000${ourSchema}`).digest('hex').slice(0, 8);
  return `${base}_${hash}`;
}

/** The publication of log capture: the watched tables (publications belong to one database). */
export function capturePublicationName(config: Config): string {
  return config.listener.schema;
}

function lockKeySql(ourSchema: string): string {
  return `SELECT pg_advisory_xact_lock(hashtext(${quoteLiteral(`app-db-listener:${ourSchema}`)}))`;
}

function bootstrapSql(ourSchema: string): string {
  const s = quoteIdent(ourSchema);
  return `CREATE SCHEMA IF NOT EXISTS ${s};
CREATE TABLE IF NOT EXISTS ${s}.migrations (
  version    integer PRIMARY KEY,
  name       text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
);`;
}

async function appliedVersions(client: pg.ClientBase, ourSchema: string): Promise<Set<number>> {
  const exists = await client.query<{ ok: boolean }>(
    `SELECT to_regclass($1) IS NOT NULL AS ok`,
    [`${quoteIdent(ourSchema)}.migrations`],
  );
  if (!exists.rows[0]?.ok) return new Set();
  const r = await client.query<{ version: number }>(`SELECT version FROM ${quoteIdent(ourSchema)}.migrations`);
  return new Set(r.rows.map((row) => row.version));
}

/** Finds each watched table, its schema (search_path when unqualified) and its primary key. */
export async function resolveTables(client: pg.ClientBase, tables: readonly TableRef[]): Promise<ResolvedTable[]> {
  const out: ResolvedTable[] = [];
  for (const t of tables) {
    const found = await client.query<{ oid: number; nspname: string; relname: string; relkind: string }>(
      `SELECT c.oid::integer AS oid, n.nspname, c.relname, c.relkind
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relname = $1
          AND ($2::text IS NULL AND n.nspname = ANY (current_schemas(false)) OR n.nspname = $2)
        ORDER BY array_position(current_schemas(false), n.nspname) NULLS LAST
        LIMIT 1`,
      [t.name, t.schema ?? null],
    );
    const row = found.rows[0];
    const shown = t.schema ? `${t.schema}.${t.name}` : t.name;
    if (!row) {
      throw new AppError('TABLE_NOT_FOUND', `table ${JSON.stringify(shown)} does not exist in the database`, {
        hint: 'check database.table / database.tables (names are case-sensitive) and database.database',
      });
    }
    if (row.relkind !== 'r' && row.relkind !== 'p') {
      throw new AppError('TABLE_NOT_A_TABLE', `${JSON.stringify(shown)} is not a table (relkind ${row.relkind})`, {
        hint: 'only ordinary and partitioned tables can be watched',
      });
    }
    const keys = await client.query<{ attname: string }>(
      `SELECT a.attname
         FROM pg_index i
         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey::int2[])
        WHERE i.indrelid = $1::oid AND i.indisprimary
        ORDER BY array_position(i.indkey::int2[], a.attnum)`,
      [row.oid],
    );
    out.push({ schema: row.nspname, name: row.relname, keyColumns: keys.rows.map((k) => k.attname) });
  }
  return out;
}

function triggerSql(ourSchema: string, table: ResolvedTable, modes: readonly Operation[]): string {
  const target = qualify(table.schema, table.name);
  const name = quoteIdent(triggerName(ourSchema));
  const args = [quoteLiteral(table.schema), quoteLiteral(table.name), ...table.keyColumns.map(quoteLiteral)].join(', ');
  return `DROP TRIGGER IF EXISTS ${name} ON ${target};
CREATE TRIGGER ${name} AFTER ${modes.join(' OR ')} ON ${target}
  FOR EACH ROW EXECUTE FUNCTION ${quoteIdent(ourSchema)}.capture_change(${args});
${watchedTableSql(ourSchema, table, modes)}`;
}

/** Records a watched table (status, and re-installing only what changed). */
function watchedTableSql(ourSchema: string, table: ResolvedTable, modes: readonly Operation[]): string {
  const keys = table.keyColumns.map(quoteLiteral).join(', ');
  return `INSERT INTO ${quoteIdent(ourSchema)}.watched_tables (schema_name, table_name, operations, key_columns)
VALUES (${quoteLiteral(table.schema)}, ${quoteLiteral(table.name)}, ARRAY[${modes.map(quoteLiteral).join(', ')}]::text[], ARRAY[${keys}]::text[])
ON CONFLICT (schema_name, table_name) DO UPDATE
  SET operations = EXCLUDED.operations, key_columns = EXCLUDED.key_columns, installed_at = now();`;
}

/** True when watched_tables records the table with the same operations and key. */
async function watchedIsCurrent(client: pg.ClientBase, ourSchema: string, table: ResolvedTable, modes: readonly Operation[]): Promise<boolean> {
  const r = await client.query<{ ok: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM ${quoteIdent(ourSchema)}.watched_tables w
        WHERE w.schema_name = $1 AND w.table_name = $2 AND w.operations = $3::text[] AND w.key_columns = $4::text[]) AS ok`,
    [table.schema, table.name, [...modes], [...table.keyColumns]],
  );
  return r.rows[0]?.ok === true;
}

/** True when the table's trigger exists and was installed for the same operations and key. */
async function triggerIsCurrent(
  client: pg.ClientBase,
  ourSchema: string,
  table: ResolvedTable,
  modes: readonly Operation[],
): Promise<boolean> {
  const r = await client.query<{ ok: boolean }>(
    `SELECT EXISTS (
       SELECT 1 FROM pg_trigger t
        WHERE t.tgrelid = to_regclass($1) AND t.tgname = $2 AND NOT t.tgisinternal)
       AND EXISTS (
       SELECT 1 FROM ${quoteIdent(ourSchema)}.watched_tables w
        WHERE w.schema_name = $3 AND w.table_name = $4
          AND w.operations = $5::text[] AND w.key_columns = $6::text[]) AS ok`,
    [qualify(table.schema, table.name), triggerName(ourSchema), table.schema, table.name, [...modes], [...table.keyColumns]],
  );
  return r.rows[0]?.ok === true;
}

/**
 * Reads the database and returns what is missing, as SQL. `force` plans every
 * step, as for a fresh database (used by `install --dry-run --all`).
 */
export async function planInstall(client: pg.ClientBase, config: Config, force = false, upToVersion = Infinity): Promise<InstallPlan> {
  const ourSchema = config.listener.schema;
  const modes = config.listener.modes;
  const applied = force ? new Set<number>() : await appliedVersions(client, ourSchema);
  const steps: InstallStep[] = [];
  const warnings: string[] = [];
  const pending = loadMigrations('postgres').filter((m) => !applied.has(m.version) && m.version <= upToVersion);
  if (pending.length > 0 && applied.size === 0) {
    steps.push({ description: `create schema ${ourSchema}`, sql: bootstrapSql(ourSchema) });
  }
  const values = { schema: quoteIdent(ourSchema), channel: quoteLiteral(ourSchema), wait_lock: waitLockKey(ourSchema) };
  for (const m of pending) {
    steps.push({
      description: `migration ${String(m.version).padStart(6, '0')}_${m.name}`,
      sql: `${render(m.template, values)}\nINSERT INTO ${quoteIdent(ourSchema)}.migrations (version, name) VALUES (${m.version}, ${quoteLiteral(m.name)});`,
    });
  }
  const tables = await resolveTables(client, config.database.tables);
  for (const t of tables) {
    if (t.keyColumns.length === 0) {
      warnings.push(
        `table ${t.schema}.${t.name} has no primary key: its events carry no row identity, so they are delivered without per-row ordering`,
      );
    }
  }
  if (config.listener.capture === 'log') {
    await planLogCapture(client, config, tables, force, applied.size === 0, steps);
    return { steps, tables, warnings };
  }
  for (const t of tables) {
    // A fresh installation has no watched_tables yet; otherwise only a trigger whose
    // definition changed is re-created (DROP/CREATE TRIGGER locks the table briefly).
    if (force || applied.size === 0 || !(await triggerIsCurrent(client, ourSchema, t, modes))) {
      steps.push({ description: `capture trigger on ${t.schema}.${t.name} (${modes.join(', ')})`, sql: triggerSql(ourSchema, t, modes) });
    }
  }
  if (!force && (await slotExists(client, captureSlotName(config)))) {
    warnings.push(
      `the replication slot ${captureSlotName(config)} of log capture is still there and nobody reads it: it keeps every WAL segment from being removed until the disk fills; drop it with "uninstall" under listener.capture: log, or SELECT pg_drop_replication_slot('${captureSlotName(config)}')`,
    );
  }
  return { steps, tables, warnings };
}

async function slotExists(client: pg.ClientBase, slot: string): Promise<boolean> {
  const r = await client.query<{ ok: boolean }>(`SELECT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1) AS ok`, [slot]);
  return r.rows[0]?.ok === true;
}

/** Publication flags for the captured operations: TRUNCATE is published too (an event of its own). */
function publishOption(modes: readonly Operation[]): string {
  return [...modes.map((m) => m.toLowerCase()), 'truncate'].join(', ');
}

/**
 * Log capture (listener.capture: log): no triggers; a publication of the watched
 * tables, REPLICA IDENTITY FULL on each (the old row of UPDATE and DELETE, and the
 * unchanged large values of an UPDATE), and a permanent pgoutput slot, created after
 * the transaction. A trigger left from trigger capture is removed (its changes would
 * otherwise be journaled twice).
 */
async function planLogCapture(
  client: pg.ClientBase,
  config: Config,
  tables: readonly ResolvedTable[],
  force: boolean,
  fresh: boolean,
  steps: InstallStep[],
): Promise<void> {
  const ourSchema = config.listener.schema;
  const modes = config.listener.modes;
  const publication = capturePublicationName(config);
  const slot = captureSlotName(config);
  for (const t of tables) {
    const target = qualify(t.schema, t.name);
    const r = await client.query<{ replident: string; has_trigger: boolean }>(
      `SELECT c.relreplident AS replident,
              EXISTS (SELECT 1 FROM pg_trigger g WHERE g.tgrelid = c.oid AND g.tgname = $2 AND NOT g.tgisinternal) AS has_trigger
         FROM pg_class c WHERE c.oid = $1::regclass`,
      [target, triggerName(ourSchema)],
    );
    const row = r.rows[0];
    if (!force && row?.has_trigger) {
      steps.push({
        description: `remove capture trigger from ${t.schema}.${t.name} (log capture)`,
        sql: `DROP TRIGGER IF EXISTS ${quoteIdent(triggerName(ourSchema))} ON ${target};`,
      });
    }
    if (force || row?.replident !== 'f') {
      steps.push({ description: `replica identity full on ${t.schema}.${t.name}`, sql: `ALTER TABLE ${target} REPLICA IDENTITY FULL;` });
    }
    // A partition has its own replica identity, and the old row of a change comes from the
    // partition that holds it: every partition needs FULL too (one created later gets it
    // at the next install, which auto_install runs at every start).
    const parts = await client.query<{ schema: string; name: string }>(
      `SELECT n.nspname AS schema, c.relname AS name
         FROM pg_partition_tree($1::regclass) p
         JOIN pg_class c ON c.oid = p.relid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE p.relid <> $1::regclass AND c.relkind = 'r' AND (c.relreplident <> 'f' OR $2)
        ORDER BY 1, 2`,
      [target, force],
    );
    for (const part of parts.rows) {
      steps.push({
        description: `replica identity full on ${part.schema}.${part.name} (partition of ${t.schema}.${t.name})`,
        sql: `ALTER TABLE ${qualify(part.schema, part.name)} REPLICA IDENTITY FULL;`,
      });
    }
    if (force || fresh || !(await watchedIsCurrent(client, ourSchema, t, modes))) {
      steps.push({ description: `watch ${t.schema}.${t.name} (${modes.join(', ')}, log capture)`, sql: watchedTableSql(ourSchema, t, modes) });
    }
  }
  const list = tables.map((t) => qualify(t.schema, t.name)).join(', ');
  const pub = await client.query<{ tables: string[]; ins: boolean; upd: boolean; del: boolean; trunc: boolean; via_root: boolean }>(
    `SELECT p.pubinsert AS ins, p.pubupdate AS upd, p.pubdelete AS del, p.pubtruncate AS trunc, p.pubviaroot AS via_root,
            ARRAY(SELECT quote_ident(t.schemaname) || '.' || quote_ident(t.tablename) FROM pg_publication_tables t
                   WHERE t.pubname = p.pubname ORDER BY 1) AS tables
       FROM pg_publication p WHERE p.pubname = $1`,
    [publication],
  );
  const options = `publish = ${quoteLiteral(publishOption(modes))}, publish_via_partition_root = true`;
  const current = pub.rows[0];
  if (force || !current) {
    steps.push({
      description: `publication ${publication} of the watched tables`,
      sql: `CREATE PUBLICATION ${quoteIdent(publication)} FOR TABLE ${list} WITH (${options});`,
    });
  } else {
    const wanted = tables.map((t) => `${quoteIdentLikeServer(t.schema)}.${quoteIdentLikeServer(t.name)}`).sort();
    const have = [...current.tables].sort();
    if (wanted.join(',') !== have.join(',')) {
      steps.push({ description: `publication ${publication}: the watched tables`, sql: `ALTER PUBLICATION ${quoteIdent(publication)} SET TABLE ${list};` });
    }
    const flags = { INSERT: current.ins, UPDATE: current.upd, DELETE: current.del };
    const same = (['INSERT', 'UPDATE', 'DELETE'] as const).every((m) => flags[m] === modes.includes(m)) && current.trunc && current.via_root;
    if (!same) {
      steps.push({ description: `publication ${publication}: the captured operations`, sql: `ALTER PUBLICATION ${quoteIdent(publication)} SET (${options});` });
    }
  }
  if (force || !(await slotExists(client, slot))) {
    steps.push({
      description: `replication slot ${slot} (pgoutput)`,
      sql: `SELECT pg_create_logical_replication_slot(${quoteLiteral(slot)}, 'pgoutput');`,
      afterCommit: true,
    });
  }
}

/** quote_ident as the server applies it: quotes only when needed, to compare with pg_publication_tables. */
function quoteIdentLikeServer(name: string): string {
  return /^[a-z_][a-z0-9_$]*$/.test(name) ? name : quoteIdent(name);
}

/**
 * Applies the plan in one transaction under the installation lock. Returns what was
 * done. `upToVersion` stops at that migration (tests of an upgrade install an
 * earlier version first).
 */
export async function applyInstall(client: pg.ClientBase, config: Config, upToVersion = Infinity): Promise<InstallPlan> {
  await client.query('BEGIN');
  try {
    // DDL on a watched table waits for its readers and, while waiting, holds up the
    // application's writers behind it: give up quickly rather than stall the app.
    await client.query(`SET LOCAL lock_timeout = ${quoteLiteral(`${INSTALL_LOCK_TIMEOUT_MS}ms`)}`);
    await client.query(lockKeySql(config.listener.schema));
    // Planned after taking the lock: a concurrent installer has finished by now.
    const plan = await planInstall(client, config, false, upToVersion);
    for (const step of plan.steps) if (!step.afterCommit) await client.query(step.sql);
    await client.query('COMMIT');
    await runAfterCommit(client, plan.steps, config);
    return plan;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw translateInstallError(err, config);
  }
}

/** The steps that cannot run in a transaction (replication slots), one by one. */
async function runAfterCommit(client: pg.ClientBase, steps: readonly InstallStep[], config: Config): Promise<void> {
  for (const step of steps) {
    if (!step.afterCommit) continue;
    try {
      await client.query(step.sql);
    } catch (err) {
      const code = (err as { code?: string }).code;
      // 42710: another instance created the slot meanwhile; 42704: it dropped it meanwhile.
      if (code === '42710' || code === '42704') continue;
      if (code === '55006') {
        throw new AppError('LOG_CAPTURE_SLOT_ACTIVE', `cannot drop the replication slot: ${(err as Error).message}`, {
          cause: err,
          hint: 'a daemon still reads it: stop every daemon of this installation, then run "uninstall" again',
        });
      }
      if (code === '55000' && /wal_level/.test((err as Error).message)) {
        throw new AppError('LOG_CAPTURE_WAL_LEVEL', `cannot create the replication slot: ${(err as Error).message}`, {
          cause: err,
          hint: 'listener.capture: log needs wal_level = logical: ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL (or use listener.capture: trigger); "doctor" checks every setting',
        });
      }
      throw translateInstallError(err, config);
    }
  }
}

/** SQL that removes the triggers and, with `dropSchema`, everything else we installed. */
export async function planUninstall(client: pg.ClientBase, config: Config, dropSchema: boolean): Promise<InstallStep[]> {
  const ourSchema = config.listener.schema;
  const steps: InstallStep[] = [];
  const r = await client.query<{ schema: string; name: string }>(
    `SELECT n.nspname AS schema, c.relname AS name
       FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE t.tgname = $1 AND NOT t.tgisinternal ORDER BY 1, 2`,
    [triggerName(ourSchema)],
  );
  for (const t of r.rows) {
    steps.push({
      description: `remove capture trigger from ${t.schema}.${t.name}`,
      sql: `DROP TRIGGER IF EXISTS ${quoteIdent(triggerName(ourSchema))} ON ${qualify(t.schema, t.name)};`,
    });
  }
  const slot = captureSlotName(config);
  if (await slotExists(client, slot)) {
    steps.push({
      description: `drop replication slot ${slot} (log capture; changes after this point are not captured)`,
      sql: `SELECT pg_drop_replication_slot(${quoteLiteral(slot)});`,
      afterCommit: true,
    });
  }
  const publication = capturePublicationName(config);
  const pub = await client.query(`SELECT 1 FROM pg_publication WHERE pubname = $1`, [publication]);
  if (pub.rowCount) {
    steps.push({ description: `drop publication ${publication} (log capture)`, sql: `DROP PUBLICATION IF EXISTS ${quoteIdent(publication)};` });
  }
  if (dropSchema) {
    steps.push({ description: `drop schema ${ourSchema} (journal, dead letters)`, sql: `DROP SCHEMA IF EXISTS ${quoteIdent(ourSchema)} CASCADE;` });
  }
  return steps;
}

export async function applyUninstall(client: pg.ClientBase, config: Config, dropSchema: boolean): Promise<InstallStep[]> {
  await client.query('BEGIN');
  try {
    await client.query(lockKeySql(config.listener.schema));
    const steps = await planUninstall(client, config, dropSchema);
    for (const step of steps) if (!step.afterCommit) await client.query(step.sql);
    await client.query('COMMIT');
    await runAfterCommit(client, steps, config);
    return steps;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw translateInstallError(err, config);
  }
}

function translateInstallError(err: unknown, config: Config): unknown {
  if (err instanceof AppError) return err;
  const code = (err as { code?: string }).code;
  if (code === '55P03') {
    return new AppError('INSTALL_LOCK_TIMEOUT', `cannot install: a watched table is busy (${(err as Error).message})`, {
      cause: err,
      hint: 'a long transaction holds a lock on a watched table; installing is retried, or run "install" at a quieter moment',
    });
  }
  if (code === '42501') {
    return new AppError('INSTALL_PRIVILEGES', `cannot install: ${(err as Error).message}`, {
      cause: err,
      hint: `the database user needs CREATE on the database (for schema ${config.listener.schema}) and ownership of the watched tables (for their triggers); run "install" once as an owner, then run with listener.auto_install: false`,
    });
  }
  return err;
}
