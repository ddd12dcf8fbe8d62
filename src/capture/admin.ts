/**
 * The operator's view of the journal, whatever the database: `openAdmin(config)`
 * connects and returns the same operations for PostgreSQL and MySQL/MariaDB. The
 * CLI's `status` and `dead-letters` call these; so can a program embedding the library.
 * Each database's driver and operations are loaded when it is opened: a daemon serving
 * the console loads one driver, not both.
 */
import type { Config } from '../config/types.js';
import { AppError } from '../util/errors.js';
import type { AttemptEntry, AttemptFilter, CaptureStatus, DeadLetter, DeadLetterFilter, EventJourney, TableStatus } from './postgres/admin.js';

export {
  parseEventRef,
  type AttemptEntry,
  type AttemptFilter,
  type CaptureStatus,
  type DeadLetter,
  type DeadLetterFilter,
  type EventJourney,
  type EventState,
  type TableStatus,
} from './postgres/admin.js';

/** The operator commands of one database, over one connection; `close` ends it. */
export interface AdminOps {
  status(): Promise<TableStatus[]>;
  /** Log capture (listener.capture: log): its replication slot; undefined with trigger capture or no slot. */
  capture?(): Promise<CaptureStatus | undefined>;
  listDeadLetters(filter: DeadLetterFilter, limit?: number): Promise<DeadLetter[]>;
  /** Puts dead letters back in the journal, same event ids; returns their journal ids. */
  replayDeadLetters(filter: DeadLetterFilter): Promise<string[]>;
  /** Deletes dead letters for good; returns their journal ids. */
  purgeDeadLetters(filter: DeadLetterFilter): Promise<string[]>;
  /** How many dead letters the filter selects (time: failed at or after), e.g. before a replay. */
  countDeadLetters(filter: DeadLetterFilter): Promise<number>;
  /** One dead letter of a destination, rows exactly as captured; undefined when there is none. */
  getDeadLetter(destination: string, id: string): Promise<DeadLetter | undefined>;
  /** The attempt log (http.attempt_log), newest first. */
  listAttempts(filter: AttemptFilter, limit?: number): Promise<AttemptEntry[]>;
  /** One event: the change, where it is for each of `destinations`, and its logged attempts (oldest first). */
  eventJourney(id: string, destinations: readonly string[]): Promise<EventJourney>;
  close(): Promise<void>;
}

/** PostgreSQL's "undefined table" and MySQL's ER_NO_SUCH_TABLE: our schema is not there. */
function notInstalled(err: unknown, config: Config): unknown {
  const code = (err as { code?: string }).code;
  if (code !== '42P01' && code !== 'ER_NO_SUCH_TABLE') return err;
  const what = config.database.type === 'postgres' ? `schema ${config.listener.schema}` : `tables ${config.listener.schema}_*`;
  return new AppError('NOT_INSTALLED', `nothing is installed in this database yet (no ${what})`, {
    cause: err,
    hint: 'run "app-db-listener install" or start the daemon',
  });
}

/** Wraps every operation so a missing installation reads as such. */
function translated(ops: AdminOps, config: Config): AdminOps {
  const wrap =
    <A extends unknown[], R>(fn: (...a: A) => Promise<R>) =>
    (...a: A) =>
      fn(...a).catch((err: unknown) => {
        throw notInstalled(err, config);
      });
  return {
    status: wrap(ops.status),
    ...(ops.capture ? { capture: wrap(ops.capture) } : {}),
    listDeadLetters: wrap(ops.listDeadLetters),
    replayDeadLetters: wrap(ops.replayDeadLetters),
    purgeDeadLetters: wrap(ops.purgeDeadLetters),
    countDeadLetters: wrap(ops.countDeadLetters),
    getDeadLetter: wrap(ops.getDeadLetter),
    listAttempts: wrap(ops.listAttempts),
    eventJourney: wrap(ops.eventJourney),
    close: ops.close,
  };
}

/**
 * Connects to the configured database. Throws an AppError (DATABASE_CONNECT)
 * that says what to check when it cannot.
 */
export async function openAdmin(config: Config, applicationName = 'app-db-listener:admin'): Promise<AdminOps> {
  const schema = config.listener.schema;
  if (config.database.type === 'postgres') {
    const [{ default: pg }, pgAdmin, { connectionError, pgClientConfig }, { captureSlotName }] = await Promise.all([
      import('pg'),
      import('./postgres/admin.js'),
      import('./postgres/connection.js'),
      import('./postgres/install.js'),
    ]);
    const client = new pg.Client(pgClientConfig(config.database, applicationName));
    client.on('error', () => undefined);
    await client.connect().catch((err: unknown) => {
      throw connectionError(err, config);
    });
    return translated(
      {
        status: () => pgAdmin.journalStatus(client, schema),
        ...(config.listener.capture === 'log' ? { capture: () => pgAdmin.captureStatus(client, schema, captureSlotName(config)) } : {}),
        listDeadLetters: (f, limit) => pgAdmin.listDeadLetters(client, schema, f, limit),
        replayDeadLetters: (f) => pgAdmin.replayDeadLetters(client, schema, f),
        purgeDeadLetters: (f) => pgAdmin.purgeDeadLetters(client, schema, f),
        countDeadLetters: (f) => pgAdmin.countDeadLetters(client, schema, f),
        getDeadLetter: async (destination, id) => (await pgAdmin.listDeadLetters(client, schema, { destination, ids: [id] }, 1))[0],
        listAttempts: (f, limit) => pgAdmin.listAttempts(client, schema, f, limit),
        eventJourney: (id, destinations) => pgAdmin.eventJourney(client, schema, id, destinations),
        close: () => client.end().catch(() => undefined),
      },
      config,
    );
  }
  const [mysqlAdmin, { createMySqlPool, mysqlConnectionError }, { captureLeaseName }] = await Promise.all([
    import('./mysql/admin.js'),
    import('./mysql/connection.js'),
    import('./mysql/install.js'),
  ]);
  const pool = createMySqlPool(config.database, { connectionLimit: 1, applicationName });
  const conn = await pool.getConnection().catch(async (err: unknown) => {
    await pool.end().catch(() => undefined);
    throw mysqlConnectionError(err, config);
  });
  return translated(
    {
      status: () => mysqlAdmin.journalStatus(conn, schema),
      ...(config.listener.capture === 'log' ? { capture: () => mysqlAdmin.captureStatus(conn, schema, captureLeaseName(config)) } : {}),
      listDeadLetters: (f, limit) => mysqlAdmin.listDeadLetters(conn, schema, f, limit),
      replayDeadLetters: (f) => mysqlAdmin.replayDeadLetters(conn, schema, f),
      purgeDeadLetters: (f) => mysqlAdmin.purgeDeadLetters(conn, schema, f),
      countDeadLetters: (f) => mysqlAdmin.countDeadLetters(conn, schema, f),
      getDeadLetter: async (destination, id) => (await mysqlAdmin.listDeadLetters(conn, schema, { destination, ids: [id] }, 1))[0],
      listAttempts: (f, limit) => mysqlAdmin.listAttempts(conn, schema, f, limit),
      eventJourney: (id, destinations) => mysqlAdmin.eventJourney(conn, schema, id, destinations),
      close: async () => {
        conn.release();
        await pool.end().catch(() => undefined);
      },
    },
    config,
  );
}
