/** Which server we talk to, and whether it can run the journal. */
import type mysql from 'mysql2/promise';
import { AppError } from '../../util/errors.js';

export interface ServerInfo {
  readonly flavor: 'mariadb' | 'mysql';
  /** VERSION() as the server reports it, e.g. `10.11.19-MariaDB-0+deb12u1` or `8.0.36`. */
  readonly version: string;
  readonly major: number;
  readonly minor: number;
  readonly patch: number;
}

/**
 * The oldest servers we support. The claim needs `FOR UPDATE SKIP LOCKED` (MariaDB
 * 10.6, MySQL 8.0.1) and every batched statement reads its arguments with JSON_TABLE
 * (MariaDB 10.6, MySQL 8.0.4).
 */
export const MIN_VERSION = { mariadb: [10, 6, 0], mysql: [8, 0, 4] } as const;

export function parseServerVersion(version: string): ServerInfo {
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(version.trim());
  if (!m) {
    throw new AppError('SERVER_VERSION_UNKNOWN', `cannot read the server version ${JSON.stringify(version)}`, {
      hint: 'database.type "mysql" supports MySQL 8.0.4+ and MariaDB 10.6+',
    });
  }
  return {
    flavor: /mariadb/i.test(version) ? 'mariadb' : 'mysql',
    version,
    major: Number(m[1]),
    minor: Number(m[2]),
    patch: Number(m[3]),
  };
}

/** Throws SERVER_TOO_OLD, with what to do, unless the server has what the journal needs. */
export function checkServerVersion(info: ServerInfo): void {
  const min = MIN_VERSION[info.flavor];
  const have = [info.major, info.minor, info.patch];
  let older = false;
  for (let i = 0; i < 3; i++) {
    if (have[i]! !== min[i]!) {
      older = have[i]! < min[i]!;
      break;
    }
  }
  if (!older) return;
  const name = info.flavor === 'mariadb' ? 'MariaDB' : 'MySQL';
  throw new AppError(
    'SERVER_TOO_OLD',
    `${name} ${info.version} is too old: app-db-listener needs ${name} ${min.join('.')} or later, for SELECT … FOR UPDATE SKIP LOCKED and JSON_TABLE`,
    {
      hint:
        info.flavor === 'mariadb'
          ? 'upgrade to MariaDB 10.6 or later (10.11 is a long-term release)'
          : 'upgrade to MySQL 8.0 (8.0.4 or later; 8.0.11 was the first GA release)',
    },
  );
}

export async function readServerInfo(conn: mysql.Connection): Promise<ServerInfo> {
  const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT VERSION() AS version');
  return parseServerVersion(String(rows[0]?.version ?? ''));
}
