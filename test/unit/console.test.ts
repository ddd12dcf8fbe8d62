/** The console's pure parts: escaping, authentication and CSRF checks, redaction, the rate ring. */
import { describe, expect, it } from 'vitest';
import { ConsoleAuth, checkConsoleExposure, isLoopback, readCookie, safeEqual, sameOrigin, SESSION_COOKIE } from '../../src/console/auth.js';
import { escapeHtml, html, raw } from '../../src/console/html.js';
import { BUCKETS, BUCKET_MS, RateRing } from '../../src/console/rate.js';
import { redactConfig } from '../../src/console/redact-config.js';
import { parseConfig } from '../../src/config/index.js';
import { redactRequestHeaders, truncateUtf8 } from '../../src/journal/attempt-log.js';
import { AppError } from '../../src/util/errors.js';

describe('html escaping', () => {
  it.each([
    ['<script>alert(1)</script>', '&lt;script&gt;alert(1)&lt;/script&gt;'],
    [`"onmouseover='x'`, '&quot;onmouseover=&#39;x&#39;'],
    ['a & b', 'a &amp; b'],
    ['`tick`', '&#96;tick&#96;'],
    ['plain', 'plain'],
  ])('escapes %s', (input, out) => {
    expect(escapeHtml(input)).toBe(out);
    expect(html`<td>${input}</td>`.text).toBe(`<td>${out}</td>`);
  });

  it('escapes values by default, keeps nested html, joins arrays, drops null/undefined/false', () => {
    const hostile = '<img src=x onerror=alert(1)>';
    const row = html`<b>${hostile}</b>`;
    expect(html`<p>${row}${[html`<i>${'<'}</i>`, '>']}${null}${undefined}${false}${0}</p>`.text).toBe(
      '<p><b>&lt;img src=x onerror=alert(1)&gt;</b><i>&lt;</i>&gt;0</p>',
    );
    expect(html`<a title="${'" autofocus onfocus="x'}">`.text).toBe('<a title="&quot; autofocus onfocus=&quot;x">');
    expect(html`${raw('<hr>')}`.text).toBe('<hr>');
  });
});

describe('console authentication', () => {
  const key = Buffer.alloc(32, 7);
  const auth = new ConsoleAuth('s3cret-token-value', key);

  it('accepts the bearer token, constant-time, and refuses others', () => {
    expect(auth.authenticate({ authorization: 'Bearer s3cret-token-value' })).toEqual({ kind: 'bearer' });
    expect(auth.authenticate({ authorization: 'bearer s3cret-token-value' })).toEqual({ kind: 'bearer' });
    expect(auth.authenticate({ authorization: 'Bearer s3cret-token-valuX' })).toBeUndefined();
    expect(auth.authenticate({ authorization: 'Bearer s3cret' })).toBeUndefined();
    expect(auth.authenticate({ authorization: 'Basic czNjcmV0' })).toBeUndefined();
    expect(auth.authenticate({})).toBeUndefined();
    expect(safeEqual('abc', 'abc')).toBe(true);
    expect(safeEqual('abc', 'abd')).toBe(false);
    expect(safeEqual('abc', 'abcd')).toBe(false);
  });

  it('sets a session cookie that is not the token, HttpOnly and SameSite=Strict', () => {
    const cookie = auth.sessionCookie();
    expect(cookie).not.toContain('s3cret-token-value');
    expect(cookie).toMatch(/; HttpOnly/);
    expect(cookie).toMatch(/; SameSite=Strict/);
    const value = readCookie(cookie.split(';')[0], SESSION_COOKIE)!;
    expect(auth.authenticate({ cookie: `other=1; ${SESSION_COOKIE}=${value}` })).toEqual({ kind: 'cookie', session: value });
    expect(auth.authenticate({ cookie: `${SESSION_COOKIE}=${value}x` })).toBeUndefined();
    // Another process (another key) does not take the cookie, nor does another token.
    expect(new ConsoleAuth('s3cret-token-value').authenticate({ cookie: `${SESSION_COOKIE}=${value}` })).toBeUndefined();
    expect(new ConsoleAuth('other-token-value', key).authenticate({ cookie: `${SESSION_COOKIE}=${value}` })).toBeUndefined();
  });

  it('without a token everything is open', () => {
    expect(new ConsoleAuth(undefined).authenticate({})).toEqual({ kind: 'open', session: 'open' });
  });

  it('a form POST needs its session CSRF token and the same origin; a bearer POST neither', () => {
    const session = { kind: 'cookie', session: auth.sessionValue() } as const;
    const csrf = auth.csrfToken(session.session);
    const same = { host: '127.0.0.1:9464', origin: 'http://127.0.0.1:9464' };
    expect(auth.checkForm(session, same, csrf)).toBeUndefined();
    expect(auth.checkForm(session, same, undefined)).toMatch(/CSRF/);
    expect(auth.checkForm(session, same, csrf + 'x')).toMatch(/CSRF/);
    expect(auth.checkForm(session, { host: '127.0.0.1:9464', origin: 'http://evil.example' }, csrf)).toMatch(/another origin/);
    expect(auth.checkForm(session, { host: '127.0.0.1:9464' }, csrf)).toMatch(/neither Origin nor Referer/);
    expect(auth.checkForm(session, { host: '127.0.0.1:9464', referer: 'http://127.0.0.1:9464/dead-letters' }, csrf)).toBeUndefined();
    expect(auth.checkForm({ kind: 'bearer' }, {}, undefined)).toBeUndefined();
    expect(sameOrigin({ host: 'a:1', origin: 'http://a:1.evil' })).toMatch(/another origin/);
    expect(sameOrigin({ host: 'a:1', origin: 'javascript:alert(1)' })).toMatch(/another origin/);
  });
});

describe('refusal to serve the console beyond loopback without a token', () => {
  const http = (host: string, token?: string, console = true) => ({ listen: { host, port: 9464 }, console, ...(token ? { token } : {}) });

  it.each(['127.0.0.1', '127.1.2.3', '::1', 'localhost', '::ffff:127.0.0.1'])('%s is loopback', (host) => {
    expect(isLoopback(host)).toBe(true);
    expect(() => checkConsoleExposure(http(host))).not.toThrow();
  });

  it.each(['0.0.0.0', '::', '10.0.0.5', '192.168.1.2', '::ffff:10.0.0.1'])('%s needs a token', (host) => {
    expect(isLoopback(host)).toBe(false);
    let err: unknown;
    try {
      checkConsoleExposure(http(host));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe('HTTP_TOKEN_REQUIRED');
    expect((err as AppError).message).toContain('http.token');
    expect((err as AppError).hint).toContain('http.console: false');
    expect((err as AppError).hint).toContain('127.0.0.1');
    expect(() => checkConsoleExposure(http(host, 'a-token'))).not.toThrow();
    expect(() => checkConsoleExposure(http(host, undefined, false))).not.toThrow();
  });
});

describe('attempt log redaction and bounds', () => {
  it('redacts signatures, authorization and secret-looking headers, and masks literal secrets', () => {
    const h = redactRequestHeaders(
      [
        'user-agent', 'app-db-listener/1',
        'authorization', 'Bearer abc',
        'webhook-signature', 'v1,xyz',
        'x-api-key', 'k',
        'x-auth-token', 't',
        'cookie', 'a=b',
        'x-tenant', 'tenant-secret-value',
        'webhook-id', 'evt_1',
      ],
      ['tenant-secret-value'],
    );
    expect(h).toEqual({
      'user-agent': 'app-db-listener/1',
      authorization: '[redacted]',
      'webhook-signature': '[redacted]',
      'x-api-key': '[redacted]',
      'x-auth-token': '[redacted]',
      cookie: '[redacted]',
      'x-tenant': '***',
      'webhook-id': 'evt_1',
    });
  });

  it('cuts text at a byte bound, never inside a character', () => {
    expect(truncateUtf8('short', 10)).toBe('short');
    expect(truncateUtf8('ééééé', 5)).toBe('éé… [cut at 5 bytes]');
    expect(truncateUtf8('x'.repeat(20), 8)).toBe('xxxxxxxx… [cut at 8 bytes]');
  });

  it('the effective config shows no secret', () => {
    const { config } = parseConfig(
      [
        'database:',
        '  url: "postgres://app:DbPass-Secret@db.internal:5432/shop"',
        '  tables: [orders]',
        'webhook:',
        '  url: "https://user:UrlPass-Secret@hooks.example/x"',
        `  secret: "whsec_${Buffer.from('a-signing-secret-of-24-bytes!').toString('base64')}"`,
        '  headers:',
        '    X-Tenant: "Header-Secret-Value"',
        'destinations:',
        '  - name: bus',
        '    type: nats',
        '    url: "nats://natsuser:NatsPass-Secret@nats.internal:4222"',
        'http:',
        '  token: "Token-Secret-Value"',
        '',
      ].join('\n'),
      {},
      'test',
    );
    const text = JSON.stringify(redactConfig(config));
    for (const s of ['DbPass-Secret', 'UrlPass-Secret', 'whsec_', Buffer.from('a-signing-secret-of-24-bytes!').toString('base64'), 'Header-Secret-Value', 'NatsPass-Secret', 'Token-Secret-Value']) {
      expect(text).not.toContain(s);
    }
    expect(text).toContain('db.internal');
    expect(text).toContain('[redacted]');
  });
});

describe('delivered/s ring', () => {
  it('counts per 10 s bucket, per destination, over 15 minutes, clearing what it skips', () => {
    let t = 1_000_000 * BUCKET_MS;
    const ring = new RateRing(['a', 'b'], () => t);
    for (let i = 0; i < 30; i++) ring.note('a');
    ring.note('b', 5);
    let s = ring.series();
    expect(s.total).toHaveLength(BUCKETS);
    expect(s.destinations.a!.at(-1)).toBe(3);
    expect(s.destinations.b!.at(-1)).toBe(0.5);
    expect(s.total.at(-1)).toBe(3.5);
    expect(s.startMs).toBe(t - (BUCKETS - 1) * BUCKET_MS);
    t += BUCKET_MS;
    ring.note('a', 10);
    s = ring.series();
    expect(s.destinations.a!.slice(-2)).toEqual([3, 1]);
    // After 15 minutes of nothing, everything is gone.
    t += BUCKETS * BUCKET_MS;
    s = ring.series();
    expect(s.total.every((v) => v === 0)).toBe(true);
    // Part of the ring skipped: only the skipped buckets are cleared.
    ring.note('a', 20);
    t += 3 * BUCKET_MS;
    ring.note('a', 10);
    s = ring.series();
    expect(s.destinations.a!.slice(-4)).toEqual([2, 0, 0, 1]);
  });
});
