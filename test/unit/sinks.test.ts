import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { openSink } from '../../src/delivery/sinks.js';

/** The sink seam: a destination's sink is opened by its type, and checks without sending an event. */
describe('openSink', () => {
  let server: Server;
  let port: number;
  const requests: string[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      requests.push(req.method ?? '');
      req.resume();
      res.statusCode = 405;
      res.end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const destinations = (url: string) =>
    parseConfig(`database:\n  url: "postgres://u@127.0.0.1/db"\n  table: t\ndestinations:\n  - name: billing\n    url: "${url}"\n    timeout: 2\n`).config
      .destinations;

  it('a webhook that answers anything passes its check, and no event is sent', async () => {
    const sink = openSink(destinations(`http://127.0.0.1:${port}/hook`)[0]!, 'destinations[0]', 'test');
    try {
      const r = await sink.check();
      expect(r.ok).toBe(true);
      expect(r.detail).toContain('HTTP 405');
      expect(requests).toEqual(['HEAD']);
      expect(sink.description).toBe(`http://127.0.0.1:${port}/hook`);
    } finally {
      await sink.close();
    }
  });

  it('an endpoint nobody listens on fails its check, with the key to fix and no credentials', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const free = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const sink = openSink(destinations(`http://user:hunter2@127.0.0.1:${free}/hook`)[0]!, 'destinations[0]', 'test');
    try {
      const r = await sink.check();
      expect(r.ok).toBe(false);
      expect(r.detail).toContain('is not reachable');
      expect(r.fix).toContain('destinations[0].url');
      expect(JSON.stringify(r)).not.toContain('hunter2');
    } finally {
      await sink.close();
    }
  });
});
