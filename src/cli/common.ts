/** What every command does first: load the config, or say clearly why not. */
import type pg from 'pg';
import { ConfigError, loadConfig } from '../config/index.js';
import type { Config } from '../config/types.js';
import { EXIT, printError } from './output.js';

export class ExitCode extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

/** Loads and validates the config; prints the problem and throws ExitCode(2) if it is wrong. */
export function loadConfigOrExit(path: string): { config: Config; warnings: string[] } {
  try {
    return loadConfig(path);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`error: ${err.message}\n`);
      throw new ExitCode(EXIT.config);
    }
    printError(err);
    throw new ExitCode(EXIT.runtime);
  }
}

/** One connection for a short command; closed by `fn`'s end. */
export async function withDatabase<T>(config: Config, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  if (config.database.type !== 'postgres') {
    process.stderr.write(`error: this command works with PostgreSQL only in this version (database.type is "${config.database.type}"); \`run\` installs and captures with MySQL\n`);
    throw new ExitCode(EXIT.runtime);
  }
  // Loaded here: every command loads this module, and a MySQL daemon needs no pg.
  const [{ default: pgModule }, { connectionError, pgClientConfig }] = await Promise.all([import('pg'), import('../capture/postgres/connection.js')]);
  const client = new pgModule.Client(pgClientConfig(config.database, 'app-db-listener:cli'));
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    printError(connectionError(err, config));
    throw new ExitCode(EXIT.runtime);
  }
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}
