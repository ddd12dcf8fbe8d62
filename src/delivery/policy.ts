import { STATUS_CODES } from 'node:http';

/**
 * What one delivery attempt came to.
 *
 * - `success`: the receiver answered 2xx; the event is delivered.
 * - `retry`: try again later. `endpointFailure` says the endpoint itself looks
 *   unwell (unreachable, timing out, 5xx, 429): these feed the circuit breaker
 *   (see health.ts) and, while the endpoint is suspect or down, must not use up
 *   the event's retries. `retryAfterMs` is the receiver's own Retry-After.
 * - `dead`: the receiver understood and refused (4xx other than 408/425/429);
 *   retrying the same bytes cannot help, the event goes to the dead letters.
 */
export type Outcome =
  | { kind: 'success'; status: number }
  | { kind: 'retry'; status?: number; error: string; endpointFailure: boolean; retryAfterMs?: number }
  | { kind: 'dead'; status?: number; error: string };

/** The retry branch of Outcome (what classifyError returns). */
export type RetryOutcome = Extract<Outcome, { kind: 'retry' }>;

/** Response headers as undici gives them (lower-case names); lookups are case-insensitive anyway. */
export type ResponseHeaders = Readonly<Record<string, string | string[] | undefined>>;

/** Longest wait we accept from a Retry-After header: beyond it we would rather probe again. */
export const MAX_RETRY_AFTER_MS = 60 * 60 * 1000;

/** Statuses that mean "not now" rather than "never": request timeout, too early, too many requests. */
const RETRYABLE_4XX = new Set([408, 425, 429]);

function header(headers: ResponseHeaders, name: string): string | undefined {
  let value = headers[name];
  if (value === undefined) {
    const wanted = name.toLowerCase();
    for (const [key, v] of Object.entries(headers)) {
      if (key.toLowerCase() === wanted) {
        value = v;
        break;
      }
    }
  }
  return Array.isArray(value) ? value[0] : value;
}

/** The three date forms RFC 9110 allows (IMF-fixdate, RFC 850, asctime), loosely. */
const HTTP_DATE = /^[A-Za-z]{3,9},? +[0-9A-Za-z -]+ \d{1,2}:\d{2}:\d{2}( +\d{4}| +GMT)$/;

/**
 * Parses Retry-After: either delay-seconds (digits only) or an HTTP date,
 * relative to `now`. Anything else (negative, fractional, garbage, a date in
 * the past) is ignored: the header is advice, our own backoff still applies.
 * Capped at one hour so a hostile or buggy value cannot park events for days.
 */
export function parseRetryAfter(value: string | undefined, now: number = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Math.min(Number(v) * 1000, MAX_RETRY_AFTER_MS);
  if (!HTTP_DATE.test(v)) return undefined;
  const at = Date.parse(v);
  if (Number.isNaN(at) || at <= now) return undefined;
  return Math.min(at - now, MAX_RETRY_AFTER_MS);
}

function describe(status: number, body: string | undefined): string {
  const reason = STATUS_CODES[status];
  const head = reason ? `HTTP ${status} ${reason}` : `HTTP ${status}`;
  return body ? `${head}: ${body}` : head;
}

/**
 * Classifies a complete HTTP response.
 *
 * - 2xx: success.
 * - 3xx: retry, not an endpoint failure. Redirects are never followed: the
 *   original followed them and a 301/302/303 turned the POST into a GET that
 *   dropped the body. The endpoint did answer, so it is not an outage; the
 *   retries run out and the event is dead-lettered unless the URL is fixed.
 * - 408, 425, 429, 5xx (and anything outside 100..599): retry, endpoint failure,
 *   honouring Retry-After.
 * - other 4xx: dead.
 *
 * `body` is the start of the response body, for the error message only.
 */
export function classifyResponse(
  status: number,
  headers: ResponseHeaders,
  opts: { body?: string; now?: number } = {},
): Outcome {
  if (status >= 200 && status < 300) return { kind: 'success', status };
  if (status >= 300 && status < 400) {
    const location = header(headers, 'location');
    const where = location ? `redirect to ${location.slice(0, 512)} not followed` : 'redirect not followed';
    return { kind: 'retry', status, error: describe(status, where), endpointFailure: false };
  }
  if (status >= 400 && status < 500 && !RETRYABLE_4XX.has(status)) {
    return { kind: 'dead', status, error: describe(status, opts.body) };
  }
  const outcome: Outcome = { kind: 'retry', status, error: describe(status, opts.body), endpointFailure: true };
  const retryAfterMs = parseRetryAfter(header(headers, 'retry-after'), opts.now);
  if (retryAfterMs !== undefined) outcome.retryAfterMs = retryAfterMs;
  return outcome;
}

/**
 * Error codes that say the failure is on our side (the client was closed, the
 * request was malformed, the caller cancelled): retried, but they say nothing
 * about the endpoint's health, so they never open the circuit breaker.
 */
const LOCAL_CODES = new Set([
  'ABORTED',
  'UND_ERR_ABORTED',
  'UND_ERR_CLOSED',
  'UND_ERR_DESTROYED',
  'UND_ERR_INVALID_ARG',
  'UND_ERR_INVALID_RETURN_VALUE',
  'UND_ERR_NOT_SUPPORTED',
  'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH',
]);

function ownCode(err: object): string | undefined {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && code !== '' ? code : undefined;
}

/**
 * The stable code of a transport error: undici's `UND_ERR_*`, Node's system and
 * TLS codes (`ECONNREFUSED`, `ENOTFOUND`, `CERT_HAS_EXPIRED`, …), `TIMEOUT` for
 * an AbortSignal.timeout, `ABORTED` for a caller's abort. Codes, not messages,
 * because messages change between versions. Looks through AggregateError (Node's
 * happy-eyeballs connect fails with one per address) and `cause`.
 */
export function errorCode(err: unknown): string {
  if (typeof err !== 'object' || err === null) return 'UNKNOWN';
  const name = (err as { name?: unknown }).name;
  // DOMException carries a numeric legacy `code`; its name is what matters.
  if (name === 'TimeoutError') return 'TIMEOUT';
  if (name === 'AbortError' && ownCode(err) === undefined) return 'ABORTED';
  const own = ownCode(err);
  if (own !== undefined) return own;
  const inner = (err as { errors?: unknown }).errors;
  if (Array.isArray(inner) && inner.length > 0) {
    const code = errorCode(inner[0]);
    if (code !== 'UNKNOWN') return code;
  }
  const cause = (err as { cause?: unknown }).cause;
  if (cause !== undefined && cause !== err) {
    const code = errorCode(cause);
    if (code !== 'UNKNOWN') return code;
  }
  return typeof name === 'string' && name !== '' && name !== 'Error' ? name : 'UNKNOWN';
}

/** One line: OpenSSL messages end in newlines, which would split a text log line. */
function errorMessage(err: unknown): string {
  return rawMessage(err).replace(/\s+/g, ' ').trim();
}

function rawMessage(err: unknown): string {
  if (typeof err !== 'object' || err === null) return String(err);
  const message = (err as { message?: unknown }).message;
  if (typeof message === 'string' && message !== '') return message;
  const inner = (err as { errors?: unknown }).errors;
  if (Array.isArray(inner) && inner.length > 0) return inner.map(rawMessage).join('; ');
  return String(err);
}

/**
 * Classifies an error thrown while sending or reading the response. Every
 * transport error is retried: timeouts, refused or reset connections, DNS
 * failures, a socket closed mid-response, TLS failures, malformed responses.
 * They count as endpoint failures unless the code is one of ours (LOCAL_CODES,
 * Node's ERR_INVALID_* argument errors) or the error has no code at all (a bug
 * here, not a sign the endpoint is down). The error string is `<CODE>: <message>`.
 */
export function classifyError(err: unknown): RetryOutcome {
  const code = errorCode(err);
  const message = errorMessage(err);
  const local =
    LOCAL_CODES.has(code) || code.startsWith('ERR_INVALID_') || code === 'UNKNOWN' || !/^[A-Z0-9_]+$/.test(code);
  return { kind: 'retry', error: `${code}: ${message}`, endpointFailure: !local };
}

/**
 * Delay before the next attempt, in milliseconds. `attempt` is the number of
 * attempts made so far (1 after the first failure); `cfg` is in seconds.
 *
 * - Exponential: retry_delay * 2^(attempt-1), capped at retry_max_delay. With the
 *   defaults (5 s, cap 300 s) that is 5, 10, 20, 40 s…: fast enough for a blip,
 *   and a long outage settles at one try every 5 minutes instead of hammering.
 * - ±20% jitter, so events that failed together (an outage) do not all come
 *   back in the same millisecond when the endpoint recovers. Never above the cap,
 *   never negative.
 * - retry_delay 0 means "no backoff" (tests, or a receiver that wants it): 0.
 * - A Retry-After from the receiver wins when it is longer than our delay; it
 *   is honoured up to max(retry_max_delay, 1 hour), because a server that asks
 *   for ten minutes is better obeyed than retried every five.
 */
export function retryDelayMs(
  attempt: number,
  cfg: { readonly retry_delay: number; readonly retry_max_delay: number },
  random: () => number = Math.random,
  retryAfterMs?: number,
): number {
  const capMs = Math.max(0, cfg.retry_max_delay * 1000);
  let delay = 0;
  if (cfg.retry_delay > 0) {
    const exponent = Math.max(0, Math.floor(attempt) - 1);
    const base = Math.min(capMs, cfg.retry_delay * 1000 * 2 ** exponent);
    const jitter = 0.8 + 0.4 * Math.min(1, Math.max(0, random()));
    delay = Math.round(Math.min(capMs, base * jitter));
  }
  if (retryAfterMs !== undefined && retryAfterMs > delay) {
    delay = Math.min(retryAfterMs, Math.max(capMs, MAX_RETRY_AFTER_MS));
  }
  return Math.max(0, delay);
}

/**
 * True when an event has used its attempts: the first attempt plus
 * `retryCount` retries. `attempts` counts the attempts made so far.
 */
export function isExhausted(attempts: number, retryCount: number): boolean {
  return attempts > retryCount;
}
