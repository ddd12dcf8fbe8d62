import { performance } from 'node:perf_hooks';
import type { Dispatcher } from 'undici';
import { Pool } from './http-pool.js';
import type { WebhookConfig } from '../config/types.js';
import { classifyError, classifyResponse, errorCode, type Outcome, type ResponseHeaders, type RetryOutcome } from './policy.js';
import { withDefaultCas } from '../util/certificates.js';
import { decodeSecret, sign } from './sign.js';
import { redactSecrets } from '../observability/redact.js';
import { RESERVED_HEADERS } from './headers.js';
import { createHash } from 'node:crypto';
import { joinBatch, type PayloadFormat } from './formats.js';
import type { AttemptDetail, Sink, SinkCheck, SinkMessage, SinkResult } from './sink.js';
import { checkWebhookEndpoint } from './webhook-check.js';

/** One delivery attempt's input: the message id (`webhook-id`) and the payload from formats.ts. */
export interface SendInput {
  readonly eventId: string;
  readonly body: string;
  /** Default application/json. */
  readonly contentType?: string;
  /** The format's own headers (binary CloudEvents' ce-*), lower case. */
  readonly headers?: Readonly<Record<string, string>>;
}

export type SendResult = Outcome & { durationMs: number; detail?: AttemptDetail };

export interface WebhookClientOptions {
  /** Clock for `webhook-timestamp`, ms. Default Date.now. */
  readonly now?: () => number;
  /**
   * Bytes of every response body to hand back in the result (`detail.responseBody`),
   * for the attempt log. Default 0: only a non-2xx body's start, for the error message.
   */
  readonly keepResponseBytes?: number;
  /** Whether to keep a 2xx answer's body too (the attempt log would use it); default always. */
  readonly keepOkResponse?: () => boolean;
}

/** Bytes of a non-2xx body kept for the error message. */
const ERROR_BODY_BYTES = 512;
/**
 * Bytes of a response body read to the end so the connection can be reused.
 * Webhook answers are tiny; a bigger one is cut off (closing that socket)
 * rather than read into memory.
 */
const MAX_DRAIN_BYTES = 64 * 1024;

const RESERVED = new Set<string>(RESERVED_HEADERS);

/**
 * Sends webhook POSTs to one URL over a keep-alive undici Pool for its origin.
 *
 * `send` never throws for an HTTP or transport problem: every attempt ends in
 * an Outcome (policy.ts), with its duration. Redirects are not followed. Each
 * attempt is bounded by `webhook.timeout` as a whole (connect, headers, body),
 * and the response body is always consumed or destroyed so no socket leaks.
 */
export class WebhookClient {
  /** The URL without credentials: safe to log. */
  readonly url: string;

  readonly #pool: Pool;
  readonly #path: string;
  /** Every request's fixed headers, as undici's flat [name, value, …] list. */
  readonly #headerList: readonly string[];
  /** Attempts in progress, for the caller's signal to cancel. */
  readonly #inFlight = new Set<Attempt>();
  readonly #watched = new WeakSet<AbortSignal>();
  /** What every attempt needs of its client. */
  readonly #context: AttemptContext = {
    timeoutMs: () => this.#timeoutMs,
    keepBytes: (ok) => (ok && this.#keepOk !== undefined && !this.#keepOk() ? 0 : this.#keepResponseBytes),
    now: () => this.#now(),
    failure: (err, timedOut) => this.#failure(err, timedOut),
    settled: (attempt) => this.#inFlight.delete(attempt),
  };
  /** One timer for every attempt's deadline: the oldest attempt's (all share webhook.timeout). */
  #deadlineTimer: NodeJS.Timeout | undefined;
  readonly #secrets: readonly string[];
  /** What an error message must not repeat: the credentials we send, and the signing secrets. */
  readonly #credentials: readonly string[];
  readonly #timeoutMs: number;
  readonly #now: () => number;
  readonly #keepResponseBytes: number;
  readonly #keepOk: (() => boolean) | undefined;

  constructor(cfg: WebhookConfig, poolSize: number, version: string, opts: WebhookClientOptions = {}) {
    let url: URL;
    try {
      url = new URL(cfg.url);
    } catch {
      // The message of URL's own error repeats the input, credentials included.
      throw new Error('webhook.url is not a valid absolute URL (expected http://… or https://…)');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new Error(`webhook.url must use http or https, got ${url.protocol.replace(/:$/, '')}`);
    }

    const headers: Record<string, string> = { 'user-agent': `app-db-listener/${version}` };
    const urlPassword = url.password === '' ? [] : [url.password, decodeURIComponent(url.password)];
    if (url.username !== '' || url.password !== '') {
      const user = decodeURIComponent(url.username);
      const password = decodeURIComponent(url.password);
      headers.authorization = 'Basic ' + Buffer.from(`${user}:${password}`, 'utf8').toString('base64');
      url.username = '';
      url.password = '';
    }
    // Configured headers win over user-agent and the URL's credentials (an
    // explicit `authorization: Bearer …` is the user's choice), never over
    // RESERVED_HEADERS.
    for (const [name, value] of Object.entries(cfg.headers)) {
      const key = name.toLowerCase();
      if (!RESERVED.has(key) && !key.startsWith('ce-')) headers[key] = value;
    }

    // Fail at start, not on every event, when a secret cannot be decoded.
    for (const secret of cfg.secrets) decodeSecret(secret);

    url.hash = '';
    this.url = url.href;
    this.#path = url.pathname + url.search;
    this.#headerList = Object.entries(headers).flat();
    this.#secrets = [...cfg.secrets];
    const authorization = headers.authorization === undefined ? [] : [headers.authorization, headers.authorization.replace(/^\S+\s+/, '')];
    this.#credentials = [...urlPassword, ...authorization, ...cfg.secrets, ...cfg.secrets.map((s) => s.replace(/^whsec_/, ''))];
    this.#timeoutMs = Math.max(1, Math.round(cfg.timeout * 1000));
    this.#now = opts.now ?? Date.now;
    this.#keepResponseBytes = Math.max(0, Math.floor(opts.keepResponseBytes ?? 0));
    this.#keepOk = opts.keepOkResponse;

    this.#pool = new Pool(url.origin, {
      connections: Math.max(1, poolSize),
      // One request per connection at a time: a slow answer must not hold up
      // the requests queued behind it on the same socket.
      pipelining: 1,
      connectTimeout: this.#timeoutMs,
      headersTimeout: this.#timeoutMs,
      bodyTimeout: this.#timeoutMs,
      // ca_file adds to what Node trusts (its CAs and NODE_EXTRA_CA_CERTS), never replaces it.
      ...(cfg.ca_file !== undefined ? { connect: { ca: withDefaultCas(cfg.ca_file, 'webhook.ca_file') } } : {}),
    });
  }

  /**
   * One attempt. `signal` lets the caller cancel (shutdown); a cancelled attempt
   * is a `retry` with error `ABORTED: …` and endpointFailure false.
   */
  async send(e: SendInput, signal?: AbortSignal): Promise<SendResult> {
    const started = performance.now();
    const sent: AttemptTrace = { headers: undefined, body: undefined };
    const attempt = signal?.aborted ? aborted(signal) : await this.#attempt(e, signal, sent);
    // A receiver's answer may repeat what we sent it: its error text is stored and logged.
    const outcome = attempt.kind === 'success' ? attempt : { ...attempt, error: redactSecrets(attempt.error, this.#credentials) };
    const durationMs = Math.round((performance.now() - started) * 1000) / 1000;
    if (this.#keepResponseBytes === 0) return { ...outcome, durationMs };
    // For the attempt log: what was sent (redacted when it is written, off this path) and the answer's start.
    const detail: AttemptDetail = {
      address: this.url,
      ...(sent.headers !== undefined ? { requestHeaders: sent.headers } : {}),
      ...(sent.body !== undefined ? { responseBody: redactSecrets(sent.body, this.#credentials) } : {}),
    };
    return { ...outcome, durationMs, detail };
  }

  /**
   * The request, on undici's dispatch API: the response is handled as it arrives,
   * with no stream, async iterator or AbortController per attempt (each cost a few
   * kilobytes of garbage per event, and the garbage is what grew the heap under load).
   * One timer serves every attempt's deadline, and the caller's signal has one
   * listener for all the attempts it may cancel.
   */
  #attempt(e: SendInput, signal: AbortSignal | undefined, sent: AttemptTrace): Promise<Outcome> {
    const timestamp = Math.floor(this.#now() / 1000);
    const headers = [...this.#headerList, 'content-type', e.contentType ?? 'application/json', 'webhook-id', e.eventId, 'webhook-timestamp', String(timestamp)];
    if (e.headers) for (const name in e.headers) headers.push(name, e.headers[name]!);
    if (this.#secrets.length > 0) headers.push('webhook-signature', sign(e.eventId, timestamp, e.body, this.#secrets));
    if (this.#keepResponseBytes > 0) sent.headers = headers;
    return new Promise<Outcome>((resolve) => {
      const attempt = new Attempt(this.#context, signal, resolve, sent);
      if (signal) this.#watch(signal);
      this.#inFlight.add(attempt);
      this.#deadlineTimer ??= setTimeout(this.#expire, this.#timeoutMs).unref();
      try {
        this.#pool.dispatch(
          { method: 'POST', path: this.#path, headers, body: e.body, headersTimeout: this.#timeoutMs, bodyTimeout: this.#timeoutMs },
          attempt,
        );
      } catch (err) {
        attempt.onResponseError(undefined, err as Error);
      }
    });
  }

  /**
   * Ends the attempts past their deadline, then waits for the next one. Attempts are
   * kept in the order they started, which is the order of their deadlines.
   */
  readonly #expire = (): void => {
    this.#deadlineTimer = undefined;
    const now = performance.now();
    for (const attempt of this.#inFlight) {
      if (attempt.deadline > now) {
        // Unreferenced: an attempt in progress keeps the process alive by its socket.
        this.#deadlineTimer = setTimeout(this.#expire, attempt.deadline - now).unref();
        return;
      }
      attempt.expire();
    }
  };

  #stopDeadlines(): void {
    clearTimeout(this.#deadlineTimer);
    this.#deadlineTimer = undefined;
  }

  /** One listener per caller signal: when it aborts, every attempt it was given to ends. */
  #watch(signal: AbortSignal): void {
    if (this.#watched.has(signal)) return;
    this.#watched.add(signal);
    signal.addEventListener(
      'abort',
      () => {
        for (const attempt of this.#inFlight) if (attempt.signal === signal) attempt.cancel();
      },
      { once: true },
    );
  }

  /** Describes a failed attempt: our own deadline said plainly, anything else classified. */
  #failure(err: unknown, timedOut: boolean): RetryOutcome {
    // Our deadline, whichever timer noticed it first (undici's headers/body
    // timeouts use the same value): say so plainly.
    if (timedOut) {
      const code = errorCode(err);
      const which = code === 'TIMEOUT' ? '' : ` (${code})`;
      return {
        kind: 'retry',
        error: `TIMEOUT: no complete response within ${this.#timeoutMs} ms${which}`,
        endpointFailure: true,
      };
    }
    return classifyError(err);
  }

  /** Waits for in-flight requests, then closes the connections. */
  async close(): Promise<void> {
    // The deadline timer stays: requests still in flight keep their webhook.timeout (the
    // timer is unreferenced, so it never holds the process up by itself).
    if (!this.#pool.closed && !this.#pool.destroyed) await this.#pool.close();
  }

  /** Aborts in-flight requests and closes the connections now. */
  async destroy(): Promise<void> {
    this.#stopDeadlines();
    if (!this.#pool.destroyed) await this.#pool.destroy();
  }
}

function aborted(signal: AbortSignal): RetryOutcome {
  const reason: unknown = signal.reason;
  const detail = reason instanceof Error ? reason.message : String(reason ?? 'aborted');
  return { kind: 'retry', error: `ABORTED: ${detail}`, endpointFailure: false };
}

/**
 * One attempt, as undici's dispatch handler: collects the status, the headers and
 * (for a non-2xx answer) the first bytes of the body, and settles exactly once.
 */
interface AttemptContext {
  timeoutMs(): number;
  /** Bytes of a response body to keep for the attempt log (0: none); `ok`: a 2xx answer. */
  keepBytes(ok: boolean): number;
  now(): number;
  failure(err: unknown, timedOut: boolean): RetryOutcome;
  settled(attempt: Attempt): void;
}

class Attempt implements Dispatcher.DispatchHandler {
  #controller: Dispatcher.DispatchController | undefined;
  /** An abort that came before undici started the request (still queued for a connection). */
  #pendingAbort: Error | undefined;
  #status = 0;
  #headers: ResponseHeaders = {};
  #keep = 0;
  #keepForLog = 0;
  #kept: Buffer[] = [];
  #keptBytes = 0;
  #received = 0;
  #timedOut = false;
  #done = false;
  /** performance.now() past which the attempt is given up. */
  readonly deadline: number;

  constructor(
    private readonly client: AttemptContext,
    readonly signal: AbortSignal | undefined,
    private readonly resolve: (o: Outcome) => void,
    /** Where the start of the response body goes, for the attempt log. */
    private readonly trace?: AttemptTrace,
  ) {
    this.deadline = performance.now() + client.timeoutMs();
  }

  /** webhook.timeout ran out. */
  expire(): void {
    if (this.#done) return;
    this.#timedOut = true;
    this.#abort(new DOMException('webhook.timeout expired', 'TimeoutError'));
  }

  /** The caller's signal aborted (shutdown). */
  cancel(): void {
    this.#abort(this.signal?.reason instanceof Error ? this.signal.reason : new DOMException('aborted', 'AbortError'));
  }

  #abort(reason: Error): void {
    if (this.#done) return;
    if (this.#controller) {
      this.#controller.abort(reason); // undici answers with onResponseError
      return;
    }
    this.#pendingAbort = reason;
    this.onResponseError(undefined, reason);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#pendingAbort) controller.abort(this.#pendingAbort);
  }

  onResponseStart(_c: Dispatcher.DispatchController, statusCode: number, headers: ResponseHeaders): void {
    if (statusCode < 200) return; // 1xx: the answer is still to come
    this.#status = statusCode;
    this.#headers = headers;
    this.#keepForLog = this.client.keepBytes(isOk(statusCode));
    this.#keep = Math.max(isOk(statusCode) ? 0 : ERROR_BODY_BYTES, this.#keepForLog);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.#received += chunk.length;
    if (this.#keptBytes < this.#keep) {
      const part = Buffer.from(chunk.subarray(0, this.#keep - this.#keptBytes));
      this.#kept.push(part);
      this.#keptBytes += part.length;
    }
    if (this.#received > MAX_DRAIN_BYTES) {
      // Not worth reading further: the status is the answer; the connection is closed.
      this.#answer();
      controller.abort(new Error('response body too large to read'));
    }
  }

  onResponseEnd(): void {
    this.#answer();
  }

  onResponseError(_c: Dispatcher.DispatchController | undefined, err: Error): void {
    if (this.#done) return;
    if (this.signal?.aborted) return this.#finish(aborted(this.signal));
    if (this.#status !== 0 && isOk(this.#status)) {
      // A 2xx whose body is cut off is not a complete answer: retry (at least once
      // prefers a duplicate to a guess).
      const failed = this.client.failure(err, this.#timedOut);
      return this.#finish({ ...failed, error: `${failed.error} (after HTTP ${this.#status} headers, body incomplete)`, status: this.#status });
    }
    // A non-2xx status already says what the receiver thinks; the missing body changes nothing.
    if (this.#status !== 0) return this.#finish(classifyResponse(this.#status, this.#headers, { now: this.client.now() }));
    this.#finish(this.client.failure(err, this.#timedOut));
  }

  #answer(): void {
    if (this.#done) return;
    const kept = this.#kept.length === 0 ? undefined : Buffer.concat(this.#kept);
    if (this.trace && kept && this.#keepForLog > 0) this.trace.body = new TextDecoder().decode(kept.subarray(0, this.#keepForLog));
    const outcome = classifyResponse(this.#status, this.#headers, {
      body: kept === undefined || isOk(this.#status) ? undefined : keptText(kept.subarray(0, ERROR_BODY_BYTES)),
      now: this.client.now(),
    });
    // With pipelining 1, undici hands a finished socket back to the pool one
    // event-loop turn after the response ends: a setImmediate its HTTP/1 client
    // queues right after this callback returns (to catch servers that close despite
    // keep-alive). Answering after that one (a microtask runs once this callback has
    // returned, and its immediate comes next) lets the caller's next send reuse the
    // socket instead of opening another: sequential sends stay on one connection.
    this.#done = true;
    queueMicrotask(() =>
      setImmediate(() => {
        this.client.settled(this);
        this.resolve(outcome);
      }),
    );
  }

  #finish(outcome: Outcome): void {
    if (this.#done) return;
    this.#done = true;
    this.client.settled(this);
    this.resolve(outcome);
  }
}

function isOk(status: number): boolean {
  return status >= 200 && status < 300;
}

/** What one attempt sent, and the start of its answer, for the attempt log. */
interface AttemptTrace {
  headers: readonly string[] | undefined;
  body: string | undefined;
}

/** The kept start of a body as one line of text, for an error message. */
function keptText(kept: Buffer): string | undefined {
  // A cut in the middle of a UTF-8 sequence decodes as U+FFFD, which is fine
  // for a log line; control characters would split one, so they become spaces.
  const text = new TextDecoder().decode(kept);
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim() || undefined;
}

/**
 * The webhook as a Sink: one POST per message, or, for a batch, one POST whose body
 * is the JSON array of the messages' bodies (formats.ts joinBatch), signed as one
 * body; the answer is every message's outcome. A batch's `webhook-id` is derived
 * from its event ids, so a batch re-sent as it was keeps its id (receivers dedupe
 * on it, or on the event ids inside).
 */
export class WebhookSink implements Sink {
  readonly description: string;

  constructor(
    private readonly client: WebhookClient,
    private readonly format: PayloadFormat,
    /** The destination batches: every request is an array, even of one event (receivers expect one shape). */
    private readonly batched: boolean,
    /** What check() probes, and where it is in the config (for the fixes). */
    private readonly checked: { readonly config: WebhookConfig; readonly key: string },
  ) {
    this.description = client.url;
  }

  async send(messages: readonly SinkMessage[], signal?: AbortSignal): Promise<SinkResult[]> {
    if (messages.length === 1 && !this.batched) return [await this.client.send(messages[0]!, signal)];
    const batch = joinBatch(this.format, messages);
    const id = 'batch_' + createHash('sha256').update(messages.map((m) => m.eventId).join(',')).digest('hex').slice(0, 24);
    const result = await this.client.send({ eventId: id, body: batch.body, contentType: batch.contentType, headers: batch.headers }, signal);
    return messages.map(() => result);
  }

  check(): Promise<SinkCheck> {
    return checkWebhookEndpoint(this.checked.config, this.checked.key);
  }

  close(): Promise<void> {
    return this.client.close();
  }
}
