/**
 * The web console and its JSON API, served by the admin server at / and /api/
 * (docs/console.md). Every read and every action goes through the operator layer
 * (`AdminOps`, src/capture/admin.ts), the same functions the CLI's `status` and
 * `dead-letters` call, over one connection of its own, one operation at a time.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { openAdmin, parseEventRef, type AdminOps, type DeadLetter, type DeadLetterFilter } from '../capture/admin.js';
import type { AttemptFilter } from '../capture/postgres/admin.js';
import type { Config, TableRef } from '../config/types.js';
import { AppError, describeError } from '../util/errors.js';
import { CONSOLE_CSS, CONSOLE_JS } from './assets.js';
import { ConsoleAuth, sameOrigin, type Principal } from './auth.js';
import {
  configPage,
  confirmPage,
  deadLetterPage,
  deadLettersPage,
  deliveriesPage,
  eventPage,
  loginPage,
  messagePage,
  overviewPage,
  type OverviewRow,
  type PageContext,
  type PlannedAction,
} from './pages.js';
import type { RateRing } from './rate.js';
import { redactConfig } from './redact-config.js';

/** What the running daemon tells the console (memory, not the database). */
export interface ConsoleLive {
  /** Each destination's endpoint health now. */
  endpoints(): Readonly<Record<string, 'up' | 'down'>>;
  readonly rate: RateRing;
}

export interface ConsoleOptions {
  readonly config: Config;
  readonly live: ConsoleLive;
  readonly version: string;
  /** Opens the operator connection (default: openAdmin of the config). */
  readonly openAdmin?: () => Promise<AdminOps>;
}

/** Bytes of a request body read at most (forms and JSON actions are small). */
const MAX_BODY_BYTES = 64 * 1024;
/** Rows a page lists at most. */
const PAGE_ROWS = 100;
/** Dead letters a confirmation page lists (it counts them all). */
const CONFIRM_ROWS = 50;
/**
 * An overview younger than this is reused: the counts come from the status query, which
 * reads every queue (as the CLI's `status` does), and every open overview polls it.
 */
const OVERVIEW_MAX_AGE_MS = 2_000;

const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'same-origin',
  'cache-control': 'no-store',
};

class HttpProblem extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** One operator connection for the console, opened on first use, reopened after a failure; one operation at a time. */
class SharedAdmin {
  private ops: Promise<AdminOps> | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly open: () => Promise<AdminOps>) {}

  run<T>(fn: (ops: AdminOps) => Promise<T>): Promise<T> {
    const next = this.queue.then(async () => {
      this.ops ??= this.open();
      let ops: AdminOps;
      try {
        ops = await this.ops;
      } catch (err) {
        this.ops = undefined;
        throw err;
      }
      try {
        return await fn(ops);
      } catch (err) {
        // A usage problem keeps the connection; anything else may have broken it.
        if (!(err instanceof AppError)) {
          this.ops = undefined;
          void ops.close();
        }
        throw err;
      }
    });
    this.queue = next.catch(() => undefined);
    return next;
  }

  async close(): Promise<void> {
    await this.queue;
    const ops = this.ops;
    this.ops = undefined;
    if (ops) await (await ops.catch(() => undefined))?.close();
  }
}

export class WebConsole {
  readonly auth: ConsoleAuth;
  private readonly admin: SharedAdmin;
  private readonly destinations: string[];
  private overviewCache: { at: number; rows: Promise<OverviewRow[]> } | undefined;

  constructor(private readonly opts: ConsoleOptions) {
    this.auth = new ConsoleAuth(opts.config.http.token);
    this.admin = new SharedAdmin(opts.openAdmin ?? (() => openAdmin(opts.config, 'app-db-listener:console')));
    this.destinations = opts.config.destinations.map((d) => d.name);
  }

  close(): Promise<void> {
    return this.admin.close();
  }

  /** Serves one request of the console (any path but the admin server's own). */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://console.invalid');
    const path = url.pathname;
    const api = path.startsWith('/api/');
    let who: Principal | undefined;
    try {
      if (path === '/assets/console.css') return send(res, 200, CONSOLE_CSS, 'text/css; charset=utf-8');
      if (path === '/assets/console.js') return send(res, 200, CONSOLE_JS, 'text/javascript; charset=utf-8');
      if (path === '/favicon.ico') return send(res, 404, '', 'text/plain');
      if (path === '/login') return await this.login(req, res);
      who = this.auth.authenticate(req.headers);
      if (!who) {
        if (api) return json(res, 401, { error: 'unauthorized: send Authorization: Bearer <http.token>' }, { 'www-authenticate': 'Bearer' });
        if (req.method === 'GET' || req.method === 'HEAD') return redirect(res, '/login');
        return send(res, 401, loginPage('Log in first.'), 'text/html; charset=utf-8');
      }
      if (path === '/logout' && req.method === 'POST') {
        const form = await readForm(req);
        this.checkForm(who, req, form);
        res.setHeader('set-cookie', ConsoleAuth.clearCookie());
        return redirect(res, '/login');
      }
      if (api) return await this.handleApi(req, res, path, url.searchParams, who);
      return await this.handlePage(req, res, path, url.searchParams, who);
    } catch (err) {
      const status = err instanceof HttpProblem ? err.status : err instanceof AppError ? 400 : 500;
      const message = err instanceof HttpProblem || err instanceof AppError ? err.message : `internal error: ${describeError(err)}`;
      if (api) return json(res, status, { error: message });
      const ctx = who ? this.context(who) : this.context({ kind: 'open', session: 'open' }, false);
      return send(res, status, messagePage(ctx, status === 403 ? 'Refused' : 'Error', message), 'text/html; charset=utf-8');
    }
  }

  private context(who: Principal, loggedIn = this.auth.required): PageContext {
    const session = who.kind === 'bearer' ? 'bearer' : who.session;
    return { csrf: this.auth.csrfToken(session), loggedIn, version: this.opts.version };
  }

  private checkForm(who: Principal, req: IncomingMessage, form: URLSearchParams): void {
    const problem = this.auth.checkForm(who, req.headers, form.get('csrf') ?? undefined);
    if (problem) throw new HttpProblem(403, `refused: ${problem}`);
  }

  private async login(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!this.auth.required) return redirect(res, '/');
    if (req.method !== 'POST') return send(res, 200, loginPage(), 'text/html; charset=utf-8');
    const origin = sameOrigin(req.headers);
    if (origin) throw new HttpProblem(403, `refused: ${origin}`);
    const form = await readForm(req);
    if (!this.auth.checkToken(form.get('token') ?? '')) return send(res, 401, loginPage('That is not the token.'), 'text/html; charset=utf-8');
    res.setHeader('set-cookie', this.auth.sessionCookie());
    return redirect(res, '/');
  }

  // ---- Pages

  private async handlePage(req: IncomingMessage, res: ServerResponse, path: string, q: URLSearchParams, who: Principal): Promise<void> {
    const ctx = this.context(who);
    const page = (body: string, status = 200) => send(res, status, body, 'text/html; charset=utf-8');
    if (req.method === 'POST') {
      const form = await readForm(req);
      this.checkForm(who, req, form);
      if (path === '/dead-letters/confirm') return page(confirmPage(ctx, await this.plan(form)));
      if (path === '/dead-letters/replay' || path === '/dead-letters/purge') {
        const action = path.endsWith('replay') ? 'replay' : 'purge';
        const ids = await this.act(action, selectionOf(form, this.destinations));
        const notice = `${action === 'replay' ? 'Replayed' : 'Purged'} ${ids.length} dead letter${ids.length === 1 ? '' : 's'}${ids.length > 0 ? `: ${ids.slice(0, 20).join(', ')}${ids.length > 20 ? ', …' : ''}` : ''}.`;
        return redirect(res, `/dead-letters?notice=${encodeURIComponent(notice)}`);
      }
      throw new HttpProblem(404, `not found: ${path}`);
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpProblem(405, 'method not allowed');
    if (path === '/') return page(overviewPage(ctx, await this.overview(), this.opts.live.rate.series()));
    if (path === '/deliveries') {
      const f = attemptFilter(q);
      const list = await this.admin.run((ops) => ops.listAttempts(f.filter, PAGE_ROWS + 1));
      const next = list.length > PAGE_ROWS ? list[PAGE_ROWS - 1]!.seq : undefined;
      return page(deliveriesPage(ctx, f.query, this.destinations, list.slice(0, PAGE_ROWS), this.opts.config.http.attempt_log, next));
    }
    if (path === '/dead-letters') {
      const { filter, query } = deadLetterFilter(q);
      const [letters, total] = await this.admin.run(async (ops) => [await ops.listDeadLetters(filter, PAGE_ROWS), await ops.countDeadLetters(filter)] as const);
      return page(deadLettersPage(ctx, query, this.destinations, letters, total, q.get('notice') ?? undefined));
    }
    const one = /^\/dead-letters\/([^/]+)\/([^/]+)$/.exec(path);
    if (one) {
      const d = await this.deadLetter(decodeURIComponent(one[1]!), decodeURIComponent(one[2]!));
      return page(deadLetterPage(ctx, d));
    }
    if (path === '/events' || path.startsWith('/events/')) {
      const ref = path === '/events' ? (q.get('id') ?? '').trim() : decodeURIComponent(path.slice('/events/'.length));
      if (ref === '') return page(eventPage(ctx, '', undefined));
      let id: string;
      try {
        id = parseEventRef(ref);
      } catch (err) {
        return page(eventPage(ctx, ref, undefined, (err as Error).message), 400);
      }
      const journey = await this.admin.run((ops) => ops.eventJourney(id, this.destinations));
      return page(eventPage(ctx, ref, journey));
    }
    if (path === '/config') return page(configPage(ctx, redactConfig(this.opts.config)));
    throw new HttpProblem(404, `not found: ${path}`);
  }

  // ---- JSON API (docs/console.md)

  private async handleApi(req: IncomingMessage, res: ServerResponse, path: string, q: URLSearchParams, who: Principal): Promise<void> {
    if (req.method === 'POST') {
      // A bearer token is proof enough; a browser session (or no token on loopback) also shows
      // it comes from the console: its origin, and the CSRF token in x-csrf-token.
      if (who.kind !== 'bearer') {
        const problem = this.auth.checkForm(who, req.headers, headerValue(req.headers['x-csrf-token']));
        if (problem) throw new HttpProblem(403, `refused: ${problem}`);
      }
      const body = await readJson(req);
      if (path === '/api/dead-letters/replay' || path === '/api/dead-letters/purge') {
        const action = path.endsWith('replay') ? 'replay' : 'purge';
        const ids = await this.act(action, selectionOfJson(body, action));
        return json(res, 200, { [action === 'replay' ? 'replayed' : 'purged']: ids });
      }
      throw new HttpProblem(404, `not found: ${path}`);
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpProblem(405, 'method not allowed: GET, or POST for actions');
    if (path === '/api/overview') return json(res, 200, { rows: await this.overview() });
    if (path === '/api/rate') return json(res, 200, this.opts.live.rate.series());
    if (path === '/api/deliveries') {
      const f = attemptFilter(q);
      const limit = boundedLimit(q.get('limit'));
      return json(res, 200, { attempts: await this.admin.run((ops) => ops.listAttempts(f.filter, limit)), attemptLog: this.opts.config.http.attempt_log });
    }
    if (path === '/api/dead-letters') {
      const { filter } = deadLetterFilter(q);
      const limit = boundedLimit(q.get('limit'));
      const [letters, total] = await this.admin.run(async (ops) => [await ops.listDeadLetters(filter, limit), await ops.countDeadLetters(filter)] as const);
      return json(res, 200, { total, deadLetters: letters });
    }
    const one = /^\/api\/dead-letters\/([^/]+)\/([^/]+)$/.exec(path);
    if (one) return json(res, 200, await this.deadLetter(decodeURIComponent(one[1]!), decodeURIComponent(one[2]!)));
    const event = /^\/api\/events\/([^/]+)$/.exec(path);
    if (event) {
      const id = parseEventRef(decodeURIComponent(event[1]!));
      return json(res, 200, await this.admin.run((ops) => ops.eventJourney(id, this.destinations)));
    }
    if (path === '/api/config') return json(res, 200, redactConfig(this.opts.config));
    throw new HttpProblem(404, `not found: ${path} (see docs/console.md for the API)`);
  }

  // ---- Shared by pages and API

  private overview(): Promise<OverviewRow[]> {
    const cached = this.overviewCache;
    if (cached && Date.now() - cached.at < OVERVIEW_MAX_AGE_MS) return cached.rows;
    const rows = (async () => {
      const status = await this.admin.run((ops) => ops.status());
      const endpoints = this.opts.live.endpoints();
      return status.map((r) => ({ ...r, endpoint: r.destination ? (endpoints[r.destination] ?? null) : null }));
    })();
    this.overviewCache = { at: Date.now(), rows };
    rows.catch(() => {
      if (this.overviewCache?.rows === rows) this.overviewCache = undefined;
    });
    return rows;
  }

  private async deadLetter(destination: string, ref: string): Promise<DeadLetter> {
    const id = parseEventRef(ref);
    const d = await this.admin.run((ops) => ops.getDeadLetter(destination, id));
    if (!d) throw new HttpProblem(404, `no dead letter ${ref} for destination ${destination}`);
    return d;
  }

  /** The confirmation step: what the selection acts on, as a form that repeats it. */
  private async plan(form: URLSearchParams): Promise<PlannedAction> {
    const action = form.get('action') === 'purge' ? 'purge' : 'replay';
    const selection = selectionOf(form, this.destinations);
    const filters = selection.filters;
    const [letters, total] = await this.admin.run(async (ops) => {
      let listed: DeadLetter[] = [];
      let n = 0;
      for (const f of filters) {
        listed = listed.concat(await ops.listDeadLetters(f, CONFIRM_ROWS));
        n += await ops.countDeadLetters(f);
      }
      return [listed.slice(0, CONFIRM_ROWS), n] as const;
    });
    return { action, fields: selection.fields, letters, total, what: selection.what };
  }

  private act(action: 'replay' | 'purge', selection: Selection): Promise<string[]> {
    return this.admin.run(async (ops) => {
      const ids: string[] = [];
      for (const f of selection.filters) ids.push(...(await (action === 'replay' ? ops.replayDeadLetters(f) : ops.purgeDeadLetters(f))));
      return ids;
    });
  }
}

interface Selection {
  /** One filter per destination. */
  readonly filters: readonly DeadLetterFilter[];
  readonly fields: ReadonlyArray<readonly [string, string]>;
  readonly what: string;
}

/** `selected=<destination>:<id>` (several), or `all=1&destination=<name>`. */
export function selectionOf(form: URLSearchParams, destinations: readonly string[]): Selection {
  if (form.get('all') === '1') {
    const destination = form.get('destination') ?? '';
    if (!destinations.includes(destination)) throw new HttpProblem(400, `unknown destination ${JSON.stringify(destination)}`);
    return { filters: [{ destination }], fields: [['all', '1'], ['destination', destination]], what: `Every dead letter of destination ${destination}` };
  }
  const byDestination = new Map<string, string[]>();
  for (const value of form.getAll('selected')) {
    const colon = value.lastIndexOf(':');
    if (colon <= 0) throw new HttpProblem(400, `not a dead letter: ${JSON.stringify(value)}`);
    const destination = value.slice(0, colon);
    const id = parseEventRef(value.slice(colon + 1));
    byDestination.set(destination, [...(byDestination.get(destination) ?? []), id]);
  }
  if (byDestination.size === 0) throw new HttpProblem(400, 'select at least one dead letter');
  return {
    filters: [...byDestination].map(([destination, ids]) => ({ destination, ids })),
    fields: [...byDestination].flatMap(([destination, ids]) => ids.map((id) => ['selected', `${destination}:${id}`] as const)),
    what: `The ${form.getAll('selected').length} selected`,
  };
}

/** The API's body: `{ destination?, ids?, table?, since? (replay) / before? (purge) }`; an empty body is refused. */
function selectionOfJson(body: Record<string, unknown>, action: 'replay' | 'purge'): Selection {
  const str = (k: string) => {
    const v = body[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') throw new HttpProblem(400, `${k} must be a string`);
    return v;
  };
  const ids = body.ids;
  if (ids !== undefined && !(Array.isArray(ids) && ids.every((i) => typeof i === 'string' || typeof i === 'number'))) {
    throw new HttpProblem(400, 'ids must be a list of event ids');
  }
  const timeKey = action === 'replay' ? 'since' : 'before';
  const time = str(timeKey);
  const filter: DeadLetterFilter = {
    ...(str('destination') !== undefined ? { destination: str('destination') } : {}),
    ...(ids !== undefined ? { ids: (ids as Array<string | number>).map((i) => parseEventRef(String(i))) } : {}),
    ...(str('table') !== undefined ? { table: parseTable(str('table')!) } : {}),
    ...(time !== undefined ? { time: parseTime(time, timeKey) } : {}),
  };
  if (Object.keys(filter).length === 0) throw new HttpProblem(400, `say what to ${action}: destination, ids, table or ${timeKey} (all of them: {"destination": "<name>"})`);
  return { filters: [filter], fields: [], what: '' };
}

function parseTable(text: string): TableRef {
  const dot = text.indexOf('.');
  return dot < 0 ? { name: text } : { schema: text.slice(0, dot), name: text.slice(dot + 1) };
}

function parseTime(text: string, key: string): Date {
  const d = new Date(text);
  if (Number.isNaN(d.getTime())) throw new HttpProblem(400, `${key} must be a time (ISO 8601, e.g. 2026-12-06T00:00:00Z), got ${JSON.stringify(text)}`);
  return d;
}

function deadLetterFilter(q: URLSearchParams): { filter: DeadLetterFilter; query: { destination?: string; table?: string; since?: string } } {
  const destination = q.get('destination') || undefined;
  const table = q.get('table')?.trim() || undefined;
  const since = q.get('since')?.trim() || undefined;
  return {
    filter: {
      ...(destination ? { destination } : {}),
      ...(table ? { table: parseTable(table) } : {}),
      ...(since ? { time: parseTime(since, 'since') } : {}),
    },
    query: { ...(destination ? { destination } : {}), ...(table ? { table } : {}), ...(since ? { since } : {}) },
  };
}

function attemptFilter(q: URLSearchParams): { filter: AttemptFilter; query: { event?: string; table?: string; rowKey?: string; destination?: string; outcome?: string } } {
  const event = q.get('event')?.trim() || undefined;
  const table = q.get('table')?.trim() || undefined;
  const rowKey = q.get('row_key') || undefined;
  const destination = q.get('destination') || undefined;
  const outcome = q.get('outcome') || undefined;
  const before = q.get('before') || undefined;
  if (outcome !== undefined && outcome !== 'delivered' && outcome !== 'retry' && outcome !== 'dead') {
    throw new HttpProblem(400, 'outcome must be delivered, retry or dead');
  }
  if (before !== undefined && !/^\d{1,19}$/.test(before)) throw new HttpProblem(400, 'before must be a number (an attempt\u2019s seq)');
  return {
    filter: {
      ...(event ? { id: parseEventRef(event) } : {}),
      ...(table ? { table: parseTable(table) } : {}),
      ...(rowKey ? { rowKey } : {}),
      ...(destination ? { destination } : {}),
      ...(outcome ? { outcome } : {}),
      ...(before ? { before } : {}),
    },
    query: { ...(event ? { event } : {}), ...(table ? { table } : {}), ...(rowKey ? { rowKey } : {}), ...(destination ? { destination } : {}), ...(outcome ? { outcome } : {}) },
  };
}

function boundedLimit(text: string | null): number {
  if (text === null || text === '') return PAGE_ROWS;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 1_000) throw new HttpProblem(400, 'limit must be an integer between 1 and 1000');
  return n;
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new HttpProblem(413, `request body over ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  return new URLSearchParams(await readBody(req));
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const text = await readBody(req);
  if (text.trim() === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new HttpProblem(400, 'the body must be JSON');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new HttpProblem(400, 'the body must be a JSON object');
  return value as Record<string, unknown>;
}

function send(res: ServerResponse, status: number, body: string, contentType: string, extra: Record<string, string> = {}): void {
  res.statusCode = status;
  for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v);
  for (const [k, v] of Object.entries(extra)) res.setHeader(k, v);
  res.setHeader('content-type', contentType);
  res.setHeader('content-length', Buffer.byteLength(body));
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

function json(res: ServerResponse, status: number, value: unknown, extra: Record<string, string> = {}): void {
  send(res, status, JSON.stringify(value), 'application/json; charset=utf-8', extra);
}

function redirect(res: ServerResponse, location: string): void {
  send(res, 303, '', 'text/plain; charset=utf-8', { location });
}
