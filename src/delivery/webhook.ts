import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';
import type { WebhookConfig } from '../config/types.js';
import { classifyError, classifyResponse, errorCode, type Outcome, type RetryOutcome } from './policy.js';
import { withDefaultCas } from '../util/certificates.js';
import { decodeSecret, sign } from './sign.js';
import { redactSecrets } from '../observability/redact.js';

/** One delivery attempt's input: the journal event id and the body from buildBody. */
export interface SendInput {
  readonly eventId: string;
  readonly body: string;
}

export type SendResult = Outcome & { durationMs: number };

export interface WebhookClientOptions {
  /** Clock for `webhook-timestamp`, ms. Default Date.now. */
  readonly now?: () => number;
}

/** Bytes of a non-2xx body kept for the error message. */
const ERROR_BODY_BYTES = 512;
/**
 * Bytes of a response body read to the end so the connection can be reused.
 * Webhook answers are tiny; a bigger one is cut off (closing that socket)
 * rather than read into memory.
 */
const MAX_DRAIN_BYTES = 64 * 1024;

/**
 * Headers the configuration may not replace: they frame the request or carry
 * the Standard Webhooks signature, so a stray `headers:` entry must not break
 * delivery or verification.
 */
const RESERVED_HEADERS = new Set([
  'content-type',
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'host',
  'webhook-id',
  'webhook-timestamp',
  'webhook-signature',
]);

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
  readonly #headers: Readonly<Record<string, string>>;
  readonly #secrets: readonly string[];
  /** What an error message must not repeat: the credentials we send, and the signing secrets. */
  readonly #credentials: readonly string[];
  readonly #timeoutMs: number;
  readonly #now: () => number;

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
      if (!RESERVED_HEADERS.has(key)) headers[key] = value;
    }

    // Fail at start, not on every event, when a secret cannot be decoded.
    for (const secret of cfg.secrets) decodeSecret(secret);

    url.hash = '';
    this.url = url.href;
    this.#path = url.pathname + url.search;
    this.#headers = headers;
    this.#secrets = [...cfg.secrets];
    const authorization = headers.authorization === undefined ? [] : [headers.authorization, headers.authorization.replace(/^\S+\s+/, '')];
    this.#credentials = [...urlPassword, ...authorization, ...cfg.secrets, ...cfg.secrets.map((s) => s.replace(/^whsec_/, ''))];
    this.#timeoutMs = Math.max(1, Math.round(cfg.timeout * 1000));
    this.#now = opts.now ?? Date.now;

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
    const attempt = await this.#attempt(e, signal);
    // A receiver's answer may repeat what we sent it: its error text is stored and logged.
    const outcome = attempt.kind === 'success' ? attempt : { ...attempt, error: redactSecrets(attempt.error, this.#credentials) };
    return { ...outcome, durationMs: Math.round((performance.now() - started) * 1000) / 1000 };
  }

  async #attempt(e: SendInput, signal: AbortSignal | undefined): Promise<Outcome> {
    if (signal?.aborted) return aborted(signal);
    // One controller per attempt, its timer cleared and its listener on the
    // caller's (long-lived) signal removed when the attempt ends. AbortSignal.timeout
    // and AbortSignal.any would keep every attempt's signal alive until the timer
    // fires or the caller's signal is collected: memory growing with throughput.
    const controller = new AbortController();
    const deadline = { expired: false };
    const timer = setTimeout(() => {
      deadline.expired = true;
      controller.abort(new DOMException('webhook.timeout expired', 'TimeoutError'));
    }, this.#timeoutMs);
    const onCallerAbort = () => controller.abort(signal?.reason);
    signal?.addEventListener('abort', onCallerAbort, { once: true });
    try {
      return await this.#request(e, signal, controller.signal, deadline);
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onCallerAbort);
    }
  }

  async #request(
    e: SendInput,
    signal: AbortSignal | undefined,
    combined: AbortSignal,
    timeout: { readonly expired: boolean },
  ): Promise<Outcome> {

    const timestamp = Math.floor(this.#now() / 1000);
    const headers: Record<string, string> = {
      ...this.#headers,
      'content-type': 'application/json',
      'webhook-id': e.eventId,
      'webhook-timestamp': String(timestamp),
    };
    if (this.#secrets.length > 0) headers['webhook-signature'] = sign(e.eventId, timestamp, e.body, this.#secrets);

    try {
      const res = await this.#pool.request({
        method: 'POST',
        path: this.#path,
        headers,
        body: e.body,
        signal: combined,
        headersTimeout: this.#timeoutMs,
        bodyTimeout: this.#timeoutMs,
      });
      const ok = res.statusCode >= 200 && res.statusCode < 300;
      let snippet: string | undefined;
      try {
        snippet = await readBody(res.body, ok ? 0 : ERROR_BODY_BYTES);
      } catch (err) {
        if (signal?.aborted) return aborted(signal);
        // A 2xx whose body is cut off is not a complete answer: retry (at
        // least once prefers a duplicate to a guess). A non-2xx status already
        // says what the receiver thinks; the missing body changes nothing.
        if (ok) {
          const failed = this.#failure(err, timeout);
          const error = `${failed.error} (after HTTP ${res.statusCode} headers, body incomplete)`;
          return { ...failed, error, status: res.statusCode };
        }
      }
      // With pipelining 1, undici hands a finished socket back to the pool one
      // event-loop turn after the response ends (a setImmediate in its HTTP/1
      // client, to catch servers that close despite keep-alive). Yielding that
      // turn here lets the caller's next send reuse the socket instead of
      // opening another one: sequential sends stay on one connection.
      await new Promise((resolve) => setImmediate(resolve));
      return classifyResponse(res.statusCode, res.headers, { body: snippet, now: this.#now() });
    } catch (err) {
      if (signal?.aborted) return aborted(signal);
      return this.#failure(err, timeout);
    }
  }

  #failure(err: unknown, timeout: { readonly expired: boolean }): RetryOutcome {
    // Our deadline, whichever timer noticed it first (undici's headers/body
    // timeouts use the same value): say so plainly.
    if (timeout.expired) {
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
    if (!this.#pool.closed && !this.#pool.destroyed) await this.#pool.close();
  }

  /** Aborts in-flight requests and closes the connections now. */
  async destroy(): Promise<void> {
    if (!this.#pool.destroyed) await this.#pool.destroy();
  }
}

function aborted(signal: AbortSignal): RetryOutcome {
  const reason: unknown = signal.reason;
  const detail = reason instanceof Error ? reason.message : String(reason ?? 'aborted');
  return { kind: 'retry', error: `ABORTED: ${detail}`, endpointFailure: false };
}

/**
 * Reads a response body to its end, keeping the first `keep` bytes as text for
 * an error message. Past MAX_DRAIN_BYTES the stream is destroyed instead
 * (leaving a for-await loop early destroys it), which closes that connection.
 */
async function readBody(body: AsyncIterable<Buffer> & { destroy(): unknown }, keep: number): Promise<string | undefined> {
  const kept: Buffer[] = [];
  let keptBytes = 0;
  let total = 0;
  for await (const chunk of body) {
    total += chunk.length;
    if (keptBytes < keep) {
      const part = Buffer.from(chunk.subarray(0, keep - keptBytes));
      kept.push(part);
      keptBytes += part.length;
    }
    if (total > MAX_DRAIN_BYTES) break;
  }
  if (keptBytes === 0) return undefined;
  // A cut in the middle of a UTF-8 sequence decodes as U+FFFD, which is fine
  // for a log line; control characters would split one, so they become spaces.
  const text = new TextDecoder().decode(Buffer.concat(kept));
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim() || undefined;
}
