/**
 * The server settings binlog capture needs, read and explained: shared by the reader
 * (which refuses to start without them), `install` and `doctor`.
 */
import type mysql from 'mysql2/promise';

export interface BinlogSettings {
  readonly logBin: boolean;
  readonly format: string;
  readonly rowImage: string;
  /** binlog_row_metadata; undefined on a server without it (MySQL before 8.0.1, MariaDB before 10.5). */
  readonly rowMetadata: string | undefined;
  readonly serverId: number;
  /** binlog_expire_logs_seconds (0: never), or expire_logs_days in seconds. */
  readonly expireSeconds: number | undefined;
  /** MySQL 8.0.20+'s binlog_transaction_compression. */
  readonly compressed?: boolean;
}

/** A place in the binary log: the file and the offset of the next event. */
export interface BinlogPosition {
  readonly file: string;
  readonly position: number;
}

async function variable(conn: mysql.Connection, name: string): Promise<string | undefined> {
  try {
    const [rows] = await conn.query<mysql.RowDataPacket[]>(`SELECT @@GLOBAL.${name} AS v`);
    const v = rows[0]?.v;
    return v === null || v === undefined ? undefined : String(v);
  } catch {
    return undefined; // not a variable of this server
  }
}

export async function readBinlogSettings(conn: mysql.Connection): Promise<BinlogSettings> {
  const [logBin, format, rowImage, rowMetadata, serverId, expireSeconds, expireDays, compression] = await Promise.all(
    [
      'log_bin',
      'binlog_format',
      'binlog_row_image',
      'binlog_row_metadata',
      'server_id',
      'binlog_expire_logs_seconds',
      'expire_logs_days',
      'binlog_transaction_compression',
    ].map((n) => variable(conn, n)),
  );
  const seconds = expireSeconds !== undefined && Number(expireSeconds) > 0 ? Number(expireSeconds) : expireDays !== undefined ? Number(expireDays) * 86_400 : undefined;
  return {
    logBin: logBin === '1' || logBin?.toUpperCase() === 'ON',
    format: (format ?? '').toUpperCase(),
    rowImage: (rowImage ?? '').toUpperCase(),
    rowMetadata: rowMetadata?.toUpperCase(),
    serverId: Number(serverId ?? 0),
    expireSeconds: seconds,
    compressed: compression === '1' || compression?.toUpperCase() === 'ON',
  };
}

export interface SettingProblem {
  readonly message: string;
  /** The exact fix. */
  readonly hint: string;
}

/** Every setting binlog capture needs that the server lacks, each with its fix. */
export function binlogSettingProblems(s: BinlogSettings): SettingProblem[] {
  const out: SettingProblem[] = [];
  if (!s.logBin) {
    out.push({
      message: 'the binary log is off (log_bin)',
      hint: 'start the server with log_bin (e.g. log_bin = mysql-bin and server_id = 1 in the [mysqld] section of its configuration) and restart it',
    });
  }
  if (s.serverId === 0) {
    out.push({ message: 'server_id is 0: the server accepts no binlog reader', hint: 'SET GLOBAL server_id = 1 (and set server_id in the server configuration)' });
  }
  if (s.format !== 'ROW') {
    out.push({
      message: `binlog_format is ${s.format || 'unknown'}, not ROW: the binary log holds statements, not the rows they changed`,
      hint: 'SET GLOBAL binlog_format = ROW, and set binlog_format = ROW in the server configuration (sessions opened before keep their format until they reconnect)',
    });
  }
  if (s.rowImage !== 'FULL') {
    out.push({
      message: `binlog_row_image is ${s.rowImage || 'unknown'}, not FULL: updates and deletes would come without every column`,
      hint: 'SET GLOBAL binlog_row_image = FULL, and set it in the server configuration',
    });
  }
  if (s.rowMetadata === undefined) {
    out.push({
      message: 'the server has no binlog_row_metadata: its binary log does not name the columns',
      hint: 'log capture needs MySQL 8.0.1+ or MariaDB 10.5+ (use listener.capture: trigger on this server)',
    });
  } else if (s.rowMetadata !== 'FULL') {
    out.push({
      message: `binlog_row_metadata is ${s.rowMetadata}, not FULL: the binary log does not name the columns a row had when it was written`,
      hint: 'SET GLOBAL binlog_row_metadata = FULL, and set it in the server configuration',
    });
  }
  if (s.compressed) {
    out.push({
      message: 'binlog_transaction_compression is ON: the binary log holds compressed transactions the reader cannot decode',
      hint: 'SET GLOBAL binlog_transaction_compression = OFF, and set it in the server configuration',
    });
  }
  return out;
}

/** All the problems as one, or undefined when the server is ready for binlog capture. */
export function describeBinlogSettings(s: BinlogSettings): SettingProblem | undefined {
  const problems = binlogSettingProblems(s);
  if (problems.length === 0) return undefined;
  return {
    message: `listener.capture: log cannot read this server's binary log: ${problems.map((p) => p.message).join('; ')}`,
    hint: `${problems.map((p) => p.hint).join('; ')}; "doctor" checks every setting`,
  };
}

/** The end of the binary log now: where a new stream starts. Needs REPLICATION CLIENT (MariaDB: BINLOG MONITOR). */
export async function binlogStatus(conn: mysql.Connection): Promise<BinlogPosition> {
  let rows: mysql.RowDataPacket[] | undefined;
  for (const sql of ['SHOW MASTER STATUS', 'SHOW BINARY LOG STATUS']) {
    try {
      [rows] = await conn.query<mysql.RowDataPacket[]>(sql);
      break;
    } catch (err) {
      // MySQL 8.4 has only SHOW BINARY LOG STATUS; anything else is a real error.
      if ((err as { errno?: number }).errno !== 1064) throw err;
    }
  }
  const row = rows?.[0];
  if (!row) throw new Error('the server reports no binary log position (is log_bin on?)');
  return { file: String(row.File), position: Number(row.Position) };
}

/** Binlog bytes written after `from`: the files after it whole, and the rest of its own. */
export function bytesAfter(from: BinlogPosition, logs: ReadonlyArray<{ readonly name: string; readonly size: number }>): number | undefined {
  const i = logs.findIndex((l) => l.name === from.file);
  if (i < 0) return undefined;
  let total = Math.max(0, logs[i]!.size - from.position);
  for (const l of logs.slice(i + 1)) total += l.size;
  return total;
}
