/** Turns the database section of the config into mysql2 pool settings. */
import { isIP } from 'node:net';
import mysql from 'mysql2/promise';
import type { DatabaseConfig } from '../../config/types.js';
import type { Config } from '../../config/types.js';
import { databaseCertificateHint, readCaFile } from '../../util/certificates.js';
import { AppError, describeError } from '../../util/errors.js';

export interface MySqlPoolSettings {
  /** Connections in the pool. Default 10. */
  readonly connectionLimit?: number;
  /** Shown in the server's process list (performance_schema.session_connect_attrs). */
  readonly applicationName?: string;
  /**
   * MariaDB, log capture: every session sets `skip_replication`, so the journal's own
   * writes are flagged in the binary log. They stay in it (a replica applies them: its
   * default is to replicate flagged events), and our binlog reader asks the server not to
   * send them (binlog/reader.ts). MySQL has no such variable: the statement fails there
   * and nothing changes.
   */
  readonly skipReplication?: boolean;
}

interface CallbackConnection {
  query(sql: string, callback: (err: unknown) => void): void;
}

/** See MySqlPoolSettings.skipReplication; a server without the variable answers an error, ignored. */
export const SKIP_REPLICATION_SQL = 'SET SESSION skip_replication = 1';

/** Statements kept prepared per connection (least recently used closed first). */
export const MAX_PREPARED_STATEMENTS = 64;

/**
 * Pool options. Values come back as text wherever a JavaScript number or Date
 * would change them: BIGINT and DECIMAL as strings (supportBigNumbers +
 * bigNumberStrings), DATETIME/TIMESTAMP as the server's text (dateStrings).
 * `timezone: 'Z'` only matters for values we send as Date objects (we send none);
 * every time we store or compare is computed in SQL with UTC_TIMESTAMP(6), so the
 * session time zone never enters the journal.
 */
export function mysqlPoolOptions(db: DatabaseConfig, settings: MySqlPoolSettings = {}): mysql.PoolOptions {
  // database.url is already split into these fields by the config loader.
  return {
    host: db.host,
    port: db.port,
    user: db.user,
    password: db.password,
    database: db.database,
    charset: 'utf8mb4',
    timezone: 'Z',
    supportBigNumbers: true,
    bigNumberStrings: true,
    dateStrings: true,
    connectTimeout: 10_000,
    enableKeepAlive: true,
    keepAliveInitialDelay: 10_000,
    connectionLimit: settings.connectionLimit ?? 10,
    // Idle connections are closed after a minute rather than kept for ever.
    maxIdle: settings.connectionLimit ?? 10,
    idleTimeout: 60_000,
    connectAttributes: { program_name: settings.applicationName ?? 'app-db-listener' },
    // Each connection's cache of prepared statements allocates its whole capacity up front:
    // mysql2's default of 16,000 is 0.5 MB per connection. The daemon prepares a few dozen
    // texts at most (one set per destination table count); beyond 64 it would only prepare again.
    maxPreparedStatements: MAX_PREPARED_STATEMENTS,
    ssl: sslOptions(db),
  };
}

/** A pool for `db`; the caller ends it. Pool errors surface on the queries that hit them. */
export function createMySqlPool(db: DatabaseConfig, settings: MySqlPoolSettings = {}): mysql.Pool {
  const pool = mysql.createPool(mysqlPoolOptions(db, settings));
  // A broken idle connection is dropped by the pool; its error must not crash the process.
  pool.on('connection', (conn) => {
    conn.on('error', () => undefined);
    // Queued before any query of the pool's users on this connection. The event hands over
    // the callback connection beneath the promise pool.
    if (settings.skipReplication) (conn as unknown as CallbackConnection).query(SKIP_REPLICATION_SQL, () => undefined);
  });
  return pool;
}

/**
 * The same modes as for PostgreSQL (libpq names):
 * - disable, allow, prefer: plain TCP (mysql2 cannot fall back from TLS to plain text);
 * - require: TLS without verifying the server's certificate;
 * - verify-ca: TLS, the chain verified against database.sslrootcert (or the system CAs), host name not checked;
 * - verify-full: as verify-ca, and the host name must match the certificate.
 */
export function sslOptions(db: DatabaseConfig): mysql.SslOptions | undefined {
  switch (db.sslmode) {
    case 'disable':
    case 'allow':
    case 'prefer':
      return undefined;
    case 'require':
      return { rejectUnauthorized: false };
    case 'verify-ca':
      return { rejectUnauthorized: true, verifyIdentity: false, ...caOption(db.sslrootcert) };
    case 'verify-full':
      // mysql2 checks the certificate of a server reached by IP address against "localhost"
      // instead of that address (it passes no host name to Node's TLS): refuse rather than
      // accept a certificate issued for another name.
      if (isIP(db.host) !== 0) {
        throw new AppError('SSL_VERIFY_FULL_IP', `database.sslmode "verify-full" with MySQL needs database.host to be a host name, got the IP address ${db.host}`, {
          hint: 'connect by the host name the server certificate is issued for, or use sslmode "verify-ca" (the CA is verified, the name is not)',
        });
      }
      return { rejectUnauthorized: true, verifyIdentity: true, ...caOption(db.sslrootcert) };
  }
}

function caOption(file: string | undefined): { ca?: string } {
  return file === undefined ? {} : { ca: readCaFile(file, 'database.sslrootcert') };
}

export function mysqlConnectionError(err: unknown, config: Config): AppError {
  const db = config.database;
  const code = (err as { code?: string }).code;
  const hint =
    code === 'ER_ACCESS_DENIED_ERROR'
      ? 'check database.user and database.password'
      : code === 'ER_BAD_DB_ERROR'
        ? 'check database.database'
        : code === 'ER_DBACCESS_DENIED_ERROR'
          ? 'check database.database, and that database.user is granted privileges on it'
          : code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'ETIMEDOUT'
          ? 'check database.host and database.port, and that the server is running'
          : databaseCertificateHint(err, db);
  return new AppError(
    'DATABASE_CONNECT',
    `cannot connect to MySQL at ${db.host}:${db.port} (database "${db.database}", user "${db.user}"): ${describeError(err)}`,
    { cause: err, hint },
  );
}
