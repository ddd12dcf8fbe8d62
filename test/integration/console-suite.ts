/**
 * The web console's JSON API and pages against a running daemon, the same for
 * PostgreSQL and MariaDB: counts, the attempt log, dead letters (show, replay,
 * purge), an event's journey, the effective config; every response grepped for
 * the secrets of the config, and a hostile row value escaped.
 */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type RunningDaemon } from '../../src/app.js';
import { parseConfig } from '../../src/config/index.js';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { waitUntil } from '../support/wait.js';

export const TOKEN = 'ConsoleTokenSecret789';
export const WEBHOOK_SECRET = `whsec_${Buffer.from('console-suite-signing-secret-32by').toString('base64')}`;
export const HEADER_SECRET = 'HeaderBearerSecret123';
export const API_KEY_SECRET = 'ApiKeyHeaderSecret456';
export const HOSTILE = '<script>alert(1)</script>';

export interface ConsoleDriver {
  readonly name: string;
  setup(): Promise<void>;
  teardown(): Promise<void>;
  /** The database: section of the config (YAML lines), watching table `orders`. */
  databaseYaml(): string[];
  /** Secrets the database section holds (its password), grepped for too. */
  readonly databaseSecrets: readonly string[];
  exec(sql: string): Promise<void>;
  /** `CREATE TABLE orders (id <int> PRIMARY KEY, note <text>)` for this database. */
  readonly createOrders: string;
}

export function consoleSuite(driver: ConsoleDriver): void {
  describe(`web console API (${driver.name})`, () => {
    let rx: Receiver;
    let daemon: RunningDaemon;
    let base: string;
    /** Every response body seen, to grep for secrets at the end. */
    const seen: string[] = [];

    const get = async (path: string, token: string | null = TOKEN) => {
      const res = await fetch(base + path, { headers: token ? { authorization: `Bearer ${token}` } : {}, redirect: 'manual' });
      const text = await res.text();
      seen.push(text, JSON.stringify([...res.headers]));
      return { status: res.status, text, headers: res.headers, json: () => JSON.parse(text) as Record<string, unknown> };
    };
    const post = async (path: string, body: unknown, headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` }) => {
      const res = await fetch(base + path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body), redirect: 'manual' });
      const text = await res.text();
      seen.push(text);
      return { status: res.status, text, json: () => JSON.parse(text) as Record<string, unknown> };
    };

    beforeAll(async () => {
      await driver.setup();
      await driver.exec(driver.createOrders);
      // Refuses (400) any change whose row says "poison": it goes straight to dead letters.
      rx = await startReceiver({
        mode: (req, res) => {
          const bad = req.body.includes('poison');
          res.statusCode = bad ? 400 : 200;
          res.end(bad ? 'refused: poison' : `thanks for ${req.headers['webhook-id'] as string}`);
        },
      });
      const yaml = [
        ...driver.databaseYaml(),
        '  tables: ["orders"]',
        'listener:',
        '  poll_interval: 0.2',
        'webhook:',
        `  url: ${JSON.stringify(rx.url)}`,
        '  timeout: 5',
        '  retry_count: 0',
        `  secret: ${JSON.stringify(WEBHOOK_SECRET)}`,
        '  headers:',
        `    Authorization: ${JSON.stringify(`Bearer ${HEADER_SECRET}`)}`,
        `    X-Api-Key: ${JSON.stringify(API_KEY_SECRET)}`,
        'http:',
        '  listen: "127.0.0.1:0"',
        '  token: "${ADMIN_TOKEN}"',
        '',
      ].join('\n');
      const config = parseConfig(yaml, { ADMIN_TOKEN: TOKEN }, 'console test').config;
      // Every log line, at debug, to grep for secrets too.
      const logger = pino({ level: 'debug' }, { write: (line: string) => void seen.push(line) });
      daemon = await startDaemon(config, { logger });
      base = `http://127.0.0.1:${daemon.httpAddress!.port}`;
    });

    afterAll(async () => {
      await daemon?.stop(2_000);
      await rx?.close();
      await driver.teardown();
    });

    it('refuses the API and the pages without the token, keeps /metrics and /healthz open', async () => {
      expect((await get('/api/overview', null)).status).toBe(401);
      expect((await get('/api/overview', 'wrong-token')).status).toBe(401);
      const page = await get('/', null);
      expect(page.status).toBe(303);
      expect(page.headers.get('location')).toBe('/login');
      expect((await get('/healthz', null)).status).toBe(200);
      expect((await get('/metrics', null)).status).toBe(200);
      expect((await post('/api/dead-letters/replay', { destination: 'default' }, {})).status).toBe(401);
    });

    it('shows counts, attempts with request and response, and an event journey', async () => {
      await driver.exec(`INSERT INTO orders (id, note) VALUES (42, 'fine')`);
      await rx.waitFor(1, 10_000);
      const attempts = await waitUntil(
        async () => {
          const r = (await get('/api/deliveries?table=orders')).json().attempts as Array<Record<string, unknown>>;
          return r.length > 0 ? r : undefined;
        },
        10_000,
        'the delivery in the attempt log',
      );
      const a = attempts[0]!;
      expect(a).toMatchObject({ destination: 'default', table: 'orders', rowKey: '42', outcome: 'delivered', responseStatus: 200, attempt: 1 });
      expect(a.responseBody).toBe(`thanks for ${a.eventId as string}`);
      expect(a.requestBody).toContain('"fine"');
      const headers = a.requestHeaders as Record<string, string>;
      expect(headers['webhook-id']).toBe(a.eventId);
      expect(headers['webhook-signature']).toBe('[redacted]');
      expect(headers.authorization).toBe('[redacted]');
      expect(headers['x-api-key']).toBe('[redacted]');
      // Searchable by event id, row key, destination and status.
      expect(((await get(`/api/deliveries?event=${a.eventId as string}`)).json().attempts as unknown[]).length).toBe(1);
      expect(((await get('/api/deliveries?row_key=42&destination=default&outcome=delivered')).json().attempts as unknown[]).length).toBe(1);
      expect(((await get('/api/deliveries?outcome=dead')).json().attempts as unknown[]).length).toBe(0);
      const eventPage = await get(`/events/${a.eventId as string}`);
      expect(eventPage.status).toBe(200);
      expect(eventPage.text).toContain('delivered');
      const journey = (await get(`/api/events/${a.eventId as string}`)).json();
      expect(journey.eventId).toBe(a.eventId);
      expect((journey.attempts as unknown[]).length).toBe(1);
      const overview = (await get('/api/overview')).json().rows as Array<Record<string, unknown>>;
      expect(overview.find((r) => r.destination === 'default')).toMatchObject({ table: 'orders', endpoint: 'up', deadLetters: 0 });
      const rate = (await get('/api/rate')).json();
      expect((rate.total as number[]).reduce((x, y) => x + y, 0)).toBeGreaterThan(0);
    });

    it('shows a dead letter as captured, hostile value escaped, then replays and purges it', async () => {
      await driver.exec(`INSERT INTO orders (id, note) VALUES (7, 'poison ${HOSTILE}')`);
      const letters = await waitUntil(
        async () => {
          const r = (await get('/api/dead-letters?destination=default')).json().deadLetters as Array<Record<string, unknown>>;
          return r.length > 0 ? r : undefined;
        },
        10_000,
        'the dead letter',
      );
      const d = letters[0]!;
      expect(d.newRow).toContain(HOSTILE);
      const one = (await get(`/api/dead-letters/default/${d.eventId as string}`)).json();
      expect(one.newRow).toBe(d.newRow);
      // The page shows the value as text.
      const page = await get(`/dead-letters/default/${d.id as string}`);
      expect(page.status).toBe(200);
      expect(page.text).not.toContain(HOSTILE);
      expect(page.text).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
      expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
      expect(page.headers.get('x-frame-options')).toBe('DENY');
      // The logged attempt keeps the 4xx answer.
      const dead = await waitUntil(
        async () => {
          const r = (await get('/api/deliveries?outcome=dead')).json().attempts as Array<Record<string, unknown>>;
          return r.length > 0 ? r : undefined;
        },
        10_000,
        'the dead attempt in the attempt log',
      );
      expect(dead[0]).toMatchObject({ responseStatus: 400, responseBody: 'refused: poison', outcome: 'dead' });
      // Empty selections are refused; a browser session without the CSRF header is refused.
      expect((await post('/api/dead-letters/replay', {})).status).toBe(400);
      // Replay: the receiver now takes it (a handler change), and it is delivered.
      rx.setMode(200);
      const replayed = await post('/api/dead-letters/replay', { destination: 'default', ids: [d.eventId] });
      expect(replayed.status).toBe(200);
      expect(replayed.json().replayed).toEqual([d.id]);
      await rx.waitFor((events) => events.some((e) => e.body.includes('poison') && e.response === 200), 10_000);
      await waitUntil(async () => ((await get(`/api/events/${d.eventId as string}`)).json().attempts as unknown[]).length >= 2, 10_000, 'the replayed attempt');
      // Purge: another dead letter, removed for good.
      rx.setMode(410);
      await driver.exec(`INSERT INTO orders (id, note) VALUES (8, 'refused')`);
      await waitUntil(async () => (await get('/api/dead-letters')).json().total === 1, 10_000, 'the second dead letter');
      const purged = await post('/api/dead-letters/purge', { destination: 'default' });
      expect((purged.json().purged as unknown[]).length).toBe(1);
      expect((await get('/api/dead-letters')).json().total).toBe(0);
    });

    it('shows the effective config with every secret redacted', async () => {
      const cfg = (await get('/api/config')).json();
      expect(JSON.stringify(cfg)).toContain('[redacted]');
      const page = await get('/config');
      expect(page.status).toBe(200);
      for (const p of ['/', '/deliveries', '/dead-letters', '/events', '/api/overview', '/api/deliveries?limit=1000']) expect((await get(p)).status).toBe(200);
    });

    it('never shows a secret in any response or log line', () => {
      expect(seen.some((line) => line.includes('"level":30'))).toBe(true);
      const all = seen.join('\n');
      for (const secret of [TOKEN, WEBHOOK_SECRET, WEBHOOK_SECRET.slice('whsec_'.length), HEADER_SECRET, API_KEY_SECRET, ...driver.databaseSecrets]) {
        expect(all.includes(secret), `a response contains ${secret.slice(0, 4)}…`).toBe(false);
      }
    });
  });
}
