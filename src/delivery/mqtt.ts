/**
 * The MQTT destination: each event is one MQTT 5 PUBLISH at QoS 1 on the topic its
 * template gives (`topic:`, default db/{schema}/{table}), delivered once the broker's
 * PUBACK says it took it. The payload is the formatted body as it was given; the event
 * id travels as the user property `event-id` (MQTT has no message id of its own: the
 * packet identifier is per connection and reused), the format's headers (binary
 * CloudEvents' ce-*) as user properties beside it, and the content type as the
 * PUBLISH's Content Type. Never retained: a retained change would be replayed to every
 * new subscriber as if it had just happened.
 *
 * MQTT.js is kept from retrying on its own. By default it reconnects in the background,
 * queues publishes made while offline and re-sends unacknowledged QoS 1 messages on the
 * next connection; the dispatcher already retries from the journal, so a library that
 * re-sends too would deliver, late and out of order, events we had reported as failed.
 * Here a connection is an MQTT.js client that is never reconnected (reconnectPeriod 0,
 * clean start): when it is lost, its unacknowledged publishes are reported as retries at
 * once and the client, outgoing store and all, is thrown away; the next send connects
 * anew, bounded by the timeout. A PUBLISH that had left before the loss may still have
 * reached the broker: that is at least once, and receivers dedupe on `event-id`.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { connect, ReasonCodes, type IClientOptions, type IConnackPacket, type IDisconnectPacket, type MqttClient } from 'mqtt';
import { BROKER_DEFAULTS } from '../config/schema.js';
import type { DestinationConfig } from '../config/types.js';
import { redactSecrets } from '../observability/redact.js';
import { certificateProblem, withDefaultCas } from '../util/certificates.js';
import { AppError } from '../util/errors.js';
import { compileAddress, type AddressOf } from './address.js';
import { errorCode, type Outcome, type RetryOutcome } from './policy.js';
import type { Sink, SinkCheck, SinkMessage, SinkResult } from './sink.js';
import { safeUrl } from './sinks.js';

/** Characters of a schema or table name that would add a topic level or a wildcard. */
const UNSAFE_IN_TOPIC = /[+#/\s]/g;
/** The longest a check waits for the broker, whatever the timeout says. */
const CHECK_MAX_MS = 10_000;
/** MQTT 5's default Receive Maximum, when the broker's CONNACK states none. */
const DEFAULT_RECEIVE_MAXIMUM = 65_535;

/**
 * PUBACK reason codes (0x80 and up) that refuse the message itself: the same bytes on
 * the same topic will never be taken, so the event is a dead letter.
 */
const REFUSES_THE_MESSAGE = new Set([
  0x90, // Topic Name invalid: the template or a table name makes a topic the broker will not take
  0x95, // Packet too large: bigger than the broker's limit (message_size_limit)
  0x99, // Payload format invalid
]);
/** Refusals that are our own client's bookkeeping, not a sign the broker is unwell. */
const LOCAL_REFUSALS = new Set([
  0x91, // Packet identifier in use
]);

/**
 * What a PUBACK reason code means for the event. Below 0x80 is success (0x10, no
 * matching subscribers, too: the broker took the message). The refusals in
 * REFUSES_THE_MESSAGE are dead letters. Every other refusal is a retry counted against
 * the endpoint: 0x87 Not authorized (the broker's ACL for our user and topic), 0x97 Quota
 * exceeded, 0x80 Unspecified, 0x83 Implementation specific. They say nothing about the
 * event, they refuse every event to that topic alike until the broker is changed: the
 * circuit breaker then holds the events back without spending their retries, where dead
 * letters would fill with events that were never wrong.
 */
export function classifyPuback(reasonCode: number): Outcome {
  if (reasonCode < 0x80) return { kind: 'success', status: reasonCode };
  const error = `PUBACK ${hex(reasonCode)}: ${reasonName(reasonCode)}`;
  if (REFUSES_THE_MESSAGE.has(reasonCode)) return { kind: 'dead', error };
  return { kind: 'retry', error, endpointFailure: !LOCAL_REFUSALS.has(reasonCode) };
}

/** `key`: where the destination is in the config (`destinations[1]`), for messages and fixes. */
export function openMqttSink(d: DestinationConfig, key: string): Sink {
  return new MqttSink(mqttSettings(d, key));
}

/** What the sink needs of its destination's config, worked out once. */
interface MqttSettings {
  readonly key: string;
  /** The broker URL without credentials. */
  readonly shown: string;
  readonly template: string;
  readonly topicOf: AddressOf;
  /** Every connection's options but the client id. */
  readonly connection: Readonly<IClientOptions>;
  /** Unique per sink: a second sink (or daemon) never takes over this one's session. */
  readonly clientId: string;
  readonly timeoutMs: number;
  /** What an error message must not repeat: the URL's user name and password. */
  readonly credentials: readonly string[];
}

function mqttSettings(d: DestinationConfig, key: string): MqttSettings {
  let url: URL;
  try {
    url = new URL(d.webhook.url);
  } catch {
    // URL's own error repeats the input, credentials included.
    throw new AppError('CONFIG', `${key}.url is not a valid URL (expected mqtt://host:1883 or mqtts://host:8883)`);
  }
  const tls = url.protocol === 'mqtts:';
  if (!tls && url.protocol !== 'mqtt:') throw new AppError('CONFIG', `${key}.url must use mqtt or mqtts, got ${url.protocol.replace(/:$/, '')}`);
  const template = d.mqtt?.topic ?? BROKER_DEFAULTS.topic;
  // The names in it are made safe by compileAddress; the template's own text is not.
  if (/[+#]/.test(template) || template.includes('\u0000')) {
    throw new AppError('CONFIG', `${key}.topic ${JSON.stringify(template)} has a wildcard (+ or #) or a NUL: an MQTT topic name cannot`, {
      hint: `write ${key}.topic without + and #, e.g. db/{schema}/{table}`,
    });
  }
  const username = decoded(url.username);
  const password = decoded(url.password);
  const timeoutMs = Math.max(1, Math.round(d.webhook.timeout * 1000));
  const connection: IClientOptions = {
    protocol: tls ? 'mqtts' : 'mqtt',
    // URL keeps an IPv6 address in brackets; a socket wants it bare.
    host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: url.port === '' ? (tls ? 8883 : 1883) : Number(url.port),
    ...(username !== '' ? { username } : {}),
    ...(password !== '' ? { password } : {}),
    protocolVersion: 5,
    // A new session each time: nothing of an earlier connection is resumed or re-sent.
    clean: true,
    // Reconnecting is ours, at the next send (see the top of this file).
    reconnectPeriod: 0,
    connectTimeout: timeoutMs,
    queueQoSZero: false,
    resubscribe: false,
    // mqtt-packet's cache of every 2-byte number as a Buffer: 65,536 of them, ~7 MB of
    // heap for the life of the process, to save an allocation per packet.
    writeCache: false,
    // ca_file adds to what Node trusts, never replaces it.
    ...(tls && d.webhook.ca_file !== undefined ? { ca: withDefaultCas(d.webhook.ca_file, `${key}.ca_file`) } : {}),
  };
  return {
    key,
    shown: safeUrl(d.webhook.url),
    template,
    topicOf: compileAddress(template, UNSAFE_IN_TOPIC),
    connection,
    clientId: `app-db-listener-${d.name}-${process.pid}-${randomBytes(4).toString('hex')}`,
    timeoutMs,
    credentials: [username, password, url.username, url.password].filter((s) => s !== ''),
  };
}

/** A URL's user name or password as typed: a stray % that decodes to nothing is kept as it is. */
function decoded(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

/** Why a connection or a publish did not get its answer: the retry it comes to. */
class Failure extends Error {
  constructor(readonly outcome: RetryOutcome) {
    super(outcome.error);
  }
}

/** The transport problem an MQTT.js or socket error is: always the broker's side or the network's. */
function transportFailure(err: unknown): Failure {
  if (err instanceof Failure) return err;
  const code = (err as { code?: unknown } | null)?.code;
  const message = err instanceof Error ? err.message : String(err);
  // MQTT.js gives a CONNACK refusal the reason code as a number.
  const what = typeof code === 'number' ? `CONNACK ${hex(code)}` : errorCode(err) === 'UNKNOWN' ? 'MQTT' : errorCode(err);
  return new Failure({ kind: 'retry', error: `${what}: ${message.replace(/\s+/g, ' ').trim()}`, endpointFailure: true });
}

function hex(code: number): string {
  return `0x${code.toString(16).padStart(2, '0').toUpperCase()}`;
}

function reasonName(code: number): string {
  return (ReasonCodes as Record<number, string | undefined>)[code] ?? 'unknown reason code';
}

/**
 * One connection to the broker: an MQTT.js client that is never reconnected. When the
 * connection goes, its unacknowledged publishes fail at once (MQTT.js would otherwise keep
 * them for a reconnect), and it never has more of them than the broker's Receive Maximum
 * (MQTT.js does not count them; a broker that does disconnects a client that sends more).
 */
class Connection {
  readonly client: MqttClient;
  /** Resolves with the CONNACK once the broker accepted the connection, rejects if it never does. */
  readonly ready: Promise<IConnackPacket>;
  /** performance.now() of the broker's last packet: a connection that went quiet is presumed dead. */
  lastHeard = -Infinity;
  /** Set once the connection is gone (or being dropped): why, for the publishes still waiting. */
  #gone: Failure | undefined;
  #receiveMaximum = DEFAULT_RECEIVE_MAXIMUM;
  #inFlight = 0;
  /** Publishes waiting for a free slot, oldest first (a batch goes out in its order). */
  /** Publishes waiting for a slot: started by `go`, or failed by `fail` when the connection goes first. */
  readonly #waiting: Array<{ go: () => void; fail: (why: Failure) => void }> = [];
  #disconnect: IDisconnectPacket | undefined;
  #lastError: unknown;

  constructor(options: IClientOptions, onGone: (c: Connection) => void) {
    // connect() writes into its options: each connection gets its own copy.
    this.client = connect({ ...options });
    this.client.on('packetreceive', () => {
      this.lastHeard = performance.now();
    });
    this.client.on('disconnect', (packet) => {
      this.#disconnect = packet;
    });
    this.client.on('error', (err) => {
      this.#lastError = err;
    });
    this.ready = new Promise<IConnackPacket>((resolve, reject) => {
      this.client.once('connect', (connack) => {
        this.#receiveMaximum = connack.properties?.receiveMaximum ?? DEFAULT_RECEIVE_MAXIMUM;
        resolve(connack);
      });
      this.client.once('close', () => {
        const gone = (this.#gone ??= this.#whyLost());
        reject(gone);
        // Publishes waiting for a slot fail now with the reason, not at their deadline.
        for (const w of this.#waiting.splice(0)) w.fail(gone);
        onGone(this);
        // Nothing of this client is used again. Ended by force, with reconnectPeriod 0 and
        // a clean session, MQTT.js fails every unacknowledged publish now (their callbacks
        // say why below) instead of keeping them for a reconnect.
        this.client.end(true);
      });
    });
    // A rejection nobody awaits (the sink closed meanwhile) is not an error of the process.
    this.ready.catch(() => undefined);
  }

  get lost(): boolean {
    return this.#gone !== undefined;
  }

  #whyLost(): Failure {
    const d = this.#disconnect;
    if (d !== undefined) {
      const code = d.reasonCode ?? 0;
      return new Failure({ kind: 'retry', error: `DISCONNECT ${hex(code)}: the broker closed the connection (${reasonName(code)})`, endpointFailure: true });
    }
    if (this.#lastError !== undefined) return transportFailure(this.#lastError);
    return new Failure({ kind: 'retry', error: 'CONNECTION_LOST: the connection to the broker closed', endpointFailure: true });
  }

  /**
   * Publishes at QoS 1 and resolves with what the PUBACK says, or rejects with a Failure
   * when the connection goes first. `wanted()` is asked again when a slot frees up: a
   * publish whose attempt was given up meanwhile is never sent.
   */
  publish(topic: string, m: SinkMessage, wanted: () => boolean): Promise<Outcome> {
    return new Promise<Outcome>((resolve, reject) => {
      if (this.#gone) return reject(this.#gone);
      const go = () => {
        if (!wanted() || this.#gone) return this.#release();
        const answered = (err?: Error) => {
          this.#release();
          // A PUBACK's refusal carries its reason code; anything else is the client giving up.
          const code = (err as { code?: unknown } | undefined)?.code;
          if (!err) resolve({ kind: 'success', status: 0 });
          else if (typeof code === 'number') resolve(classifyPuback(code));
          else reject(this.#gone ?? transportFailure(err));
        };
        try {
          this.client.publish(topic, m.body, publishOptions(m), answered);
        } catch (err) {
          answered(err instanceof Error ? err : new Error(String(err)));
        }
      };
      if (this.#inFlight < this.#receiveMaximum && this.#waiting.length === 0) {
        this.#inFlight++;
        go();
      } else {
        this.#waiting.push({ go, fail: reject });
      }
    });
  }

  /** Publishes wait for a slot: the broker has left Receive Maximum of them unacknowledged. */
  get saturated(): boolean {
    return this.#waiting.length > 0;
  }

  #release(): void {
    const next = this.#waiting.shift();
    if (next) next.go();
    else this.#inFlight--;
  }

  /** Drops the connection now: its publishes fail with `why`. */
  drop(why: Failure): void {
    if (this.#gone) return;
    this.#gone = why;
    for (const w of this.#waiting.splice(0)) w.fail(why);
    this.client.end(true);
  }

  /** Closes politely (DISCONNECT) when nothing is outstanding, or at once; after `ms` in any case. */
  async close(ms: number): Promise<void> {
    if (this.client.disconnected) return;
    // A broker that no longer answers never completes the polite close.
    const timer = setTimeout(() => this.client.stream.destroy(), ms).unref();
    const idle = this.client.connected && Object.keys(this.client.outgoing).length === 0;
    this.#gone ??= new Failure({ kind: 'retry', error: 'CLOSED: the mqtt destination is shutting down', endpointFailure: false });
    await new Promise<void>((resolve) => this.client.end(!idle, () => resolve()));
    clearTimeout(timer);
  }
}

/** What to do about a broker certificate that failed verification. */
function certificateFix(problem: ReturnType<typeof certificateProblem>, key: string, host: string): string | undefined {
  switch (problem) {
    case 'untrusted':
      return `the broker's certificate is not signed by a CA this host trusts: set ${key}.ca_file to the PEM file of the CA that signed it`;
    case 'hostname':
      return `the broker's certificate is not issued for ${JSON.stringify(host)}: connect by a name or address it lists (its subjectAltName) in ${key}.url`;
    case 'expired':
      return "the broker's certificate is outside its validity dates: renew it on the broker (or check this host's clock)";
    case undefined:
      return undefined;
  }
}

/** The PUBLISH of one event: QoS 1, never retained, its id and the format's headers as user properties. */
function publishOptions(m: SinkMessage) {
  return {
    qos: 1 as const,
    retain: false,
    properties: {
      // JSON text: UTF-8, which the property lets a broker and a receiver rely on.
      payloadFormatIndicator: true,
      contentType: m.contentType,
      // The format's headers first: none of them may replace the event id.
      userProperties: { ...m.headers, 'event-id': m.eventId },
    },
  };
}

/**
 * One send's deadline (the timeout) and the caller's signal, for all of its messages.
 * Rejects `expired` with the retry the first of them comes to.
 */
class Deadline {
  readonly expired: Promise<never>;
  /** Set once the deadline passed or the signal aborted. */
  over = false;
  #timer: NodeJS.Timeout | undefined;
  #onAbort: (() => void) | undefined;

  constructor(
    timeoutMs: number,
    private readonly signal: AbortSignal | undefined,
    timedOut: () => RetryOutcome,
  ) {
    this.expired = new Promise<never>((_, reject) => {
      const end = (outcome: RetryOutcome) => {
        this.over = true;
        reject(new Failure(outcome));
      };
      this.#timer = setTimeout(() => end(timedOut()), timeoutMs);
      if (signal) {
        this.#onAbort = () => end(aborted(signal));
        signal.addEventListener('abort', this.#onAbort, { once: true });
      }
    });
    this.expired.catch(() => undefined);
  }

  race<T>(p: Promise<T>): Promise<T> {
    return Promise.race([p, this.expired]);
  }

  dispose(): void {
    clearTimeout(this.#timer);
    if (this.#onAbort) this.signal?.removeEventListener('abort', this.#onAbort);
  }
}

function aborted(signal: AbortSignal): RetryOutcome {
  const reason: unknown = signal.reason;
  const detail = reason instanceof Error ? reason.message : String(reason ?? 'aborted');
  return { kind: 'retry', error: `ABORTED: ${detail}`, endpointFailure: false };
}

export class MqttSink implements Sink {
  readonly description: string;
  #connection: Connection | undefined;
  /** Sends in progress, for close() to wait for. */
  readonly #sends = new Set<Promise<unknown>>();
  #closed = false;

  constructor(private readonly s: MqttSettings) {
    this.description = `mqtt ${s.shown} ${s.template}`;
  }

  send(messages: readonly SinkMessage[], signal?: AbortSignal): Promise<SinkResult[]> {
    const started = performance.now();
    const sending = this.#send(messages, signal).then((outcomes) =>
      outcomes.map((o): SinkResult => ({ ...(o.kind === 'success' ? o : { ...o, error: redactSecrets(o.error, this.s.credentials) }), durationMs: Math.round((performance.now() - started) * 1000) / 1000 })),
    );
    this.#sends.add(sending);
    void sending.finally(() => this.#sends.delete(sending));
    return sending;
  }

  async #send(messages: readonly SinkMessage[], signal: AbortSignal | undefined): Promise<Outcome[]> {
    if (signal?.aborted) return messages.map(() => aborted(signal));
    if (this.#closed) return messages.map(() => ({ kind: 'retry', error: 'CLOSED: the mqtt destination is shutting down', endpointFailure: false }));
    let connection: Connection | undefined;
    const startedAt = performance.now();
    const deadline = new Deadline(this.s.timeoutMs, signal, () => this.#timedOut(connection, startedAt));
    try {
      connection = this.#connect();
      await deadline.race(connection.ready);
      const c = connection;
      const wanted = () => !deadline.over;
      return await Promise.all(
        messages.map((m) => deadline.race(c.publish(this.s.topicOf(m), m, wanted)).catch((err: unknown) => transportFailure(err).outcome)),
      );
    } catch (err) {
      const outcome = transportFailure(err).outcome;
      return messages.map(() => outcome);
    } finally {
      deadline.dispose();
    }
  }

  /** The connection to publish on: the current one, or a new one when there is none. */
  #connect(): Connection {
    if (this.#connection === undefined || this.#connection.lost) {
      this.#connection = new Connection({ ...this.s.connection, clientId: this.s.clientId }, (gone) => {
        if (this.#connection === gone) this.#connection = undefined;
      });
    }
    return this.#connection;
  }

  /**
   * The timeout ran out. A connection that has not heard from the broker since this send
   * began is presumed dead (a half-open TCP connection never says so), and one whose every
   * slot is still taken is no better (a PUBACK that never comes would hold its slot for
   * good): it is dropped, so the next send connects anew instead of waiting on it too.
   */
  #timedOut(connection: Connection | undefined, startedAt: number): RetryOutcome {
    const what = connection?.client.connected === true ? 'PUBACK' : `CONNACK from ${this.s.shown}`;
    const outcome: RetryOutcome = { kind: 'retry', error: `TIMEOUT: no ${what} within ${this.s.timeoutMs} ms`, endpointFailure: true };
    if (connection && (connection.lastHeard < startedAt || connection.saturated)) connection.drop(new Failure(outcome));
    return outcome;
  }

  /** Connects and authenticates on a connection of its own; publishes nothing. */
  async check(): Promise<SinkCheck> {
    const timeoutMs = Math.min(CHECK_MAX_MS, this.s.timeoutMs);
    let connection: Connection | undefined;
    let timer: NodeJS.Timeout | undefined;
    try {
      connection = new Connection({ ...this.s.connection, clientId: `${this.s.clientId}-check`, connectTimeout: timeoutMs }, () => undefined);
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Failure({ kind: 'retry', error: `TIMEOUT: no answer within ${timeoutMs / 1000} s`, endpointFailure: true })), timeoutMs);
      });
      return this.#judge(await Promise.race([connection.ready, late]));
    } catch (err) {
      return this.#unreachable(transportFailure(err).outcome.error);
    } finally {
      clearTimeout(timer);
      await connection?.close(1_000);
    }
  }

  /** The broker took us: whether it grants what publishing needs (QoS 1). */
  #judge(connack: IConnackPacket): SinkCheck {
    const maxQos = connack.properties?.maximumQoS;
    if (maxQos === 0) {
      return {
        ok: false,
        detail: `${this.s.shown} accepted the connection but grants QoS 0 only (no event was sent)`,
        fix: `allow QoS 1 on the broker: app-db-listener counts a message delivered only on the broker's PUBACK, which QoS 0 does not have`,
      };
    }
    const limit = connack.properties?.maximumPacketSize;
    const size = limit === undefined ? '' : `, packets up to ${limit} bytes`;
    return {
      ok: true,
      detail: `${this.s.shown} accepted the connection (MQTT 5, QoS 1${size}); no event was sent, so whether it lets us publish to ${this.s.template} shows at the first event`,
    };
  }

  #unreachable(error: string): SinkCheck {
    const why = redactSecrets(error, this.s.credentials);
    const k = this.s.key;
    if (/^CONNACK 0x(86|87|8C)\b/.test(why)) {
      return {
        ok: false,
        detail: `${this.s.shown} refused the connection (${why})`,
        fix: `check the user name and password in ${k}.url (mqtt://user:password@host:port) and that the broker lets that user connect`,
      };
    }
    const certificate = certificateFix(certificateProblem({ code: why.split(':')[0], message: why }), k, this.s.connection.host ?? '');
    if (certificate !== undefined) return { ok: false, detail: `${this.s.shown}: TLS verification failed (${why})`, fix: certificate };
    const tls = this.s.connection.protocol === 'mqtts';
    return {
      ok: false,
      detail: `${this.s.shown} is not reachable (${why})`,
      fix: `check ${k}.url, that the broker is running and that this host can reach it (firewall, DNS${tls ? `, TLS: ${k}.ca_file` : ''})`,
    };
  }

  /** Waits for the sends in progress (each ends by its timeout), then disconnects. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.allSettled([...this.#sends]);
    const connection = this.#connection;
    this.#connection = undefined;
    await connection?.close(this.s.timeoutMs);
  }
}
