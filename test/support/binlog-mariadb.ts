/**
 * A private MariaDB set up for log capture (a binary log in ROW format with full row
 * images and column names), shared by the binlog capture tests and the conformance
 * suite's "mysql × log" source: the shared server runs without a binary log and must
 * not be reconfigured.
 *
 *   const server = await startBinlogMariaDb();
 *   const db = await createMySqlTestDatabase('label', address(server));   // a throw-away database on it
 *   await server.close();
 */
import { startPrivateMariaDb, type PrivateMariaDb } from './private-servers.js';
import type { MySqlServerAddress } from './mysql.js';

export const BINLOG_SETTINGS = {
  'log-bin': 'binlog',
  'server-id': '1',
  'binlog-format': 'ROW',
  'binlog-row-image': 'FULL',
  'binlog-row-metadata': 'FULL',
  // Small and fast: a test server writes little.
  'max-binlog-size': '64M',
  'sync-binlog': '0',
} as const;

export async function startBinlogMariaDb(extra: Readonly<Record<string, string>> = {}): Promise<PrivateMariaDb> {
  return startPrivateMariaDb({ serverConfig: { ...BINLOG_SETTINGS, ...extra } });
}

export function address(server: PrivateMariaDb): MySqlServerAddress {
  return { host: server.host, port: server.port, user: server.user, password: server.password };
}
