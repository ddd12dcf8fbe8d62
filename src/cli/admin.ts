/** `status` and `dead-letters`: what an operator asks of the journal, without writing SQL. */
import { openAdmin, parseEventRef, type AdminOps, type DeadLetter, type DeadLetterFilter } from '../capture/admin.js';
import { parseTableName } from '../config/index.js';
import type { Config } from '../config/types.js';
import { AppError } from '../util/errors.js';
import { ExitCode, loadConfigOrExit } from './common.js';
import { EXIT, printError } from './output.js';

export interface FilterOptions {
  readonly config: string;
  readonly destination?: string;
  readonly table?: string;
  readonly since?: string;
  readonly before?: string;
  readonly all?: boolean;
  readonly json?: boolean;
  readonly limit?: string;
}

/** Prints rows as aligned columns. */
function printTable(headers: readonly string[], rows: ReadonlyArray<readonly string[]>): void {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  process.stdout.write(`${line(headers)}\n`);
  for (const r of rows) process.stdout.write(`${line(r)}\n`);
}

function parseTime(flag: string, value: string | undefined): Date | undefined {
  if (value === undefined) return undefined;
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) {
    throw new AppError('BAD_TIME', `${flag} ${JSON.stringify(value)} is not a time (expected e.g. 2026-11-26T18:00:00Z)`);
  }
  return d;
}

/** Where an unqualified --table lives: `public` (PostgreSQL) or the configured database (MySQL). */
function defaultSchema(config: Config): string {
  return config.database.type === 'postgres' ? 'public' : config.database.database;
}

function buildFilter(
  config: Config,
  ids: readonly string[],
  opts: FilterOptions,
  timeFlag: 'since' | 'before',
  requireScope: boolean,
): DeadLetterFilter {
  let table;
  if (opts.table !== undefined) {
    const parsed = parseTableName(opts.table);
    if (!parsed.ok) throw new AppError('BAD_TABLE', `--table ${JSON.stringify(opts.table)} ${parsed.problem}`);
    table = { schema: parsed.table.schema ?? defaultSchema(config), name: parsed.table.name };
  }
  const time = parseTime(`--${timeFlag}`, timeFlag === 'since' ? opts.since : opts.before);
  const scoped = ids.length > 0 || table !== undefined || time !== undefined;
  if (requireScope && !scoped && !opts.all) {
    throw new AppError('NO_SELECTION', 'say which dead letters: event ids, --table, --' + timeFlag + ', or --all');
  }
  return { ids: ids.map(parseEventRef), table, time, ...destinationOf(config, opts) };
}

/** `--destination NAME`: one of the config's destinations (a removed one's dead letters stay reachable by name). */
function destinationOf(config: Config, opts: FilterOptions): { destination?: string } {
  if (opts.destination === undefined) return {};
  if (!/^[a-z0-9_-]{1,40}$/.test(opts.destination)) {
    throw new AppError('BAD_DESTINATION', `--destination ${JSON.stringify(opts.destination)} is not a destination name (lower-case letters, digits, - and _)`, {
      hint: `the configured destinations: ${config.destinations.map((d) => d.name).join(', ')}`,
    });
  }
  return { destination: opts.destination };
}

const USAGE_ERRORS = ['BAD_EVENT_ID', 'BAD_TIME', 'BAD_TABLE', 'BAD_LIMIT', 'NO_SELECTION', 'BAD_DESTINATION'];

/**
 * Runs an admin action on the configured database (PostgreSQL or MySQL, through
 * AdminOps), with its errors printed as usage (2) or runtime (1) problems.
 */
async function act(path: string, fn: (ops: AdminOps, config: Config) => Promise<number>): Promise<number> {
  const { config } = loadConfigOrExit(path);
  let ops: AdminOps | undefined;
  try {
    ops = await openAdmin(config, 'app-db-listener:cli');
    return await fn(ops, config);
  } catch (err) {
    if (err instanceof ExitCode) throw err;
    printError(err);
    return err instanceof AppError && USAGE_ERRORS.includes(err.code) ? EXIT.usage : EXIT.runtime;
  } finally {
    await ops?.close();
  }
}

function shortError(d: DeadLetter): string {
  const e = d.lastError ?? '';
  return e.length > 60 ? `${e.slice(0, 57)}...` : e;
}

/** "12s ago", "5m ago", "3h ago", "2d ago". */
export function ago(atMs: number, nowMs = Date.now()): string {
  const s = Math.max(0, Math.round((nowMs - atMs) / 1000));
  if (s < 120) return `${s}s ago`;
  if (s < 7_200) return `${Math.round(s / 60)}m ago`;
  if (s < 172_800) return `${Math.round(s / 3_600)}h ago`;
  return `${Math.round(s / 86_400)}d ago`;
}

export function statusCommand(opts: FilterOptions): Promise<number> {
  return act(opts.config, async (ops, config) => {
    const rows = await ops.status();
    const capture = config.listener.capture === 'log' ? ((await ops.capture?.()) ?? null) : undefined;
    // Whether each destination's endpoint is up, as the running daemon sees it (its /metrics).
    const up = await endpointsUp(config);
    const endpoint = (destination: string | null): string | null =>
      destination === null || destination === '' ? null : up === undefined ? null : (up.get(destination) ?? null);
    const { backfillStatuses, backfillStatusRows } = await import('./backfill.js');
    const backfills = await backfillStatuses(config);
    if (opts.json) {
      const tables = rows.map((r) => ({ ...r, endpointUp: endpoint(r.destination) }));
      process.stdout.write(`${JSON.stringify({ tables, backfills, ...(capture !== undefined ? { capture } : {}) }, null, 2)}\n`);
      return EXIT.ok;
    }
    if (rows.length === 0) {
      process.stdout.write('No watched tables are installed in this database.\n');
      return EXIT.ok;
    }
    printTable(
      ['DESTINATION', 'TABLE', 'OPERATIONS', 'PENDING', 'RETRYING', 'IN FLIGHT', 'DEAD LETTERS', 'OLDEST', 'LAST DELIVERY', 'ENDPOINT'],
      rows.map((r) => [
        r.destination === null ? '-' : r.destination === '' ? '(not routed yet)' : r.destination,
        `${r.schema}.${r.table}`,
        r.operations.join(','),
        String(r.pending),
        String(r.retrying),
        String(r.inFlight),
        String(r.deadLetters),
        r.oldestPendingSeconds === null ? '-' : `${r.oldestPendingSeconds}s`,
        r.lastDeliveryAt === null ? '-' : ago(Date.parse(r.lastDeliveryAt)),
        endpoint(r.destination) ?? '-',
      ]),
    );
    if (capture === null) {
      process.stdout.write(
        config.database.type === 'mysql'
          ? 'Log capture: no binlog position is stored (run "install").\n'
          : 'Log capture: the replication slot does not exist (run "install").\n',
      );
    }
    if (capture?.source === 'binlog') {
      const behind = capture.lagBytes === null ? '' : `, ${Math.round(capture.lagBytes / 1024)} kB behind`;
      const last = capture.lastCommitAgeSeconds === null ? '' : `, last change journaled was committed ${capture.lastCommitAgeSeconds}s ago`;
      process.stdout.write(`Log capture: binlog from ${capture.slot} ${capture.active ? 'read now' : 'NOT READ by any daemon'}${behind}${last}.\n`);
      if (capture.walStatus === 'lost') {
        process.stdout.write(
          'warning: the server no longer has the binlog file of the stored position (binlog_expire_logs_seconds, PURGE BINARY LOGS): changes since were lost; run "uninstall" and "install" to start again from now, and backfill the tables.\n',
        );
      }
    } else if (capture) {
      const behind = capture.lagBytes === null ? '' : `, ${Math.round(capture.lagBytes / 1024)} kB behind`;
      const last = capture.lastCommitAgeSeconds === null ? '' : `, last change journaled was committed ${capture.lastCommitAgeSeconds}s ago`;
      process.stdout.write(`Log capture: slot ${capture.slot} ${capture.active ? 'read now' : 'NOT READ by any daemon'}${behind}${last}.\n`);
      if (!capture.active) process.stdout.write('warning: a slot nobody reads keeps WAL on the server until its disk fills; start a daemon, or "uninstall" it.\n');
      if (capture.walStatus === 'lost') process.stdout.write('warning: the server removed WAL this slot still needed (max_slot_wal_keep_size): changes were lost; run "uninstall" and "install" again.\n');
    }
    if (up === undefined && config.http.listen) {
      process.stdout.write(`(ENDPOINT: the daemon's admin server at ${config.http.listen.host}:${config.http.listen.port} did not answer)\n`);
    }
    if (backfills.length > 0) {
      process.stdout.write('\n');
      printTable(['BACKFILL', 'TABLE', 'DESTINATION', 'STATE', 'ROWS', 'RATE', 'ETA', ''], backfillStatusRows(backfills));
    }
    return EXIT.ok;
  });
}

/**
 * Each destination's endpoint_up as the daemon's /metrics says ("up"/"down"), or
 * undefined when no daemon answers there (stopped, another host, http.listen off).
 */
async function endpointsUp(config: Config): Promise<Map<string, string> | undefined> {
  const listen = config.http.listen;
  if (!listen) return undefined;
  const host = listen.host === '0.0.0.0' ? '127.0.0.1' : listen.host === '::' ? '::1' : listen.host;
  try {
    const r = await fetch(`http://${host.includes(':') ? `[${host}]` : host}:${listen.port}/metrics`, { signal: AbortSignal.timeout(1_000) });
    if (!r.ok) return undefined;
    const out = new Map<string, string>();
    for (const m of (await r.text()).matchAll(/^app_db_listener_endpoint_up\{destination="([^"]*)"\} (\S+)$/gm)) {
      out.set(m[1]!, Number(m[2]) === 1 ? 'up' : 'down');
    }
    return out;
  } catch {
    return undefined;
  }
}

export function deadLettersListCommand(opts: FilterOptions): Promise<number> {
  return act(opts.config, async (ops, config) => {
    const limit = opts.limit === undefined ? 100 : Number(opts.limit);
    if (!Number.isInteger(limit) || limit < 1) throw new AppError('BAD_LIMIT', `--limit must be a positive integer, got ${JSON.stringify(opts.limit)}`);
    const rows = await ops.listDeadLetters(buildFilter(config, [], opts, 'since', false), limit);
    if (opts.json) {
      process.stdout.write(`${JSON.stringify({ dead_letters: rows.map(({ newRow: _n, oldRow: _o, ...rest }) => rest) }, null, 2)}\n`);
      return EXIT.ok;
    }
    if (rows.length === 0) {
      process.stdout.write('No dead letters.\n');
      return EXIT.ok;
    }
    printTable(
      ['EVENT ID', 'DESTINATION', 'OPERATION', 'TABLE', 'ATTEMPTS', 'STATUS', 'FAILED AT', 'ERROR'],
      rows.map((d) => [
        d.eventId,
        d.destination,
        d.op,
        `${d.schema}.${d.table}`,
        String(d.attempts),
        d.lastStatus === null ? '-' : String(d.lastStatus),
        d.failedAt,
        shortError(d),
      ]),
    );
    return EXIT.ok;
  });
}

export function deadLettersShowCommand(ref: string, opts: FilterOptions): Promise<number> {
  return act(opts.config, async (ops, config) => {
    const [d] = await ops.listDeadLetters({ ids: [parseEventRef(ref)], ...destinationOf(config, opts) }, 1);
    if (!d) {
      process.stderr.write(`error: no dead letter ${ref}\n`);
      return EXIT.runtime;
    }
    if (opts.json) {
      // Row values stay exactly as captured: spliced in as raw JSON, never re-parsed.
      const { newRow, oldRow, ...rest } = d;
      const head = JSON.stringify(rest, null, 2).replace(/\n}$/, '');
      process.stdout.write(`${head},\n  "newRow": ${newRow ?? 'null'},\n  "oldRow": ${oldRow ?? 'null'}\n}\n`);
      return EXIT.ok;
    }
    const lines = [
      ['event id', d.eventId],
      ['destination', d.destination],
      ['operation', d.op],
      ['table', `${d.schema}.${d.table}`],
      ['changed at', d.createdAt],
      ['failed at', d.failedAt],
      ['attempts', String(d.attempts)],
      ['last status', d.lastStatus === null ? '-' : String(d.lastStatus)],
      ['last error', d.lastError ?? '-'],
      ['new row', d.newRow ?? 'null'],
      ['old row', d.oldRow ?? 'null'],
    ];
    for (const [k, v] of lines) process.stdout.write(`${k!.padEnd(12)} ${v}\n`);
    return EXIT.ok;
  });
}

export function deadLettersReplayCommand(refs: readonly string[], opts: FilterOptions): Promise<number> {
  return act(opts.config, async (ops, config) => {
    const ids = await ops.replayDeadLetters(buildFilter(config, refs, opts, 'since', true));
    process.stdout.write(
      `Replayed ${ids.length} dead letter${ids.length === 1 ? '' : 's'}: back in ${opts.destination === undefined ? 'their destinations\' queues' : `the queue of ${opts.destination}`} with the same event ids.\n`,
    );
    return EXIT.ok;
  });
}

export function deadLettersPurgeCommand(refs: readonly string[], opts: FilterOptions): Promise<number> {
  return act(opts.config, async (ops, config) => {
    const ids = await ops.purgeDeadLetters(buildFilter(config, refs, opts, 'before', true));
    process.stdout.write(`Purged ${ids.length} dead letter${ids.length === 1 ? '' : 's'}.\n`);
    return EXIT.ok;
  });
}
