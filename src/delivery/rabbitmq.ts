/**
 * The RabbitMQ (AMQP 0-9-1) sink: one broker message per event, published to a topic
 * exchange with a routing key from the destination's template (address.ts), over one
 * connection and one confirm channel.
 *
 * Delivered means confirmed: every message is published persistent (delivery mode 2)
 * on a channel in confirm mode, and only the broker's basic.ack makes it a success.
 *
 * | what happened                                   | outcome                                      |
 * | ----------------------------------------------- | -------------------------------------------- |
 * | basic.ack                                       | success                                      |
 * | basic.nack (a queue refused it: reject-publish) | retry, endpoint failure                      |
 * | returned (mandatory: no queue bound for it)     | retry, not an endpoint failure               |
 * | channel or connection closed, connect failed    | retry, endpoint failure                      |
 * | no confirm within `timeout`                     | retry, endpoint failure; connection dropped  |
 * | cancelled (the daemon stops)                    | retry, not an endpoint failure               |
 *
 * Unroutable messages: RabbitMQ confirms a message that reached no queue as readily
 * as one that did, so a confirm alone would count an event no one can ever read as
 * delivered. Messages are published `mandatory`, and one the broker returns (no queue
 * bound to the exchange matches its routing key) is a retry: kept in the journal, sent
 * again with backoff (a consumer that binds its queue after the daemon started gets
 * it), and after its retries it goes to the dead letters, where it can be replayed,
 * instead of vanishing. It is not an endpoint failure: the broker answered, and one
 * routing key nobody listens to must not pause the destination's other keys.
 *
 * The exchange is the one configured if it exists, whatever its type (a fanout or
 * headers exchange works too); when missing, it is declared a durable topic exchange
 * at the first connection (and again after every reconnect, in case it was deleted).
 *
 * amqplib does not reconnect by itself: a lost connection (or a channel the server
 * closed) is dropped, its unconfirmed messages become retries at once, and the next
 * send connects again, bounded by `timeout`.
 */
import { performance } from 'node:perf_hooks';
import { connect, type ChannelModel, type ConfirmChannel, type Message, type Options, type SocketOptions } from 'amqplib';
import { BROKER_DEFAULTS } from '../config/schema.js';
import type { DestinationConfig } from '../config/types.js';
import { redactSecrets } from '../observability/redact.js';
import { certificateProblem, withDefaultCas } from '../util/certificates.js';
import { compileAddress, type AddressOf } from './address.js';
import { errorCode, type Outcome, type RetryOutcome } from './policy.js';
import type { Sink, SinkCheck, SinkMessage, SinkResult } from './sink.js';
import { safeUrl } from './sinks.js';

/** Characters of a schema or table name that an AMQP topic routing key cannot carry: `.` adds a word, `*` and `#` are wildcards. */
const ROUTING_KEY_UNSAFE = /[.#*\s]/g;

/** The longest a check waits for the broker, whatever `timeout` says (as the webhook's check). */
const CHECK_MAX_MS = 10_000;

/** AMQP reply-success: the status a confirmed message reports (there is no HTTP status here). */
const AMQP_REPLY_SUCCESS = 200;

/** The names of AMQP reply codes a broker closes a channel or connection with, for error codes. */
const REPLY_CODES: Readonly<Record<number, string>> = {
  320: 'CONNECTION_FORCED',
  402: 'INVALID_PATH',
  403: 'ACCESS_REFUSED',
  404: 'NOT_FOUND',
  405: 'RESOURCE_LOCKED',
  406: 'PRECONDITION_FAILED',
  501: 'FRAME_ERROR',
  503: 'COMMAND_INVALID',
  506: 'RESOURCE_ERROR',
  530: 'NOT_ALLOWED',
  541: 'INTERNAL_ERROR',
};

export function openRabbitMqSink(d: DestinationConfig, key: string): Sink {
  const rabbitmq = d.rabbitmq ?? { exchange: BROKER_DEFAULTS.exchange, routing_key: BROKER_DEFAULTS.routing_key };
  return new RabbitMqSink({
    url: d.webhook.url,
    key,
    name: d.name,
    exchange: rabbitmq.exchange,
    routingKey: compileAddress(rabbitmq.routing_key, ROUTING_KEY_UNSAFE),
    timeoutMs: Math.max(1, Math.round(d.webhook.timeout * 1000)),
    caFile: d.webhook.ca_file,
  });
}

interface RabbitMqSettings {
  /** amqp(s)://user:password@host:port/vhost, credentials included: never shown. */
  readonly url: string;
  /** Where the destination is in the config, for the check's fixes. */
  readonly key: string;
  /** The destination's name, for the connection name operators see in RabbitMQ. */
  readonly name: string;
  readonly exchange: string;
  readonly routingKey: AddressOf;
  /** One attempt, connect included. */
  readonly timeoutMs: number;
  readonly caFile?: string | undefined;
}

/** Why a send stopped waiting before its outcome came. */
type Interruption = 'timeout' | 'aborted';

/** A connection with its confirm channel, and what is waiting on it. */
class Link {
  /** Publishes waiting for their confirm: settled at once when the link is lost. */
  readonly unconfirmed = new Set<(o: Outcome) => void>();
  /** Message ids the broker returned as unroutable whose confirm has not come yet. */
  readonly #returned = new Map<string, number>();
  /** The last error the connection or the channel reported: why it closed. */
  lastError: string | undefined;
  /** Set while the broker blocks publishing (a memory or disk alarm), with its reason. */
  blocked: string | undefined;
  lost = false;

  constructor(
    readonly model: ChannelModel,
    readonly channel: ConfirmChannel,
  ) {}

  noteReturn(message: Message): void {
    const id = String(message.properties.messageId ?? '');
    this.#returned.set(id, (this.#returned.get(id) ?? 0) + 1);
  }

  /**
   * Whether the message was returned. RabbitMQ sends a mandatory message's
   * basic.return before its basic.ack, so the return is known when the confirm
   * arrives. Counted per id: the same event may be in flight twice (a retry
   * overtaking a timed-out attempt).
   */
  takeReturn(messageId: string): boolean {
    const n = this.#returned.get(messageId);
    if (n === undefined) return false;
    if (n <= 1) this.#returned.delete(messageId);
    else this.#returned.set(messageId, n - 1);
    return true;
  }
}

export class RabbitMqSink implements Sink {
  readonly description: string;

  readonly #s: RabbitMqSettings;
  /** The URL as it may be shown: no user, no password, no query. */
  readonly #shown: string;
  /** What no outcome or check may repeat: the URL's user name and password, as written and decoded. */
  readonly #credentials: readonly string[];
  /** The CA certificates of ca_file, read at the first connect. */
  #ca: string[] | undefined;
  #link: Link | undefined;
  #opening: Promise<Link> | undefined;
  /** Sends in progress, for close() to wait on. */
  readonly #sends = new Set<Promise<unknown>>();
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(settings: RabbitMqSettings) {
    this.#s = settings;
    this.#shown = safeUrl(settings.url);
    this.description = `rabbitmq ${this.#shown} ${settings.exchange}`;
    this.#credentials = credentialsOf(settings.url);
  }

  send(messages: readonly SinkMessage[], signal?: AbortSignal): Promise<SinkResult[]> {
    const started = performance.now();
    const sending = this.#attempt(messages, signal)
      .catch((err: unknown): Outcome[] => messages.map(() => ({ kind: 'retry', error: `internal error: ${oneLine(err)}`, endpointFailure: false })))
      .then((outcomes) => {
        const durationMs = Math.round((performance.now() - started) * 1000) / 1000;
        return outcomes.map((o): SinkResult => ({ ...(o.kind === 'success' ? o : { ...o, error: this.#redact(o.error) }), durationMs }));
      });
    this.#sends.add(sending);
    void sending.finally(() => this.#sends.delete(sending));
    return sending;
  }

  async #attempt(messages: readonly SinkMessage[], signal: AbortSignal | undefined): Promise<Outcome[]> {
    if (signal?.aborted) return messages.map(() => aborted(signal));
    if (this.#closed) return messages.map(() => ({ kind: 'retry', error: 'CLOSED: the rabbitmq sink is closed', endpointFailure: false }));
    const deadline = new Deadline(this.#s.timeoutMs, signal);
    try {
      let link: Link | Interruption;
      try {
        link = await deadline.race(this.#connected());
      } catch (err) {
        const failed = this.#connectFailure(err);
        return messages.map(() => failed);
      }
      if (typeof link === 'string') {
        const why = link === 'aborted' ? aborted(signal) : this.#timedOut(`no connection to ${this.#shown} within ${this.#s.timeoutMs} ms`);
        return messages.map(() => why);
      }
      // Pipelined: every message is written before the first confirm is awaited.
      const pending = messages.map((m) => deadline.race(this.#publish(link, m)));
      const outcomes = await Promise.all(pending);
      if (outcomes.includes('timeout')) {
        // A broker that confirms nothing within the timeout is not answering on this
        // connection; the next send starts on a new one rather than queue behind it.
        this.#drop(link, `no confirm within ${this.#s.timeoutMs} ms`);
      }
      return outcomes.map((o) => (o === 'aborted' ? aborted(signal) : o === 'timeout' ? this.#confirmTimeout(link) : o));
    } finally {
      deadline.dispose();
    }
  }

  /** Publishes one message; resolves with its outcome once the broker confirmed, refused or returned it, or the link was lost. */
  #publish(link: Link, m: SinkMessage): Promise<Outcome> {
    const routingKey = this.#s.routingKey(m);
    return new Promise<Outcome>((resolve) => {
      let settled = false;
      const settle = (o: Outcome) => {
        if (settled) return;
        settled = true;
        link.unconfirmed.delete(settle);
        resolve(o);
      };
      if (link.lost) return settle(this.#lostOutcome(link));
      link.unconfirmed.add(settle);
      try {
        // The return value (false once the socket's buffer is full) is not waited on: the
        // message is queued all the same, and the dispatcher bounds what is in flight.
        link.channel.publish(this.#s.exchange, routingKey, Buffer.from(m.body, 'utf8'), publishOptions(m), (err: unknown) => {
          if (err !== null && err !== undefined) return settle(this.#refused(link, err));
          if (link.takeReturn(m.eventId)) return settle(this.#unroutable(routingKey));
          settle({ kind: 'success', status: AMQP_REPLY_SUCCESS });
        });
      } catch (err) {
        // The message cannot be encoded (a RangeError for headers over 64 KiB): nothing was sent.
        if (err instanceof RangeError) return settle({ kind: 'retry', error: `AMQP_ENCODING: ${oneLine(err)}`, endpointFailure: false });
        // The channel closed under us (IllegalOperationError) before its 'close' came: the link is done.
        settle(this.#lostOutcome(link, err));
        this.#drop(link, oneLine(err));
      }
    });
  }

  /** The link, connected and with the exchange in place; one connect at a time, shared by the sends waiting for it. */
  #connected(): Promise<Link> {
    if (this.#link !== undefined && !this.#link.lost) return Promise.resolve(this.#link);
    this.#opening ??= this.#openOnce();
    return this.#opening;
  }

  async #openOnce(): Promise<Link> {
    const ms = this.#s.timeoutMs;
    try {
      // A link that opens after its deadline is closed: the sends it was for have given up.
      const link = await within(this.#open(ms), ms, `no connection to ${this.#shown} within ${ms} ms`, (late) => closeModel(late.model, ms));
      if (this.#closed) {
        void closeModel(link.model, ms);
        throw new Error('the rabbitmq sink is closed');
      }
      this.#link = link;
      return link;
    } finally {
      this.#opening = undefined;
    }
  }

  async #open(ms: number): Promise<Link> {
    const model = await this.#connect(ms);
    // Until the link exists its errors are the open's own (rejections below); the
    // listener is needed all the same: an 'error' nobody listens to would throw.
    let link: Link | undefined;
    let early: string | undefined;
    model.on('error', (err: Error) => {
      if (link) link.lastError = oneLine(err);
      else early = oneLine(err);
    });
    try {
      await ensureExchange(model, this.#s.exchange);
      const channel = await model.createConfirmChannel();
      link = new Link(model, channel);
      const l = link;
      l.lastError = early;
      channel.on('error', (err: Error) => (l.lastError = oneLine(err)));
      channel.on('return', (message: Message) => l.noteReturn(message));
      channel.on('close', () => this.#drop(l, 'channel closed'));
      model.on('close', () => this.#drop(l, 'connection closed'));
      model.on('blocked', (reason: string) => (l.blocked = reason));
      model.on('unblocked', () => (l.blocked = undefined));
      return l;
    } catch (err) {
      void closeModel(model, ms);
      throw err;
    }
  }

  #connect(ms: number): Promise<ChannelModel> {
    // Read at the first connect, not at start: an unreadable ca_file is then a failed
    // delivery (kept, retried, explained) and a failed check, like any other TLS problem.
    if (this.#s.caFile !== undefined) this.#ca ??= withDefaultCas(this.#s.caFile, `${this.#s.key}.ca_file`);
    const options: SocketOptions = {
      // amqplib's own bound on the socket connect and the handshake; within() bounds the whole.
      timeout: ms,
      noDelay: true,
      clientProperties: { connection_name: `app-db-listener ${this.#s.name}` },
      ...(this.#ca !== undefined ? { ca: this.#ca } : {}),
    };
    return connect(this.#s.url, options);
  }

  /** Forgets the link (lost, or not answering): its unconfirmed messages become retries now, and it is closed. */
  #drop(link: Link, why: string): void {
    if (this.#link === link) this.#link = undefined;
    if (link.lost) return;
    link.lost = true;
    link.lastError ??= why;
    const outcome = this.#lostOutcome(link);
    for (const settle of [...link.unconfirmed]) settle(outcome);
    void closeModel(link.model, this.#s.timeoutMs);
  }

  #lostOutcome(link: Link, err?: unknown): RetryOutcome {
    const why = err !== undefined ? oneLine(err) : (link.lastError ?? 'connection closed');
    return { kind: 'retry', error: `AMQP_CLOSED: the connection or channel to ${this.#shown} closed before the broker confirmed (${why})`, endpointFailure: true };
  }

  #refused(link: Link, err: unknown): RetryOutcome {
    // amqplib answers a basic.nack with "message nacked", and a channel that closed with
    // the message unconfirmed with "channel closed" (the reason came as an 'error' before).
    if (err instanceof Error && err.message === 'message nacked') {
      return {
        kind: 'retry',
        error: `AMQP_NACK: the broker refused the message (basic.nack), e.g. a queue at its max-length with overflow reject-publish, or an internal error`,
        endpointFailure: true,
      };
    }
    return this.#lostOutcome(link, link.lastError !== undefined ? link.lastError : err);
  }

  #unroutable(routingKey: string): RetryOutcome {
    return {
      kind: 'retry',
      error: `AMQP_NO_ROUTE: no queue is bound to exchange ${JSON.stringify(this.#s.exchange)} for routing key ${JSON.stringify(routingKey)}; the broker returned the message (kept and retried: bind a queue to receive it)`,
      endpointFailure: false,
    };
  }

  #confirmTimeout(link: Link): RetryOutcome {
    const blocked = link.blocked !== undefined ? `; the broker blocks publishing: ${link.blocked}` : '';
    return this.#timedOut(`no confirm from ${this.#shown} within ${this.#s.timeoutMs} ms${blocked}`);
  }

  #timedOut(what: string): RetryOutcome {
    return { kind: 'retry', error: `TIMEOUT: ${what}`, endpointFailure: true };
  }

  /** A failed connect (or exchange declaration) is always the endpoint's problem, whatever amqplib calls it. */
  #connectFailure(err: unknown): RetryOutcome {
    return { kind: 'retry', error: `${amqpErrorCode(err)}: ${oneLine(err)}`, endpointFailure: true };
  }

  #redact(text: string): string {
    return redactSecrets(text, this.#credentials).replace(/(\buser ')[^']*'/g, "$1***'");
  }

  /**
   * Connects (and logs in) on a connection of its own, and looks for the exchange;
   * never publishes, never declares. A missing exchange is fine: the first delivery
   * declares it.
   */
  async check(): Promise<SinkCheck> {
    const ms = Math.min(CHECK_MAX_MS, this.#s.timeoutMs);
    let model: ChannelModel;
    try {
      model = await within(this.#connect(ms), ms, `no connection within ${ms} ms`, (late) => {
        // Nobody listens to it any more: an error while it closes must not go unhandled.
        late.on('error', () => undefined);
        return closeModel(late, ms);
      });
    } catch (err) {
      const code = amqpErrorCode(err);
      const what = code === 'AMQP_ACCESS_REFUSED' ? 'refused the login' : code === 'AMQP_CONNECTION_REFUSED' ? 'refused the connection' : 'is not reachable';
      return this.#said({ ok: false, detail: `${this.#shown} ${what} (${code}: ${oneLine(err)})`, fix: this.#fixFor(err) });
    }
    model.on('error', () => undefined);
    const server = serverName(model);
    try {
      const found = await within(exchangeExists(model, this.#s.exchange), ms, `no answer about the exchange within ${ms} ms`);
      const exchange = JSON.stringify(this.#s.exchange);
      return this.#said({
        ok: true,
        detail: found
          ? `${this.#shown} (${server}) accepted the login; exchange ${exchange} exists (no event was sent)`
          : `${this.#shown} (${server}) accepted the login; exchange ${exchange} does not exist yet: the first delivery declares it (durable, topic) (no event was sent)`,
      });
    } catch (err) {
      return this.#said({
        ok: false,
        detail: `${this.#shown} (${server}): cannot look up exchange ${JSON.stringify(this.#s.exchange)} (${amqpErrorCode(err)}: ${oneLine(err)})`,
        fix: `give the user of ${this.#s.key}.url configure, write and read permissions on the exchange in its virtual host (rabbitmqctl set_permissions), or set ${this.#s.key}.exchange to one it may use`,
      });
    } finally {
      await closeModel(model, ms);
    }
  }

  #said(check: SinkCheck): SinkCheck {
    return { ok: check.ok, detail: this.#redact(check.detail), ...(check.fix !== undefined ? { fix: this.#redact(check.fix) } : {}) };
  }

  /** What to change when the broker cannot be reached or refuses us. */
  #fixFor(err: unknown): string {
    const key = this.#s.key;
    const url = new URL(this.#s.url);
    const message = oneLine(err);
    if (errorCode(err) === 'CA_FILE') return `point ${key}.ca_file at a readable PEM file of the CA certificates that signed the broker's certificate`;
    if (/ACCESS.REFUSED/.test(message)) {
      return `the broker refused the login: check the user name and password in ${key}.url (percent-encode @ : / and % in them)`;
    }
    if (/ConnectionOpenOk|NOT.ALLOWED/.test(message)) {
      const vhost = vhostOf(url);
      return `the broker refused virtual host ${JSON.stringify(vhost)}: check the path of ${key}.url (amqp://host:5672/<vhost>, %2F for "/") and that the user has permissions there`;
    }
    if (certificateProblem(err) !== undefined) {
      return `the broker's TLS certificate is not trusted or not issued for ${url.hostname}: set ${key}.ca_file to the PEM file of the CA that signed it, or connect by a name the certificate lists`;
    }
    const port = url.port || (url.protocol === 'amqps:' ? '5671' : '5672');
    const tls = url.protocol === 'amqps:' ? `, TLS: ${key}.ca_file` : '';
    return `check ${key}.url, that RabbitMQ is running at ${url.hostname}:${port} and that this host can reach it (firewall, DNS${tls})`;
  }

  /** Waits for the sends in progress (each ends by its timeout), then closes the connection. */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    this.#closed = true;
    await Promise.allSettled([...this.#sends]);
    const link = this.#link;
    this.#link = undefined;
    if (link !== undefined) {
      link.lost = true;
      await closeModel(link.model, this.#s.timeoutMs);
    }
  }
}

function publishOptions(m: SinkMessage): Options.Publish {
  return {
    persistent: true,
    mandatory: true,
    messageId: m.eventId,
    contentType: m.contentType,
    headers: m.headers,
    type: m.operation,
    // AMQP timestamps are whole seconds.
    timestamp: Math.floor(Date.now() / 1000),
    appId: 'app-db-listener',
  };
}

/**
 * Whether the exchange exists. A passive declare of a missing exchange makes the server
 * close the channel (404), so it is asked on a channel of its own.
 */
async function exchangeExists(model: ChannelModel, exchange: string): Promise<boolean> {
  const channel = await model.createChannel();
  channel.on('error', () => undefined);
  try {
    await channel.checkExchange(exchange);
  } catch (err) {
    if (replyCode(err) === 404) return false;
    throw err;
  }
  await channel.close().catch(() => undefined);
  return true;
}

/** The exchange as configured if it exists (of whatever type), else declared a durable topic exchange. */
async function ensureExchange(model: ChannelModel, exchange: string): Promise<void> {
  if (await exchangeExists(model, exchange)) return;
  const channel = await model.createChannel();
  channel.on('error', () => undefined);
  // Two daemons declaring it at once is fine: the declaration is idempotent.
  await channel.assertExchange(exchange, 'topic', { durable: true });
  await channel.close().catch(() => undefined);
}

/** Closes the connection politely, or, when the broker does not answer within `ms`, destroys its socket. */
async function closeModel(model: ChannelModel, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const gaveUp = new Promise<'gave up'>((resolve) => (timer = setTimeout(() => resolve('gave up'), ms)));
  const closed = new Promise<'closed'>((resolve) => {
    // A close under way never completes when the socket dies meanwhile: its 'close' event says it is over.
    model.once('close', () => resolve('closed'));
    model.close().then(
      () => resolve('closed'),
      () => resolve('closed'), // already closed
    );
  });
  const how = await Promise.race([closed, gaveUp]);
  clearTimeout(timer);
  // amqplib offers no way to abandon a close the broker never answers: its socket is the way.
  if (how === 'gave up') (model.connection as unknown as { stream?: { destroy?: () => void } }).stream?.destroy?.();
}

/** `p`, or a TimeoutError after `ms`; a late result is handed to `late`. */
function within<T>(p: Promise<T>, ms: number, what: string, late?: (value: T) => unknown): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new TimeoutError(what));
      if (late) void p.then(late).catch(() => undefined);
    }, ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

/** One send's deadline and its caller's cancellation: one timer and one listener for all its waits. */
class Deadline {
  readonly #reached: Promise<Interruption>;
  #timer: NodeJS.Timeout | undefined;
  #unlisten: (() => void) | undefined;

  constructor(ms: number, signal: AbortSignal | undefined) {
    this.#reached = new Promise<Interruption>((resolve) => {
      this.#timer = setTimeout(() => resolve('timeout'), ms);
      if (signal) {
        const onAbort = () => resolve('aborted');
        signal.addEventListener('abort', onAbort, { once: true });
        this.#unlisten = () => signal.removeEventListener('abort', onAbort);
      }
    });
  }

  race<T extends object>(p: Promise<T>): Promise<T | Interruption> {
    return Promise.race([p, this.#reached]);
  }

  dispose(): void {
    clearTimeout(this.#timer);
    this.#unlisten?.();
  }
}

class TimeoutError extends Error {
  override readonly name = 'TimeoutError';
}

function aborted(signal: AbortSignal | undefined): RetryOutcome {
  const reason: unknown = signal?.reason;
  const detail = reason instanceof Error ? reason.message : String(reason ?? 'aborted');
  return { kind: 'retry', error: `ABORTED: ${detail}`, endpointFailure: false };
}

/** The AMQP reply code a broker's close carried (amqplib puts it in `code` as a number). */
function replyCode(err: unknown): number | undefined {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'number' ? code : undefined;
}

/**
 * A stable code for an error from amqplib: Node's (ECONNREFUSED, ENOTFOUND, TLS codes),
 * AMQP_<reply> for a broker's close, and codes of ours for amqplib's plain errors.
 */
function amqpErrorCode(err: unknown): string {
  const reply = replyCode(err);
  if (reply !== undefined) return `AMQP_${REPLY_CODES[reply] ?? reply}`;
  const message = err instanceof Error ? err.message : '';
  if (/ETIMEDOUT/.test(message)) return 'TIMEOUT';
  if (/ACCESS.REFUSED/.test(message)) return 'AMQP_ACCESS_REFUSED';
  if (/^Handshake terminated|ConnectionOpenOk/.test(message)) return 'AMQP_CONNECTION_REFUSED';
  const code = errorCode(err);
  return code === 'UNKNOWN' || !/^[A-Z0-9_]+$/.test(code) ? 'AMQP_ERROR' : code;
}

/** The virtual host a URL names, as the broker sees it (its path, percent-decoded; "/" when empty). */
function vhostOf(url: URL): string {
  const path = url.pathname.slice(1);
  try {
    return decodeURIComponent(path) || '/';
  } catch {
    return path;
  }
}

function serverName(model: ChannelModel): string {
  const p = model.connection.serverProperties;
  return `${p.product ?? 'AMQP broker'} ${p.version ?? ''}`.trim();
}

/** The URL's user name and password, as written and percent-decoded. */
function credentialsOf(url: string): string[] {
  try {
    const u = new URL(url);
    const out = [u.password, u.username].filter((s) => s !== '');
    for (const s of [...out]) {
      try {
        out.push(decodeURIComponent(s));
      } catch {
        // Not valid percent-encoding: the text as written is what could be repeated.
      }
    }
    return out;
  } catch {
    return [];
  }
}

/** One line: TLS and broker messages may hold newlines, which would split a log line. */
function oneLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.replace(/\s+/g, ' ').trim();
}
