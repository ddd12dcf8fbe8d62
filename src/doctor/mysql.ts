/** doctor's database checks for MySQL and MariaDB: server, privileges, migrations, triggers. */
import type mysql from 'mysql2/promise';
import { createMySqlPool } from '../capture/mysql/connection.js';
import { captureStatus } from '../capture/mysql/admin.js';
import { binlogSettingProblems, readBinlogSettings } from '../capture/mysql/binlog/settings.js';
import { captureLeaseName, planInstall } from '../capture/mysql/install.js';
import { makeQueries } from '../capture/mysql/queries.js';
import { checkServerVersion, readServerInfo } from '../capture/mysql/server.js';
import { mysqlConnectionError } from '../capture/mysql/source.js';
import { qualify, quoteIdent, quoteLiteral } from '../capture/mysql/sql.js';
import { ALL_OPERATIONS, objectNames, triggerName } from '../capture/mysql/triggers.js';
import type { Config } from '../config/types.js';
import { loadMigrations } from '../schema/migrations.js';
import { check, errorCheck, guard, type CheckStatus, type DoctorCheck } from './report.js';
import { findingsCheck, migrationsCheck, triggerSteps, type Finding } from './shared.js';

type Conn = mysql.Connection;

async function rows<T>(conn: Conn, sql: string, values: string[] = []): Promise<T[]> {
  const [r] = await conn.query<mysql.RowDataPacket[]>(sql, values);
  return r as unknown as T[];
}

export async function checkMySql(config: Config, installFix: string): Promise<DoctorCheck[]> {
  const db = config.database;
  const pool = createMySqlPool(db, { connectionLimit: 1, applicationName: 'app-db-listener:doctor' });
  try {
    let conn: mysql.PoolConnection;
    try {
      conn = await pool.getConnection();
    } catch (err) {
      const e = mysqlConnectionError(err, config);
      return [check('database', 'problem', `${e.message} (privileges, migrations and triggers not checked)`, e.hint)];
    }
    try {
      const server = await readServerInfo(conn);
      const name = server.flavor === 'mariadb' ? 'MariaDB' : 'MySQL';
      try {
        checkServerVersion(server);
      } catch (err) {
        return [errorCheck('database', err)];
      }
      return [
        check('database', 'ok', `${name} ${server.version} at ${db.host}:${db.port}, database "${db.database}", user "${db.user}"`),
        await guard('privileges', () => privilegesCheck(conn, config)),
        await guard('migrations', () => mysqlMigrationsCheck(conn, config, installFix)),
        config.listener.capture === 'log'
          ? await guard('capture', () => logCaptureCheck(conn, config, installFix))
          : await guard('triggers', () => triggersCheck(conn, config, installFix)),
      ];
    } finally {
      conn.release();
    }
  } finally {
    await pool.end().catch(() => undefined);
  }
}

/** A privilege row of information_schema: global (db null), database (tbl null) or table. */
export interface Grant {
  readonly db: string | null;
  readonly tbl: string | null;
  readonly privilege: string;
}

/** A database name of a grant as a pattern: `%` and `_` are wildcards, `\` escapes. */
function dbPattern(db: string): RegExp {
  const body = db.replace(/\\(.)|([%_])|([^\\%_]+)/g, (_, escaped: string | undefined, wild: string | undefined, plain: string | undefined) =>
    escaped !== undefined ? escapeRegExp(escaped) : wild === '%' ? '.*' : wild === '_' ? '.' : escapeRegExp(plain ?? ''),
  );
  return new RegExp(`^${body}$`, 'i');
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** True when `privilege` is granted globally, on `db`, or on `db`.`table`. */
export function hasPrivilege(grants: readonly Grant[], privilege: string, db: string, table?: string): boolean {
  return grants.some(
    (g) =>
      g.privilege.toUpperCase() === privilege &&
      (g.db === null ||
        (g.tbl === null && dbPattern(g.db).test(db)) ||
        (table !== undefined && g.tbl !== null && g.db === db && g.tbl.toLowerCase() === table.toLowerCase())),
  );
}

/** `user@host` (CURRENT_USER()) as information_schema writes a grantee: `'user'@'host'`. */
export function granteeOf(account: string): { user: string; host: string } {
  const at = account.lastIndexOf('@');
  return at < 0 ? { user: account, host: '%' } : { user: account.slice(0, at), host: account.slice(at + 1) };
}

/**
 * Installing needs CREATE and LOCK TABLES on the database and TRIGGER on each watched
 * table; running needs SELECT, INSERT, UPDATE and DELETE on our tables. Without
 * auto_install, what only installing needs is a warning. Privileges that come
 * through a role are not resolved here: with a role in effect, a missing privilege
 * is a warning.
 */
async function privilegesCheck(conn: Conn, config: Config): Promise<DoctorCheck> {
  const database = config.database.database;
  const q = makeQueries(config.listener.schema);
  const names = objectNames(config.listener.schema);
  const account = String((await rows<{ account: string }>(conn, q.currentAccount))[0]?.account ?? '');
  const { user, host } = granteeOf(account);
  const grantee = `'${user}'@'${host}'`;
  const grants = await rows<Grant>(conn, q.grants, [grantee, grantee, grantee]);
  const roles = (await rows<{ role: string | null }>(conn, q.enabledRoles).catch(() => [])).flatMap((r) => (r.role ? [r.role] : []));
  const to = `TO ${quoteLiteral(user)}@${quoteLiteral(host)};`;
  const unconfirmed = (status: Exclude<CheckStatus, 'ok'>) => (roles.length > 0 ? 'warning' : status);
  const installLevel = unconfirmed(config.listener.auto_install ? 'problem' : 'warning');
  const found: Finding[] = [];

  const dbMissing = ['CREATE', 'LOCK TABLES'].filter((p) => !hasPrivilege(grants, p, database));
  if (dbMissing.length > 0) {
    found.push({ status: installLevel, what: `no ${dbMissing.join(', ')} on database ${database}`, fix: `GRANT ${dbMissing.join(', ')} ON ${quoteIdent(database)}.* ${to}` });
  }
  if (config.listener.capture === 'log') {
    // Reading the binary log as a replica does, and its position (MariaDB 10.5+ calls
    // REPLICATION CLIENT "BINLOG MONITOR"; the old name is granted as the new one).
    const replication = ['REPLICATION SLAVE', 'REPLICATION CLIENT'].filter(
      (p) => !hasPrivilege(grants, p, database) && !(p === 'REPLICATION CLIENT' && hasPrivilege(grants, 'BINLOG MONITOR', database)),
    );
    if (replication.length > 0) {
      found.push({
        status: unconfirmed('problem'),
        what: `no ${replication.join(', ')} (log capture reads the binary log as a replica does)`,
        fix: `GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* ${to}`,
      });
    }
  }
  for (const t of config.listener.capture === 'log' ? [] : config.database.tables) {
    const tdb = t.schema ?? database;
    if (!hasPrivilege(grants, 'TRIGGER', tdb, t.name)) {
      found.push({ status: installLevel, what: `no TRIGGER on ${tdb}.${t.name}`, fix: `GRANT TRIGGER ON ${qualify(tdb, t.name)} ${to}` });
    }
  }
  // watched_tables: the daemon writes each table's last delivery time there.
  const journal = [names.events, names.deliveries, names.deadLetters, names.deliveredEvents, names.watchedTables, names.destinationTables, names.attempts, names.backfills, names.capturePositions];
  const ours = [...journal, names.meta, names.migrations];
  const denied = ours.filter((t) =>
    (journal.includes(t) ? ['SELECT', 'INSERT', 'UPDATE', 'DELETE'] : ['SELECT']).some((p) => !hasPrivilege(grants, p, database, t)),
  );
  if (denied.length > 0) {
    found.push({
      status: unconfirmed('problem'),
      what: `cannot use ${denied.join(', ')}`,
      fix: `GRANT SELECT, INSERT, UPDATE, DELETE ON ${quoteIdent(database)}.* ${to}`,
    });
  }
  const subject = `account ${account}${roles.length > 0 ? ` (with role ${roles.join(', ')}, not checked)` : ''}`;
  return findingsCheck('privileges', found, `account ${account} has what installing and running need`, subject);
}

async function mysqlMigrationsCheck(conn: Conn, config: Config, installFix: string): Promise<DoctorCheck> {
  const q = makeQueries(config.listener.schema);
  const names = objectNames(config.listener.schema);
  const exists = Number((await rows<{ n: number }>(conn, q.tableExists, [config.database.database, names.migrations]))[0]?.n ?? 0) > 0;
  const installed = exists ? Number((await rows<{ version: number }>(conn, q.schemaVersion))[0]?.version ?? 0) : null;
  return migrationsCheck(installed, loadMigrations('mysql'), `tables ${names.prefix}_*`, installFix);
}

/** Every watched table has our triggers, for the configured operations, generated from its current columns. */
async function triggersCheck(conn: Conn, config: Config, installFix: string): Promise<DoctorCheck> {
  const q = makeQueries(config.listener.schema);
  const prefix = config.listener.schema;
  let plan;
  try {
    plan = await planInstall(conn, config);
  } catch (err) {
    return errorCheck('triggers', err);
  }
  const found: Finding[] = [];
  for (const t of plan.tables) {
    const shown = `${t.schema}.${t.name}`;
    const all = ALL_OPERATIONS.map((op) => triggerName(prefix, op, t.name));
    const present = new Set((await rows<{ name: string }>(conn, q.captureTriggers, [t.schema, t.name, ...all])).map((r) => String(r.name)));
    const missing = ALL_OPERATIONS.filter((op) => config.listener.modes.includes(op) && !present.has(triggerName(prefix, op, t.name)));
    if (missing.length > 0) {
      found.push({ status: 'problem', what: `capture triggers missing on ${shown} (${missing.join(', ')})`, fix: installFix });
    } else if (triggerSteps(plan, t).length > 0) {
      found.push({
        status: 'problem',
        what: `capture triggers on ${shown} are out of date: its columns (or the configured operations) changed since they were installed`,
        fix: installFix,
      });
    }
  }
  for (const w of plan.warnings) found.push({ status: 'warning', what: w });
  const problem = found.some((f) => f.status === 'problem');
  return findingsCheck(
    'triggers',
    found,
    `capture triggers on ${plan.tables.length === 1 ? 'table' : `${plan.tables.length} tables`} ${plan.tables.map((t) => `${t.schema}.${t.name}`).join(', ')}, current`,
    undefined,
    problem ? triggerSteps(plan).map((s) => `-- ${s.description}\n${s.sql.trim()}`).join('\n\n') : undefined,
  );
}

/**
 * Log capture (listener.capture: log): the server settings the binlog reader needs
 * (each with its fix), what install sets up (no triggers, the stored position), and
 * whether the server still has the binlog file of that position, with the lag.
 */
async function logCaptureCheck(conn: Conn, config: Config, installFix: string): Promise<DoctorCheck> {
  const settings = await readBinlogSettings(conn);
  const found: Finding[] = binlogSettingProblems(settings).map((p) => ({ status: 'problem', what: p.message, fix: p.hint }));
  if (found.length > 0) return findingsCheck('capture', found, '');
  let plan;
  try {
    plan = await planInstall(conn, config);
  } catch (err) {
    return errorCheck('capture', err);
  }
  const missing = plan.steps.filter((st) => !st.description.startsWith('migration') && !st.description.startsWith('create table'));
  for (const st of missing) found.push({ status: 'problem', what: `missing: ${st.description}`, fix: installFix });
  const status = missing.some((st) => st.description.startsWith('start log capture'))
    ? undefined
    : await captureStatus(conn, config.listener.schema, captureLeaseName(config)).catch(() => undefined);
  if (status?.walStatus === 'lost') {
    found.push({
      status: 'problem',
      what: `the server no longer has the binlog file of the stored position ${status.slot}: the changes since were lost`,
      fix: `run "uninstall" then "install" to start again from now, and backfill the watched tables`,
    });
  }
  if (status && status.lagBytes === null) {
    found.push({ status: 'warning', what: 'cannot list the binary logs (SHOW BINARY LOGS) to measure the lag', fix: 'GRANT REPLICATION CLIENT ON *.* TO <user>;' });
  }
  for (const w of plan.warnings) found.push({ status: 'warning', what: w });
  const expiry =
    settings.expireSeconds === undefined || settings.expireSeconds === 0
      ? 'binary logs kept until removed by hand'
      : `binary logs removed after ${Math.round((settings.expireSeconds / 86_400) * 10) / 10} days: a daemon stopped longer loses changes`;
  const lag = status?.lagBytes === null || status?.lagBytes === undefined ? '' : `, ${Math.round(status.lagBytes / 1024)} kB behind`;
  return findingsCheck(
    'capture',
    found,
    `log capture: binlog_format ROW, full row images with column names, from ${status?.slot ?? '(not installed)'}${status?.active ? ' (read now)' : ''}${lag}; ${expiry}`,
    undefined,
    missing.length > 0 ? missing.map((st) => `-- ${st.description}\n${st.sql.trim()}`).join('\n\n') : undefined,
  );
}
