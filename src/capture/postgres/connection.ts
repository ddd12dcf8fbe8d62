/** Turns the database section of the config into node-postgres client settings. */
import type pg from 'pg';
import type { DatabaseConfig } from '../../config/types.js';
import type { Config } from '../../config/types.js';
import { databaseCertificateHint, readCaFile } from '../../util/certificates.js';
import { AppError, describeError } from '../../util/errors.js';

export function pgClientConfig(db: DatabaseConfig, applicationName = 'app-db-listener'): pg.ClientConfig {
  // database.url is already split into these fields by the config loader. Passing the
  // URL itself would let node-postgres read its sslmode too, and override ours.
  return {
    host: db.host,
    port: db.port,
    user: db.user,
    password: db.password,
    database: db.database,
    application_name: applicationName,
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    connectionTimeoutMillis: 10_000,
    ssl: sslOptions(db),
  };
}

function sslOptions(db: DatabaseConfig): pg.ClientConfig['ssl'] {
  switch (db.sslmode) {
    case 'disable':
    case 'allow':
    case 'prefer':
      // node-postgres cannot fall back from TLS to plain text, so allow/prefer mean plain.
      return false;
    case 'require':
      return { rejectUnauthorized: false };
    case 'verify-ca':
      // Chain verified against the CA, host name not checked (libpq semantics).
      return { rejectUnauthorized: true, ca: readCa(db.sslrootcert), checkServerIdentity: () => undefined };
    case 'verify-full':
      return { rejectUnauthorized: true, ca: readCa(db.sslrootcert) };
  }
}

function readCa(file: string | undefined): string | undefined {
  // Given, it is the only CA trusted (libpq's sslrootcert); not given, the system's CAs are.
  return file === undefined ? undefined : readCaFile(file, 'database.sslrootcert');
}

/** A connection failure as a person should read it: where, and what to check. */
export function connectionError(err: unknown, config: Config): AppError {
  const db = config.database;
  const where = db.url ? 'the database at database.url' : `PostgreSQL at ${db.host}:${db.port} (database "${db.database}", user "${db.user}")`;
  const code = (err as { code?: string }).code;
  const hint =
    code === '28P01' || code === '28000'
      ? 'check database.user and database.password'
      : code === '3D000'
        ? 'check database.database'
        : code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'ETIMEDOUT'
          ? 'check database.host and database.port, and that the server is running'
          : /does not support SSL/.test(describeError(err))
            ? `the server does not accept TLS: set database.sslmode to "disable" (it is "${db.sslmode}") or enable ssl on the server`
            : databaseCertificateHint(err, db);
  return new AppError('DATABASE_CONNECT', `cannot connect to ${where}: ${describeError(err)}`, { cause: err, hint });
}

