/**
 * Who may use the console: the checks are pure functions of a request's headers,
 * so they are unit-tested without a server.
 *
 * - With `http.token` set, a request is authenticated by `Authorization: Bearer
 *   <token>` or by the session cookie the login form sets. The cookie's value is an
 *   HMAC of the token with a key made at process start, never the token itself, so a
 *   leaked cookie dies with the process and a token change ends every session.
 * - Without a token (allowed on a loopback address only) everything is open.
 * - A form POST (cookie or no auth) needs the CSRF token of its session (an HMAC of
 *   the session with the same key) and an Origin (or Referer) of this very server. A
 *   bearer-authenticated POST needs neither: a browser never adds that header itself.
 * Every comparison of a secret is constant-time.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { IncomingHttpHeaders } from 'node:http';
import type { HttpConfig } from '../config/types.js';
import { AppError } from '../util/errors.js';

export const SESSION_COOKIE = 'adl_session';

/** Whether `host` only accepts connections from this machine. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h);
  return mapped !== null && mapped[1]!.startsWith('127.');
}

/**
 * The daemon refuses to serve the console beyond loopback without a token: anyone
 * who reaches the port could read rows and replay or purge dead letters.
 */
export function checkConsoleExposure(http: Pick<HttpConfig, 'listen' | 'console' | 'token'>): void {
  if (!http.listen || !http.console || (http.token !== undefined && http.token !== '')) return;
  if (isLoopback(http.listen.host)) return;
  const where = http.listen.host.includes(':') ? `[${http.listen.host}]:${http.listen.port}` : `${http.listen.host}:${http.listen.port}`;
  throw new AppError('HTTP_TOKEN_REQUIRED', `http.token is required: the web console would listen on ${where}, beyond this machine, without a token`, {
    hint: 'set http.token (e.g. http.token: "${ADMIN_TOKEN}"), or set http.console: false, or listen on 127.0.0.1 (http.listen: "127.0.0.1:9464")',
  });
}

/** Constant-time comparison of two strings (different lengths compare unequal, in time independent of the content). */
export function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  if (x.length !== y.length) {
    timingSafeEqual(x, x);
    return false;
  }
  return timingSafeEqual(x, y);
}

/** One cookie's value from a Cookie header. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

export type Principal =
  /** No token configured: open (loopback only). */
  | { readonly kind: 'open'; readonly session: string }
  | { readonly kind: 'bearer' }
  | { readonly kind: 'cookie'; readonly session: string };

export class ConsoleAuth {
  private readonly key: Buffer;

  constructor(
    private readonly token: string | undefined,
    key: Buffer = randomBytes(32),
  ) {
    this.key = key;
  }

  get required(): boolean {
    return this.token !== undefined && this.token !== '';
  }

  /** Who sent the request; undefined when a token is required and none (or a wrong one) came. */
  authenticate(headers: IncomingHttpHeaders): Principal | undefined {
    if (!this.required) return { kind: 'open', session: 'open' };
    const auth = headers.authorization;
    if (auth !== undefined) {
      const m = /^Bearer\s+(.+)$/i.exec(auth.trim());
      return m && safeEqual(m[1]!, this.token!) ? { kind: 'bearer' } : undefined;
    }
    const cookie = readCookie(headers.cookie, SESSION_COOKIE);
    if (cookie !== undefined && safeEqual(cookie, this.sessionValue())) return { kind: 'cookie', session: cookie };
    return undefined;
  }

  /** Whether `candidate` is the token (the login form). */
  checkToken(candidate: string): boolean {
    return this.required && safeEqual(candidate, this.token!);
  }

  /** The session cookie's value: never the token itself. */
  sessionValue(): string {
    return this.hmac(`session:${this.token ?? ''}`);
  }

  /** The Set-Cookie header of a login: HttpOnly, SameSite=Strict, for the whole console. */
  sessionCookie(): string {
    return `${SESSION_COOKIE}=${this.sessionValue()}; Path=/; HttpOnly; SameSite=Strict`;
  }

  static clearCookie(): string {
    return `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0`;
  }

  /** The CSRF token of a session, put in every form. */
  csrfToken(session: string): string {
    return this.hmac(`csrf:${session}`);
  }

  /** A form POST: its CSRF field matches the session's, and it comes from this origin. */
  checkForm(principal: Principal, headers: IncomingHttpHeaders, csrf: string | undefined): string | undefined {
    if (principal.kind === 'bearer') return undefined;
    const origin = sameOrigin(headers);
    if (origin !== undefined) return origin;
    if (csrf === undefined || !safeEqual(csrf, this.csrfToken(principal.session))) return 'the form is missing its CSRF token or it is stale: reload the page and try again';
    return undefined;
  }

  private hmac(text: string): string {
    return createHmac('sha256', this.key).update(text).digest('base64url');
  }
}

/**
 * Why a POST does not come from this server's own pages (undefined when it does): its
 * Origin, or without one its Referer, must be http(s)://<the Host header>.
 */
export function sameOrigin(headers: IncomingHttpHeaders): string | undefined {
  const host = headers.host;
  if (!host) return 'the request has no Host header';
  const from = typeof headers.origin === 'string' && headers.origin !== 'null' ? headers.origin : headers.referer;
  if (from === undefined) return 'the request has neither Origin nor Referer: submit the form from the console';
  let url: URL;
  try {
    url = new URL(from);
  } catch {
    return 'the request comes from another origin';
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.host !== host) return 'the request comes from another origin';
  return undefined;
}
