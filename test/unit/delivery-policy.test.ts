import { errors } from 'undici';
import { describe, expect, it } from 'vitest';
import {
  classifyError,
  classifyResponse,
  errorCode,
  isExhausted,
  MAX_RETRY_AFTER_MS,
  parseRetryAfter,
  retryDelayMs,
  type Outcome,
} from '../../src/delivery/policy.js';

const NOW = Date.parse('2026-11-26T18:00:00Z');

describe('classifyResponse', () => {
  it.each<[number, Partial<Outcome>]>([
    [200, { kind: 'success', status: 200 }],
    [201, { kind: 'success', status: 201 }],
    [202, { kind: 'success', status: 202 }],
    [204, { kind: 'success', status: 204 }],
    [299, { kind: 'success', status: 299 }],
    [301, { kind: 'retry', status: 301, endpointFailure: false }],
    [302, { kind: 'retry', status: 302, endpointFailure: false }],
    [303, { kind: 'retry', status: 303, endpointFailure: false }],
    [307, { kind: 'retry', status: 307, endpointFailure: false }],
    [308, { kind: 'retry', status: 308, endpointFailure: false }],
    [304, { kind: 'retry', status: 304, endpointFailure: false }],
    [400, { kind: 'dead', status: 400 }],
    [401, { kind: 'dead', status: 401 }],
    [403, { kind: 'dead', status: 403 }],
    [404, { kind: 'dead', status: 404 }],
    [409, { kind: 'dead', status: 409 }],
    [410, { kind: 'dead', status: 410 }],
    [413, { kind: 'dead', status: 413 }],
    [422, { kind: 'dead', status: 422 }],
    [408, { kind: 'retry', status: 408, endpointFailure: true }],
    [425, { kind: 'retry', status: 425, endpointFailure: true }],
    [429, { kind: 'retry', status: 429, endpointFailure: true }],
    [500, { kind: 'retry', status: 500, endpointFailure: true }],
    [502, { kind: 'retry', status: 502, endpointFailure: true }],
    [503, { kind: 'retry', status: 503, endpointFailure: true }],
    [504, { kind: 'retry', status: 504, endpointFailure: true }],
    [599, { kind: 'retry', status: 599, endpointFailure: true }],
    [199, { kind: 'retry', status: 199, endpointFailure: true }],
    [600, { kind: 'retry', status: 600, endpointFailure: true }],
  ])('%i -> %o', (status, expected) => {
    const outcome = classifyResponse(status, {}, { now: NOW });
    expect(outcome).toMatchObject(expected);
    if (outcome.kind !== 'success') expect(outcome.error).toMatch(new RegExp(`^HTTP ${status}\\b`));
    if (outcome.kind === 'retry') expect(outcome.retryAfterMs).toBeUndefined();
  });

  it('names the redirect target and says it was not followed', () => {
    const outcome = classifyResponse(302, { location: 'https://elsewhere.example/hook' });
    expect(outcome).toEqual({
      kind: 'retry',
      status: 302,
      endpointFailure: false,
      error: 'HTTP 302 Found: redirect to https://elsewhere.example/hook not followed',
    });
    expect(classifyResponse(301, {})).toMatchObject({ error: 'HTTP 301 Moved Permanently: redirect not followed' });
  });

  it('puts the body excerpt in the error of 4xx and 5xx', () => {
    expect(classifyResponse(410, {}, { body: 'gone for good' })).toEqual({
      kind: 'dead',
      status: 410,
      error: 'HTTP 410 Gone: gone for good',
    });
    expect(classifyResponse(500, {}, { body: 'boom' })).toMatchObject({ error: 'HTTP 500 Internal Server Error: boom' });
  });

  it.each<[string, number, Record<string, string | string[]>, number | undefined]>([
    ['seconds', 503, { 'retry-after': '120' }, 120_000],
    ['zero seconds', 429, { 'retry-after': '0' }, 0],
    ['padded seconds', 503, { 'retry-after': ' 7 ' }, 7_000],
    ['seconds over an hour are capped', 503, { 'retry-after': '86400' }, MAX_RETRY_AFTER_MS],
    ['an HTTP date', 503, { 'retry-after': 'Thu, 26 Nov 2026 18:02:00 GMT' }, 120_000],
    ['an RFC 850 date', 503, { 'retry-after': 'Thursday, 26-Nov-26 18:00:30 GMT' }, 30_000],
    ['an asctime date', 503, { 'retry-after': 'Thu Nov 26 18:00:10 2026' }, 10_000],
    ['a date over an hour away is capped', 429, { 'retry-after': 'Fri, 27 Nov 2026 18:00:00 GMT' }, MAX_RETRY_AFTER_MS],
    ['a past date is ignored', 503, { 'retry-after': 'Wed, 25 Nov 2026 18:00:00 GMT' }, undefined],
    ['negative seconds are ignored', 503, { 'retry-after': '-5' }, undefined],
    ['fractional seconds are ignored', 503, { 'retry-after': '1.5' }, undefined],
    ['garbage is ignored', 503, { 'retry-after': 'soon' }, undefined],
    ['a bare number-like date is ignored', 503, { 'retry-after': '2026' + 'x' }, undefined],
    ['empty is ignored', 503, { 'retry-after': '' }, undefined],
    ['an array uses its first value', 503, { 'retry-after': ['3', '9'] }, 3_000],
    ['a mixed-case name is found', 503, { 'Retry-After': '4' }, 4_000],
    ['408 honours it', 408, { 'retry-after': '2' }, 2_000],
  ])('Retry-After: %s', (_name, status, headers, expected) => {
    const outcome = classifyResponse(status, headers, { now: NOW });
    expect(outcome.kind).toBe('retry');
    expect(outcome.kind === 'retry' ? outcome.retryAfterMs : 'not retry').toBe(expected);
  });

  it('ignores Retry-After on 3xx and 4xx dead answers', () => {
    expect(classifyResponse(302, { 'retry-after': '5' })).not.toHaveProperty('retryAfterMs');
    expect(classifyResponse(400, { 'retry-after': '5' })).not.toHaveProperty('retryAfterMs');
  });
});

describe('parseRetryAfter', () => {
  it('returns undefined without a header', () => {
    expect(parseRetryAfter(undefined, NOW)).toBeUndefined();
  });
});

function sysError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

describe('classifyError', () => {
  it.each<[string, unknown, string, boolean]>([
    // Timeouts
    ['AbortSignal.timeout', new DOMException('The operation was aborted due to timeout', 'TimeoutError'), 'TIMEOUT', true],
    ['undici headers timeout', new errors.HeadersTimeoutError(), 'UND_ERR_HEADERS_TIMEOUT', true],
    ['undici body timeout', new errors.BodyTimeoutError(), 'UND_ERR_BODY_TIMEOUT', true],
    ['undici connect timeout', new errors.ConnectTimeoutError(), 'UND_ERR_CONNECT_TIMEOUT', true],
    ['TCP timeout', sysError('ETIMEDOUT', 'connect ETIMEDOUT 10.0.0.1:443'), 'ETIMEDOUT', true],
    // Connection
    ['refused', sysError('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:9'), 'ECONNREFUSED', true],
    ['reset', sysError('ECONNRESET', 'read ECONNRESET'), 'ECONNRESET', true],
    ['broken pipe', sysError('EPIPE', 'write EPIPE'), 'EPIPE', true],
    ['host unreachable', sysError('EHOSTUNREACH', 'connect EHOSTUNREACH'), 'EHOSTUNREACH', true],
    ['network unreachable', sysError('ENETUNREACH', 'connect ENETUNREACH'), 'ENETUNREACH', true],
    ['socket closed mid-response', new errors.SocketError('other side closed'), 'UND_ERR_SOCKET', true],
    ['truncated body', new errors.ResponseContentLengthMismatchError(), 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH', true],
    ['malformed response', Object.assign(new errors.HTTPParserError('Expected HTTP/'), { code: 'HPE_INVALID_CONSTANT' }), 'HPE_INVALID_CONSTANT', true],
    ['headers too large', new errors.HeadersOverflowError(), 'UND_ERR_HEADERS_OVERFLOW', true],
    [
      'happy eyeballs (AggregateError)',
      new AggregateError([sysError('ECONNREFUSED', 'connect ECONNREFUSED ::1:9'), sysError('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:9')]),
      'ECONNREFUSED',
      true,
    ],
    ['code on the cause', new Error('fetch failed', { cause: sysError('ECONNRESET', 'socket hang up') }), 'ECONNRESET', true],
    // DNS
    ['DNS not found', sysError('ENOTFOUND', 'getaddrinfo ENOTFOUND hooks.example'), 'ENOTFOUND', true],
    ['DNS temporary failure', sysError('EAI_AGAIN', 'getaddrinfo EAI_AGAIN hooks.example'), 'EAI_AGAIN', true],
    // TLS
    ['self-signed', sysError('DEPTH_ZERO_SELF_SIGNED_CERT', 'self-signed certificate'), 'DEPTH_ZERO_SELF_SIGNED_CERT', true],
    ['expired', sysError('CERT_HAS_EXPIRED', 'certificate has expired'), 'CERT_HAS_EXPIRED', true],
    ['unknown issuer', sysError('UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'unable to verify'), 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', true],
    ['wrong host name', sysError('ERR_TLS_CERT_ALTNAME_INVALID', "Hostname/IP does not match certificate's altnames"), 'ERR_TLS_CERT_ALTNAME_INVALID', true],
    ['TLS to a plain HTTP port', sysError('ERR_SSL_WRONG_VERSION_NUMBER', 'wrong version number'), 'ERR_SSL_WRONG_VERSION_NUMBER', true],
    ['TLS protocol', sysError('EPROTO', 'write EPROTO'), 'EPROTO', true],
    // Ours, not the endpoint's
    ['caller abort (DOMException)', new DOMException('This operation was aborted', 'AbortError'), 'ABORTED', false],
    ['caller abort (undici)', new errors.RequestAbortedError(), 'UND_ERR_ABORTED', false],
    ['client closed', new errors.ClientClosedError(), 'UND_ERR_CLOSED', false],
    ['client destroyed', new errors.ClientDestroyedError(), 'UND_ERR_DESTROYED', false],
    ['invalid argument', new errors.InvalidArgumentError('invalid header'), 'UND_ERR_INVALID_ARG', false],
    ['invalid header character', sysError('ERR_INVALID_CHAR', 'Invalid character in header content'), 'ERR_INVALID_CHAR', false],
    ['a bug (TypeError)', new TypeError('x is not a function'), 'TypeError', false],
    ['a plain Error', new Error('something'), 'UNKNOWN', false],
    ['a string', 'weird', 'UNKNOWN', false],
    ['null', null, 'UNKNOWN', false],
  ])('%s -> %s (endpointFailure %s)', (_name, err, code, endpointFailure) => {
    const outcome = classifyError(err);
    expect(outcome.kind).toBe('retry');
    expect(outcome.endpointFailure).toBe(endpointFailure);
    expect(outcome.error.startsWith(`${code}: `)).toBe(true);
    expect(outcome).not.toHaveProperty('status');
    expect(errorCode(err)).toBe(code);
  });

  it('keeps the message after the code', () => {
    expect(classifyError(sysError('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:9')).error).toBe(
      'ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:9',
    );
  });
});

describe('retryDelayMs', () => {
  const cfg = { retry_delay: 5, retry_max_delay: 300 };
  const mid = () => 0.5; // no jitter: factor 1.0
  const low = () => 0; // -20%
  const high = () => 1; // +20%

  it.each<[number, { retry_delay: number; retry_max_delay: number }, () => number, number]>([
    [1, cfg, mid, 5_000],
    [2, cfg, mid, 10_000],
    [3, cfg, mid, 20_000],
    [4, cfg, mid, 40_000],
    [6, cfg, mid, 160_000],
    [7, cfg, mid, 300_000], // 320 s capped
    [50, cfg, mid, 300_000],
    [5000, cfg, mid, 300_000], // 2^4999 is Infinity; still the cap
    [1, cfg, low, 4_000],
    [1, cfg, high, 6_000],
    [3, cfg, low, 16_000],
    [3, cfg, high, 24_000],
    [7, cfg, low, 240_000],
    [7, cfg, high, 300_000], // jitter never goes above the cap
    [0, cfg, mid, 5_000], // nonsense attempt counts act as the first
    [-3, cfg, mid, 5_000],
    [1, { retry_delay: 0, retry_max_delay: 300 }, high, 0],
    [9, { retry_delay: 0, retry_max_delay: 300 }, high, 0],
    [1, { retry_delay: 10, retry_max_delay: 3 }, mid, 3_000], // cap below the first delay
    [1, { retry_delay: 0.1, retry_max_delay: 1 }, mid, 100],
  ])('attempt %i with %o -> %i ms', (attempt, c, random, expected) => {
    expect(retryDelayMs(attempt, c, random)).toBe(expected);
  });

  it('stays within ±20% and within [0, cap] for any random value', () => {
    for (let attempt = 1; attempt <= 12; attempt++) {
      for (const r of [0, 0.1, 0.33, 0.5, 0.77, 0.999, 1, -1, 2]) {
        const d = retryDelayMs(attempt, cfg, () => r);
        const base = Math.min(300_000, 5_000 * 2 ** (attempt - 1));
        expect(d).toBeGreaterThanOrEqual(Math.floor(base * 0.8));
        expect(d).toBeLessThanOrEqual(Math.min(300_000, Math.ceil(base * 1.2)));
      }
    }
  });

  it.each<[string, number, { retry_delay: number; retry_max_delay: number }, number, number]>([
    ['a longer Retry-After wins', 1, cfg, 60_000, 60_000],
    ['a shorter Retry-After loses to the backoff', 3, cfg, 1_000, 20_000],
    ['Retry-After may exceed retry_max_delay, up to an hour', 1, cfg, 1_800_000, 1_800_000],
    ['Retry-After is capped at an hour', 1, cfg, 7_200_000, 3_600_000],
    ['Retry-After is capped at retry_max_delay when that is longer', 1, { retry_delay: 5, retry_max_delay: 7200 }, 9_000_000, 7_200_000],
    ['Retry-After applies even with retry_delay 0', 1, { retry_delay: 0, retry_max_delay: 300 }, 2_000, 2_000],
    ['Retry-After 0 changes nothing', 2, cfg, 0, 10_000],
  ])('%s', (_name, attempt, c, retryAfterMs, expected) => {
    expect(retryDelayMs(attempt, c, mid, retryAfterMs)).toBe(expected);
  });
});

describe('isExhausted', () => {
  it.each<[number, number, boolean]>([
    [0, 3, false],
    [1, 3, false],
    [3, 3, false],
    [4, 3, true], // first attempt + 3 retries
    [5, 3, true],
    [0, 0, false],
    [1, 0, true], // retry_count 0: one attempt only
  ])('attempts %i, retry_count %i -> %s', (attempts, retryCount, expected) => {
    expect(isExhausted(attempts, retryCount)).toBe(expected);
  });
});
