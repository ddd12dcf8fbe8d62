/** doctor's database checks for PostgreSQL: server, privileges, migrations, triggers. */
import pg from 'pg';
import { connectionError, pgClientConfig } from '../capture/postgres/connection.js';
import { planInstall, resolveTables, triggerName } from '../capture/postgres/install.js';
import { makeQueries } from '../capture/postgres/queries.js';
import { MIN_PG_VERSION } from '../capture/postgres/source.js';
import { qualify, quoteIdent } from '../capture/postgres/sql.js';
import type { Config } from '../config/types.js';
import { loadMigrations } from '../schema/migrations.js';
import { check, errorCheck, guard, plural, worst, type CheckStatus, type DoctorCheck } from './report.js';
import { migrationsCheck, triggerSteps, type Finding, findingsCheck } from './shared.js';

export async function checkPostgres(config: Config, installCmd: string): Promise<DoctorCheck[]> {
  const db = config.database;
  const client = new pg.Client(pgClientConfig(db, 'app-db-listener:doctor'));
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    const e = connectionError(err, config);
    return [check('database', 'problem', `${e.message} (privileges, migrations and triggers not checked)`, e.hint)];
  }
  try {
    const q = makeQueries(config.listener.schema);
    const v = (await client.query<{ num: number; version: string }>(q.serverVersion)).rows[0]!;
    const where = `at ${db.host}:${db.port}, database "${db.database}", user "${db.user}"`;
    if (v.num < MIN_PG_VERSION) {
      return [check('database', 'problem', `PostgreSQL ${v.version} ${where} is too old: version 12 or newer is required`, 'upgrade PostgreSQL to 12 or newer')];
    }
    return [
      check('database', 'ok', `PostgreSQL ${v.version} ${where}`),
      await guard('privileges', () => privilegesCheck(client, config)),
      await guard('migrations', () => pgMigrationsCheck(client, config, installCmd)),
      await guard('triggers', () => triggersCheck(client, config, installCmd)),
    ];
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Installing needs CREATE on the database (for our schema) or, once it exists, its
 * ownership (for later migrations), and TRIGGER on each watched table; running needs
 * USAGE on our schema and the use of its tables. Without auto_install, what only
 * installing needs is a warning: an owner may have installed it.
 */
async function privilegesCheck(client: pg.Client, config: Config): Promise<DoctorCheck> {
  const schema = config.listener.schema;
  const q = makeQueries(schema);
  const p = (
    await client.query<{
      role: string;
      database: string;
      database_create: boolean;
      schema_exists: boolean;
      schema_owner: boolean;
      schema_usage: boolean;
    }>(q.schemaPrivileges, [schema])
  ).rows[0]!;
  const to = `TO ${quoteIdent(p.role)};`;
  const installLevel: CheckStatus = config.listener.auto_install ? 'problem' : 'warning';
  const found: Finding[] = [];
  if (!p.schema_exists && !p.database_create) {
    found.push({ status: installLevel, what: `cannot create schema ${schema} (no CREATE on database ${p.database})`, fix: `GRANT CREATE ON DATABASE ${quoteIdent(p.database)} ${to}` });
  }
  if (p.schema_exists && !p.schema_owner) {
    found.push({ status: installLevel, what: `does not own schema ${schema} (needed to install migrations)`, fix: `ALTER SCHEMA ${quoteIdent(schema)} OWNER ${to}` });
  }
  if (p.schema_exists && !p.schema_usage) {
    found.push({ status: 'problem', what: `no USAGE on schema ${schema}`, fix: `GRANT USAGE ON SCHEMA ${quoteIdent(schema)} ${to}` });
  }
  if (p.schema_exists) {
    const denied = (await client.query<{ table_name: string }>(q.journalTablesDenied, [schema])).rows.map((r) => r.table_name);
    if (denied.length > 0) {
      found.push({
        status: 'problem',
        what: `cannot use ${plural(denied.length, 'journal table')} (${denied.join(', ')})`,
        fix: `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${quoteIdent(schema)} ${to}`,
      });
    }
  }
  for (const t of config.database.tables) {
    // A table that does not exist is the triggers check's to report.
    const [table] = await resolveTables(client, [t]).catch(() => []);
    if (!table) continue;
    const target = qualify(table.schema, table.name);
    const ok = (await client.query<{ ok: boolean }>(q.tableTriggerPrivilege, [target])).rows[0]?.ok === true;
    if (!ok) found.push({ status: installLevel, what: `no TRIGGER privilege on ${table.schema}.${table.name}`, fix: `GRANT TRIGGER ON ${target} ${to}` });
  }
  return findingsCheck('privileges', found, `role "${p.role}" has what installing and running need`, `role "${p.role}"`);
}

async function pgMigrationsCheck(client: pg.Client, config: Config, installCmd: string): Promise<DoctorCheck> {
  const q = makeQueries(config.listener.schema);
  const exists = (await client.query<{ ok: boolean }>(q.migrationsTableExists)).rows[0]?.ok === true;
  const installed = exists ? Number((await client.query<{ version: number }>(q.schemaVersion)).rows[0]?.version ?? 0) : null;
  return migrationsCheck(installed, loadMigrations('postgres'), `schema ${config.listener.schema}`, installCmd);
}

/** Every watched table has our trigger, enabled and made for the configured operations and key. */
async function triggersCheck(client: pg.Client, config: Config, installCmd: string): Promise<DoctorCheck> {
  const q = makeQueries(config.listener.schema);
  let plan;
  try {
    plan = await planInstall(client, config);
  } catch (err) {
    return errorCheck('triggers', err);
  }
  const name = triggerName(config.listener.schema);
  const found: Finding[] = [];
  for (const t of plan.tables) {
    const shown = `${t.schema}.${t.name}`;
    const r = await client.query<{ enabled: string }>(q.captureTrigger, [qualify(t.schema, t.name), name]);
    const state = r.rows[0]?.enabled;
    if (state === undefined) {
      found.push({ status: 'problem', what: `capture trigger missing on ${shown}`, fix: installCmd });
    } else if (state === 'D') {
      found.push({ status: 'problem', what: `capture trigger disabled on ${shown}`, fix: `ALTER TABLE ${qualify(t.schema, t.name)} ENABLE TRIGGER ${quoteIdent(name)};` });
    } else if (triggerSteps(plan, t).length > 0) {
      found.push({ status: 'problem', what: `capture trigger on ${shown} is out of date (operations or primary key changed)`, fix: installCmd });
    }
  }
  for (const w of plan.warnings) found.push({ status: 'warning', what: w });
  const status = worst(found.map((f) => f.status));
  return findingsCheck(
    'triggers',
    found,
    `capture trigger on ${plural(plan.tables.length, 'table')} (${plan.tables.map((t) => `${t.schema}.${t.name}`).join(', ')}), current`,
    undefined,
    status === 'problem' ? triggerSteps(plan).map((s) => `-- ${s.description}\n${s.sql.trim()}`).join('\n\n') : undefined,
  );
}
