import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { WebhookConfig } from '../../src/config/types.js';
import { buildBody } from '../../src/delivery/body.js';
import { WebhookClient } from '../../src/delivery/webhook.js';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { selfSignedCertificate } from '../support/tls.js';
import { waitUntil } from '../support/wait.js';

const SECRET = 'whsec_' + randomBytes(32).toString('base64');
const SECRET_OLD = 'whsec_' + randomBytes(32).toString('base64');
const ROW = '{"id": 9007199254740993, "price": 12.50, "name": "Zoé <>&\\""}';

function config(url: string, overrides: Partial<WebhookConfig> = {}): WebhookConfig {
  return {
    url,
    timeout: 5,
    retry_count: 3,
    retry_delay: 0,
    retry_max_delay: 300,
    secrets: [],
    headers: {},
    ...overrides,
  };
}

function event(n = 1): { eventId: string; body: string } {
  const eventId = `evt_${n}`;
  const body = buildBody({
    eventId,
    op: 'INSERT',
    schema: 'public',
    table: 'users',
    timestamp: '2026-11-26T17:58:54.117181Z',
    newRow: ROW,
    oldRow: null,
  });
  return { eventId, body };
}

/** A port nobody listens on: bind one, note it, close it. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('WebhookClient against a real receiver', () => {
  let rx: Receiver;
  const clients: WebhookClient[] = [];
  const client = (cfg: WebhookConfig, poolSize = 4): WebhookClient => {
    const c = new WebhookClient(cfg, poolSize, '1.2.3');
    clients.push(c);
    return c;
  };

  beforeEach(async () => {
    rx = await startReceiver();
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.destroy()));
    await rx.close();
  });

  it('POSTs the body unchanged with the protocol headers', async () => {
    const c = client(config(rx.url + '?tenant=a&x=1', { headers: { 'X-Api-Key': 'k1', 'Content-Type': 'text/plain', 'webhook-id': 'forged' } }));
    const e = event();
    const before = Math.floor(Date.now() / 1000);
    const result = await c.send(e);
    const after = Math.floor(Date.now() / 1000);

    expect(result).toMatchObject({ kind: 'success', status: 200 });
    expect(result.durationMs).toBeGreaterThan(0);
    expect(rx.events).toHaveLength(1);
    const req = rx.events[0]!;
    expect(req.method).toBe('POST');
    expect(req.url).toBe('/webhook?tenant=a&x=1');
    expect(req.body).toBe(e.body);
    expect(req.body).toContain('9007199254740993');
    expect(req.body).toContain('12.50');
    expect(req.headers['content-type']).toBe('application/json');
    expect(req.headers['user-agent']).toBe('app-db-listener/1.2.3');
    expect(req.headers['webhook-id']).toBe('evt_1');
    const ts = Number(req.headers['webhook-timestamp']);
    expect(ts).toBeGreaterThanOrEqual(before);
    expect(ts).toBeLessThanOrEqual(after);
    expect(req.headers['x-api-key']).toBe('k1');
    expect(req.headers['webhook-signature']).toBeUndefined();
    expect(req.headers.authorization).toBeUndefined();
    expect(Number(req.headers['content-length'])).toBe(Buffer.byteLength(e.body));
  });

  it('signs so that standardwebhooks verifies, with every secret during rotation', async () => {
    const c = client(config(rx.url, { secrets: [SECRET, SECRET_OLD] }));
    const e = event(2);
    expect(await c.send(e)).toMatchObject({ kind: 'success' });
    const req = rx.events[0]!;
    const headers = {
      'webhook-id': String(req.headers['webhook-id']),
      'webhook-timestamp': String(req.headers['webhook-timestamp']),
      'webhook-signature': String(req.headers['webhook-signature']),
    };
    expect(headers['webhook-signature'].split(' ')).toHaveLength(2);
    expect(() => new Webhook(SECRET).verify(req.body, headers)).not.toThrow();
    expect(() => new Webhook(SECRET_OLD).verify(req.body, headers)).not.toThrow();
    expect(() => new Webhook('whsec_' + randomBytes(32).toString('base64')).verify(req.body, headers)).toThrow();
  });

  it('turns user:password in the URL into basic auth and strips it from the URL', async () => {
    const url = new URL(rx.url);
    url.username = 'hook user';
    url.password = 'p@ss:wörd';
    const c = client(config(url.href));
    expect(c.url).toBe(rx.url);
    expect(c.url).not.toContain('p%40ss');
    expect(await c.send(event())).toMatchObject({ kind: 'success' });
    const auth = String(rx.events[0]!.headers.authorization);
    expect(auth).toBe('Basic ' + Buffer.from('hook user:p@ss:wörd').toString('base64'));
  });

  it('an explicit authorization header wins over URL credentials', async () => {
    const url = new URL(rx.url);
    url.username = 'u';
    url.password = 'p';
    const c = client(config(url.href, { headers: { Authorization: 'Bearer t0k3n' } }));
    await c.send(event());
    expect(rx.events[0]!.headers.authorization).toBe('Bearer t0k3n');
  });

  it('500 -> retry with the status, an endpoint failure, the start of the body', async () => {
    rx.setMode({ kind: 'status', status: 500, body: 'database is on fire\n' + 'x'.repeat(5000) });
    const result = await client(config(rx.url)).send(event());
    expect(result).toMatchObject({ kind: 'retry', status: 500, endpointFailure: true });
    expect(result.kind === 'retry' && result.error).toMatch(/^HTTP 500 Internal Server Error: database is on fire x+$/);
    expect(result.kind === 'retry' && result.error.length).toBeLessThan(600);
  });

  it('503 with Retry-After -> retry carrying retryAfterMs', async () => {
    rx.setMode({ kind: 'status', status: 503, headers: { 'retry-after': '7' } });
    const result = await client(config(rx.url)).send(event());
    expect(result).toMatchObject({ kind: 'retry', status: 503, endpointFailure: true, retryAfterMs: 7000 });
  });

  it('410 -> dead', async () => {
    rx.setMode({ kind: 'status', status: 410, body: 'unsubscribed' });
    const result = await client(config(rx.url)).send(event());
    expect(result).toMatchObject({ kind: 'dead', status: 410, error: 'HTTP 410 Gone: unsubscribed' });
  });

  it('302 -> retry, not followed: the receiver sees exactly one request', async () => {
    rx.setMode({ kind: 'status', status: 302, headers: { location: rx.url + '/moved' } });
    const result = await client(config(rx.url)).send(event());
    expect(result).toMatchObject({ kind: 'retry', status: 302, endpointFailure: false });
    expect(result.kind === 'retry' && result.error).toContain('not followed');
    expect(rx.events).toHaveLength(1);
    expect(rx.events[0]!.method).toBe('POST');
  });

  it('a hanging receiver -> timeout outcome, about when the timeout expires', async () => {
    rx.setMode('hang');
    const started = Date.now();
    const result = await client(config(rx.url, { timeout: 0.3 })).send(event());
    expect(result).toMatchObject({ kind: 'retry', endpointFailure: true });
    expect(result.kind === 'retry' && result.error).toMatch(/^(TIMEOUT|UND_ERR_HEADERS_TIMEOUT)/);
    expect(result).not.toHaveProperty('status');
    expect(Date.now() - started).toBeLessThan(3000);
    expect(rx.events).toHaveLength(1);
  });

  it('a body that never ends -> timeout too (the timeout covers the body)', async () => {
    rx.setMode((_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('slow');
    });
    const result = await client(config(rx.url, { timeout: 0.3 })).send(event());
    expect(result).toMatchObject({ kind: 'retry', endpointFailure: true, status: 200 });
    expect(result.kind === 'retry' && result.error).toMatch(/^(TIMEOUT|UND_ERR_BODY_TIMEOUT)/);
  });

  it('connection refused -> retry, endpoint failure, ECONNREFUSED', async () => {
    const port = await closedPort();
    const result = await client(config(`http://127.0.0.1:${port}/webhook`)).send(event());
    expect(result).toMatchObject({ kind: 'retry', endpointFailure: true });
    expect(result.kind === 'retry' && result.error).toMatch(/^ECONNREFUSED: /);
  });

  it.each(['before-response', 'mid-body'] as const)('socket destroyed %s -> retry, endpoint failure', async (when) => {
    rx.setMode({ kind: 'destroy', when });
    const result = await client(config(rx.url)).send(event());
    expect(result).toMatchObject({ kind: 'retry', endpointFailure: true });
    expect(result.kind === 'retry' && result.error).toMatch(/^UND_ERR_(SOCKET|RES_CONTENT_LENGTH_MISMATCH): /);
    expect(rx.events).toHaveLength(1);
  });

  it('keeps the connection alive: 20 sequential sends use 1 socket', async () => {
    const c = client(config(rx.url), 10);
    for (let i = 0; i < 20; i++) {
      expect(await c.send(event(i))).toMatchObject({ kind: 'success' });
    }
    expect(rx.events).toHaveLength(20);
    expect(rx.connections).toBe(1);
    expect(new Set(rx.events.map((r) => r.connectionId))).toEqual(new Set([1]));
  });

  it('keeps the connection alive after error statuses too (their bodies are drained)', async () => {
    const c = client(config(rx.url));
    rx.setMode({ kind: 'status', status: 500, body: 'e'.repeat(2000) });
    for (let i = 0; i < 5; i++) await c.send(event(i));
    rx.setMode('ok');
    await c.send(event(99));
    expect(rx.connections).toBe(1);
  });

  it('uses up to pool_size connections for concurrent sends', async () => {
    rx.setMode({ kind: 'delay', ms: 100 });
    const c = client(config(rx.url), 3);
    const results = await Promise.all(Array.from({ length: 6 }, (_, i) => c.send(event(i))));
    expect(results.every((r) => r.kind === 'success')).toBe(true);
    expect(rx.connections).toBe(3);
  });

  it('the caller can abort: retry ABORTED, not an endpoint failure', async () => {
    rx.setMode('hang');
    const c = client(config(rx.url));
    const controller = new AbortController();
    const pending = c.send(event(), controller.signal);
    await rx.waitFor(1);
    controller.abort();
    const result = await pending;
    expect(result).toMatchObject({ kind: 'retry', endpointFailure: false });
    expect(result.kind === 'retry' && result.error).toMatch(/^ABORTED: /);
    const again = await c.send(event(), controller.signal);
    expect(again).toMatchObject({ kind: 'retry', endpointFailure: false });
    expect(rx.events).toHaveLength(1);
  });

  it('close() waits for in-flight sends; sends after it are retried, not thrown', async () => {
    rx.setMode({ kind: 'delay', ms: 100 });
    const c = client(config(rx.url));
    const pending = c.send(event());
    await rx.waitFor(1);
    await c.close();
    expect(await pending).toMatchObject({ kind: 'success' });
    expect(await c.send(event())).toMatchObject({ kind: 'retry', endpointFailure: false });
  });

  it('rejects a bad URL or secret at construction without echoing credentials', () => {
    expect(() => new WebhookClient(config('not a url with secret:pw@'), 1, '1')).toThrow(/^webhook.url is not a valid/);
    expect(() => new WebhookClient(config('ftp://h/x'), 1, '1')).toThrow(/http or https/);
    expect(() => new WebhookClient(config(rx.url, { secrets: ['whsec_***'] }), 1, '1')).toThrow(/secret/);
  });

  describe('https', () => {
    const cert = selfSignedCertificate();

    it.skipIf(!cert)('a self-signed certificate fails as a TLS error; ca_file makes it trusted', async () => {
      const tls = await startReceiver({ tls: { key: cert!.key, cert: cert!.cert } });
      try {
        const untrusted = await client(config(tls.url)).send(event());
        expect(untrusted).toMatchObject({ kind: 'retry', endpointFailure: true });
        expect(untrusted.kind === 'retry' && untrusted.error).toMatch(/^(DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE): /);

        const trusted = await client(config(tls.url, { ca_file: cert!.certFile })).send(event());
        expect(trusted).toMatchObject({ kind: 'success', status: 200 });
        expect(tls.events).toHaveLength(1);
      } finally {
        await tls.close();
        cert!.cleanup();
      }
    });
  });
});

describe('test support: receiver and waitUntil', () => {
  it('queued one-shot modes come before the standing mode, and responses are recorded', async () => {
    const rx = await startReceiver({ mode: 503 });
    const c = new WebhookClient(config(rx.url), 1, '1');
    try {
      rx.queue(500, { kind: 'status', status: 429, headers: { 'retry-after': '1' } });
      const kinds = [];
      for (let i = 0; i < 4; i++) kinds.push((await c.send(event(i))).kind);
      rx.setMode('ok');
      kinds.push((await c.send(event(9))).kind);
      expect(rx.events.map((e) => e.response)).toEqual([500, 429, 503, 503, 200]);
      expect(kinds).toEqual(['retry', 'retry', 'retry', 'retry', 'success']);
      expect(rx.events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
    } finally {
      await c.destroy();
      await rx.close();
    }
  });

  it('waitFor rejects with what it got when the deadline passes', async () => {
    const rx = await startReceiver();
    const c = new WebhookClient(config(rx.url), 1, '1');
    try {
      await c.send(event(1));
      await expect(rx.waitFor(2, 50)).rejects.toThrow(/timed out after 50 ms waiting for 2 request\(s\); got 1:[\s\S]*#1 POST \/webhook webhook-id=evt_1 -> 200/);
      await expect(rx.waitFor((evs) => evs.some((e) => e.response === 500), 50)).rejects.toThrow(/the predicate/);
      await rx.waitFor(1, 50);
    } finally {
      await c.destroy();
      await rx.close();
    }
  });

  it('close() ends hanging requests and is idempotent', async () => {
    const rx = await startReceiver({ mode: 'hang' });
    const c = new WebhookClient(config(rx.url, { timeout: 10 }), 1, '1');
    const pending = c.send(event());
    await rx.waitFor(1);
    expect(rx.openConnections).toBe(1);
    await rx.close();
    await rx.close();
    expect(await pending).toMatchObject({ kind: 'retry', endpointFailure: true });
    await c.destroy();
  });

  it('waitUntil returns the first truthy value and explains a timeout', async () => {
    let n = 0;
    expect(await waitUntil(() => (++n >= 3 ? `done at ${n}` : false), 1000, 'n to reach 3', 1)).toBe('done at 3');
    await expect(waitUntil(() => false, 30, 'never')).rejects.toThrow('waitUntil: timed out after 30 ms waiting for never (last value: false)');
    await expect(
      waitUntil(() => {
        throw new Error('not yet');
      }, 30, () => 'computed message'),
    ).rejects.toThrow('waiting for computed message (last error: not yet)');
  });
});
