/** doctor's database checks for PostgreSQL: server, privileges, migrations, triggers. */
import pg from 'pg';
import { connectionError, pgClientConfig } from '../capture/postgres/connection.js';
import { captureSlotName, planInstall, resolveTables, triggerName } from '../capture/postgres/install.js';
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
      config.listener.capture === 'log'
        ? await guard('capture', () => logCaptureCheck(client, config, installCmd))
        : await guard('triggers', () => triggersCheck(client, config, installCmd)),
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
  // Log capture needs no TRIGGER privilege (the capture check covers what it needs).
  for (const t of config.listener.capture === 'log' ? [] : config.database.tables) {
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

/** A slot that nobody reads and that holds more WAL than this is reported. */
const ABANDONED_SLOT_BYTES = 1024 ** 3;

/**
 * Log capture (listener.capture: log): the server settings logical replication
 * needs (each with the exact fix), the REPLICATION attribute, and what install
 * creates (publication, replica identity, slot), with the slot's lag.
 */
async function logCaptureCheck(client: pg.Client, config: Config, installCmd: string): Promise<DoctorCheck> {
  const q = makeQueries(config.listener.schema);
  const slot = captureSlotName(config);
  const s = (
    await client.query<{
      wal_level: string;
      max_slots: number;
      max_senders: number;
      keep_size: string;
      slots: number;
      senders: number;
      replication: boolean | null;
      role: string;
      slot_active: boolean | null;
      slot_lag_bytes: number | null;
    }>(q.logCaptureSettings, [slot])
  ).rows[0]!;
  const found: Finding[] = [];
  const restart = 'then restart PostgreSQL (the setting takes effect only at server start)';
  if (s.wal_level !== 'logical') {
    found.push({ status: 'problem', what: `wal_level is ${s.wal_level}; log capture needs logical`, fix: `ALTER SYSTEM SET wal_level = logical; -- ${restart}` });
  }
  const slotExists = s.slot_active !== null;
  if (!slotExists && s.slots >= s.max_slots) {
    found.push({
      status: 'problem',
      what: `every replication slot is taken (${s.slots} of max_replication_slots ${s.max_slots})`,
      fix: `ALTER SYSTEM SET max_replication_slots = ${s.slots + 1}; -- ${restart}`,
    });
  }
  if (s.senders >= s.max_senders && s.slot_active !== true) {
    found.push({
      status: 'problem',
      what: `every WAL sender is in use (${s.senders} of max_wal_senders ${s.max_senders})`,
      fix: `ALTER SYSTEM SET max_wal_senders = ${s.senders + 1}; -- ${restart}`,
    });
  }
  if (s.replication !== true) {
    found.push({ status: 'problem', what: `role "${s.role}" has no REPLICATION attribute (needed to read the slot)`, fix: `ALTER ROLE ${quoteIdent(s.role)} WITH REPLICATION;` });
  }
  let plan;
  try {
    plan = await planInstall(client, config);
  } catch (err) {
    return errorCheck('capture', err);
  }
  const missing = plan.steps.filter((st) => !st.description.startsWith('migration') && !st.description.startsWith('create schema'));
  for (const st of missing) found.push({ status: 'problem', what: `missing: ${st.description}`, fix: installCmd });
  if (slotExists && s.slot_active === false && (s.slot_lag_bytes ?? 0) > ABANDONED_SLOT_BYTES) {
    found.push({
      status: 'warning',
      what: `replication slot ${slot} is not being read and holds ${Math.round((s.slot_lag_bytes ?? 0) / 1024 ** 2)} MB of WAL (it grows until the disk is full)`,
      fix: `start the daemon, or drop the slot with "uninstall" if log capture is no longer used`,
    });
  }
  if (s.keep_size === '-1') {
    found.push({
      status: 'warning',
      what: 'max_slot_wal_keep_size is unlimited: a slot nobody reads keeps WAL until the disk fills',
      fix: `ALTER SYSTEM SET max_slot_wal_keep_size = '10GB'; SELECT pg_reload_conf(); -- a slot past it is invalidated: its changes are lost, and it must be installed again`,
    });
  }
  for (const w of plan.warnings) found.push({ status: 'warning', what: w });
  const lag = s.slot_lag_bytes === null ? '' : `, ${Math.round(s.slot_lag_bytes / 1024)} kB behind`;
  return findingsCheck(
    'capture',
    found,
    `log capture: wal_level logical, slot ${slot}${s.slot_active ? ' (read now)' : ''}${lag}, ${plural(plan.tables.length, 'table')} published with REPLICA IDENTITY FULL`,
    undefined,
    missing.length > 0 ? missing.map((st) => `-- ${st.description}\n${st.sql.trim()}`).join('\n\n') : undefined,
  );
}
