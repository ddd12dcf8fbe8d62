/**
 * What we install in a PostgreSQL database, as a plan that can be printed, applied
 * or removed: our schema's numbered migrations, then one capture trigger per watched
 * table. Applying takes a transaction-scoped advisory lock, so two daemons starting
 * at once install one after the other and the second finds nothing left to do.
 */
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
  const keys = table.keyColumns.map(quoteLiteral).join(', ');
  const args = [quoteLiteral(table.schema), quoteLiteral(table.name), ...table.keyColumns.map(quoteLiteral)].join(', ');
  return `DROP TRIGGER IF EXISTS ${name} ON ${target};
CREATE TRIGGER ${name} AFTER ${modes.join(' OR ')} ON ${target}
  FOR EACH ROW EXECUTE FUNCTION ${quoteIdent(ourSchema)}.capture_change(${args});
INSERT INTO ${quoteIdent(ourSchema)}.watched_tables (schema_name, table_name, operations, key_columns)
VALUES (${quoteLiteral(table.schema)}, ${quoteLiteral(table.name)}, ARRAY[${modes.map(quoteLiteral).join(', ')}]::text[], ARRAY[${keys}]::text[])
ON CONFLICT (schema_name, table_name) DO UPDATE
  SET operations = EXCLUDED.operations, key_columns = EXCLUDED.key_columns, installed_at = now();`;
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
    // A fresh installation has no watched_tables yet; otherwise only a trigger whose
    // definition changed is re-created (DROP/CREATE TRIGGER locks the table briefly).
    if (force || applied.size === 0 || !(await triggerIsCurrent(client, ourSchema, t, modes))) {
      steps.push({ description: `capture trigger on ${t.schema}.${t.name} (${modes.join(', ')})`, sql: triggerSql(ourSchema, t, modes) });
    }
  }
  return { steps, tables, warnings };
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
    for (const step of plan.steps) await client.query(step.sql);
    await client.query('COMMIT');
    return plan;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw translateInstallError(err, config);
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
    for (const step of steps) await client.query(step.sql);
    await client.query('COMMIT');
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
