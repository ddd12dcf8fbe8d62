/**
 * MySQL and MariaDB as a capture source: a small pool, the installer (re-run when a
 * watched table's columns change), the journal, and polling (no LISTEN/NOTIFY).
 */
import type mysql from 'mysql2/promise';
import type { Logger } from 'pino';
import type { Config } from '../../config/types.js';
import type { DaemonEventBus } from '../../observability/events.js';
import { describeError } from '../../util/errors.js';
import { BinlogReader } from './binlog/reader.js';
import { bytesAfter } from './binlog/settings.js';
import { installAtStart, type CaptureReader, type CaptureSource, type JournalOptions, type ResolvedTable, type SourceJournal, type SourceWaiter } from '../source.js';
import { createMySqlPool, mysqlConnectionError } from './connection.js';

export { mysqlConnectionError };
import { applyInstall, CAPTURE_STREAM, captureLeaseName, captureServerId, planInstall, triggerColumnsCurrent } from './install.js';
import { MySqlJournal, readEventIdPrefix } from './journal.js';
import { makeQueries } from './queries.js';
import { checkServerVersion, readServerInfo } from './server.js';
import { objectNames } from './triggers.js';
import { PollingWaiter } from './waiter.js';

/**
 * How often the watched tables' columns are compared with what the triggers were
 * generated from. Until the next check, an added column is missing from events;
 * a dropped or renamed one makes the application's writes fail (the trigger still
 * names it), so run `install` right after such a migration (see docs/mysql.md).
 */
const DRIFT_CHECK_MS = 10_000;

export class MySqlSource implements CaptureSource {
  private readonly pool: mysql.Pool;
  private driftTimer: NodeJS.Timeout | undefined;

  constructor(private readonly config: Config) {
    // The router's connection, each destination's claim connection, and two for outcomes.
    this.pool = createMySqlPool(config.database, { connectionLimit: 3 + config.destinations.length, skipReplication: config.listener.capture === 'log' });
  }

  async prepare(install: boolean, bus: DaemonEventBus, log: Logger): Promise<ResolvedTable[]> {
    const conn = await this.pool.getConnection().catch((err: unknown) => {
      throw mysqlConnectionError(err, this.config);
    });
    try {
      checkServerVersion(await readServerInfo(conn));
      const tables = await installAtStart(
        install,
        { plan: () => planInstall(conn, this.config), apply: () => applyInstall(conn, this.config) },
        bus,
        log,
      );
      // The triggers name every column: regenerate them when the columns change. The
      // binlog names a row's columns itself (log capture has no triggers).
      if (install && this.config.listener.capture !== 'log') this.watchDrift(bus, log);
      return tables;
    } finally {
      conn.release();
    }
  }

  async openJournal(opts: JournalOptions): Promise<SourceJournal> {
    const prefix = await readEventIdPrefix(this.pool, this.config.listener.schema);
    return new MySqlJournal(this.pool, makeQueries(this.config.listener.schema), {
      ...opts,
      eventIdPrefix: prefix,
      lockScope: `${this.config.database.database}:${this.config.listener.schema}`,
      pollIntervalMs: this.config.listener.poll_interval * 1000,
    });
  }

  waiter(): SourceWaiter {
    return new PollingWaiter();
  }

  reader(tables: readonly ResolvedTable[], bus: DaemonEventBus, log: Logger): CaptureReader | undefined {
    if (this.config.listener.capture !== 'log') return undefined;
    const q = makeQueries(this.config.listener.schema);
    const reader = new BinlogReader(
      this.config,
      this.pool,
      q,
      {
        stream: CAPTURE_STREAM,
        leaseName: captureLeaseName(this.config),
        serverId: captureServerId(this.config),
        positionsTable: objectNames(this.config.listener.schema).capturePositions,
        tables,
      },
      bus,
      log,
    );
    const pool = this.pool;
    return {
      start: () => reader.start(),
      stop: () => reader.stop(),
      async lag() {
        const progress = reader.progress();
        let from = progress.position;
        if (!from) {
          const [rows] = await pool.query<mysql.RowDataPacket[]>(q.capturePosition, [CAPTURE_STREAM]);
          if (!rows[0]) return undefined;
          from = { file: String(rows[0].binlog_file), position: Number(rows[0].binlog_pos) };
        }
        const [logs] = await pool.query<mysql.RowDataPacket[]>(q.binaryLogs);
        const bytes = bytesAfter(from, logs.map((l) => ({ name: String(l.Log_name), size: Number(l.File_size) })));
        // Only the reader knows how old its position is; another instance reports bytes only.
        return { bytes, seconds: progress.lagSeconds };
      },
    };
  }

  async close(): Promise<void> {
    if (this.driftTimer) clearInterval(this.driftTimer);
    await this.pool.end().catch(() => undefined);
  }

  /** Regenerates the triggers when a watched table's columns change (no restart needed). */
  private watchDrift(bus: DaemonEventBus, log: Logger): void {
    let checking = false;
    this.driftTimer = setInterval(() => {
      if (checking) return;
      checking = true;
      void (async () => {
        const conn = await this.pool.getConnection();
        try {
          if (await triggerColumnsCurrent(conn, this.config)) return;
          const plan = await applyInstall(conn, this.config);
          for (const s of plan.steps) bus.emit('install:step', { description: `${s.description} (a watched table changed)` });
        } finally {
          conn.release();
        }
      })()
        .catch((err: unknown) => log.warn({ error: describeError(err) }, 'Could not check the watched tables for column changes'))
        .finally(() => {
          checking = false;
        });
    }, DRIFT_CHECK_MS);
    this.driftTimer.unref();
  }
}

