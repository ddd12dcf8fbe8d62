/**
 * The NATS JetStream sink: each message is one JetStream publish to the subject the
 * destination's template gives (address.ts), delivered once the stream's PubAck says
 * it is stored. The event id travels as `Nats-Msg-Id`, so the stream's duplicate
 * window drops the repeats at-least-once delivery makes (a publish whose ack was lost,
 * a daemon killed before it wrote the outcome); it is in the body too, for consumers
 * that dedupe later than the window.
 *
 * One connection per destination. The client reconnects by itself after a loss;
 * while it is away a send fails at once instead of queueing bytes in the client, and
 * a connection the client gave up on is replaced by a new connect at the next send.
 */
import { performance } from 'node:perf_hooks';
import {
  AuthorizationError,
  ClosedConnectionError,
  connect,
  headers as natsHeaders,
  InvalidArgumentError,
  NoRespondersError,
  RequestError,
  TimeoutError,
  type NatsConnection,
  type NodeConnectionOptions,
} from '@nats-io/transport-node';
import { JetStreamApiCodes, JetStreamApiError, jetstream, jetstreamManager, StorageType, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { BROKER_DEFAULTS } from '../config/schema.js';
import type { DestinationConfig } from '../config/types.js';
import { redactSecrets } from '../observability/redact.js';
import { certificateProblem, withDefaultCas } from '../util/certificates.js';
import { AppError } from '../util/errors.js';
import { compileAddress, type AddressOf } from './address.js';
import type { Outcome, RetryOutcome } from './policy.js';
import type { Sink, SinkCheck, SinkMessage, SinkResult } from './sink.js';
import { safeUrl } from './sinks.js';

/** Characters of a schema or table name that would add a subject token (`.`) or a wildcard (`*`, `>`), or that no subject may hold. */
const UNSAFE_SUBJECT_CHARS = /[\s.*>]/g;

/**
 * A half-open connection (the server's host gone without closing the socket) is found
 * by pings only. The client's default (every 2 minutes, 2 unanswered) would leave
 * every delivery timing out for up to 6 minutes before it reconnects; this finds it
 * within about 45 s, for one tiny PING every 15 s.
 */
const PING_INTERVAL_MS = 15_000;
const MAX_PINGS_OUT = 2;

/** JetStream's answer for a message larger than the stream's max_msg_size. */
const MESSAGE_TOO_LARGE = 10054;
/** JetStream's answer when a stream of that name exists with another configuration (created meanwhile by another instance). */
const STREAM_NAME_IN_USE = 10058;

/** What the sink needs of its destination's config, parsed once. */
interface NatsSettings {
  /** host:port, without credentials. */
  readonly server: string;
  /** The URL as it may be shown. */
  readonly shownUrl: string;
  readonly auth: { readonly user: string; readonly pass: string } | { readonly token: string } | undefined;
  /** TLS, when the URL is tls:// or a CA file is set (a CA file means TLS: never plaintext by surprise). */
  readonly tls: { readonly caFile: string | undefined } | undefined;
  readonly timeoutMs: number;
  readonly template: string;
  readonly subjectOf: AddressOf;
  readonly createStream: { readonly name: string; readonly subjects: readonly string[] } | undefined;
  /** Where the destination is in the config, for fixes. */
  readonly key: string;
  /** What no error text may repeat. */
  readonly secrets: readonly string[];
}

export function openNatsSink(d: DestinationConfig, key: string): Sink {
  return new NatsSink(natsSettings(d, key));
}

function natsSettings(d: DestinationConfig, key: string): NatsSettings {
  let url: URL;
  try {
    url = new URL(d.webhook.url);
  } catch {
    // URL's own message repeats the input, credentials included.
    throw new Error(`${key}.url is not a valid URL (expected nats://host:4222 or tls://host:4222)`);
  }
  const user = decoded(url.username);
  const pass = decoded(url.password);
  // A user name without a password is a token, as the nats CLI reads such a URL.
  const auth = user === '' ? undefined : url.password === '' ? { token: user } : { user, pass };
  const template = d.nats?.subject ?? BROKER_DEFAULTS.subject;
  return {
    server: `${url.hostname}:${url.port === '' ? '4222' : url.port}`,
    shownUrl: safeUrl(d.webhook.url),
    auth,
    tls: url.protocol === 'tls:' || d.webhook.ca_file !== undefined ? { caFile: d.webhook.ca_file } : undefined,
    timeoutMs: Math.max(1, Math.round(d.webhook.timeout * 1000)),
    template,
    subjectOf: compileAddress(template, UNSAFE_SUBJECT_CHARS),
    createStream: d.nats?.create_stream,
    key,
    // A user name is no secret, a token is.
    secrets: (auth !== undefined && 'token' in auth ? [user, url.username] : [pass, url.password]).filter((x) => x !== ''),
  };
}

function decoded(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

/** A connection and what the sink knows about it. */
interface Link {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  /** False from the client's `disconnect` until its `reconnect`. */
  connected: boolean;
  /** create_stream's work on this connection; undefined until started, or after it failed. */
  stream: { readonly made: Promise<string>; settled: boolean } | undefined;
  /** Why create_stream failed last, for the error of a publish that found no stream. */
  streamProblem: string | undefined;
}

class NatsSink implements Sink {
  readonly description: string;
  readonly #s: NatsSettings;
  #link: Link | undefined;
  #connecting: Promise<Link> | undefined;
  /** Sends in progress, for close() to wait for. */
  readonly #inFlight = new Set<Promise<unknown>>();
  readonly #aborts = new AbortWatch();
  #closed = false;

  constructor(settings: NatsSettings) {
    this.#s = settings;
    this.description = `nats ${settings.shownUrl} ${settings.template}`;
  }

  send(messages: readonly SinkMessage[], signal?: AbortSignal): Promise<SinkResult[]> {
    const sending = this.#send(messages, signal);
    this.#inFlight.add(sending);
    const done = () => void this.#inFlight.delete(sending);
    sending.then(done, done);
    return sending;
  }

  async #send(messages: readonly SinkMessage[], signal: AbortSignal | undefined): Promise<SinkResult[]> {
    const started = performance.now();
    const all = (o: Outcome) => messages.map(() => this.#result(o, started));
    if (this.#closed) return all({ kind: 'retry', error: 'CLOSED: the NATS sink is closed (the daemon is stopping)', endpointFailure: false });
    if (signal?.aborted) return all(aborted(signal));
    const linked = await race(this.#linkUp(), this.#s.timeoutMs, signal, this.#aborts);
    if (linked.kind !== 'done') return all(linked.kind === 'aborted' ? aborted(signal) : this.#connectFailure(linked.kind === 'failed' ? linked.error : undefined));
    const link = linked.value;
    if (!link.connected) {
      return all({ kind: 'retry', error: `DISCONNECTED: lost the connection to the NATS server at ${this.#s.shownUrl}; the client is reconnecting`, endpointFailure: true });
    }
    // All published at once: the client writes them out together and the acks come back
    // as the stream stores them, so a batch costs about one round trip, not one per message.
    const deadline = started + this.#s.timeoutMs;
    return Promise.all(messages.map((m) => this.#publish(link, m, deadline, started, signal)));
  }

  async #publish(link: Link, m: SinkMessage, deadline: number, started: number, signal: AbortSignal | undefined): Promise<SinkResult> {
    const subject = this.#s.subjectOf(m);
    let outcome: Outcome;
    try {
      const h = natsHeaders();
      h.set('content-type', m.contentType);
      for (const name in m.headers) h.set(name, m.headers[name]!);
      const timeout = Math.max(1, Math.round(deadline - performance.now()));
      const acked = await race(link.js.publish(subject, m.body, { msgID: m.eventId, headers: h, timeout }), undefined, signal, this.#aborts);
      if (acked.kind === 'done') return this.#result({ kind: 'success', status: 200 }, started);
      outcome = acked.kind === 'aborted' ? aborted(signal) : this.#publishFailure(acked.kind === 'failed' ? acked.error : undefined, subject, m, link);
    } catch (err) {
      // What throws here is a header the client will not write (a line break in a value): never sendable.
      outcome = this.#publishFailureOf(err, subject, m, link);
    }
    return this.#result(outcome, started);
  }

  /** The connection to publish on: the one in place, or a new one (shared by concurrent sends). */
  #linkUp(): Promise<Link> {
    const link = this.#link;
    if (link !== undefined && !link.nc.isClosed()) {
      // A create_stream that failed on this connection is tried again, beside the publish.
      if (this.#s.createStream !== undefined && link.stream === undefined) void this.#ensureStream(link);
      return Promise.resolve(link);
    }
    this.#link = undefined;
    this.#connecting ??= this.#connect().finally(() => {
      this.#connecting = undefined;
    });
    return this.#connecting;
  }

  async #connect(): Promise<Link> {
    const nc = await openConnection(this.#s, true);
    if (this.#closed) {
      // Closed while connecting (a send gave up waiting): nobody will use it.
      await nc.close().catch(() => undefined);
      throw new ClosedConnectionError();
    }
    const link: Link = { nc, js: jetstream(nc, { timeout: this.#s.timeoutMs }), connected: true, stream: undefined, streamProblem: undefined };
    watchStatus(link);
    this.#link = link;
    // Its outcome matters only through the publishes (and check()); a failure is tried again.
    if (this.#s.createStream !== undefined) await this.#ensureStream(link).catch(() => undefined);
    return link;
  }

  /**
   * create_stream on this connection, shared by the sends that need it meanwhile. A
   * failure is forgotten, so a later send tries again.
   */
  #ensureStream(link: Link): Promise<string> {
    if (link.stream !== undefined && !link.stream.settled) return link.stream.made;
    const want = this.#s.createStream!;
    const made = jetstreamManager(link.nc, { timeout: this.#s.timeoutMs, checkAPI: false }).then((jsm) => ensureStream(jsm, want));
    const entry = { made, settled: false };
    link.stream = entry;
    made.then(
      () => {
        entry.settled = true;
        link.streamProblem = undefined;
      },
      (err: unknown) => {
        entry.settled = true;
        link.streamProblem = oneLine(err);
        if (link.stream === entry) link.stream = undefined;
      },
    );
    return made;
  }

  #result(o: Outcome, started: number): SinkResult {
    const safe = o.kind === 'success' ? o : { ...o, error: redactSecrets(o.error, this.#s.secrets) };
    return { ...safe, durationMs: Math.round((performance.now() - started) * 1000) / 1000 };
  }

  #connectFailure(err: unknown): RetryOutcome {
    if (err === undefined || err instanceof TimeoutError) {
      return { kind: 'retry', error: `TIMEOUT: no answer from the NATS server at ${this.#s.shownUrl} within ${this.#s.timeoutMs} ms (connecting)`, endpointFailure: true };
    }
    return { kind: 'retry', error: `${connectErrorCode(err)}: cannot connect to the NATS server at ${this.#s.shownUrl}: ${oneLine(err)}`, endpointFailure: true };
  }

  #publishFailure(err: unknown, subject: string, m: SinkMessage, link: Link): Outcome {
    const outcome = this.#publishFailureOf(err, subject, m, link);
    const want = this.#s.createStream;
    if (want === undefined || !isNoResponders(err) || !runsJetStream(link) || outcome.kind !== 'retry') return outcome;
    // The stream may have been deleted since it was made: it is made again, beside this
    // attempt (which keeps to its timeout), for the next one.
    const problem = link.streamProblem;
    void this.#ensureStream(link).catch(() => undefined);
    return { ...outcome, error: `${outcome.error} (${problem === undefined ? `making stream ${want.name} again for the next attempt` : `creating stream ${want.name} failed: ${problem}`})` };
  }

  /**
   * What a failed publish means. A refusal by the stream that would meet every message
   * alike (full with discard new, sealed, out of resources) is the endpoint failing:
   * retried, and the outage pauses the destination rather than using up retries. A
   * message too large for the stream or the server can never be sent as it is: dead,
   * as a webhook's 413 is.
   */
  #publishFailureOf(err: unknown, subject: string, m: SinkMessage, link: Link): Outcome {
    if (err === undefined || err instanceof TimeoutError) {
      return { kind: 'retry', error: `TIMEOUT: no acknowledgement from JetStream within ${this.#s.timeoutMs} ms (subject ${subject})`, endpointFailure: true };
    }
    if (isNoResponders(err)) {
      if (!runsJetStream(link)) {
        return { kind: 'retry', error: `JETSTREAM_DISABLED: the NATS server at ${this.#s.shownUrl} does not run JetStream (start it with -js)`, endpointFailure: true };
      }
      return {
        kind: 'retry',
        error: `NO_STREAM: no JetStream stream takes subject ${subject}: create one (nats stream add --subjects "${subjectPattern(this.#s.template)}") or set ${this.#s.key}.create_stream`,
        endpointFailure: true,
      };
    }
    if (err instanceof JetStreamApiError) {
      const error = `JETSTREAM_${err.code}: ${oneLine(err)} (subject ${subject})`;
      if (err.code === MESSAGE_TOO_LARGE) return { kind: 'dead', status: err.status, error: `${error}: raise the stream's max_msg_size or send fewer columns` };
      return { kind: 'retry', status: err.status, error, endpointFailure: true };
    }
    if (err instanceof InvalidArgumentError) {
      const max = link.nc.info?.max_payload;
      if (/max_payload/.test(err.message) && max !== undefined) {
        return { kind: 'dead', error: `MAX_PAYLOAD: the message (${Buffer.byteLength(m.body)} bytes, and its headers) is larger than the server's max_payload (${max} bytes): raise max_payload in the nats-server config, or send fewer columns` };
      }
      return { kind: 'dead', error: `INVALID_MESSAGE: ${oneLine(err)}` };
    }
    if (err instanceof ClosedConnectionError) {
      return { kind: 'retry', error: `CONNECTION_CLOSED: the connection to the NATS server at ${this.#s.shownUrl} closed; the next attempt connects again`, endpointFailure: true };
    }
    return { kind: 'retry', error: `${connectErrorCode(err)}: ${oneLine(err)}`, endpointFailure: true };
  }

  /**
   * Connects on a connection of its own (no reconnects), checks that the server runs
   * JetStream, makes create_stream's stream, and looks for a stream that takes the
   * template's subjects. Never publishes.
   */
  async check(): Promise<SinkCheck> {
    const r = await this.#check();
    // The server's words may repeat what we sent it.
    const said = { ok: r.ok, detail: redactSecrets(r.detail, this.#s.secrets) };
    return r.fix === undefined ? said : { ...said, fix: redactSecrets(r.fix, this.#s.secrets) };
  }

  async #check(): Promise<SinkCheck> {
    const s = this.#s;
    const where = `NATS server at ${s.shownUrl}`;
    const opened = await race(openConnection(s, false), s.timeoutMs, undefined, this.#aborts, (nc) => void nc.close().catch(() => undefined));
    if (opened.kind !== 'done') {
      const err = opened.kind === 'failed' ? opened.error : undefined;
      return { ok: false, detail: this.#connectFailure(err).error, fix: connectFix(err, s) };
    }
    const nc = opened.value;
    try {
      return await this.#checkJetStream(nc, where);
    } catch (err) {
      return { ok: false, detail: `the ${where} did not answer a JetStream request: ${oneLine(err)}`, fix: `check that JetStream runs on the server and that the user of ${s.key}.url may use it` };
    } finally {
      await nc.close().catch(() => undefined);
    }
  }

  async #checkJetStream(nc: NatsConnection, where: string): Promise<SinkCheck> {
    const s = this.#s;
    let jsm: JetStreamManager;
    try {
      jsm = await jetstreamManager(nc, { timeout: s.timeoutMs });
    } catch (err) {
      return { ok: false, detail: `the ${where} does not offer JetStream: ${oneLine(err)}`, fix: 'enable JetStream on the server (nats-server -js, or a jetstream {} block in its config) and for the account of the url' };
    }
    const said: string[] = [`connected to the ${where} (server ${nc.info?.version ?? 'of unknown version'}, JetStream)`];
    if (s.createStream !== undefined) {
      try {
        said.push(await ensureStream(jsm, s.createStream));
      } catch (err) {
        return { ok: false, detail: `${said[0]}; cannot create stream ${s.createStream.name}: ${oneLine(err)}`, fix: `change ${s.key}.create_stream (its subjects may overlap another stream's), or create the stream yourself and remove create_stream` };
      }
    }
    const pattern = subjectPattern(s.template);
    const streams: string[] = [];
    for await (const name of jsm.streams.names(pattern)) streams.push(name);
    if (streams.length === 0) {
      return {
        ok: false,
        detail: `${said.join('; ')}; no JetStream stream takes subjects like ${pattern}`,
        fix: `create a stream for them (nats stream add --subjects "${pattern}") or set ${s.key}.create_stream: { name: DB, subjects: ["${pattern}"] }`,
      };
    }
    const windows = await Promise.all(streams.slice(0, 5).map(async (name) => `${name} (duplicate window ${seconds((await jsm.streams.info(name)).config.duplicate_window)})`));
    said.push(`subjects like ${pattern} go to stream ${windows.join(', ')}${streams.length > 5 ? ` and ${streams.length - 5} more` : ''}`);
    return { ok: true, detail: said.join('; ') };
  }

  /** Waits (at most webhook.timeout) for the sends in progress, then closes the connection. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#inFlight.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      const limit = new Promise<void>((resolve) => (timer = setTimeout(resolve, this.#s.timeoutMs)));
      await Promise.race([Promise.allSettled([...this.#inFlight]), limit]);
      clearTimeout(timer);
    }
    const link = this.#link;
    this.#link = undefined;
    // A connect still in progress closes its connection itself when it lands (#connect).
    if (link !== undefined) await link.nc.close().catch(() => undefined);
  }
}

/**
 * A connection to the server. The CA file is read at each connect, so a fixed file
 * is used without a restart, and an unreadable one is an outcome, not a crash.
 */
async function openConnection(s: NatsSettings, reconnect: boolean): Promise<NatsConnection> {
  // ca_file adds to what Node trusts (its CAs and NODE_EXTRA_CA_CERTS), never replaces it.
  const tls = s.tls === undefined ? undefined : s.tls.caFile === undefined ? {} : { ca: withDefaultCas(s.tls.caFile, `${s.key}.ca_file`).join('\n') };
  const options: NodeConnectionOptions = {
    servers: s.server,
    name: 'app-db-listener',
    // Each connect attempt (TCP, TLS, the server's INFO and our CONNECT) is bounded by webhook.timeout.
    timeout: s.timeoutMs,
    reconnect,
    // The client keeps trying in the background for as long as the sink lives; sends fail fast meanwhile.
    maxReconnectAttempts: reconnect ? -1 : 0,
    pingInterval: PING_INTERVAL_MS,
    maxPingOut: MAX_PINGS_OUT,
    ...(s.auth ?? {}),
    ...(tls !== undefined ? { tls } : {}),
  };
  return connect(options);
}

/** Whether the server runs JetStream, from the INFO of the server connected last. */
function runsJetStream(link: Link): boolean {
  return link.nc.info?.jetstream !== false;
}

/** Follows the client's connection state, so a send while it is away fails at once. */
function watchStatus(link: Link): void {
  void (async () => {
    for await (const st of link.nc.status()) {
      if (st.type === 'disconnect' || st.type === 'staleConnection') link.connected = false;
      else if (st.type === 'reconnect') link.connected = true;
    }
  })().catch(() => undefined);
}

/** Makes the stream when it is missing; one that exists is left as it is. Says which. */
async function ensureStream(jsm: JetStreamManager, want: { readonly name: string; readonly subjects: readonly string[] }): Promise<string> {
  const exists = (subjects: readonly string[]) => `stream ${want.name} exists (left as it is: subjects ${subjects.join(', ')})`;
  try {
    return exists((await jsm.streams.info(want.name)).config.subjects ?? []);
  } catch (err) {
    if (!(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound)) throw err;
  }
  try {
    await jsm.streams.add({ name: want.name, subjects: [...want.subjects], storage: StorageType.File });
    return `stream ${want.name} created (subjects ${want.subjects.join(', ')}, file storage)`;
  } catch (err) {
    // Another instance made it between our look and our add.
    if (err instanceof JetStreamApiError && err.code === STREAM_NAME_IN_USE) return exists((await jsm.streams.info(want.name)).config.subjects ?? []);
    throw err;
  }
}

/**
 * The subjects a template can give, as a NATS filter: each token holding a placeholder
 * becomes `*` (a name's dots are replaced, so a placeholder never spans tokens).
 */
function subjectPattern(template: string): string {
  return template
    .split('.')
    .map((token) => (/\{(schema|table|operation)\}/.test(token) ? '*' : token))
    .join('.');
}

/**
 * No responders: nothing listens on the subject, which for a JetStream publish means no
 * stream takes it (the client reports it as "jetstream is not enabled").
 */
function isNoResponders(err: unknown): boolean {
  if (err instanceof NoRespondersError) return true;
  if (err instanceof RequestError && err.isNoResponders()) return true;
  const cause = (err as { cause?: unknown } | undefined)?.cause;
  return err instanceof Error && err.name === 'JetStreamNotEnabled' && cause instanceof RequestError && cause.isNoResponders();
}

/** A stable code for a connection problem: Node's (ECONNREFUSED, ENOTFOUND, a TLS code) when there is one. */
function connectErrorCode(err: unknown): string {
  if (err instanceof AuthorizationError) return 'AUTHORIZATION';
  if (err instanceof AppError) return err.code;
  for (let e: unknown = err, depth = 0; e !== undefined && e !== null && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^[A-Z][A-Z0-9_]+$/.test(code)) return code;
  }
  return 'CONNECTION';
}

function connectFix(err: unknown, s: NatsSettings): string {
  if (err instanceof AppError && err.hint !== undefined) return err.hint;
  if (err instanceof AuthorizationError) {
    return `put the server's credentials in ${s.key}.url: nats://user:password@host:4222, or nats://token@host:4222 for a token`;
  }
  if (certificateProblem(err) !== undefined || certificateProblem((err as { cause?: unknown } | undefined)?.cause) !== undefined) {
    return `set ${s.key}.ca_file to the PEM file of the CA that signed the server's certificate, and connect by a name the certificate lists`;
  }
  return `check that the NATS server runs and that ${s.key}.url (${s.shownUrl}) names its host and client port (4222 by default; tls:// when it requires TLS)`;
}

function oneLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.replace(/\s+/g, ' ').trim();
}

function aborted(signal: AbortSignal | undefined): RetryOutcome {
  const reason: unknown = signal?.reason;
  const detail = reason instanceof Error ? reason.message : String(reason ?? 'aborted');
  return { kind: 'retry', error: `ABORTED: ${detail}`, endpointFailure: false };
}

/** JetStream's nanoseconds, as a person reads them. */
function seconds(nanos: number): string {
  const s = nanos / 1e9;
  return s >= 60 && s % 60 === 0 ? `${s / 60} min` : `${s} s`;
}

type Raced<T> = { kind: 'done'; value: T } | { kind: 'failed'; error: unknown } | { kind: 'timeout' } | { kind: 'aborted' };

/**
 * `p`, or a timeout after `ms` (when given), or the caller's abort, whichever comes
 * first. `p` itself cannot be cancelled: `late` receives its value when it lands after
 * the race was lost.
 */
function race<T>(p: Promise<T>, ms: number | undefined, signal: AbortSignal | undefined, aborts: AbortWatch, late?: (value: T) => void): Promise<Raced<T>> {
  return new Promise<Raced<T>>((resolve) => {
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    let unwatch = (): void => undefined;
    const finish = (r: Raced<T>): boolean => {
      if (settled) return false;
      settled = true;
      clearTimeout(timer);
      unwatch();
      resolve(r);
      return true;
    };
    if (ms !== undefined) timer = setTimeout(() => finish({ kind: 'timeout' }), ms);
    if (signal !== undefined) unwatch = aborts.watch(signal, () => finish({ kind: 'aborted' }));
    p.then(
      (value) => {
        if (!finish({ kind: 'done', value })) late?.(value);
      },
      (error: unknown) => finish({ kind: 'failed', error }),
    );
  });
}

/**
 * One listener per caller signal, however many sends wait on it: the dispatcher gives
 * every delivery the same signal, and a listener per delivery would pile up on it.
 */
class AbortWatch {
  readonly #watchers = new WeakMap<AbortSignal, Set<() => void>>();

  watch(signal: AbortSignal, onAbort: () => void): () => void {
    let set = this.#watchers.get(signal);
    if (set === undefined) {
      const fresh = new Set<() => void>();
      set = fresh;
      this.#watchers.set(signal, fresh);
      signal.addEventListener('abort', () => {
        for (const fn of [...fresh]) fn();
        fresh.clear();
      }, { once: true });
    }
    const watchers = set;
    watchers.add(onAbort);
    return () => watchers.delete(onAbort);
  }
}
