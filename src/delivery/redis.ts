/**
 * Redis Streams as a destination: every event is one XADD onto the stream its
 * template names (`stream:`, default `db:{schema}.{table}`), optionally trimmed with
 * `MAXLEN ~ maxlen` (approximate: Redis trims whole macro nodes, so the stream stays
 * near the bound at a fraction of an exact trim's cost).
 *
 * An entry's fields, in this order:
 *   id            the event id (consumers dedupe on it: delivery is at least once)
 *   content-type  the format's content type (application/json, …)
 *   ce-…          the format's own headers under their own names (binary CloudEvents:
 *                 ce-specversion, ce-id, ce-source, ce-type, ce-time, ce-subject)
 *   body          the formatted event, byte for byte as the format wrote it
 * The entry id is Redis's own (`*`): the stream's order is the order of the XADDs,
 * which the dispatcher keeps per row.
 *
 * An event counts as delivered when Redis answered its XADD with an entry id.
 * Outcomes:
 * - an entry id: success (status 0: there is no HTTP status).
 * - an error reply (WRONGTYPE: the key holds another type; OOM, NOPERM, READONLY,
 *   LOADING, MISCONF…): retry, counted as the endpoint failing. Not a dead letter:
 *   none of these is the event's fault, and the same bytes go through once the server
 *   or its config is put right (WRONGTYPE: a stream template that collides with a key
 *   of another type, fixed by renaming either). Counting them as endpoint failures
 *   keeps the events' retries, so nothing is dead-lettered while Redis cannot take
 *   writes; the outage is logged once, with the reply and the key.
 * - no connection, a lost connection, no reply within `timeout`: retry, counted as
 *   the endpoint failing.
 * - cancelled (shutdown): retry, not counted.
 *
 * One connection carries every send, pipelined (Redis runs one command at a time
 * anyway, and a batch's XADDs leave in one write, one round trip). The client's
 * offline queue and its own reconnection are off: a send while disconnected connects
 * again itself, bounded by the timeout, and fails at once when that fails, instead of
 * waiting in a queue.
 */
import { performance } from 'node:perf_hooks';
import {
  ClientClosedError,
  ClientOfflineError,
  ConnectionTimeoutError,
  createClient,
  DisconnectsClientError,
  ErrorReply,
  SocketClosedUnexpectedlyError,
  SocketTimeoutError,
} from '@redis/client';
import { BROKER_DEFAULTS } from '../config/schema.js';
import type { DestinationConfig } from '../config/types.js';
import { redactSecrets } from '../observability/redact.js';
import { certificateProblem, withDefaultCas } from '../util/certificates.js';
import { compileAddress, type AddressOf } from './address.js';
import { classifyError, errorCode, type Outcome, type RetryOutcome } from './policy.js';
import type { Sink, SinkCheck, SinkMessage, SinkResult } from './sink.js';
import { safeUrl } from './sinks.js';

/** The longest a check waits for the server, whatever the timeout says (as the webhook's check). */
const CHECK_MAX_MS = 10_000;

/** Streams came with Redis 5.0. */
const STREAMS_SINCE_MAJOR = 5;

/** Fields of our own: a format header of the same name would shadow them, so it is left out. */
const OWN_FIELDS = new Set(['id', 'content-type', 'body']);

/** Control characters make a key that cannot be typed or printed; anything else is a valid key. */
// eslint-disable-next-line no-control-regex
const UNSAFE_KEY_CHARS = /[\u0000-\u001f\u007f]/g;

const SUCCESS: Outcome = { kind: 'success', status: 0 };

/** How to reach the server, parsed from the destination's url once. */
interface ConnectionSettings {
  readonly socket: { readonly host: string; readonly port: number; readonly tls: boolean; readonly ca?: readonly string[] };
  readonly username?: string;
  readonly password?: string;
  readonly database?: number;
  /** The URL as it may be shown. */
  readonly shown: string;
  /** What an error text must not repeat. */
  readonly credentials: readonly string[];
}

/** `key`: where the destination is in the config (`destinations[1]`), for its check's fixes. */
export function openRedisSink(d: DestinationConfig, key: string): Sink {
  const redis = d.redis ?? { stream: BROKER_DEFAULTS.stream };
  const timeoutMs = Math.max(1, Math.round(d.webhook.timeout * 1000));
  const settings = connectionSettings(d.webhook.url, d.webhook.ca_file, key);
  return new RedisSink(settings, { template: redis.stream, ...(redis.maxlen !== undefined ? { maxlen: redis.maxlen } : {}) }, timeoutMs, key);
}

/**
 * The connection settings from `redis[s]://[user[:password]@]host[:port][/db]`. Parsed
 * here rather than by the client, whose errors about a URL repeat it, credentials
 * included.
 */
/** A URL part percent-decoded, or as written when it is not valid percent-encoding. */
function decoded(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

function connectionSettings(url: string, caFile: string | undefined, key: string): ConnectionSettings {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`${key}.url is not a valid URL (expected redis://host:6379/0 or rediss://…)`);
  }
  const db = /^\/?(\d*)$/.exec(u.pathname);
  if (!db) throw new Error(`${key}.url: the path must be a database number, e.g. redis://${u.host}/0`);
  const username = decoded(u.username);
  const password = decoded(u.password);
  const tls = u.protocol === 'rediss:';
  return {
    socket: {
      host: u.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: u.port === '' ? 6379 : Number(u.port),
      tls,
      ...(tls && caFile !== undefined ? { ca: withDefaultCas(caFile, `${key}.ca_file`) } : {}),
    },
    ...(username !== '' ? { username } : {}),
    ...(password !== '' ? { password } : {}),
    ...(db[1] !== '' ? { database: Number(db[1]) } : {}),
    shown: safeUrl(url),
    credentials: [u.password, password].filter((s) => s !== ''),
  };
}

/** A client for one connection: it never reconnects by itself and never queues a command while disconnected. */
function newClient(s: ConnectionSettings, connectTimeoutMs: number) {
  const { host, port, tls, ca } = s.socket;
  // We reconnect ourselves, on the next send: see RedisSink.#connection.
  const common = { host, port, connectTimeout: connectTimeoutMs, reconnectStrategy: false as const };
  const client = createClient({
    socket: tls ? { ...common, tls: true as const, ...(ca ? { ca: [...ca] } : {}) } : common,
    // RESP2: AUTH and SELECT work on every server that has streams (HELLO needs 6.0).
    RESP: 2,
    disableOfflineQueue: true,
    // A Redis Enterprise feature we do not use; it would add a command to each handshake.
    maintNotifications: 'disabled',
    ...(s.username !== undefined ? { username: s.username } : {}),
    ...(s.password !== undefined ? { password: s.password } : {}),
    ...(s.database !== undefined ? { database: s.database } : {}),
  });
  // Connection failures reach the commands (and the connect) that were waiting; an
  // 'error' event without a listener would throw.
  client.on('error', () => undefined);
  return client;
}

type RedisClient = ReturnType<typeof newClient>;

/** Why an attempt stopped waiting: its deadline passed, or the caller cancelled. */
class Interruption {
  constructor(
    readonly kind: 'timeout' | 'aborted',
    readonly reason?: unknown,
  ) {}
}

/** One attempt's deadline and its caller's signal, as one promise; `clear` when done. */
function watchInterruption(timeoutMs: number, signal: AbortSignal | undefined): { readonly promise: Promise<Interruption>; clear(): void } {
  let clear = (): void => undefined;
  const promise = new Promise<Interruption>((resolve) => {
    // Unreferenced: an attempt in progress keeps the process alive by its socket.
    const timer = setTimeout(() => resolve(new Interruption('timeout')), timeoutMs).unref();
    const onAbort = () => resolve(new Interruption('aborted', signal?.reason));
    signal?.addEventListener('abort', onAbort, { once: true });
    clear = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
  });
  return { promise, clear };
}

function aborted(reason: unknown): RetryOutcome {
  const detail = reason instanceof Error ? reason.message : String(reason ?? 'aborted');
  return { kind: 'retry', error: `ABORTED: ${detail}`, endpointFailure: false };
}

/** A code (and where the client's own message says little, a better one) for the client's errors, which carry none. */
function clientError(err: unknown): string | undefined {
  if (err instanceof ConnectionTimeoutError) return 'CONNECT_TIMEOUT: no TCP connection within the timeout';
  if (err instanceof SocketClosedUnexpectedlyError) return `CONNECTION_LOST: ${err.message}`;
  if (err instanceof SocketTimeoutError) return `SOCKET_TIMEOUT: ${err.message}`;
  // Destroyed by us: a command on the connection got no reply within the timeout.
  if (err instanceof DisconnectsClientError) return 'CONNECTION_CLOSED: the connection was given up (a command on it got no reply within the timeout)';
  if (err instanceof ClientClosedError || err instanceof ClientOfflineError) return `CONNECTION_CLOSED: ${err.message}`;
  return undefined;
}

/**
 * Classifies a failed command or connection. An error reply is `<CODE>: <message>`
 * with the code Redis gives (WRONGTYPE, OOM, NOPERM, WRONGPASS…), and the stream key
 * when there is one; every error reply is an endpoint failure (see the file's
 * comment). Transport errors are classified by their code as the webhook's are.
 */
export function classifyRedisFailure(err: unknown, streamKey?: string): RetryOutcome {
  if (err instanceof ErrorReply) {
    const [code = 'ERR', ...rest] = err.message.trim().split(/\s+/);
    const where = streamKey === undefined ? '' : ` (XADD to ${JSON.stringify(streamKey)})`;
    const text = rest.length > 0 ? `: ${rest.join(' ')}` : '';
    return { kind: 'retry', error: `${code}${text}${where}`, endpointFailure: true };
  }
  const own = clientError(err);
  if (own !== undefined) return { kind: 'retry', error: own, endpointFailure: true };
  return classifyError(err);
}

function timeoutError(ms: number, what: string): Error {
  return Object.assign(new Error(`${what} within ${ms} ms`), { code: 'TIMEOUT' });
}

/** `promise`, or a TIMEOUT error after `ms`. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(timeoutError(ms, what)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Where events go, from the destination's `stream:` and `maxlen:`. */
interface StreamSettings {
  readonly template: string;
  readonly maxlen?: number;
}

export class RedisSink implements Sink {
  readonly description: string;
  readonly #settings: ConnectionSettings;
  readonly #stream: StreamSettings;
  readonly #streamOf: AddressOf;
  readonly #trim: readonly string[];
  readonly #timeoutMs: number;
  readonly #key: string;
  /** The connection in use: ready, or being opened (#connecting). */
  #client: RedisClient | undefined;
  #connecting: Promise<RedisClient> | undefined;
  /** Sends in progress, for close() to wait on. */
  readonly #inFlight = new Set<Promise<unknown>>();
  #closed = false;

  constructor(settings: ConnectionSettings, stream: StreamSettings, timeoutMs: number, key: string) {
    this.#settings = settings;
    this.#stream = stream;
    this.#streamOf = compileAddress(stream.template, UNSAFE_KEY_CHARS);
    this.#trim = stream.maxlen === undefined ? [] : ['MAXLEN', '~', String(stream.maxlen)];
    this.#timeoutMs = timeoutMs;
    this.#key = key;
    this.description = `redis ${settings.shown} ${stream.template}`;
  }

  async send(messages: readonly SinkMessage[], signal?: AbortSignal): Promise<SinkResult[]> {
    const started = performance.now();
    let outcomes: Outcome[];
    if (this.#closed) {
      outcomes = messages.map(() => ({ kind: 'retry', error: 'CLOSED: the redis sink is closed', endpointFailure: false }));
    } else if (signal?.aborted) {
      outcomes = messages.map(() => aborted(signal.reason));
    } else {
      const attempt = this.#attempt(messages, signal);
      this.#inFlight.add(attempt);
      try {
        outcomes = await attempt;
      } finally {
        this.#inFlight.delete(attempt);
      }
    }
    const durationMs = Math.round((performance.now() - started) * 1000) / 1000;
    return outcomes.map((o) => (o.kind === 'success' ? { ...o, durationMs } : { ...o, error: redactSecrets(o.error, this.#settings.credentials), durationMs }));
  }

  /** Connects if need be, then every XADD at once; one outcome per message. */
  async #attempt(messages: readonly SinkMessage[], signal: AbortSignal | undefined): Promise<Outcome[]> {
    const stop = watchInterruption(this.#timeoutMs, signal);
    try {
      let client: RedisClient;
      try {
        const connected = await Promise.race([this.#connection(), stop.promise]);
        if (connected instanceof Interruption) return messages.map(() => this.#interrupted(connected, 'connected'));
        client = connected;
      } catch (err) {
        const failed = classifyRedisFailure(err);
        return messages.map(() => failed);
      }
      const results: Array<Outcome | undefined> = messages.map(() => undefined);
      const replies = messages.map((m, i) => this.#publish(client, m).then((o) => (results[i] = o)));
      const stopped = await Promise.race([Promise.all(replies).then(() => undefined), stop.promise]);
      // Replies come back in the order of the commands: one that has not come within
      // the timeout holds up every later one on this connection, so it is given up.
      if (stopped?.kind === 'timeout') this.#discard(client);
      return results.map((r) => r ?? this.#interrupted(stopped!, 'acknowledged'));
    } finally {
      stop.clear();
    }
  }

  #interrupted(i: Interruption, what: 'connected' | 'acknowledged'): RetryOutcome {
    if (i.kind === 'aborted') return aborted(i.reason);
    return { kind: 'retry', error: `TIMEOUT: not ${what} within ${this.#timeoutMs} ms`, endpointFailure: true };
  }

  /** One XADD; never rejects. */
  #publish(client: RedisClient, m: SinkMessage): Promise<Outcome> {
    const stream = this.#streamOf(m);
    const args = ['XADD', stream, ...this.#trim, '*', 'id', m.eventId, 'content-type', m.contentType];
    for (const name in m.headers) if (!OWN_FIELDS.has(name)) args.push(name, m.headers[name]!);
    args.push('body', m.body);
    return client.sendCommand(args).then(
      () => SUCCESS,
      (err: unknown) => classifyRedisFailure(err, stream),
    );
  }

  /**
   * The connection, opened when there is none or the last one was lost. Concurrent
   * sends share one connect; it is bounded by the timeout, handshake (AUTH, SELECT)
   * included, which the client's connectTimeout does not cover.
   */
  #connection(): Promise<RedisClient> {
    const current = this.#client;
    if (current?.isReady) return Promise.resolve(current);
    this.#connecting ??= this.#connect().finally(() => (this.#connecting = undefined));
    return this.#connecting;
  }

  async #connect(): Promise<RedisClient> {
    // A connection that was lost: released before its replacement is opened.
    this.#client?.destroy();
    const client = newClient(this.#settings, this.#timeoutMs);
    this.#client = client;
    try {
      await within(client.connect(), this.#timeoutMs, 'not connected');
      return client;
    } catch (err) {
      this.#discard(client);
      throw err;
    }
  }

  #discard(client: RedisClient): void {
    if (this.#client === client) this.#client = undefined;
    client.destroy();
  }

  /**
   * Connects and authenticates on a connection of its own, reads the server's
   * version (streams need 5.0), and for a stream key without placeholders, that the
   * key is free or a stream. Never writes.
   */
  async check(): Promise<SinkCheck> {
    const timeoutMs = Math.min(CHECK_MAX_MS, this.#timeoutMs);
    const client = newClient(this.#settings, timeoutMs);
    const where = this.#settings.shown;
    try {
      await within(client.connect(), timeoutMs, 'not connected');
      const version = await within(serverVersion(client), timeoutMs, 'no answer to INFO');
      if (version !== undefined && Number(version.split('.')[0]) < STREAMS_SINCE_MAJOR) {
        return { ok: false, detail: `${where} is Redis ${version}, which has no streams`, fix: `use Redis ${STREAMS_SINCE_MAJOR}.0 or later in ${this.#key}.url` };
      }
      const taken = await within(this.#keyOfAnotherType(client), timeoutMs, 'no answer to TYPE');
      if (taken !== undefined) {
        return {
          ok: false,
          detail: `${where}: the key ${JSON.stringify(this.#stream.template)} holds a ${taken}, not a stream`,
          fix: `set ${this.#key}.stream to a key that is not in use, or delete that key`,
        };
      }
      const trimmed = this.#stream.maxlen === undefined ? '' : `, trimmed to about ${this.#stream.maxlen} entries`;
      return { ok: true, detail: `${where} answers${version === undefined ? '' : ` (Redis ${version})`}; events go to streams ${this.#stream.template}${trimmed}` };
    } catch (err) {
      const failed = classifyRedisFailure(err);
      return { ok: false, detail: `${where}: ${redactSecrets(failed.error, this.#settings.credentials)}`, fix: this.#fixFor(err) };
    } finally {
      client.destroy();
    }
  }

  /** The type of the stream key when it is fixed (no placeholders) and holds something else than a stream. */
  async #keyOfAnotherType(client: RedisClient): Promise<string | undefined> {
    if (/\{(schema|table|operation)\}/.test(this.#stream.template)) return undefined;
    const key = this.#streamOf({ schema: '', table: '', operation: 'insert' });
    const type = await client.sendCommand<string>(['TYPE', key]).catch(ignoreNoPermission);
    return type === undefined || type === 'none' || type === 'stream' ? undefined : type;
  }

  /** What to do about a failed check, by what failed; never repeats a credential. */
  #fixFor(err: unknown): string {
    const url = `${this.#key}.url`;
    const code = err instanceof ErrorReply ? (err.message.split(' ')[0] ?? '') : errorCode(err);
    const message = err instanceof Error ? err.message : '';
    if (code === 'WRONGPASS' || code === 'NOAUTH' || /password|AUTH/.test(message)) {
      return `put the right user name and password in ${url} (redis://user:password@host:port/db)`;
    }
    if (code === 'NOPERM') return `give the user of ${url} the permission to run INFO, TYPE and XADD on the stream keys (Redis ACL)`;
    if (/DB index/i.test(message)) return `use a database number the server has in ${url} (its path, e.g. /0)`;
    switch (certificateProblem(err)) {
      case 'untrusted':
        return `set ${this.#key}.ca_file to the PEM file of the CA that signed the server's certificate`;
      case 'hostname':
        return `connect by a name the server's certificate lists (its subjectAltName) in ${url}`;
      case 'expired':
        return "renew the server's certificate (or check this host's clock)";
      case undefined:
        break;
    }
    return `check that Redis is running and that ${url} names its host and port`;
  }

  /** Waits for the sends in progress (each ends within the timeout), then closes the connection. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled([...this.#inFlight]);
    // Whatever is still on the connection belongs to sends already answered (timed out or cancelled).
    const client = this.#client;
    this.#client = undefined;
    client?.destroy();
  }
}

/** The server's version from INFO, or undefined when the user may not run INFO. */
async function serverVersion(client: RedisClient): Promise<string | undefined> {
  const info = await client.sendCommand<string>(['INFO', 'server']).catch(ignoreNoPermission);
  return info === undefined ? undefined : /^redis_version:(\S+)/m.exec(String(info))?.[1];
}

function ignoreNoPermission(err: unknown): undefined {
  if (err instanceof ErrorReply && err.message.startsWith('NOPERM')) return undefined;
  throw err;
}
